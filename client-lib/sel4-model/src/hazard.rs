//! Things a caller can make seL4 5.0.0 do that are not an error reply: the
//! calling thread faults, the kernel halts, or the kernel touches memory it
//! should not. The model records each one; where 5.0.0 would not reply,
//! the invocation returns [`Sel4Error::Unknown`](sel4_layer::Sel4Error)
//! and changes nothing. A correct caller never causes one, so tests assert
//! that [`Model::hazards`](crate::Model::hazards) is empty.

use sel4_layer::abi::CPtr;

/// A hazard, with what caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hazard {
    /// The invoked CPtr, or one passed as a capability argument, does not
    /// resolve in the invoker's CSpace (guard or depth mismatch): the
    /// thread takes a capability fault instead of getting a reply
    /// (`handleInvocation`, `lookupExtraCaps`).
    CapFault {
        /// The CPtr that failed.
        cptr: CPtr,
    },
    /// The invoked capability is an endpoint or notification: the call is
    /// a message to it (it blocks, or signals), not the invocation.
    Ipc {
        /// The endpoint or notification CPtr.
        cptr: CPtr,
    },
    /// The kernel halts: 5.0.0 has no `deriveCap` case for PDPT
    /// capabilities (`Mode_deriveCap` reaches `fail`), so CNode Copy or
    /// Mint of a PDPT capability stops the system.
    DerivePdpt,
    /// An entry installed at or above the end of the canonical lower half
    /// (0x8000_0000_0000) but below 5.0.0's `PPTR_USER_TOP`: the kernel
    /// indexes the PML4 with bits 39..48 only, so the entry aliases the
    /// kernel half (PML4 slots 256..509) or overwrites the TLB bitmap's
    /// slot (510); the model installs it as 5.0.0 does. Or a walk into the
    /// kernel window's own tables (slot 511), which the model refuses.
    NonCanonical {
        /// The requested address.
        vaddr: u64,
    },
    /// The kernel would walk a paging-structure entry whose table was
    /// deleted (possible in 5.0.0 when an ASID is reused: a PML4 whose
    /// pool was deleted keeps entries to structures that are deleted
    /// later, and PDPT or PageDirectory Map does not check the ASID).
    StaleTable {
        /// Where the deleted table was.
        paddr: u64,
    },
    /// The invoking thread was deleted.
    NoThread,
    /// The running thread stored where its VSpace has no writable
    /// mapping: it takes a VM fault.
    VmFault {
        /// The address of the store.
        vaddr: u64,
    },
}
