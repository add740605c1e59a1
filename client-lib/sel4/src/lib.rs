//! The seL4 layer every seL4 program of this project is built on: ABI
//! numbers, raw syscalls, message registers and the IPC buffer, typed
//! invocations, the [`Kernel`](kernel::Kernel) trait over the invocations
//! on memory objects, bootinfo, printing, program start-up and the link
//! arguments of a program.
//!
//! Layered like rust-sel4: `abi` holds the numbers (checked against the
//! kernel's own XML and headers by the `images` ABI test), `syscall` the
//! one raw system-call primitive (the only inline assembly of the project
//! besides the start-up and memory functions in `runtime` and the time
//! stamp counter's read in `time_stamp`), `ipc` the
//! staging of message words, `invocation` typed capability calls, and
//! `runtime` the entry point and panic handling for seL4 programs.
//! `kernel` puts the memory-object invocations behind a trait, so they can
//! run on a host model of the kernel as well (`sel4-model`); `injecting`
//! makes chosen invocations fail, for tests of rollback.
#![cfg_attr(not(test), no_std)]

pub mod abi;
pub mod bootinfo;
pub mod build;
pub mod error;
pub mod injecting;
pub mod invocation;
pub mod ipc;
pub mod ipc_buffer;
pub mod kernel;
pub mod message_info;
pub mod print;
pub mod runtime;
pub mod syscall;
pub mod time_stamp;

pub use error::Sel4Error;
pub use invocation::*;
pub use message_info::MessageInfo;
