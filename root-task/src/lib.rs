//! What the root task shares with the programs it starts: the hello
//! child's exchange and the client agents' command protocol.
#![cfg_attr(not(test), no_std)]

pub mod agent_protocol;
pub mod hello_protocol;
