//! Printing the programs' console lines, waiting for their verdicts and
//! deaths, reclaiming each program as it ends (its thread suspended; a
//! client's space unregistered and its fault capability revoked), and the
//! summary.

use crate::launch::{Launched, Running};
use client_lib::AdminClient;
use sel4_layer::{print, println, syscall};
use system_root::outcome::{Failure, Outcome};
use system_root::sender::{fault_badge, sender, Sender};

/// Waits until every program has ended, prints the summary and returns
/// whether every program succeeded.
pub fn until_all_ended(running: &mut Running) -> bool {
    while running.programs.iter().any(|p| p.outcome == Outcome::Running) {
        let msg = syscall::recv(running.endpoint);
        let (label, length) = (msg.info.label(), msg.info.length());
        match sender(msg.badge) {
            Sender::ReportNotice => take_reports(running),
            Sender::ServerFault => {
                println!("launcher: the memory server faulted (type {label}, message {:x?})", msg.mrs);
                break;
            }
            Sender::Program(_) if label == print::CONSOLE_LABEL => print_piece(&msg),
            Sender::Program(i) => end(running, i, Outcome::of_verdict(label, length, msg.mrs[0])),
            Sender::Fault(i) => end(running, i, Outcome::Failed(Failure::KernelFault { kind: label, mrs: msg.mrs })),
            Sender::Unknown(badge) => println!("launcher: unexpected message (badge {badge:#x}, label {label:#x})"),
        }
    }
    let ok = running.programs.iter().filter(|p| p.outcome == Outcome::Succeeded).count();
    for p in running.programs.iter().filter(|p| p.outcome == Outcome::Running) {
        println!("launcher: {}: {}", p.name, p.outcome);
    }
    println!("launcher: {ok} of {} programs succeeded", running.programs.len());
    ok == running.programs.len()
}

/// Prints the piece of a line a program's console message `msg` carries,
/// then lets the program go on.
fn print_piece(msg: &syscall::SyscallResult) {
    let mut bytes = [0; print::LINE_BYTES];
    print::write_to_kernel_console(print::received_piece(msg, &mut bytes));
    print::answer_console_message();
}

/// Takes the memory server's waiting fault reports; each ends the program
/// whose space it names.
fn take_reports(running: &mut Running) {
    let Some(admin) = running.server.as_ref().map(|s| s.admin) else { return };
    loop {
        match admin.take_fault() {
            Ok(Some(report)) => {
                let space = Some(report.space);
                match running.programs.iter().position(|p| p.registration.map(|r| r.space) == space) {
                    Some(i) => end(running, i, Outcome::Failed(Failure::Fault(report))),
                    None => println!("launcher: a fault report for space {} of no program", report.space),
                }
            }
            Ok(None) => return,
            Err(e) => {
                println!("launcher: taking fault reports: {e:?}");
                return;
            }
        }
    }
}

/// Ends program `i` with `outcome` (if it is still running) and reclaims
/// it.
fn end(running: &mut Running, i: usize, outcome: Outcome) {
    let admin = running.server.as_ref().map(|s| s.admin);
    let endpoint = running.endpoint;
    let Some(p) = running.programs.get_mut(i).filter(|p| p.outcome == Outcome::Running) else { return };
    p.outcome = outcome;
    println!("launcher: {}: {}", p.name, p.outcome);
    reclaim(p, admin, endpoint, i);
}

/// Stops `p` (program `i`) and, for a client, ends its registration: the
/// server unregisters its space, and its fault capability is revoked and
/// replaced by the launcher's `endpoint`.
fn reclaim(p: &mut Launched, admin: Option<AdminClient>, endpoint: sel4_layer::abi::CPtr, i: usize) {
    if let Err(e) = p.process.main.tcb.suspend() {
        println!("launcher: {}: suspending its thread: {e:?}", p.name);
    }
    if let (Some(registration), Some(admin)) = (p.registration.take(), admin) {
        if let Err(e) = admin.unregister(registration.space) {
            println!("launcher: {}: unregistering space {}: {e:?}", p.name, registration.space);
        }
        p.route.route(&p.process, endpoint, fault_badge(i));
    }
}
