//! Failure injection for tests: the administrator arms one point (Retype,
//! Copy or Map) to fail at its n-th pass from now, with the error seL4
//! itself would give, so the rollback of every request can be exercised on
//! the real kernel. Copy and Map are the CNode Copy and Map invocations;
//! Retype is every object the server obtains (a frame or a paging
//! structure, whether an Untyped Retype makes it now or it was retyped
//! ahead or recycled), failing as a Retype without memory would. Each
//! point calls [`check`] once; with nothing armed it always passes.

use core::sync::atomic::{AtomicU32, Ordering};
use memserver_protocol::FailurePoint;
use sel4_layer::Sel4Error;

/// Calls left until the armed failure, per point (0: disarmed).
static RETYPE: AtomicU32 = AtomicU32::new(0);
static COPY: AtomicU32 = AtomicU32::new(0);
static MAP: AtomicU32 = AtomicU32::new(0);

fn countdown(point: FailurePoint) -> &'static AtomicU32 {
    match point {
        FailurePoint::Retype => &RETYPE,
        FailurePoint::Copy => &COPY,
        FailurePoint::Map => &MAP,
    }
}

/// Makes the `nth` invocation of `point` from now fail (0 disarms).
pub fn arm(point: FailurePoint, nth: u32) {
    countdown(point).store(nth, Ordering::Relaxed);
}

/// Called before each invocation of `point`: `Err` if this is the armed one.
pub fn check(point: FailurePoint) -> Result<(), Sel4Error> {
    let left = countdown(point);
    match left.load(Ordering::Relaxed) {
        0 => Ok(()),
        1 => {
            left.store(0, Ordering::Relaxed);
            Err(match point {
                FailurePoint::Retype => Sel4Error::NotEnoughMemory,
                FailurePoint::Copy | FailurePoint::Map => Sel4Error::FailedLookup,
            })
        }
        n => {
            left.store(n - 1, Ordering::Relaxed);
            Ok(())
        }
    }
}
