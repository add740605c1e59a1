//! The memory server as an seL4 program: start-up, then the receive loop.
#![no_std]
#![no_main]

use client_lib::bootstrap::ServerStart;
use client_lib::sel4::runtime::StartRegs;

client_lib::sel4_program!(main, ipc_buffer = |regs| regs.rdi, stack = 0x10_0000);

fn main(regs: StartRegs) -> ! {
    memserver::sel4::server_loop::run(ServerStart::from_args([regs.rsi, regs.rdx, regs.rcx]))
}
