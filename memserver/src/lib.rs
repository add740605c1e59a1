//! Kernel-region memory server core: the canonical table, the one
//! populate_kernel path, and the vmalloc, vmemmap and percpu allocators.
#![cfg_attr(not(test), no_std)]
