//! Printing through the kernel's debug console (`seL4_DebugPutChar`), one
//! whole line at a time per process.

use super::syscall::debug_put_char;
use core::fmt::{self, Write};

/// The kernel's serial console.
pub struct DebugConsole;

impl Write for DebugConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(debug_put_char);
        Ok(())
    }
}

/// Serialises prints of the threads of one process.
static CONSOLE_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Prints `args` and a newline as one line.
pub fn print_line(args: fmt::Arguments) {
    let _guard = CONSOLE_LOCK.lock();
    // DebugConsole never fails.
    let _ = DebugConsole.write_fmt(format_args!("{args}\n"));
}

/// Prints a formatted line on the seL4 debug console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => { $crate::print::print_line(format_args!($($arg)*)) };
}
