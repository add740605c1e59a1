//! What the launcher decides without the kernel, host-tested: how the
//! memory server's memory is handed over in untyped pieces, which program
//! a message on the launcher's endpoint comes from, and what becomes of
//! each program.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod grant;
pub mod outcome;
pub mod sender;
