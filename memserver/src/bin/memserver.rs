//! The memory server as an seL4 program: start-up, then the receive loop
//! (its heap: `memserver::heap`).
#![no_std]
#![no_main]

use memserver_protocol::bootstrap::ServerStart;
use sel4_layer::runtime::StartRegs;

sel4_layer::sel4_program!(main, ipc_buffer = |regs| regs.rdi, stack = 0x10_0000);

fn main(regs: StartRegs) -> ! {
    memserver::server_loop::run(ServerStart::from_args([regs.rsi, regs.rdx, regs.rcx]))
}
