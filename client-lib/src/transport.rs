//! Moving protocol messages through seL4 IPC: the encoded words staged in
//! the message registers and the IPC buffer (`sel4_layer::ipc`), at most
//! one capability alongside, or the common requests and their replies as
//! they are, in the message registers ([`call_registers`]); and telling a
//! received reply from an answer that is not one ([`reply_of`]: pure,
//! tested on the host).

use crate::error::{ClientError, Undecodable};
use memserver_protocol::batch::{Batch, BatchReply, BATCH_LABEL};
use memserver_protocol::registers::{self, InRegisters};
use memserver_protocol::{BatchWords, DecodeError, Message, Reply, Words, MAX_WORDS, PROTOCOL_LABEL, REPLIES};
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

/// The words of a received message (at most `N`: a protocol message's or
/// a batch's).
pub fn received<const N: usize>(result: &SyscallResult) -> Message<N> {
    Message::from_fn(result.info.length() as usize, |i| ipc::word(result, i))
}

/// Calls `endpoint` with the encoded message `words` (and `cap`, if any)
/// and returns the reply, or the server's refusal, or why the answer is
/// not a reply.
pub fn call_words(endpoint: CPtr, words: &Words, cap: Option<CPtr>) -> Result<Reply, ClientError> {
    if let Some(cap) = cap {
        ipc_buffer::set_cap(0, cap);
    }
    let (info, cpu) = stage(words, cap.is_some() as u64);
    let result = syscall::call(endpoint, info, cpu);
    reply_of(result.info.label(), &received(&result))
}

/// Calls `endpoint` with the request in registers `message` and returns
/// what `take` makes of the reply (in registers, or encoded if it does
/// not fit them), or the server's refusal, or why the answer is not a
/// reply. Inlined into each typed call, whose `take` then reads the reply
/// off the registers: a `Reply` is far larger than they are (`Stats`),
/// and copies of it would cost more than the round trip's own work.
#[inline]
pub fn call_registers<T>(
    endpoint: CPtr,
    message: &InRegisters,
    take: impl FnOnce(Reply) -> Result<T, ClientError>,
) -> Result<T, ClientError> {
    // At most four words, all in registers: no staging in the IPC buffer.
    let info = MessageInfo::new(message.label, 0, 0, message.length as u64);
    let result = syscall::call(endpoint, info, message.words);
    let label = result.info.label();
    let length = result.info.length() as usize;
    match registers::reply_in(label, length, &result.mrs) {
        Some(Ok(Reply::Error(code))) => Err(ClientError::Server(code)),
        Some(Ok(reply)) => take(reply),
        Some(Err(_)) => Err(malformed(&result)),
        None => take(encoded_reply(&result)?),
    }
}

/// [`ClientError::Undecodable`] for a malformed reply in registers.
#[inline(never)]
fn malformed(result: &SyscallResult) -> ClientError {
    undecodable(Undecodable::Malformed, result.info.label(), received::<MAX_WORDS>(result).as_slice())
}

/// The encoded reply (or the refusal, or why it is neither) that answered
/// a request in registers.
#[inline(never)]
fn encoded_reply(result: &SyscallResult) -> Result<Reply, ClientError> {
    reply_of(result.info.label(), &received(result))
}

/// Calls `endpoint` with the batch `batch` and returns the reply to each
/// of its operations, or the server's refusal of the whole batch, or why
/// the answer is not a batch's.
pub fn call_batch(endpoint: CPtr, batch: &Batch) -> Result<BatchReply, ClientError> {
    let (info, cpu) = ipc::stage(BATCH_LABEL, batch.words().as_slice(), 0);
    let result = syscall::call(endpoint, info, cpu);
    batch_reply_of(result.info.label(), &received(&result))
}

/// The answer to a batch with `label` and `words`: the replies (a
/// `BATCH_LABEL` message), the server's refusal of the whole batch (a
/// protocol message holding an error), or why it is neither.
pub fn batch_reply_of(label: u64, words: &BatchWords) -> Result<BatchReply, ClientError> {
    if label != BATCH_LABEL {
        // A refusal returns here; any other reply answers no batch.
        reply_of(label, &Words::from_slice(words.as_slice()))?;
        return Err(undecodable(Undecodable::NotProtocol, label, words.as_slice()));
    }
    words.decode::<BatchReply>(REPLIES).map_err(|_| undecodable(Undecodable::Malformed, label, words.as_slice()))
}

/// [`ClientError::Undecodable`] for an answer with `label` and `words`.
fn undecodable(why: Undecodable, label: u64, words: &[u64]) -> ClientError {
    ClientError::Undecodable { why, label, length: words.len() as u64, first_word: words.first().copied().unwrap_or(0) }
}

/// The reply an answer with `label` and `words` carries: `Ok` for a reply
/// of the protocol, [`ClientError::Server`] for the server's refusal,
/// [`ClientError::Undecodable`] (with the label, length and first word)
/// for anything else.
pub fn reply_of(label: u64, words: &Words) -> Result<Reply, ClientError> {
    if label != PROTOCOL_LABEL {
        return Err(undecodable(Undecodable::NotProtocol, label, words.as_slice()));
    }
    match words.decode::<Reply>(REPLIES) {
        Ok(Reply::Error(code)) => Err(ClientError::Server(code)),
        Ok(reply) => Ok(reply),
        Err(DecodeError::UnknownOperation) => Err(undecodable(Undecodable::UnknownOperation, label, words.as_slice())),
        Err(DecodeError::Malformed) => Err(undecodable(Undecodable::Malformed, label, words.as_slice())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::every_reply;
    use memserver_protocol::{ErrorCode, PING_LABEL};

    #[test]
    fn every_reply_of_the_protocol_is_one() {
        for reply in every_reply() {
            let words = Words::encode(&reply).unwrap();
            match reply {
                Reply::Error(code) => assert_eq!(reply_of(PROTOCOL_LABEL, &words), Err(ClientError::Server(code))),
                _ => assert_eq!(reply_of(PROTOCOL_LABEL, &words), Ok(reply)),
            }
        }
    }

    #[test]
    fn a_batch_is_answered_by_its_replies_or_refused_whole() {
        let answer =
            BatchReply { replies: [Reply::Address(u64::MAX), Reply::Error(ErrorCode::NotOwner)].into_iter().collect() };
        assert_eq!(batch_reply_of(BATCH_LABEL, &answer.words()), Ok(answer));
        let refusal = Words::encode(&Reply::Error(ErrorCode::NotRegistered)).unwrap();
        let refused = BatchWords::from_slice(refusal.as_slice());
        assert_eq!(batch_reply_of(PROTOCOL_LABEL, &refused), Err(ClientError::Server(ErrorCode::NotRegistered)));
        let done = BatchWords::from_slice(Words::encode(&Reply::Done).unwrap().as_slice());
        assert!(matches!(
            batch_reply_of(PROTOCOL_LABEL, &done),
            Err(ClientError::Undecodable { why: Undecodable::NotProtocol, .. })
        ));
        let garbage = BatchWords::from_slice(&[0x7f]);
        assert!(matches!(
            batch_reply_of(BATCH_LABEL, &garbage),
            Err(ClientError::Undecodable { why: Undecodable::Malformed, .. })
        ));
    }

    #[test]
    fn an_answer_of_another_label_is_not_a_reply_even_if_its_words_are() {
        let words = Words::encode(&Reply::Done).unwrap();
        let expected =
            ClientError::Undecodable { why: Undecodable::NotProtocol, label: PING_LABEL, length: 1, first_word: 1 };
        assert_eq!(reply_of(PING_LABEL, &words), Err(expected));
    }

    #[test]
    fn a_wire_code_past_the_last_reply_is_an_unknown_kind_not_the_servers_code() {
        for code in [u64::from(REPLIES), 0x7f] {
            let got = reply_of(PROTOCOL_LABEL, &Words::from_slice(&[code]));
            let expected =
                ClientError::Undecodable { why: Undecodable::UnknownOperation, label: 0, length: 1, first_word: code };
            assert_eq!(got, Err(expected));
        }
    }

    #[test]
    fn a_reply_cut_short_or_with_bad_fields_is_malformed_not_the_servers_code() {
        for reply in every_reply() {
            let words = Words::encode(&reply).unwrap();
            for len in 0..words.as_slice().len() {
                let cut = Words::from_slice(&words.as_slice()[..len]);
                let first_word = cut.as_slice().first().copied().unwrap_or(0);
                let expected =
                    ClientError::Undecodable { why: Undecodable::Malformed, label: 0, length: len as u64, first_word };
                assert_eq!(reply_of(PROTOCOL_LABEL, &cut), Err(expected), "{reply:?} cut to {len} words");
            }
        }
        // A refusal whose error code is past the last one.
        let error = Words::encode(&Reply::Error(ErrorCode::Malformed)).unwrap().as_slice()[0];
        let bad_code = Words::from_slice(&[error | 0x7f << 8]);
        assert!(matches!(
            reply_of(PROTOCOL_LABEL, &bad_code),
            Err(ClientError::Undecodable { why: Undecodable::Malformed, .. })
        ));
    }
}
