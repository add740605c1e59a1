//! The writer: vmallocs a buffer, fills it, hands its address to the
//! reader over `pipe`, waits for the reader's check and frees the buffer;
//! then the same with its own frames vmapped; and reports its verdict.
#![no_std]
#![no_main]

use client_lib::boot_contract::{self, slot, Start};
use client_lib::{MemClient, Protection};
use sel4_layer::runtime::StartRegs;
use sel4_layer::{println, syscall, MessageInfo};
use shared_buffer::{code, pattern, BUFFER_BYTES, CHECKED, FRAMES, SHARE};

client_lib::program!(main);

/// The seed of the pattern the writer fills the buffer with.
const SEED: u64 = 0x5eed;

fn main(regs: StartRegs) -> ! {
    boot_contract::exit(run(Start::from_regs(regs)))
}

fn run(start: Start) -> Result<(), u64> {
    check_heap(start)?;
    let mem = MemClient::connect(slot::MEMSERVER).map_err(|_| code::CONNECT)?;
    let vmalloced = mem.vmalloc(BUFFER_BYTES, false).map_err(|_| code::VMALLOC)?;
    share(vmalloced, BUFFER_BYTES, SEED)?;
    mem.vfree(vmalloced).map_err(|_| code::VFREE)?;
    // The writer's own frames, mapped in every space: they stay its own.
    let mapped = mem.vmap_given(0, FRAMES, Protection::ReadWrite).map_err(|_| code::VMAP)?;
    share(mapped, u64::from(FRAMES) * 4096, SEED + 1)?;
    mem.vfree(mapped).map_err(|_| code::VFREE)?;
    println!("writer: the reader saw the same bytes in both; freed");
    Ok(())
}

/// Fills the `len` bytes at `addr` with the pattern of `seed` and has the
/// reader check them.
fn share(addr: u64, len: u64, seed: u64) -> Result<(), u64> {
    let buffer = addr as *mut u8;
    for i in 0..len {
        // SAFETY: the server mapped `len` bytes at `addr` in this space (and
        // every registered one); only this program writes them.
        unsafe { buffer.add(i as usize).write_volatile(pattern(seed, i)) };
    }
    println!("writer: {len} bytes at {addr:#x}, handing them to the reader");
    let answer = syscall::call(slot::endpoint(0), MessageInfo::new(SHARE, 0, 0, 3), [addr, len, seed, 0]);
    if answer.info.label() != CHECKED || answer.info.length() != 1 {
        return Err(code::ANSWER);
    }
    if answer.mrs[0] != 0 {
        return Err(code::MISMATCH);
    }
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
