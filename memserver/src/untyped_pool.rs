//! The untyped memory the root task gave the server, split into 2 MiB
//! granules ([`Granules`]): frames and paging structures are retyped from a
//! granule in batches (up to 256 objects per Untyped Retype, so creating
//! one costs a fraction of an invocation), and a granule whose objects are
//! all unused is reset (CNode Revoke of its capability) to serve any kind
//! again. Each granule's objects have their own run of capability slots,
//! set aside at start: object `n` lives in slot `objects + n`. The records
//! are as many as the granules given (allocated at start, with
//! `try_reserve`).

use crate::cspace::{own_cnode, Slots};
use crate::granules::{Granules, ObjectId, ObjectKind, State, UNITS};
use alloc::vec::Vec;
use memserver_protocol::bootstrap::server_slot;
use memserver_protocol::invocation_counts::{Invocation, InvocationCounts};
use sel4_layer::abi::{object_type, size, CPtr};
use sel4_layer::kernel::Kernel;
use sel4_layer::{Sel4Error, Slot};

/// Size of a granule, in bits.
const GRANULE_BITS: u8 = size::LARGE_PAGE_BITS as u8;

/// The seL4 object type and size bits of a kind.
const fn sel4_type(kind: ObjectKind) -> u64 {
    match kind {
        ObjectKind::SmallFrame => object_type::X86_4K,
        ObjectKind::LargeFrame => object_type::X86_LARGE_PAGE,
        ObjectKind::Pdpt => object_type::X86_PDPT,
        ObjectKind::Pd => object_type::X86_PAGE_DIRECTORY,
        ObjectKind::Pt => object_type::X86_PAGE_TABLE,
    }
}

/// Objects of a kind retyped at once: a whole Retype of 4 KiB frames, and
/// for paging structures about what a few spaces' worth of a mapping needs.
const fn batch(kind: ObjectKind) -> usize {
    match kind {
        ObjectKind::SmallFrame => size::RETYPE_MAX_OBJECTS as usize,
        ObjectKind::LargeFrame => 1,
        ObjectKind::Pdpt => 8,
        ObjectKind::Pd => 32,
        ObjectKind::Pt => 128,
    }
}

/// The server's untyped memory.
pub struct UntypedPool {
    /// What each granule holds.
    pub granules: Granules,
    /// The capability of each granule.
    caps: Vec<CPtr>,
    /// The slot of object 0.
    objects: CPtr,
}

impl Default for UntypedPool {
    fn default() -> Self {
        Self::new()
    }
}

impl UntypedPool {
    /// No memory yet; see [`UntypedPool::start`].
    pub const fn new() -> UntypedPool {
        UntypedPool { granules: Granules::new(), caps: Vec::new(), objects: 0 }
    }

    /// Splits each untyped of `untypeds` (slot, size bits) into granules
    /// (one Retype each; an untyped of at most a granule is one itself),
    /// and sets aside the slots of their objects. `NotEnoughMemory` if the
    /// records of the granules or the slots do not fit.
    pub fn start(
        &mut self,
        kernel: &mut impl Kernel,
        untypeds: &[(CPtr, u8)],
        slots: &mut Slots,
        counts: &mut InvocationCounts,
    ) -> Result<(), Sel4Error> {
        let granules = |bits: u8| match bits {
            _ if bits < size::PAGE_BITS as u8 => 0,
            _ if bits <= GRANULE_BITS => 1,
            _ => 1u64.checked_shl(u32::from(bits - GRANULE_BITS)).unwrap_or(u64::MAX),
        };
        let total = untypeds.iter().fold(0u64, |n, &(_, bits)| n.saturating_add(granules(bits)));
        let total = usize::try_from(total).map_err(|_| Sel4Error::NotEnoughMemory)?;
        self.granules.reserve(total).map_err(|_| Sel4Error::NotEnoughMemory)?;
        self.caps.try_reserve_exact(total).map_err(|_| Sel4Error::NotEnoughMemory)?;
        for &(untyped, bits) in untypeds {
            if bits < size::PAGE_BITS as u8 {
                continue;
            }
            if bits <= GRANULE_BITS {
                self.add(untyped, 1 << (bits - size::PAGE_BITS as u8));
                continue;
            }
            let count = granules(bits);
            let first = slots.take_run(count).ok_or(Sel4Error::NotEnoughMemory)?;
            counts.record(Invocation::Retype);
            let target = Slot::in_root(server_slot::CNODE, first);
            kernel.untyped_retype(untyped, object_type::UNTYPED, GRANULE_BITS.into(), target, count)?;
            for cap in first..first + count {
                self.add(cap, UNITS);
            }
        }
        self.objects = slots.take_run((self.caps.len() * UNITS) as u64).ok_or(Sel4Error::NotEnoughMemory)?;
        Ok(())
    }

    /// Records a granule, in the room `start` reserved.
    fn add(&mut self, cap: CPtr, units: usize) {
        if self.granules.add(units).is_some() && self.caps.len() < self.caps.capacity() {
            self.caps.push(cap);
        }
    }

    /// The capability of each granule, by granule number.
    pub fn granule_caps(&self) -> &[CPtr] {
        &self.caps
    }

    /// The capability slot of object `id`.
    pub fn slot(&self, id: ObjectId) -> CPtr {
        self.objects + u64::from(id.get())
    }

    /// An object of `kind` that is not in use, now in use, with its slot
    /// and what it was: one retyped earlier, or one of a batch retyped now.
    /// `None` when no granule has one or room for one.
    pub fn take(
        &mut self,
        kernel: &mut impl Kernel,
        kind: ObjectKind,
        counts: &mut InvocationCounts,
    ) -> Result<Option<(CPtr, ObjectId, State)>, Sel4Error> {
        if let Some((id, state)) = self.granules.take(kind) {
            return Ok(Some((self.slot(id), id, state)));
        }
        let Some(batch) = self.granules.batch(kind, batch(kind)) else { return Ok(None) };
        let untyped = *self.caps.get(batch.granule).ok_or(Sel4Error::NotEnoughMemory)?;
        self.granules.prepare(batch).map_err(|_| Sel4Error::NotEnoughMemory)?;
        counts.record(Invocation::Retype);
        let target = Slot::in_root(server_slot::CNODE, self.slot(batch.first));
        kernel.untyped_retype(untyped, sel4_type(kind), 0, target, batch.count as u64)?;
        self.granules.made(batch, kind);
        Ok(self.granules.take(kind).map(|(id, state)| (self.slot(id), id, state)))
    }

    /// Deletes every object made from `granule`, and every capability
    /// derived from them, with one CNode Revoke: once the caller has
    /// recorded it ([`Granules::reset`]), the granule's memory serves
    /// objects of any kind.
    pub fn revoke(
        &self,
        kernel: &mut impl Kernel,
        granule: usize,
        counts: &mut InvocationCounts,
    ) -> Result<(), Sel4Error> {
        let cap = *self.caps.get(granule).ok_or(Sel4Error::InvalidArgument)?;
        counts.record(Invocation::Revoke);
        kernel.cnode_revoke(own_cnode(), cap)
    }
}
