//! The model as a [`Kernel`]: each method is one invocation by the running
//! thread, looked up as `handleInvocation` does (the invoked CPtr, then
//! each capability argument, in the thread's CSpace), dispatched on the
//! invoked capability's type as `decodeInvocation` does.

use crate::cap::Cap;
use crate::cnode::{Target, Transfer};
use crate::hazard::Hazard;
use crate::model::{Model, SlotId};
use sel4_layer::abi::{CPtr, Word};
use sel4_layer::kernel::Kernel;
use sel4_layer::{CNode, CapRights, PagingLevel, Sel4Error, Slot};

impl Model {
    /// The slots of the invoked capability and of the capability
    /// arguments. An empty slot or a zombie is `InvalidCapability`; an
    /// endpoint or notification would take the call as a message.
    pub(crate) fn invocation<const N: usize>(
        &mut self,
        cptr: CPtr,
        args: [CPtr; N],
    ) -> Result<(SlotId, [SlotId; N]), Sel4Error> {
        let slot = self.lookup_slot(cptr)?;
        let mut arg_slots = [slot; N];
        for (arg, cptr) in arg_slots.iter_mut().zip(args) {
            *arg = self.lookup_slot(cptr)?;
        }
        match self.cap(slot) {
            Cap::Null | Cap::Zombie { .. } => Err(Sel4Error::InvalidCapability),
            Cap::Endpoint { rights, .. } | Cap::Notification { rights, .. } if !rights.write => {
                Err(Sel4Error::InvalidCapability)
            }
            Cap::Endpoint { .. } | Cap::Notification { .. } => Err(self.hazard(Hazard::Ipc { cptr })),
            _ => Ok((slot, arg_slots)),
        }
    }
}

impl Model {
    /// CNode Copy, Mint or Move (by `how`), invoked on `dest`'s CNode with
    /// `src`'s as the capability argument.
    fn transfer(
        &mut self,
        dest: CNode,
        dest_index: Word,
        src: CNode,
        src_index: Word,
        how: Transfer,
    ) -> Result<(), Sel4Error> {
        let (slot, [src_root]) = self.invocation(dest.cap, [src.cap])?;
        self.cnode_transfer(target(slot, dest, dest_index), target(src_root, src, src_index), how)
    }
}

/// The CNode-relative place `index` of `node`, whose capability is in
/// `slot`.
fn target(slot: SlotId, node: CNode, index: Word) -> Target {
    Target { root: slot, index, depth: node.depth as Word }
}

impl Kernel for Model {
    fn untyped_retype(
        &mut self,
        untyped: CPtr,
        object_type: Word,
        size_bits: Word,
        dest: Slot,
        num_objects: Word,
    ) -> Result<(), Sel4Error> {
        let (slot, [root]) = self.invocation(untyped, [dest.root])?;
        self.retype(slot, root, object_type, size_bits, dest, num_objects)
    }

    fn cnode_copy(
        &mut self,
        dest: CNode,
        dest_index: Word,
        src: CNode,
        src_index: Word,
        rights: CapRights,
    ) -> Result<(), Sel4Error> {
        self.transfer(dest, dest_index, src, src_index, Transfer::Copy(rights))
    }

    fn cnode_mint(
        &mut self,
        dest: CNode,
        dest_index: Word,
        src: CNode,
        src_index: Word,
        rights: CapRights,
        badge: Word,
    ) -> Result<(), Sel4Error> {
        self.transfer(dest, dest_index, src, src_index, Transfer::Mint(rights, badge))
    }

    fn cnode_move(&mut self, dest: CNode, dest_index: Word, src: CNode, src_index: Word) -> Result<(), Sel4Error> {
        self.transfer(dest, dest_index, src, src_index, Transfer::Move)
    }

    fn cnode_delete(&mut self, node: CNode, index: Word) -> Result<(), Sel4Error> {
        let (slot, []) = self.invocation(node.cap, [])?;
        self.cnode_delete_at(target(slot, node, index))
    }

    fn cnode_revoke(&mut self, node: CNode, index: Word) -> Result<(), Sel4Error> {
        let (slot, []) = self.invocation(node.cap, [])?;
        self.cnode_revoke_at(target(slot, node, index))
    }

    fn page_map(
        &mut self,
        frame: CPtr,
        vspace: CPtr,
        vaddr: Word,
        rights: CapRights,
        _attrs: Word,
    ) -> Result<(), Sel4Error> {
        let (slot, [vspace]) = self.invocation(frame, [vspace])?;
        self.page_map_at(slot, vspace, vaddr, rights)
    }

    fn page_remap(&mut self, frame: CPtr, vspace: CPtr, rights: CapRights, _attrs: Word) -> Result<(), Sel4Error> {
        let (slot, [vspace]) = self.invocation(frame, [vspace])?;
        self.page_remap_at(slot, vspace, rights)
    }

    fn page_unmap(&mut self, frame: CPtr) -> Result<(), Sel4Error> {
        let (slot, []) = self.invocation(frame, [])?;
        self.page_unmap_at(slot)
    }

    fn page_get_address(&mut self, frame: CPtr) -> Result<Word, Sel4Error> {
        let (slot, []) = self.invocation(frame, [])?;
        self.page_address_at(slot)
    }

    fn paging_structure_map(
        &mut self,
        structure: CPtr,
        level: PagingLevel,
        vspace: CPtr,
        vaddr: Word,
        _attrs: Word,
    ) -> Result<(), Sel4Error> {
        let (slot, [vspace]) = self.invocation(structure, [vspace])?;
        self.structure_map_at(slot, level, vspace, vaddr)
    }

    fn paging_structure_unmap(&mut self, structure: CPtr, level: PagingLevel) -> Result<(), Sel4Error> {
        let (slot, []) = self.invocation(structure, [])?;
        self.structure_unmap_at(slot, level)
    }

    fn asid_pool_assign(&mut self, pool: CPtr, vspace: CPtr) -> Result<(), Sel4Error> {
        let (slot, [vspace]) = self.invocation(pool, [vspace])?;
        self.asid_assign_at(slot, vspace)
    }

    fn asid_control_make_pool(
        &mut self,
        control: CPtr,
        untyped: CPtr,
        dest: CNode,
        index: Word,
    ) -> Result<(), Sel4Error> {
        let (slot, [untyped, root]) = self.invocation(control, [untyped, dest.cap])?;
        self.make_pool_at(slot, untyped, root, index, dest.depth as Word)
    }
}
