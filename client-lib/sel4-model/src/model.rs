//! The model's state: live objects by id and by physical address, every
//! slot (CNode and TCB slots) with its capability and derivation-tree links,
//! the ASID table, the running thread, and the hazards met. Every write of
//! a capability into a slot goes through [`Model::set_cap`], which keeps
//! each object's count of capabilities: an object dies when its last
//! capability (or zombie) goes, as its memory is then unreachable.

use crate::cap::Cap;
use crate::hazard::Hazard;
use crate::object::{Body, Object, ObjectId, ObjectType};
use sel4_layer::Sel4Error;
use std::collections::{BTreeMap, BTreeSet};

/// A slot: slot `index` of a CNode, or of a TCB (its five slots).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotId {
    /// The CNode or TCB.
    pub object: ObjectId,
    /// The slot's index in it.
    pub index: u64,
}

/// A slot's node in the capability derivation tree (`mdb_node_t`): the
/// tree is a list in depth-first order, children right after their parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Mdb {
    pub prev: Option<SlotId>,
    pub next: Option<SlotId>,
    pub revocable: bool,
    pub first_badged: bool,
}

/// A non-empty slot (empty slots with no links are not stored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub cap: Cap,
    pub mdb: Mdb,
}

/// The ASID table has 8 pools (`nASIDPools`) of 512 ASIDs (`asidLowBits`).
pub(crate) const ASID_POOLS: usize = 8;
pub(crate) const ASID_LOW_BITS: u32 = 9;

/// The whole kernel. Two models are equal when every object, slot and
/// table is (the hazards met count too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    pub(crate) objects: BTreeMap<ObjectId, Object>,
    /// Live objects by their first physical address.
    pub(crate) by_paddr: BTreeMap<u64, ObjectId>,
    pub(crate) slots: BTreeMap<SlotId, Slot>,
    next_object: u64,
    /// `x86KSASIDTable`: the physical address of each pool.
    pub(crate) asid_table: [Option<u64>; ASID_POOLS],
    /// The thread whose invocations the `Kernel` methods are.
    pub(crate) current: ObjectId,
    pub(crate) hazards: Vec<Hazard>,
    /// Live frames holding data a thread wrote (the others hold zeroes).
    pub(crate) written: BTreeSet<ObjectId>,
}

impl Model {
    /// A model with no objects; `boot` fills it as the kernel does.
    pub(crate) fn empty() -> Model {
        Model {
            objects: BTreeMap::new(),
            by_paddr: BTreeMap::new(),
            slots: BTreeMap::new(),
            next_object: 0,
            asid_table: [None; ASID_POOLS],
            current: ObjectId(u64::MAX),
            hazards: Vec::new(),
            written: BTreeSet::new(),
        }
    }

    /// Creates a live object with no capability yet (its first capability
    /// is written next).
    pub(crate) fn new_object(&mut self, otype: ObjectType, paddr: u64, size_bits: u32, body: Body) -> ObjectId {
        let id = ObjectId(self.next_object);
        self.next_object += 1;
        self.objects.insert(id, Object { otype, paddr, size_bits, refs: 0, body });
        self.by_paddr.insert(paddr, id);
        id
    }

    pub(crate) fn object(&self, id: ObjectId) -> Option<&Object> {
        self.objects.get(&id)
    }

    pub(crate) fn object_mut(&mut self, id: ObjectId) -> Option<&mut Object> {
        self.objects.get_mut(&id)
    }

    /// The physical address of a live object (0 for a dead one, which no
    /// capability can name).
    pub(crate) fn paddr(&self, id: ObjectId) -> u64 {
        self.object(id).map_or(0, |o| o.paddr)
    }

    /// The live object whose memory starts at `paddr`.
    pub(crate) fn object_at(&self, paddr: u64) -> Option<ObjectId> {
        self.by_paddr.get(&paddr).copied()
    }

    pub(crate) fn cap(&self, slot: SlotId) -> Cap {
        self.slots.get(&slot).map_or(Cap::Null, |s| s.cap)
    }

    pub(crate) fn mdb(&self, slot: SlotId) -> Mdb {
        self.slots.get(&slot).map_or(Mdb::default(), |s| s.mdb)
    }

    /// Writes `cap` into `slot`, counting the capabilities of the objects
    /// the old and the new capability refer to.
    pub(crate) fn set_cap(&mut self, slot: SlotId, cap: Cap) {
        let old = self.cap(slot);
        if let Some(object) = cap.object() {
            if let Some(o) = self.object_mut(object) {
                o.refs += 1;
            }
        }
        self.store(slot, cap, self.mdb(slot));
        if let Some(object) = old.object() {
            self.release(object);
        }
    }

    /// Writes a slot's capability and links as they are (for moves and
    /// swaps, which keep every object's count).
    pub(crate) fn store(&mut self, slot: SlotId, cap: Cap, mdb: Mdb) {
        if cap == Cap::Null && mdb == Mdb::default() {
            self.slots.remove(&slot);
        } else {
            self.slots.insert(slot, Slot { cap, mdb });
        }
    }

    pub(crate) fn set_mdb(&mut self, slot: SlotId, mdb: Mdb) {
        self.store(slot, self.cap(slot), mdb);
    }

    /// Edits a slot's links.
    pub(crate) fn update_mdb(&mut self, slot: SlotId, f: impl FnOnce(&mut Mdb)) {
        let mut mdb = self.mdb(slot);
        f(&mut mdb);
        self.set_mdb(slot, mdb);
    }

    /// One capability of `object` fewer; at none, the object is gone.
    fn release(&mut self, object: ObjectId) {
        let Some(o) = self.object_mut(object) else { return };
        o.refs -= 1;
        if o.refs == 0 {
            let paddr = o.paddr;
            self.objects.remove(&object);
            self.written.remove(&object);
            if self.by_paddr.get(&paddr) == Some(&object) {
                self.by_paddr.remove(&paddr);
            }
        }
    }

    /// Records `hazard`; the invocation then returns the error this gives.
    pub(crate) fn hazard(&mut self, hazard: Hazard) -> Sel4Error {
        self.hazards.push(hazard);
        Sel4Error::Unknown
    }
}
