//! What a program links to talk to the memory server: [`MemClient`] for
//! programs whose address space is registered with it, [`AdminClient`]
//! for the program that started it, and the transport of protocol
//! messages over seL4 IPC. The protocol types a user needs are re-exported
//! from `memserver-protocol`; the seL4 layer (start-up, printing) is
//! `sel4-layer`.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub use client::{AdminClient, MemClient};
pub use memserver_protocol::{
    ErrorCode, FailurePoint, FaultKind, FaultReport, PercpuLayout, Quota, RegionInfo, Registration, Reply, Request,
    Stats, Translation,
};

pub mod boot_contract;
pub mod client;
pub mod transport;
