//! Printing, one whole line at a time per process: to the kernel's debug
//! console (`seL4_DebugPutChar`), or, for a program given a console
//! endpoint, as messages to the thread that prints for every program of
//! the system (the launcher), so no program's line is ever cut by
//! another's.
//!
//! A console message carries a piece of a line: label [`CONSOLE_LABEL`],
//! word 0 the piece's length in bytes (at most [`LINE_BYTES`]), the
//! following words its bytes, eight to a word, little-endian. The sender
//! calls; the printer answers once the piece is written, so pieces keep
//! their order.

use super::abi::{size::MSG_MAX_LENGTH, CPtr, Word, MSG_REGISTERS_IN_CPU};
use super::ipc;
use super::syscall::{self, debug_put_char, SyscallResult};
use super::MessageInfo;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

/// Serialises prints of the threads of one process.
static CONSOLE_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// The console endpoint lines go to (0: the kernel's debug console).
static CONSOLE: AtomicU64 = AtomicU64::new(0);

/// The label of a console message.
pub const CONSOLE_LABEL: u64 = 0xc025;

/// Words of the longest console message: seL4's longest.
const MESSAGE_WORDS: usize = MSG_MAX_LENGTH;

/// Bytes a line is formatted in before it is written: the most a console
/// message carries (952). A longer line is written in pieces of this
/// size, between which another program's line may come.
pub const LINE_BYTES: usize = 8 * (MESSAGE_WORDS - 1);

/// Sends this process's lines to the console endpoint `endpoint` (a
/// capability it may call) instead of the kernel's debug console (0: to
/// the kernel's debug console).
pub fn set_console(endpoint: CPtr) {
    CONSOLE.store(endpoint, Ordering::Relaxed);
}

/// Prints `args` and a newline as one line. The line is formatted first
/// and then written in one go (in pieces of [`LINE_BYTES`] if longer):
/// through a console endpoint nothing comes between the characters of a
/// piece; on the kernel's console another program's output can, while they
/// are written.
pub fn print_line(args: fmt::Arguments) {
    let _guard = CONSOLE_LOCK.lock();
    let mut line = Line { bytes: [0; LINE_BYTES], len: 0 };
    // Neither the line nor the console fails.
    let _ = line.write_fmt(format_args!("{args}\n"));
    line.flush();
}

/// Writes `bytes` as they are to the kernel's debug console (what a
/// console's printer does with the pieces it receives).
pub fn write_to_kernel_console(bytes: &[u8]) {
    let _guard = CONSOLE_LOCK.lock();
    put_bytes(bytes);
}

/// Puts `bytes` on the kernel's debug console, one by one.
fn put_bytes(bytes: &[u8]) {
    bytes.iter().copied().for_each(debug_put_char);
}

/// The words of the console message carrying `piece` (at most
/// [`LINE_BYTES`]) and how many of them are used.
fn message_words(piece: &[u8]) -> ([Word; MESSAGE_WORDS], usize) {
    let mut words = [0; MESSAGE_WORDS];
    let piece = piece.get(..LINE_BYTES).unwrap_or(piece);
    words[0] = piece.len() as Word;
    for (word, chunk) in words[1..].iter_mut().zip(piece.chunks(8)) {
        let mut bytes = [0; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *word = Word::from_le_bytes(bytes);
    }
    (words, 1 + piece.len().div_ceil(8))
}

/// The piece of a line the console message `msg` (received) carries,
/// copied into `out`.
pub fn received_piece<'a>(msg: &SyscallResult, out: &'a mut [u8; LINE_BYTES]) -> &'a [u8] {
    piece_of(msg.info.length(), |i| ipc::word(msg, i), out)
}

/// The piece of a line a console message of `length` words (`word(i)`
/// its i-th) carries, copied into `out`: its stated length, cut to what
/// the message and `out` hold.
fn piece_of(length: u64, word: impl Fn(usize) -> Word, out: &mut [u8; LINE_BYTES]) -> &[u8] {
    let carried = (length.saturating_sub(1) as usize).min(MESSAGE_WORDS - 1) * 8;
    let len = (word(0) as usize).min(carried);
    for (i, chunk) in out[..len].chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&word(1 + i).to_le_bytes()[..chunk.len()]);
    }
    &out[..len]
}

/// Answers a console message: the piece is written.
pub fn answer_console_message() {
    syscall::reply(MessageInfo::new(0, 0, 0, 0), [0; MSG_REGISTERS_IN_CPU]);
}

/// A line being formatted.
struct Line {
    bytes: [u8; LINE_BYTES],
    len: usize,
}

impl Line {
    /// Writes what is formatted so far to the console.
    fn flush(&mut self) {
        let piece = self.bytes.get(..self.len).unwrap_or(&[]);
        match CONSOLE.load(Ordering::Relaxed) {
            0 => put_bytes(piece),
            endpoint => {
                let (words, used) = message_words(piece);
                let (info, mrs) = ipc::stage(CONSOLE_LABEL, &words[..used], 0);
                syscall::call(endpoint, info, mrs);
            }
        }
        self.len = 0;
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for byte in s.bytes() {
            if self.len == LINE_BYTES {
                self.flush();
            }
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Prints a formatted line on the console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => { $crate::print::print_line(format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_arrives_as_sent() {
        let text: Vec<u8> = (0..=255u8).cycle().take(LINE_BYTES).collect();
        for len in [0, 1, 7, 8, 9, 63, 200, LINE_BYTES] {
            let (words, used) = message_words(&text[..len]);
            let mut out = [0; LINE_BYTES];
            let got = piece_of(used as u64, |i| words[i], &mut out);
            assert_eq!(got, &text[..len], "{len} bytes in {used} words");
        }
    }

    #[test]
    fn a_piece_claiming_more_than_its_message_carries_is_cut_to_it() {
        let (mut words, _) = message_words(b"0123456789abcdef");
        let mut out = [0; LINE_BYTES];
        words[0] = u64::MAX;
        assert_eq!(piece_of(3, |i| words[i], &mut out), b"0123456789abcdef");
        assert_eq!(piece_of(2, |i| words[i], &mut out), b"01234567");
        assert_eq!(piece_of(0, |i| words[i], &mut out), b"");
        let wide = piece_of(u64::MAX, |_| u64::MAX, &mut out);
        assert_eq!(wide.len(), LINE_BYTES);
    }
}
