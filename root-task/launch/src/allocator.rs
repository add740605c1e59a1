//! Kernel objects for the root task: free slots of its CNode and untyped
//! RAM from bootinfo, handed out one object (or one run of objects) at a
//! time, and ASIDs for the VSpaces it makes.
//!
//! seL4 zeroes a boot untyped whole at its first Retype (it starts out
//! "full", and a Retype of an untyped without children resets it first),
//! which under QEMU's software CPU takes about half a minute per GiB. So
//! objects come from untypeds already in use when one has room, otherwise
//! from the smallest fresh one they fit in: the memory zeroed is about the
//! memory used, however large the guest's RAM.

use crate::asid_pools::{AsidPools, PoolMemory};
use sel4_layer::abi::{init_cap, size, CPtr, ObjectType};
use sel4_layer::bootinfo::BootInfo;
use sel4_layer::kernel::Syscalls;
use sel4_layer::{Sel4Error, Slot, Untyped};

/// A boot untyped and how far into it objects were retyped.
#[derive(Clone, Copy, Debug)]
struct Region {
    cap: CPtr,
    size_bits: u8,
    /// Bytes from its start below the kernel's free index: objects, and
    /// the gaps their alignment left.
    used: u64,
}

impl Region {
    /// Where `count` objects of 2^`bits` bytes would end, if they fit
    /// (the kernel's rule: the bytes after the free index hold them, and
    /// they start at the free index aligned to their size).
    fn end_of(&self, bits: u64, count: u64) -> Option<u64> {
        let size = 1u64 << self.size_bits;
        let fits = bits < u64::from(u64::BITS) && (size - self.used) >> bits >= count;
        fits.then(|| self.used.next_multiple_of(1 << bits) + (count << bits))
    }
}

/// Allocates slots and retypes objects from the boot untypeds.
pub struct Allocator {
    next_slot: CPtr,
    end_slot: CPtr,
    /// RAM untypeds, smallest first.
    regions: heapless::Vec<Region, { size::MAX_BOOTINFO_UNTYPED }>,
    asids: AsidPools,
    /// The CPUs the kernel booted (bootinfo's `numNodes`).
    cpus: u64,
}

impl Allocator {
    /// Takes the empty slots and RAM untypeds that bootinfo lists.
    pub fn new(bootinfo: &BootInfo) -> Allocator {
        let mut regions: heapless::Vec<Region, { size::MAX_BOOTINFO_UNTYPED }> = bootinfo
            .untypeds()
            .filter(|u| u.desc.is_device == 0)
            .map(|u| Region { cap: u.slot, size_bits: u.desc.size_bits, used: 0 })
            .collect();
        regions.sort_unstable_by_key(|r| r.size_bits);
        let empty = bootinfo.empty;
        let cpus = bootinfo.num_nodes;
        Allocator { next_slot: empty.start, end_slot: empty.end, regions, asids: AsidPools::default(), cpus }
    }

    /// The CPUs the kernel booted, as bootinfo says: what the programs it
    /// starts are told to serve.
    pub fn cpus(&self) -> u64 {
        self.cpus
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
        self.retype_run(object_type, size_bits, 1)
    }

    /// Creates `count` objects of `object_type` (`size_bits` for
    /// variable-size types) in consecutive slots and returns the first.
    pub fn retype_run(&mut self, object_type: ObjectType, size_bits: u64, count: u64) -> CPtr {
        assert!(count <= self.end_slot - self.next_slot, "root CNode: fewer than {count} free slots left");
        let first = self.next_slot;
        self.next_slot += count;
        let bits = object_type.memory_bits(size_bits);
        let mut made = 0;
        while made < count {
            let batch = (count - made).min(size::RETYPE_MAX_OBJECTS);
            let in_use = |r: &Region| r.used > 0 && r.end_of(bits, batch).is_some();
            let fits = |r: &Region| r.end_of(bits, batch).is_some();
            let Some(i) = self.regions.iter().position(in_use).or_else(|| self.regions.iter().position(fits)) else {
                panic!("untyped memory exhausted (retyping {batch} {object_type:?})")
            };
            let region = &mut self.regions[i];
            let dest = Slot::in_root(init_cap::CNODE, first + made);
            match Untyped(region.cap).retype(object_type, size_bits, dest, batch) {
                Ok(()) => {
                    region.used = region.end_of(bits, batch).unwrap_or(1 << region.size_bits);
                    made += batch;
                }
                // Not as the kernel's rule says: take it as full.
                Err(Sel4Error::NotEnoughMemory) => region.used = 1 << region.size_bits,
                Err(e) => panic!("retype of {batch} {object_type:?} failed: {e:?}"),
            }
        }
        first
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

    /// Bytes of untyped memory the objects retyped so far took, with the
    /// gaps their alignment left between them.
    pub fn untyped_used(&self) -> u64 {
        self.regions.iter().map(|r| r.used).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::Region;
    use sel4_layer::abi::{init_cap, ObjectType};
    use sel4_layer::kernel::Kernel;
    use sel4_layer::{Sel4Error, Slot};
    use sel4_model::{BootConfig, Model, RootTask};

    /// The allocator's prediction of where a Retype's objects end is the
    /// kernel's, as the model has it: for objects of mixed sizes and
    /// counts, until the untyped is full.
    #[test]
    fn the_free_index_moves_as_the_kernel_moves_it() {
        let (mut m, info) = Model::boot(&BootConfig { root_cnode_bits: 16, untyped_bits: vec![20] });
        let mut rt = RootTask::new(&info);
        let cap = info.untypeds[0].cptr;
        let mut region = Region { cap, size_bits: 20, used: 0 };
        let steps = [(ObjectType::Endpoint, 0, 3), (ObjectType::SmallPage, 0, 5), (ObjectType::Tcb, 0, 1)];
        // 768 KiB are left after the CNode: 13 untypeds of 64 KiB do not
        // fit, 12 fill it.
        let fill = [(ObjectType::CNode, 12, 1), (ObjectType::Untyped, 16, 13), (ObjectType::Untyped, 16, 12)];
        for &(object_type, size_bits, count) in steps.iter().chain(&fill).chain(&[(ObjectType::SmallPage, 0, 1)]) {
            let first = rt.slot().unwrap();
            for _ in 1..count {
                rt.slot().unwrap();
            }
            let dest = Slot::in_root(init_cap::CNODE, first);
            let made = m.untyped_retype(cap, object_type.word(), size_bits, dest, count);
            match region.end_of(object_type.memory_bits(size_bits), count) {
                Some(end) => {
                    assert_eq!(made, Ok(()), "{object_type:?}");
                    region.used = end;
                }
                None => assert_eq!(made, Err(Sel4Error::NotEnoughMemory), "{object_type:?}"),
            }
            assert_eq!(m.untyped_at(cap).unwrap().watermark, region.used, "after {count} {object_type:?}");
        }
        assert_eq!(region.used, 1 << 20, "full");
    }
}
