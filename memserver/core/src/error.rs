//! Typed errors. Every request either succeeds or fails with one of these
//! and leaves the server's state and accounting exactly as before.

/// Why the backend refused an operation that creates something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// No untyped memory (or capability slot) left for a new object.
    OutOfMemory,
    /// The address holds a mapping already (seL4's `DeleteFirst`): for a
    /// Page Map, a fault there raced with the mapping's installation; for
    /// a structure of a space being registered, the space maps the region
    /// already.
    Occupied,
    /// The kernel rejected the invocation; the code is the backend's own.
    Rejected(u8),
}

/// A fixed bound of the server (see [`crate::limits`]): set by the
/// protocol or by what one request may do, never by a table's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// [`crate::SpaceId::COUNT`]: the ids a fault badge carries.
    Spaces,
    /// [`crate::limits::MAX_PAGES_PER_OP`].
    PagesPerOp,
    /// [`crate::limits::MAX_VMAP_FRAMES`].
    VmapFrames,
    /// Percpu offsets are 32 bits on the wire: no chunk beyond them.
    PercpuChunks,
}

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The backend could not create a frame or structure.
    OutOfMemory,
    /// The backend rejected an invocation.
    Backend(BackendError),
    /// The request would take the client past its quota.
    QuotaExceeded,
    /// A size, alignment, address, range or option is invalid.
    InvalidArgument,
    /// The target overlaps something that is already there.
    Overlap,
    /// The area, range or allocation names nothing the server holds.
    NotFound,
    /// The caller did not allocate the thing it tries to free.
    NotOwner,
    /// Only the administrator (the root task) may do this.
    NotAdmin,
    /// No space is registered under that id.
    NoSuchSpace,
    /// That VSpace is already registered (also through another
    /// capability to it: it then maps the region already).
    AlreadyRegistered,
    /// The area has no free range large enough.
    NoAddressSpace,
    /// A fixed capacity was reached.
    LimitReached(Limit),
    /// [`crate::MemServer::start`] has not succeeded yet.
    NotStarted,
    /// A capability a client supplied as a frame is none (an empty or
    /// unreachable slot, another kind of object, a frame of another size).
    NotAFrame,
    /// A frame a client supplied lies outside the memory granted to it.
    ForeignFrame,
}

impl From<BackendError> for Error {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::OutOfMemory => Error::OutOfMemory,
            other => Error::Backend(other),
        }
    }
}

/// Why a fault in the kernel region was not repaired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No space is registered under that id.
    NoSuchSpace,
    /// The address is outside the kernel region: not the server's business.
    OutsideRegion,
    /// The canonical table does not map the address: a real fault.
    NotMapped,
    /// The access needs rights the canonical mapping does not give.
    Protection,
    /// The mapping exists but reinstalling it failed.
    RepairFailed(BackendError),
}
