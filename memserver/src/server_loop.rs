//! The server program's loop: receive, decode, dispatch, reply. Faults of
//! registered spaces' threads arrive on the same endpoint (on their fault
//! badges); they are repaired from the canonical table or queued as
//! reports for the administrator, who is told by a signal of its
//! notification, which never blocks (`memserver_protocol::bootstrap`). Nothing a
//! message contains can stop the loop, and whatever capability arrives
//! with any message is gone from the receive slot before the next receive.
//! A request (and the start, the taking of a receive slot, and a fault's
//! repair) that failed for want of heap runs again once the heap grew
//! ([`heap::retrying`]), from the copy of its words taken off the IPC
//! buffer; in a batch (`BATCH_LABEL`), each operation on its own. The
//! common requests come in the message registers as they are
//! (`memserver_protocol::registers`) and are answered in them where the
//! reply fits.

use crate::heap;
use crate::sel4_backend::{Sel4Backend, Start};
use alloc::vec::Vec;
use memserver_core::dispatch::{CapUse, Dispatcher, FaultAction};
use memserver_core::error::Error;
use memserver_core::ids::Badge;
use memserver_core::server::Config;
use memserver_protocol::batch::BATCH_LABEL;
use memserver_protocol::bootstrap::{badge, cspace, server_slot, ServerStart, KERNEL_CPUS, READY_LABEL};
use memserver_protocol::registers;
use memserver_protocol::{DecodeError, ErrorCode, Reply, Request};
use memserver_protocol::{Message, Words, MAX_BATCH_WORDS, MAX_WORDS, PING_LABEL, PROTOCOL_LABEL};
use sel4_layer::abi::size::MSG_MAX_LENGTH;
use sel4_layer::abi::CPtr;
use sel4_layer::injecting::Injecting;
use sel4_layer::kernel::Syscalls;
use sel4_layer::syscall::{self, CpuMrs, SyscallResult};
use sel4_layer::{ipc, ipc_buffer, MessageInfo};

/// The server's backend: system calls, with failures injected on the
/// administrator's request.
type Backend = Sel4Backend<Injecting<Syscalls>>;

/// The server, built in place (it is far too large for the stack).
static DISPATCHER: spin::Mutex<Dispatcher<Backend>> = spin::Mutex::new(Dispatcher::new(
    Sel4Backend::new(Injecting::new(Syscalls)),
    Config { admin: Badge(badge::ADMIN), cpus: KERNEL_CPUS },
));

/// The server's CPtr of the endpoint it receives on.
const ENDPOINT: CPtr = cspace::cptr(server_slot::ENDPOINT);

/// The empty reply: answers a ping, restarts a thread after a repair.
const EMPTY: (MessageInfo, CpuMrs) = (MessageInfo::new(0, 0, 0, 0), [0; 4]);

// Every message of the protocol fits seL4's message registers, and a
// batch may use them all.
const _: () = assert!(MAX_WORDS <= MSG_MAX_LENGTH && MAX_BATCH_WORDS == MSG_MAX_LENGTH);

/// The untyped capabilities of the bootstrap contract: slot and size bits.
fn untyped_grant(start: ServerStart) -> Result<Vec<(CPtr, u8)>, Error> {
    let mut untypeds = Vec::new();
    untypeds.try_reserve_exact(start.untypeds as usize).map_err(|_| Error::OutOfMemory)?;
    let slots = server_slot::UNTYPED_START..server_slot::UNTYPED_START + u64::from(start.untypeds);
    untypeds.extend(slots.map(|slot| (cspace::cptr(slot), start.untyped_bits as u8)));
    Ok(untypeds)
}

/// Grows the server's heap by at least `bytes`; whether it grew.
fn grow(dispatcher: &mut Dispatcher<Backend>, bytes: u64) -> bool {
    dispatcher.grow_heap(bytes).is_ok()
}

/// Sets up the backend and the server, then serves forever. A failure to
/// start is a panic: the administrator hears of it as this thread's fault.
#[allow(clippy::panic, reason = "start-up failures end the server before it serves any request")]
pub fn run(start: ServerStart) -> ! {
    let mut dispatcher = DISPATCHER.lock();
    if let Err(e) = dispatcher.serve_cpus(start.cpus as usize) {
        panic!("memserver: cannot serve {} CPUs: {e:?}", start.cpus);
    }
    let untypeds = match untyped_grant(start) {
        Ok(untypeds) => untypeds,
        Err(e) => panic!("memserver: no memory for the untyped grant: {e:?}"),
    };
    let started = heap::retrying(
        &mut *dispatcher,
        &mut heap::Server,
        |d| d.start(Start { first_free_slot: start.first_free_slot, untypeds: &untypeds }),
        |r| matches!(r, Err(Error::OutOfMemory)),
        grow,
    );
    if let Err(e) = started {
        panic!("memserver: start failed: {e:?}");
    }
    let share = dispatcher.server().default_objects();
    sel4_layer::println!(
        "memserver: serving {} CPUs ({} untyped caps, {} MiB; a client without counts may make {} structures and hold {} areas)",
        dispatcher.server().cpus(),
        untypeds.len(),
        dispatcher.stats().untyped_free >> 20,
        share.structures,
        share.areas
    );
    // Blocks until the starter takes it: it waits for this or a fault.
    syscall::send(cspace::cptr(server_slot::FAULT), MessageInfo::new(READY_LABEL, 0, 0, 0), [0; 4]);
    serve(&mut dispatcher)
}

fn serve(dispatcher: &mut Dispatcher<Backend>) -> ! {
    // Where the next capability that arrives goes; with no slot left,
    // capabilities are not received (a registration then fails cleanly),
    // and every later receive tries again, once slots were freed.
    let mut receive_slot = None;
    let mut pending_reply: Option<(MessageInfo, CpuMrs)> = None;
    loop {
        if receive_slot.is_none() {
            // The record of one more slot may need heap (without it no
            // capability arrives, and a registration fails).
            receive_slot =
                heap::retrying(dispatcher, &mut heap::Server, |d| d.take_receive_slot(), Option::is_none, grow);
            // The kernel reads the path at each receive and leaves it: it
            // changes only with the slot.
            match receive_slot {
                Some(slot) => {
                    let (index, depth) = cspace::address(slot);
                    ipc_buffer::set_receive_path(cspace::ROOT, index, depth);
                }
                None => ipc_buffer::set_receive_path(0, 0, 0),
            }
        }
        let msg = match pending_reply.take() {
            Some((info, mrs)) => syscall::reply_recv(ENDPOINT, info, mrs),
            None => syscall::recv(ENDPOINT),
        };
        // The common messages, a client's ping and its request in
        // registers, with no capability, are answered here, on a path
        // kept short; every other message in `answer`.
        let plain = msg.badge & badge::SPACE_FAULT == 0 && msg.info.extra_caps() == 0;
        let decoded = registers::request_in(msg.info.label(), msg.info.length() as usize, &msg.mrs);
        pending_reply = match decoded {
            Some(decoded) if plain => Some(in_registers(dispatcher, Badge(msg.badge), decoded)),
            None if plain && msg.info.label() == PING_LABEL => Some(EMPTY),
            _ => answer(dispatcher, &msg, &mut receive_slot),
        };
        if dispatcher.take_notice() {
            syscall::signal(cspace::cptr(server_slot::REPORT));
        }
    }
}

/// The reply to the request in registers `decoded` from `caller`, staged
/// as soon as it is made: a reply is far larger than its registers
/// (`Stats`), and copies of it would cost more than the request.
fn in_registers(
    dispatcher: &mut Dispatcher<Backend>,
    caller: Badge,
    decoded: Result<Request, DecodeError>,
) -> (MessageInfo, CpuMrs) {
    match decoded {
        Ok(request) => heap::retrying(
            dispatcher,
            &mut heap::Server,
            |d| staged(&d.handle_request(caller, request)),
            |(info, mrs)| {
                let reply = registers::reply_in(info.label(), info.length() as usize, mrs);
                reply == Some(Ok(Reply::Error(ErrorCode::OutOfMemory)))
            },
            grow,
        ),
        Err(_) => staged(&Err(ErrorCode::Malformed)),
    }
}

/// The answer to `msg`, a message of any kind (a fault, a ping or a
/// request in registers with a capability, a batch, an encoded request),
/// if it gets one; the capability that arrived with it, in
/// `receive_slot`, is the server's or deleted on return (a kept one
/// leaves `receive_slot` empty, for the next receive to take another).
#[inline(never)]
fn answer(
    dispatcher: &mut Dispatcher<Backend>,
    msg: &SyscallResult,
    receive_slot: &mut Option<CPtr>,
) -> Option<(MessageInfo, CpuMrs)> {
    // seL4 moves at most one capability into the receive slot: the first
    // it does not unwrap (one to this very endpoint arrives as its badge
    // alone). It is there exactly when more capabilities came than were
    // unwrapped, whatever the message.
    let arrived = receive_slot.filter(|_| msg.info.extra_caps() > msg.info.caps_unwrapped().count_ones().into());
    let (label, caller) = (msg.info.label(), Badge(msg.badge));
    let mut kept = false;
    let answer = if msg.badge & badge::SPACE_FAULT != 0 {
        let with_caps = msg.info.extra_caps() != 0;
        let words = received(msg);
        let repair = |d: &mut Dispatcher<Backend>| d.repair_fault(msg.badge, label, with_caps, &words);
        let short = |action: &FaultAction| *action == FaultAction::ShortOfMemory;
        let mut action = heap::retrying(dispatcher, &mut heap::Server, repair, short, grow);
        if short(&action) {
            action = dispatcher.fault(msg.badge, label, with_caps, &words);
        }
        match action {
            FaultAction::Resume => Some(EMPTY),
            // The thread waits for the administrator; a forger, for nothing.
            FaultAction::Reported | FaultAction::Dropped | FaultAction::ShortOfMemory => None,
        }
    } else if label == PING_LABEL {
        Some(EMPTY)
    } else if let Some(decoded) = registers::request_in(label, msg.info.length() as usize, &msg.mrs) {
        Some(in_registers(dispatcher, caller, decoded))
    } else if label == BATCH_LABEL {
        let answer = dispatcher.handle_batch(caller, &received(msg), |d, op| {
            heap::retrying(d, &mut heap::Server, |d| d.batch_op(caller, op), is_out_of_memory, grow)
        });
        Some(match answer {
            Ok(answer) => ipc::stage(BATCH_LABEL, answer.words().as_slice(), 0),
            Err(code) => encoded(&Reply::Error(code)),
        })
    } else {
        let words: Words = received(msg);
        let (answer, cap_use) = heap::retrying(
            dispatcher,
            &mut heap::Server,
            |d| d.handle(caller, &words, arrived),
            |(reply, _)| is_out_of_memory(reply),
            grow,
        );
        kept = cap_use == CapUse::Kept;
        Some(encoded(&answer))
    };
    // Empty the slot again: the next message's capability could not
    // arrive in an occupied one (a kept one is the server's now; the
    // next receive takes a new slot).
    match (arrived, kept) {
        (Some(_), true) => *receive_slot = None,
        (Some(slot), false) => dispatcher.empty_receive_slot(slot),
        (None, _) => {}
    }
    answer
}

/// `answer` to a request in registers (its reply or the code it was
/// refused with): in registers too if it fits them.
#[inline(always)]
fn staged(answer: &Result<Reply, ErrorCode>) -> (MessageInfo, CpuMrs) {
    let in_registers = match answer {
        Ok(reply) => registers::reply(reply),
        Err(code) => registers::reply(&Reply::Error(*code)),
    };
    match (in_registers, answer) {
        // At most four words, all in registers: no staging in the IPC buffer.
        (Some(message), _) => (MessageInfo::new(message.label, 0, 0, message.length as u64), message.words),
        (None, Ok(reply)) => encoded(reply),
        // Every refusal fits the registers (tested).
        (None, Err(code)) => encoded(&Reply::Error(*code)),
    }
}

/// `reply` as an encoded protocol message.
fn encoded(reply: &Reply) -> (MessageInfo, CpuMrs) {
    let words = Words::encode(reply).unwrap_or_else(|| {
        // Every reply fits (tested); answer something rather than die.
        Words::encode(&Reply::Error(ErrorCode::Kernel)).unwrap_or_else(|| Words::from_slice(&[]))
    });
    ipc::stage(PROTOCOL_LABEL, words.as_slice(), 0)
}

/// The words of the message `msg` (at most `N`).
fn received<const N: usize>(msg: &SyscallResult) -> Message<N> {
    Message::from_fn(msg.info.length() as usize, |i| ipc::word(msg, i))
}

/// Whether a request failed for want of memory (of the heap, perhaps).
fn is_out_of_memory(reply: &Reply) -> bool {
    matches!(reply, Reply::Error(ErrorCode::OutOfMemory))
}
