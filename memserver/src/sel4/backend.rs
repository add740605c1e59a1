//! The core's [`Backend`] with real seL4 invocations.
//!
//! - A frame is an original frame capability the server keeps (never
//!   mapped itself, except briefly at the scratch address to zero it for
//!   reuse); each space that maps it gets a CNode Copy, read-only where the
//!   mapping is, which Page Map installs. Unmapping deletes that copy
//!   (deleting a mapped frame capability unmaps it): one invocation.
//! - Revoking the original removes every copy in every space at once.
//! - Paging structures are retyped once and reused: deleting one from a
//!   space unmaps it and keeps it for the next space that needs that level.
//! - Freed frames are kept and zeroed when reused (vmalloc and vmemmap
//!   promise zeroed memory); fresh frames from Retype are zero already.

use super::cspace::{own_cnode, Slots};
use super::untyped_pool::UntypedPool;
use crate::backend::{Backend, Rights, SpaceRef};
use crate::dispatch::Platform;
use crate::error::BackendError;
use crate::layout::{Level, PageSize, RegionAddr};
use crate::limits::{MAX_LEAVES, MAX_SPACES, MAX_TABLES};
use client_lib::bootstrap::server_slot;
use client_lib::invocation_counts::{Invocation, InvocationCounts};
use client_lib::sel4::abi::{object_type, size, CPtr};
use client_lib::sel4::{CapRights, Page, PagingLevel, PagingStructure, Sel4Error};

/// A frame: the slot of its original capability, and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub cap: CPtr,
    pub size: PageSize,
}

/// A paging structure: the slot of its capability, and its level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Structure {
    pub cap: CPtr,
    pub level: Level,
}

/// Mapped frame copies the server can track: one per leaf per space.
const MAX_COPIES: usize = (MAX_LEAVES * MAX_SPACES).next_power_of_two();
/// Spare objects kept for reuse, per kind.
const MAX_SPARE: usize = MAX_LEAVES;
/// Where the server maps a reused 4 KiB frame to zero it.
const SCRATCH_SMALL: u64 = 0x6000_0000_0000;
/// Where the server maps a reused 2 MiB frame to zero it.
const SCRATCH_LARGE: u64 = SCRATCH_SMALL + (1 << 21);

/// The server's seL4 state behind the core.
#[derive(Default)]
pub struct Sel4Backend {
    pub slots: Slots,
    pub pool: UntypedPool,
    pub counts: InvocationCounts,
    /// (space, address) -> slot of the frame copy mapped there.
    copies: heapless::FnvIndexMap<(u8, u64), (CPtr, CPtr), MAX_COPIES>,
    spare_small: heapless::Vec<CPtr, MAX_SPARE>,
    spare_large: heapless::Vec<CPtr, MAX_SPARE>,
    spare_pdpts: heapless::Vec<CPtr, MAX_TABLES>,
    spare_pds: heapless::Vec<CPtr, MAX_TABLES>,
    spare_pts: heapless::Vec<CPtr, MAX_TABLES>,
}

fn rejected(e: Sel4Error) -> BackendError {
    match e {
        Sel4Error::NotEnoughMemory => BackendError::OutOfMemory,
        other => BackendError::Rejected(other as u8),
    }
}

/// The seL4 paging level, object type and map invocation of a created
/// structure level (`None` for the PML4, which the server never creates).
fn paging_level(level: Level) -> Option<(PagingLevel, u64, Invocation)> {
    match level {
        Level::Pdpt => Some((PagingLevel::Pdpt, object_type::X86_PDPT, Invocation::MapPdpt)),
        Level::Pd => Some((PagingLevel::PageDirectory, object_type::X86_PAGE_DIRECTORY, Invocation::MapPd)),
        Level::Pt => Some((PagingLevel::PageTable, object_type::X86_PAGE_TABLE, Invocation::MapPt)),
        Level::Pml4 => None,
    }
}

impl Sel4Backend {
    /// An empty backend; see [`Sel4Backend::start`].
    pub const fn new() -> Sel4Backend {
        Sel4Backend {
            slots: Slots::new(),
            pool: UntypedPool::new(),
            counts: InvocationCounts::new(),
            copies: heapless::FnvIndexMap::new(),
            spare_small: heapless::Vec::new(),
            spare_large: heapless::Vec::new(),
            spare_pdpts: heapless::Vec::new(),
            spare_pds: heapless::Vec::new(),
            spare_pts: heapless::Vec::new(),
        }
    }

    /// Takes the free slots from `first_free_slot` and the untyped caps,
    /// and prepares the scratch area in the server's own VSpace.
    pub fn start(&mut self, first_free_slot: CPtr, untypeds: &[(CPtr, u8)]) -> Result<(), BackendError> {
        self.slots.add_range(first_free_slot);
        for &(slot, size_bits) in untypeds {
            self.pool.add(slot, size_bits);
        }
        for level in Level::CREATED_TOP_DOWN {
            let cap = self.new_structure(level)?;
            self.map_structure(server_slot::VSPACE, Structure { cap, level }, SCRATCH_SMALL)?;
        }
        Ok(())
    }

    /// Frames mapped copies track, for statistics.
    pub fn copies(&self) -> usize {
        self.copies.len()
    }

    fn take_slot(&mut self) -> Result<CPtr, BackendError> {
        self.slots.take().ok_or(BackendError::OutOfMemory)
    }

    fn delete(&mut self, slot: CPtr) {
        self.counts.record(Invocation::Delete);
        // Deleting a capability the server created in its own CNode cannot
        // fail.
        let _ = own_cnode().delete(slot);
        self.slots.give_back(slot);
    }

    /// Retypes one object into a new slot.
    fn retype(&mut self, object: u64, size_bits: u64, bytes: u64) -> Result<CPtr, BackendError> {
        let slot = self.take_slot()?;
        match self.pool.retype(&mut self.counts, object, size_bits, bytes, slot) {
            Ok(()) => Ok(slot),
            Err(e) => {
                self.slots.give_back(slot);
                Err(rejected(e))
            }
        }
    }

    /// Unused structures of `level`, kept for reuse.
    fn spares(&mut self, level: Level) -> Option<&mut heapless::Vec<CPtr, MAX_TABLES>> {
        match level {
            Level::Pdpt => Some(&mut self.spare_pdpts),
            Level::Pd => Some(&mut self.spare_pds),
            Level::Pt => Some(&mut self.spare_pts),
            Level::Pml4 => None,
        }
    }

    /// Keeps an unused structure for reuse, or gives it up.
    fn keep_spare(&mut self, structure: Structure) {
        let kept = self.spares(structure.level).is_some_and(|spares| spares.push(structure.cap).is_ok());
        if !kept {
            self.delete(structure.cap);
        }
    }

    /// A structure of `level`: a spare one, or a new one.
    fn new_structure(&mut self, level: Level) -> Result<CPtr, BackendError> {
        let (_, object, _) = paging_level(level).ok_or(BackendError::Rejected(0))?;
        match self.spares(level).and_then(|spares| spares.pop()) {
            Some(cap) => Ok(cap),
            None => self.retype(object, 0, 1 << size::PAGE_BITS),
        }
    }

    fn map_structure(&mut self, vspace: CPtr, structure: Structure, addr: u64) -> Result<(), BackendError> {
        let (paging, _, invocation) = paging_level(structure.level).ok_or(BackendError::Rejected(0))?;
        self.counts.record(invocation);
        PagingStructure { cap: structure.cap, level: paging }.map(vspace, addr).map_err(|e| {
            // Nothing refers to the object: keep it for later.
            self.keep_spare(structure);
            rejected(e)
        })
    }

    /// Zeroes a reused frame through the scratch mapping.
    fn zero(&mut self, frame: Frame) -> Result<(), BackendError> {
        let addr = match frame.size {
            PageSize::Small => SCRATCH_SMALL,
            PageSize::Large => SCRATCH_LARGE,
        };
        self.counts.record(Invocation::MapPage);
        Page(frame.cap).map(server_slot::VSPACE, addr, CapRights::READ_WRITE).map_err(rejected)?;
        // SAFETY: the frame is mapped read-write at `addr` in this VSpace for
        // its whole size, and nothing else uses the scratch address.
        unsafe { core::ptr::write_bytes(addr as *mut u8, 0, frame.size.bytes() as usize) };
        self.counts.record(Invocation::UnmapPage);
        Page(frame.cap).unmap().map_err(rejected)
    }
}

impl Backend for Sel4Backend {
    type Frame = Frame;
    type Structure = Structure;
    type VSpace = CPtr;

    fn alloc_frame(&mut self, size: PageSize) -> Result<Frame, BackendError> {
        let spare = match size {
            PageSize::Small => self.spare_small.pop(),
            PageSize::Large => self.spare_large.pop(),
        };
        if let Some(cap) = spare {
            let frame = Frame { cap, size };
            return match self.zero(frame) {
                Ok(()) => Ok(frame),
                Err(e) => {
                    self.free_frame(frame);
                    Err(e)
                }
            };
        }
        let (object, bits) = match size {
            PageSize::Small => (object_type::X86_4K, size::PAGE_BITS),
            PageSize::Large => (object_type::X86_LARGE_PAGE, size::LARGE_PAGE_BITS),
        };
        Ok(Frame { cap: self.retype(object, 0, 1 << bits)?, size })
    }

    fn free_frame(&mut self, frame: Frame) {
        let spare = match frame.size {
            PageSize::Small => &mut self.spare_small,
            PageSize::Large => &mut self.spare_large,
        };
        if spare.push(frame.cap).is_err() {
            // No room to keep it: give the capability up.
            self.delete(frame.cap);
        }
    }

    fn revoke_frame(&mut self, frame: Frame) {
        self.counts.record(Invocation::Revoke);
        // Revoking the server's own original capability cannot fail.
        let _ = own_cnode().revoke(frame.cap);
        let slots = &mut self.slots;
        self.copies.retain(|_, (copy, original)| {
            let keep = *original != frame.cap;
            if !keep {
                slots.give_back(*copy);
            }
            keep
        });
    }

    fn create_structure(
        &mut self,
        space: SpaceRef<CPtr>,
        level: Level,
        addr: RegionAddr,
    ) -> Result<Structure, BackendError> {
        let cap = self.new_structure(level)?;
        let structure = Structure { cap, level };
        self.map_structure(space.vspace, structure, addr.get())?;
        Ok(structure)
    }

    fn delete_structure(&mut self, _space: SpaceRef<CPtr>, structure: Structure) {
        let Some((paging, _, _)) = paging_level(structure.level) else { return };
        self.counts.record(Invocation::UnmapStructure);
        // Unmapping a structure the server mapped cannot fail.
        let _ = PagingStructure { cap: structure.cap, level: paging }.unmap();
        self.keep_spare(structure);
    }

    fn map_frame(
        &mut self,
        space: SpaceRef<CPtr>,
        addr: RegionAddr,
        frame: Frame,
        _size: PageSize,
        rights: Rights,
    ) -> Result<(), BackendError> {
        let key = (space.id.index() as u8, addr.get());
        if self.copies.contains_key(&key) {
            // seL4 would refuse to map over the existing copy.
            return Err(BackendError::Rejected(Sel4Error::DeleteFirst as u8));
        }
        if self.copies.len() == self.copies.capacity() {
            return Err(BackendError::OutOfMemory);
        }
        let rights = match rights {
            Rights::ReadOnly => CapRights::READ,
            Rights::ReadWrite => CapRights::READ_WRITE,
        };
        let copy = self.take_slot()?;
        let cnode = own_cnode();
        self.counts.record(Invocation::Copy);
        if let Err(e) = cnode.copy(copy, cnode, frame.cap, rights) {
            self.slots.give_back(copy);
            return Err(rejected(e));
        }
        self.counts.record(Invocation::MapPage);
        if let Err(e) = Page(copy).map(space.vspace, addr.get(), rights) {
            self.delete(copy);
            return Err(rejected(e));
        }
        // Room was checked above.
        let _ = self.copies.insert(key, (copy, frame.cap));
        Ok(())
    }

    fn unmap_frame(&mut self, space: SpaceRef<CPtr>, addr: RegionAddr, _frame: Frame) {
        if let Some((copy, _)) = self.copies.remove(&(space.id.index() as u8, addr.get())) {
            self.delete(copy);
        }
    }
}

impl Platform for Sel4Backend {
    fn frame_address(&mut self, frame: Frame) -> u64 {
        self.counts.record(Invocation::GetAddress);
        // The server's own frame capability always has an address.
        Page(frame.cap).address().unwrap_or(0)
    }

    fn invocations(&self) -> InvocationCounts {
        self.counts
    }

    fn untyped_free(&self) -> u64 {
        self.pool.free_bytes()
    }

    fn release_vspace(&mut self, vspace: CPtr) {
        self.delete(vspace);
    }
}
