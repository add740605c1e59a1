//! The memory server program: the seL4 backend of `memserver-core`
//! ([`sel4_backend`]: its granules of untyped memory, capability slots,
//! frame copies, zeroing window and own paging structures), generic over
//! the [`Kernel`] it invokes, the [`Zeroing`](zeroing::Zeroing) of recycled
//! frames and the [`HeapMemory`](heap::HeapMemory) its heap grows into,
//! the server's heap ([`heap`]), and the receive-dispatch-reply loop. The
//! backend builds and runs on the host, over the model of seL4
//! (`sel4-model`, feature `model`: host tests and the fuzzer drive it
//! there, [`model_rig`]); the loop and the program are built with the
//! `sel4` feature, over the system calls.
//!
//! [`Kernel`]: sel4_layer::kernel::Kernel
#![cfg_attr(not(any(test, feature = "model")), no_std)]
// The server must not panic on any input: no unwrap, expect, panic or
// unchecked indexing in its code.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::unreachable)
)]

extern crate alloc;

pub mod borrowed;
pub mod cspace;
pub mod frame_copies;
pub mod granules;
pub mod heap;
#[cfg(feature = "model")]
pub mod model_rig;
pub mod own_vspace;
pub mod sel4_backend;
#[cfg(feature = "sel4")]
pub mod server_loop;
pub mod untyped_pool;
pub mod window;
pub mod zeroing;
