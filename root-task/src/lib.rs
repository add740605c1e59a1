//! The root task's library: building processes (VSpaces, CNodes, threads,
//! ELF loading), starting the memory server and client agents and talking
//! to them, and the protocols it shares with the programs it starts. The
//! root task and the benchmark root task are thin programs over it.
#![cfg_attr(not(test), no_std)]

pub mod agent;
pub mod agent_protocol;
pub mod allocator;
pub mod hello_protocol;
pub mod inbox;
pub mod memserver_process;
pub mod process;
pub mod stress;
pub mod vspace;
