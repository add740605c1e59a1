//! The exchange between the root task and the visitor (`src/bin/visitor.rs`),
//! a thread the root task moves through many address spaces: the root task
//! sends a command on the visitor's command endpoint, the visitor carries
//! it out in whichever space it runs in and answers on the root task's
//! endpoint, where its faults arrive too. Messages are at most four words.

/// Slots of the visitor's CNode.
pub mod slot {
    /// The endpoint it receives commands on.
    pub const COMMAND: u64 = 1;
    /// The root task's endpoint, badged [`super::ANSWER_BADGE`] (Send only).
    pub const ANSWER: u64 = 2;
    /// Its fault endpoint: the root task's, badged [`super::FAULT_BADGE`].
    pub const FAULT: u64 = 3;
}

/// log2 of the slots of the visitor's CNode.
pub const CNODE_BITS: u64 = 2;

/// Badge of the visitor's answers.
pub const ANSWER_BADGE: u64 = 1;
/// Badge of the visitor's faults.
pub const FAULT_BADGE: u64 = 2;

/// Labels of commands; an answer carries its command's label.
pub mod label {
    /// The visitor's first message: it is ready (no words).
    pub const READY: u64 = 1;
    /// Read the two words at MR0; the answer has them in MR0 and MR1.
    pub const READ: u64 = 2;
    /// Write MR1 and MR2 to the two words at MR0; the answer has no words.
    pub const WRITE: u64 = 3;
}
