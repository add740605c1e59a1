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
//! `revoke_frame` = a Page Unmap per mapping (the copies are kept);
//! `create_structure` = a batched-retype or kept structure plus its Map;
//! `delete_structure` = its Unmap (it is kept for reuse); `map_frame` = a
//! CNode Copy of the frame cap (first time in a space, but one space maps
//! the original) plus Page Map;
//! `unmap_frame` = Page Unmap. Only the creating operations can fail;
//! removal of objects the server owns cannot.

use core::fmt::Debug;
use memserver_protocol::counts::{Counts, Kind};

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

    /// A new zeroed frame of `size`.
    fn alloc_frame(&mut self, size: PageSize) -> Result<Self::Frame, BackendError>;
    /// Return a frame that has no copies left.
    fn free_frame(&mut self, frame: Self::Frame);
    /// Remove every copy of `frame`, in every space, in one step.
    fn revoke_frame(&mut self, frame: Self::Frame);
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
}

/// Kinds of backend operation, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// [`Backend::alloc_frame`].
    AllocFrame,
    /// [`Backend::free_frame`].
    FreeFrame,
    /// [`Backend::revoke_frame`].
    RevokeFrame,
    /// [`Backend::create_structure`].
    CreateStructure,
    /// [`Backend::delete_structure`].
    DeleteStructure,
    /// [`Backend::map_frame`].
    MapFrame,
    /// [`Backend::unmap_frame`].
    UnmapFrame,
}

impl OpKind {
    /// Every kind, in counter order.
    pub const ALL: [OpKind; 7] = [
        OpKind::AllocFrame,
        OpKind::FreeFrame,
        OpKind::RevokeFrame,
        OpKind::CreateStructure,
        OpKind::DeleteStructure,
        OpKind::MapFrame,
        OpKind::UnmapFrame,
    ];
}

impl Kind for OpKind {
    fn index(self) -> usize {
        self as usize
    }
}

/// Backend operations performed, by kind.
pub type OpCounts = Counts<OpKind, { OpKind::ALL.len() }>;
