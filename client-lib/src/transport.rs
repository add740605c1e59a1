//! Moving protocol messages through seL4 IPC: the encoded words staged in
//! the message registers and the IPC buffer (`sel4_layer::ipc`), at most
//! one capability alongside.

use memserver_protocol::DecodeError;
use memserver_protocol::{ErrorCode, Reply, Words, MAX_WORDS, PROTOCOL_LABEL, REPLIES};
use sel4_layer::abi::{size::MSG_MAX_LENGTH, CPtr};
use sel4_layer::syscall::{self, CpuMrs, SyscallResult};
use sel4_layer::{ipc, ipc_buffer, MessageInfo};

// Every message of the protocol fits seL4's message registers.
const _: () = assert!(MAX_WORDS <= MSG_MAX_LENGTH);

/// Places `words` for sending as a protocol message with `caps`
/// capabilities; returns the tag and the register words.
pub fn stage(words: &Words, caps: u64) -> (MessageInfo, CpuMrs) {
    ipc::stage(PROTOCOL_LABEL, words.as_slice(), caps)
}

/// The words of a received message.
pub fn received(result: &SyscallResult) -> Words {
    Words::from_fn(result.info.length() as usize, |i| ipc::word(result, i))
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
