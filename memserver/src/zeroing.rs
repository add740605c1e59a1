//! Where the server's zeroing of a recycled frame goes: a store of zeroes
//! through the server's own mapping of the frame (in its zeroing window or
//! at its large scratch address, [`crate::window`]). On seL4 it is the
//! store itself (the `sel4` feature: the only unsafe code of the server);
//! on the host model of seL4 the model checks that a writable mapping is
//! there and records the frame as zeroed.

use memserver_core::error::BackendError;
#[cfg(any(feature = "sel4", feature = "model"))]
use sel4_layer::injecting::Injecting;

/// Stores of zeroes to the server's private addresses.
pub trait Zeroing {
    /// Sets the `bytes` bytes from `vaddr` on to zero. The range must lie
    /// in the server's private zeroing addresses ([`crate::window::private`])
    /// and be mapped read-write there; `Err` (nothing written) if it does
    /// not lie there, or (on the model) if it is not mapped.
    fn zero(&mut self, vaddr: u64, bytes: u64) -> Result<(), BackendError>;
}

#[cfg(feature = "sel4")]
impl Zeroing for Injecting<sel4_layer::kernel::Syscalls> {
    fn zero(&mut self, vaddr: u64, bytes: u64) -> Result<(), BackendError> {
        if !crate::window::private(vaddr, bytes) {
            return Err(BackendError::Rejected(0));
        }
        // SAFETY: the range is in the server's private zeroing addresses,
        // which no Rust object of the program occupies or refers to (they
        // are outside its image, stack and heap), and the backend mapped a
        // frame read-write there for the range before zeroing it.
        unsafe { core::ptr::write_bytes(vaddr as *mut u8, 0, bytes as usize) };
        Ok(())
    }
}

#[cfg(feature = "model")]
impl Zeroing for Injecting<sel4_model::Model> {
    fn zero(&mut self, vaddr: u64, bytes: u64) -> Result<(), BackendError> {
        if crate::window::private(vaddr, bytes) && self.inner_mut().zero_own(vaddr, bytes) {
            Ok(())
        } else {
            Err(BackendError::Rejected(0))
        }
    }
}
