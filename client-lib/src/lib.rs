//! What a program links to talk to the memory server: [`MemClient`] for
//! programs whose address space is registered with it, [`AdminClient`]
//! for the program that started it, [`ClientError`] for why a call failed
//! (the server's refusal kept apart from a problem of the exchange), and
//! the transport of protocol messages over seL4 IPC. The protocol types a
//! user needs are re-exported from `memserver-protocol`; the seL4 layer
//! (start-up, printing) is `sel4-layer`.
#![cfg_attr(not(test), no_std)]

pub use client::{AdminClient, MemClient};
pub use error::{server_answer, ClientError, Undecodable};
pub use memserver_protocol::batch::{Batch, BatchReply, NotBatched, MAX_BATCH_OPS};
pub use memserver_protocol::{
    ErrorCode, FailurePoint, FaultKind, FaultReport, Invocation, InvocationCounts, Page, PercpuLayout, Protection,
    Quota, Realloc, RegionInfo, Registration, Reply, Request, Stats, Translation, VmallocOptions, PROTOCOL_VERSION,
};

#[doc(hidden)]
pub use sel4_layer as __sel4_layer;

pub mod boot_contract;
pub mod client;
pub mod error;
pub mod transport;

#[cfg(test)]
mod samples;
