//! The fuzzing harness (host only, `sim` feature): arbitrary bytes become
//! message-register words for the protocol decoder, or a session of steps
//! from several callers that a [`Dispatcher`] serves over any
//! [`HostBackend`] (the simulated MMU, or the seL4 backend over the model of
//! seL4). After every step it checks what the server promises, and a broken
//! promise is a panic, which the fuzzer reports as a crash: decoding never
//! panics and what decodes encodes back to the same value; every reply fits
//! a message and none says the kernel refused an operation of the server
//! (unless an injected failure happened in that step);
//! the capability that came with a message is kept exactly when a space is
//! registered; a failed request changes nothing (but for a purge of lazily
//! freed areas it may trigger), and neither does a fault message the server
//! drops (a fault message with a capability is always dropped); the
//! invariant holds. At the end of a session every space is unregistered
//! (which frees all its client held) and freed areas are purged: the
//! server then holds what it held after start, and so does the backend
//! ([`HostBackend::check_baseline`]). The fuzz targets in
//! `memserver/fuzz` and the replay tests in `memserver/tests/fuzz_replay.rs`
//! call [`decode`], [`session`] and [`raw_session`].
//!
//! A session is structured ([`Step`], derived with `arbitrary`): requests of
//! the sizes and ranges that matter (4 KiB and 2 MiB pages, ranges across
//! the vmemmap top-level boundary, compound pages), registrations with
//! tight quotas, failure injection, purges and faults (on the fault badge
//! of a space's latest registration, learned from its reply), aimed at what the
//! session made so far (the n-th area it allocated, the n-th space it
//! registered), so that few steps reach deep states. Each step is encoded
//! to message words and dispatched exactly as the seL4 loop does; raw
//! messages of arbitrary bytes keep the decoder's error paths in reach.

#![allow(
    clippy::panic,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "the harness reports a broken promise by panicking; it never runs on seL4"
)]

use arbitrary::{Arbitrary, Unstructured};
use memserver_protocol::batch::{batchable, BatchReply, MAX_BATCH_OPS};
use memserver_protocol::bootstrap::FaultBadge;
use memserver_protocol::fault;
use memserver_protocol::words::{BatchWords, Words};
use memserver_protocol::{
    ErrorCode, FailurePoint, Protection, Quota, Reply, Request, VmallocOptions, REPLIES, REQUESTS,
};
use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use crate::dispatch::{CapUse, Dispatcher, FaultAction};
use crate::host_backend::HostBackend;
use crate::ids::Badge;
use crate::invariant::{self, snapshot};
use crate::layout::{Area, DESCRIPTOR_SIZE, LARGE_PAGE_SIZE, PAGE_SIZE, TOP_ENTRY_SPAN};
use crate::populate::Access;
use crate::server::Config;
use crate::sim::Sim;

/// The administrator's badge.
pub const ADMIN: Badge = Badge(0);

/// Who a message comes from: the administrator and three clients, whose
/// badges fit one byte of a register request.
const CALLERS: [Badge; 4] = [ADMIN, Badge(1), Badge(2), Badge(3)];

/// CPUs a session's server may serve, at most: enough for percpu chunks of
/// several sizes.
const SESSION_CPUS: usize = 8;

/// A session: the CPUs the server serves (1 + `cpus` mod `SESSION_CPUS`) and
/// its steps.
#[derive(Clone, Debug)]
pub struct Session {
    cpus: u8,
    steps: Vec<Step>,
}

impl Session {
    /// The session `data` describes: the CPUs, the quotas of the three
    /// clients, which are registered first (one space each), then steps
    /// until the data runs out. (`arbitrary`'s own collections end where a
    /// byte says so: random data would make sessions of a step or two.)
    pub fn from_bytes(data: &[u8]) -> arbitrary::Result<Session> {
        let mut u = Unstructured::new(data);
        let cpus = u.arbitrary()?;
        let quotas: [Quotas; 3] = u.arbitrary()?;
        let mut steps: Vec<Step> = (0..).zip(quotas).map(|(n, q)| Step::Register(Client(n), q)).collect();
        while !u.is_empty() {
            steps.push(u.arbitrary()?);
        }
        Ok(Session { cpus, steps })
    }
}

/// One of the three clients: `n` mod 3 (one byte, so that every change of
/// it makes a change).
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Client(u8);

impl Client {
    fn badge(self) -> Badge {
        CALLERS[1 + usize::from(self.0 % 3)]
    }
}

/// What a client may hold: bytes, frames, structures, areas, a byte each
/// (see [`Quotas::quota`]), so that sessions spend few bytes on them.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Quotas([u8; 4]);

impl Quotas {
    /// Bytes: 255 is no limit, below 128 that many pages of 4 KiB, else
    /// that many MiB past 128. Objects: 64 to 127 is the default share, 128
    /// and above no limit, else that many.
    fn quota(self) -> Quota {
        let [bytes, frames, structures, areas] = self.0;
        let count = |n: u8| match n {
            0..64 => u32::from(n),
            64..128 => Quota::DEFAULT_SHARE,
            _ => Quota::NO_LIMIT,
        };
        let bytes = match bytes {
            255 => u64::MAX,
            n @ 0..128 => u64::from(n) * PAGE_SIZE,
            n => u64::from(n - 128) << 20,
        };
        Quota { bytes, frames: count(frames), structures: count(structures), areas: count(areas) }
    }
}

/// Something the session made earlier (the n-th of its kind, counting
/// round), or any value.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Pick<T> {
    /// The n-th made (modulo how many were; the fallback if none).
    Made(u8),
    /// This value.
    Any(T),
}

/// A vmalloc size.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Size {
    /// 1 to 32 pages of 4 KiB.
    Pages(u8),
    /// 1 to 4 times 2 MiB, plus 0 to 3 pages (rounded up for 2 MiB pages;
    /// with 4 KiB pages it spans page tables).
    Large(u8, u8),
    /// Any byte count.
    Any(u64),
}

impl Size {
    fn bytes(self) -> u64 {
        match self {
            Size::Pages(n) => (u64::from(n % 32) + 1) * PAGE_SIZE,
            Size::Large(n, extra) => (u64::from(n % 4) + 1) * LARGE_PAGE_SIZE + u64::from(extra % 4) * PAGE_SIZE,
            Size::Any(bytes) => bytes,
        }
    }
}

/// Where a vmemmap range starts.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum PfnBase {
    /// Pfn 0.
    Low,
    /// 2^15 pfns below the vmemmap area's top-level boundary, so ranges
    /// cross it.
    Boundary,
    /// Far from the others (new structures).
    Far,
    /// Any pfn.
    Any(u64),
}

/// A compound-page order of a vmemmap populate.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Order {
    /// No compound pages.
    None,
    /// Order 8 (the smallest accepted).
    Eight,
    /// Order 9 (2 MiB compound pages).
    Nine,
    /// Any order.
    Any(u8),
}

impl Order {
    fn get(self) -> u8 {
        match self {
            Order::None => 0,
            Order::Eight => 8,
            Order::Nine => 9,
            Order::Any(order) => order,
        }
    }
}

/// An address to translate or fault at.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Place {
    /// A page of the n-th vmalloc area the session made.
    Area(u8, u16),
    /// The head descriptor of the n-th vmemmap range it populated.
    Descriptor(u8),
    /// Any address.
    Any(u64),
}

/// An injected failure.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Point {
    /// Obtaining an object.
    Retype,
    /// A capability copy.
    Copy,
    /// A map.
    Map,
}

/// The options of a vmalloc that has some.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Placement {
    /// Alignment 2^(`align` mod 34).
    align: u8,
    /// Guard pages, mod 8; its top bit set, no zeroing.
    guard_pages: u8,
    /// Fail instead of purging.
    no_purge: bool,
}

/// One step of a session.
#[derive(Arbitrary, Clone, Debug)]
pub enum Step {
    /// The administrator registers a new VSpace for a client, with quotas.
    Register(Client, Quotas),
    /// The administrator unregisters a space.
    Unregister(Pick<u16>),
    /// A vmalloc with 2 MiB pages if `true`, and options if any.
    Vmalloc(Client, Size, bool, Option<Placement>),
    /// A vfree of an area.
    Vfree(Client, Pick<u64>),
    /// A vrealloc of an area to a size.
    Vrealloc(Client, Pick<u64>, Size),
    /// A protect of an area, read-only if `true`.
    Protect(Client, Pick<u64>, bool),
    /// The administrator purges.
    Purge,
    /// A percpu allocation of `size` bytes aligned to 2^`align`.
    PercpuAlloc(Client, u16, u8),
    /// A percpu free.
    PercpuFree(Client, Pick<u32>),
    /// A vmemmap populate of `size` descriptor frames' worth of pfns (or
    /// compound pages) at slot `slot` from `base`.
    VmemmapPopulate {
        /// Who asks.
        client: Client,
        /// Where the range starts.
        base: PfnBase,
        /// Offset from the base, in ranges of the largest size.
        slot: u8,
        /// 1 to 16 descriptor frames (or compound pages).
        size: u8,
        /// Compound order.
        order: Order,
        /// 2 MiB descriptor frames where they fit.
        huge: bool,
    },
    /// A vmemmap depopulate of a populated range, or of any.
    VmemmapDepopulate(Client, Pick<(u64, u64)>),
    /// The administrator makes the `nth` (mod 64) invocation at `point`
    /// fail (0 disarms).
    InjectFailure(Point, u8),
    /// A translate of a place, or (`None`) a statistics request.
    Query(Client, Option<Place>),
    /// A VM fault in a space at an address, a write if the first `true`,
    /// with a capability (which no kernel fault message has) if the second.
    Fault(Pick<u16>, Place, bool, bool),
    /// The administrator grants a client the memory of its frames (a CNode
    /// of them made for it at its first use, as a launcher gives a
    /// program its frames).
    GrantFrames(Client),
    /// A vmap by `client` of `pages` (1 + mod 24) slots from `first` (mod
    /// 20) of the frames CNode of `of` (its own, or another's), read-only
    /// if `read_only`. A frames CNode holds [`CLIENT_FRAMES`] frames in 32
    /// slots: runs past them reach empty slots.
    Vmap {
        /// Who asks.
        client: Client,
        /// Whose frames.
        of: Client,
        /// The first slot.
        first: u8,
        /// How many.
        pages: u8,
        /// The area's rights.
        read_only: bool,
    },
    /// One batch from a client of the requests the steps would send (any
    /// request, batchable or not; as many as one batch message holds).
    Batch(Client, Vec<Step>),
    /// A message of raw bytes from caller `caller` mod 4 (0: the
    /// administrator), with a new VSpace capability if `cap`.
    Raw {
        /// Who sends it.
        caller: u8,
        /// The message bytes.
        bytes: Vec<u8>,
        /// Whether a capability comes with it.
        cap: bool,
    },
}

/// What a session made so far, for steps to aim at.
#[derive(Default)]
struct Made {
    spaces: Vec<u16>,
    /// The fault badge of each space id's latest registration.
    fault_badges: Vec<(u16, u64)>,
    /// Every vmalloc area, freed or not.
    areas: Vec<u64>,
    /// Areas not freed yet, with their owners.
    live: Vec<(Badge, u64)>,
    offsets: Vec<u32>,
    ranges: Vec<(u64, u64)>,
}

/// `pick` among `made`, or `fallback` if nothing was made.
fn choose<T: Copy>(pick: Pick<T>, made: &[T], fallback: T) -> T {
    match pick {
        Pick::Made(_) if made.is_empty() => fallback,
        Pick::Made(n) => made[usize::from(n) % made.len()],
        Pick::Any(value) => value,
    }
}

impl Made {
    /// The n-th area `client` holds, else any area made.
    fn area_of(&self, client: Client, area: Pick<u64>) -> u64 {
        let own: Vec<u64> = self.live.iter().filter(|(o, _)| *o == client.badge()).map(|(_, a)| *a).collect();
        let fallback = choose(area, &self.areas, Area::Vmalloc.start());
        choose(area, &own, fallback)
    }

    /// The fault badge of `space`'s latest registration (generation 0 if it
    /// was never registered).
    fn fault_badge(&self, space: u16) -> u64 {
        let latest = self.fault_badges.iter().rev().find(|(s, _)| *s == space);
        latest.map_or(FaultBadge::new(space, 0).word(), |&(_, badge)| badge)
    }

    fn place(&self, place: Place) -> u64 {
        match place {
            Place::Area(n, page) => {
                choose(Pick::Made(n), &self.areas, Area::Vmalloc.start()) + u64::from(page) * PAGE_SIZE
            }
            Place::Descriptor(n) => {
                let (start, _) = choose(Pick::Made(n), &self.ranges, (0, 0));
                Area::Vmemmap.start() + start * DESCRIPTOR_SIZE
            }
            Place::Any(addr) => addr,
        }
    }
}

/// Frames in a client's frames CNode.
const CLIENT_FRAMES: u64 = 16;
/// Radix of a client's frames CNode.
const FRAMES_RADIX: u8 = 5;

/// The capability that comes with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attached {
    None,
    /// A new VSpace.
    VSpace,
    /// The frames CNode of a client.
    Frames(Badge),
}

/// What a step sends: a message (from whom, with what capability, and the
/// request it encodes unless it is raw bytes), the administrator's grant
/// of a client's frames, or a fault.
#[allow(clippy::large_enum_variant, reason = "one at a time, made and used at once")]
enum Action {
    Message { caller: Badge, words: Words, cap: Attached, request: Option<Request> },
    Grant(Badge),
    Batch { caller: Badge, ops: heapless::Vec<Request, MAX_BATCH_OPS> },
    Fault { badge: u64, addr: u64, access: Access, cap: bool },
}

/// What became of a step.
#[allow(clippy::large_enum_variant, reason = "one at a time, made and used at once")]
enum Outcome {
    /// The reply to a message from a caller and what became of its
    /// capability.
    Reply(Badge, Reply, CapUse),
    /// What the server did with a fault message.
    Fault(FaultAction),
    /// The answer to a batch from a caller.
    Batch(Badge, Result<BatchReply, ErrorCode>),
}

fn message(caller: Badge, request: Request) -> Action {
    let words = Words::encode(&request).expect("every request fits a message");
    let cap = if matches!(request, Request::Register { .. }) { Attached::VSpace } else { Attached::None };
    Action::Message { caller, words, cap, request: Some(request) }
}

fn access(write: bool) -> Access {
    if write {
        Access::Write
    } else {
        Access::Read
    }
}

impl Step {
    /// What this step sends, given what the session made so far.
    fn action(&self, made: &Made) -> Action {
        match *self {
            Step::Register(client, quotas) => {
                message(ADMIN, Request::Register { client: client.badge().0, quota: quotas.quota() })
            }
            Step::Unregister(space) => message(ADMIN, Request::Unregister { space: choose(space, &made.spaces, 0) }),
            Step::Vmalloc(client, size, large_pages, placement) => {
                let size = size.bytes();
                let request = match placement {
                    None => Request::Vmalloc { size, large_pages },
                    Some(Placement { align, guard_pages, no_purge }) => {
                        // 2^0 to 2^33: the largest three are refused.
                        let align = 1 << (align % 34);
                        let zero = guard_pages & 0x80 == 0;
                        let guard_pages = u32::from(guard_pages % 8);
                        Request::VmallocWith {
                            size,
                            options: VmallocOptions {
                                align,
                                guard_pages,
                                large_pages,
                                huge_pages: large_pages,
                                no_purge,
                                zero,
                            },
                        }
                    }
                };
                message(client.badge(), request)
            }
            Step::Vfree(client, area) => message(client.badge(), Request::Vfree { addr: made.area_of(client, area) }),
            Step::Vrealloc(client, area, size) => {
                let size = size.bytes();
                message(client.badge(), Request::Vrealloc { addr: made.area_of(client, area), size })
            }
            Step::Protect(client, area, read_only) => {
                let protection = if read_only { Protection::ReadOnly } else { Protection::ReadWrite };
                message(client.badge(), Request::Protect { addr: made.area_of(client, area), protection })
            }
            Step::Purge => message(ADMIN, Request::Purge),
            Step::PercpuAlloc(client, size, align) => {
                let align = 1u32.checked_shl(u32::from(align % 16)).unwrap_or(1);
                message(client.badge(), Request::PercpuAlloc { size: u32::from(size), align })
            }
            Step::PercpuFree(client, offset) => {
                message(client.badge(), Request::PercpuFree { offset: choose(offset, &made.offsets, 0) })
            }
            Step::VmemmapPopulate { client, base, slot, size, order, huge } => {
                let order = order.get();
                // pfns of a descriptor frame, or of a compound page (of an
                // order kept small enough for the sums below).
                let unit = if order == 0 { PAGE_SIZE / DESCRIPTOR_SIZE } else { 1 << order.min(32) };
                let nr_pages = (u64::from(size % 16) + 1) * unit;
                let base = match base {
                    PfnBase::Low => 0,
                    PfnBase::Boundary => TOP_ENTRY_SPAN / DESCRIPTOR_SIZE - (1 << 15),
                    PfnBase::Far => 3 << 30,
                    PfnBase::Any(pfn) => pfn,
                };
                let start_pfn = base.wrapping_add(u64::from(slot) * 16 * unit);
                message(client.badge(), Request::VmemmapPopulate { start_pfn, nr_pages, compound_order: order, huge })
            }
            Step::VmemmapDepopulate(client, range) => {
                let (start_pfn, nr_pages) = choose(range, &made.ranges, (0, 0));
                message(client.badge(), Request::VmemmapDepopulate { start_pfn, nr_pages })
            }
            Step::InjectFailure(point, nth) => {
                let point = match point {
                    Point::Retype => FailurePoint::Retype,
                    Point::Copy => FailurePoint::Copy,
                    Point::Map => FailurePoint::Map,
                };
                message(ADMIN, Request::InjectFailure { point, nth: u32::from(nth % 64) })
            }
            Step::Query(client, Some(place)) => message(client.badge(), Request::Translate { addr: made.place(place) }),
            Step::Query(client, None) => message(client.badge(), Request::Stats),
            Step::Fault(space, place, write, cap) => {
                let badge = made.fault_badge(choose(space, &made.spaces, 0));
                Action::Fault { badge, addr: made.place(place), access: access(write), cap }
            }
            Step::Batch(client, ref steps) => {
                let mut ops = heapless::Vec::new();
                for step in steps {
                    let Action::Message { request: Some(op), .. } = step.action(made) else { continue };
                    let mut more = ops.clone();
                    if more.push(op).is_err() || BatchWords::encode(&more).is_none() {
                        break;
                    }
                    ops = more;
                }
                Action::Batch { caller: client.badge(), ops }
            }
            Step::GrantFrames(client) => Action::Grant(client.badge()),
            Step::Vmap { client, of, first, pages, read_only } => {
                let protection = if read_only { Protection::ReadOnly } else { Protection::ReadWrite };
                let request = Request::Vmap {
                    first: u64::from(first % 20),
                    pages: 1 + u32::from(pages % 24),
                    depth: FRAMES_RADIX,
                    protection,
                };
                let words = Words::encode(&request).expect("every request fits a message");
                Action::Message {
                    caller: client.badge(),
                    words,
                    cap: Attached::Frames(of.badge()),
                    request: Some(request),
                }
            }
            Step::Raw { caller, ref bytes, cap } => {
                let cap = if cap { Attached::VSpace } else { Attached::None };
                Action::Message { caller: CALLERS[usize::from(caller % 4)], words: words(bytes), cap, request: None }
            }
        }
    }
}

/// A dispatcher serving a session, the rest of the system beside it, and
/// what the session made so far.
struct Driver<B: HostBackend> {
    d: Box<Dispatcher<B>>,
    rig: B::Rig,
    made: Made,
    /// Each client's frames CNode, once made: its handle and the frames'
    /// memory.
    frames: Vec<(Badge, B::Frames, u64, u64)>,
}

impl<B: HostBackend> Driver<B> {
    fn new(cpus: usize) -> Self {
        let (d, rig) = B::started(cpus);
        Self { d, rig, made: Made::default(), frames: Vec::new() }
    }

    /// `client`'s frames CNode and the frames' memory, made at first use.
    fn frames_of(&mut self, client: Badge) -> (B::Frames, u64, u64) {
        if let Some(&(_, frames, start, bytes)) = self.frames.iter().find(|(c, ..)| *c == client) {
            return (frames, start, bytes);
        }
        let (frames, start, bytes) = B::client_frames(&mut self.d, &mut self.rig, CLIENT_FRAMES, FRAMES_RADIX);
        self.frames.push((client, frames, start, bytes));
        (frames, start, bytes)
    }

    /// Performs `step`: the reply to a message and what became of its
    /// capability, or what the server did with a fault message.
    fn apply(&mut self, step: &Step) -> Outcome {
        let action = step.action(&self.made);
        match action {
            Action::Grant(client) => {
                let (_, start, bytes) = self.frames_of(client);
                let request = Request::GrantFrames { client: client.0, start, bytes };
                let (reply, cap_use) = self.d.handle(ADMIN, &Words::encode(&request).expect("it fits"), None);
                Outcome::Reply(ADMIN, reply, cap_use)
            }
            Action::Message { caller, words, cap, request } => {
                let cap = match cap {
                    Attached::None => None,
                    Attached::VSpace => Some(B::new_vspace(&mut self.d, &mut self.rig)),
                    Attached::Frames(of) => {
                        let (frames, ..) = self.frames_of(of);
                        Some(B::frames_arrive(&mut self.d, &mut self.rig, &frames))
                    }
                };
                let (reply, cap_use) = self.d.handle(caller, &words, cap);
                if let (Some(vspace), CapUse::Unused) = (cap, cap_use) {
                    B::not_kept(&mut self.d, &mut self.rig, vspace);
                }
                self.remember(caller, request, reply);
                Outcome::Reply(caller, reply, cap_use)
            }
            Action::Batch { caller, ops } => {
                let words = BatchWords::encode(&ops).expect("the ops fit one batch");
                let answer = self.d.handle_batch(caller, &words, |d, op| d.batch_op(caller, op));
                if let Ok(answer) = &answer {
                    for (&op, &reply) in ops.iter().zip(&answer.replies) {
                        self.remember(caller, Some(op), reply);
                    }
                }
                Outcome::Batch(caller, answer)
            }
            Action::Fault { badge, addr, access, cap } => {
                // The kernel's VM fault message: IP, address, prefetch flag
                // and the error code (present, write).
                let fsr = if access == Access::Write { 0b110 } else { 0b100 };
                let words = Words::from_slice(&[0x20_1000, addr, 0, fsr]);
                Outcome::Fault(self.d.fault(badge, fault::VM_FAULT, cap, &words))
            }
        }
    }

    /// The reply to `op` from `caller` sent alone, or, for a request that
    /// does not batch, what a batch answers in its place.
    fn single(&mut self, caller: Badge, op: Request) -> Reply {
        if !batchable(&op) {
            return Reply::Error(ErrorCode::InvalidArgument);
        }
        let words = Words::encode(&op).expect("every request fits a message");
        let (reply, _) = self.d.handle(caller, &words, None);
        self.remember(caller, Some(op), reply);
        reply
    }

    /// Notes what `caller`'s `request` made or freed, from its reply.
    fn remember(&mut self, caller: Badge, request: Option<Request>, reply: Reply) {
        let made = &mut self.made;
        match (reply, request) {
            (Reply::Space(registration), _) => {
                made.spaces.push(registration.space);
                made.fault_badges.push((registration.space, registration.fault_badge));
            }
            (Reply::Address(addr), _) => {
                made.areas.push(addr);
                made.live.push((caller, addr));
            }
            (Reply::Done, Some(Request::Vfree { addr })) => made.live.retain(|&(_, a)| a != addr),
            (Reply::Realloc(realloc), Some(Request::Vrealloc { addr, .. })) => {
                made.live.retain(|&(_, a)| a != addr);
                made.areas.push(realloc.addr);
                made.live.push((caller, realloc.addr));
            }
            (Reply::Offset(offset), _) => made.offsets.push(offset),
            (Reply::Done, Some(Request::VmemmapPopulate { start_pfn, nr_pages, .. })) => {
                made.ranges.push((start_pfn, nr_pages));
            }
            _ => {}
        }
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

/// Serves the structured session `data` describes (see [`Session`]) on a
/// fresh dispatcher over the simulated MMU, checking every promise after
/// every step.
pub fn session(data: &[u8]) {
    session_on::<Sim>(data);
}

/// [`session`] over the backend `B`.
pub fn session_on<B: HostBackend>(data: &[u8]) {
    if let Ok(session) = Session::from_bytes(data) {
        run::<B>(&session);
    }
}

/// Serves a session in the byte format of raw messages and faults,
/// checking every promise after every step.
///
/// The first byte chooses the number of CPUs (1 + byte mod `SESSION_CPUS`).
/// Each step then starts with a byte `h`. With bit 7 clear it is a message
/// from caller `h & 3` (0 is the administrator), carrying a new VSpace if
/// bit 2 is set; the next byte counts the message bytes that follow. With
/// bit 7 set it is a fault, a write if bit 0 is set, with a capability if
/// bit 1 is set, in the space the next byte names, at the address in the
/// eight bytes after (little endian). Bytes missing at the end read as
/// zeros. Over the simulated MMU.
pub fn raw_session(data: &[u8]) {
    raw_session_on::<Sim>(data);
}

/// [`raw_session`] over the backend `B`.
pub fn raw_session_on<B: HostBackend>(data: &[u8]) {
    let mut bytes = data.iter().copied();
    let cpus = bytes.next().unwrap_or(0);
    let mut steps = Vec::new();
    while let Some(h) = bytes.next() {
        let mut next = || bytes.next().unwrap_or(0);
        steps.push(if h & 0x80 == 0 {
            let len = next();
            let message = (0..len).map(|_| next()).collect();
            Step::Raw { caller: h & 3, bytes: message, cap: h & 4 != 0 }
        } else {
            let space = next();
            let addr = le_u64(&[(); 8].map(|()| next()));
            Step::Fault(Pick::Any(space.into()), Place::Any(addr), h & 1 != 0, h & 2 != 0)
        });
    }
    run::<B>(&Session { cpus, steps });
}

/// vmaps of a client's own frames, granted and not, read-only and
/// not, running into the frames CNode's empty slots, of another's
/// frames, failing at an injected Map, and inside a batch (which does
/// not take them): [`run`] checks every reply and the state after each,
/// and at the end that every borrowed frame was given back. The
/// host tests serve it over the simulated MMU and over the model.
pub fn vmap_session() -> Session {
    let quota = Quotas([200, 100, 100, 100]);
    let (a, b) = (Client(0), Client(1));
    let vmap = |client, of, first, pages, read_only| Step::Vmap { client, of, first, pages, read_only };
    let steps = vec![
        Step::Register(a, quota),
        Step::Register(b, quota),
        vmap(a, a, 0, 3, false),
        Step::GrantFrames(a),
        vmap(a, a, 0, 3, false),
        vmap(a, a, 2, 15, true),
        vmap(a, a, 10, 9, false),
        vmap(a, b, 0, 1, false),
        Step::GrantFrames(b),
        vmap(b, b, 4, 4, false),
        Step::InjectFailure(Point::Map, 3),
        vmap(b, b, 0, 8, false),
        Step::Protect(a, Pick::Made(1), false),
        Step::Vfree(a, Pick::Made(0)),
        Step::Fault(Pick::Made(1), Place::Area(1, 2), true, false),
        Step::Batch(a, vec![vmap(a, a, 0, 1, false), Step::Vmalloc(a, Size::Pages(1), false, None)]),
        Step::Purge,
        Step::Unregister(Pick::Made(0)),
        vmap(a, a, 0, 1, false),
    ];
    Session { cpus: 2, steps }
}

/// Serves `session`, checking every promise after every step, then
/// unregisters every space and checks that everything is back.
pub fn run<B: HostBackend>(session: &Session) {
    let cpus = 1 + usize::from(session.cpus) % SESSION_CPUS;
    let steps = &session.steps;
    let mut driver = Driver::<B>::new(cpus);
    let start = (driver.d.server().census(), driver.d.server().region().backend().held());
    for (i, step) in steps.iter().enumerate() {
        let before = snapshot(driver.d.server());
        let injected = driver.d.server().region().backend().failures_injected();
        match driver.apply(step) {
            Outcome::Reply(caller, reply, cap_use) => {
                assert!(Words::encode(&reply).is_some(), "step {i}: reply {reply:?} does not fit a message");
                // The backend refuses only what seL4 would, or what was
                // injected: else a server bug.
                let injected = driver.d.server().region().backend().failures_injected() > injected;
                assert!(
                    injected || reply != Reply::Error(ErrorCode::Kernel),
                    "step {i} ({step:?}): the kernel refused an operation"
                );
                assert_eq!(
                    cap_use == CapUse::Kept,
                    matches!(reply, Reply::Space(_)),
                    "step {i}: capability {cap_use:?} with reply {reply:?}"
                );
                if matches!(reply, Reply::Error(_)) && snapshot(driver.d.server()) != before {
                    // Allowed only if the request purged: then the state is
                    // the one before it with the caller's freed areas
                    // purged (its quota stopped it) or everyone's (memory
                    // ran out, even if its quota stopped the retry).
                    let replay = |purge: &dyn Fn(&mut Driver<B>)| {
                        let mut expected = Driver::<B>::new(cpus);
                        for step in &steps[..i] {
                            expected.apply(step);
                        }
                        purge(&mut expected);
                        snapshot(expected.d.server())
                    };
                    let own = replay(&|d| {
                        let server = d.d.server_mut();
                        let admin = server.admin(ADMIN).expect("the administrator");
                        server.purge_client(&admin, caller);
                    });
                    let after = snapshot(driver.d.server());
                    if after != own {
                        let all = replay(&|d| {
                            d.apply(&Step::Purge);
                        });
                        assert_eq!(after, all, "step {i} ({step:?}): {reply:?} changed the state");
                    }
                }
            }
            Outcome::Batch(caller, Ok(answer)) => {
                // The batch made what its operations make one by one (and
                // one that does not batch, nothing).
                let mut alone = Driver::<B>::new(cpus);
                for step in &steps[..i] {
                    alone.apply(step);
                }
                let singles: Vec<Reply> = match step.action(&alone.made) {
                    Action::Batch { ops, .. } => ops.iter().map(|&op| alone.single(caller, op)).collect(),
                    _ => Vec::new(),
                };
                assert_eq!(answer.replies.to_vec(), singles, "step {i} ({step:?}): the batch's replies");
                assert_eq!(snapshot(driver.d.server()), snapshot(alone.d.server()), "step {i} ({step:?}): its state");
            }
            Outcome::Batch(_, Err(code)) => {
                assert_eq!(snapshot(driver.d.server()), before, "step {i}: a batch refused {code:?} changed the state");
            }
            Outcome::Fault(action) => {
                if let Step::Fault(_, _, _, true) = step {
                    assert_eq!(action, FaultAction::Dropped, "step {i}: a fault message with a capability counted");
                }
                if action == FaultAction::Dropped {
                    assert_eq!(
                        snapshot(driver.d.server()),
                        before,
                        "step {i}: a dropped fault message changed the state"
                    );
                }
            }
        }
        if let Err(e) = invariant::check(driver.d.server()) {
            panic!("step {i} ({step:?}): invariant broken: {e}");
        }
    }
    tear_down(&mut driver);
    let (stats, held) = start;
    let server = driver.d.server();
    let end = server.census();
    let kept = |s: &crate::accounting::Census| {
        (s.frames, s.canonical_leaves, s.vmalloc_areas, s.vmemmap_ranges, s.percpu_allocs)
    };
    assert_eq!(
        kept(&end),
        kept(&stats),
        "after unregistering every space: (frames, leaves, areas, ranges, allocations)"
    );
    if let Err(e) = server.region().backend().check_baseline(&held) {
        panic!("after unregistering every space: {e}");
    }
}

/// Disarms failure injection, unregisters every space (each client's last
/// one frees all it held) and purges the freed areas.
fn tear_down<B: HostBackend>(driver: &mut Driver<B>) {
    for point in [Point::Retype, Point::Copy, Point::Map] {
        driver.apply(&Step::InjectFailure(point, 0));
    }
    let spaces: Vec<u16> = driver.d.server().region().space_ids().map(|id| id.wire()).collect();
    for space in spaces {
        driver.apply(&Step::Unregister(Pick::Any(space)));
    }
    driver.apply(&Step::Purge);
    if let Err(e) = invariant::check(driver.d.server()) {
        panic!("after unregistering every space: invariant broken: {e}");
    }
}

/// A started dispatcher over a fresh simulation, on the heap.
pub fn dispatcher(cpus: usize) -> Box<Dispatcher<Sim>> {
    built(move || {
        let mut d = Box::new(Dispatcher::new(Sim::new(), Config { admin: ADMIN, cpus }));
        d.start(()).expect("the server starts");
        d
    })
}

/// What `build` makes (a server, which it boxes), made with stack enough
/// for the server to pass through on its way into the box.
pub fn built<T: Send + 'static>(build: impl FnOnce() -> T + Send + 'static) -> T {
    if cfg!(fuzzing) {
        // The fuzz build is optimised: the server goes into the box with
        // little stack. A new thread's stack would be fresh memory, faulted
        // in and cleared for every session (sessions about 20 times
        // slower, as the README's fuzzing section measures).
        build()
    } else {
        // Unoptimised builds move the server (about a megabyte) through
        // the stack several times on its way into the box.
        let builder = std::thread::Builder::new().stack_size(64 << 20);
        builder.spawn(build).expect("a thread to build the server").join().expect("the server is built")
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    /// A batch with good requests, bad ones (size 0; a purge, a
    /// registration and a failure injection, which do not batch) and a Map
    /// failure armed to strike in its middle: [`run`] checks its replies and state against the same
    /// requests sent one by one, and the invariant after it.
    #[test]
    fn a_batch_is_checked_against_its_requests_alone() {
        let quota = Quotas([200, 100, 100, 100]);
        let (a, b) = (Client(0), Client(1));
        let vmalloc = |client, pages| Step::Vmalloc(client, Size::Pages(pages), false, None);
        let batch = vec![
            vmalloc(a, 3),
            Step::Vfree(a, Pick::Made(0)),
            vmalloc(a, 0),
            Step::Purge,
            Step::Register(b, quota),
            Step::InjectFailure(Point::Map, 2),
            Step::PercpuAlloc(a, 64, 3),
            Step::Protect(a, Pick::Made(1), true),
            Step::Vrealloc(a, Pick::Made(1), Size::Pages(9)),
            vmalloc(a, 2),
        ];
        let steps = vec![
            Step::Register(a, quota),
            Step::Register(b, quota),
            vmalloc(b, 1),
            vmalloc(a, 1),
            Step::InjectFailure(Point::Map, 5),
            Step::Batch(a, batch),
            Step::Batch(Client(2), vec![vmalloc(a, 1)]),
        ];
        run::<Sim>(&Session { cpus: 2, steps });
    }

    #[test]
    fn vmaps_are_checked_and_their_frames_given_back() {
        run::<Sim>(&vmap_session());
    }
}
