//! The seL4 layer: ABI numbers, raw syscalls, message registers and the IPC
//! buffer, typed invocations, bootinfo, printing and program start-up.
//!
//! Layered like rust-sel4: `abi` holds the numbers (checked against the
//! kernel's own XML and headers by the `images` ABI test), `syscall` the
//! one raw system-call primitive, `invocation` typed capability calls, and
//! `runtime` the entry point and panic handling for seL4 programs.
//! `kernel` puts the memory-object invocations behind a trait, so they can
//! run on a host model of the kernel as well.

pub mod abi;
pub mod bootinfo;
pub mod error;
pub mod injecting;
pub mod invocation;
pub mod ipc_buffer;
pub mod kernel;
pub mod message_info;
pub mod print;
pub mod runtime;
pub mod syscall;

pub use error::Sel4Error;
pub use invocation::*;
pub use message_info::MessageInfo;
