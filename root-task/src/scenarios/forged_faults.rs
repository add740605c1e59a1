//! Scenario `forged-faults`: seL4 5.0.0 finds a thread's fault endpoint in
//! the thread's own CSpace, so a client holds its space's fault endpoint
//! and can send on it what it likes. B forges VM faults there: at an
//! address A maps (nothing happens: B maps it too), at an address nothing
//! maps (reported, naming B's space), in shapes no kernel fault has
//! (dropped). It cannot receive on its server, fault or outcome endpoint
//! (that is a capability fault of its own, reported). A thread of its
//! floods forged faults from another CPU while the root task keeps calling the server (reports never
//! block the server: each is taken or counted as dropped). Then C's fault
//! identity is retired: a copy of its old fault badge reaches nothing,
//! before and after C registers again, while C's new one works. Through it
//! all A's data is intact for A and D, and nothing is repaired.

use super::{check, done, expect_fault, run_done, vmalloc, World, AGENT_QUOTA, KIB};
use crate::fail;
use crate::verdict::{reason, Context, Reason, Verdict};
use memserver_protocol::fault;
use memserver_protocol::{FaultKind, FaultReport};
use root_task::agent::{Agent, Trouble};
use root_task::agent_protocol::{slot, Command, Outcome, RawMessage, FORGED_IP};
use root_task::inbox::Event;

/// Forged faults in the flood.
const FLOOD: u32 = 200;
/// Calls the root task makes while the flood arrives.
const CALLS_DURING_FLOOD: u32 = 2000;
/// A page-fault error code of a write.
const FSR_WRITE: u64 = 0b110;

/// A VM fault message as the kernel would send it, `times` times, on
/// the agent's endpoint in slot `to`.
fn vm_fault(to: u64, addr: u64, fsr: u64, times: u32) -> RawMessage {
    RawMessage {
        to,
        label: fault::VM_FAULT,
        words: [FORGED_IP, addr, 0, fsr],
        len: fault::VM_FAULT_LENGTH as u8,
        caps: [0; 2],
        call: false,
        times,
    }
}

/// `agent` sends `message`, which must reach nothing: no report comes,
/// only the agent's own outcome.
fn reaches_nothing(agent: &Agent, what: &str, message: RawMessage) -> Verdict {
    match agent.run(Command::Message(message)) {
        Ok(Outcome::Done) => Ok(()),
        other => fail!("{} sending {what}: {other:?}", agent.name),
    }
}

pub fn run(w: &mut World) -> Verdict {
    let before = w.stats()?;
    let theirs = vmalloc(&w.agents[0], 16 * KIB)?;
    run_done(&w.agents[0], Command::Fill { addr: theirs, len: 16 * KIB, seed: 0xf0 })?;
    let unmapped = w.region.vmalloc_start + (256 << 30);
    let b = &w.agents[1];
    let b_space = b.space().ok_or_else(|| reason(format_args!("B has no space")))?;
    reaches_nothing(b, "a fault at A's address", vm_fault(slot::FAULT, theirs, 0, 1))?;
    reaches_nothing(b, "a write fault at A's address", vm_fault(slot::FAULT, theirs + 8, FSR_WRITE, 1))?;
    match b.run(Command::Message(vm_fault(slot::FAULT, unmapped, 0, 1))) {
        Err(Trouble::Faulted(r))
            if (r.space, r.addr, r.ip, r.kind) == (b_space, unmapped, FORGED_IP, FaultKind::UnmappedRead) => {}
        other => fail!("B's fault at an unmapped address: expected a report of its own space, got {other:?}"),
    }
    let short = RawMessage { len: 3, ..vm_fault(slot::FAULT, unmapped, 0, 1) };
    reaches_nothing(b, "a fault message one word short", short)?;
    let unknown = RawMessage { label: 7, ..vm_fault(slot::FAULT, unmapped, 0, 1) };
    reaches_nothing(b, "a message with no fault's label", unknown)?;
    let exception = RawMessage { label: fault::USER_EXCEPTION, ..vm_fault(slot::FAULT, unmapped, 0, 1) };
    reaches_nothing(b, "an exception of a VM fault's length", exception)?;
    for (what, from) in
        [("server endpoint", slot::MEMSERVER), ("fault endpoint", slot::FAULT), ("outcome endpoint", slot::OUTCOME)]
    {
        // Without the Receive right a receive is a capability fault of B's own.
        match b.run(Command::Receive { from }) {
            Err(Trouble::Faulted(r)) if (r.space, r.kind) == (b_space, FaultKind::Exception) => {}
            other => fail!("B receiving on its {what}: expected its own capability fault, got {other:?}"),
        }
    }
    flood(w, b_space, unmapped)?;
    retired_identity(w, unmapped)?;
    for reader in [&w.agents[0], &w.late] {
        check(reader, theirs, 16 * KIB, 0xf0)?;
    }
    done(&w.agents[0], memserver_protocol::Request::Vfree { addr: theirs })?;
    let after = w.stats()?;
    if (after.missed_syncs, after.spaces) != (before.missed_syncs, before.spaces) {
        fail!(
            "missed syncs {} -> {}, spaces {} -> {}",
            before.missed_syncs,
            after.missed_syncs,
            before.spaces,
            after.spaces
        );
    }
    Ok(())
}

/// A thread of B's, on a second CPU from its start, forges `FLOOD` faults
/// at `unmapped`, while the root task calls the server for reports again
/// and again, then waits. Every forged fault must come back as a report of
/// B's space or be counted in one as dropped; nothing else arrives.
fn flood(w: &mut World, b_space: u16, unmapped: u64) -> Verdict {
    let admin = w.server.admin;
    let cpu = if w.cpus > 1 { 1 } else { 0 };
    let forger = w.agents[1].start_forger(w.alloc, cpu, unmapped, FLOOD.into());
    let mut seen = 0u64;
    let mut count = |r: FaultReport| -> Verdict {
        if (r.space, r.addr, r.kind) != (b_space, unmapped, FaultKind::UnmappedRead) {
            fail!("a report of the flood names {r:?}");
        }
        seen += 1 + u64::from(r.dropped);
        Ok(())
    };
    for _ in 0..CALLS_DURING_FLOOD {
        if let Some(r) = admin.take_fault().context("taking a report during the flood")? {
            count(r)?;
        }
    }
    loop {
        match w.inbox.next() {
            Event::Fault(r) => count(r)?,
            // Only B's forger runs now.
            Event::Outcome { outcome: Outcome::Done, .. } => break,
            other => fail!("during B's flood: {other}"),
        }
    }
    while let Some(r) = admin.take_fault().context("taking the last reports")? {
        count(r)?;
    }
    forger.tcb.suspend().context("suspending B's forger")?;
    if seen != u64::from(FLOOD) {
        fail!("{FLOOD} forged faults, {seen} reports taken or counted as dropped");
    }
    Ok(())
}

/// C registers and unregisters; a copy of its fault badge from then,
/// lent to B, reaches nothing, before and after C registers again; C's
/// new identity works. C is left unregistered, as it was.
fn retired_identity(w: &mut World, unmapped: u64) -> Result<(), Reason> {
    let [a, b, c] = &mut w.agents;
    let admin = w.server.admin;
    c.register(&admin, AGENT_QUOTA).context("registering C")?;
    let old = c.registration.map(|r| r.fault_badge).ok_or_else(|| reason(format_args!("C has no fault badge")))?;
    c.unregister(&admin).context("unregistering C")?;
    b.lend(old);
    reaches_nothing(b, "C's old fault badge, C unregistered", vm_fault(slot::LENT, unmapped, 0, 1))?;
    c.register(&admin, AGENT_QUOTA).context("registering C again")?;
    if c.registration.map(|r| r.fault_badge) == Some(old) {
        fail!("C registered again with its old fault badge {old:#x}");
    }
    reaches_nothing(b, "C's old fault badge, C registered again", vm_fault(slot::LENT, unmapped, 0, 1))?;
    b.take_back().context("taking the old badge back from B")?;
    expect_fault(c, Command::Read { addr: unmapped }, unmapped, FaultKind::UnmappedRead)?;
    let addr = vmalloc(a, 4 * KIB)?;
    run_done(a, Command::Fill { addr, len: 4 * KIB, seed: 0xc })?;
    check(c, addr, 4 * KIB, 0xc)?;
    done(a, memserver_protocol::Request::Vfree { addr })?;
    c.unregister(&admin).context("unregistering C at the end")
}
