//! The capability derivation tree, as `cnode.c` and `objecttype.c` keep
//! it: a doubly linked list of slots in depth-first order, where a slot's
//! children follow it; `revocable` and `firstBadged` bits decide who is a
//! parent. Region and object identity come from `sameRegionAs` and
//! `sameObjectAs`; finality (`isFinalCapability`) looks only at a slot's
//! neighbours, as the kernel does.

use crate::cap::{mask, Cap, ZombieKind};
use crate::model::{Mdb, Model, SlotId};
use crate::object::{SLOT_BITS, TCB_BITS};
use sel4_layer::Sel4Error;

impl Model {
    /// `cap_get_capIsPhysical`, `cap_get_capPtr` and `cap_get_capSizeBits`:
    /// the physical region a capability names, if any.
    pub(crate) fn region(&self, cap: &Cap) -> Option<(u64, u32)> {
        match *cap {
            Cap::Untyped { paddr, size_bits, .. } => Some((paddr, size_bits)),
            Cap::Zombie { object, kind, .. } => Some((
                self.paddr(object),
                match kind {
                    ZombieKind::CNode { radix } => radix + SLOT_BITS,
                    ZombieKind::Tcb => TCB_BITS,
                },
            )),
            Cap::Null | Cap::AsidControl => None,
            other => other.object().and_then(|id| self.object(id)).map(|o| (o.paddr, o.size_bits)),
        }
    }

    /// `sameRegionAs(a, b)`.
    pub(crate) fn same_region_as(&self, a: &Cap, b: &Cap) -> bool {
        let object_of = |c: &Cap| c.object();
        match (*a, *b) {
            (Cap::Untyped { paddr, size_bits, .. }, _) => self.region(b).is_some_and(|(b_base, b_bits)| {
                let a_top = paddr + mask(size_bits);
                let b_top = b_base + mask(b_bits);
                paddr <= b_base && b_top <= a_top && b_base <= b_top
            }),
            (Cap::CNode { object, radix, .. }, Cap::CNode { object: o2, radix: r2, .. }) => object == o2 && radix == r2,
            (Cap::Frame { .. }, Cap::Frame { .. }) => {
                let (Some((a_base, a_bits)), Some((b_base, b_bits))) = (self.region(a), self.region(b)) else {
                    return false;
                };
                let (a_top, b_top) = (a_base + mask(a_bits), b_base + mask(b_bits));
                a_base <= b_base && a_top >= b_top && b_base <= b_top
            }
            (Cap::AsidControl, Cap::AsidControl) => true,
            // 5.0.0's Mode_sameRegionAs knows only PML4s: a PDPT capability
            // is the same region as nothing.
            (Cap::Pdpt { .. }, _) => false,
            (Cap::Endpoint { .. }, Cap::Endpoint { .. })
            | (Cap::Notification { .. }, Cap::Notification { .. })
            | (Cap::Thread { .. }, Cap::Thread { .. })
            | (Cap::PageTable { .. }, Cap::PageTable { .. })
            | (Cap::PageDirectory { .. }, Cap::PageDirectory { .. })
            | (Cap::Pml4 { .. }, Cap::Pml4 { .. })
            | (Cap::AsidPool { .. }, Cap::AsidPool { .. }) => object_of(a) == object_of(b),
            _ => false,
        }
    }

    /// `sameObjectAs(a, b)`: never for untyped; frames also by size.
    pub(crate) fn same_object_as(&self, a: &Cap, b: &Cap) -> bool {
        match (a, b) {
            (Cap::Untyped { .. }, _) => false,
            (Cap::Frame { object, size, .. }, Cap::Frame { object: o2, size: s2, .. }) => {
                self.paddr(*object) == self.paddr(*o2) && size == s2
            }
            _ => self.same_region_as(a, b),
        }
    }

    /// `isMDBParentOf(a, b)`.
    pub(crate) fn is_mdb_parent_of(&self, a: SlotId, b: SlotId) -> bool {
        let (a_mdb, a_cap, b_cap) = (self.mdb(a), self.cap(a), self.cap(b));
        if !a_mdb.revocable || !self.same_region_as(&a_cap, &b_cap) {
            return false;
        }
        match a_cap.badge() {
            None | Some(0) => true,
            Some(badge) => b_cap.badge() == Some(badge) && !self.mdb(b).first_badged,
        }
    }

    /// `ensureNoChildren`: `RevokeFirst` when the slot has children.
    pub(crate) fn ensure_no_children(&self, slot: SlotId) -> Result<(), Sel4Error> {
        match self.mdb(slot).next {
            Some(next) if self.is_mdb_parent_of(slot, next) => Err(Sel4Error::RevokeFirst),
            _ => Ok(()),
        }
    }

    /// `ensureEmptySlot`: `DeleteFirst` when the slot holds a capability.
    pub(crate) fn ensure_empty_slot(&self, slot: SlotId) -> Result<(), Sel4Error> {
        match self.cap(slot) {
            Cap::Null => Ok(()),
            _ => Err(Sel4Error::DeleteFirst),
        }
    }

    /// `isFinalCapability`: no neighbour in the list is the same object.
    pub(crate) fn is_final(&self, slot: SlotId) -> bool {
        let (mdb, cap) = (self.mdb(slot), self.cap(slot));
        if mdb.prev.is_some_and(|prev| self.same_object_as(&self.cap(prev), &cap)) {
            return false;
        }
        mdb.next.is_none_or(|next| !self.same_object_as(&cap, &self.cap(next)))
    }

    /// `insertNewCap`: a newly retyped object's capability, right after its
    /// untyped, revocable.
    pub(crate) fn insert_new_cap(&mut self, parent: SlotId, slot: SlotId, cap: Cap) {
        let next = self.mdb(parent).next;
        self.set_cap(slot, cap);
        self.set_mdb(slot, Mdb { prev: Some(parent), next, revocable: true, first_badged: true });
        if let Some(next) = next {
            self.update_mdb(next, |m| m.prev = Some(slot));
        }
        self.update_mdb(parent, |m| m.next = Some(slot));
    }

    /// `cteInsert`: a derived capability right after its source.
    pub(crate) fn cte_insert(&mut self, new_cap: Cap, src: SlotId, dest: SlotId) {
        let (src_mdb, src_cap) = (self.mdb(src), self.cap(src));
        let revocable = match new_cap {
            Cap::Endpoint { badge, .. } | Cap::Notification { badge, .. } => Some(badge) != src_cap.badge(),
            Cap::Untyped { .. } => true,
            _ => false,
        };
        // setUntypedCapAsFull: a copied untyped leaves its source full.
        if let (Cap::Untyped { paddr, size_bits, .. }, Cap::Untyped { paddr: p2, size_bits: s2, .. }) =
            (src_cap, new_cap)
        {
            if paddr == p2 && size_bits == s2 {
                self.set_cap(src, Cap::Untyped { paddr, size_bits, free_offset: 1 << size_bits });
            }
        }
        self.set_cap(dest, new_cap);
        self.set_mdb(dest, Mdb { prev: Some(src), next: src_mdb.next, revocable, first_badged: revocable });
        self.update_mdb(src, |m| m.next = Some(dest));
        if let Some(next) = src_mdb.next {
            self.update_mdb(next, |m| m.prev = Some(dest));
        }
    }

    /// `cteMove` (for CNode Move, whose new capability is the source's):
    /// the capability and its place in the tree go to `dest`, so no
    /// object's count changes.
    pub(crate) fn cte_move(&mut self, src: SlotId, dest: SlotId) {
        let mdb = self.mdb(src);
        self.store(dest, self.cap(src), mdb);
        self.store(src, Cap::Null, Mdb::default());
        if let Some(prev) = mdb.prev {
            self.update_mdb(prev, |m| m.next = Some(dest));
        }
        if let Some(next) = mdb.next {
            self.update_mdb(next, |m| m.prev = Some(dest));
        }
    }

    /// `cteSwap` (through `capSwapForDelete`): exchanges two slots'
    /// capabilities and places in the tree, reading each node when the
    /// kernel does (it matters when the two are neighbours).
    pub(crate) fn cte_swap(&mut self, slot1: SlotId, slot2: SlotId) {
        if slot1 == slot2 {
            return;
        }
        let (cap1, cap2) = (self.cap(slot1), self.cap(slot2));
        let mdb1 = self.mdb(slot1);
        self.store(slot1, cap2, mdb1);
        let mdb2_before = self.mdb(slot2);
        self.store(slot2, cap1, mdb2_before);
        if let Some(prev) = mdb1.prev {
            self.update_mdb(prev, |m| m.next = Some(slot2));
        }
        if let Some(next) = mdb1.next {
            self.update_mdb(next, |m| m.prev = Some(slot2));
        }
        let mdb2 = self.mdb(slot2);
        self.set_mdb(slot1, mdb2);
        self.set_mdb(slot2, mdb1);
        if let Some(prev) = mdb2.prev {
            self.update_mdb(prev, |m| m.next = Some(slot1));
        }
        if let Some(next) = mdb2.next {
            self.update_mdb(next, |m| m.prev = Some(slot1));
        }
    }

    /// `emptySlot`: unlinks the slot and empties it.
    pub(crate) fn empty_slot(&mut self, slot: SlotId) {
        if self.cap(slot) == Cap::Null {
            return;
        }
        let mdb = self.mdb(slot);
        if let Some(prev) = mdb.prev {
            self.update_mdb(prev, |m| m.next = mdb.next);
        }
        if let Some(next) = mdb.next {
            self.update_mdb(next, |m| {
                m.prev = mdb.prev;
                m.first_badged |= mdb.first_badged;
            });
        }
        self.set_mdb(slot, Mdb::default());
        self.set_cap(slot, Cap::Null);
    }
}
