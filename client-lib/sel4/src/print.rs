//! Printing through the kernel's debug console (`seL4_DebugPutChar`), one
//! whole line at a time per process.

use super::syscall::debug_put_char;
use core::fmt::{self, Write};

/// Serialises prints of the threads of one process.
static CONSOLE_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Prints `args` and a newline as one line. The line is formatted first
/// and then written in one go (in pieces of [`LINE_BYTES`] if longer), so
/// another program's output can come between its characters only while
/// they are being written, not while it is formatted.
pub fn print_line(args: fmt::Arguments) {
    let _guard = CONSOLE_LOCK.lock();
    let mut line = Line { bytes: [0; LINE_BYTES], len: 0 };
    // Neither the line nor the console fails.
    let _ = line.write_fmt(format_args!("{args}\n"));
    line.flush();
}

/// Bytes a line is formatted in before it is written.
const LINE_BYTES: usize = 256;

/// A line being formatted.
struct Line {
    bytes: [u8; LINE_BYTES],
    len: usize,
}

impl Line {
    /// Writes what is formatted so far to the console.
    fn flush(&mut self) {
        self.bytes.get(..self.len).unwrap_or(&[]).iter().copied().for_each(debug_put_char);
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

/// Prints a formatted line on the seL4 debug console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => { $crate::print::print_line(format_args!($($arg)*)) };
}
