//! Every capacity of the server, named in one place. The server's state is
//! fixed-size; reaching any of these is a typed [`Limit`](crate::Limit)
//! error, never a panic.

use crate::layout::{LARGE_PAGE_SIZE, PAGE_SIZE};

/// Registered address spaces (a space set is a `u32` bit mask).
pub const MAX_SPACES: usize = 32;
/// Paging structures in the canonical table, including its root.
pub const MAX_TABLES: usize = 128;
/// Mapped pages (leaves) in the canonical table.
pub const MAX_LEAVES: usize = 24576;
/// Pages one operation may map (the size of its undo log).
pub const MAX_PAGES_PER_OP: usize = 16384;
/// vmalloc and vmap areas, live or awaiting purge.
pub const MAX_VMALLOC_AREAS: usize = 128;
/// Bytes of freed vmalloc areas that may await a purge before one is
/// forced: Linux's `lazy_max_pages` for one CPU (32 MiB), in bytes, so
/// that 2 MiB pages count for what they hold.
pub const LAZY_PURGE_BYTES: u64 = 16 * LARGE_PAGE_SIZE;
/// Caller frames in one vmap.
pub const MAX_VMAP_FRAMES: usize = 64;
/// Populated vmemmap pfn ranges.
pub const MAX_VMEMMAP_RANGES: usize = 64;
/// Smallest compound-page order the vmemmap optimisation accepts: four
/// descriptor frames per compound page, two of them shared.
pub const MIN_COMPOUND_ORDER: u32 = 8;
/// Largest compound-page order the vmemmap optimisation accepts (1 GiB).
pub const MAX_COMPOUND_ORDER: u32 = 18;
/// CPUs the percpu allocator can serve.
pub const MAX_PERCPU_CPUS: usize = 8;
/// Bytes in one percpu unit (one CPU's share of a chunk).
pub const PERCPU_UNIT_SIZE: u64 = 8 * PAGE_SIZE;
/// Allocation granule inside a percpu unit.
pub const PERCPU_GRANULE: u64 = 16;
/// Percpu chunks, the first one included.
pub const MAX_PERCPU_CHUNKS: usize = 8;
/// Live percpu allocations.
pub const MAX_PERCPU_ALLOCS: usize = 256;
/// Fault reports waiting for the administrator, per space.
pub const REPORTS_PER_SPACE: usize = 8;
/// Clients with a usage or quota record.
pub const MAX_CLIENTS: usize = 32;
/// Quota of a client the administrator has not set one for, in bytes.
pub const DEFAULT_QUOTA_BYTES: u64 = 64 * LARGE_PAGE_SIZE;

const _: () = assert!(MAX_SPACES <= 32, "space sets are u32 masks");
const _: () = assert!(MAX_TABLES < u16::MAX as usize);
const _: () = assert!(MAX_LEAVES < u16::MAX as usize);
const _: () = assert!(MAX_VMAP_FRAMES <= MAX_PAGES_PER_OP);
const _: () = assert!(PERCPU_UNIT_SIZE.is_multiple_of(PAGE_SIZE) && PERCPU_GRANULE.is_power_of_two());
