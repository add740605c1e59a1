//! ABI numbers of seL4 5.0.0 for x86-64, as configured by `images` (SMP,
//! no IOMMU, no VT-x, huge pages). Every number here is compared with the
//! kernel's generated headers by the `images` crate's `abi` test: a wrong
//! number fails that test, not a boot.

/// Machine word of seL4 on x86-64.
pub type Word = u64;
/// A capability address in a CSpace.
pub type CPtr = u64;

/// Bits in a capability address: `seL4_WordBits`.
pub const WORD_BITS: u64 = 64;

/// System call numbers (from `include/api/syscall.xml`).
pub mod syscall {
    /// `seL4_SysCall`.
    pub const CALL: i64 = -1;
    /// `seL4_SysReplyRecv`.
    pub const REPLY_RECV: i64 = -2;
    /// `seL4_SysSend`.
    pub const SEND: i64 = -3;
    /// `seL4_SysNBSend`.
    pub const NB_SEND: i64 = -4;
    /// `seL4_SysRecv`.
    pub const RECV: i64 = -5;
    /// `seL4_SysReply`.
    pub const REPLY: i64 = -6;
    /// `seL4_SysYield`.
    pub const YIELD: i64 = -7;
    /// `seL4_SysNBRecv`.
    pub const NB_RECV: i64 = -8;
    /// `seL4_SysDebugPutChar`.
    pub const DEBUG_PUT_CHAR: i64 = -9;
    /// `seL4_SysDebugHalt`.
    pub const DEBUG_HALT: i64 = -10;
}

/// Invocation labels (from the `sel4.xml` interface files; SMP build).
pub mod label {
    /// The `UntypedRetype` invocation.
    pub const UNTYPED_RETYPE: u64 = 1;
    /// The `TCBWriteRegisters` invocation.
    pub const TCB_WRITE_REGISTERS: u64 = 3;
    /// The `TCBConfigure` invocation.
    pub const TCB_CONFIGURE: u64 = 5;
    /// The `TCBSetPriority` invocation.
    pub const TCB_SET_PRIORITY: u64 = 6;
    /// The `TCBSetSpace` invocation.
    pub const TCB_SET_SPACE: u64 = 9;
    /// The `TCBSuspend` invocation.
    pub const TCB_SUSPEND: u64 = 10;
    /// The `TCBResume` invocation.
    pub const TCB_RESUME: u64 = 11;
    /// The `TCBBindNotification` invocation.
    pub const TCB_BIND_NOTIFICATION: u64 = 12;
    /// The `TCBSetAffinity` invocation.
    pub const TCB_SET_AFFINITY: u64 = 14;
    /// The `CNodeRevoke` invocation.
    pub const CNODE_REVOKE: u64 = 15;
    /// The `CNodeDelete` invocation.
    pub const CNODE_DELETE: u64 = 16;
    /// The `CNodeCopy` invocation.
    pub const CNODE_COPY: u64 = 18;
    /// The `CNodeMint` invocation.
    pub const CNODE_MINT: u64 = 19;
    /// The `CNodeMove` invocation.
    pub const CNODE_MOVE: u64 = 20;
    /// The `X86PDPTMap` invocation.
    pub const X86_PDPT_MAP: u64 = 29;
    /// The `X86PDPTUnmap` invocation.
    pub const X86_PDPT_UNMAP: u64 = 30;
    /// The `X86PageDirectoryMap` invocation.
    pub const X86_PAGE_DIRECTORY_MAP: u64 = 31;
    /// The `X86PageDirectoryUnmap` invocation.
    pub const X86_PAGE_DIRECTORY_UNMAP: u64 = 32;
    /// The `X86PageTableMap` invocation.
    pub const X86_PAGE_TABLE_MAP: u64 = 34;
    /// The `X86PageTableUnmap` invocation.
    pub const X86_PAGE_TABLE_UNMAP: u64 = 35;
    /// The `X86PageMap` invocation.
    pub const X86_PAGE_MAP: u64 = 38;
    /// The `X86PageRemap` invocation.
    pub const X86_PAGE_REMAP: u64 = 39;
    /// The `X86PageUnmap` invocation.
    pub const X86_PAGE_UNMAP: u64 = 40;
    /// The `X86PageGetAddress` invocation.
    pub const X86_PAGE_GET_ADDRESS: u64 = 42;
    /// The `X86ASIDControlMakePool` invocation.
    pub const X86_ASID_CONTROL_MAKE_POOL: u64 = 43;
    /// The `X86ASIDPoolAssign` invocation.
    pub const X86_ASID_POOL_ASSIGN: u64 = 44;
    /// The `X86IOPortOut8` invocation.
    pub const X86_IO_PORT_OUT8: u64 = 48;
}

/// A kernel object type Untyped Retype creates (`seL4_ObjectType`), with
/// its number as the kernel's `seL4_*Object` constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum ObjectType {
    /// `seL4_UntypedObject` (variable size: `size_bits`).
    Untyped = 0,
    /// `seL4_TCBObject`.
    Tcb = 1,
    /// `seL4_EndpointObject`.
    Endpoint = 2,
    /// `seL4_NotificationObject`.
    Notification = 3,
    /// `seL4_CapTableObject`: a CNode (variable size: `size_bits` is the
    /// number of index bits, 2^`size_bits` slots).
    CNode = 4,
    /// `seL4_X86_PDPTObject`.
    Pdpt = 5,
    /// `seL4_X64_PML4Object`: a VSpace root.
    Pml4 = 6,
    /// `seL4_X64_HugePageObject`: a 1 GiB frame.
    HugePage = 7,
    /// `seL4_X86_4K`: a 4 KiB frame.
    SmallPage = 8,
    /// `seL4_X86_LargePageObject`: a 2 MiB frame.
    LargePage = 9,
    /// `seL4_X86_PageTableObject`.
    PageTable = 10,
    /// `seL4_X86_PageDirectoryObject`.
    PageDirectory = 11,
}

impl ObjectType {
    /// The type's number, as Untyped Retype takes it.
    pub const fn word(self) -> Word {
        self as Word
    }

    /// log2 of the bytes of untyped memory one object of this type takes,
    /// with `size_bits` as Untyped Retype takes it (the size of an
    /// untyped, the index bits of a CNode; ignored for the other types).
    pub const fn memory_bits(self, size_bits: u64) -> u64 {
        match self {
            ObjectType::Untyped => size_bits,
            ObjectType::CNode => size_bits + size::SLOT_BITS,
            ObjectType::Tcb => size::TCB_BITS,
            ObjectType::Endpoint => size::ENDPOINT_BITS,
            ObjectType::Notification => size::NOTIFICATION_BITS,
            ObjectType::Pdpt => size::PDPT_BITS,
            ObjectType::Pml4 => size::PML4_BITS,
            ObjectType::HugePage => size::HUGE_PAGE_BITS,
            ObjectType::SmallPage => size::PAGE_BITS,
            ObjectType::LargePage => size::LARGE_PAGE_BITS,
            ObjectType::PageTable => size::PAGE_TABLE_BITS,
            ObjectType::PageDirectory => size::PAGE_DIR_BITS,
        }
    }
}

impl From<ObjectType> for Word {
    fn from(object_type: ObjectType) -> Word {
        object_type.word()
    }
}

/// The numbers of [`ObjectType`], for the code that passes an object type
/// as a word (the [`Kernel`](crate::kernel::Kernel) trait and its
/// implementations).
pub mod object_type {
    use super::ObjectType;

    /// [`ObjectType::Untyped`].
    pub const UNTYPED: u64 = ObjectType::Untyped.word();
    /// [`ObjectType::Tcb`].
    pub const TCB: u64 = ObjectType::Tcb.word();
    /// [`ObjectType::Endpoint`].
    pub const ENDPOINT: u64 = ObjectType::Endpoint.word();
    /// [`ObjectType::Notification`].
    pub const NOTIFICATION: u64 = ObjectType::Notification.word();
    /// [`ObjectType::CNode`].
    pub const CAP_TABLE: u64 = ObjectType::CNode.word();
    /// [`ObjectType::Pdpt`].
    pub const X86_PDPT: u64 = ObjectType::Pdpt.word();
    /// [`ObjectType::Pml4`].
    pub const X64_PML4: u64 = ObjectType::Pml4.word();
    /// [`ObjectType::HugePage`].
    pub const X64_HUGE_PAGE: u64 = ObjectType::HugePage.word();
    /// [`ObjectType::SmallPage`].
    pub const X86_4K: u64 = ObjectType::SmallPage.word();
    /// [`ObjectType::LargePage`].
    pub const X86_LARGE_PAGE: u64 = ObjectType::LargePage.word();
    /// [`ObjectType::PageTable`].
    pub const X86_PAGE_TABLE: u64 = ObjectType::PageTable.word();
    /// [`ObjectType::PageDirectory`].
    pub const X86_PAGE_DIRECTORY: u64 = ObjectType::PageDirectory.word();
}

/// Slots of the initial thread's CNode that hold the boot capabilities.
pub mod init_cap {
    /// Initial capability slot: tcb.
    pub const TCB: u64 = 1;
    /// Initial capability slot: cnode.
    pub const CNODE: u64 = 2;
    /// Initial capability slot: vspace.
    pub const VSPACE: u64 = 3;
    /// Initial capability slot: irq control.
    pub const IRQ_CONTROL: u64 = 4;
    /// Initial capability slot: asid control.
    pub const ASID_CONTROL: u64 = 5;
    /// Initial capability slot: asid pool.
    pub const ASID_POOL: u64 = 6;
    /// Initial capability slot: io port.
    pub const IO_PORT: u64 = 7;
    /// Initial capability slot: boot info frame.
    pub const BOOT_INFO_FRAME: u64 = 9;
    /// Initial capability slot: ipc buffer.
    pub const IPC_BUFFER: u64 = 10;
}

/// Sizes and limits.
pub mod size {
    /// `seL4_PageBits`: a small frame is 4 KiB.
    pub const PAGE_BITS: u64 = 12;
    /// `seL4_LargePageBits`: a large frame is 2 MiB.
    pub const LARGE_PAGE_BITS: u64 = 21;
    /// `seL4_HugePageBits`: a huge frame is 1 GiB.
    pub const HUGE_PAGE_BITS: u64 = 30;
    /// `seL4_PageTableBits`.
    pub const PAGE_TABLE_BITS: u64 = 12;
    /// `seL4_PageDirBits`.
    pub const PAGE_DIR_BITS: u64 = 12;
    /// `seL4_PDPTBits`.
    pub const PDPT_BITS: u64 = 12;
    /// `seL4_PML4Bits`.
    pub const PML4_BITS: u64 = 12;
    /// `seL4_SlotBits`: a CNode slot is 32 bytes.
    pub const SLOT_BITS: u64 = 5;
    /// `seL4_TCBBits`.
    pub const TCB_BITS: u64 = 11;
    /// `seL4_ASIDPoolBits`: an ASID pool is made from an untyped of this
    /// size (4 KiB).
    pub const ASID_POOL_BITS: u64 = 12;
    /// `seL4_EndpointBits`.
    pub const ENDPOINT_BITS: u64 = 4;
    /// `seL4_NotificationBits`.
    pub const NOTIFICATION_BITS: u64 = 5;
    /// `seL4_MsgMaxLength`: message registers in the IPC buffer.
    pub const MSG_MAX_LENGTH: usize = 120;
    /// `seL4_MsgMaxExtraCaps`.
    pub const MSG_MAX_EXTRA_CAPS: usize = 3;
    /// `seL4_UntypedRetypeMaxObjects`: objects one Retype may create.
    pub const RETYPE_MAX_OBJECTS: u64 = 256;
    /// `seL4_IPCBufferSizeBits`: the IPC buffer is 1 KiB.
    pub const IPC_BUFFER_SIZE_BITS: u64 = 10;
    /// `CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS`.
    pub const MAX_BOOTINFO_UNTYPED: usize = 230;
}

/// Byte offsets in `seL4_IPCBuffer`.
pub mod ipc_layout {
    /// Offset of `tag`.
    pub const TAG: usize = 0;
    /// Offset of `msg`.
    pub const MSG: usize = 8;
    /// Offset of `user_data`.
    pub const USER_DATA: usize = 968;
    /// Offset of `caps_or_badges`.
    pub const CAPS_OR_BADGES: usize = 976;
    /// Offset of `receive_cnode`.
    pub const RECEIVE_CNODE: usize = 1000;
    /// Offset of `receive_index`.
    pub const RECEIVE_INDEX: usize = 1008;
    /// Offset of `receive_depth`.
    pub const RECEIVE_DEPTH: usize = 1016;
}

/// Number of message registers passed in CPU registers (r10, r8, r9, r15).
pub const MSG_REGISTERS_IN_CPU: usize = 4;

/// `seL4_X86_Default_VMAttributes`: write-back caching.
pub const X86_DEFAULT_VM_ATTRIBUTES: u64 = 0;
