//! Programs the root task starts: an ELF image loaded into a new VSpace,
//! with its own CSpace, IPC buffer and thread.

use crate::allocator::Allocator;
use crate::vspace::VSpace;
use client_lib::sel4::abi::{init_cap, object_type, size, CPtr};
use client_lib::sel4::{CNode, CapRights, Page, Tcb, UserContext};
use elf::abi::{PF_W, PT_LOAD};
use elf::endian::LittleEndian;
use elf::ElfBytes;

/// Where a program's IPC buffer is mapped.
pub const IPC_BUFFER_VADDR: u64 = 0x1000_0000;
/// Slots in a program's CNode: 2^12.
pub const CNODE_BITS: u64 = 12;
/// Where the root task maps a frame of its own to fill it.
const SCRATCH_VADDR: u64 = 0x80_0000_0000;
const PAGE: u64 = 1 << size::PAGE_BITS;

/// Slots the root task fills in every program's CNode.
pub mod slot {
    /// The endpoint the program calls (badged with its identity).
    pub const ENDPOINT: u64 = 1;
    /// Where the kernel sends the program's faults (badged as faults).
    pub const FAULT: u64 = 2;
}

/// A loaded program, ready to start.
pub struct Process {
    pub tcb: Tcb,
    pub cnode: CNode,
    entry: u64,
}

impl Process {
    /// Loads the ELF image `image` into a new VSpace, with a new CNode and
    /// a thread of `priority` whose faults go to its slot `slot::FAULT`.
    pub fn load(alloc: &mut Allocator, root: &mut VSpace, name: &str, image: &[u8], priority: u8) -> Process {
        let file = ElfBytes::<LittleEndian>::minimal_parse(image).unwrap_or_else(|e| panic!("{name}: bad ELF: {e}"));
        let segments = file.segments().unwrap_or_else(|| panic!("{name}: ELF without program headers"));
        let loads = || segments.iter().filter(|s| s.p_type == PT_LOAD && s.p_memsz > 0);
        let mut vspace = VSpace::new(alloc);
        let start = loads().map(|s| s.p_vaddr).min().unwrap_or_else(|| panic!("{name}: nothing to load")) & !(PAGE - 1);
        let end = loads().map(|s| s.p_vaddr + s.p_memsz).max().unwrap_or(start);
        for page in (start..end).step_by(PAGE as usize) {
            let overlapping = || loads().filter(move |s| s.p_vaddr < page + PAGE && s.p_vaddr + s.p_memsz > page);
            if overlapping().next().is_none() {
                continue;
            }
            let frame = alloc.retype(object_type::X86_4K, 0);
            root.map(alloc, frame, SCRATCH_VADDR, CapRights::READ_WRITE);
            for s in overlapping() {
                let from = s.p_vaddr.max(page);
                let to = (s.p_vaddr + s.p_filesz).min(page + PAGE);
                if from < to {
                    let offset = (s.p_offset + from - s.p_vaddr) as usize;
                    let bytes = image
                        .get(offset..offset + (to - from) as usize)
                        .unwrap_or_else(|| panic!("{name}: segment outside the file"));
                    // SAFETY: the frame is mapped read-write at
                    // SCRATCH_VADDR in this VSpace for the whole page, and
                    // `from - page + len <= PAGE`.
                    unsafe {
                        core::ptr::copy_nonoverlapping(
                            bytes.as_ptr(),
                            (SCRATCH_VADDR + from - page) as *mut u8,
                            bytes.len(),
                        )
                    };
                }
            }
            Page(frame).unmap().unwrap_or_else(|e| panic!("{name}: scratch unmap failed: {e:?}"));
            let writable = overlapping().any(|s| s.p_flags & PF_W != 0);
            vspace.map(alloc, frame, page, if writable { CapRights::READ_WRITE } else { CapRights::READ });
        }
        let ipc_frame = alloc.retype(object_type::X86_4K, 0);
        vspace.map(alloc, ipc_frame, IPC_BUFFER_VADDR, CapRights::READ_WRITE);
        let cnode = CNode { cap: alloc.retype(object_type::CAP_TABLE, CNODE_BITS), depth: CNODE_BITS as u8 };
        let tcb = Tcb(alloc.retype(object_type::TCB, 0));
        tcb.configure(
            slot::FAULT,
            priority,
            priority,
            cnode.cap,
            CNode::guard_data(0, 64 - CNODE_BITS),
            vspace.pml4,
            IPC_BUFFER_VADDR,
            ipc_frame,
        )
        .unwrap_or_else(|e| panic!("{name}: TCB configure failed: {e:?}"));
        Process { tcb, cnode, entry: file.ehdr.e_entry }
    }

    /// Puts a copy of the root task's cap `src` in the program's slot
    /// `dest`, with `rights` and, for an endpoint, `badge`.
    pub fn give(&self, dest: u64, src: CPtr, rights: CapRights, badge: u64) {
        self.cnode
            .mint(dest, CNode::root_task(init_cap::CNODE), src, rights, badge)
            .unwrap_or_else(|e| panic!("mint into slot {dest} failed: {e:?}"));
    }

    /// Starts the program's thread with `arg0` and `arg1` in rsi and rdx
    /// (rdi holds its IPC buffer address).
    pub fn start(&self, arg0: u64, arg1: u64) {
        let context =
            UserContext { rip: self.entry, rdi: IPC_BUFFER_VADDR, rsi: arg0, rdx: arg1, ..Default::default() };
        self.tcb.write_registers(true, &context).unwrap_or_else(|e| panic!("starting the thread failed: {e:?}"));
    }
}
