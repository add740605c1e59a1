//! The one raw seL4 system call on x86-64, and the named syscalls built
//! on it.
//!
//! ABI (`syscall` instruction): rdx = syscall number, rdi = capability or
//! badge, rsi = message info, r10, r8, r9, r15 = message registers 0-3.
//! The kernel returns through the same registers; rcx and r11 are
//! clobbered by `syscall`/`sysret`, and the user stack pointer must be in
//! rbx, which Rust cannot name as an operand, so it is saved in a scratch
//! register inside the asm.

use super::abi::{syscall as nr, CPtr, Word, MSG_REGISTERS_IN_CPU};
use super::message_info::MessageInfo;

/// Message registers passed in CPU registers.
pub type CpuMrs = [Word; MSG_REGISTERS_IN_CPU];

/// What a syscall returned: badge (or destination), message info and the
/// first message registers.
#[derive(Clone, Copy, Debug)]
pub struct SyscallResult {
    /// rdi: the sender's badge for receives.
    pub badge: Word,
    /// rsi: the received message info.
    pub info: MessageInfo,
    /// r10, r8, r9, r15.
    pub mrs: CpuMrs,
}

/// Performs syscall `number` with every register in and out.
#[inline(always)]
pub fn raw(number: i64, dest: Word, info: MessageInfo, mrs: CpuMrs) -> SyscallResult {
    let (mut rdi, mut rsi) = (dest, info.0);
    let [mut m0, mut m1, mut m2, mut m3] = mrs;
    // SAFETY: the seL4 syscall instruction only reads and writes the named
    // registers (and memory such as the IPC buffer, hence no `nomem`).
    // rcx and r11 are declared clobbered; rbx is saved in `saved` and
    // restored, and holds the user stack pointer across the call as the
    // kernel's ABI requires; the stack pointer itself is restored from it.
    unsafe {
        core::arch::asm!(
            "mov {saved}, rbx",
            "mov rbx, rsp",
            "syscall",
            "mov rsp, rbx",
            "mov rbx, {saved}",
            saved = out(reg) _,
            inout("rdx") number => _,
            inout("rdi") rdi,
            inout("rsi") rsi,
            inout("r10") m0,
            inout("r8") m1,
            inout("r9") m2,
            inout("r15") m3,
            out("rcx") _,
            out("r11") _,
        );
    }
    SyscallResult { badge: rdi, info: MessageInfo(rsi), mrs: [m0, m1, m2, m3] }
}

/// `seL4_Call`: send to `dest` and wait for the reply.
pub fn call(dest: CPtr, info: MessageInfo, mrs: CpuMrs) -> SyscallResult {
    raw(nr::CALL, dest, info, mrs)
}

/// `seL4_Send`: blocking send without reply.
pub fn send(dest: CPtr, info: MessageInfo, mrs: CpuMrs) {
    raw(nr::SEND, dest, info, mrs);
}

/// `seL4_NBSend`: send if a receiver waits, otherwise drop.
pub fn nb_send(dest: CPtr, info: MessageInfo, mrs: CpuMrs) {
    raw(nr::NB_SEND, dest, info, mrs);
}

/// `seL4_Signal`: signal the notification `dest`; never blocks.
pub fn signal(dest: CPtr) {
    raw(nr::SEND, dest, MessageInfo(0), [0; MSG_REGISTERS_IN_CPU]);
}

/// `seL4_Recv`: wait for a message on `src`.
pub fn recv(src: CPtr) -> SyscallResult {
    raw(nr::RECV, src, MessageInfo(0), [0; MSG_REGISTERS_IN_CPU])
}

/// `seL4_Reply`: answer the last caller.
pub fn reply(info: MessageInfo, mrs: CpuMrs) {
    raw(nr::REPLY, 0, info, mrs);
}

/// `seL4_ReplyRecv`: answer the last caller, then wait on `src`.
pub fn reply_recv(src: CPtr, info: MessageInfo, mrs: CpuMrs) -> SyscallResult {
    raw(nr::REPLY_RECV, src, info, mrs)
}

/// `seL4_Yield`: give up the rest of the time slice.
pub fn yield_now() {
    raw(nr::YIELD, 0, MessageInfo(0), [0; MSG_REGISTERS_IN_CPU]);
}

/// `seL4_DebugPutChar`: one byte to the kernel's serial console.
pub fn debug_put_char(c: u8) {
    raw(nr::DEBUG_PUT_CHAR, c as Word, MessageInfo(0), [0; MSG_REGISTERS_IN_CPU]);
}

/// `seL4_DebugHalt`: stop the whole system (debug kernels only).
pub fn debug_halt() {
    raw(nr::DEBUG_HALT, 0, MessageInfo(0), [0; MSG_REGISTERS_IN_CPU]);
}
