//! Requests and replies that fit seL4's message registers, sent as they
//! are: the operation in the message label, each argument in a register of
//! its own, with no encoding layer between them and the system call. On
//! x86-64 seL4 passes four message registers in CPU registers, and its IPC
//! fastpath takes a message of at most four words that carries no
//! capability, so these requests and their replies cross the kernel on the
//! fastpath both ways (where priorities allow: see the README's request
//! cost).
//!
//! The common requests are here: `Vmalloc`, `VmallocWith`, `Vfree`,
//! `Vrealloc`, `Protect`, `Translate`, `PercpuAlloc`, `PercpuFree`,
//! `VmemmapPopulate`, `VmemmapDepopulate` and `Purge`; and the replies
//! that fit: `Done`, `Address`, `Offset`, `Translation`, `Realloc` and
//! `Error`. The others do not fit four words (`Hello`'s and `Stats`'
//! replies, a fault report), carry a capability (`Register`, `Vmap`,
//! `VmemmapPopulateFrom`) or are the administrator's rare requests
//! (`Unregister`, `GrantFrames`, `InjectFailure`, `TakeFault`), so they go
//! as encoded protocol messages ([`crate::Words`], label
//! [`crate::PROTOCOL_LABEL`]); a request in registers whose reply does not
//! fit gets its reply that way.
//!
//! Decoding is exact: a label outside the ranges here is no message of
//! this kind (`None`); within them, a wrong length, a flag other than 0 or
//! 1, a number too wide for its field or an unknown code is `Malformed`.
//! Every message decoded encodes back to the same label and words.

use crate::messages::{ErrorCode, Page, Protection, Realloc, Reply, Request, Translation, VmallocOptions};
use crate::words::{DecodeError, Word};

/// Message registers a message in registers uses at most: those seL4
/// x86-64 passes in CPU registers.
pub const REGISTERS: usize = 4;

/// A message in registers: its label and its words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InRegisters {
    /// The message label: the operation.
    pub label: Word,
    /// The arguments, in the first `length` words (the rest are 0).
    pub words: [Word; REGISTERS],
    /// How many words the message has.
    pub length: usize,
}

/// Label of the first request in registers; the others follow in the
/// order of [`RequestOp`].
pub const REQUEST_BASE: Word = 0x40;
/// Label of the first reply in registers; the others follow in the order
/// of [`ReplyOp`].
pub const REPLY_BASE: Word = 0x60;

/// The requests in registers, in label order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::FromRepr, strum::EnumCount)]
#[repr(u64)]
pub enum RequestOp {
    /// `Vmalloc { size, large_pages }`: size, flag.
    Vmalloc,
    /// `VmallocWith { size, options }`: size, alignment, guard pages,
    /// option flags (bit 0 2 MiB pages, 1 1 GiB pages, 2 no purge, 3 zero).
    VmallocWith,
    /// `Vfree { addr }`.
    Vfree,
    /// `Vrealloc { addr, size }`.
    Vrealloc,
    /// `Protect { addr, protection }`: address, 0 read-only or 1
    /// read-write.
    Protect,
    /// `Translate { addr }`.
    Translate,
    /// `PercpuAlloc { size, align }`.
    PercpuAlloc,
    /// `PercpuFree { offset }`.
    PercpuFree,
    /// `VmemmapPopulate { start_pfn, nr_pages, compound_order, huge }`.
    VmemmapPopulate,
    /// `VmemmapDepopulate { start_pfn, nr_pages }`.
    VmemmapDepopulate,
    /// `Purge`: no arguments.
    Purge,
}

/// The replies in registers, in label order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::FromRepr, strum::EnumCount)]
#[repr(u64)]
pub enum ReplyOp {
    /// `Done`: no words.
    Done,
    /// `Address(addr)`.
    Address,
    /// `Offset(offset)`.
    Offset,
    /// `Translation(None)`: no words; `Translation(Some(t))`: physical
    /// address, page size (0 4 KiB, 1 2 MiB, 2 1 GiB), flag writable.
    Translation,
    /// `Realloc { addr, moved }`: address, flag.
    Realloc,
    /// `Error(code)`: the code's number, in [`ErrorCode`]'s order.
    Error,
}

impl InRegisters {
    fn new(label: Word, args: &[Word]) -> InRegisters {
        let mut words = [0; REGISTERS];
        for (to, from) in words.iter_mut().zip(args) {
            *to = *from;
        }
        InRegisters { label, words, length: args.len().min(REGISTERS) }
    }

    /// The words of the message.
    pub fn as_slice(&self) -> &[Word] {
        self.words.get(..self.length).unwrap_or(&[])
    }
}

/// `request` as a message in registers, if it is one of those.
pub fn request(request: &Request) -> Option<InRegisters> {
    let op = |op: RequestOp, args: &[Word]| Some(InRegisters::new(REQUEST_BASE + op as Word, args));
    match *request {
        Request::Vmalloc { size, large_pages } => op(RequestOp::Vmalloc, &[size, large_pages.into()]),
        Request::VmallocWith { size, options } => {
            op(RequestOp::VmallocWith, &[size, options.align, options.guard_pages.into(), option_flags(&options)])
        }
        Request::Vfree { addr } => op(RequestOp::Vfree, &[addr]),
        Request::Vrealloc { addr, size } => op(RequestOp::Vrealloc, &[addr, size]),
        Request::Protect { addr, protection } => op(RequestOp::Protect, &[addr, protection as Word]),
        Request::Translate { addr } => op(RequestOp::Translate, &[addr]),
        Request::PercpuAlloc { size, align } => op(RequestOp::PercpuAlloc, &[size.into(), align.into()]),
        Request::PercpuFree { offset } => op(RequestOp::PercpuFree, &[offset.into()]),
        Request::VmemmapPopulate { start_pfn, nr_pages, compound_order, huge } => {
            op(RequestOp::VmemmapPopulate, &[start_pfn, nr_pages, compound_order.into(), huge.into()])
        }
        Request::VmemmapDepopulate { start_pfn, nr_pages } => op(RequestOp::VmemmapDepopulate, &[start_pfn, nr_pages]),
        Request::Purge => op(RequestOp::Purge, &[]),
        _ => None,
    }
}

/// The request a message with `label` and `words` carries in registers;
/// `None` if `label` names no request in registers.
pub fn request_of(label: Word, words: &[Word]) -> Option<Result<Request, DecodeError>> {
    decoded(label.checked_sub(REQUEST_BASE), words, RequestOp::from_repr, decode_request)
}

/// [`request_of`] a received message of `length` words whose first ones
/// are `registers` (longer than those, it is malformed).
pub fn request_in(label: Word, length: usize, registers: &[Word; REGISTERS]) -> Option<Result<Request, DecodeError>> {
    request_of(label, received(length, registers))
}

/// What `decode` makes of `words` for operation number `op` (counted
/// from its kind's base), if `from_repr` knows it; `None` for no
/// operation of the kind.
fn decoded<Op, T>(
    op: Option<Word>,
    words: &[Word],
    from_repr: fn(Word) -> Option<Op>,
    decode: fn(Op, &[Word]) -> Option<T>,
) -> Option<Result<T, DecodeError>> {
    let op = from_repr(op?)?;
    Some(decode(op, words).ok_or(DecodeError::Malformed))
}

/// The first `length` of a received message's `registers`; for a longer
/// message, more words than any message in registers has.
fn received(length: usize, registers: &[Word; REGISTERS]) -> &[Word] {
    const TOO_LONG: [Word; REGISTERS + 1] = [0; REGISTERS + 1];
    registers.get(..length).unwrap_or(&TOO_LONG)
}

fn decode_request(op: RequestOp, words: &[Word]) -> Option<Request> {
    Some(match (op, words) {
        (RequestOp::Vmalloc, &[size, large]) => Request::Vmalloc { size, large_pages: flag(large)? },
        (RequestOp::VmallocWith, &[size, align, guard, flags]) => {
            Request::VmallocWith { size, options: options(align, guard, flags)? }
        }
        (RequestOp::Vfree, &[addr]) => Request::Vfree { addr },
        (RequestOp::Vrealloc, &[addr, size]) => Request::Vrealloc { addr, size },
        (RequestOp::Protect, &[addr, protection]) => {
            let protection = match protection {
                0 => Protection::ReadOnly,
                1 => Protection::ReadWrite,
                _ => return None,
            };
            Request::Protect { addr, protection }
        }
        (RequestOp::Translate, &[addr]) => Request::Translate { addr },
        (RequestOp::PercpuAlloc, &[size, align]) => {
            Request::PercpuAlloc { size: size.try_into().ok()?, align: align.try_into().ok()? }
        }
        (RequestOp::PercpuFree, &[offset]) => Request::PercpuFree { offset: offset.try_into().ok()? },
        (RequestOp::VmemmapPopulate, &[start_pfn, nr_pages, order, huge]) => {
            Request::VmemmapPopulate { start_pfn, nr_pages, compound_order: order.try_into().ok()?, huge: flag(huge)? }
        }
        (RequestOp::VmemmapDepopulate, &[start_pfn, nr_pages]) => Request::VmemmapDepopulate { start_pfn, nr_pages },
        (RequestOp::Purge, &[]) => Request::Purge,
        _ => return None,
    })
}

/// `reply` as a message in registers, if it fits.
pub fn reply(reply: &Reply) -> Option<InRegisters> {
    let op = |op: ReplyOp, args: &[Word]| Some(InRegisters::new(REPLY_BASE + op as Word, args));
    match *reply {
        Reply::Done => op(ReplyOp::Done, &[]),
        Reply::Address(addr) => op(ReplyOp::Address, &[addr]),
        Reply::Offset(offset) => op(ReplyOp::Offset, &[offset.into()]),
        Reply::Translation(None) => op(ReplyOp::Translation, &[]),
        Reply::Translation(Some(t)) => op(ReplyOp::Translation, &[t.paddr, t.page as Word, t.writable.into()]),
        Reply::Realloc(Realloc { addr, moved }) => op(ReplyOp::Realloc, &[addr, moved.into()]),
        Reply::Error(code) => op(ReplyOp::Error, &[code as Word]),
        _ => None,
    }
}

/// The reply a message with `label` and `words` carries in registers;
/// `None` if `label` names no reply in registers.
pub fn reply_of(label: Word, words: &[Word]) -> Option<Result<Reply, DecodeError>> {
    decoded(label.checked_sub(REPLY_BASE), words, ReplyOp::from_repr, decode_reply)
}

/// [`reply_of`] a received message of `length` words whose first ones
/// are `registers` (longer than those, it is malformed).
pub fn reply_in(label: Word, length: usize, registers: &[Word; REGISTERS]) -> Option<Result<Reply, DecodeError>> {
    reply_of(label, received(length, registers))
}

fn decode_reply(op: ReplyOp, words: &[Word]) -> Option<Reply> {
    Some(match (op, words) {
        (ReplyOp::Done, &[]) => Reply::Done,
        (ReplyOp::Address, &[addr]) => Reply::Address(addr),
        (ReplyOp::Offset, &[offset]) => Reply::Offset(offset.try_into().ok()?),
        (ReplyOp::Translation, &[]) => Reply::Translation(None),
        (ReplyOp::Translation, &[paddr, page, writable]) => {
            let page = match page {
                0 => Page::Small,
                1 => Page::Large,
                2 => Page::Huge,
                _ => return None,
            };
            Reply::Translation(Some(Translation { paddr, page, writable: flag(writable)? }))
        }
        (ReplyOp::Realloc, &[addr, moved]) => Reply::Realloc(Realloc { addr, moved: flag(moved)? }),
        (ReplyOp::Error, &[code]) => Reply::Error(ErrorCode::from_repr(code.try_into().ok()?)?),
        _ => return None,
    })
}

fn flag(word: Word) -> Option<bool> {
    match word {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// Bits of [`RequestOp::VmallocWith`]'s last word.
const LARGE_PAGES: Word = 1;
const HUGE_PAGES: Word = 1 << 1;
const NO_PURGE: Word = 1 << 2;
const ZERO: Word = 1 << 3;

fn option_flags(options: &VmallocOptions) -> Word {
    let bit = |on: bool, bit: Word| if on { bit } else { 0 };
    bit(options.large_pages, LARGE_PAGES)
        | bit(options.huge_pages, HUGE_PAGES)
        | bit(options.no_purge, NO_PURGE)
        | bit(options.zero, ZERO)
}

fn options(align: Word, guard: Word, flags: Word) -> Option<VmallocOptions> {
    if flags & !(LARGE_PAGES | HUGE_PAGES | NO_PURGE | ZERO) != 0 {
        return None;
    }
    Some(VmallocOptions {
        align,
        guard_pages: guard.try_into().ok()?,
        large_pages: flags & LARGE_PAGES != 0,
        huge_pages: flags & HUGE_PAGES != 0,
        no_purge: flags & NO_PURGE != 0,
        zero: flags & ZERO != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::EnumCount;

    /// One of each request in registers, with arguments at their limits.
    fn requests() -> Vec<Request> {
        let options = VmallocOptions {
            align: 1 << 21,
            guard_pages: u32::MAX,
            large_pages: true,
            huge_pages: false,
            no_purge: true,
            zero: false,
        };
        vec![
            Request::Vmalloc { size: u64::MAX, large_pages: true },
            Request::VmallocWith { size: 4096, options },
            Request::VmallocWith { size: 4096, options: VmallocOptions::DEFAULT },
            Request::Vfree { addr: 0xffff_c000_0000_0000 },
            Request::Vrealloc { addr: 1, size: 2 },
            Request::Protect { addr: 3, protection: Protection::ReadOnly },
            Request::Protect { addr: 3, protection: Protection::ReadWrite },
            Request::Translate { addr: 0 },
            Request::PercpuAlloc { size: u32::MAX, align: 8 },
            Request::PercpuFree { offset: u32::MAX },
            Request::VmemmapPopulate { start_pfn: 1 << 40, nr_pages: 64, compound_order: u8::MAX, huge: true },
            Request::VmemmapDepopulate { start_pfn: 0, nr_pages: u64::MAX },
            Request::Purge,
        ]
    }

    fn replies() -> Vec<Reply> {
        let t = |page, writable| Reply::Translation(Some(Translation { paddr: 0x1000, page, writable }));
        vec![
            Reply::Done,
            Reply::Address(u64::MAX),
            Reply::Offset(u32::MAX),
            Reply::Translation(None),
            t(Page::Small, true),
            t(Page::Large, false),
            t(Page::Huge, true),
            Reply::Realloc(Realloc { addr: 7, moved: true }),
            Reply::Error(ErrorCode::Malformed),
            Reply::Error(ErrorCode::ForeignFrame),
        ]
    }

    #[test]
    fn every_request_in_registers_reads_back_as_itself() {
        let mut ops = std::collections::BTreeSet::new();
        for r in requests() {
            let m = request(&r).unwrap_or_else(|| panic!("{r:?} fits"));
            assert!(m.length <= REGISTERS);
            assert_eq!(request_of(m.label, m.as_slice()), Some(Ok(r)));
            ops.insert(m.label);
        }
        assert_eq!(ops.len(), RequestOp::COUNT, "every operation is tried");
    }

    #[test]
    fn every_reply_in_registers_reads_back_as_itself() {
        let mut ops = std::collections::BTreeSet::new();
        for r in replies() {
            let m = reply(&r).unwrap_or_else(|| panic!("{r:?} fits"));
            assert_eq!(reply_of(m.label, m.as_slice()), Some(Ok(r)));
            ops.insert(m.label);
        }
        assert_eq!(ops.len(), ReplyOp::COUNT, "every reply is tried");
        let codes = (0..).map_while(ErrorCode::from_repr).map(|code| reply(&Reply::Error(code)));
        assert!(codes.map(|m| m.expect("an error fits")).all(|m| m.length == 1));
    }

    #[test]
    fn what_does_not_fit_is_not_in_registers() {
        assert_eq!(request(&Request::Stats), None);
        assert_eq!(request(&Request::Hello { version: 1 }), None);
        assert_eq!(request(&Request::Unregister { space: 1 }), None);
        assert_eq!(request_of(crate::PROTOCOL_LABEL, &[]), None);
        assert_eq!(request_of(REQUEST_BASE + RequestOp::COUNT as u64, &[]), None);
        assert_eq!(reply_of(REPLY_BASE + ReplyOp::COUNT as u64, &[]), None);
        assert_eq!(reply_of(REQUEST_BASE, &[]), None, "a request's label is no reply's");
    }

    #[test]
    fn wrong_lengths_flags_widths_and_codes_are_malformed() {
        let malformed = Some(Err(DecodeError::Malformed));
        let vmalloc = REQUEST_BASE + RequestOp::Vmalloc as u64;
        assert_eq!(request_of(vmalloc, &[4096]), malformed, "too short");
        assert_eq!(request_of(vmalloc, &[4096, 0, 0]), malformed, "too long");
        assert_eq!(request_of(vmalloc, &[4096, 2]), malformed, "a flag of 2");
        let percpu = REQUEST_BASE + RequestOp::PercpuAlloc as u64;
        assert_eq!(request_of(percpu, &[1 << 32, 8]), malformed, "wider than 32 bits");
        let protect = REQUEST_BASE + RequestOp::Protect as u64;
        assert_eq!(request_of(protect, &[0, 2]), malformed, "no such protection");
        let with = REQUEST_BASE + RequestOp::VmallocWith as u64;
        assert_eq!(request_of(with, &[4096, 4096, 1, 1 << 4]), malformed, "an unknown option");
        let malformed = Some(Err(DecodeError::Malformed));
        let error = REPLY_BASE + ReplyOp::Error as u64;
        assert_eq!(reply_of(error, &[u64::MAX]), malformed, "no such error code");
        let translation = REPLY_BASE + ReplyOp::Translation as u64;
        assert_eq!(reply_of(translation, &[0, 3, 1]), malformed, "no such page size");
        assert_eq!(reply_of(translation, &[0]), malformed);
        let vfree = REQUEST_BASE + RequestOp::Vfree as u64;
        assert_eq!(request_in(vfree, 5, &[1; REGISTERS]), Some(Err(DecodeError::Malformed)), "beyond the registers");
        assert_eq!(reply_in(REPLY_BASE, 5, &[0; REGISTERS]), malformed);
    }

    /// Any label and words: decoding never panics, and what decodes
    /// encodes back to the same message.
    #[test]
    fn decoding_is_exact_for_any_message() {
        let words = [0, 1, 2, 3, 64, u32::MAX.into(), 1 << 32, u64::MAX];
        for label in REQUEST_BASE - 1..REPLY_BASE + ReplyOp::COUNT as u64 + 1 {
            for length in 0..=REGISTERS {
                for seed in 0..words.len().pow(2) {
                    let message: Vec<u64> =
                        (0..length).map(|i| words[(seed / (i % 2 + 1) + i) % words.len()]).collect();
                    if let Some(Ok(r)) = request_of(label, &message) {
                        let m = request(&r).expect("decoded, so it fits");
                        assert_eq!((m.label, m.as_slice()), (label, message.as_slice()));
                    }
                    if let Some(Ok(r)) = reply_of(label, &message) {
                        let m = reply(&r).expect("decoded, so it fits");
                        assert_eq!((m.label, m.as_slice()), (label, message.as_slice()));
                    }
                }
            }
        }
    }
}
