//! Kernel objects for the root task: free slots of its CNode and untyped
//! RAM from bootinfo, handed out one object at a time, and ASIDs for the
//! VSpaces it makes.

use crate::asid_pools::{AsidPools, PoolMemory};
use sel4_layer::abi::{init_cap, size, CPtr, ObjectType};
use sel4_layer::bootinfo::{BootInfo, UntypedCap};
use sel4_layer::kernel::Syscalls;
use sel4_layer::{Sel4Error, Slot, Untyped};

/// Allocates slots and retypes objects from the boot untypeds.
pub struct Allocator {
    next_slot: CPtr,
    end_slot: CPtr,
    /// RAM untypeds, largest first.
    untypeds: heapless::Vec<UntypedCap, { size::MAX_BOOTINFO_UNTYPED }>,
    /// Index of the untyped currently retyped from.
    current: usize,
    /// Bytes of untyped memory the objects retyped so far take.
    retyped: u64,
    asids: AsidPools,
}

impl Allocator {
    /// Takes the empty slots and RAM untypeds that bootinfo lists.
    pub fn new(bootinfo: &BootInfo) -> Allocator {
        let mut untypeds: heapless::Vec<UntypedCap, { size::MAX_BOOTINFO_UNTYPED }> =
            bootinfo.untypeds().filter(|u| u.desc.is_device == 0).collect();
        untypeds.sort_unstable_by_key(|u| core::cmp::Reverse(u.desc.size_bits));
        let empty = bootinfo.empty;
        Allocator {
            next_slot: empty.start,
            end_slot: empty.end,
            untypeds,
            current: 0,
            retyped: 0,
            asids: AsidPools::default(),
        }
    }

    /// A free slot of the root CNode.
    pub fn slot(&mut self) -> CPtr {
        assert!(self.next_slot < self.end_slot, "root CNode: no free slot left");
        self.next_slot += 1;
        self.next_slot - 1
    }

    /// Creates one object of `object_type` (`size_bits` for variable-size
    /// types) and returns the slot of its capability.
    pub fn retype(&mut self, object_type: ObjectType, size_bits: u64) -> CPtr {
        let slot = self.slot();
        while let Some(untyped) = self.untypeds.get(self.current) {
            match Untyped(untyped.slot).retype(object_type, size_bits, Slot::in_root(init_cap::CNODE, slot), 1) {
                Ok(()) => {
                    self.retyped += 1 << object_type.memory_bits(size_bits);
                    return slot;
                }
                Err(Sel4Error::NotEnoughMemory) => self.current += 1,
                Err(e) => panic!("retype of a {object_type:?} failed: {e:?}"),
            }
        }
        panic!("untyped memory exhausted (retyping a {object_type:?})")
    }

    /// Gives the VSpace `pml4` an ASID, from a new ASID pool when those
    /// made so far are full.
    pub fn assign_asid(&mut self, pml4: CPtr) {
        // Out of `self` while the closure retypes from `self`.
        let mut asids = core::mem::take(&mut self.asids);
        let assigned = asids.assign(&mut Syscalls, pml4, |_| {
            Ok(PoolMemory { untyped: self.retype(ObjectType::Untyped, size::ASID_POOL_BITS), slot: self.slot() })
        });
        self.asids = asids;
        assigned.unwrap_or_else(|e| panic!("ASID assign failed ({} pools): {e:?}", self.asids.count()));
    }

    /// Bytes of untyped memory the objects retyped so far take (what the
    /// untypeds' alignment leaves unused between them not counted).
    pub fn retyped_bytes(&self) -> u64 {
        self.retyped
    }
}
