//! Batched requests: one IPC that carries many operations, as L4's
//! flexpage messages carry many mappings. A batch is a message of its own
//! label ([`BATCH_LABEL`]) that may use all of seL4's message registers
//! ([`BatchWords`]); the server makes its operations in order, each as the
//! request alone would be made (checked, done whole or not at all), and
//! answers one reply per operation, `Reply::Error` for those that failed:
//! a bad operation fails alone and the others go on.
//!
//! Only the client's own memory requests are batched (vmalloc in both
//! forms, vfree, vrealloc, protect, percpu alloc and free, vmemmap
//! populate and depopulate, translate): each of their replies takes at
//! most [`OP_REPLY_BYTES`], so a batch of [`MAX_BATCH_OPS`] always has room
//! for its answer. Any other request in a batch is answered
//! `InvalidArgument` in its place. How many operations fit the request
//! side depends on their arguments: [`Batch::push`] says when the next
//! would not.

use crate::messages::{ErrorCode, Realloc, Reply, Request, Translation};
use crate::words::{BatchWords, MAX_BATCH_WORDS};
use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// Label of a batch message and of its answer ([`BatchReply`]). A batch
/// refused whole (undecodable, or from an unregistered caller) is answered
/// with a protocol message (`PROTOCOL_LABEL`) holding `Reply::Error`.
pub const BATCH_LABEL: u64 = 0xb;

/// Operations in one batch at most.
pub const MAX_BATCH_OPS: usize = 64;

/// The most bytes the reply to one batchable operation takes: a variant
/// tag and the largest of their payloads.
pub const OP_REPLY_BYTES: usize = 1 + max(
    max(u64::POSTCARD_MAX_SIZE, Realloc::POSTCARD_MAX_SIZE),
    max(Option::<Translation>::POSTCARD_MAX_SIZE, ErrorCode::POSTCARD_MAX_SIZE),
);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Bytes of a batch message.
const BATCH_BYTES: usize = MAX_BATCH_WORDS * 8;
/// Bytes of the count of operations (or replies) that leads a batch (or
/// its answer): one, below 128.
const COUNT_BYTES: usize = 1;

// The answer to a full batch fits: its count and every reply at most.
const _: () = assert!(MAX_BATCH_OPS < 128 && COUNT_BYTES + MAX_BATCH_OPS * OP_REPLY_BYTES <= BATCH_BYTES);

/// Whether `request` may be part of a batch.
pub const fn batchable(request: &Request) -> bool {
    matches!(
        request,
        Request::Vmalloc { .. }
            | Request::VmallocWith { .. }
            | Request::Vfree { .. }
            | Request::Vrealloc { .. }
            | Request::Protect { .. }
            | Request::PercpuAlloc { .. }
            | Request::PercpuFree { .. }
            | Request::VmemmapPopulate { .. }
            | Request::VmemmapDepopulate { .. }
            | Request::Translate { .. }
    )
}

/// The operations of a batch, in order.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Batch {
    ops: heapless::Vec<Request, MAX_BATCH_OPS>,
    /// Bytes the ops take encoded (the length prefix aside).
    #[serde(skip)]
    bytes: usize,
}

/// Why [`Batch::push`] refused an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotBatched {
    /// The request is not one that batches (see [`batchable`]).
    NotBatchable,
    /// The batch is full: [`MAX_BATCH_OPS`] operations, or no room in the
    /// message for this one. Send it and start another.
    Full,
}

impl Batch {
    /// An empty batch.
    pub const fn new() -> Batch {
        Batch { ops: heapless::Vec::new(), bytes: 0 }
    }

    /// Adds `op` at the end, if it batches and the message has room.
    pub fn push(&mut self, op: Request) -> Result<(), NotBatched> {
        if !batchable(&op) {
            return Err(NotBatched::NotBatchable);
        }
        let mut scratch = [0u8; Request::POSTCARD_MAX_SIZE];
        let len = postcard::to_slice(&op, &mut scratch).map_err(|_| NotBatched::Full)?.len();
        if COUNT_BYTES + self.bytes + len > BATCH_BYTES {
            return Err(NotBatched::Full);
        }
        self.ops.push(op).map_err(|_| NotBatched::Full)?;
        self.bytes += len;
        Ok(())
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[Request] {
        &self.ops
    }

    /// The batch as the words of its message.
    pub fn words(&self) -> BatchWords {
        // `push` keeps the encoding within the message.
        BatchWords::encode(self).unwrap_or_else(|| BatchWords::from_slice(&[]))
    }

    /// The batch a message carries, or why it is refused whole.
    pub fn decode(words: &BatchWords) -> Result<Batch, ErrorCode> {
        words.decode::<Batch>(u32::MAX).map_err(|_| ErrorCode::Malformed)
    }
}

/// The answer to a batch: one reply per operation, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReply {
    /// Each operation's reply (`Reply::Error` for one that failed and
    /// changed nothing).
    pub replies: heapless::Vec<Reply, MAX_BATCH_OPS>,
}

impl BatchReply {
    /// The answer as the words of its message (every answer to a batch
    /// fits, see [`OP_REPLY_BYTES`]).
    pub fn words(&self) -> BatchWords {
        BatchWords::encode(self).unwrap_or_else(|| BatchWords::from_slice(&[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Page, Protection, VmallocOptions, REPLIES};

    /// The largest argument of every batchable kind.
    fn widest() -> [Request; 10] {
        let (addr, size) = (u64::MAX, u64::MAX);
        let options = VmallocOptions {
            align: u64::MAX,
            guard_pages: u32::MAX,
            large_pages: true,
            huge_pages: true,
            no_purge: true,
            zero: true,
        };
        [
            Request::Vmalloc { size, large_pages: true },
            Request::VmallocWith { size, options },
            Request::Vfree { addr },
            Request::Vrealloc { addr, size },
            Request::Protect { addr, protection: Protection::ReadWrite },
            Request::PercpuAlloc { size: u32::MAX, align: u32::MAX },
            Request::PercpuFree { offset: u32::MAX },
            Request::VmemmapPopulate { start_pfn: addr, nr_pages: size, compound_order: u8::MAX, huge: true },
            Request::VmemmapDepopulate { start_pfn: addr, nr_pages: size },
            Request::Translate { addr },
        ]
    }

    #[test]
    fn sixty_four_one_page_vmallocs_and_their_addresses_fit_one_message() {
        let mut batch = Batch::new();
        for _ in 0..MAX_BATCH_OPS {
            batch.push(Request::Vmalloc { size: 4096, large_pages: false }).unwrap();
        }
        assert_eq!(batch.push(Request::Vfree { addr: 0 }), Err(NotBatched::Full));
        assert_eq!(Batch::decode(&batch.words()).unwrap().ops(), batch.ops());
        let reply = BatchReply { replies: (0..MAX_BATCH_OPS).map(|_| Reply::Address(u64::MAX)).collect() };
        assert_eq!(reply.words().decode::<BatchReply>(REPLIES), Ok(reply));
    }

    #[test]
    fn a_batch_takes_operations_while_the_message_has_room_for_them() {
        let mut batch = Batch::new();
        let pushed = std::iter::repeat(widest()).flatten().take_while(|op| batch.push(*op).is_ok()).count();
        assert!(pushed < MAX_BATCH_OPS, "the widest operations fill the message first");
        let words = batch.words();
        assert!(words.as_slice().len() <= MAX_BATCH_WORDS);
        assert_eq!(Batch::decode(&words).unwrap().ops().len(), pushed);
    }

    #[test]
    fn every_batchable_reply_takes_at_most_its_bound() {
        let replies = [
            Reply::Done,
            Reply::Address(u64::MAX),
            Reply::Offset(u32::MAX),
            Reply::Realloc(Realloc { addr: u64::MAX, moved: true }),
            Reply::Translation(Some(Translation { paddr: u64::MAX, page: Page::Huge, writable: true })),
            Reply::Error(ErrorCode::NotRegistered),
        ];
        for reply in replies {
            let mut bytes = [0u8; 64];
            assert!(postcard::to_slice(&reply, &mut bytes).unwrap().len() <= OP_REPLY_BYTES, "{reply:?}");
        }
    }

    #[test]
    fn requests_that_do_not_batch_are_refused() {
        let mut batch = Batch::new();
        for op in [Request::Stats, Request::Purge, Request::Hello { version: 5 }, Request::TakeFault] {
            assert_eq!(batch.push(op), Err(NotBatched::NotBatchable));
        }
        assert!(widest().iter().all(batchable));
    }

    #[test]
    fn garbage_is_refused_whole() {
        for words in [&[][..], &[0xff], &[0x05, u64::MAX]] {
            assert_eq!(Batch::decode(&BatchWords::from_slice(words)).map(|_| ()), Err(ErrorCode::Malformed));
        }
    }
}
