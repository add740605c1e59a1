//! The server program's loop: receive, decode, dispatch, reply. Faults of
//! registered spaces' threads arrive on the same endpoint (badged with
//! the space); they are repaired from the canonical table or reported to
//! the administrator. Nothing a message contains can stop the loop.
//!
//! Contract with the administrator: real faults are reported with a
//! blocking send, so the administrator must be receiving on its endpoint
//! whenever client threads run.

use super::backend::Sel4Backend;
use super::cspace::own_cnode;
use crate::dispatch::{CapUse, Dispatcher};
use crate::ids::Badge;
use crate::populate::Access;
use crate::server::Config;
use client_lib::bootstrap::{
    badge, server_slot, FaultKind, FaultReport, ServerStart, FAULT_REPORT_LABEL, MAX_CPUS, SERVER_CNODE_BITS,
};
use client_lib::protocol::{ErrorCode, Reply};
use client_lib::sel4::abi::{fault, CPtr};
use client_lib::sel4::syscall::{self, CpuMrs, SyscallResult};
use client_lib::sel4::{ipc_buffer, MessageInfo};
use client_lib::transport;
use client_lib::wire::Words;

/// The server, built in place (it is far too large for the stack).
static DISPATCHER: spin::Mutex<Dispatcher<Sel4Backend>> =
    spin::Mutex::new(Dispatcher::new(Sel4Backend::new(), Config { admin: Badge(badge::ADMIN), cpus: MAX_CPUS }));

/// The bit of x86's page-fault error code that marks a write.
const FSR_WRITE: u64 = 1 << 1;

/// Most untyped capabilities the server takes at start.
const MAX_START_UNTYPEDS: u32 = 64;

/// Sets up the backend and the server, then serves forever. A failure to
/// start is a panic: the administrator hears of it as this thread's fault.
#[allow(clippy::panic, reason = "start-up failures end the server before it serves any request")]
pub fn run(start: ServerStart) -> ! {
    let mut dispatcher = DISPATCHER.lock();
    let mut untypeds: heapless::Vec<(CPtr, u8), { MAX_START_UNTYPEDS as usize }> = heapless::Vec::new();
    for i in 0..start.untypeds.min(MAX_START_UNTYPEDS) {
        // Capacity is MAX_START_UNTYPEDS.
        let _ = untypeds.push((server_slot::UNTYPED_START + i as u64, start.untyped_bits as u8));
    }
    if let Err(e) = dispatcher.backend_mut().start(start.first_free_slot, &untypeds) {
        panic!("memserver: backend start failed: {e:?}");
    }
    if let Err(e) = dispatcher.start() {
        panic!("memserver: start failed: {e:?}");
    }
    client_lib::println!(
        "memserver: serving ({} untyped caps, {} MiB)",
        untypeds.len(),
        dispatcher.stats().untyped_free >> 20
    );
    serve(&mut dispatcher)
}

fn serve(dispatcher: &mut Dispatcher<Sel4Backend>) -> ! {
    // Where the next capability that arrives goes; with no slot left,
    // capabilities are not received (a registration then fails cleanly).
    let mut receive_slot = dispatcher.backend_mut().take_slot();
    let mut pending_reply: Option<(MessageInfo, CpuMrs)> = None;
    loop {
        match receive_slot {
            Some(slot) => ipc_buffer::set_receive_path(server_slot::CNODE, slot, SERVER_CNODE_BITS),
            None => ipc_buffer::set_receive_path(0, 0, 0),
        }
        let msg = match pending_reply.take() {
            Some((info, mrs)) => syscall::reply_recv(server_slot::ENDPOINT, info, mrs),
            None => syscall::recv(server_slot::ENDPOINT),
        };
        if msg.badge & badge::SPACE_FAULT != 0 {
            pending_reply = fault(dispatcher, &msg);
            continue;
        }
        if msg.info.label() == transport::PING_LABEL {
            pending_reply = Some((MessageInfo::new(0, 0, 0, 0), [0; 4]));
            continue;
        }
        let cap = receive_slot.filter(|_| msg.info.extra_caps() == 1 && msg.info.caps_unwrapped() == 0);
        let (reply, cap_use) = dispatcher.handle(Badge(msg.badge), &transport::received(&msg), cap);
        match (cap, cap_use) {
            (Some(_), CapUse::Kept) => receive_slot = dispatcher.backend_mut().take_slot(),
            // Deleting what arrived in the server's own empty slot cannot
            // fail in a way that matters: the slot is empty afterwards.
            (Some(slot), CapUse::Unused) => drop(own_cnode().delete(slot)),
            (None, _) => {}
        }
        let words = Words::encode(&reply).unwrap_or_else(|| {
            // Every reply fits (tested); answer something rather than die.
            Words::encode(&Reply::Error(ErrorCode::Kernel)).unwrap_or_else(|| Words::from_slice(&[]))
        });
        pending_reply = Some(transport::stage(&words, 0));
    }
}

/// A fault of a registered space's thread: the reply that restarts the
/// thread after a repair, or `None` after reporting a real fault (the
/// thread stays blocked until the administrator restarts it).
fn fault(dispatcher: &mut Dispatcher<Sel4Backend>, msg: &SyscallResult) -> Option<(MessageInfo, CpuMrs)> {
    let space = (msg.badge & !badge::SPACE_FAULT) as u8;
    let [ip, addr, _, fsr] = msg.mrs;
    let report = if msg.info.label() == fault::VM_FAULT {
        let access = if fsr & FSR_WRITE != 0 { Access::Write } else { Access::Read };
        match dispatcher.handle_fault(space, addr, ip, access) {
            // Repaired: an empty reply restarts the thread at the access.
            None => return Some((MessageInfo::new(0, 0, 0, 0), [0; 4])),
            Some(report) => report,
        }
    } else {
        // Any other fault: the thread is broken; its first message
        // register is its instruction pointer for every x86 fault type.
        FaultReport { space, addr: ip, ip, kind: FaultKind::Exception }
    };
    syscall::send(server_slot::REPORT, MessageInfo::new(FAULT_REPORT_LABEL, 0, 0, 4), report.to_words());
    None
}
