//! Deletion and revocation (`cteDelete`, `finaliseSlot`, `reduceZombie`,
//! `finaliseCap`, `cteRevoke`), step for step as 5.0.0 does them:
//! - a capability that is not its object's last ("final") is just removed:
//!   deleting a mapped frame copy that is not the last leaves its mapping
//!   in place (`Mode_finaliseCap` unmaps a frame only when final);
//! - the final capability of a mapped frame or paging structure unmaps it
//!   (its own recorded mapping only), of a PML4 frees its ASID, of an ASID
//!   pool empties its table slot;
//! - the final capability of a CNode or TCB becomes a zombie that empties
//!   the object's slots from the last to the first; a CNode met inside
//!   another CNode being deleted is moved into its own first slot
//!   (`capSwapForDelete`) and left there as a cyclic zombie, its other
//!   slots untouched, until someone deletes that zombie (revoking the
//!   untyped it came from does).

use crate::cap::{Cap, ZombieKind};
use crate::model::{Model, SlotId};
use crate::object::TCB_SLOTS;
use crate::vspace::Depth;

impl Model {
    /// `cteDelete`: `exposed` is false only for slots of an object being
    /// deleted.
    pub(crate) fn cte_delete(&mut self, slot: SlotId, exposed: bool) {
        let success = self.finalise_slot(slot, exposed);
        if exposed || success {
            self.empty_slot(slot);
        }
    }

    /// `cteRevoke`: deletes the slot's children, next in the list first.
    pub(crate) fn cte_revoke(&mut self, slot: SlotId) {
        while let Some(next) = self.mdb(slot).next.filter(|&next| self.is_mdb_parent_of(slot, next)) {
            self.cte_delete(next, true);
        }
    }

    /// `finaliseSlot`: finalises the capability in `slot` until what is
    /// left can be removed; false when a cyclic zombie stays (`immediate`
    /// false only).
    fn finalise_slot(&mut self, slot: SlotId, immediate: bool) -> bool {
        while self.cap(slot) != Cap::Null {
            let is_final = self.is_final(slot);
            let remainder = self.finalise_cap(self.cap(slot), is_final);
            if self.cap_removable(&remainder, slot) {
                return true;
            }
            self.set_cap(slot, remainder);
            if !immediate && Self::zombie_home(&remainder) == Some(slot) {
                return false;
            }
            self.reduce_zombie(slot, immediate);
        }
        true
    }

    /// The slot a zombie's object starts at (`capZombiePtr`).
    fn zombie_home(cap: &Cap) -> Option<SlotId> {
        match *cap {
            Cap::Zombie { object, .. } => Some(SlotId { object, index: 0 }),
            _ => None,
        }
    }

    /// `capRemovable`: what `finaliseCap` left is gone or a zombie with
    /// nothing left to do.
    fn cap_removable(&self, cap: &Cap, slot: SlotId) -> bool {
        match *cap {
            Cap::Zombie { number, .. } => number == 0 || (number == 1 && Self::zombie_home(cap) == Some(slot)),
            _ => true,
        }
    }

    /// `reduceZombie`: empties the zombie's last slot (`immediate`), or
    /// moves the zombie into its object's first slot.
    fn reduce_zombie(&mut self, slot: SlotId, immediate: bool) {
        let Cap::Zombie { object, kind, number } = self.cap(slot) else { return };
        if immediate {
            let end = SlotId { object, index: number - 1 };
            self.cte_delete(end, false);
            if let Cap::Zombie { object: o2, kind: k2, number: n2 } = self.cap(slot) {
                if (o2, k2, n2) == (object, kind, number) {
                    self.set_cap(slot, Cap::Zombie { object, kind, number: number - 1 });
                }
            }
        } else if let Some(home) = Self::zombie_home(&self.cap(slot)) {
            self.cte_swap(home, slot);
        }
    }

    /// `finaliseCap`: what deleting a capability does to its object; the
    /// remainder is `Null` or a zombie.
    fn finalise_cap(&mut self, cap: Cap, is_final: bool) -> Cap {
        match cap {
            Cap::CNode { object, radix, .. } if is_final => {
                Cap::Zombie { object, kind: ZombieKind::CNode { radix }, number: 1 << radix }
            }
            Cap::Thread { object } if is_final => Cap::Zombie { object, kind: ZombieKind::Tcb, number: TCB_SLOTS },
            Cap::Zombie { .. } => cap,
            Cap::Frame { object, size, mapping: Some(mapping), .. } if is_final => {
                self.unmap_page(size, mapping, object);
                Cap::Null
            }
            Cap::PageTable { object, mapping: Some(mapping) } if is_final => {
                self.unmap_structure(Depth::Pd, mapping, object);
                Cap::Null
            }
            Cap::PageDirectory { object, mapping: Some(mapping) } if is_final => {
                self.unmap_structure(Depth::Pdpt, mapping, object);
                Cap::Null
            }
            Cap::Pdpt { object, mapping: Some(mapping) } if is_final => {
                self.unmap_structure(Depth::Pml4, mapping, object);
                Cap::Null
            }
            Cap::Pml4 { object, asid: Some(asid) } if is_final => {
                self.delete_asid(asid, self.paddr(object));
                Cap::Null
            }
            Cap::AsidPool { object, base } if is_final => {
                self.delete_asid_pool(base, self.paddr(object));
                Cap::Null
            }
            _ => Cap::Null,
        }
    }
}
