//! A dispatcher driven as the seL4 loop drives it: requests encoded into
//! message words with a caller's badge, the invariant checked after every
//! message, and every reply required to fit a message.

use memserver_core::dispatch::{CapUse, Dispatcher, FaultAction};
use memserver_core::sim::{Sim, SimVSpace};
use memserver_core::Badge;
use memserver_protocol::fault;
use memserver_protocol::words::Words;
use memserver_protocol::{ErrorCode, Quota, Registration, Reply, Request, VmallocOptions};

use super::ADMIN;

const MIB: u64 = 1 << 20;

/// A started dispatcher for 4 CPUs over a fresh simulation, on the heap.
pub fn dispatcher() -> Box<Dispatcher<Sim>> {
    memserver_core::harness::dispatcher(4)
}

/// Sends `request` from `caller` (with `cap`), checks the invariant, and
/// returns the reply.
pub fn send(d: &mut Dispatcher<Sim>, caller: Badge, request: Request, cap: Option<SimVSpace>) -> Reply {
    let (reply, _) = d.handle(caller, &Words::encode(&request).unwrap(), cap);
    super::check(d.server());
    assert!(Words::encode(&reply).is_some(), "reply {reply:?} does not fit a message");
    reply
}

/// A dispatcher with two spaces of client `a` and one of client `b`, each
/// with a quota of 64 MiB.
pub fn three_spaces(a: Badge, b: Badge) -> Box<Dispatcher<Sim>> {
    let mut d = dispatcher();
    for client in [a, a, b] {
        register(&mut d, client);
    }
    d
}

/// `caller`'s vmalloc of `size` bytes with `options`: the area's address.
pub fn vmalloc_with(d: &mut Dispatcher<Sim>, caller: Badge, size: u64, options: VmallocOptions) -> u64 {
    match send(d, caller, Request::VmallocWith { size, options }, None) {
        Reply::Address(addr) => addr,
        other => panic!("vmalloc: {other:?}"),
    }
}

/// `caller`'s vmalloc of `size` bytes with `options`: the area's address,
/// or the error it was refused with.
pub fn try_vmalloc_with(
    d: &mut Dispatcher<Sim>,
    caller: Badge,
    size: u64,
    options: VmallocOptions,
) -> Result<u64, ErrorCode> {
    match send(d, caller, Request::VmallocWith { size, options }, None) {
        Reply::Address(addr) => Ok(addr),
        Reply::Error(code) => Err(code),
        other => panic!("vmalloc: {other:?}"),
    }
}

/// A VM fault message as the kernel sends it, on `badge` (a write if
/// `write`); the invariant is checked after it.
pub fn vm_fault(d: &mut Dispatcher<Sim>, badge: u64, addr: u64, write: bool) -> FaultAction {
    let fsr = if write { 0b110 } else { 0b100 };
    let action = d.fault(badge, fault::VM_FAULT, false, &Words::from_slice(&[0x1234, addr, 0, fsr]));
    super::check(d.server());
    action
}

/// Registers a new VSpace for `client` with a quota of 64 MiB; returns its
/// space id.
pub fn register(d: &mut Dispatcher<Sim>, client: Badge) -> u16 {
    registration(d, client).space
}

/// Registers a new VSpace for `client` with a quota of 64 MiB.
pub fn registration(d: &mut Dispatcher<Sim>, client: Badge) -> Registration {
    let vspace = d.sim_hooks().new_vspace();
    register_space(d, client, Quota::bytes(64 * MIB), vspace)
}

/// Registers a new VSpace for `client` with `quota`; returns its space id.
pub fn register_quota(d: &mut Dispatcher<Sim>, client: Badge, quota: Quota) -> u16 {
    let vspace = d.sim_hooks().new_vspace();
    register_space(d, client, quota, vspace).space
}

/// Registers `vspace` for `client` with `quota`.
pub fn register_space(d: &mut Dispatcher<Sim>, client: Badge, quota: Quota, vspace: SimVSpace) -> Registration {
    let (reply, cap_use) =
        d.handle(ADMIN, &Words::encode(&Request::Register { client: client.0, quota }).unwrap(), Some(vspace));
    assert_eq!(cap_use, CapUse::Kept);
    match reply {
        Reply::Space(registration) => registration,
        other => panic!("register: {other:?}"),
    }
}
