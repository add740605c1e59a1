//! The launch library any root task can use: untyped memory and slots
//! from bootinfo ([`allocator`]), VSpaces with ASIDs from as many ASID
//! pools as they need ([`asid_pools`], [`vspace`]), programs
//! loaded from ELF images into processes with their own CNode, threads
//! with IPC buffers, stacks, priorities and CPUs ([`process`]), VSpaces
//! that mirror a process's so its thread can be moved through them
//! ([`mirror`]), their
//! fault endpoints, which the root task can take back ([`fault_route`]),
//! and the memory server started with its untyped memory as the bootstrap
//! contract says ([`memserver_process`]). Failures to set a system up are panics:
//! a root task that cannot build its system has nothing else to do.
#![cfg_attr(not(test), no_std)]

pub mod allocator;
pub mod asid_pools;
mod elf_image;
pub mod fault_route;
pub mod memserver_process;
pub mod mirror;
pub mod process;
pub mod vspace;
