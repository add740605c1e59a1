//! Threads, as far as the model needs them: whose CSpace the invocations
//! resolve in. A root task gives a new thread its CSpace and VSpace with
//! TCB SetSpace (the part of TCB Configure that concerns capabilities),
//! and the test then runs as that thread.

use crate::cap::Cap;
use crate::model::{Model, SlotId};
use crate::object::{ObjectId, TCB_CTABLE, TCB_VTABLE};
use sel4_layer::abi::{CPtr, Word};
use sel4_layer::Sel4Error;

impl Model {
    /// `seL4_TCB_SetSpace` without the fault endpoint (`decodeSetSpace`,
    /// `invokeTCB_ThreadControl`): the thread `tcb` gets a copy of the
    /// CNode `cspace_root` (with the guard data `cspace_root_data`, if not
    /// 0) as its CSpace root and a copy of the PML4 `vspace_root`, which
    /// must have an ASID, as its VSpace root; the old roots are deleted.
    pub fn tcb_set_space(
        &mut self,
        tcb: CPtr,
        cspace_root: CPtr,
        cspace_root_data: Word,
        vspace_root: CPtr,
    ) -> Result<(), Sel4Error> {
        let (slot, [c_slot, v_slot]) = self.invocation(tcb, [cspace_root, vspace_root])?;
        let Cap::Thread { object } = self.cap(slot) else { return Err(Sel4Error::IllegalOperation) };
        let mut c_cap = self.cap(c_slot);
        if cspace_root_data != 0 {
            c_cap = c_cap.with_data(cspace_root_data);
        }
        let c_cap = self.derive_cap(c_slot, c_cap)?;
        if !matches!(c_cap, Cap::CNode { .. }) {
            return Err(Sel4Error::IllegalOperation);
        }
        let v_cap = self.derive_cap(v_slot, self.cap(v_slot))?;
        if Self::native_root(v_cap).is_none() {
            return Err(Sel4Error::IllegalOperation);
        }
        let thread = Cap::Thread { object };
        for (index, new_cap, src) in [(TCB_CTABLE, c_cap, c_slot), (TCB_VTABLE, v_cap, v_slot)] {
            let root = SlotId { object, index };
            self.cte_delete(root, true);
            if self.same_object_as(&new_cap, &self.cap(src)) && self.same_object_as(&thread, &self.cap(slot)) {
                self.cte_insert(new_cap, src, root);
            }
        }
        Ok(())
    }

    /// Makes `thread` the one whose invocations the `Kernel` methods are.
    pub fn run_as(&mut self, thread: ObjectId) {
        self.current = thread;
    }

    /// The thread whose invocations the `Kernel` methods are.
    pub fn current_thread(&self) -> ObjectId {
        self.current
    }
}
