//! The exchange between the root task and the hello child: the child sends
//! a challenge, the root task answers with `answer(challenge)`, the child
//! checks it and reports the verdict.

/// Slots of the hello child's CNode.
pub mod slot {
    /// The endpoint to the root task.
    pub const ENDPOINT: u64 = 1;
    /// Its fault endpoint (the root task's, badged as faults).
    pub const FAULT: u64 = 2;
}

/// Label of the child's challenge message (MR0: the challenge).
pub const CHALLENGE: u64 = 1;
/// Label of the child's verdict message (MR0: 1 if the answer was right).
pub const VERDICT: u64 = 2;

/// The answer the root task computes for `challenge`.
pub const fn answer(challenge: u64) -> u64 {
    challenge.wrapping_mul(challenge).wrapping_add(0x5e14)
}
