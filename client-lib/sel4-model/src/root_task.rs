//! Setting a system up as the root task does, through the [`Kernel`]
//! methods (and TCB SetSpace): the initial thread's free slots and untyped
//! memory handed out one object at a time, VSpaces with ASIDs from the
//! initial pool, and processes with their own guarded CNode and VSpace;
//! the memory server's process as `root-task/src/memserver_process.rs`
//! builds it.

use crate::boot::BootInfo;
use crate::model::Model;
use crate::object::ObjectId;
use memserver_protocol::bootstrap::{badge, cspace, server_slot, ServerStart, KERNEL_CPUS, SERVER_CNODE_BITS};
use sel4_layer::abi::{init_cap, object_type, CPtr, Word, WORD_BITS};
use sel4_layer::kernel::Kernel;
use sel4_layer::{CNode, CapRights, Sel4Error, Slot};

/// The initial thread's allocator of slots and objects.
#[derive(Clone, Debug)]
pub struct RootTask {
    next_slot: CPtr,
    end_slot: CPtr,
    /// Untyped capabilities, largest first.
    untypeds: Vec<CPtr>,
    /// The one retyped from now.
    current: usize,
}

/// A process the root task made: its capabilities in the root task's
/// CSpace, and its thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Process {
    /// Its TCB.
    pub tcb: CPtr,
    /// Its thread, to run as.
    pub thread: ObjectId,
    /// Its CNode.
    pub cnode: CPtr,
    /// log2 of its CNode's slots.
    pub cnode_bits: u32,
    /// Its VSpace.
    pub vspace: CPtr,
}

/// The memory server's process with the capabilities of the bootstrap
/// contract (`memserver_protocol::bootstrap`), and what its start-up registers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryServer {
    /// The process.
    pub process: Process,
    /// Its start-up arguments: untypeds and the first free slot.
    pub start: ServerStart,
}

impl RootTask {
    /// The allocator over what bootinfo lists.
    pub fn new(info: &BootInfo) -> RootTask {
        let mut untypeds = info.untypeds.clone();
        untypeds.sort_by_key(|u| std::cmp::Reverse(u.size_bits));
        RootTask {
            next_slot: info.empty.start,
            end_slot: info.empty.end,
            untypeds: untypeds.iter().map(|u| u.cptr).collect(),
            current: 0,
        }
    }

    /// A free slot of the root CNode.
    pub fn slot(&mut self) -> Result<CPtr, Sel4Error> {
        if self.next_slot >= self.end_slot {
            return Err(Sel4Error::RangeError);
        }
        self.next_slot += 1;
        Ok(self.next_slot - 1)
    }

    /// One object of `object_type` (`size_bits` for untyped and CNodes),
    /// from the first untyped that still has room.
    pub fn retype(&mut self, kernel: &mut impl Kernel, object_type: Word, size_bits: Word) -> Result<CPtr, Sel4Error> {
        let slot = self.slot()?;
        while let Some(&untyped) = self.untypeds.get(self.current) {
            let dest = Slot::in_root(init_cap::CNODE, slot);
            match kernel.untyped_retype(untyped, object_type, size_bits, dest, 1) {
                Err(Sel4Error::NotEnoughMemory) => self.current += 1,
                result => return result.map(|()| slot),
            }
        }
        Err(Sel4Error::NotEnoughMemory)
    }

    /// A new VSpace with an ASID from the initial pool.
    pub fn vspace(&mut self, kernel: &mut impl Kernel) -> Result<CPtr, Sel4Error> {
        let pml4 = self.retype(kernel, object_type::X64_PML4, 0)?;
        kernel.asid_pool_assign(init_cap::ASID_POOL, pml4)?;
        Ok(pml4)
    }

    /// A process with a thread, a CNode of 2^`cnode_bits` slots (guarded
    /// so its CPtrs resolve with the full word) and a new VSpace.
    pub fn process(&mut self, model: &mut Model, cnode_bits: u32) -> Result<Process, Sel4Error> {
        let vspace = self.vspace(model)?;
        let cnode = self.retype(model, object_type::CAP_TABLE, cnode_bits as Word)?;
        let tcb = self.retype(model, object_type::TCB, 0)?;
        let guard = CNode::guard_data(0, WORD_BITS - cnode_bits as Word);
        model.tcb_set_space(tcb, cnode, guard, vspace)?;
        let thread = model.object_of(tcb).ok_or(Sel4Error::FailedLookup)?;
        Ok(Process { tcb, thread, cnode, cnode_bits, vspace })
    }

    /// The memory server's process: endpoint, its CNode (the root of its
    /// CSpace, guarded as `cspace` says) and its VSpace, the report
    /// notification and the fault endpoint, and `count` untypeds of
    /// 2^`bits` bytes from `server_slot::UNTYPED_START`, as
    /// `MemServerProcess::launch` gives them.
    pub fn memory_server(&mut self, model: &mut Model, count: u64, bits: u64) -> Result<MemoryServer, Sel4Error> {
        let process = self.process(model, SERVER_CNODE_BITS as u32)?;
        let endpoint = self.retype(model, object_type::ENDPOINT, 0)?;
        let root_endpoint = self.retype(model, object_type::ENDPOINT, 0)?;
        let notice = self.retype(model, object_type::NOTIFICATION, 0)?;
        process.give(model, server_slot::ENDPOINT, endpoint, 0)?;
        process.give(model, server_slot::CNODE, process.cnode, 0)?;
        process.give(model, server_slot::VSPACE, process.vspace, 0)?;
        process.give(model, server_slot::REPORT, notice, badge::REPORT_NOTICE)?;
        process.give(model, server_slot::FAULT, root_endpoint, badge::SERVER_FAULT)?;
        for i in 0..count {
            let untyped = self.retype(model, object_type::UNTYPED, bits)?;
            process.give(model, server_slot::UNTYPED_START + i, untyped, 0)?;
        }
        let guard = CNode::guard_data(0, cspace::ROOT_GUARD_SIZE);
        model.tcb_set_space(process.tcb, process.cnode, guard, process.vspace)?;
        let first_free_slot = server_slot::UNTYPED_START + count;
        Ok(MemoryServer {
            process,
            start: ServerStart {
                untypeds: count as u32,
                untyped_bits: bits as u32,
                first_free_slot,
                cpus: KERNEL_CPUS as u32,
            },
        })
    }
}

impl Process {
    /// Mints the root task's capability `src` (all rights, `badge`) into
    /// slot `dest` of the process's CNode.
    pub fn give(&self, kernel: &mut impl Kernel, dest: Word, src: CPtr, badge: Word) -> Result<(), Sel4Error> {
        let cnode = CNode { cap: self.cnode, depth: self.cnode_bits as u8 };
        kernel.cnode_mint(cnode, dest, CNode::root_task(init_cap::CNODE), src, CapRights::ALL, badge)
    }
}
