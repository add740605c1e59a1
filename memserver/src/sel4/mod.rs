//! The memory server on seL4: the backend that performs the core's
//! operations with real invocations, and the receive-dispatch-reply loop.
//! Only built with the `sel4` feature, for the seL4 program.

pub mod backend;
pub mod cspace;
pub mod fault_injection;
pub mod server_loop;
pub mod untyped_pool;
pub mod window;
