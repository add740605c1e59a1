//! Typed capability invocations, each named after and marshalled exactly as
//! the libsel4 stub generated from the kernel's interface XML (parameters
//! packed in order, each aligned to its size; capability parameters go in
//! the extra-caps slots).

use super::abi::{label, CPtr, ObjectType, Word, WORD_BITS, X86_DEFAULT_VM_ATTRIBUTES};
use super::error::Sel4Error;
use super::syscall::{self, SyscallResult};
use super::{ipc, ipc_buffer};

/// Calls `cap` with invocation `label`, message words `words` and
/// capabilities `caps`; the reply's label is the error code.
pub fn invoke(cap: CPtr, label: u64, words: &[Word], caps: &[CPtr]) -> Result<SyscallResult, Sel4Error> {
    for (i, &c) in caps.iter().enumerate() {
        ipc_buffer::set_cap(i, c);
    }
    let (info, cpu) = ipc::stage(label, words, caps.len() as u64);
    let reply = syscall::call(cap, info, cpu);
    Sel4Error::check(reply.info.label()).map(|()| reply)
}

/// Access rights of a capability (`seL4_CapRights_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapRights {
    /// May transfer capabilities (and, for endpoints, be called).
    pub grant: bool,
    /// May receive, or read a frame.
    pub read: bool,
    /// May send, or write a frame.
    pub write: bool,
}

impl CapRights {
    /// Every right.
    pub const ALL: CapRights = CapRights { grant: true, read: true, write: true };
    /// Read and write (a writable frame).
    pub const READ_WRITE: CapRights = CapRights { grant: false, read: true, write: true };
    /// Read only (a read-only frame).
    pub const READ: CapRights = CapRights { grant: false, read: true, write: false };
    /// Send and Grant, no Receive: an endpoint that may be called (seL4
    /// 5.0.0 makes a reply capability only for a sender with Grant) or be
    /// a fault endpoint (the kernel requires Send and Grant), but whose
    /// holder cannot receive what others send on it.
    pub const SEND_GRANT: CapRights = CapRights { grant: true, read: false, write: true };
    /// Send only: a notification that may be signalled but not waited on.
    pub const SEND: CapRights = CapRights { grant: false, read: false, write: true };

    /// The bitfield word: write bit 0, read bit 1, grant bit 2.
    pub const fn word(self) -> Word {
        (self.write as Word) | ((self.read as Word) << 1) | ((self.grant as Word) << 2)
    }
}

/// An Untyped capability.
#[derive(Clone, Copy, Debug)]
pub struct Untyped(
    /// The capability.
    pub CPtr,
);

impl Untyped {
    /// `seL4_Untyped_Retype`: creates `count` objects of `object_type` (an
    /// [`ObjectType`], or its number as the [`Kernel`](crate::kernel::Kernel)
    /// trait passes it; size `size_bits` for variable-size types) in
    /// consecutive slots from `offset` of the CNode found at `index`/`depth`
    /// from `root`.
    pub fn retype(self, object_type: impl Into<Word>, size_bits: u64, dest: Slot, count: u64) -> Result<(), Sel4Error> {
        self.retype_word(object_type.into(), size_bits, dest, count)
    }

    /// [`Untyped::retype`] with the type's number: compiled here, once, not
    /// in each crate that calls the generic method (so `invoke` is inlined
    /// with its one capability, and its check of the extra-caps count with
    /// it: the server's panic audit, `images/tests/no_panic.rs`).
    fn retype_word(self, object_type: Word, size_bits: u64, dest: Slot, count: u64) -> Result<(), Sel4Error> {
        invoke(
            self.0,
            label::UNTYPED_RETYPE,
            &[object_type, size_bits, dest.node_index, dest.node_depth, dest.offset, count],
            &[dest.root],
        )
        .map(drop)
    }
}

/// Where Retype puts new capabilities: the CNode reached from `root` by
/// `node_index` at `node_depth` bits, starting at slot `offset`.
#[derive(Clone, Copy, Debug)]
pub struct Slot {
    /// The CNode capability the lookup starts from.
    pub root: CPtr,
    /// The destination CNode, as an index resolved from `root`.
    pub node_index: Word,
    /// Bits of `node_index` to resolve (0: `root` itself).
    pub node_depth: Word,
    /// The first slot in the destination CNode.
    pub offset: Word,
}

impl Slot {
    /// Slot `offset` of the CNode `root` itself.
    pub const fn in_root(root: CPtr, offset: Word) -> Slot {
        Slot { root, node_index: 0, node_depth: 0, offset }
    }
}

/// A CNode capability, used to address slots at a given depth.
#[derive(Clone, Copy, Debug)]
pub struct CNode {
    /// The CNode capability.
    pub cap: CPtr,
    /// Bits an index resolves in this CNode (64 for the root task's own
    /// CNode, whose guard covers the rest).
    pub depth: u8,
}

impl CNode {
    /// The initial thread's own CNode, addressed with full 64-bit indices.
    pub const fn root_task(cap: CPtr) -> CNode {
        CNode { cap, depth: WORD_BITS as u8 }
    }

    /// The data word (`cnode_capdata`) that gives a CNode capability a
    /// guard of `guard_size` bits with value `guard`, as used by Mint and by
    /// TCB Configure's `cspace_root_data`.
    pub const fn guard_data(guard: Word, guard_size: Word) -> Word {
        ((guard & 0x3_ffff) << 8) | ((guard_size & 0x3f) << 2)
    }

    /// `seL4_CNode_Copy`: copies the cap at `src_index` of `src` into
    /// `dest_index` with `rights` (which can only shrink).
    pub fn copy(self, dest_index: Word, src: CNode, src_index: Word, rights: CapRights) -> Result<(), Sel4Error> {
        invoke(
            self.cap,
            label::CNODE_COPY,
            &[dest_index, self.depth as Word, src_index, src.depth as Word, rights.word()],
            &[src.cap],
        )
        .map(drop)
    }

    /// `seL4_CNode_Mint`: like `copy`, and sets the badge of an endpoint
    /// cap (or the guard of a CNode cap) to `badge`.
    pub fn mint(
        self,
        dest_index: Word,
        src: CNode,
        src_index: Word,
        rights: CapRights,
        badge: Word,
    ) -> Result<(), Sel4Error> {
        invoke(
            self.cap,
            label::CNODE_MINT,
            &[dest_index, self.depth as Word, src_index, src.depth as Word, rights.word(), badge],
            &[src.cap],
        )
        .map(drop)
    }

    /// `seL4_CNode_Delete`: empties slot `index`.
    pub fn delete(self, index: Word) -> Result<(), Sel4Error> {
        invoke(self.cap, label::CNODE_DELETE, &[index, self.depth as Word], &[]).map(drop)
    }

    /// `seL4_CNode_Revoke`: deletes every capability derived from `index`.
    pub fn revoke(self, index: Word) -> Result<(), Sel4Error> {
        invoke(self.cap, label::CNODE_REVOKE, &[index, self.depth as Word], &[]).map(drop)
    }

    /// `seL4_CNode_Move`: moves the cap at `src_index` of `src` into
    /// `dest_index`, leaving the source slot empty.
    pub fn move_cap(self, dest_index: Word, src: CNode, src_index: Word) -> Result<(), Sel4Error> {
        invoke(self.cap, label::CNODE_MOVE, &[dest_index, self.depth as Word, src_index, src.depth as Word], &[src.cap])
            .map(drop)
    }
}

/// Registers of an x86-64 thread (`seL4_UserContext`), in message order.
#[derive(Clone, Copy, Debug, Default)]
pub struct UserContext {
    /// `rip`.
    pub rip: Word,
    /// `rsp`.
    pub rsp: Word,
    /// `rflags`.
    pub rflags: Word,
    /// `rax`.
    pub rax: Word,
    /// `rbx`.
    pub rbx: Word,
    /// `rcx`.
    pub rcx: Word,
    /// `rdx`.
    pub rdx: Word,
    /// `rsi`.
    pub rsi: Word,
    /// `rdi`.
    pub rdi: Word,
    /// `rbp`.
    pub rbp: Word,
    /// `r8`.
    pub r8: Word,
    /// `r9`.
    pub r9: Word,
    /// `r10`.
    pub r10: Word,
    /// `r11`.
    pub r11: Word,
    /// `r12`.
    pub r12: Word,
    /// `r13`.
    pub r13: Word,
    /// `r14`.
    pub r14: Word,
    /// `r15`.
    pub r15: Word,
    /// `tls_base`.
    pub tls_base: Word,
}

impl UserContext {
    /// Number of registers in the context.
    pub const COUNT: usize = 19;

    fn words(&self) -> [Word; Self::COUNT] {
        [
            self.rip,
            self.rsp,
            self.rflags,
            self.rax,
            self.rbx,
            self.rcx,
            self.rdx,
            self.rsi,
            self.rdi,
            self.rbp,
            self.r8,
            self.r9,
            self.r10,
            self.r11,
            self.r12,
            self.r13,
            self.r14,
            self.r15,
            self.tls_base,
        ]
    }
}

/// A thread control block capability.
#[derive(Clone, Copy, Debug)]
pub struct Tcb(
    /// The capability.
    pub CPtr,
);

impl Tcb {
    /// `seL4_TCB_Configure`: fault endpoint (a CPtr in the thread's own
    /// CSpace), priority and maximum controlled priority, CSpace root and
    /// its guard data, VSpace root, and the IPC buffer (its address in the
    /// thread's VSpace and the frame cap that backs it).
    #[allow(clippy::too_many_arguments, reason = "mirrors seL4_TCB_Configure one to one")]
    pub fn configure(
        self,
        fault_ep: CPtr,
        priority: u8,
        mcp: u8,
        cspace_root: CPtr,
        cspace_root_data: Word,
        vspace_root: CPtr,
        buffer: Word,
        buffer_frame: CPtr,
    ) -> Result<(), Sel4Error> {
        let prio_props = (priority as Word) | ((mcp as Word) << 8);
        invoke(
            self.0,
            label::TCB_CONFIGURE,
            &[fault_ep, prio_props, cspace_root_data, 0, buffer],
            &[cspace_root, vspace_root, buffer_frame],
        )
        .map(drop)
    }

    /// `seL4_TCB_SetSpace`: the fault endpoint (a CPtr in the thread's own
    /// CSpace), the CSpace root and its guard data, and the VSpace root.
    /// The thread's IPC buffer stays: it must be mapped at the same
    /// address in the new VSpace.
    pub fn set_space(
        self,
        fault_ep: CPtr,
        cspace_root: CPtr,
        cspace_root_data: Word,
        vspace_root: CPtr,
    ) -> Result<(), Sel4Error> {
        invoke(self.0, label::TCB_SET_SPACE, &[fault_ep, cspace_root_data, 0], &[cspace_root, vspace_root]).map(drop)
    }

    /// `seL4_TCB_SetPriority`.
    pub fn set_priority(self, priority: u8) -> Result<(), Sel4Error> {
        invoke(self.0, label::TCB_SET_PRIORITY, &[priority as Word], &[]).map(drop)
    }

    /// `seL4_TCB_SetAffinity`: the CPU the thread runs on.
    pub fn set_affinity(self, cpu: Word) -> Result<(), Sel4Error> {
        invoke(self.0, label::TCB_SET_AFFINITY, &[cpu], &[]).map(drop)
    }

    /// `seL4_TCB_WriteRegisters`: sets all registers, and resumes the
    /// thread when `resume` is true.
    pub fn write_registers(self, resume: bool, context: &UserContext) -> Result<(), Sel4Error> {
        let mut words = [0; 2 + UserContext::COUNT];
        words[0] = resume as Word;
        words[1] = UserContext::COUNT as Word;
        words[2..].copy_from_slice(&context.words());
        invoke(self.0, label::TCB_WRITE_REGISTERS, &words, &[]).map(drop)
    }

    /// `seL4_TCB_Resume`.
    pub fn resume(self) -> Result<(), Sel4Error> {
        invoke(self.0, label::TCB_RESUME, &[], &[]).map(drop)
    }

    /// `seL4_TCB_BindNotification`: a signal of `notification` then wakes
    /// the thread from a receive on any endpoint, with the notification's
    /// word as the badge.
    pub fn bind_notification(self, notification: CPtr) -> Result<(), Sel4Error> {
        invoke(self.0, label::TCB_BIND_NOTIFICATION, &[], &[notification]).map(drop)
    }

    /// `seL4_TCB_Suspend`.
    pub fn suspend(self) -> Result<(), Sel4Error> {
        invoke(self.0, label::TCB_SUSPEND, &[], &[]).map(drop)
    }
}

/// An ASID pool capability.
#[derive(Clone, Copy, Debug)]
pub struct AsidPool(
    /// The capability.
    pub CPtr,
);

impl AsidPool {
    /// `seL4_X86_ASIDPool_Assign`: gives the VSpace `pml4` an ASID.
    pub fn assign(self, pml4: CPtr) -> Result<(), Sel4Error> {
        invoke(self.0, label::X86_ASID_POOL_ASSIGN, &[], &[pml4]).map(drop)
    }
}

/// The ASID control capability.
#[derive(Clone, Copy, Debug)]
pub struct AsidControl(
    /// The capability.
    pub CPtr,
);

impl AsidControl {
    /// `seL4_X86_ASIDControl_MakePool`: turns the 4 KiB untyped `untyped`
    /// into a new ASID pool, whose capability goes to slot `index` of `dest`.
    pub fn make_pool(self, untyped: CPtr, dest: CNode, index: Word) -> Result<(), Sel4Error> {
        invoke(self.0, label::X86_ASID_CONTROL_MAKE_POOL, &[index, dest.depth as Word], &[untyped, dest.cap]).map(drop)
    }
}

/// A paging structure below the PML4: which level it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingLevel {
    /// Page directory pointer table: maps 512 GiB.
    Pdpt,
    /// Page directory: maps 1 GiB.
    PageDirectory,
    /// Page table: maps 2 MiB.
    PageTable,
}

impl PagingLevel {
    /// The object type of a structure of this level.
    pub const fn object_type(self) -> ObjectType {
        match self {
            PagingLevel::Pdpt => ObjectType::Pdpt,
            PagingLevel::PageDirectory => ObjectType::PageDirectory,
            PagingLevel::PageTable => ObjectType::PageTable,
        }
    }

    fn labels(self) -> (u64, u64) {
        match self {
            PagingLevel::Pdpt => (label::X86_PDPT_MAP, label::X86_PDPT_UNMAP),
            PagingLevel::PageDirectory => (label::X86_PAGE_DIRECTORY_MAP, label::X86_PAGE_DIRECTORY_UNMAP),
            PagingLevel::PageTable => (label::X86_PAGE_TABLE_MAP, label::X86_PAGE_TABLE_UNMAP),
        }
    }
}

/// A PDPT, page directory or page table capability.
#[derive(Clone, Copy, Debug)]
pub struct PagingStructure {
    /// The structure's capability.
    pub cap: CPtr,
    /// Its level.
    pub level: PagingLevel,
}

impl PagingStructure {
    /// `seL4_X86_PDPT_Map` / `PageDirectory_Map` / `PageTable_Map`:
    /// installs the structure in `vspace` to cover `vaddr`.
    pub fn map(self, vspace: CPtr, vaddr: Word) -> Result<(), Sel4Error> {
        self.map_with_attributes(vspace, vaddr, X86_DEFAULT_VM_ATTRIBUTES)
    }

    /// `map` with the VM attributes word `attrs` (`seL4_X86_VMAttributes`).
    pub fn map_with_attributes(self, vspace: CPtr, vaddr: Word, attrs: Word) -> Result<(), Sel4Error> {
        invoke(self.cap, self.level.labels().0, &[vaddr, attrs], &[vspace]).map(drop)
    }

    /// `..._Unmap`: removes it from its VSpace.
    pub fn unmap(self) -> Result<(), Sel4Error> {
        invoke(self.cap, self.level.labels().1, &[], &[]).map(drop)
    }
}

/// A frame (page) capability.
#[derive(Clone, Copy, Debug)]
pub struct Page(
    /// The capability.
    pub CPtr,
);

impl Page {
    /// `seL4_X86_Page_Map`: maps the frame at `vaddr` in `vspace`.
    pub fn map(self, vspace: CPtr, vaddr: Word, rights: CapRights) -> Result<(), Sel4Error> {
        self.map_with_attributes(vspace, vaddr, rights, X86_DEFAULT_VM_ATTRIBUTES)
    }

    /// `map` with the VM attributes word `attrs` (`seL4_X86_VMAttributes`).
    pub fn map_with_attributes(
        self,
        vspace: CPtr,
        vaddr: Word,
        rights: CapRights,
        attrs: Word,
    ) -> Result<(), Sel4Error> {
        invoke(self.0, label::X86_PAGE_MAP, &[vaddr, rights.word(), attrs], &[vspace]).map(drop)
    }

    /// `seL4_X86_Page_Remap`: changes the rights and attributes of the
    /// frame's existing mapping in `vspace`.
    pub fn remap(self, vspace: CPtr, rights: CapRights, attrs: Word) -> Result<(), Sel4Error> {
        invoke(self.0, label::X86_PAGE_REMAP, &[rights.word(), attrs], &[vspace]).map(drop)
    }

    /// `seL4_X86_Page_Unmap`.
    pub fn unmap(self) -> Result<(), Sel4Error> {
        invoke(self.0, label::X86_PAGE_UNMAP, &[], &[]).map(drop)
    }

    /// `seL4_X86_Page_GetAddress`: the frame's physical address.
    pub fn address(self) -> Result<Word, Sel4Error> {
        invoke(self.0, label::X86_PAGE_GET_ADDRESS, &[], &[]).map(|r| r.mrs[0])
    }
}

/// The I/O port capability.
#[derive(Clone, Copy, Debug)]
pub struct IoPort(
    /// The capability.
    pub CPtr,
);

impl IoPort {
    /// `seL4_X86_IOPort_Out8`: writes `value` to `port`.
    pub fn out8(self, port: u16, value: u8) -> Result<(), Sel4Error> {
        invoke(self.0, label::X86_IO_PORT_OUT8, &[port as Word, value as Word], &[]).map(drop)
    }
}
