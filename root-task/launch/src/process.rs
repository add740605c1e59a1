//! Programs the root task starts: an ELF image loaded into a new VSpace,
//! with its own CNode, and threads with their own IPC buffers and stacks.

use crate::allocator::Allocator;
use crate::elf_image::ElfImage;
use crate::vspace::VSpace;
use sel4_layer::abi::{init_cap, size, CPtr, ObjectType};
use sel4_layer::{CNode, CapRights, Page, Tcb, UserContext};

/// Where a program's first thread's IPC buffer is mapped (as the boot
/// contract says); thread n's is n pages above.
const IPC_BUFFERS_VADDR: u64 = client_lib::boot_contract::IPC_BUFFER;
/// Where the stacks of threads after the first are mapped, one per
/// `STACK_STRIDE` (the gap below each is an unmapped guard).
const STACKS_VADDR: u64 = 0x2000_0000;
const STACK_STRIDE: u64 = 0x10_0000;
/// Pages of stack for threads after the first (the first runs on the
/// program's static stack).
const STACK_PAGES: u64 = 16;
/// Where the root task maps a frame of its own to fill it.
const SCRATCH_VADDR: u64 = 0x80_0000_0000;
const PAGE: u64 = 1 << size::PAGE_BITS;

/// What to load and how.
pub struct ProcessSpec<'a> {
    /// The program's name, for messages.
    pub name: &'static str,
    /// Its ELF image.
    pub image: &'a [u8],
    /// Priority (and maximum controlled priority) of its threads.
    pub priority: u8,
    /// Its CNode has 2^cnode_bits slots.
    pub cnode_bits: u64,
    /// The slot of its CNode that holds its threads' fault endpoint.
    pub fault_slot: u64,
}

/// Frames a program was given ([`Process::give_frames`]).
#[derive(Clone, Copy, Debug)]
pub struct GivenFrames {
    /// The CNode that holds the program's copies (in the root task's
    /// CSpace too).
    pub cnode: CNode,
    /// The root task's slot of the first frame's original capability (the
    /// others follow).
    pub first: CPtr,
    /// The physical address of the first frame (the others follow).
    pub start: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// A thread of a process.
pub struct Thread {
    /// Its TCB.
    pub tcb: Tcb,
    pub(crate) ipc_buffer: u64,
    /// The frame of its IPC buffer.
    pub(crate) ipc_frame: CPtr,
    /// 0 for the first thread (it uses the program's static stack).
    stack_top: u64,
}

/// A loaded program.
pub struct Process {
    /// The program's name, for messages.
    pub name: &'static str,
    /// Its CNode (in the root task's CSpace).
    pub cnode: CNode,
    /// Its VSpace.
    pub vspace: VSpace,
    /// Its first thread.
    pub main: Thread,
    pub(crate) entry: u64,
    priority: u8,
    pub(crate) fault_slot: u64,
    pub(crate) threads: u64,
    /// The slot of the first of its image's frames (the others follow).
    pub(crate) image_frames: CPtr,
    /// Pages of its image.
    pub(crate) image_pages: u64,
    /// Whether memory beyond the image was mapped (stacks, heaps).
    pub(crate) memory_beyond_image: bool,
}

impl Process {
    /// Loads `spec.image` into a new VSpace, with a new CNode and a first
    /// thread (not started). The image's frames have consecutive slots,
    /// in the order of their pages.
    pub fn load(alloc: &mut Allocator, root: &mut VSpace, spec: &ProcessSpec) -> Process {
        let name = spec.name;
        let image = ElfImage::parse(name, spec.image);
        let image_pages = image.pages().count() as u64;
        let image_frames = alloc.retype_run(ObjectType::SmallPage, 0, image_pages);
        let mut vspace = VSpace::new(alloc);
        for (frame, page) in (image_frames..).zip(image.pages()) {
            let file_bytes = || image.overlapping(page).filter(|s| s.p_filesz > 0 && s.p_vaddr + s.p_filesz > page);
            if file_bytes().next().is_some() {
                root.map(alloc, frame, SCRATCH_VADDR, CapRights::READ_WRITE);
                for s in file_bytes() {
                    copy_segment_bytes(name, image.bytes, &s, page);
                }
                Page(frame).unmap().unwrap_or_else(|e| panic!("{name}: scratch unmap failed: {e:?}"));
            }
            vspace.map(alloc, frame, page, page_rights(image.writable(page)));
        }
        let cnode = CNode { cap: alloc.retype(ObjectType::CNode, spec.cnode_bits), depth: spec.cnode_bits as u8 };
        let mut process = Process {
            name,
            cnode,
            vspace,
            main: Thread { tcb: Tcb(0), ipc_buffer: 0, ipc_frame: 0, stack_top: 0 },
            entry: image.entry,
            priority: spec.priority,
            fault_slot: spec.fault_slot,
            threads: 0,
            image_frames,
            image_pages,
            memory_beyond_image: false,
        };
        process.main = process.new_thread(alloc, false);
        process
    }

    /// A new thread in this process, with its own IPC buffer and, unless it
    /// is the first, its own stack. Not started.
    pub fn add_thread(&mut self, alloc: &mut Allocator) -> Thread {
        self.new_thread(alloc, true)
    }

    fn new_thread(&mut self, alloc: &mut Allocator, own_stack: bool) -> Thread {
        let n = self.threads;
        self.threads += 1;
        let ipc_buffer = IPC_BUFFERS_VADDR + n * PAGE;
        let ipc_frame = alloc.retype(ObjectType::SmallPage, 0);
        self.vspace.map(alloc, ipc_frame, ipc_buffer, CapRights::READ_WRITE);
        let stack_top = if own_stack { STACKS_VADDR + (n + 1) * STACK_STRIDE } else { 0 };
        if own_stack {
            self.map_memory(alloc, stack_top - STACK_PAGES * PAGE, STACK_PAGES * PAGE);
        }
        let tcb = Tcb(alloc.retype(ObjectType::Tcb, 0));
        tcb.configure(
            self.fault_slot,
            self.priority,
            self.priority,
            self.cnode.cap,
            self.cspace_guard(),
            self.vspace.pml4,
            ipc_buffer,
            ipc_frame,
        )
        .unwrap_or_else(|e| panic!("{}: TCB configure failed: {e:?}", self.name));
        Thread { tcb, ipc_buffer, ipc_frame, stack_top }
    }

    /// The guard data of the process's CNode as its threads' CSpace root:
    /// CPtrs resolve with the full word.
    pub(crate) fn cspace_guard(&self) -> u64 {
        CNode::guard_data(0, 64 - self.cnode.depth as u64)
    }

    /// Maps `bytes` (a multiple of the page size) of fresh, zeroed memory
    /// read-write from `start`.
    pub fn map_memory(&mut self, alloc: &mut Allocator, start: u64, bytes: u64) {
        self.memory_beyond_image = true;
        for page in (start..start + bytes).step_by(PAGE as usize) {
            let frame = alloc.retype(ObjectType::SmallPage, 0);
            self.vspace.map(alloc, frame, page, CapRights::READ_WRITE);
        }
    }

    /// Maps `bytes` of stack below `top` for the first thread, which then
    /// starts on it instead of the program's static stack.
    pub fn give_stack(&mut self, alloc: &mut Allocator, top: u64, bytes: u64) {
        self.map_memory(alloc, top - bytes, bytes);
        self.main.stack_top = top;
    }

    /// Gives the program `count` fresh 4 KiB frames at consecutive
    /// physical addresses (one Retype, so at most 256), their capabilities
    /// in slots from 0 of a new CNode of 2^`bits` slots that goes into the
    /// program's slot `dest`. The root task keeps the frames' original
    /// capabilities: the program holds copies, which it cannot revoke, so
    /// the memory server may map them for it.
    pub fn give_frames(&self, alloc: &mut Allocator, dest: u64, bits: u8, count: u64) -> GivenFrames {
        assert!(count <= (1 << bits).min(size::RETYPE_MAX_OBJECTS), "{}: {count} frames", self.name);
        let first = alloc.retype_run(ObjectType::SmallPage, 0, count);
        let frames = CNode { cap: alloc.retype(ObjectType::CNode, bits.into()), depth: bits };
        let root = CNode::root_task(init_cap::CNODE);
        for i in 0..count {
            frames
                .copy(i, root, first + i, CapRights::READ_WRITE)
                .unwrap_or_else(|e| panic!("{}: frame copy failed: {e:?}", self.name));
        }
        self.give(dest, frames.cap, CapRights::ALL, 0);
        let start = Page(first).address().unwrap_or_else(|e| panic!("{}: frame address: {e:?}", self.name));
        GivenFrames { cnode: frames, first, start, bytes: count * PAGE }
    }

    /// Puts a copy of the root task's cap `src` in the program's slot
    /// `dest`, with `rights` and, for an endpoint, `badge`.
    pub fn give(&self, dest: u64, src: CPtr, rights: CapRights, badge: u64) {
        self.cnode
            .mint(dest, CNode::root_task(init_cap::CNODE), src, rights, badge)
            .unwrap_or_else(|e| panic!("{}: mint into slot {dest} failed: {e:?}", self.name));
    }

    /// (Re)starts `thread` at the program's entry with rdi = its IPC
    /// buffer and `args` in rsi, rdx and rcx.
    pub fn start(&self, thread: &Thread, args: [u64; 3]) {
        let [rsi, rdx, rcx] = args;
        let context = UserContext {
            rip: self.entry,
            rsp: thread.stack_top,
            rdi: thread.ipc_buffer,
            rsi,
            rdx,
            rcx,
            ..Default::default()
        };
        thread.tcb.write_registers(true, &context).unwrap_or_else(|e| panic!("{}: start failed: {e:?}", self.name));
    }
}

/// The rights of a page of an image: read-write if a segment on it is
/// writable, else read-only.
pub(crate) fn page_rights(writable: bool) -> CapRights {
    if writable {
        CapRights::READ_WRITE
    } else {
        CapRights::READ
    }
}

/// Copies the file bytes of segment `s` that fall in `page`, which is
/// mapped at `SCRATCH_VADDR`.
fn copy_segment_bytes(name: &str, image: &[u8], s: &elf::segment::ProgramHeader, page: u64) {
    let from = s.p_vaddr.max(page);
    let to = (s.p_vaddr + s.p_filesz).min(page + PAGE);
    if from >= to {
        return;
    }
    let offset = (s.p_offset + from - s.p_vaddr) as usize;
    let bytes =
        image.get(offset..offset + (to - from) as usize).unwrap_or_else(|| panic!("{name}: segment outside the file"));
    // SAFETY: the page's frame is mapped read-write at SCRATCH_VADDR in
    // this VSpace, and `from - page + bytes.len() <= PAGE`.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), (SCRATCH_VADDR + from - page) as *mut u8, bytes.len()) };
}
