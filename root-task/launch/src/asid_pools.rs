//! ASIDs for the VSpaces a root task makes. seL4 x86-64 has [`ASID_POOLS`]
//! pools of 512 ASIDs (4,096, of which ASID 0 is never given and ASID 1 is
//! the root task's own); the root task starts with one pool, and
//! [`AsidPools`] makes the others with ASIDControl MakePool, each from a
//! 4 KiB untyped, when those it has are full.

use sel4_layer::abi::{init_cap, CPtr};
use sel4_layer::kernel::Kernel;
use sel4_layer::{CNode, Sel4Error};

/// ASID pools of seL4 x86-64: the kernel's `nASIDPools`
/// (`BIT(asidHighBits)`, `asidHighBits` = 3). libsel4's headers do not
/// name it, so the `images` ABI test cannot compare it; the host model of
/// seL4 has the same rule, and `tests/asid_pools.rs` checks the two agree.
pub const ASID_POOLS: usize = 8;

/// What one more pool is made of: a 4 KiB untyped
/// ([`size::ASID_POOL_BITS`](sel4_layer::abi::size::ASID_POOL_BITS)) with
/// no children, and an empty slot of the root CNode for the pool's
/// capability.
#[derive(Clone, Copy, Debug)]
pub struct PoolMemory {
    /// The untyped the pool is made of.
    pub untyped: CPtr,
    /// Where the pool's capability goes.
    pub slot: CPtr,
}

/// The root task's ASID pools, the initial one first.
#[derive(Debug)]
pub struct AsidPools {
    /// Their capabilities.
    pools: heapless::Vec<CPtr, ASID_POOLS>,
    /// The pool the last ASID came from, tried first.
    current: usize,
}

impl Default for AsidPools {
    /// The initial pool alone.
    fn default() -> AsidPools {
        let mut pools = heapless::Vec::new();
        // The vector is empty: the push fits.
        let _ = pools.push(init_cap::ASID_POOL);
        AsidPools { pools, current: 0 }
    }
}

impl AsidPools {
    /// Gives the VSpace `pml4` an ASID: from the pool the last one came
    /// from, else from the first other pool with one free, else from a new
    /// pool made of what `memory` gives (asked for only then). When all
    /// [`ASID_POOLS`] pools are full, the kernel's answer to the last
    /// assign (`DeleteFirst`); any other failure is the kernel's answer to
    /// the invocation that failed.
    pub fn assign<K: Kernel>(
        &mut self,
        kernel: &mut K,
        pml4: CPtr,
        memory: impl FnOnce(&mut K) -> Result<PoolMemory, Sel4Error>,
    ) -> Result<(), Sel4Error> {
        let others = (0..self.pools.len()).filter(|&i| i != self.current);
        for i in core::iter::once(self.current).chain(others) {
            let Some(&pool) = self.pools.get(i) else { continue };
            match kernel.asid_pool_assign(pool, pml4) {
                Ok(()) => {
                    self.current = i;
                    return Ok(());
                }
                Err(Sel4Error::DeleteFirst) => {}
                Err(e) => return Err(e),
            }
        }
        if self.pools.is_full() {
            return Err(Sel4Error::DeleteFirst);
        }
        let PoolMemory { untyped, slot } = memory(kernel)?;
        kernel.asid_control_make_pool(init_cap::ASID_CONTROL, untyped, CNode::root_task(init_cap::CNODE), slot)?;
        // Not full: the push fits.
        let _ = self.pools.push(slot);
        self.current = self.pools.len() - 1;
        kernel.asid_pool_assign(slot, pml4)
    }

    /// The pools there are, the initial one included.
    pub fn count(&self) -> usize {
        self.pools.len()
    }
}
