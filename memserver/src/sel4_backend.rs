//! The core's [`Backend`] with seL4 invocations, each made through the
//! [`Kernel`] `K` (on seL4 the system calls, `Injecting<Syscalls>`; on the
//! host the model of seL4, `Injecting<sel4_model::Model>`), and the zeroing
//! of recycled frames through [`Zeroing`]. The administrator's failure
//! injection arms the [`Injecting`] wrapper: a Retype, Copy or Map failure
//! point is the n-th Untyped Retype, CNode Copy, or Page Map or Remap or
//! paging-structure Map invocation from now.
//!
//! - Frames and paging structures are retyped in batches (up to 256
//!   objects per Untyped Retype) from 2 MiB granules of untyped memory
//!   ([`UntypedPool`]), so creating one costs a fraction of an invocation.
//!   Unused objects are kept for reuse; when a kind has none left and no
//!   granule has room, a granule none of whose objects is in use is reset
//!   (its window mappings removed, then one CNode Revoke deletes its
//!   objects and their copies) and serves that kind: memory freed by any
//!   use serves every use.
//! - A frame is an original capability the server keeps. One space maps
//!   the original itself until the server needs it (to zero the frame for
//!   reuse); every other space maps a copy (CNode Copy, then Page Map). A
//!   copy is kept after Page Unmap, so a recycled frame maps again with one
//!   Page Map ([`FrameCopies`]). Every mapping is removed with its own Page Unmap:
//!   seL4 5.0.0 removes a mapping on deletion only with the frame's last
//!   capability. New rights for a mapping are one Page Remap of its copy. Freed frames are kept for reuse and zeroed through the
//!   server's own [`Window`].
//! - Paging structures deleted from a space are unmapped and kept for the
//!   next space that needs that level.
//! - The server's own heap grows by 4 KiB frames of the pool mapped at its
//!   end ([`Sel4Backend::grow_heap`], handed to the allocator through
//!   [`HeapMemory`]); the paging structures of the server's own VSpace
//!   (window, scratch address, heap) are made when a page there first
//!   needs one ([`OwnVSpace`]). Both are the server's for good.

use crate::borrowed::Borrowed;
use crate::cspace::{own, through, Slots};
use crate::frame_copies::{CopyFor, FrameCopies, Unmapped};
use crate::granules::{ObjectId, ObjectKind, State, Use, UNITS};
use crate::heap::{HeapGrowth, HeapMemory, HEAP_START};
use crate::own_vspace::OwnVSpace;
use crate::untyped_pool::{caps_in, granules_in, UntypedPool};
use crate::window::{Window, SCRATCH_LARGE, SCRATCH_SMALL};
use crate::zeroing::Zeroing;
use memserver_core::backend::{Backend, FrameFor, Rights, SpaceRef};
use memserver_core::dispatch::Platform;
use memserver_core::error::{BackendError, Error};
use memserver_core::ids::SpaceId;
use memserver_core::layout::{Level, PageSize, RegionAddr, PAGE_SIZE};
use memserver_protocol::bootstrap::{cspace, server_slot};
use memserver_protocol::invocation_counts::{Invocation, InvocationCounts};
use memserver_protocol::{ErrorCode, FailurePoint};
use sel4_layer::abi::{size, CPtr, X86_DEFAULT_VM_ATTRIBUTES};
use sel4_layer::injecting::{Call, Injecting};
use sel4_layer::kernel::Kernel;
use sel4_layer::{CNode, CapRights, PagingLevel, Sel4Error};

/// A frame: its original capability, its object number (which is its
/// index in the server's frame tables), and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The server's original capability to it.
    pub cap: CPtr,
    /// Its object number: its index in the frame tables.
    pub index: u32,
    /// Its size.
    pub size: PageSize,
}

/// A paging structure: the slot of its capability, its object number, and
/// its level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Structure {
    /// The slot of its capability.
    pub cap: CPtr,
    /// Its object number.
    pub id: ObjectId,
    /// Its level.
    pub level: Level,
}

/// Unmapped kept copies given up at once when the server's CNode is full.
const DROP_BATCH: usize = 1024;
/// The VM attributes of every mapping the server makes (write-back).
const ATTRS: u64 = X86_DEFAULT_VM_ATTRIBUTES;

/// What the backend starts from (the bootstrap contract's
/// `ServerStart`, its untypeds listed).
#[derive(Clone, Copy, Debug)]
pub struct Start<'a> {
    /// The first slot of CNode 0 the contract leaves empty.
    pub first_free_slot: CPtr,
    /// The untyped capabilities: slot and size bits.
    pub untypeds: &'a [(CPtr, u8)],
}

/// The server's seL4 state behind the core, and the kernel it invokes.
pub struct Sel4Backend<K> {
    kernel: K,
    slots: Slots,
    pool: UntypedPool,
    counts: InvocationCounts,
    copies: FrameCopies,
    window: Window,
    own: OwnVSpace,
    heap: HeapGrowth,
    borrowed: Borrowed,
    started: bool,
}

fn rejected(e: Sel4Error) -> BackendError {
    match e {
        Sel4Error::NotEnoughMemory => BackendError::OutOfMemory,
        Sel4Error::DeleteFirst => BackendError::Occupied,
        other => BackendError::Rejected(other as u8),
    }
}

/// The seL4 paging level and map invocation of a created structure level
/// (`None` for the PML4, which the server never creates).
fn paging_level(level: Level) -> Option<(PagingLevel, Invocation)> {
    match level {
        Level::Pdpt => Some((PagingLevel::Pdpt, Invocation::MapPdpt)),
        Level::Pd => Some((PagingLevel::PageDirectory, Invocation::MapPd)),
        Level::Pt => Some((PagingLevel::PageTable, Invocation::MapPt)),
        Level::Pml4 => None,
    }
}

/// Deletes a capability in the server's own CNode and frees its slot.
fn delete_cap(kernel: &mut impl Kernel, slots: &mut Slots, counts: &mut InvocationCounts, slot: CPtr) {
    counts.record(Invocation::Delete);
    // Deleting a capability the server created in its own CNode cannot
    // fail.
    let (cnode, index) = own(slot);
    let _ = kernel.cnode_delete(cnode, index);
    slots.give_back(slot);
}

/// Unmaps a copy, keeping a kept one and deleting an extra one.
///
/// The unmap is explicit: seL4 5.0.0 unmaps a frame when a capability is
/// deleted or revoked only if it is the frame's last capability, and the
/// server always holds the original, so deleting a mapped copy would leave
/// its page-table entry behind.
fn dispose(kernel: &mut impl Kernel, slots: &mut Slots, counts: &mut InvocationCounts, unmapped: Unmapped) {
    let (Unmapped::Kept(copy) | Unmapped::Extra(copy)) = unmapped;
    counts.record(Invocation::UnmapPage);
    // Unmapping a copy the server mapped cannot fail.
    let _ = kernel.page_unmap(copy);
    if let Unmapped::Extra(copy) = unmapped {
        delete_cap(kernel, slots, counts, copy);
    }
}

impl<K> Sel4Backend<K> {
    /// An empty backend over `kernel`; see [`Sel4Backend::start`].
    pub const fn new(kernel: K) -> Sel4Backend<K> {
        Sel4Backend {
            kernel,
            slots: Slots::new(),
            pool: UntypedPool::new(),
            counts: InvocationCounts::new(),
            copies: FrameCopies::new(),
            window: Window::new(),
            own: OwnVSpace::new(),
            heap: HeapGrowth::new(),
            borrowed: Borrowed::new(),
            started: false,
        }
    }

    /// The kernel the backend invokes (on the host: the model, to inspect).
    pub fn kernel(&self) -> &K {
        &self.kernel
    }

    /// The kernel, to act on it as another program (on the host: the root
    /// task making a VSpace to register).
    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    /// Objects not in use and the bytes they hold: fresh objects retyped
    /// ahead, recycled frames and structures, and kept unmapped copies.
    pub fn spare_objects(&self) -> (u64, u64) {
        let (objects, bytes) = self.pool.granules.spare();
        (objects + self.copies.kept_unmapped(), bytes)
    }

    /// The server's CNodes and their free slots.
    pub fn cspace(&self) -> &Slots {
        &self.slots
    }

    /// The server's untyped memory: its granules and their objects.
    pub fn pool(&self) -> &UntypedPool {
        &self.pool
    }

    /// Gives back an empty slot [`Sel4Backend::take_slot`] handed out.
    pub fn give_back_slot(&mut self, slot: CPtr) {
        self.slots.give_back(slot);
    }
}

impl<K: Kernel + Zeroing> Sel4Backend<K> {
    /// Takes the free slots of CNode 0 from `start.first_free_slot` and
    /// the untyped caps (split into granules); once (again it does
    /// nothing).
    pub fn start(&mut self, start: Start) -> Result<(), BackendError> {
        if !self.started {
            // CNode 0 sets a slot aside for a CNode of each granule, as far
            // as it keeps a slot for each granule's capability and block's.
            let (granules, keep) = (granules_in(start.untypeds), caps_in(start.untypeds));
            self.slots.start(start.first_free_slot, granules, keep).map_err(|_| BackendError::OutOfMemory)?;
            let (kernel, slots, counts) = (&mut self.kernel, &mut self.slots, &mut self.counts);
            self.pool.start(kernel, start.untypeds, slots, counts).map_err(rejected)?;
            self.started = true;
        }
        Ok(())
    }

    /// Objects made for the server itself (the heap's frames and the
    /// structures of its own VSpace) and the bytes they and the CNodes it
    /// made take.
    pub fn own_use(&self) -> (u64, u64) {
        let objects = self.heap.pages() + self.own.count() as u64;
        let cnodes = self.slots.node_granules().count() as u64;
        (objects, objects * PAGE_SIZE + (cnodes << size::LARGE_PAGE_BITS))
    }

    /// The frame index of borrowed frame number `n`: above every object
    /// of the pool.
    fn borrowed_index(&self, n: u32) -> Option<u32> {
        u32::try_from(self.pool.granules.count() * UNITS).ok()?.checked_add(n)
    }

    /// A copy, in a slot of its own, of the 4 KiB frame at `index` of
    /// `cnode` with at most `rights`, and its physical address.
    ///
    /// Nothing is invoked on the client's capability before it is known
    /// to be a frame: the first copy is read-only, and a read-only
    /// endpoint or notification capability cannot be invoked, so asking
    /// it for an address fails rather than sending a message the server
    /// would wait on. A read-write frame is then copied again with its
    /// rights.
    fn copy_frame(&mut self, cnode: CPtr, index: u64, depth: u8, rights: Rights) -> Result<(CPtr, u64), Error> {
        let (src, index) = through(cnode, index, depth).ok_or(Error::NotAFrame)?;
        let probe = self.copy_in(src, index, CapRights::READ)?;
        self.counts.record(Invocation::GetAddress);
        let paddr = match self.kernel.page_get_address(probe) {
            Ok(paddr) => paddr,
            Err(e) => {
                self.delete(probe);
                return Err(not_a_frame(e));
            }
        };
        if rights == Rights::ReadOnly {
            return Ok((probe, paddr));
        }
        self.delete(probe);
        let copy = self.copy_in(src, index, cap_rights(rights))?;
        Ok((copy, paddr))
    }

    /// A copy of the capability at `index` of `src`, with `rights`, in a
    /// free slot.
    fn copy_in(&mut self, src: CNode, index: u64, rights: CapRights) -> Result<CPtr, Error> {
        let slot = self.take_slot().ok_or(Error::OutOfMemory)?;
        self.counts.record(Invocation::Copy);
        let (dest, dest_index) = own(slot);
        match self.kernel.cnode_copy(dest, dest_index, src, index, rights) {
            Ok(()) => Ok(slot),
            Err(e) => {
                self.slots.give_back(slot);
                Err(not_a_frame(e))
            }
        }
    }

    fn delete(&mut self, slot: CPtr) {
        delete_cap(&mut self.kernel, &mut self.slots, &mut self.counts, slot);
    }

    /// Makes sure a slot is free: when none is, a new CNode from a
    /// granule nothing was made from; without one, kept copies that are
    /// not mapped are deleted (they only save a CNode Copy; without this,
    /// the copies of recycled frames, up to one per frame per space, could
    /// take the slots while memory is still free); without those, a CNode
    /// from a granule reset for it.
    /// (A CNode whose record found no room in the heap makes none: the
    /// request fails, and the loop grows the heap and tries again.)
    fn make_room(&mut self) {
        if self.slots.available() > 0 || self.grow_slots(false).is_ok() || crate::heap::short() {
            return;
        }
        let (kernel, slots, counts) = (&mut self.kernel, &mut self.slots, &mut self.counts);
        self.copies.drop_unmapped(DROP_BATCH, |copy| delete_cap(kernel, slots, counts, copy));
        if self.slots.available() == 0 {
            let _ = self.grow_slots(true);
        }
    }

    /// A free slot (making room if needed), or `None` when the server's
    /// memory holds no more.
    pub fn take_slot(&mut self) -> Option<CPtr> {
        self.make_room();
        self.slots.take()
    }

    /// Makes one more CNode of slots, from a granule none of whose objects
    /// are made (with `reset`, else from one reset for it); `OutOfMemory`
    /// without one, without a slot of the root for it or without the
    /// memory for its record (the heap's shortfall then says so).
    fn grow_slots(&mut self, reset: bool) -> Result<(), BackendError> {
        let granule = self.pool.node_granule(reset).filter(|_| self.slots.can_add_node());
        let granule = granule.ok_or(BackendError::OutOfMemory)?;
        let (record, holder) = self.slots.reserve_node().map_err(|_| BackendError::OutOfMemory)?;
        if !self.pool.granules.unmade(granule) {
            self.reset(granule)?;
        }
        let (kernel, slots, counts) = (&mut self.kernel, &mut self.slots, &mut self.counts);
        self.pool.make_node(kernel, granule, holder, slots, counts).map_err(rejected)?;
        self.slots.add_node(record, granule);
        Ok(())
    }

    /// Makes CNodes from granules nothing was made from until `n` slots
    /// are free, as far as such granules last; `OutOfMemory` only when the
    /// record of one does not fit the heap.
    fn make_slots(&mut self, n: u64) -> Result<(), BackendError> {
        while self.slots.available() < n {
            match self.grow_slots(false) {
                Ok(()) => {}
                Err(_) if !crate::heap::short() => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// An object of `kind` for `user` not in use, now in use: one kept or
    /// retyped earlier, one of a batch retyped now, or, when no granule has
    /// one or room for one, one from a granule reset for it, else one from
    /// the granules of the other use's objects ([`Use`]); a granule that
    /// gave the server an object is the server's from then on.
    fn object(&mut self, kind: ObjectKind, user: Use) -> Result<(CPtr, ObjectId, State), BackendError> {
        if let Some(object) = self.taken(kind, user)? {
            return Ok(object);
        }
        if let Some(granule) = self.pool.granules.reclaimable(kind) {
            self.reset(granule)?;
            if let Some(object) = self.taken(kind, user)? {
                return Ok(object);
            }
        }
        let (cap, id, state) = self.taken(kind, user.other())?.ok_or(BackendError::OutOfMemory)?;
        if user == Use::Server {
            self.pool.granules.hold_for_server(id.granule());
        }
        Ok((cap, id, state))
    }

    /// An object from the pool; when none, and no run of slots is left
    /// for a granule's objects, once more after making a CNode.
    fn taken(&mut self, kind: ObjectKind, user: Use) -> Result<Option<(CPtr, ObjectId, State)>, BackendError> {
        let taken =
            self.pool.take(&mut self.kernel, kind, user, &mut self.slots, &mut self.counts).map_err(rejected)?;
        if taken.is_some() || self.slots.has_run(UNITS as u64) || self.grow_slots(false).is_err() {
            return Ok(taken);
        }
        self.pool.take(&mut self.kernel, kind, user, &mut self.slots, &mut self.counts).map_err(rejected)
    }

    /// Resets `granule`, none of whose objects is in use, so its memory can
    /// be retyped as anything. Its frames are mapped in no client space
    /// (they were unmapped when freed); the window's mappings of them are
    /// removed here, since deleting a capability that is not a frame's last
    /// leaves its mapping in place. The revoke then deletes the objects and
    /// the kept copies of their capabilities, whose slots are free again.
    fn reset(&mut self, granule: usize) -> Result<(), BackendError> {
        self.unmap_window(granule);
        self.pool.revoke(&mut self.kernel, granule, &mut self.counts).map_err(rejected)?;
        self.forget_objects(granule);
        Ok(())
    }

    /// Removes the window's mappings of the frames of `granule`, before a
    /// revoke deletes them.
    fn unmap_window(&mut self, granule: usize) {
        for (id, kind) in self.pool.granules.objects(granule) {
            if kind == ObjectKind::SmallFrame && self.window.holds(id.get()) {
                self.counts.record(Invocation::UnmapPage);
                // Unmapping the server's own mapping of its frame cannot fail.
                let _ = self.kernel.page_unmap(self.pool.slot(id));
                self.window.release(id.get());
            }
        }
    }

    /// Forgets the objects of `granule`, which a revoke deleted with the
    /// kept copies of their capabilities (whose slots are free again).
    fn forget_objects(&mut self, granule: usize) {
        let (copies, slots) = (&mut self.copies, &mut self.slots);
        for (id, kind) in self.pool.granules.objects(granule) {
            if matches!(kind, ObjectKind::SmallFrame | ObjectKind::LargeFrame) {
                copies.forget_frame(id.get(), |copy| slots.give_back(copy));
            }
        }
        self.pool.granules.reset(granule);
    }

    /// A fresh 1 GiB frame: a block of granules none of whose objects is
    /// in use, retyped whole (the revoke of the block deletes their
    /// objects with the granules).
    fn huge_frame(&mut self) -> Result<Frame, BackendError> {
        let (block, granules) = self.pool.huge_candidate().ok_or(BackendError::OutOfMemory)?;
        for granule in granules.clone() {
            self.unmap_window(granule);
        }
        self.pool.revoke_block(&mut self.kernel, block, &mut self.counts).map_err(rejected)?;
        for granule in granules {
            self.forget_objects(granule);
        }
        let (cap, id) = self.pool.make_huge(&mut self.kernel, block, &mut self.counts).map_err(rejected)?;
        Ok(Frame { cap, index: id.get(), size: PageSize::Huge })
    }

    /// A structure of `level`: a kept one, or a fresh one.
    fn new_structure(&mut self, level: Level, user: Use) -> Result<Structure, BackendError> {
        let kind = ObjectKind::structure(level).ok_or(BackendError::Rejected(0))?;
        let (cap, id, _) = self.object(kind, user)?;
        Ok(Structure { cap, id, level })
    }

    fn map_structure(&mut self, vspace: CPtr, structure: Structure, addr: u64) -> Result<(), BackendError> {
        let (paging, invocation) = paging_level(structure.level).ok_or(BackendError::Rejected(0))?;
        self.counts.record(invocation);
        let mapped = self.kernel.paging_structure_map(structure.cap, paging, vspace, addr, ATTRS);
        mapped.map_err(|e| {
            // Nothing refers to the object: keep it for later.
            self.pool.granules.give_back(structure.id);
            rejected(e)
        })
    }

    /// Makes the structures of the server's own VSpace that a page of
    /// `size` at `addr` needs and it lacks.
    fn own_structures(&mut self, addr: u64, size: PageSize) -> Result<(), BackendError> {
        let missing: heapless::Vec<(Level, u64), 3> = self.own.missing(addr, size).collect();
        for (level, base) in missing {
            self.own.reserve().map_err(|_| BackendError::OutOfMemory)?;
            let structure = self.new_structure(level, Use::Server)?;
            self.map_structure(cspace::cptr(server_slot::VSPACE), structure, base)?;
            self.own.made(level, base);
        }
        Ok(())
    }

    /// Zeroes a recycled frame: 4 KiB frames through the window (mapped
    /// there on their first reuse, and left there), 2 MiB frames through
    /// the large scratch address.
    fn zero(&mut self, frame: Frame) -> Result<(), BackendError> {
        // The frame is unmapped everywhere; its original is the server's
        // again, to map here.
        self.copies.take_original(frame.index);
        let addr = match frame.size {
            PageSize::Small => {
                let addr = Window::address(frame.index).ok_or(BackendError::OutOfMemory)?;
                if !self.window.holds(frame.index) {
                    self.window.reserve(frame.index).map_err(|_| BackendError::OutOfMemory)?;
                    self.own_structures(addr, PageSize::Small)?;
                    self.counts.record(Invocation::MapPage);
                    self.map_own(frame.cap, addr)?;
                    self.window.hold(frame.index);
                }
                addr
            }
            // A 1 GiB frame is never recycled: each is retyped fresh.
            PageSize::Huge => return Err(BackendError::Rejected(0)),
            PageSize::Large => {
                self.own_structures(SCRATCH_LARGE, PageSize::Large)?;
                self.counts.record(Invocation::MapPage);
                self.map_own(frame.cap, SCRATCH_LARGE)?;
                SCRATCH_LARGE
            }
        };
        let zeroed = self.kernel.zero(addr, frame.size.bytes());
        if frame.size == PageSize::Large {
            self.counts.record(Invocation::UnmapPage);
            self.kernel.page_unmap(frame.cap).map_err(rejected)?;
        }
        zeroed
    }

    /// A read-write copy of `frame`'s capability, in a free slot.
    fn copy_own_frame(&mut self, frame: Frame) -> Result<CPtr, BackendError> {
        let copy = self.take_slot().ok_or(BackendError::OutOfMemory)?;
        let ((dest, dest_index), (src, src_index)) = (own(copy), own(frame.cap));
        self.counts.record(Invocation::Copy);
        match self.kernel.cnode_copy(dest, dest_index, src, src_index, CapRights::READ_WRITE) {
            Ok(()) => Ok(copy),
            Err(e) => {
                self.slots.give_back(copy);
                Err(rejected(e))
            }
        }
    }

    /// A 4 KiB frame for the server's own use at `addr`, mapped there: the
    /// frame is the server's alone (a spare one leaves the zeroing window
    /// and its kept copies are deleted).
    fn own_page(&mut self, addr: u64) -> Result<(), BackendError> {
        self.own_structures(addr, PageSize::Small)?;
        let (cap, id, _) = self.object(ObjectKind::SmallFrame, Use::Server)?;
        // The server's data from now on (it never reaches a client).
        self.pool.granules.hold(id, None);
        if self.window.holds(id.get()) {
            self.counts.record(Invocation::UnmapPage);
            // Unmapping the server's own mapping of its frame cannot fail.
            let _ = self.kernel.page_unmap(cap);
            self.window.release(id.get());
        }
        self.copies.take_original(id.get());
        let (kernel, slots, counts) = (&mut self.kernel, &mut self.slots, &mut self.counts);
        self.copies.forget_frame(id.get(), |copy| delete_cap(kernel, slots, counts, copy));
        self.counts.record(Invocation::MapPage);
        self.map_own(cap, addr).inspect_err(|_| self.pool.granules.give_back(id))
    }

    /// The original capability of `frame`, if a space may map it: the
    /// original maps in one space while the zeroing window does not hold
    /// it.
    fn original(&self, frame: Frame) -> Option<CPtr> {
        (!self.window.holds(frame.index)).then_some(frame.cap)
    }

    /// Maps the server's own frame capability `frame` read-write at `addr`
    /// of its own VSpace.
    fn map_own(&mut self, frame: CPtr, addr: u64) -> Result<(), BackendError> {
        let vspace = cspace::cptr(server_slot::VSPACE);
        self.kernel.page_map(frame, vspace, addr, CapRights::READ_WRITE, ATTRS).map_err(rejected)
    }
}

impl<K: Kernel + Zeroing> Backend for Sel4Backend<K> {
    type Frame = Frame;
    type Structure = Structure;
    type VSpace = CPtr;

    /// A fresh frame comes zeroed from its Retype; a recycled one is
    /// zeroed here, unless `user` may have it as its holder left it. A
    /// 1 GiB frame is always fresh.
    fn alloc_frame(&mut self, size: PageSize, user: FrameFor) -> Result<Frame, BackendError> {
        let Some(kind) = ObjectKind::frame(size) else { return self.huge_frame() };
        let (cap, id, state) = self.object(kind, Use::Client)?;
        let frame = Frame { cap, index: id.get(), size };
        let last = self.pool.granules.holder(id);
        if state == State::Spare && !user.may_skip_zeroing(last) {
            if let Err(e) = self.zero(frame) {
                // Given back as it was: still the last holder's data.
                self.free_frame(frame);
                return Err(e);
            }
        }
        self.pool.granules.hold(id, user.holder);
        Ok(frame)
    }

    /// The frame is kept for reuse (deleting it alone would not give its
    /// memory back: only its granule's reset does); a 1 GiB frame is
    /// deleted with its copies, and its block made granules again.
    fn free_frame(&mut self, frame: Frame) {
        if frame.size != PageSize::Huge {
            self.pool.granules.give_back(ObjectId::new(frame.index));
            return;
        }
        // Revoking the block the server made and retyping it cannot fail.
        let _ = self.pool.give_back_huge(&mut self.kernel, ObjectId::new(frame.index), &mut self.counts);
        // The revoke deleted the copies.
        let slots = &mut self.slots;
        self.copies.forget_frame(frame.index, |copy| slots.give_back(copy));
    }

    /// Unmaps the frame from every space, one Page Unmap per mapping. Kept
    /// copies stay, so the frame maps again without copies when recycled
    /// (they are given up only when slots run out, see `make_room`); extra
    /// copies are deleted.
    fn unmap_everywhere(&mut self, frame: Frame) {
        let (kernel, slots, counts) = (&mut self.kernel, &mut self.slots, &mut self.counts);
        self.copies.unmap_all(frame.index, |unmapped| dispose(kernel, slots, counts, unmapped));
    }

    fn create_structure(
        &mut self,
        space: SpaceRef<CPtr>,
        level: Level,
        addr: RegionAddr,
    ) -> Result<Structure, BackendError> {
        let structure = self.new_structure(level, Use::Client)?;
        self.map_structure(space.vspace, structure, addr.get())?;
        Ok(structure)
    }

    fn delete_structure(&mut self, _space: SpaceRef<CPtr>, structure: Structure) {
        let Some((paging, _)) = paging_level(structure.level) else { return };
        self.counts.record(Invocation::UnmapStructure);
        // Unmapping a structure the server mapped cannot fail.
        let _ = self.kernel.paging_structure_unmap(structure.cap, paging);
        self.pool.granules.give_back(structure.id);
    }

    fn map_frame(
        &mut self,
        space: SpaceRef<CPtr>,
        addr: RegionAddr,
        frame: Frame,
        _size: PageSize,
        rights: Rights,
    ) -> Result<(), BackendError> {
        let index = space.id.index();
        let rights = cap_rights(rights);
        // The record of what is planned has its memory from here on.
        let plan = self.copies.plan(frame.index, index, self.original(frame)).map_err(|_| BackendError::OutOfMemory)?;
        let copy = match plan {
            CopyFor::Reuse(copy) | CopyFor::Original(copy) => copy,
            // Kept copies may later map read-write; the mapping's own
            // rights make a read-only mapping read-only.
            CopyFor::NewKept | CopyFor::NewExtra => self.copy_own_frame(frame)?,
        };
        self.counts.record(Invocation::MapPage);
        if let Err(e) = self.kernel.page_map(copy, space.vspace, addr.get(), rights, ATTRS) {
            match plan {
                // A new kept copy stays kept, unmapped (in the room `plan`
                // reserved).
                CopyFor::NewKept if self.copies.keep_unmapped(frame.index, index, copy).is_ok() => {}
                CopyFor::NewKept | CopyFor::NewExtra => self.delete(copy),
                CopyFor::Reuse(_) | CopyFor::Original(_) => {}
            }
            return Err(rejected(e));
        }
        // `plan` reserved the room for the record.
        if self.copies.mapped(frame.index, index, addr.get(), copy, plan).is_err() {
            let unmapped = match plan {
                CopyFor::NewKept | CopyFor::NewExtra => Unmapped::Extra(copy),
                CopyFor::Reuse(_) | CopyFor::Original(_) => Unmapped::Kept(copy),
            };
            dispose(&mut self.kernel, &mut self.slots, &mut self.counts, unmapped);
            return Err(BackendError::OutOfMemory);
        }
        Ok(())
    }

    fn unmap_frame(&mut self, space: SpaceRef<CPtr>, addr: RegionAddr, frame: Frame) {
        if let Some(unmapped) = self.copies.unmapped(frame.index, space.id.index(), addr.get()) {
            dispose(&mut self.kernel, &mut self.slots, &mut self.counts, unmapped);
        }
    }

    /// The record of each mapping, as [`Backend::map_frame`] plans it, and
    /// the CNodes the slots of the new copies need (as far as memory has
    /// granules for them).
    fn reserve_mappings(&mut self, space: SpaceId, frames: impl Iterator<Item = Frame>) -> Result<(), BackendError> {
        let mut copies = 0;
        for frame in frames {
            let plan = self.copies.plan(frame.index, space.index(), self.original(frame));
            copies += usize::from(matches!(
                plan.map_err(|_| BackendError::OutOfMemory)?,
                CopyFor::NewKept | CopyFor::NewExtra
            ));
        }
        self.make_slots(copies as u64)
    }

    /// The records of each frame's copies in every space (kept ones
    /// reused), and the CNodes the slots of the new copies need (as far as
    /// memory has granules for them).
    fn reserve_new_mappings(&mut self, frames: impl Iterator<Item = Frame>, spaces: usize) -> Result<(), BackendError> {
        let mut copies = 0usize;
        for frame in frames {
            let new = self.copies.reserve_records(frame.index, spaces).map_err(|_| BackendError::OutOfMemory)?;
            copies = copies.saturating_add(new);
        }
        self.make_slots(copies as u64)
    }

    fn heap_short(&self) -> bool {
        crate::heap::short()
    }

    /// The copies of a borrowed frame (unmapped by now) and the server's
    /// capability to it are deleted; its number is free again.
    fn return_frame(&mut self, frame: Frame) {
        let (kernel, slots, counts) = (&mut self.kernel, &mut self.slots, &mut self.counts);
        self.copies.forget_frame(frame.index, |copy| delete_cap(kernel, slots, counts, copy));
        self.delete(frame.cap);
        if let Some(n) = self
            .pool
            .granules
            .count()
            .checked_mul(UNITS)
            .and_then(|base| (frame.index as usize).checked_sub(base).and_then(|n| u32::try_from(n).ok()))
        {
            self.borrowed.give_back(n);
        }
    }

    /// Through the window if it holds the frame, else through a copy of
    /// its capability mapped at [`SCRATCH_SMALL`] while it is written (a
    /// CNode Copy, a Page Map, a Page Unmap and a Delete).
    fn zero_part(&mut self, frame: Frame, offset: u64, bytes: u64) -> Result<(), BackendError> {
        let fits = offset.checked_add(bytes).is_some_and(|end| end <= PAGE_SIZE);
        if frame.size != PageSize::Small || !fits {
            return Err(BackendError::Rejected(0));
        }
        if self.window.holds(frame.index) {
            let addr = Window::address(frame.index).ok_or(BackendError::Rejected(0))?;
            return self.kernel.zero(addr + offset, bytes);
        }
        self.own_structures(SCRATCH_SMALL, PageSize::Small)?;
        let copy = self.copy_own_frame(frame)?;
        self.counts.record(Invocation::MapPage);
        let zeroed = match self.map_own(copy, SCRATCH_SMALL) {
            Ok(()) => {
                let zeroed = self.kernel.zero(SCRATCH_SMALL + offset, bytes);
                self.counts.record(Invocation::UnmapPage);
                // Unmapping the server's own mapping of its copy cannot fail.
                let _ = self.kernel.page_unmap(copy);
                zeroed
            }
            Err(e) => Err(e),
        };
        self.delete(copy);
        zeroed
    }

    /// One Page Remap of the copy that maps the frame there.
    fn remap_frame(
        &mut self,
        space: SpaceRef<CPtr>,
        addr: RegionAddr,
        frame: Frame,
        rights: Rights,
    ) -> Result<(), BackendError> {
        let copy = self
            .copies
            .mapping(frame.index, space.id.index(), addr.get())
            .ok_or(BackendError::Rejected(Sel4Error::IllegalOperation as u8))?;
        self.counts.record(Invocation::RemapPage);
        self.kernel.page_remap(copy, space.vspace, cap_rights(rights), ATTRS).map_err(rejected)
    }
}

/// The error of a client's capability the kernel would not copy or ask
/// for an address: the capability is not a frame the server can reach,
/// unless the kernel ran out of something.
fn not_a_frame(e: Sel4Error) -> Error {
    match e {
        Sel4Error::NotEnoughMemory => Error::OutOfMemory,
        Sel4Error::FailedLookup
        | Sel4Error::RangeError
        | Sel4Error::InvalidCapability
        | Sel4Error::IllegalOperation
        | Sel4Error::InvalidArgument => Error::NotAFrame,
        other => Error::Backend(rejected(other)),
    }
}

/// The capability rights of a mapping with `rights`.
const fn cap_rights(rights: Rights) -> CapRights {
    match rights {
        Rights::ReadOnly => CapRights::READ,
        Rights::ReadWrite => CapRights::READ_WRITE,
    }
}

impl<K: Kernel + Zeroing + HeapMemory> Sel4Backend<K> {
    /// Maps 4 KiB frames at the end of the heap's grown part, `bytes` of
    /// them (rounded up to pages, and at least as many as the grown part
    /// has) or as many as there is memory for, and
    /// hands them to the allocator; `Err(OutOfMemory)` when not one could
    /// be mapped. A growth keeps what it mapped.
    pub fn grow_heap(&mut self, bytes: u64) -> Result<(), BackendError> {
        let start = self.heap.end();
        // At least double the grown part, so that a request whose records
        // need much more than one growth is retried a few times, not once
        // per growth's worth.
        let bytes = bytes.max(start - HEAP_START);
        for _ in 0..bytes.div_ceil(PAGE_SIZE).max(1) {
            match self.heap.next() {
                Some(addr) if self.own_page(addr).is_ok() => self.heap.grew(),
                _ => break,
            }
        }
        if self.heap.end() == start {
            return Err(BackendError::OutOfMemory);
        }
        self.kernel.heap_grown(start, self.heap.end())
    }
}

/// The platform of the server: its backend, with failures injected on the
/// administrator's request.
impl<K: Kernel> Platform for Sel4Backend<Injecting<K>>
where
    Injecting<K>: Zeroing + HeapMemory,
{
    /// The first free slot of the server's CNode and the untyped grant.
    type Start<'a> = Start<'a>;

    fn start(&mut self, start: Start<'_>) -> Result<(), BackendError> {
        Sel4Backend::start(self, start)
    }

    fn take_receive_slot(&mut self) -> Option<CPtr> {
        self.take_slot()
    }

    fn empty_receive_slot(&mut self, slot: CPtr) {
        // Deleting what arrived in the server's own slot cannot fail in a
        // way that matters: the slot is empty afterwards.
        let (cnode, index) = own(slot);
        let _ = self.kernel.cnode_delete(cnode, index);
    }

    /// A copy of the client's frame capability, with a borrowed frame's
    /// number (see [`Borrowed`]).
    fn borrow_frame(&mut self, cnode: CPtr, index: u64, depth: u8, rights: Rights) -> Result<(Frame, u64), Error> {
        let n = self.borrowed.take().map_err(|_| Error::OutOfMemory)?;
        let Some(frame_index) = self.borrowed_index(n) else {
            self.borrowed.give_back(n);
            return Err(Error::OutOfMemory);
        };
        match self.copy_frame(cnode, index, depth, rights) {
            Ok((cap, paddr)) => Ok((Frame { cap, index: frame_index, size: PageSize::Small }, paddr)),
            Err(e) => {
                self.borrowed.give_back(n);
                Err(e)
            }
        }
    }

    fn frame_address(&mut self, frame: Frame) -> u64 {
        self.counts.record(Invocation::GetAddress);
        // The server's own frame capability always has an address.
        self.kernel.page_get_address(frame.cap).unwrap_or(0)
    }

    fn invocations(&self) -> InvocationCounts {
        self.counts
    }

    fn untyped_free(&self) -> u64 {
        self.pool.granules.untyped_free()
    }

    /// The slots of CNode 0 from the first free one, and of every CNode
    /// made.
    fn slots(&self) -> u64 {
        self.slots.total()
    }

    /// Empty slots, those set aside for objects not yet made included.
    fn free_slots(&self) -> u64 {
        self.slots.available() + self.pool.empty_slots()
    }

    fn spares(&self) -> (u64, u64) {
        self.spare_objects()
    }

    /// Arms the `nth` Untyped Retype, CNode Copy, or Map (of a frame or
    /// of a paging structure) from now to fail (0 disarms the point).
    fn inject_failure(&mut self, point: FailurePoint, nth: u32) -> Result<(), ErrorCode> {
        let kinds: &[Call] = match point {
            FailurePoint::Retype => &[Call::Retype],
            FailurePoint::Copy => &[Call::Copy],
            FailurePoint::Map => &[Call::PageMap, Call::PageRemap, Call::StructureMap],
        };
        self.kernel.arm_any(kinds, nth);
        Ok(())
    }

    fn grow_heap(&mut self, bytes: u64) -> Result<(), BackendError> {
        Sel4Backend::grow_heap(self, bytes)
    }

    fn own_use(&self) -> (u64, u64) {
        Sel4Backend::own_use(self)
    }

    fn heap_in_use(&self) -> u64 {
        self.kernel.heap_in_use()
    }

    fn release_vspace(&mut self, id: SpaceId, vspace: CPtr) {
        let (kernel, slots, counts) = (&mut self.kernel, &mut self.slots, &mut self.counts);
        self.copies.forget_space(id.index(), |copy| delete_cap(kernel, slots, counts, copy));
        self.delete(vspace);
    }
}
