//! Encoding protocol messages into message-register words and back. Pure
//! code, tested on the host; client-lib's `transport` and the server loop
//! move the words through seL4 IPC (each checks that [`MAX_WORDS`] fits
//! seL4's message registers).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Words a message of this project uses at most: every protocol message
/// fits (checked below), far fewer than the IPC buffer's 120, so the buffers
/// encoding and decoding go through stay small and cheap to clear.
pub const MAX_WORDS: usize = 32;
/// Bytes of the largest message.
pub const MAX_BYTES: usize = MAX_WORDS * 8;
/// Words of a batch message ([`crate::batch`]): all of seL4's message
/// registers, `seL4_MsgMaxLength` (checked against the kernel by the ABI
/// test through client-lib).
pub const MAX_BATCH_WORDS: usize = 120;

// Every protocol message fits the message registers, by construction.
const _: () = assert!(crate::messages::MAX_MESSAGE_BYTES <= MAX_BYTES);

/// A machine word: one message register.
pub type Word = u64;

/// A message as up to `N` message-register words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<const N: usize> {
    words: [Word; N],
    len: usize,
}

/// A protocol message: at most [`MAX_WORDS`] words.
pub type Words = Message<MAX_WORDS>;
/// A batch message or its reply: at most [`MAX_BATCH_WORDS`] words.
pub type BatchWords = Message<MAX_BATCH_WORDS>;

/// Why words could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes are not a valid message.
    Malformed,
    /// The message starts with an operation number outside `0..known`.
    UnknownOperation,
}

impl<const N: usize> Message<N> {
    /// The first `len` words of `words` (at most `N`).
    pub fn from_slice(words: &[Word]) -> Self {
        let mut out = Self { words: [0; N], len: words.len().min(N) };
        for (w, &word) in out.words.iter_mut().zip(words) {
            *w = word;
        }
        out
    }

    /// `len` words (at most `N`), word `i` being `word(i)`.
    pub fn from_fn(len: usize, mut word: impl FnMut(usize) -> Word) -> Self {
        let mut out = Self { words: [0; N], len: len.min(N) };
        for (i, w) in out.words.iter_mut().enumerate().take(out.len) {
            *w = word(i);
        }
        out
    }

    /// Encodes `value`; `None` if it does not fit (never for protocol
    /// types, whose maximum size is checked by tests).
    pub fn encode<T: Serialize>(value: &T) -> Option<Self> {
        let mut bytes = [[0u8; 8]; N];
        let used = postcard::to_slice(value, bytes.as_flattened_mut()).ok()?.len();
        let mut out = Self { words: [0; N], len: used.div_ceil(8) };
        for (word, le) in out.words.iter_mut().zip(bytes).take(out.len) {
            *word = Word::from_le_bytes(le);
        }
        Some(out)
    }

    /// Decodes a `T` whose enum has `known` variants from the words.
    pub fn decode<T: DeserializeOwned>(&self, known: u32) -> Result<T, DecodeError> {
        let mut bytes = [[0u8; 8]; N];
        for (le, word) in bytes.iter_mut().zip(self.as_slice()) {
            *le = word.to_le_bytes();
        }
        let bytes = bytes.as_flattened().get(..self.len * 8).unwrap_or_default();
        postcard::from_bytes(bytes).map_err(|_| match postcard::take_from_bytes::<u32>(bytes) {
            Ok((op, _)) if op >= known => DecodeError::UnknownOperation,
            _ => DecodeError::Malformed,
        })
    }

    /// The message's words.
    pub fn as_slice(&self) -> &[Word] {
        self.words.get(..self.len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{ErrorCode, Page, Reply, Request, Translation, REQUESTS};

    #[test]
    fn common_requests_and_replies_fit_four_registers() {
        let fast = [
            Words::encode(&Request::Vmalloc { size: u64::MAX, large_pages: true }),
            Words::encode(&Request::Vfree { addr: u64::MAX }),
            Words::encode(&Request::PercpuAlloc { size: u32::MAX, align: u32::MAX }),
            Words::encode(&Request::PercpuFree { offset: u32::MAX }),
            Words::encode(&Request::Translate { addr: u64::MAX }),
            Words::encode(&Reply::Address(u64::MAX)),
            Words::encode(&Reply::Offset(u32::MAX)),
            Words::encode(&Reply::Done),
            Words::encode(&Reply::Error(ErrorCode::NotRegistered)),
            Words::encode(&Reply::Translation(Some(Translation { paddr: u64::MAX, page: Page::Huge, writable: true }))),
        ];
        for words in fast {
            assert!(words.unwrap().as_slice().len() <= 4);
        }
    }

    #[test]
    fn requests_round_trip() {
        let requests = [
            Request::Hello { version: 1 },
            Request::Vmalloc { size: 1 << 20, large_pages: false },
            Request::VmemmapPopulate { start_pfn: 123_456_789, nr_pages: 512, compound_order: 9, huge: false },
            Request::Register { client: 0x103, quota: crate::messages::Quota::bytes(1 << 30) },
            Request::InjectFailure { point: crate::messages::FailurePoint::Copy, nth: 7 },
            Request::Unregister { space: 3 },
        ];
        for r in requests {
            assert_eq!(Words::encode(&r).unwrap().decode::<Request>(REQUESTS), Ok(r));
        }
    }

    #[test]
    fn unknown_operations_and_garbage_are_told_apart() {
        assert_eq!(
            Words::from_slice(&[REQUESTS as u64]).decode::<Request>(REQUESTS),
            Err(DecodeError::UnknownOperation)
        );
        // Vmalloc of 0 bytes with a `large_pages` byte that is no bool.
        assert_eq!(Words::from_slice(&[0x02_00_01]).decode::<Request>(REQUESTS), Err(DecodeError::Malformed));
        assert_eq!(Words::from_slice(&[]).decode::<Request>(REQUESTS), Err(DecodeError::Malformed));
        // A vmalloc whose size varint runs off the end of the message.
        assert_eq!(
            Words::from_slice(&[0xffff_ffff_ffff_ff01]).decode::<Request>(REQUESTS),
            Err(DecodeError::Malformed)
        );
    }
}
