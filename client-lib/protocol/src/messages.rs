//! The requests and replies of the memory server, and the error codes,
//! shared by the client API and the server (which decodes with these very
//! types). Encoded with `postcard`; every message fits the IPC buffer, and
//! the common requests and their replies fit the four message registers
//! seL4's IPC fastpath carries (checked by tests).
//!
//! Stability: the wire code of a variant is its position. New variants go
//! at the end; none is ever reordered or removed within a version.

use crate::invocation_counts::InvocationCounts;
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};
use strum::EnumCount;

/// Label of protocol messages (faults carry their fault type instead).
pub const PROTOCOL_LABEL: u64 = 0;

/// Label of a ping: the server answers it at once with an empty message,
/// without decoding, so its round trip is the raw seL4 IPC cost that a
/// request's cost is measured against.
pub const PING_LABEL: u64 = 0x9;

/// The protocol version a client announces in [`Request::Hello`].
pub const PROTOCOL_VERSION: u16 = 10;

/// A request to the memory server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize, EnumCount)]
pub enum Request {
    /// First contact: the client's protocol version.
    Hello {
        /// [`PROTOCOL_VERSION`] of the client.
        version: u16,
    },
    /// Allocate `size` bytes of zeroed virtual memory in the vmalloc area;
    /// `large_pages` asks for the largest pages the size allows: 1 GiB
    /// pages for a multiple of 1 GiB, else 2 MiB pages from 2 MiB on (the
    /// size rounded up to them); the area is aligned to its page size.
    Vmalloc {
        /// Bytes (rounded up to whole pages).
        size: u64,
        /// Use 1 GiB or 2 MiB pages where the size allows.
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
    /// compound pages of that order. Refused with [`ErrorCode::NotOwner`]
    /// if any of the pfns, or any pfn whose descriptor shares a 4 KiB
    /// descriptor frame with theirs (64 pfns per frame), is in another
    /// client's range; with [`ErrorCode::Overlap`] if the range lies partly
    /// in one of the caller's. A range the caller populated whole already
    /// is `Done` and charged nothing more.
    VmemmapPopulate {
        /// First page frame number.
        start_pfn: u64,
        /// Number of page frames.
        nr_pages: u64,
        /// Order of the compound pages the range holds (0: none).
        compound_order: u8,
        /// Back the descriptors with 2 MiB frames where a whole 2 MiB of
        /// them is in the range (Linux's `vmemmap_populate_hugepages`).
        huge: bool,
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
        space: u16,
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
    /// Administrator only: take the oldest pending report of a real fault
    /// (see [`crate::bootstrap`]: the server signals the administrator's
    /// notification while reports are pending).
    TakeFault,
    /// [`Request::Vmalloc`] with Linux's `__vmalloc_node_range` options:
    /// alignment, guard pages, and whether the server may purge freed
    /// areas to make room. `InvalidArgument` for an alignment that is not a
    /// power of two or is above 1 GiB.
    VmallocWith {
        /// Bytes (rounded up to whole pages).
        size: u64,
        /// How to place and back it.
        options: VmallocOptions,
    },
    /// Resize the caller's vmalloc area at `addr` to `size` bytes (rounded
    /// up to its pages), contents kept up to the smaller size (Linux's
    /// `vrealloc`): in place when shrinking, or when the addresses after
    /// it are free (only the tail is mapped or unmapped, in every space);
    /// otherwise the area moves (its frames mapped at a new address of
    /// the same alignment) and the reply says so. `InvalidArgument` for
    /// size 0 (free it instead) or a vmap area (its frames are the
    /// caller's).
    Vrealloc {
        /// The area's first address.
        addr: u64,
        /// Its new size in bytes.
        size: u64,
    },
    /// Give the caller's vmalloc or vmap area at `addr` new rights in
    /// every space at once (Linux's `set_memory_ro` / `set_memory_rw` over
    /// the whole area): a write to a read-only area from any space is
    /// reported as a fault at its address, never repaired. `NotOwner` for
    /// another client's area, `NotFound` where no live area starts;
    /// `InvalidArgument` to make a vmap of frames given read-only
    /// writable.
    Protect {
        /// The area's first address.
        addr: u64,
        /// Its new rights.
        protection: Protection,
    },
    /// Map `pages` frames of the caller contiguously in the vmalloc area
    /// of every space (Linux's `vmap` / `vm_map_ram`), one guard page
    /// after them; the reply is the area's address, freed with
    /// [`Request::Vfree`]. The frames travel as the CNode capability that
    /// comes with the message: its slots `first..first + pages`, each
    /// resolved with `depth` bits, hold 4 KiB frame capabilities. Every
    /// frame must lie in the physical memory the administrator granted the
    /// caller ([`Request::GrantFrames`]): frames only the system gave it,
    /// which it cannot revoke under the server. The server maps copies of
    /// them, never frees or zeroes them, and deletes its copies when the
    /// area is purged. `InvalidArgument` without a capability or for 0 or
    /// more than [`Request::MAX_VMAP_PAGES`] pages; `NotAFrame` when a slot
    /// is empty, holds no frame, or cannot be reached; `ForeignFrame` for a
    /// frame outside the caller's grant. With `ReadOnly` the area can never
    /// be made writable.
    Vmap {
        /// The first slot of the CNode that holds a frame.
        first: u64,
        /// How many frames, in consecutive slots.
        pages: u32,
        /// Bits of a slot index in that CNode (its radix, for a CNode with
        /// no guard).
        depth: u8,
        /// The area's rights.
        protection: Protection,
    },
    /// [`Request::VmemmapPopulate`] of hot-added memory whose descriptors
    /// live in that memory (Linux's memmap_on_memory): the descriptors of
    /// the `nr_pages` pfns from `start_pfn` (both multiples of 64, the
    /// pfns of one 4 KiB descriptor frame) are backed by the caller's
    /// frames in slots `first..` of the CNode that comes with the message
    /// (each resolved with `depth` bits), one per 64 pfns, in order. Each
    /// frame must lie in the memory granted to the caller (`ForeignFrame`)
    /// and in the range it describes (`InvalidArgument`); the range must
    /// not be populated in part or whole (`Overlap`). The frames stay the
    /// caller's: [`Request::VmemmapDepopulate`] unmaps them and the server
    /// gives up its copies. `InvalidArgument` without a capability, for an
    /// unaligned range, or for more than [`Request::MAX_VMAP_PAGES`]
    /// frames; `NotAFrame` as for [`Request::Vmap`].
    VmemmapPopulateFrom {
        /// First page frame number (a multiple of 64).
        start_pfn: u64,
        /// Number of page frames (a multiple of 64).
        nr_pages: u64,
        /// The slot of the first descriptor frame in the CNode.
        first: u64,
        /// Bits of a slot index in that CNode.
        depth: u8,
    },
    /// Administrator only: the frames of `client` that [`Request::Vmap`]
    /// accepts are those in the `bytes` of physical memory from `start`
    /// (both page aligned; 0 bytes: none). The system that gives a client
    /// frames grants their memory here, after its registration; the grant
    /// lasts until the client has no registered space left.
    GrantFrames {
        /// The client's endpoint badge.
        client: u64,
        /// The physical address of the first frame.
        start: u64,
        /// Bytes from there.
        bytes: u64,
    },
}

impl Request {
    /// The most frames one [`Request::Vmap`] maps.
    pub const MAX_VMAP_PAGES: u32 = 256;
}

/// The rights [`Request::Protect`] gives an area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Protection {
    /// Readable only: a write from any space is a reported fault.
    ReadOnly,
    /// Readable and writable.
    ReadWrite,
}

/// What [`Request::Vrealloc`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Realloc {
    /// The area's first address now.
    pub addr: u64,
    /// Whether it moved there (the old address is unmapped).
    pub moved: bool,
}

/// The options of [`Request::VmallocWith`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct VmallocOptions {
    /// Alignment of the area's first address in bytes: a power of two up
    /// to [`VmallocOptions::MAX_ALIGN`] (below 4 KiB it is 4 KiB; with
    /// large pages at least their size).
    pub align: u64,
    /// Unmapped pages after the area, where an overrun faults (Linux has
    /// one; 0 is its `VM_NO_GUARD`). Guard pages beyond the first are
    /// charged to the caller's bytes, as the address space they take.
    pub guard_pages: u32,
    /// Use 2 MiB pages from 2 MiB on (the size rounded up to them).
    pub large_pages: bool,
    /// Use 1 GiB pages for a size that is a multiple of 1 GiB (each from
    /// 1 GiB of the server's untyped memory none of whose objects is in
    /// use); where none is to be had, 2 MiB pages if `large_pages`, else
    /// `OutOfMemory`.
    pub huge_pages: bool,
    /// Fail at once instead of purging lazily freed areas when they stand
    /// in the way (Linux's non-blocking allocations): the reply is then
    /// the error the purge would have cured.
    pub no_purge: bool,
    /// Zero the area's frames (Linux's `vzalloc`; its plain `vmalloc`
    /// does not). Off, a frame that last held the caller's own data may
    /// come as the caller left it, saving the zeroing; one that held
    /// another client's data, or data of no single client, is zeroed all
    /// the same, so no area ever shows another's data.
    pub zero: bool,
}

impl VmallocOptions {
    /// The largest alignment: 1 GiB.
    pub const MAX_ALIGN: u64 = 1 << 30;
    /// What [`Request::Vmalloc`] does with 4 KiB pages: page aligned, one
    /// guard page, purging when it helps, zeroed.
    pub const DEFAULT: VmallocOptions = VmallocOptions {
        align: 4096,
        guard_pages: 1,
        large_pages: false,
        huge_pages: false,
        no_purge: false,
        zero: true,
    };

    /// [`VmallocOptions::DEFAULT`] aligned to `align`.
    pub const fn aligned(align: u64) -> VmallocOptions {
        VmallocOptions { align, ..Self::DEFAULT }
    }
}

/// Number of [`Request`] variants: a message whose operation number is at
/// or above this is an unknown operation rather than a malformed one.
/// Derived from the enum.
pub const REQUESTS: u32 = Request::COUNT as u32;

/// What a client may hold, set by the administrator at registration.
/// Exceeding any part is `QuotaExceeded` for that client's request alone.
/// A count of [`Quota::DEFAULT_SHARE`] is the server's default share of
/// that kind (a bounded part of what it has), [`Quota::NO_LIMIT`] none.
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
    /// A count that stands for the server's default share of its kind.
    pub const DEFAULT_SHARE: u32 = u32::MAX;
    /// A count that no client reaches: no limit on its kind.
    pub const NO_LIMIT: u32 = u32::MAX - 1;

    /// `bytes`, and the server's default share of frames, structures and
    /// areas.
    pub const fn bytes(bytes: u64) -> Quota {
        Quota { bytes, frames: Self::DEFAULT_SHARE, structures: Self::DEFAULT_SHARE, areas: Self::DEFAULT_SHARE }
    }

    /// `bytes`, and no limit on frames, structures or areas (for a client
    /// the administrator trusts with as many as its bytes allow).
    pub const fn bytes_only(bytes: u64) -> Quota {
        Quota { bytes, frames: Self::NO_LIMIT, structures: Self::NO_LIMIT, areas: Self::NO_LIMIT }
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
    /// Page Map or Remap, or paging-structure Map (fails with
    /// `FailedLookup`).
    Map,
}

/// Where the kernel region's areas are, for clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct RegionInfo {
    /// First address of the vmalloc area.
    pub vmalloc_start: u64,
    /// First address of the vmemmap area (the descriptor of pfn 0).
    pub vmemmap_start: u64,
    /// Where the percpu units are and what an offset means.
    pub percpu: PercpuLayout,
}

impl RegionInfo {
    /// The address of percpu `offset` in CPU `cpu`'s unit (see
    /// [`PercpuLayout::address`]).
    pub const fn percpu_address(&self, offset: u32, cpu: u16) -> Option<u64> {
        self.percpu.address(offset, cpu)
    }

    /// The address of pfn `pfn`'s 64-byte page descriptor.
    pub fn descriptor_address(&self, pfn: u64) -> u64 {
        self.vmemmap_start + pfn * DESCRIPTOR_SIZE
    }
}

/// The percpu area's geometry, and the one definition of a percpu offset
/// and its address, which the server maps by and clients compute with.
///
/// A chunk holds one unit of `unit_size` bytes for each of `cpus` CPUs,
/// side by side; chunk `c` starts `c * chunk_stride` bytes into the area
/// (the stride leaves room for the units of every CPU the server can
/// serve). As in Linux, an offset names the same place in every unit:
/// byte `o` of chunk `c`'s units is offset `c * chunk_stride + o`, and
/// its copy for CPU `cpu` is at `start + offset + cpu * unit_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct PercpuLayout {
    /// First address of the percpu area: unit 0 of chunk 0.
    pub start: u64,
    /// Bytes of one CPU's unit, and between consecutive CPUs' units.
    pub unit_size: u64,
    /// Bytes between the starts of consecutive chunks (a multiple of
    /// `unit_size`, at least `cpus` units).
    pub chunk_stride: u64,
    /// CPUs that have a unit in every chunk.
    pub cpus: u16,
}

impl PercpuLayout {
    /// The offset of byte `in_unit` of chunk `chunk`'s units, if that is a
    /// byte of a unit and fits an offset.
    pub const fn offset(&self, chunk: u32, in_unit: u64) -> Option<u32> {
        if in_unit >= self.unit_size {
            return None;
        }
        let Some(base) = (chunk as u64).checked_mul(self.chunk_stride) else { return None };
        match base.checked_add(in_unit) {
            Some(raw) if raw <= u32::MAX as u64 => Some(raw as u32),
            _ => None,
        }
    }

    /// The chunk `offset` lies in.
    pub const fn chunk(&self, offset: u32) -> u32 {
        match self.chunk_stride {
            0 => 0,
            stride => (offset as u64 / stride) as u32,
        }
    }

    /// The byte of the unit `offset` names.
    pub const fn in_unit(&self, offset: u32) -> u64 {
        match self.chunk_stride {
            0 => offset as u64,
            stride => offset as u64 % stride,
        }
    }

    /// The address of `offset` in CPU `cpu`'s unit: `start + offset + cpu *
    /// unit_size`. `None` if `cpu` has no unit or `offset` lies between the
    /// last unit of a chunk and the next chunk (it names no unit's byte).
    pub const fn address(&self, offset: u32, cpu: u16) -> Option<u64> {
        if cpu >= self.cpus || self.in_unit(offset) >= self.unit_size {
            return None;
        }
        match (cpu as u64).checked_mul(self.unit_size) {
            Some(unit) => self.start.checked_add(offset as u64 + unit),
            None => None,
        }
    }
}

/// Size of one page descriptor ("struct page") in the vmemmap area.
pub const DESCRIPTOR_SIZE: u64 = 64;

/// Bytes covered by one top-level (PML4) entry: 512 GiB.
pub const TOP_ENTRY_SPAN: u64 = 1 << 39;

/// A translation of a kernel-region address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Translation {
    /// Physical address the virtual address translates to.
    pub paddr: u64,
    /// The size of the page it lies in.
    pub page: Page,
    /// Writable (otherwise read-only).
    pub writable: bool,
}

/// The size of a mapped page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum Page {
    /// 4 KiB.
    Small,
    /// 2 MiB.
    Large,
    /// 1 GiB.
    Huge,
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
    /// Paging structures the server created in registered spaces that
    /// hold mappings (those a purge kept empty count as spare objects).
    pub structures: u64,
    /// seL4 invocations the server has made, by kind.
    pub invocations: InvocationCounts,
    /// Bytes of untyped memory the server has not retyped yet.
    pub untyped_free: u64,
    /// Capability slots of the server's CNodes (those it was given and
    /// those it made from its memory), the bootstrap contract's excluded.
    pub slots: u64,
    /// Empty slots among them.
    pub free_slots: u64,
    /// Objects retyped earlier and kept unused for reuse (each holds a
    /// slot): objects retyped ahead, recycled frames and structures, kept
    /// unmapped frame copies, and the paging structures a purge kept empty
    /// for the next mappings in their range.
    pub spare_objects: u64,
    /// Bytes of untyped memory those spare objects hold.
    pub spare_bytes: u64,
    /// Objects the server made for itself (its heap's frames and its own
    /// paging structures; each holds a slot).
    pub own_objects: u64,
    /// Bytes of untyped memory those objects and the CNodes the server made
    /// for its slots hold: metadata memory, held for no client.
    pub own_bytes: u64,
    /// Bytes of the server's heap its records take (the allocator's count
    /// of live allocations; 0 where the heap is the host's).
    pub heap_bytes: u64,
    /// vmalloc and vmap areas, live or awaiting the purge.
    pub vmalloc_areas: u32,
    /// Populated vmemmap ranges.
    pub vmemmap_ranges: u32,
    /// Live percpu allocations.
    pub percpu_allocs: u32,
}

/// What [`Request::Register`] made: the space and its fault identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct Registration {
    /// The new space's id.
    pub space: u16,
    /// The badge the space's threads' fault endpoint must carry (see
    /// [`crate::bootstrap::FaultBadge`]); the server accepts fault
    /// messages with it only while this registration lasts.
    pub fault_badge: u64,
}

/// What kind of real fault the server reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub enum FaultKind {
    /// A read of an address nothing maps.
    UnmappedRead,
    /// A write of an address nothing maps.
    UnmappedWrite,
    /// A write of a read-only mapping.
    ReadOnlyWrite,
    /// Any other exception (invalid opcode, ...): the thread is broken.
    Exception,
}

/// A real fault the server could not repair: the faulting thread stays
/// blocked until the administrator restarts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize)]
pub struct FaultReport {
    /// The faulting thread's space id.
    pub space: u16,
    /// The address it touched (for exceptions: its instruction pointer).
    pub addr: u64,
    /// Its instruction pointer.
    pub ip: u64,
    /// What kind of fault it was.
    pub kind: FaultKind,
    /// Reports of the same space the server dropped, its queue for the
    /// space being full, since the one taken before this.
    pub dropped: u32,
}

/// A reply from the memory server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize, EnumCount)]
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
    /// Answer to [`Request::Register`]: the new space and its fault badge.
    Space(Registration),
    /// Answer to [`Request::TakeFault`]: the oldest pending report, if any.
    Fault(Option<FaultReport>),
    /// Answer to [`Request::Vrealloc`].
    Realloc(Realloc),
}

/// Number of [`Reply`] variants, derived from the enum.
pub const REPLIES: u32 = Reply::COUNT as u32;

/// Why a request failed. Stable wire codes (in a reply in registers, the
/// variant's number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, MaxSize, strum::FromRepr)]
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
    /// The area belongs to another client; for a vmemmap populate, a pfn
    /// of the range or a descriptor frame it needs is in another client's
    /// range.
    NotOwner,
    /// Only the administrator may do this.
    NotAdmin,
    /// No address space with that id is registered.
    NoSuchSpace,
    /// That address space (also through another capability to it, or any
    /// VSpace that maps something where the region goes) is already
    /// registered.
    AlreadyRegistered,
    /// A fixed limit of the server was reached.
    LimitReached,
    /// seL4 refused an operation the server made (a capability problem).
    Kernel,
    /// The caller has no address space registered with the server.
    NotRegistered,
    /// A slot [`Request::Vmap`] names is empty, holds no 4 KiB frame, or
    /// cannot be reached in the CNode that came with the request.
    NotAFrame,
    /// A frame [`Request::Vmap`] names lies outside the memory granted to
    /// the caller ([`Request::GrantFrames`]).
    ForeignFrame,
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
        let last = Request::GrantFrames { client: 0, start: 0, bytes: 0 };
        let mut buf = [0u8; 8];
        assert_eq!(postcard::to_slice(&last, &mut buf).unwrap()[0] as u32, REQUESTS - 1);
    }

    /// The layout the server announces: 4 CPUs, 32 KiB units, chunks 256 KiB apart.
    const PERCPU: PercpuLayout =
        PercpuLayout { start: 0x7280_0000_0000, unit_size: 32 << 10, chunk_stride: 256 << 10, cpus: 4 };

    #[test]
    fn a_percpu_offset_names_the_same_byte_of_every_unit_of_its_chunk() {
        for chunk in 0..8 {
            for in_unit in [0, 8, PERCPU.unit_size - 1] {
                let offset = PERCPU.offset(chunk, in_unit).unwrap();
                assert_eq!((PERCPU.chunk(offset), PERCPU.in_unit(offset)), (chunk, in_unit));
                let chunk_start = PERCPU.start + chunk as u64 * PERCPU.chunk_stride;
                for cpu in 0..PERCPU.cpus {
                    let expected = chunk_start + cpu as u64 * PERCPU.unit_size + in_unit;
                    assert_eq!(PERCPU.address(offset, cpu), Some(expected));
                }
            }
        }
    }

    #[test]
    fn a_percpu_address_exists_only_in_a_unit() {
        assert_eq!(PERCPU.offset(1, PERCPU.unit_size), None, "past the end of the unit");
        assert_eq!(PERCPU.offset(u32::MAX, 0), None, "does not fit an offset");
        assert_eq!(PERCPU.address(0, PERCPU.cpus), None, "no such CPU");
        assert_eq!(PERCPU.address(PERCPU.unit_size as u32, 0), None, "between the units and the next chunk");
        let empty = PercpuLayout { chunk_stride: 0, ..PERCPU };
        assert_eq!((empty.chunk(123), empty.address(u32::MAX, 0)), (0, None));
    }

    #[test]
    fn replies_counts_every_variant() {
        let last = Reply::Realloc(Realloc { addr: 0, moved: false });
        let mut buf = [0u8; 8];
        assert_eq!(postcard::to_slice(&last, &mut buf).unwrap()[0] as u32, REPLIES - 1);
    }
}
