//! The narrow trait through which the server changes MMU and capability
//! state, with the per-kind operation counters both implementations share.
//!
//! On seL4 (`sel4::backend`) each method is a small fixed set of
//! invocations: `alloc_frame` = a frame from a batched Untyped Retype, or a
//! recycled one zeroed (when no memory of any kind is left, first a reset
//! of a 2 MiB granule of untyped memory none of whose objects is in use:
//! its window mappings' Page Unmaps and one CNode Revoke); `free_frame` =
//! none (the frame is kept for reuse until its granule is reset: deleting
//! it alone would not give its memory back to the untyped);
//! `unmap_everywhere` = a Page Unmap per mapping (the copies are kept);
//! `create_structure` = a batched-retype or kept structure plus its Map;
//! `delete_structure` = its Unmap (it is kept for reuse); `map_frame` = a
//! CNode Copy of the frame cap (first time in a space, but one space maps
//! the original) plus Page Map;
//! `unmap_frame` = Page Unmap; `remap_frame` = Page Remap of the copy
//! that maps it. Only the creating operations and `remap_frame` can fail;
//! removal of objects the server owns cannot.

use core::fmt::Debug;
use memserver_protocol::counts::{Counts, Kind};
use memserver_protocol::{ErrorCode, FailurePoint, InvocationCounts};
use strum::VariantArray;

use crate::error::BackendError;
use crate::ids::SpaceId;
use crate::layout::{Level, PageSize, RegionAddr};

/// Access rights of a mapping. Read is always granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rights {
    /// Read only.
    ReadOnly,
    /// Read and write.
    ReadWrite,
}

/// Whose data a frame holds: one client's tenure of its badge, from when
/// it comes to hold anything (areas, ranges, allocations) until it holds
/// nothing again, so a badge given to another program later is another
/// holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Holder(pub u32);

/// For whom a new frame is, and whether it must hold zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameFor {
    /// The holder whose data alone it will hold, if one client's.
    pub holder: Option<Holder>,
    /// Whether it must hold zeros. If not, a recycled frame that last held
    /// `holder`'s data may come as `holder` left it; any other is zeroed.
    pub zeroed: bool,
}

impl FrameFor {
    /// Zeroed, for data of no single client.
    pub const SHARED: FrameFor = FrameFor { holder: None, zeroed: true };

    /// For `holder`'s data alone, zeroed if `zeroed`.
    pub const fn client(holder: Option<Holder>, zeroed: bool) -> FrameFor {
        FrameFor { holder, zeroed }
    }

    /// Whether a recycled frame that last held `last`'s data may skip its
    /// zeroing.
    pub fn may_skip_zeroing(self, last: Option<Holder>) -> bool {
        !self.zeroed && self.holder.is_some() && self.holder == last
    }
}

/// A registered address space as the backend sees it: the server's id for it
/// (stable while registered, below `MAX_SPACES`, usable to index
/// backend-side tables) and the handle the root task supplied at registration
/// (on seL4, the VSpace capability).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpaceRef<V> {
    /// The server's id of the space.
    pub id: SpaceId,
    /// The backend handle of the space.
    pub vspace: V,
}

/// The MMU and capability operations the server needs, and no more.
pub trait Backend {
    /// A frame: opaque, chosen by the backend (on seL4 the original cap).
    type Frame: Copy + Eq + Debug;
    /// A paging structure installed in one space.
    type Structure: Copy + Eq + Debug;
    /// A registered address space's handle (on seL4 a VSpace cap).
    type VSpace: Copy + Eq + Debug;

    /// A new frame of `size` for `user`: zeroed, unless [`FrameFor`] lets
    /// it come as its holder left it.
    fn alloc_frame(&mut self, size: PageSize, user: FrameFor) -> Result<Self::Frame, BackendError>;
    /// Return a frame that has no copies left.
    fn free_frame(&mut self, frame: Self::Frame);
    /// Unmap every mapping of the owned `frame`, in every space, in one
    /// step (before it is freed; the backend may keep its copies for
    /// reuse).
    fn unmap_everywhere(&mut self, frame: Self::Frame);
    /// Create a structure of `level` in `space`, covering `addr`, and link it
    /// into the structure above (which must exist).
    fn create_structure(
        &mut self,
        space: SpaceRef<Self::VSpace>,
        level: Level,
        addr: RegionAddr,
    ) -> Result<Self::Structure, BackendError>;
    /// Delete a structure (with no entries left) from `space`.
    fn delete_structure(&mut self, space: SpaceRef<Self::VSpace>, structure: Self::Structure);
    /// Map a copy of `frame` at `addr` in `space`; the structure that holds
    /// the leaf must exist.
    fn map_frame(
        &mut self,
        space: SpaceRef<Self::VSpace>,
        addr: RegionAddr,
        frame: Self::Frame,
        size: PageSize,
        rights: Rights,
    ) -> Result<(), BackendError>;
    /// Unmap the copy of `frame` at `addr` in `space` and delete it.
    fn unmap_frame(&mut self, space: SpaceRef<Self::VSpace>, addr: RegionAddr, frame: Self::Frame);
    /// Sets `bytes` bytes of the owned 4 KiB `frame`, mapped in the region,
    /// from `offset` on, to zero (a percpu range reused, for its new
    /// allocation to start as zeros); `Err` with nothing written.
    fn zero_part(&mut self, frame: Self::Frame, offset: u64, bytes: u64) -> Result<(), BackendError>;
    /// Give up a frame a client supplied ([`Platform::borrow_frame`]),
    /// mapped nowhere any more: the backend drops what it held of it (on
    /// seL4, its capability copies); the frame itself stays the client's.
    fn return_frame(&mut self, frame: Self::Frame);
    /// Makes room in the backend's records for new space `space`'s
    /// mappings of `frames` (those of the region's leaves), before any is
    /// made, so that a registration short of the server's memory fails
    /// before its first invocation (and its retry, once the heap grew,
    /// redoes none).
    fn reserve_mappings(
        &mut self,
        space: SpaceId,
        frames: impl Iterator<Item = Self::Frame>,
    ) -> Result<(), BackendError>;
    /// Makes room in the backend's records for mappings of each of
    /// `frames` (a map's pages, in the canonical table and in no space
    /// yet) in `spaces` spaces, before any is made, so that a map short of
    /// the server's memory fails before its first Page Map (and its retry,
    /// once the heap grew, redoes only its frames' retypes).
    fn reserve_new_mappings(
        &mut self,
        frames: impl Iterator<Item = Self::Frame>,
        spaces: usize,
    ) -> Result<(), BackendError>;
    /// Whether an allocation of the server's own records failed since the
    /// request began: its heap, not the memory for frames and structures,
    /// ran out, and growing the heap is the remedy.
    fn heap_short(&self) -> bool;
    /// Give the mapping of `frame` at `addr` in `space` (which
    /// [`Backend::map_frame`] made) `rights` instead of those it has.
    fn remap_frame(
        &mut self,
        space: SpaceRef<Self::VSpace>,
        addr: RegionAddr,
        frame: Self::Frame,
        rights: Rights,
    ) -> Result<(), BackendError>;
}

/// What the server needs from a backend beyond [`Backend`]: starting it,
/// facts for replies and statistics, releasing a space's state, failure
/// injection, and the slot capabilities arrive in. The server reaches all
/// of it through [`Region`](crate::Region) alone.
pub trait Platform: Backend {
    /// What the backend starts from (on seL4, its slots and untyped grant).
    type Start<'a>;
    /// Takes over what `start` names; once, before the first request.
    fn start(&mut self, start: Self::Start<'_>) -> Result<(), BackendError>;
    /// The physical address of `frame` (on the simulator, any stable id).
    fn frame_address(&mut self, frame: Self::Frame) -> u64;
    /// Kernel invocations made so far, by kind.
    fn invocations(&self) -> InvocationCounts;
    /// Bytes of memory not yet turned into frames or structures.
    fn untyped_free(&self) -> u64;
    /// Gives up the handle of space `id`, just unregistered, and whatever
    /// the backend kept for it.
    fn release_vspace(&mut self, id: SpaceId, vspace: Self::VSpace);
    /// Capability slots the backend has for its objects and copies, free
    /// or not.
    fn slots(&self) -> u64;
    /// Empty capability slots left.
    fn free_slots(&self) -> u64;
    /// Objects held ready or kept for reuse (each in a slot), and the
    /// bytes of memory they hold: resources not in use.
    fn spares(&self) -> (u64, u64);
    /// Makes the `nth` invocation of kind `point` from now fail (0
    /// disarms); `Err` if this platform cannot inject failures.
    fn inject_failure(&mut self, point: FailurePoint, nth: u32) -> Result<(), ErrorCode>;
    /// An empty slot for the next capability that arrives with a message
    /// (it is a space's handle once kept); `None` when no slot is left:
    /// capabilities are then not received.
    fn take_receive_slot(&mut self) -> Option<Self::VSpace>;
    /// Deletes the capability that arrived in `slot` and was not kept, so
    /// that the slot can receive again.
    fn empty_receive_slot(&mut self, slot: Self::VSpace);
    /// The 4 KiB frame whose capability is in slot `index` (resolved with
    /// `depth` bits) of the CNode whose capability arrived in `cnode`,
    /// held by the server with at most `rights` until
    /// [`Backend::return_frame`], and its physical address.
    /// `Err(NotAFrame)` when the slot cannot be reached, is empty or holds
    /// anything but a 4 KiB frame; `Err(OutOfMemory)` when the server has
    /// no room to hold it. Nothing else changes.
    fn borrow_frame(
        &mut self,
        cnode: Self::VSpace,
        index: u64,
        depth: u8,
        rights: Rights,
    ) -> Result<(Self::Frame, u64), crate::error::Error>;
    /// Adds at least `bytes` (or as many as memory allows, at least a
    /// page) to the server's own heap; `Err(OutOfMemory)` when not one
    /// page could be added. Nothing else changes.
    fn grow_heap(&mut self, bytes: u64) -> Result<(), BackendError>;
    /// Objects the backend made for the server itself (its heap's frames
    /// and the paging structures of its own VSpace), each in a slot, and
    /// the bytes of memory they hold: memory no client holds.
    fn own_use(&self) -> (u64, u64);
    /// Bytes of the server's own heap its records take.
    fn heap_in_use(&self) -> u64;
}

/// Kinds of backend operation, for counting (every kind, in counter
/// order: `OpKind::VARIANTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, VariantArray)]
pub enum OpKind {
    /// [`Backend::alloc_frame`].
    AllocFrame,
    /// [`Backend::free_frame`].
    FreeFrame,
    /// [`Backend::unmap_everywhere`].
    UnmapEverywhere,
    /// [`Backend::create_structure`].
    CreateStructure,
    /// [`Backend::delete_structure`].
    DeleteStructure,
    /// [`Backend::map_frame`].
    MapFrame,
    /// [`Backend::unmap_frame`].
    UnmapFrame,
    /// [`Backend::remap_frame`].
    RemapFrame,
    /// [`Backend::zero_part`].
    ZeroPart,
}

impl Kind for OpKind {
    fn index(self) -> usize {
        self as usize
    }
}

/// Backend operations performed, by kind.
pub type OpCounts = Counts<OpKind, { OpKind::VARIANTS.len() }>;
