//! What tests read from the model: capabilities by CPtr, objects, slots,
//! and the accounting of objects, slots and untyped memory that tells
//! whether a sequence of operations gave back everything it took.

use crate::cap::Cap;
use crate::hazard::Hazard;
use crate::model::{Model, SlotId};
use crate::object::{Body, ObjectId, ObjectType, TCB_CTABLE};
use sel4_layer::abi::{CPtr, WORD_BITS};
use std::collections::BTreeMap;

/// The use of one untyped capability's region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UntypedUse {
    /// The region's physical address.
    pub paddr: u64,
    /// log2 of its size.
    pub size_bits: u32,
    /// Bytes from the start retyped so far (`capFreeIndex`): only ever
    /// grows while the untyped has children.
    pub watermark: u64,
    /// Whether objects (or copies) derived from it exist; without, the
    /// next Retype starts from 0 again.
    pub has_children: bool,
}

impl UntypedUse {
    /// Bytes the region cannot give again yet.
    pub fn in_use(&self) -> u64 {
        if self.has_children {
            self.watermark
        } else {
            0
        }
    }
}

/// Counts that return to their old values when everything made is given
/// back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accounting {
    /// Live objects by type.
    pub objects: BTreeMap<ObjectType, usize>,
    /// Non-empty CNode slots (TCB slots not counted).
    pub slots: usize,
    /// Every untyped capability, by physical address.
    pub untyped: Vec<UntypedUse>,
}

impl Accounting {
    /// Whether this is `baseline` again: the same live objects and
    /// occupied slots, and every untyped holding as much memory as then (a
    /// watermark whose children are all gone holds none: the next Retype
    /// starts from the beginning).
    pub fn is_back_to(&self, baseline: &Accounting) -> bool {
        let held = |a: &Accounting| a.untyped.iter().map(|u| (u.paddr, u.size_bits, u.in_use())).collect::<Vec<_>>();
        self.objects == baseline.objects && self.slots == baseline.slots && held(self) == held(baseline)
    }
}

impl Model {
    /// The capability `cptr` names in the running thread's CSpace (`None`
    /// if the CPtr does not resolve).
    pub fn cap_at(&self, cptr: CPtr) -> Option<Cap> {
        let root = self.thread_slot(TCB_CTABLE).map(|s| self.cap(s))?;
        self.resolve_address_bits(root, cptr, WORD_BITS).ok().map(|(slot, _)| self.cap(slot))
    }

    /// The use of the untyped region whose capability `cptr` names (`None`
    /// if it names no untyped capability).
    pub fn untyped_at(&self, cptr: CPtr) -> Option<UntypedUse> {
        let root = self.thread_slot(TCB_CTABLE).map(|s| self.cap(s))?;
        let (slot, _) = self.resolve_address_bits(root, cptr, WORD_BITS).ok()?;
        self.untyped_use(slot)
    }

    /// The use of the untyped region whose capability is in `slot`.
    fn untyped_use(&self, slot: SlotId) -> Option<UntypedUse> {
        match self.cap(slot) {
            Cap::Untyped { paddr, size_bits, free_offset } => Some(UntypedUse {
                paddr,
                size_bits,
                watermark: free_offset,
                has_children: self.ensure_no_children(slot).is_err(),
            }),
            _ => None,
        }
    }

    /// The object of the capability `cptr` names.
    pub fn object_of(&self, cptr: CPtr) -> Option<ObjectId> {
        self.cap_at(cptr)?.object()
    }

    /// The type of a live object.
    pub fn object_type(&self, id: ObjectId) -> Option<ObjectType> {
        self.object(id).map(|o| o.otype)
    }

    /// Whether an object is alive (some capability refers to it).
    pub fn is_alive(&self, id: ObjectId) -> bool {
        self.object(id).is_some()
    }

    /// A live object's physical address.
    pub fn physical_address(&self, id: ObjectId) -> Option<u64> {
        self.object(id).map(|o| o.paddr)
    }

    /// The non-empty slots of a CNode.
    pub fn slots_in_use(&self, cnode: ObjectId) -> usize {
        self.slots.iter().filter(|(id, s)| id.object == cnode && s.cap != Cap::Null).count()
    }

    /// The capability in slot `index` of CNode `cnode`.
    pub fn cap_in(&self, cnode: ObjectId, index: u64) -> Cap {
        self.cap(SlotId { object: cnode, index })
    }

    /// The CNodes whose capabilities a CNode holds (the CNodes of a
    /// two-level CSpace, below its root).
    pub fn cnodes_in(&self, cnode: ObjectId) -> Vec<ObjectId> {
        let caps = self.slots.iter().filter(|(id, _)| id.object == cnode).map(|(_, s)| s.cap);
        caps.filter_map(|cap| match cap {
            Cap::CNode { object, .. } => Some(object),
            _ => None,
        })
        .collect()
    }

    /// What every invocation so far did that 5.0.0 would not have answered
    /// with an error reply.
    pub fn hazards(&self) -> &[Hazard] {
        &self.hazards
    }

    /// The hazards met so far, leaving none recorded.
    pub fn take_hazards(&mut self) -> Vec<Hazard> {
        std::mem::take(&mut self.hazards)
    }

    /// Live objects by type whose memory starts in the `bytes` from
    /// `paddr` (those retyped from one untyped region, say).
    pub fn objects_within(&self, paddr: u64, bytes: u64) -> BTreeMap<ObjectType, usize> {
        let mut objects = BTreeMap::new();
        for id in self.by_paddr.range(paddr..paddr.saturating_add(bytes)).map(|(_, id)| id) {
            if let Some(o) = self.object(*id) {
                *objects.entry(o.otype).or_insert(0) += 1;
            }
        }
        objects
    }

    /// Objects, slots and untyped memory in use.
    pub fn accounting(&self) -> Accounting {
        let mut objects = BTreeMap::new();
        for o in self.objects.values() {
            *objects.entry(o.otype).or_insert(0) += 1;
        }
        let is_cnode = |id: &ObjectId| self.object(*id).is_some_and(|o| matches!(o.body, Body::CNode { .. }));
        let slots = self.slots.iter().filter(|(id, s)| s.cap != Cap::Null && is_cnode(&id.object)).count();
        let mut untyped: Vec<UntypedUse> = self.slots.keys().filter_map(|&id| self.untyped_use(id)).collect();
        untyped.sort();
        Accounting { objects, slots, untyped }
    }
}
