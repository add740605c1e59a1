//! The memory server program: the seL4 backend of `memserver-core` (its
//! granules of untyped memory, capability slots, frame copies and zeroing
//! window) and the receive-dispatch-reply loop. The bookkeeping
//! ([`granules`], [`frame_copies`]) is plain Rust tested on the host; the
//! backend and the loop are built with the `sel4` feature, for the seL4
//! program.
#![cfg_attr(not(test), no_std)]
// The server must not panic on any input: no unwrap, expect, panic or
// unchecked indexing in its code.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::unreachable)
)]

pub mod frame_copies;
pub mod granules;

#[cfg(feature = "sel4")]
pub mod cspace;
#[cfg(feature = "sel4")]
pub mod fault_injection;
#[cfg(feature = "sel4")]
pub mod sel4_backend;
#[cfg(feature = "sel4")]
pub mod server_loop;
#[cfg(feature = "sel4")]
pub mod untyped_pool;
#[cfg(feature = "sel4")]
pub mod window;
