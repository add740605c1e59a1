//! The proof that a request comes from the administrator: an [`Admin`]
//! exists only where the caller's badge was checked against the
//! administrator's, once ([`MemServer::admin`](crate::MemServer::admin)),
//! and every admin-only operation takes one instead of comparing a badge
//! itself.

/// Proof that the caller is the administrator. Only this crate makes one.
#[derive(Debug)]
pub struct Admin(());

impl Admin {
    /// The proof, for a caller just checked to be the administrator.
    pub(crate) const fn checked() -> Self {
        Admin(())
    }
}
