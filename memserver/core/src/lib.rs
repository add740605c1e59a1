//! Kernel-region memory server core: the canonical table, the one
//! populate_kernel path, and the vmalloc, vmemmap and percpu allocators.
//!
//! `no_std` with `alloc`: the canonical table and the allocators' maps grow
//! in [`Arena`]s, up to the caps of [`limits`], and every allocation on the
//! request path is fallible (`try_reserve`), so running out of memory is an
//! `OutOfMemory` reply; no request input can make it panic. The `sim`
//! feature (host only, with `std`) adds a simulated MMU backend, the
//! invariant checker and the fuzzing harness.
#![no_std]
#![forbid(unsafe_code)]
// The server must not panic on any input: no unwrap, expect, panic or
// unchecked indexing in its code (the host-only simulator opts out).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::unreachable)
)]

extern crate alloc;
// The host-only parts (`sim`, tests) use `std`.
#[cfg(any(test, feature = "sim"))]
extern crate std;

pub mod accounting;
pub mod admin;
pub mod arena;
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
mod owners;
pub mod percpu;
pub mod populate;
pub mod quota;
pub mod server;
#[cfg(feature = "sim")]
pub mod sim;
pub mod vmalloc;
pub mod vmemmap;

pub use accounting::{Census, ClientUsage, FrameTally};
pub use admin::Admin;
pub use arena::{Arena, ArenaError};
pub use backend::{Backend, FrameFor, Holder, OpCounts, OpKind, Platform, Rights, SpaceRef};
pub use error::{BackendError, Error, FaultError, Limit};
pub use ids::{Badge, CpuId, Pfn, SpaceId};
pub use layout::{Area, Level, LevelMask, PageSize, PercpuAddr, RegionAddr, VmallocAddr, VmemmapAddr};
pub use percpu::{PercpuAlloc, PercpuOffset};
pub use populate::{Access, FrameKind, Leaf, Region, Table};
pub use quota::Objects;
pub use server::{Config, MemServer};
pub use vmalloc::{Backing, Resized, VmArea, VmallocFlags};
pub use vmemmap::{VmemmapOptions, VmemmapRange};
