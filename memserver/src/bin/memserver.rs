//! The memory server as an seL4 program: start-up, then the receive loop.
#![no_std]
#![no_main]

use memserver_protocol::bootstrap::ServerStart;
use sel4_layer::runtime::StartRegs;
use talc::source::Claim;
use talc::TalcLock;

/// Bytes of the server's heap, a fixed array in its .bss: the canonical
/// table and the allocators' maps at today's limits (`memserver_core::limits`)
/// take under 3 MiB, their growth by doubling twice that at the moment of
/// a move; the rest is margin.
const HEAP_BYTES: usize = 16 << 20;

/// The server's allocator. An allocation it cannot serve is refused (the
/// core allocates only with `try_reserve`, which turns that into an
/// `OutOfMemory` reply).
#[global_allocator]
static HEAP: TalcLock<spin::Mutex<()>, Claim> = TalcLock::new({
    static mut MEMORY: [u8; HEAP_BYTES] = [0; HEAP_BYTES];
    // SAFETY: `MEMORY` is used by nothing but this allocator, which claims
    // it once, and lives as long as the program.
    unsafe { Claim::array(&raw mut MEMORY) }
});

sel4_layer::sel4_program!(main, ipc_buffer = |regs| regs.rdi, stack = 0x10_0000);

fn main(regs: StartRegs) -> ! {
    memserver::server_loop::run(ServerStart::from_args([regs.rsi, regs.rdx, regs.rcx]))
}
