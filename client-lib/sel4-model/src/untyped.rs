//! Untyped Retype (`object/untyped.c`, `createNewObjects`): objects come
//! from an untyped's watermark up, each aligned to its size; an untyped
//! with no children starts again from its beginning (its memory returns
//! only then); one call makes at most `CONFIG_RETYPE_FAN_OUT_LIMIT` (256)
//! objects into empty consecutive slots.

use crate::cap::{Cap, VmRights};
use crate::model::{Model, SlotId};
use crate::object::{Body, ObjectType, Retyped, MAX_UNTYPED_BITS, MIN_UNTYPED_BITS};
use sel4_layer::abi::{size, Word};
use sel4_layer::{CapRights, Sel4Error, Slot};
use std::collections::BTreeMap;

/// `CONFIG_RETYPE_FAN_OUT_LIMIT`.
pub const RETYPE_FAN_OUT_LIMIT: u64 = size::RETYPE_MAX_OBJECTS;

impl Model {
    /// `decodeUntypedInvocation` and `invokeUntyped_Retype`: `untyped` is
    /// the invoked slot, `root` the slot of the destination root CNode.
    pub(crate) fn retype(
        &mut self,
        untyped: SlotId,
        root: SlotId,
        object_type: Word,
        user_size: Word,
        dest: Slot,
        count: Word,
    ) -> Result<(), Sel4Error> {
        let Cap::Untyped { paddr, size_bits, free_offset } = self.cap(untyped) else {
            return Err(Sel4Error::IllegalOperation);
        };
        let Some(kind) = Retyped::from_number(object_type) else { return Err(Sel4Error::InvalidArgument) };
        if user_size > MAX_UNTYPED_BITS {
            return Err(Sel4Error::RangeError);
        }
        match kind {
            Retyped::Object(ObjectType::CNode) if user_size == 0 => return Err(Sel4Error::InvalidArgument),
            Retyped::Untyped if user_size < MIN_UNTYPED_BITS => return Err(Sel4Error::InvalidArgument),
            _ => {}
        }
        let root_cap = self.cap(root);
        let node = if dest.node_depth == 0 {
            root_cap
        } else {
            self.cap(self.lookup_target_slot(root_cap, dest.node_index, dest.node_depth)?)
        };
        let Cap::CNode { object: cnode, radix, .. } = node else { return Err(Sel4Error::FailedLookup) };
        let node_size = 1u64 << radix;
        if dest.offset > node_size - 1 {
            return Err(Sel4Error::RangeError);
        }
        if !(1..=RETYPE_FAN_OUT_LIMIT).contains(&count) || count > node_size - dest.offset {
            return Err(Sel4Error::RangeError);
        }
        let slots: Vec<SlotId> =
            (dest.offset..dest.offset + count).map(|index| SlotId { object: cnode, index }).collect();
        for &slot in &slots {
            self.ensure_empty_slot(slot)?;
        }
        // With no children the untyped starts from its beginning again.
        let start = match self.ensure_no_children(untyped) {
            Err(_) => free_offset,
            Ok(()) => 0,
        };
        let object_bits = kind.size_bits(user_size);
        let free_bytes = (1u64 << size_bits) - start;
        if object_bits >= 64 || (free_bytes >> object_bits) < count {
            return Err(Sel4Error::NotEnoughMemory);
        }
        let first = (paddr + start).next_multiple_of(1 << object_bits);
        let free_after = first + (count << object_bits) - paddr;
        self.set_cap(untyped, Cap::Untyped { paddr, size_bits, free_offset: free_after });
        for (i, slot) in slots.into_iter().enumerate() {
            let cap = self.create_object(kind, first + ((i as u64) << object_bits), user_size);
            self.insert_new_cap(untyped, slot, cap);
        }
        Ok(())
    }

    /// `createObject`: a new object at `paddr` and its first capability.
    fn create_object(&mut self, kind: Retyped, paddr: u64, user_size: Word) -> Cap {
        let otype = match kind {
            Retyped::Untyped => return Cap::Untyped { paddr, size_bits: user_size as u32, free_offset: 0 },
            Retyped::Object(t) => t,
        };
        let bits = kind.size_bits(user_size) as u32;
        let body = match otype {
            ObjectType::CNode => Body::CNode { radix: user_size as u32 },
            ObjectType::Pml4 => Body::pml4(),
            ObjectType::Pdpt | ObjectType::PageDirectory | ObjectType::PageTable => Body::Table(BTreeMap::new()),
            _ => Body::Plain,
        };
        let object = self.new_object(otype, paddr, bits, body);
        match otype {
            ObjectType::Tcb => Cap::Thread { object },
            ObjectType::Endpoint => Cap::Endpoint { object, badge: 0, rights: CapRights::ALL },
            ObjectType::Notification => Cap::Notification { object, badge: 0, rights: CapRights::READ_WRITE },
            ObjectType::CNode => Cap::CNode { object, radix: user_size as u32, guard: 0, guard_size: 0 },
            ObjectType::Frame(size) => Cap::Frame { object, size, rights: VmRights::ReadWrite, mapping: None },
            ObjectType::PageTable => Cap::PageTable { object, mapping: None },
            ObjectType::PageDirectory => Cap::PageDirectory { object, mapping: None },
            ObjectType::Pdpt => Cap::Pdpt { object, mapping: None },
            ObjectType::Pml4 => Cap::Pml4 { object, asid: None },
            ObjectType::AsidPool => unreachable!("Retype makes no ASID pool"),
        }
    }
}
