//! The demo and test rig's library, on top of `sel4-launch`: the client
//! agents as the root task drives them and the protocol it speaks with
//! them, the root task's inbox, the stress plan agents run, the hello
//! child's and the visitor's exchanges, and what the `scale` scenario
//! reaches. The root task, the benchmark root task, the agent and the
//! visitor are thin programs over it.
#![cfg_attr(not(test), no_std)]

pub mod agent;
pub mod agent_protocol;
pub mod hello_protocol;
pub mod inbox;
pub mod scale_targets;
pub mod stress_plan;
pub mod visitor_protocol;
