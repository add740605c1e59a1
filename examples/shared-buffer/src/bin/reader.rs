//! The reader: for each of the writer's buffers, waits for it on `pipe`,
//! reads it at the same address in its own address space (the memory
//! server maps it there on the first touch) and answers with the number
//! of bytes that differed; then reports its verdict.
#![no_std]
#![no_main]

use client_lib::boot_contract::{self, slot};
use client_lib::MemClient;
use sel4_layer::runtime::StartRegs;
use sel4_layer::{println, syscall, MessageInfo};
use shared_buffer::{code, pattern, BUFFERS, CHECKED, SHARE};

client_lib::program!(main);

fn main(_: StartRegs) -> ! {
    boot_contract::exit(run())
}

fn run() -> Result<(), u64> {
    // Connecting checks the protocol version and that this space is the
    // server's client.
    MemClient::connect(slot::MEMSERVER).map_err(|_| code::CONNECT)?;
    for _ in 0..BUFFERS {
        let msg = syscall::recv(slot::endpoint(0));
        if msg.info.label() != SHARE || msg.info.length() != 3 {
            return Err(code::MESSAGE);
        }
        let [addr, len, seed, _] = msg.mrs;
        let buffer = addr as *const u8;
        let differing = (0..len)
            // SAFETY: the writer had the server map `len` bytes at `addr`:
            // the region is the same in every registered space, and it
            // frees them only after this answer.
            .filter(|&i| unsafe { buffer.add(i as usize).read_volatile() } != pattern(seed, i))
            .count() as u64;
        println!("reader: {len} bytes at {addr:#x}, {differing} differ from the writer's");
        syscall::reply(MessageInfo::new(CHECKED, 0, 0, 1), [differing, 0, 0, 0]);
        if differing != 0 {
            return Err(code::MISMATCH);
        }
    }
    Ok(())
}
