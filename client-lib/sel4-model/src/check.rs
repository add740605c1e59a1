//! The model's own consistency: what 5.0.0 keeps true whatever a caller
//! does, checked over the whole state. Property tests run it after every
//! step; a violation is a bug in the model.
//!
//! Not among them: that every mapping has a capability. In 5.0.0 it does
//! not hold (deleting a mapped frame copy that is not the frame's last
//! capability leaves the mapping); [`Model::unowned_leaves`] lists such
//! mappings, which a correct caller never leaves.

use crate::cap::Cap;
use crate::model::Model;
use crate::object::{Body, ObjectId, ObjectType, TCB_SLOTS};
use crate::vspace::{Entry, Leaf};
use std::collections::{BTreeMap, BTreeSet};

impl Model {
    /// Every violated invariant, described (empty when consistent).
    pub fn check(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.check_tree(&mut out);
        self.check_objects(&mut out);
        self.check_untyped(&mut out);
        self.check_paging(&mut out);
        out
    }

    /// The derivation list is doubly linked, acyclic, covers every
    /// capability, and lives in slots of live objects.
    fn check_tree(&self, out: &mut Vec<String>) {
        for (&id, slot) in &self.slots {
            if slot.cap == Cap::Null {
                out.push(format!("{id:?}: empty slot with links {:?}", slot.mdb));
            }
            if slot.mdb.next.is_some_and(|n| self.mdb(n).prev != Some(id)) {
                out.push(format!("{id:?}: next's prev is not this slot"));
            }
            if slot.mdb.prev.is_some_and(|p| self.mdb(p).next != Some(id)) {
                out.push(format!("{id:?}: prev's next is not this slot"));
            }
            let in_range = match self.object(id.object).map(|o| &o.body) {
                Some(Body::CNode { radix }) => id.index < 1 << radix,
                Some(_) => self.object(id.object).is_some_and(|o| o.otype == ObjectType::Tcb) && id.index < TCB_SLOTS,
                None => false,
            };
            if !in_range {
                out.push(format!("{id:?}: slot of no live CNode or TCB"));
            }
        }
        let mut seen = 0;
        for (&head, _) in self.slots.iter().filter(|(_, s)| s.mdb.prev.is_none()) {
            let mut at = Some(head);
            while let Some(slot) = at {
                seen += 1;
                if seen > self.slots.len() {
                    out.push("derivation list has a cycle".into());
                    return;
                }
                at = self.mdb(slot).next;
            }
        }
        if seen != self.slots.len() {
            out.push(format!("derivation list reaches {seen} of {} slots", self.slots.len()));
        }
    }

    /// Each object's count is its capabilities; live objects do not
    /// overlap; finality agrees with the count.
    fn check_objects(&self, out: &mut Vec<String>) {
        let mut refs: BTreeMap<ObjectId, usize> = BTreeMap::new();
        let mut plain_refs: BTreeMap<ObjectId, usize> = BTreeMap::new();
        for (id, slot) in &self.slots {
            let Some(object) = slot.cap.object() else { continue };
            *refs.entry(object).or_default() += 1;
            if !matches!(slot.cap, Cap::Zombie { .. }) {
                *plain_refs.entry(object).or_default() += 1;
            }
            if !self.objects.contains_key(&object) {
                out.push(format!("{id:?}: capability to dead object {object:?}"));
            }
        }
        for (id, o) in &self.objects {
            if refs.get(id).copied().unwrap_or(0) != o.refs {
                out.push(format!("{id:?}: count {} but {} capabilities", o.refs, refs.get(id).copied().unwrap_or(0)));
            }
            if self.object_at(o.paddr) != Some(*id) {
                out.push(format!("{id:?}: not found at its address {:#x}", o.paddr));
            }
        }
        let mut by_address: Vec<(u64, u64, ObjectId)> =
            self.objects.iter().map(|(&id, o)| (o.paddr, o.paddr + (1u64 << o.size_bits), id)).collect();
        by_address.sort();
        for pair in by_address.windows(2) {
            if pair[0].1 > pair[1].0 {
                out.push(format!("{:?} and {:?} overlap", pair[0].2, pair[1].2));
            }
        }
        for (&id, slot) in &self.slots {
            let judged = matches!(
                slot.cap,
                Cap::Endpoint { .. }
                    | Cap::Notification { .. }
                    | Cap::CNode { .. }
                    | Cap::Thread { .. }
                    | Cap::Frame { .. }
                    | Cap::PageTable { .. }
                    | Cap::PageDirectory { .. }
                    | Cap::Pml4 { .. }
                    | Cap::AsidPool { .. }
            );
            let Some(object) = slot.cap.object().filter(|_| judged) else { continue };
            let only = plain_refs.get(&object) == Some(&1);
            if self.is_final(id) != only {
                out.push(format!(
                    "{id:?}: final is {} but the object has {:?} capabilities",
                    !only,
                    plain_refs.get(&object)
                ));
            }
        }
    }

    /// Everything derived from an untyped lies below its watermark.
    fn check_untyped(&self, out: &mut Vec<String>) {
        for (&id, slot) in &self.slots {
            let Cap::Untyped { paddr, size_bits, free_offset } = slot.cap else { continue };
            if free_offset > 1 << size_bits {
                out.push(format!("{id:?}: watermark {free_offset:#x} past the end"));
            }
            let mut child = self.mdb(id).next;
            while let Some(c) = child.filter(|&c| self.is_mdb_parent_of(id, c)) {
                if let Some((base, bits)) = self.region(&self.cap(c)) {
                    if base + (1u64 << bits) > paddr + free_offset {
                        out.push(format!("{c:?} at {base:#x} is above the watermark of its untyped {id:?}"));
                    }
                }
                child = self.mdb(c).next;
            }
        }
    }

    /// The VSpaces the ASID table names: each paging structure reached
    /// once, every table entry to a live table of the next level.
    fn check_paging(&self, out: &mut Vec<String>) {
        let mut parents: BTreeMap<ObjectId, usize> = BTreeMap::new();
        let roots: BTreeSet<(ObjectId, u16)> = self
            .slots
            .values()
            .filter_map(|s| match s.cap {
                Cap::Pml4 { object, asid: Some(asid) } => Some((object, asid)),
                _ => None,
            })
            .collect();
        for (asid, pml4) in self.assigned_vspaces() {
            if !roots.contains(&(pml4, asid)) {
                out.push(format!("ASID {asid} names {pml4:?}, whose capabilities have another ASID"));
            }
            self.check_table(pml4, ObjectType::Pml4, &mut parents, out);
        }
        for (id, n) in parents {
            if n > 1 {
                out.push(format!("{id:?} is in {n} places"));
            }
        }
    }

    fn check_table(
        &self,
        table: ObjectId,
        otype: ObjectType,
        parents: &mut BTreeMap<ObjectId, usize>,
        out: &mut Vec<String>,
    ) {
        let Some(Body::Table(entries)) = self.object(table).map(|o| &o.body) else { return };
        let lower = match otype {
            ObjectType::Pml4 => ObjectType::Pdpt,
            ObjectType::Pdpt => ObjectType::PageDirectory,
            _ => ObjectType::PageTable,
        };
        for (&i, entry) in entries {
            let &Entry::Table(paddr) = entry else { continue };
            match self.object_at(paddr).filter(|&id| self.object_type(id) == Some(lower)) {
                Some(next) if otype != ObjectType::PageTable => {
                    *parents.entry(next).or_default() += 1;
                    if parents[&next] == 1 {
                        self.check_table(next, lower, parents, out);
                    }
                }
                _ => out.push(format!("{table:?}[{i}] points to no live {lower:?} at {paddr:#x}")),
            }
        }
    }

    /// (ASID, PML4) of every VSpace the ASID table names.
    pub fn assigned_vspaces(&self) -> Vec<(u16, ObjectId)> {
        let mut out = Vec::new();
        for (high, pool) in self.asid_table.iter().enumerate() {
            let Some(pool) = pool.and_then(|p| self.object_at(p)) else { continue };
            let Some(Body::AsidPool(entries)) = self.object(pool).map(|o| &o.body) else { continue };
            for (&low, &pml4) in entries {
                if let Some(id) = self.object_at(pml4) {
                    out.push((((high as u16) << crate::model::ASID_LOW_BITS) | low, id));
                }
            }
        }
        out
    }

    /// Mappings in VSpaces with an ASID that no frame capability made:
    /// no live frame capability of that frame records that ASID and
    /// address. 5.0.0 leaves them when a mapped frame capability that is
    /// not the frame's last is deleted or revoked.
    pub fn unowned_leaves(&self) -> Vec<(u16, Leaf)> {
        let mut owners: BTreeMap<(u16, u64), Vec<ObjectId>> = BTreeMap::new();
        for slot in self.slots.values() {
            if let Cap::Frame { object, mapping: Some(m), .. } = slot.cap {
                owners.entry((m.asid, m.vaddr)).or_default().push(object);
            }
        }
        let mut out = Vec::new();
        for (asid, pml4) in self.assigned_vspaces() {
            for leaf in self.leaves(pml4, 0..u64::MAX) {
                let owned = leaf.frame.is_some_and(|f| owners.get(&(asid, leaf.vaddr)).is_some_and(|o| o.contains(&f)));
                if !owned {
                    out.push((asid, leaf));
                }
            }
        }
        out
    }
}
