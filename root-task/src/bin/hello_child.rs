//! The hello child: a program the root task loads into its own VSpace. It
//! calls the root task with a challenge, checks the computed answer, and
//! reports the verdict.
#![no_std]
#![no_main]

use sel4_layer::println;
use sel4_layer::runtime::{self, StartRegs};
use sel4_layer::{syscall, MessageInfo};

use root_task::hello_protocol::{self, slot::ENDPOINT};

sel4_layer::sel4_program!(main, ipc_buffer = |regs| regs.rdi);

fn main(regs: StartRegs) -> ! {
    let challenge = regs.rsi;
    let reply = syscall::call(ENDPOINT, MessageInfo::new(hello_protocol::CHALLENGE, 0, 0, 1), [challenge, 0, 0, 0]);
    let expected = hello_protocol::answer(challenge);
    let ok = reply.mrs[0] == expected;
    println!("hello-child: challenge {challenge:#x}, answer {:#x}, expected {expected:#x}", reply.mrs[0]);
    syscall::call(ENDPOINT, MessageInfo::new(hello_protocol::VERDICT, 0, 0, 1), [ok as u64, 0, 0, 0]);
    runtime::exit(ok)
}
