//! The fault messages of seL4 5.0.0 (x86-64) that reach the memory server
//! on a fault badge: their labels (`seL4_Fault_*` types), lengths and
//! where each carries the faulting instruction and address. The server
//! accepts only messages of exactly these shapes (bootstrap contract); the
//! `images` ABI test compares every number with the kernel's headers.

/// Fault type `null`.
pub const NULL: u64 = 0;
/// Fault type `cap_fault`.
pub const CAP_FAULT: u64 = 1;
/// Fault type `unknown_syscall`.
pub const UNKNOWN_SYSCALL: u64 = 2;
/// Fault type `user_exception`.
pub const USER_EXCEPTION: u64 = 3;
/// Fault type `vm_fault`.
pub const VM_FAULT: u64 = 5;

/// Message registers of a VM fault: `seL4_VMFault_Length`.
pub const VM_FAULT_LENGTH: u64 = 4;
/// Where a VM fault, a user exception and a capability fault message
/// have the faulting instruction's address (`seL4_VMFault_IP`,
/// `seL4_UserException_FaultIP`, `seL4_CapFault_IP`).
pub const IP: usize = 0;
/// Where it has the address touched: `seL4_VMFault_Addr`.
pub const VM_FAULT_ADDR: usize = 1;
/// Where it has the page-fault error code: `seL4_VMFault_FSR`.
pub const VM_FAULT_FSR: usize = 3;
/// Message registers of a user exception: `seL4_UserException_Length`.
pub const USER_EXCEPTION_LENGTH: u64 = 5;
/// Message registers of an unknown syscall: `seL4_UnknownSyscall_Length`.
pub const UNKNOWN_SYSCALL_LENGTH: u64 = 19;
/// Where an unknown syscall has the instruction pointer:
/// `seL4_UnknownSyscall_FaultIP`.
pub const UNKNOWN_SYSCALL_IP: usize = 15;
/// Fewest message registers of a capability fault (an invalid root:
/// up to the lookup failure type).
pub const CAP_FAULT_MIN_LENGTH: u64 = 4;
/// Most message registers of a capability fault (a guard mismatch).
pub const CAP_FAULT_MAX_LENGTH: u64 = 7;
