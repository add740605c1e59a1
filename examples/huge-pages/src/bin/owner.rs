//! The owner: vmallocs 1 GiB with large pages, checks that it is one 1 GiB
//! page, writes the canaries, shares the area with both viewers, frees it
//! once both saw every canary, and reports its verdict.
#![no_std]
#![no_main]

use client_lib::boot_contract::{self, slot};
use client_lib::{MemClient, Page};
use huge_pages::{canary, canary_offsets, code, AREA, CHECKED, SHARE, VIEWERS};
use sel4_layer::runtime::StartRegs;
use sel4_layer::{println, syscall, MessageInfo};

client_lib::program!(main);

fn main(_: StartRegs) -> ! {
    boot_contract::exit(run())
}

fn run() -> Result<(), u64> {
    let mem = MemClient::connect(slot::MEMSERVER).map_err(|_| code::CONNECT)?;
    let addr = mem.vmalloc(AREA, true).map_err(|e| {
        println!("owner: vmalloc of {AREA} bytes with large pages: {e:?}");
        code::VMALLOC
    })?;
    for offset in [0, AREA - 8] {
        match mem.translate(addr + offset) {
            Ok(Some(t)) if t.page == Page::Huge && t.writable => {}
            _ => return Err(code::NOT_HUGE),
        }
    }
    for offset in canary_offsets() {
        // SAFETY: the server mapped `AREA` bytes at `addr` in this space
        // (and every registered one); only this program writes them.
        unsafe { ((addr + offset) as *mut u64).write_volatile(canary(addr, offset)) };
    }
    println!("owner: {AREA} bytes at {addr:#x} on one 1 GiB page, canaries written");
    for _ in 0..VIEWERS {
        let answer = syscall::call(slot::endpoint(0), MessageInfo::new(SHARE, 0, 0, 1), [addr, 0, 0, 0]);
        if answer.info.label() != CHECKED || answer.info.length() != 1 {
            return Err(code::ANSWER);
        }
        if answer.mrs[0] != 0 {
            return Err(code::MISMATCH);
        }
    }
    mem.vfree(addr).map_err(|_| code::VFREE)?;
    println!("owner: both viewers saw every canary; freed");
    Ok(())
}
