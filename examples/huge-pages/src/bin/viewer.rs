//! A viewer: waits for the owner's area on `pipe`, reads every canary at
//! the same address in its own address space and answers with the number
//! that differed; then reports its verdict.
#![no_std]
#![no_main]

use client_lib::boot_contract::{self, slot};
use client_lib::MemClient;
use huge_pages::{canary, canary_offsets, code, CHECKED, SHARE};
use sel4_layer::runtime::StartRegs;
use sel4_layer::{println, syscall, MessageInfo};

client_lib::program!(main);

fn main(_: StartRegs) -> ! {
    boot_contract::exit(run())
}

fn run() -> Result<(), u64> {
    // Connecting checks the protocol version and that this space is the
    // server's client.
    MemClient::connect(slot::MEMSERVER).map_err(|_| code::CONNECT)?;
    let msg = syscall::recv(slot::endpoint(0));
    if msg.info.label() != SHARE || msg.info.length() != 1 {
        return Err(code::MESSAGE);
    }
    let addr = msg.mrs[0];
    let differing = canary_offsets()
        // SAFETY: the owner had the server map its area at `addr`: the
        // region is the same in every registered space, and the owner
        // frees it only after this answer.
        .filter(|&offset| unsafe { ((addr + offset) as *const u64).read_volatile() } != canary(addr, offset))
        .count() as u64;
    println!("viewer: {} canaries at {addr:#x}, {differing} differ from the owner's", canary_offsets().count());
    syscall::reply(MessageInfo::new(CHECKED, 0, 0, 1), [differing, 0, 0, 0]);
    if differing != 0 {
        return Err(code::MISMATCH);
    }
    Ok(())
}
