//! The launch library's ASID pools over the host model of seL4: VSpaces up
//! to the kernel's ASID ceiling each get their own ASID, pools are made only
//! when those there are full, a freed ASID of an older pool is given again
//! before a pool is made, and failures are the kernel's answers.

use sel4_launch::asid_pools::{AsidPools, PoolMemory, ASID_POOLS};
use sel4_layer::abi::{init_cap, object_type, size, CPtr};
use sel4_layer::kernel::Kernel;
use sel4_layer::{CNode, Sel4Error};
use sel4_model::{BootConfig, Cap, Model, RootTask};
use std::collections::BTreeSet;

/// ASIDs there are: 512 in each pool.
const ASIDS: usize = ASID_POOLS * 512;

/// A booted model, its root task's allocator, and the pools under test.
struct Rig {
    m: Model,
    rt: RootTask,
    pools: AsidPools,
    /// Pools made of memory the rig gave.
    made: usize,
}

impl Rig {
    fn new() -> Rig {
        let (m, info) = Model::boot(&BootConfig::default());
        Rig { rt: RootTask::new(&info), m, pools: AsidPools::default(), made: 0 }
    }

    fn pml4(&mut self) -> CPtr {
        self.rt.retype(&mut self.m, object_type::X64_PML4, 0).expect("PML4")
    }

    /// Assigns an ASID to `pml4`, giving a 4 KiB untyped and a slot when
    /// asked.
    fn assign(&mut self, pml4: CPtr) -> Result<(), Sel4Error> {
        let Rig { m, rt, pools, made } = self;
        pools.assign(m, pml4, |m| {
            *made += 1;
            Ok(PoolMemory { untyped: rt.retype(m, object_type::UNTYPED, size::ASID_POOL_BITS)?, slot: rt.slot()? })
        })
    }

    /// A new VSpace with an ASID, and the ASID.
    fn vspace(&mut self) -> (CPtr, u16) {
        let pml4 = self.pml4();
        self.assign(pml4).unwrap_or_else(|e| panic!("assign: {e:?}"));
        (pml4, self.asid(pml4).expect("an ASID"))
    }

    fn asid(&self, pml4: CPtr) -> Option<u16> {
        match self.m.cap_at(pml4) {
            Some(Cap::Pml4 { asid, .. }) => asid,
            other => panic!("{other:?}"),
        }
    }

    fn delete(&mut self, cptr: CPtr) {
        self.m.cnode_delete(CNode::root_task(init_cap::CNODE), cptr).expect("delete");
    }
}

#[test]
fn vspaces_up_to_the_asid_ceiling_each_get_their_own_asid() {
    let mut rig = Rig::new();
    // ASID 0 is never given and the root task has ASID 1.
    let mut asids = BTreeSet::from([0, 1]);
    while asids.len() < ASIDS {
        let (_, asid) = rig.vspace();
        assert!(asids.insert(asid), "ASID {asid} given twice");
        assert_eq!(rig.pools.count(), usize::from(asid) / 512 + 1, "a pool made before the last was full");
    }
    assert_eq!((rig.pools.count(), rig.made), (ASID_POOLS, ASID_POOLS - 1));
    let pml4 = rig.pml4();
    let accounting = rig.m.accounting();
    assert_eq!(rig.assign(pml4), Err(Sel4Error::DeleteFirst), "every ASID is in use");
    assert_eq!(rig.asid(pml4), None);
    assert_eq!(rig.made, ASID_POOLS - 1, "no memory asked for a ninth pool");
    assert_eq!(rig.m.accounting(), accounting, "the refused assign changed nothing");
}

#[test]
fn a_freed_asid_of_an_older_pool_is_given_before_a_pool_is_made() {
    let mut rig = Rig::new();
    let first: Vec<(CPtr, u16)> = (0..600).map(|_| rig.vspace()).collect();
    assert_eq!(rig.pools.count(), 2);
    let (pml4, freed) = first[100];
    assert!(freed < 512);
    rig.delete(pml4);
    // The second pool, which gave the last ASID, still has room: it gives.
    let (_, asid) = rig.vspace();
    assert!(asid >= 512, "ASID {asid}");
    // 600 VSpaces hold an ASID: fill the rest of the two pools but the
    // freed one (the first pool gives 510, the second 512).
    for _ in 600..510 + 512 - 1 {
        assert!(rig.vspace().1 >= 512);
    }
    // The second pool is full now: the freed ASID of the first comes back.
    assert_eq!(rig.vspace().1, freed);
    assert_eq!((rig.pools.count(), rig.made), (2, 1));
    // And with both full, a third pool is made.
    assert!(rig.vspace().1 >= 1024);
    assert_eq!((rig.pools.count(), rig.made), (3, 2));
}

#[test]
fn a_refused_assign_is_the_kernels_answer_and_makes_no_pool() {
    let mut rig = Rig::new();
    let endpoint = rig.rt.retype(&mut rig.m, object_type::ENDPOINT, 0).unwrap();
    assert_eq!(rig.assign(endpoint), Err(Sel4Error::InvalidCapability));
    let (pml4, _) = rig.vspace();
    assert_eq!(rig.assign(pml4), Err(Sel4Error::InvalidCapability), "it has an ASID already");
    assert_eq!((rig.pools.count(), rig.made), (1, 0));
}
