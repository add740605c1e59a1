//! The memory server's wire protocol, alone: the requests and replies with
//! what they carry, their encoding into message-register words (the
//! common ones also as they are, in the registers: [`registers`]), the counts
//! the server reports, the kernel fault messages it accepts, and the
//! bootstrap contract between the server and the program that starts it.
//! Both sides depend on it (the server decodes with these very types); it
//! makes no seL4 call and has no unsafe code.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod batch;
pub mod bootstrap;
pub mod counts;
pub mod fault;
pub mod invocation_counts;
pub mod messages;
pub mod registers;
pub mod words;

pub use invocation_counts::{Invocation, InvocationCounts};
pub use messages::*;
pub use words::{BatchWords, DecodeError, Message, Word, Words, MAX_BATCH_WORDS, MAX_WORDS};
