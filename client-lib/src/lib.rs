//! Client library for the seL4 kernel-region memory server, and the small
//! stable-Rust seL4 layer every seL4 program of this project is built on.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub use client::{AdminClient, MemClient};
pub use protocol::{ErrorCode, Reply, Request};

pub mod bootstrap;
pub mod client;
pub mod counts;
pub mod invocation_counts;
pub mod protocol;
pub mod sel4;
pub mod transport;
pub mod wire;
