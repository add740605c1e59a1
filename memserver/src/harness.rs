//! The fuzzing harness (host only, `sim` feature): arbitrary bytes become
//! message-register words for the protocol decoder, or a session of
//! messages and faults from several callers that a [`Dispatcher`] serves
//! over the simulated MMU. After every step it checks what the server
//! promises, and a broken promise is a panic, which the fuzzer reports as a
//! crash: decoding never panics and what decodes encodes back to the same
//! value; every reply fits a message and none says the kernel refused an
//! operation of the server; the capability that came with a
//! message is kept exactly when a space is registered; a failed request
//! changes nothing (but for a purge of lazily freed areas it may trigger),
//! and neither does a fault message the server drops; the invariant holds. The fuzz targets in `memserver/fuzz` and the replay
//! tests in `memserver/tests/fuzz_replay.rs` call [`decode`] and [`session`].

#![allow(
    clippy::panic,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "the harness reports a broken promise by panicking; it never runs on seL4"
)]

use client_lib::bootstrap::FaultBadge;
use client_lib::protocol::{ErrorCode, Reply, Request, REPLIES, REQUESTS};
use client_lib::sel4::abi::fault;
use client_lib::sel4::MessageInfo;
use client_lib::wire::Words;

use crate::dispatch::{CapUse, Dispatcher, FaultAction};
use crate::ids::Badge;
use crate::invariant::{self, snapshot};
use crate::limits::MAX_CPUS;
use crate::populate::Access;
use crate::server::Config;
use crate::sim::Sim;

/// The administrator's badge.
pub const ADMIN: Badge = Badge(0);

/// Who a message comes from: the administrator and three clients, whose
/// badges fit one byte of a register request.
const CALLERS: [Badge; 4] = [ADMIN, Badge(1), Badge(2), Badge(3)];

/// One step of a session.
#[derive(Clone, Debug)]
enum Step {
    /// A message of `bytes` from `caller`, with a new VSpace capability if
    /// `cap`.
    Message { caller: Badge, bytes: Vec<u8>, cap: bool },
    /// A VM fault of a thread of space `space` at `addr`, on the fault
    /// badge of the space's latest registration (or of none); with a
    /// capability if `cap`, which no kernel fault message has.
    Fault { space: u8, addr: u64, access: Access, cap: bool },
}

/// What became of a step.
enum Outcome {
    /// The reply to a message and what became of its capability.
    Reply(Reply, CapUse),
    /// What the server did with a fault message.
    Fault(FaultAction),
}

/// The fault badge of each space id's latest registration in a session,
/// as the administrator learns it from the replies.
struct FaultBadges([u64; 256]);

impl FaultBadges {
    fn new() -> FaultBadges {
        FaultBadges(core::array::from_fn(|space| FaultBadge::new(space as u8, 0).word()))
    }
}

/// Decodes `data` (as message words) as a request and as a reply; what
/// decodes must encode and decode to the same value.
pub fn decode(data: &[u8]) {
    let words = words(data);
    if let Ok(request) = words.decode::<Request>(REQUESTS) {
        let again = Words::encode(&request).expect("a decoded request encodes");
        assert_eq!(again.decode::<Request>(REQUESTS), Ok(request), "request from {words:x?}");
    }
    if let Ok(reply) = words.decode::<Reply>(REPLIES) {
        let again = Words::encode(&reply).expect("a decoded reply encodes");
        assert_eq!(again.decode::<Reply>(REPLIES), Ok(reply), "reply from {words:x?}");
    }
}

/// Serves the session `data` describes on a fresh dispatcher, checking
/// every promise after every step.
///
/// The first byte chooses the number of CPUs (1 + byte mod `MAX_CPUS`).
/// Each step then starts with a byte `h`. With bit 7 clear it is a message
/// from caller `h & 3` (0 is the administrator), carrying a new VSpace if
/// bit 2 is set; the next byte counts the message bytes that follow. With
/// bit 7 set it is a fault, a write if bit 0 is set, with a capability if
/// bit 1 is set, in the space the next byte names, at the address in the
/// eight bytes after (little endian). Bytes missing at the end read as
/// zeros.
pub fn session(data: &[u8]) {
    let (cpus, steps) = parse(data);
    let mut d = dispatcher(cpus);
    let mut badges = FaultBadges::new();
    for (i, step) in steps.iter().enumerate() {
        let before = snapshot(d.server());
        match apply(&mut d, &mut badges, step) {
            Outcome::Reply(reply, cap_use) => {
                assert!(Words::encode(&reply).is_some(), "step {i}: reply {reply:?} does not fit a message");
                // The simulator refuses only what seL4 would: a server bug.
                assert_ne!(reply, Reply::Error(ErrorCode::Kernel), "step {i}: the kernel refused an operation");
                assert_eq!(
                    cap_use == CapUse::Kept,
                    matches!(reply, Reply::Space(_)),
                    "step {i}: capability {cap_use:?} with reply {reply:?}"
                );
                if matches!(reply, Reply::Error(_)) && snapshot(d.server()) != before {
                    // Allowed only if the request purged: then the state is
                    // the one before it, purged.
                    let mut expected = dispatcher(cpus);
                    let mut badges = FaultBadges::new();
                    for step in &steps[..i] {
                        apply(&mut expected, &mut badges, step);
                    }
                    expected.handle(ADMIN, &Words::encode(&Request::Purge).expect("purge encodes"), None);
                    let after = snapshot(d.server());
                    assert_eq!(after, snapshot(expected.server()), "step {i}: {reply:?} changed the state");
                }
            }
            Outcome::Fault(action) => {
                if let Step::Fault { cap: true, .. } = step {
                    assert_eq!(action, FaultAction::Dropped, "step {i}: a fault message with a capability counted");
                }
                if action == FaultAction::Dropped {
                    assert_eq!(snapshot(d.server()), before, "step {i}: a dropped fault message changed the state");
                }
            }
        }
        if let Err(e) = invariant::check(d.server()) {
            panic!("step {i} ({step:?}): invariant broken: {e}");
        }
    }
}

/// A started dispatcher over a fresh simulation, on the heap. Built on a
/// thread with a large stack: unoptimised builds move the half-megabyte
/// server through the stack several times on its way into the box.
pub fn dispatcher(cpus: usize) -> Box<Dispatcher<Sim>> {
    let build = move || {
        let mut d = Box::new(Dispatcher::new(Sim::new(), Config { admin: ADMIN, cpus }));
        d.start().expect("the server starts");
        d
    };
    let builder = std::thread::Builder::new().stack_size(64 << 20);
    builder.spawn(build).expect("a thread to build the server").join().expect("the server is built")
}

/// Performs `step` on `d`, learning fault badges from registrations.
fn apply(d: &mut Dispatcher<Sim>, badges: &mut FaultBadges, step: &Step) -> Outcome {
    match *step {
        Step::Message { caller, ref bytes, cap } => {
            let cap = cap.then(|| d.backend_mut().new_vspace());
            let (reply, cap_use) = d.handle(caller, &words(bytes), cap);
            if let Reply::Space(registration) = reply {
                badges.0[usize::from(registration.space)] = registration.fault_badge;
            }
            Outcome::Reply(reply, cap_use)
        }
        Step::Fault { space, addr, access, cap } => {
            let fsr = if access == Access::Write { 0b110 } else { 0b100 };
            let info = MessageInfo::new(fault::VM_FAULT, 0, u64::from(cap), fault::VM_FAULT_LENGTH);
            Outcome::Fault(d.fault(badges.0[usize::from(space)], info, &Words::from_slice(&[0x20_1000, addr, 0, fsr])))
        }
    }
}

fn parse(data: &[u8]) -> (usize, Vec<Step>) {
    let mut bytes = data.iter().copied();
    let cpus = 1 + bytes.next().map_or(0, usize::from) % MAX_CPUS;
    let mut steps = Vec::new();
    while let Some(h) = bytes.next() {
        let mut next = || bytes.next().unwrap_or(0);
        steps.push(if h & 0x80 == 0 {
            let len = next();
            let bytes = (0..len).map(|_| next()).collect();
            Step::Message { caller: CALLERS[usize::from(h & 3)], bytes, cap: h & 4 != 0 }
        } else {
            let space = next();
            let addr = le_u64(&[(); 8].map(|()| next()));
            let access = if h & 1 == 0 { Access::Read } else { Access::Write };
            Step::Fault { space, addr, access, cap: h & 2 != 0 }
        });
    }
    (cpus, steps)
}

/// `data` as message words (little endian, the last one zero-padded).
fn words(data: &[u8]) -> Words {
    let words: Vec<u64> = data.chunks(8).map(le_u64).collect();
    Words::from_slice(&words)
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut le = [0u8; 8];
    le[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(le)
}
