//! ABI check: every seL4 number client-lib hard-codes (syscalls, labels,
//! object types, caps, sizes, layouts, faults, errors, `seL4_BootInfo`)
//! must equal what the configured kernel tree says, read by
//! `images::abi_probe`. One failure lists every mismatch.

use core::mem::{offset_of, size_of};
use memserver_protocol::fault;
use sel4_layer::abi::{self, init_cap, ipc_layout, label, size, syscall, ObjectType};
use sel4_layer::bootinfo::{BootInfo, SlotRegion, UntypedDesc};
use sel4_layer::error::{ALL_ERRORS, NUM_ERRORS};

/// A Rust constant and the C expression the kernel tree must agree with.
struct Check {
    rust: String,
    value: i128,
    c: String,
}

/// `checks![rust_expr => "c_expr", ...]`: one `Check` each, named by the
/// Rust expression's text.
macro_rules! checks {
    ($($rust:expr => $c:expr),* $(,)?) => {
        vec![$(Check { rust: stringify!($rust).to_string(), value: $rust as i128, c: $c.to_string() }),*]
    };
}

/// `offset_of!` checks of a packed struct's fields, plus its size.
macro_rules! layout {
    ($rust:ty, $c:literal, $($field:ident => $c_field:literal),* $(,)?) => {{
        let mut v = checks![$(offset_of!($rust, $field) => concat!("offsetof(", $c, ", ", $c_field, ")")),*];
        v.extend(checks![size_of::<$rust>() => concat!("sizeof(", $c, ")")]);
        v
    }};
}

fn all_checks() -> Vec<Check> {
    let mut all = checks![
        abi::WORD_BITS => "seL4_WordBits",
        syscall::CALL => "seL4_SysCall",
        syscall::REPLY_RECV => "seL4_SysReplyRecv",
        syscall::SEND => "seL4_SysSend",
        syscall::NB_SEND => "seL4_SysNBSend",
        syscall::RECV => "seL4_SysRecv",
        syscall::REPLY => "seL4_SysReply",
        syscall::YIELD => "seL4_SysYield",
        syscall::NB_RECV => "seL4_SysNBRecv",
        syscall::DEBUG_PUT_CHAR => "seL4_SysDebugPutChar",
        syscall::DEBUG_HALT => "seL4_SysDebugHalt",
        label::UNTYPED_RETYPE => "UntypedRetype",
        label::TCB_WRITE_REGISTERS => "TCBWriteRegisters",
        label::TCB_CONFIGURE => "TCBConfigure",
        label::TCB_SET_PRIORITY => "TCBSetPriority",
        label::TCB_SET_SPACE => "TCBSetSpace",
        label::TCB_SUSPEND => "TCBSuspend",
        label::TCB_RESUME => "TCBResume",
        label::TCB_BIND_NOTIFICATION => "TCBBindNotification",
        label::TCB_SET_AFFINITY => "TCBSetAffinity",
        label::CNODE_REVOKE => "CNodeRevoke",
        label::CNODE_DELETE => "CNodeDelete",
        label::CNODE_COPY => "CNodeCopy",
        label::CNODE_MINT => "CNodeMint",
        label::CNODE_MOVE => "CNodeMove",
        label::X86_PDPT_MAP => "X86PDPTMap",
        label::X86_PDPT_UNMAP => "X86PDPTUnmap",
        label::X86_PAGE_DIRECTORY_MAP => "X86PageDirectoryMap",
        label::X86_PAGE_DIRECTORY_UNMAP => "X86PageDirectoryUnmap",
        label::X86_PAGE_TABLE_MAP => "X86PageTableMap",
        label::X86_PAGE_TABLE_UNMAP => "X86PageTableUnmap",
        label::X86_PAGE_MAP => "X86PageMap",
        label::X86_PAGE_REMAP => "X86PageRemap",
        label::X86_PAGE_UNMAP => "X86PageUnmap",
        label::X86_PAGE_GET_ADDRESS => "X86PageGetAddress",
        label::X86_ASID_CONTROL_MAKE_POOL => "X86ASIDControlMakePool",
        label::X86_ASID_POOL_ASSIGN => "X86ASIDPoolAssign",
        label::X86_IO_PORT_OUT8 => "X86IOPortOut8",
        ObjectType::Untyped => "seL4_UntypedObject",
        ObjectType::Tcb => "seL4_TCBObject",
        ObjectType::Endpoint => "seL4_EndpointObject",
        ObjectType::Notification => "seL4_NotificationObject",
        ObjectType::CNode => "seL4_CapTableObject",
        ObjectType::Pdpt => "seL4_X86_PDPTObject",
        ObjectType::Pml4 => "seL4_X64_PML4Object",
        ObjectType::HugePage => "seL4_X64_HugePageObject",
        ObjectType::SmallPage => "seL4_X86_4K",
        ObjectType::LargePage => "seL4_X86_LargePageObject",
        ObjectType::PageTable => "seL4_X86_PageTableObject",
        ObjectType::PageDirectory => "seL4_X86_PageDirectoryObject",
        init_cap::TCB => "seL4_CapInitThreadTCB",
        init_cap::CNODE => "seL4_CapInitThreadCNode",
        init_cap::VSPACE => "seL4_CapInitThreadVSpace",
        init_cap::IRQ_CONTROL => "seL4_CapIRQControl",
        init_cap::ASID_CONTROL => "seL4_CapASIDControl",
        init_cap::ASID_POOL => "seL4_CapInitThreadASIDPool",
        init_cap::IO_PORT => "seL4_CapIOPort",
        init_cap::BOOT_INFO_FRAME => "seL4_CapBootInfoFrame",
        init_cap::IPC_BUFFER => "seL4_CapInitThreadIPCBuffer",
        size::PAGE_BITS => "seL4_PageBits",
        size::LARGE_PAGE_BITS => "seL4_LargePageBits",
        size::HUGE_PAGE_BITS => "seL4_HugePageBits",
        size::PAGE_TABLE_BITS => "seL4_PageTableBits",
        size::PAGE_DIR_BITS => "seL4_PageDirBits",
        size::PDPT_BITS => "seL4_PDPTBits",
        size::PML4_BITS => "seL4_PML4Bits",
        size::SLOT_BITS => "seL4_SlotBits",
        size::TCB_BITS => "seL4_TCBBits",
        size::ASID_POOL_BITS => "seL4_ASIDPoolBits",
        size::ENDPOINT_BITS => "seL4_EndpointBits",
        size::NOTIFICATION_BITS => "seL4_NotificationBits",
        size::MSG_MAX_LENGTH => "seL4_MsgMaxLength",
        size::MSG_MAX_EXTRA_CAPS => "seL4_MsgMaxExtraCaps",
        size::RETYPE_MAX_OBJECTS => "seL4_UntypedRetypeMaxObjects",
        1u64 << size::IPC_BUFFER_SIZE_BITS => "sizeof(seL4_IPCBuffer)",
        size::MAX_BOOTINFO_UNTYPED => "CONFIG_MAX_NUM_BOOTINFO_UNTYPED_CAPS",
        ipc_layout::TAG => "offsetof(seL4_IPCBuffer, tag)",
        ipc_layout::MSG => "offsetof(seL4_IPCBuffer, msg)",
        ipc_layout::USER_DATA => "offsetof(seL4_IPCBuffer, userData)",
        ipc_layout::CAPS_OR_BADGES => "offsetof(seL4_IPCBuffer, caps_or_badges)",
        ipc_layout::RECEIVE_CNODE => "offsetof(seL4_IPCBuffer, receiveCNode)",
        ipc_layout::RECEIVE_INDEX => "offsetof(seL4_IPCBuffer, receiveIndex)",
        ipc_layout::RECEIVE_DEPTH => "offsetof(seL4_IPCBuffer, receiveDepth)",
        abi::MSG_REGISTERS_IN_CPU => "n_msgRegisters",
        abi::X86_DEFAULT_VM_ATTRIBUTES => "seL4_X86_Default_VMAttributes",
        fault::NULL => "seL4_Fault_NullFault",
        fault::CAP_FAULT => "seL4_Fault_CapFault",
        fault::UNKNOWN_SYSCALL => "seL4_Fault_UnknownSyscall",
        fault::USER_EXCEPTION => "seL4_Fault_UserException",
        fault::VM_FAULT => "seL4_Fault_VMFault",
        fault::VM_FAULT_LENGTH => "seL4_VMFault_Length",
        fault::IP => "seL4_VMFault_IP",
        fault::VM_FAULT_ADDR => "seL4_VMFault_Addr",
        fault::VM_FAULT_FSR => "seL4_VMFault_FSR",
        fault::USER_EXCEPTION_LENGTH => "seL4_UserException_Length",
        fault::IP => "seL4_UserException_FaultIP",
        fault::UNKNOWN_SYSCALL_LENGTH => "seL4_UnknownSyscall_Length",
        fault::UNKNOWN_SYSCALL_IP => "seL4_UnknownSyscall_FaultIP",
        fault::IP => "seL4_CapFault_IP",
        fault::CAP_FAULT_MIN_LENGTH => "seL4_CapFault_BitsLeft",
        fault::CAP_FAULT_MAX_LENGTH => "seL4_CapFault_GuardMismatch_BitsFound + 1",
        NUM_ERRORS => "seL4_NumErrors",
    ];
    // The error variants are named as in seL4: `InvalidArgument` is
    // `seL4_InvalidArgument`.
    all.extend(ALL_ERRORS.iter().map(|e| Check {
        rust: format!("Sel4Error::{e:?}"),
        value: *e as i128,
        c: format!("seL4_{e:?}"),
    }));
    all.extend(layout!(SlotRegion, "seL4_SlotRegion", start => "start", end => "end"));
    all.extend(layout!(UntypedDesc, "seL4_UntypedDesc",
        paddr => "paddr",
        padding1 => "padding1",
        padding2 => "padding2",
        size_bits => "sizeBits",
        is_device => "isDevice",
    ));
    all.extend(layout!(BootInfo, "seL4_BootInfo",
        extra_len => "extraLen",
        node_id => "nodeID",
        num_nodes => "numNodes",
        num_io_pt_levels => "numIOPTLevels",
        ipc_buffer => "ipcBuffer",
        empty => "empty",
        shared_frames => "sharedFrames",
        user_image_frames => "userImageFrames",
        user_image_paging => "userImagePaging",
        io_space_caps => "ioSpaceCaps",
        extra_bi_pages => "extraBIPages",
        init_thread_cnode_size_bits => "initThreadCNodeSizeBits",
        init_thread_domain => "initThreadDomain",
        arch_info => "archInfo",
        untyped => "untyped",
        untyped_list => "untypedList",
    ));
    all
}

#[test]
fn abi_numbers_match_the_kernel_source() -> anyhow::Result<()> {
    let ws = images::workspace::Workspace::load()?;
    let kernel = images::kernel::build(&ws)?;
    let checks = all_checks();
    let exprs: Vec<&str> = checks.iter().map(|c| c.c.as_str()).collect();
    let kernel_values = images::abi_probe::probe(&ws, &kernel, &exprs)?;
    let mismatches: Vec<String> = checks
        .iter()
        .filter(|c| c.value != i128::from(kernel_values[&c.c]))
        .map(|c| format!("  {}: Rust {}, kernel `{}` {}", c.rust, c.value, c.c, kernel_values[&c.c]))
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} seL4 ABI numbers differ from the kernel source:\n{}",
        mismatches.len(),
        checks.len(),
        mismatches.join("\n")
    );
    Ok(())
}
