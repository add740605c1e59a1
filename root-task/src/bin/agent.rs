//! A client agent: a program in its own address space, registered with the
//! memory server, that carries out the root task's scenario commands.
//! Its first thread serves commands (and runs stress loops, see
//! `root_task::stress_plan`); further threads (percpu workers) each increment
//! one CPU's unit of a percpu counter.
#![no_std]
#![no_main]

use client_lib::transport;
use client_lib::{Batch, BatchReply, ClientError, ErrorCode, MemClient, Reply, Request};
use memserver_protocol::fault;
use memserver_protocol::words::{Words, MAX_WORDS};
use root_task::agent_protocol::{role, slot, BatchOps, Command, Outcome, RawMessage, FORGED_IP};
use root_task::stress_plan::{self, Stress};
use sel4_layer::runtime::StartRegs;
use sel4_layer::{ipc_buffer, syscall, MessageInfo};

sel4_layer::sel4_program!(main, ipc_buffer = |regs| regs.rdi);

fn main(regs: StartRegs) -> ! {
    match regs.rsi {
        role::PERCPU_WORKER => percpu_worker(regs.rdx, regs.rcx),
        role::FORGER => forger(regs.rdx, regs.rcx),
        _ => serve(),
    }
}

/// Sends `outcome` to the root task.
fn report(outcome: &Outcome) {
    let words = Words::encode(outcome).unwrap_or_else(|| panic!("outcome does not fit a message"));
    let (info, mrs) = transport::stage(&words, 0);
    syscall::send(slot::OUTCOME, info, mrs);
}

fn serve() -> ! {
    let client = MemClient::connect(slot::MEMSERVER);
    report(&Outcome::Ready(client.map(drop)));
    let mut held = Stress::new();
    let mut batched = BatchReply::default();
    loop {
        let msg = syscall::recv(slot::COMMAND);
        let outcome = match transport::received::<MAX_WORDS>(&msg).decode::<Command>(u32::MAX) {
            Ok(command) => execute(client, (&mut held, &mut batched), command),
            Err(e) => panic!("undecodable command from the root task: {e:?}"),
        };
        report(&outcome);
    }
}

/// Sends the batch of `ops` with `insert` and keeps its replies in `last`
/// (where the areas a [`BatchOps::FreeMade`] frees are named).
fn batch(
    client: Result<MemClient, ClientError>,
    last: &mut BatchReply,
    ops: BatchOps,
    insert: Option<(u8, Request)>,
) -> Outcome {
    let mut made = Batch::new();
    let mut push = |op: Request| {
        if let Some((_, extra)) = insert.filter(|&(at, _)| usize::from(at) == made.ops().len()) {
            made.push(extra)?;
        }
        made.push(op)
    };
    match ops {
        BatchOps::Repeat { request, count } => {
            if let Err(e) = (0..count).try_for_each(|_| push(request)) {
                panic!("the root task's batch does not fit: {e:?}");
            }
        }
        BatchOps::FreeMade => {
            let made = last.replies.iter().filter_map(|reply| match reply {
                Reply::Address(addr) => Some(Request::Vfree { addr: *addr }),
                _ => None,
            });
            // As many as fit.
            for vfree in made {
                if push(vfree).is_err() {
                    break;
                }
            }
        }
    }
    Outcome::Batched(client.and_then(|mem| mem.batch(&made)).map(|answer| {
        let errors = answer.replies.iter().filter(|r| matches!(r, Reply::Error(_))).count();
        *last = answer;
        (last.replies.len() as u8, errors as u8)
    }))
}

/// Carries out `command`; `held` is what stress runs and the last batch
/// left.
fn execute(
    client: Result<MemClient, ClientError>,
    (held, batched): (&mut Stress, &mut BatchReply),
    command: Command,
) -> Outcome {
    match command {
        Command::Request(request) => Outcome::Reply(client.and_then(|c| c.request(&request))),
        Command::Raw { words, len } => {
            let words = Words::from_slice(&words[..(len as usize).min(4)]);
            Outcome::Reply(transport::call_words(slot::MEMSERVER, &words, None))
        }
        Command::Message(message) => send_raw(&message),
        Command::Receive { from } => {
            let msg = syscall::recv(from);
            Outcome::Received { badge: msg.badge, label: msg.info.label() }
        }
        Command::Fill { addr, len, seed } => {
            // SAFETY: the root task names memory the scenario mapped in this
            // space; a bad address faults to the memory server, which
            // reports it, and the root task restarts this thread.
            unsafe { stress_plan::fill(addr, len, seed) };
            Outcome::Done
        }
        // SAFETY: as for Fill.
        Command::Check { addr, len, seed } => Outcome::Checked(unsafe { stress_plan::first_mismatch(addr, len, seed) }),
        Command::Write { addr, value } => {
            // SAFETY: as for Fill.
            unsafe { (addr as *mut u64).write_volatile(value) };
            Outcome::Done
        }
        // SAFETY: as for Fill.
        Command::Read { addr } => Outcome::Value(unsafe { (addr as *const u64).read_volatile() }),
        Command::Stress(plan) => match client {
            Ok(mem) => Outcome::Stressed(held.run(&mem, &plan, || report(&Outcome::Working))),
            Err(e) => Outcome::Reply(Err(e)),
        },
        Command::Release => match client {
            Ok(mem) => Outcome::Stressed(held.release(&mem)),
            Err(e) => Outcome::Reply(Err(e)),
        },
        Command::Batch { ops, insert } => batch(client, batched, ops, insert),
        Command::Vmap { first, pages, protection } => {
            Outcome::Reply(client.and_then(|c| c.vmap_given(first, pages, protection)).map(Reply::Address))
        }
        Command::VmemmapFrom { first, start_pfn, nr_pages } => Outcome::Reply(
            client.and_then(|c| c.vmemmap_populate_given(first, start_pfn, nr_pages)).map(|()| Reply::Done),
        ),
        Command::BatchReply { index } => {
            let reply = batched.replies.get(usize::from(index)).copied();
            Outcome::Reply(reply.ok_or(ClientError::Server(ErrorCode::NotFound)))
        }
    }
}

/// Sends `m` as it is, `m.times` times.
fn send_raw(m: &RawMessage) -> Outcome {
    let caps = m.caps.iter().take_while(|&&cap| cap != 0).count();
    let len = usize::from(m.len).min(m.words.len());
    let mut mrs = [0; 4];
    mrs[..len].copy_from_slice(&m.words[..len]);
    let info = MessageInfo::new(m.label, 0, caps as u64, len as u64);
    let mut outcome = Outcome::Done;
    for _ in 0..m.times {
        for (i, &cap) in m.caps.iter().take(caps).enumerate() {
            ipc_buffer::set_cap(i, cap);
        }
        if m.call {
            let answer = syscall::call(m.to, info, mrs);
            outcome = Outcome::Answered { label: answer.info.label(), length: answer.info.length() };
        } else {
            syscall::send(m.to, info, mrs);
        }
    }
    outcome
}

/// Increments the counter at `addr` `times` times, then reports.
fn percpu_worker(addr: u64, times: u64) -> ! {
    let counter = addr as *mut u64;
    for _ in 0..times {
        // SAFETY: `addr` is this CPU's unit of a percpu allocation the root
        // task made; only this thread writes it.
        unsafe { counter.write_volatile(counter.read_volatile() + 1) };
    }
    finished()
}

/// Forges `times` VM faults at `addr` on this space's fault endpoint,
/// then reports.
fn forger(addr: u64, times: u64) -> ! {
    let info = MessageInfo::new(fault::VM_FAULT, 0, 0, fault::VM_FAULT_LENGTH);
    for _ in 0..times {
        syscall::send(slot::FAULT, info, [FORGED_IP, addr, 0, 0]);
    }
    finished()
}

/// Reports that a worker thread is done and idles until the root task
/// suspends it.
fn finished() -> ! {
    report(&Outcome::Done);
    loop {
        syscall::yield_now();
    }
}
