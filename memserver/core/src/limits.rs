//! The server's few fixed bounds, named in one place. Its tables (spaces,
//! structures, pages, areas, ranges, allocations, chunks, clients) have
//! none: they grow in the server's heap, so their limit is the memory the
//! server was given, answered as `OutOfMemory` (or, per client, as
//! `QuotaExceeded`). What is bounded here is bounded by the protocol or by
//! what one request may do; reaching it is a typed
//! [`Limit`](crate::Limit) error, never a panic. Registered spaces are
//! bounded by the ids a fault badge carries (`SpaceId::COUNT`).

use crate::layout::{LARGE_PAGE_SIZE, PAGE_SIZE};

/// Pages one operation may map: 1 GiB of 4 KiB pages.
pub const MAX_PAGES_PER_OP: usize = 1 << 18;
/// Bytes of freed vmalloc areas that may await a purge before one is
/// forced: Linux's `lazy_max_pages` for one CPU (32 MiB), in bytes, so
/// that 2 MiB pages count for what they hold.
pub const LAZY_PURGE_BYTES: u64 = 16 * LARGE_PAGE_SIZE;
/// Largest alignment a vmalloc may ask for (as Linux's
/// `__vmalloc_node_range` takes up to the largest page size): 1 GiB, the
/// protocol's bound.
pub const MAX_VMALLOC_ALIGN: u64 = memserver_protocol::VmallocOptions::MAX_ALIGN;
/// Caller frames in one vmap: the protocol's bound.
pub const MAX_VMAP_FRAMES: usize = memserver_protocol::Request::MAX_VMAP_PAGES as usize;
/// Smallest compound-page order the vmemmap optimisation accepts: four
/// descriptor frames per compound page, two of them shared.
pub const MIN_COMPOUND_ORDER: u32 = 8;
/// Largest compound-page order the vmemmap optimisation accepts (1 GiB).
pub const MAX_COMPOUND_ORDER: u32 = 18;
/// Bytes in one percpu unit (one CPU's share of a chunk).
pub const PERCPU_UNIT_SIZE: u64 = 8 * PAGE_SIZE;
/// Allocation granule inside a percpu unit.
pub const PERCPU_GRANULE: u64 = 16;
/// Fault reports waiting for the administrator, per space.
pub const REPORTS_PER_SPACE: usize = 8;
/// Quota of a client the administrator has not set one for, in bytes.
pub const DEFAULT_QUOTA_BYTES: u64 = 64 * LARGE_PAGE_SIZE;
/// Frames such a client's requests may make the server allocate: its byte
/// quota in 4 KiB frames.
pub const DEFAULT_QUOTA_FRAMES: u64 = DEFAULT_QUOTA_BYTES / PAGE_SIZE;
/// Paging structures they may make it create, summed over the spaces, at
/// most (64 MiB of kernel memory); less where [`DEFAULT_SHARE`] of the
/// server's memory holds fewer.
pub const DEFAULT_QUOTA_STRUCTURES: u64 = 16384;
/// Areas, ranges and allocations such a client may hold at once, at most;
/// less where [`DEFAULT_SHARE`] of the server's memory holds fewer of
/// their records.
pub const DEFAULT_QUOTA_AREAS: u64 = 16384;
/// A client the administrator set no counts for may make structures and
/// hold records of at most 1/`DEFAULT_SHARE` of the memory the server was
/// given (so sixteen such clients at their limits leave memory for the
/// rest): the kinds its bytes do not bound.
pub const DEFAULT_SHARE: u64 = 16;
/// Bytes of one paging structure.
pub const STRUCTURE_BYTES: u64 = PAGE_SIZE;
/// Bytes of the server's heap one area, range or allocation takes at most
/// (its record in the tables that hold it).
pub const RECORD_BYTES: u64 = 256;

const _: () = assert!(MAX_VMAP_FRAMES <= MAX_PAGES_PER_OP);
const _: () = assert!(PERCPU_UNIT_SIZE.is_multiple_of(PAGE_SIZE) && PERCPU_GRANULE.is_power_of_two());
