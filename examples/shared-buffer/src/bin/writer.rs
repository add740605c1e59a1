//! The writer: vmallocs a buffer, fills it, hands its address to the
//! reader over `pipe`, waits for the reader's check, frees the buffer and
//! reports its verdict.
#![no_std]
#![no_main]

use client_lib::boot_contract::{self, slot, Start};
use client_lib::MemClient;
use sel4_layer::runtime::StartRegs;
use sel4_layer::{println, syscall, MessageInfo};
use shared_buffer::{code, pattern, BUFFER_BYTES, CHECKED, SHARE};

sel4_layer::sel4_program!(main, ipc_buffer = |regs| regs.rdi);

/// The seed of the pattern the writer fills the buffer with.
const SEED: u64 = 0x5eed;

fn main(regs: StartRegs) -> ! {
    boot_contract::exit(run(Start::from_regs(regs)))
}

fn run(start: Start) -> Result<(), u64> {
    check_heap(start)?;
    let mem = MemClient::connect(slot::MEMSERVER).map_err(|_| code::CONNECT)?;
    let addr = mem.vmalloc(BUFFER_BYTES, false).map_err(|_| code::VMALLOC)?;
    let buffer = addr as *mut u8;
    for i in 0..BUFFER_BYTES {
        // SAFETY: vmalloc mapped BUFFER_BYTES at `addr` in this space (and
        // every registered one); only this program writes it.
        unsafe { buffer.add(i as usize).write_volatile(pattern(SEED, i)) };
    }
    println!("writer: {BUFFER_BYTES} bytes at {addr:#x}, handing them to the reader");
    let answer = syscall::call(slot::endpoint(0), MessageInfo::new(SHARE, 0, 0, 3), [addr, BUFFER_BYTES, SEED, 0]);
    if answer.info.label() != CHECKED || answer.info.length() != 1 {
        return Err(code::ANSWER);
    }
    if answer.mrs[0] != 0 {
        return Err(code::MISMATCH);
    }
    mem.vfree(addr).map_err(|_| code::VFREE)?;
    println!("writer: the reader saw the same bytes; freed");
    Ok(())
}

/// The launcher's heap is there and writable, first and last word.
fn check_heap(start: Start) -> Result<(), u64> {
    let (heap, bytes) = start.heap.ok_or(code::HEAP)?;
    for addr in [heap, heap + bytes - 8] {
        let word = addr as *mut u64;
        // SAFETY: the boot contract maps `bytes` of zeroed heap at `heap`.
        let zero = unsafe { word.read_volatile() } == 0;
        // SAFETY: as above.
        unsafe { word.write_volatile(addr) };
        // SAFETY: as above.
        if !zero || unsafe { word.read_volatile() } != addr {
            return Err(code::HEAP);
        }
    }
    Ok(())
}
