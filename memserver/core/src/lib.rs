//! Kernel-region memory server core: the canonical table, the one
//! populate_kernel path, and the vmalloc, vmemmap and percpu allocators.
//!
//! `no_std` and allocation-free: all state is fixed-size (see [`limits`]),
//! and no request input can make it panic. The `sim` feature (host only)
//! adds a simulated MMU backend, the invariant checker and the fuzzing harness.
#![cfg_attr(not(any(test, feature = "sim")), no_std)]
// The server must not panic on any input: no unwrap, expect, panic or
// unchecked indexing in its code (the host-only simulator opts out).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::unreachable)
)]

pub mod accounting;
mod avl;
pub mod backend;
pub mod dispatch;
pub mod error;
pub mod fault_message;
pub mod fault_reports;
#[cfg(feature = "sim")]
pub mod harness;
#[cfg(feature = "sim")]
pub mod host_backend;
pub mod ids;
#[cfg(feature = "sim")]
pub mod invariant;
pub mod layout;
pub mod limits;
pub mod percpu;
mod pool;
pub mod populate;
pub mod quota;
pub mod server;
#[cfg(feature = "sim")]
pub mod sim;
pub mod vmalloc;
pub mod vmemmap;

pub use accounting::{ClientUsage, FrameTally, SpaceCost, Stats};
pub use backend::{Backend, OpCounts, OpKind, Rights, SpaceRef};
pub use error::{BackendError, Error, FaultError, Limit};
pub use ids::{Badge, CpuId, Pfn, SpaceId};
pub use layout::{Area, Level, LevelMask, PageSize, PercpuAddr, RegionAddr, VmallocAddr, VmemmapAddr};
pub use percpu::{PercpuAlloc, PercpuOffset};
pub use populate::{Access, FrameKind, Leaf, Region, Table};
pub use quota::Objects;
pub use server::{Config, MemServer};
pub use vmalloc::{Backing, VmArea, VmallocFlags};
pub use vmemmap::{VmemmapOptions, VmemmapRange};
