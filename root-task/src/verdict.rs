//! A scenario's verdict: ok, or the reason it failed, as one line.

use core::fmt::{self, Write};

/// Why a scenario failed.
pub type Reason = heapless::String<240>;
/// A scenario's result.
pub type Verdict = Result<(), Reason>;

/// A reason from format arguments (cut at the capacity).
pub fn reason(args: fmt::Arguments) -> Reason {
    let mut s = Reason::new();
    // A too-long reason is cut, not lost.
    let _ = s.write_fmt(args);
    s
}

/// Returns from the scenario with a formatted failure reason.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => { return Err($crate::verdict::reason(format_args!($($arg)*))) };
}

/// Adds what was being done to a failure.
pub trait Context<T> {
    /// `Err(e)` becomes the reason "`what`: `e`".
    fn context(self, what: &str) -> Result<T, Reason>;
}

impl<T, E: fmt::Debug> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, Reason> {
        self.map_err(|e| reason(format_args!("{what}: {e:?}")))
    }
}
