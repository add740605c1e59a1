//! Moving protocol messages through seL4 IPC: the first four words in the
//! CPU's message registers (so short messages take the fastpath), the rest
//! in the IPC buffer; at most one capability alongside.

use crate::protocol::{ErrorCode, Reply, REPLIES};
use crate::sel4::abi::{CPtr, MSG_REGISTERS_IN_CPU};
use crate::sel4::syscall::{self, CpuMrs, SyscallResult};
use crate::sel4::{ipc_buffer, MessageInfo};
use crate::wire::{DecodeError, Words};

/// Label of protocol messages (faults carry their fault type instead).
pub const PROTOCOL_LABEL: u64 = 0;

/// Label of a ping: the server answers it at once with an empty message,
/// without decoding, so its round trip is the raw seL4 IPC cost that a
/// request's cost is measured against.
pub const PING_LABEL: u64 = 0x9;

/// Places `words` for sending: words beyond the fourth go to the IPC
/// buffer; returns the tag and the register words.
pub fn stage(words: &Words, caps: u64) -> (MessageInfo, CpuMrs) {
    let mut cpu = [0; MSG_REGISTERS_IN_CPU];
    for (i, &w) in words.as_slice().iter().enumerate() {
        match cpu.get_mut(i) {
            Some(r) => *r = w,
            None => ipc_buffer::set_mr(i, w),
        }
    }
    (MessageInfo::new(PROTOCOL_LABEL, 0, caps, words.as_slice().len() as u64), cpu)
}

/// The words of a received message: the first four from the registers,
/// the rest from the IPC buffer.
pub fn received(result: &SyscallResult) -> Words {
    Words::from_fn(result.info.length() as usize, |i| result.mrs.get(i).copied().unwrap_or_else(|| ipc_buffer::mr(i)))
}

/// Calls `endpoint` with the encoded message `words` (and `cap`, if any)
/// and decodes the reply.
pub fn call_words(endpoint: CPtr, words: &Words, cap: Option<CPtr>) -> Result<Reply, ErrorCode> {
    if let Some(cap) = cap {
        ipc_buffer::set_cap(0, cap);
    }
    let (info, cpu) = stage(words, cap.is_some() as u64);
    let result = syscall::call(endpoint, info, cpu);
    match received(&result).decode::<Reply>(REPLIES) {
        Ok(Reply::Error(code)) => Err(code),
        Ok(reply) => Ok(reply),
        Err(DecodeError::Malformed | DecodeError::UnknownOperation) => Err(ErrorCode::Malformed),
    }
}
