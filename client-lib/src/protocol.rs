//! The memory server's wire protocol: requests, replies and error codes,
//! shared by the client API and the server (which decodes with these very
//! types). Encoded with `postcard`; every message fits the IPC buffer, and
//! the common requests and their replies fit the four message registers
//! seL4's IPC fastpath carries (checked by tests).
//!
//! Stability: the wire code of a variant is its position. New variants go
//! at the end; none is ever reordered or removed within a version.

pub use crate::invocation_counts::{Invocation, InvocationCounts};
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// The protocol version a client announces in [`Request::Hello`].
pub const PROTOCOL_VERSION: u16 = 1;

/// A request to the memory server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Request {
    /// First contact: the client's protocol version.
    Hello {
        /// [`PROTOCOL_VERSION`] of the client.
        version: u16,
    },
    /// Allocate `size` bytes of zeroed virtual memory in the vmalloc area;
    /// `large_pages` asks for 2 MiB pages where size and alignment allow.
    Vmalloc {
        /// Bytes (rounded up to whole pages).
        size: u64,
        /// Use 2 MiB pages where possible.
        large_pages: bool,
    },
    /// Free the area at `addr` (the caller's own).
    Vfree {
        /// The area's first address, as vmalloc returned it.
        addr: u64,
    },
    /// Allocate `size` bytes aligned to `align` in every CPU's percpu unit.
    PercpuAlloc {
        /// Bytes in each CPU's unit.
        size: u32,
        /// Alignment (a power of two).
        align: u32,
    },
    /// Free the percpu allocation at `offset`.
    PercpuFree {
        /// The offset percpu alloc returned.
        offset: u32,
    },
    /// How the kernel region maps `addr` (canonical table).
    Translate {
        /// Any address.
        addr: u64,
    },
    /// Back the page descriptors of `nr_pages` pfns from `start_pfn`;
    /// `compound_order` > 0 applies the compound-page optimisation for
    /// compound pages of that order.
    VmemmapPopulate {
        /// First page frame number.
        start_pfn: u64,
        /// Number of page frames.
        nr_pages: u64,
        /// Order of the compound pages the range holds (0: none).
        compound_order: u8,
    },
    /// Free the descriptor frames of a pfn range (memory hot-remove).
    VmemmapDepopulate {
        /// First page frame number of a populated range.
        start_pfn: u64,
        /// Its number of page frames.
        nr_pages: u64,
    },
    /// Server statistics.
    Stats,
    /// Administrator only: register the address space whose VSpace
    /// capability travels with the message, for the client whose endpoint
    /// badge is `client`, which may then hold what `quota` allows. The
    /// reply names the space; it holds the whole region already.
    Register {
        /// The client's endpoint badge.
        client: u64,
        /// What the client may hold.
        quota: Quota,
    },
    /// Administrator only: remove address space `space`; what its client
    /// owned is reclaimed when it has no other space.
    Unregister {
        /// The id [`Request::Register`] returned.
        space: u8,
    },
    /// Administrator only: unmap every lazily freed vmalloc area now (like
    /// Linux's `vm_unmap_aliases`), make its addresses reusable and refund
    /// its owner, who is charged for it until then.
    Purge,
    /// Administrator only: make the `nth` invocation of kind `point` from
    /// now on fail as seL4 would (`nth` = 0 disarms). For failure-injection
    /// tests; a server built without support answers `UnknownOperation`.
    InjectFailure {
        /// Which kind of invocation fails.
        point: FailurePoint,
        /// Which one, counting from 1.
        nth: u32,
    },
}

/// Number of [`Request`] variants: a message whose operation number is at
/// or above this is an unknown operation rather than a malformed one.
pub const REQUESTS: u32 = 13;

/// What a client may hold, set by the administrator at registration.
/// Exceeding any part is `QuotaExceeded` for that client's request alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Quota {
    /// Bytes of region memory (vmalloc sizes, vmemmap descriptor bytes,
    /// percpu sizes times the CPUs).
    pub bytes: u64,
    /// Frames its requests made the server allocate.
    pub frames: u32,
    /// Paging structures its requests made the server create, in all spaces.
    pub structures: u32,
    /// Live vmalloc areas, vmemmap ranges and percpu allocations.
    pub areas: u32,
}

impl Quota {
    /// A limit on bytes only.
    pub const fn bytes(bytes: u64) -> Quota {
        Quota { bytes, frames: u32::MAX, structures: u32::MAX, areas: u32::MAX }
    }
}

/// Kinds of seL4 invocation a failure can be injected into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum FailurePoint {
    /// Obtaining a frame or paging structure, fresh or recycled (fails as
    /// an Untyped Retype without memory would: `NotEnoughMemory`).
    Retype,
    /// CNode Copy of a frame capability (fails with `FailedLookup`).
    Copy,
    /// Page or paging-structure Map (fails with `FailedLookup`).
    Map,
}

/// Where the kernel region's areas are, for clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct RegionInfo {
    /// First address of the vmalloc area.
    pub vmalloc_start: u64,
    /// First address of the vmemmap area (the descriptor of pfn 0).
    pub vmemmap_start: u64,
    /// First address of the percpu area.
    pub percpu_start: u64,
    /// Bytes between consecutive CPUs' percpu units.
    pub percpu_unit_size: u64,
    /// CPUs that have a percpu unit.
    pub cpus: u16,
}

impl RegionInfo {
    /// The address of percpu `offset` in CPU `cpu`'s unit.
    pub fn percpu_address(&self, offset: u32, cpu: u16) -> u64 {
        self.percpu_start + cpu as u64 * self.percpu_unit_size + offset as u64
    }

    /// The address of pfn `pfn`'s 64-byte page descriptor.
    pub fn descriptor_address(&self, pfn: u64) -> u64 {
        self.vmemmap_start + pfn * DESCRIPTOR_SIZE
    }
}

/// Size of one page descriptor ("struct page") in the vmemmap area.
pub const DESCRIPTOR_SIZE: u64 = 64;

/// A translation of a kernel-region address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Translation {
    /// Physical address the virtual address translates to.
    pub paddr: u64,
    /// A 2 MiB page (otherwise 4 KiB).
    pub large: bool,
    /// Writable (otherwise read-only).
    pub writable: bool,
}

/// Server statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Stats {
    /// Faults in the region repaired from the canonical table: in eager
    /// mode this stays 0.
    pub missed_syncs: u64,
    /// Registered address spaces.
    pub spaces: u32,
    /// Frames the server holds (in use).
    pub frames: u64,
    /// Paging structures the server created in registered spaces.
    pub structures: u64,
    /// seL4 invocations the server has made, by kind.
    pub invocations: InvocationCounts,
    /// Bytes of untyped memory the server has not retyped yet.
    pub untyped_free: u64,
    /// Empty slots of the server's CNode.
    pub free_slots: u64,
    /// Objects retyped earlier and kept unused for reuse (each holds a slot).
    pub spare_objects: u64,
    /// Bytes of untyped memory those spare objects hold.
    pub spare_bytes: u64,
    /// vmalloc and vmap areas, live or awaiting the purge.
    pub vmalloc_areas: u32,
    /// Populated vmemmap ranges.
    pub vmemmap_ranges: u32,
    /// Live percpu allocations.
    pub percpu_allocs: u32,
}

/// A reply from the memory server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Reply {
    /// Answer to [`Request::Hello`]: the server's version and the layout.
    Hello {
        /// The server's [`PROTOCOL_VERSION`].
        version: u16,
        /// The region layout.
        region: RegionInfo,
    },
    /// The request succeeded and returns nothing.
    Done,
    /// A virtual address (vmalloc).
    Address(u64),
    /// A percpu offset.
    Offset(u32),
    /// Answer to [`Request::Translate`]: `None` when unmapped.
    Translation(Option<Translation>),
    /// Answer to [`Request::Stats`].
    Stats(Stats),
    /// The request failed and changed nothing.
    Error(ErrorCode),
    /// Answer to [`Request::Register`]: the new space's id.
    Space(u8),
}

/// Number of [`Reply`] variants.
pub const REPLIES: u32 = 8;

/// Why a request failed. Stable wire codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum ErrorCode {
    /// The message could not be decoded.
    Malformed,
    /// The operation number is not one this server knows.
    UnknownOperation,
    /// The client's protocol version differs from the server's.
    VersionMismatch,
    /// The server's memory pool is exhausted.
    OutOfMemory,
    /// The client's quota would be exceeded.
    QuotaExceeded,
    /// A size, alignment, address or range is not acceptable.
    InvalidArgument,
    /// The range overlaps one already in use.
    Overlap,
    /// Nothing is allocated at that address or offset.
    NotFound,
    /// The area belongs to another client.
    NotOwner,
    /// Only the administrator may do this.
    NotAdmin,
    /// No address space with that id is registered.
    NoSuchSpace,
    /// That address space id (or client) is already registered.
    AlreadyRegistered,
    /// A fixed limit of the server was reached.
    LimitReached,
    /// seL4 refused an operation the server made (a capability problem).
    Kernel,
    /// The caller has no address space registered with the server.
    NotRegistered,
}

/// The longest encoding of any request or reply, in bytes.
pub const MAX_MESSAGE_BYTES: usize = if Request::POSTCARD_MAX_SIZE > Reply::POSTCARD_MAX_SIZE {
    Request::POSTCARD_MAX_SIZE
} else {
    Reply::POSTCARD_MAX_SIZE
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_counts_every_variant() {
        let last = Request::InjectFailure { point: FailurePoint::Map, nth: 0 };
        let mut buf = [0u8; 8];
        assert_eq!(postcard::to_slice(&last, &mut buf).unwrap()[0] as u32, REQUESTS - 1);
    }

    #[test]
    fn replies_counts_every_variant() {
        let last = Reply::Space(0);
        let mut buf = [0u8; 8];
        assert_eq!(postcard::to_slice(&last, &mut buf).unwrap()[0] as u32, REPLIES - 1);
    }
}
