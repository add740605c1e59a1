//! The root task: the first user program seL4 starts. It summarises
//! bootinfo, loads the embedded hello child into its own VSpace, answers
//! its call, and ends QEMU with the outcome.
#![no_std]
#![no_main]

mod allocator;
mod process;
mod vspace;

use allocator::Allocator;
use client_lib::println;
use client_lib::sel4::abi::{fault, init_cap, object_type};
use client_lib::sel4::bootinfo::BootInfo;
use client_lib::sel4::runtime::{self, StartRegs};
use client_lib::sel4::{syscall, CapRights, MessageInfo};
use process::{Process, ProcessSpec};
use root_task::hello_protocol;
use vspace::VSpace;

/// The hello child's ELF image, built by `images` before this program.
static HELLO_CHILD: &[u8] = include_bytes!(env!("ROOT_TASK_HELLO_CHILD_ELF"));

/// Badge of the hello child's calls.
const CHILD_BADGE: u64 = 0x100;
/// Badge of the hello child's faults.
const CHILD_FAULT_BADGE: u64 = 0x101;
/// The hello child's thread priority (below the root task's 255).
const CHILD_PRIORITY: u8 = 200;
/// The challenge the child sends back.
const CHALLENGE: u64 = 0xc0ffee;

fn bootinfo(regs: StartRegs) -> &'static BootInfo {
    // SAFETY: seL4 starts the root task with rdi pointing at the bootinfo
    // frame, mapped read-only for the task's whole life.
    unsafe { &*(regs.rdi as *const BootInfo) }
}

client_lib::sel4_program!(main, ipc_buffer = |regs| bootinfo(regs).ipc_buffer);

fn main(regs: StartRegs) -> ! {
    runtime::set_exit_capability(init_cap::IO_PORT);
    let bootinfo = bootinfo(regs);
    let (empty, untyped) = (bootinfo.empty, bootinfo.untyped);
    println!(
        "root-task: {} untypeds ({} MiB RAM), empty slots {:#x}..{:#x}, {} CPUs",
        untyped.end - untyped.start,
        bootinfo.ram_bytes() >> 20,
        { empty.start },
        { empty.end },
        { bootinfo.num_nodes }
    );
    let mut alloc = Allocator::new(bootinfo);
    let mut root_vspace = VSpace::root_task();
    let endpoint = alloc.retype(object_type::ENDPOINT, 0);
    let spec = ProcessSpec {
        name: "hello-child",
        image: HELLO_CHILD,
        priority: CHILD_PRIORITY,
        cnode_bits: 12,
        fault_slot: hello_protocol::slot::FAULT,
    };
    let child = Process::load(&mut alloc, &mut root_vspace, &spec);
    child.give(hello_protocol::slot::ENDPOINT, endpoint, CapRights::ALL, CHILD_BADGE);
    child.give(hello_protocol::slot::FAULT, endpoint, CapRights::ALL, CHILD_FAULT_BADGE);
    child.start(&child.main, [CHALLENGE, 0, 0]);
    serve_hello_child(endpoint);
    println!("root-task: hello-child exchange ok");
    runtime::exit(true)
}

/// Answers the child's challenge and waits for its verdict.
fn serve_hello_child(endpoint: u64) {
    loop {
        let msg = syscall::recv(endpoint);
        match (msg.badge, msg.info.label()) {
            (CHILD_FAULT_BADGE, kind) => {
                let what = if kind == fault::VM_FAULT { "VM fault" } else { "fault" };
                panic!("hello-child: {what} (type {kind}), message registers {:x?}", msg.mrs)
            }
            (CHILD_BADGE, hello_protocol::CHALLENGE) => {
                let answer = hello_protocol::answer(msg.mrs[0]);
                syscall::reply(MessageInfo::new(0, 0, 0, 1), [answer, 0, 0, 0]);
            }
            (CHILD_BADGE, hello_protocol::VERDICT) if msg.mrs[0] == 1 => {
                syscall::reply(MessageInfo::new(0, 0, 0, 0), [0; 4]);
                return;
            }
            (CHILD_BADGE, hello_protocol::VERDICT) => panic!("hello-child rejected the root task's answer"),
            (badge, label) => panic!("unexpected message: badge {badge:#x}, label {label}"),
        }
    }
}
