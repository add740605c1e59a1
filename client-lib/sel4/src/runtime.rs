//! Start-up, exit and panic handling for seL4 programs.
//!
//! A program says `sel4_layer::sel4_program!(main, ipc_buffer = …);` once.
//! That expands, in the program's own crate (so host test binaries never
//! contain it), to the `_start` entry with a static stack, the memory
//! functions the compiler calls (no libc here), and the panic handler.
//!
//! Start-up registers: the root task receives the bootinfo address in rdi;
//! threads the root task starts receive their IPC buffer address in rdi
//! and three words of the starter's choice in rsi, rdx and rcx. A thread
//! started with rsp = 0 (the root task, and each program's first thread)
//! runs on the program's static stack; other threads bring their own.

use super::abi::CPtr;
use super::invocation::IoPort;
use super::ipc_buffer;
use core::sync::atomic::{AtomicU64, Ordering};

/// The start-up registers (rdi, rsi, rdx, rcx).
#[derive(Clone, Copy, Debug)]
pub struct StartRegs {
    /// Bootinfo (root task) or the IPC buffer address (other threads).
    pub rdi: u64,
    /// First word from the starter.
    pub rsi: u64,
    /// Second word from the starter.
    pub rdx: u64,
    /// Third word from the starter.
    pub rcx: u64,
}

/// Bytes of a program's static stack unless it asks for another size.
pub const DEFAULT_STACK_BYTES: usize = 0x20000;

/// QEMU's `isa-debug-exit` device: a write of v ends QEMU with status
/// (v << 1) | 1.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Written for success: QEMU exits with 33.
pub const EXIT_SUCCESS_VALUE: u8 = 0x10;
/// Written for failure: QEMU exits with 35.
pub const EXIT_FAILURE_VALUE: u8 = 0x11;
/// QEMU's exit status after a success write.
pub const QEMU_SUCCESS_STATUS: i32 = ((EXIT_SUCCESS_VALUE as i32) << 1) | 1;

/// The IO-port cap through which this program may end the system (0: it
/// may not, and a failure faults to its supervisor instead).
static EXIT_CAP: AtomicU64 = AtomicU64::new(0);

/// Lets this program end the system through the IO-port capability `cap`.
pub fn set_exit_capability(cap: u64) {
    EXIT_CAP.store(cap, Ordering::Relaxed);
}

/// Ends the system with success or failure when this program holds the
/// exit capability. Otherwise a failure faults (`ud2`), so the supervisor
/// hears of it through the fault endpoint, and a success yields until the
/// supervisor, told by the program's last message, suspends the thread.
pub fn exit(success: bool) -> ! {
    let cap = EXIT_CAP.load(Ordering::Relaxed);
    if cap != 0 {
        let value = if success { EXIT_SUCCESS_VALUE } else { EXIT_FAILURE_VALUE };
        // If even this fails there is no one left to tell; fall through to
        // the fault below.
        let _ = IoPort(cap).out8(DEBUG_EXIT_PORT, value);
    }
    loop {
        if success {
            super::syscall::yield_now();
        } else {
            // SAFETY: `ud2` raises an invalid-opcode exception, which seL4
            // delivers to this thread's fault handler; it touches no memory.
            unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
        }
    }
}

/// Called by `_start`: records the IPC buffer and the console endpoint (0:
/// the kernel's debug console) and runs `main`.
pub fn start(regs: StartRegs, ipc_buffer_address: u64, console: CPtr, main: fn(StartRegs) -> !) -> ! {
    ipc_buffer::init(ipc_buffer_address);
    super::print::set_console(console);
    main(regs)
}

/// The panic handler's body: print the message and end with failure.
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::println!("panic: {info}");
    exit(false)
}

/// Defines the entry point, static stack, memory functions and panic
/// handler of an seL4 program whose `main` takes the start-up registers.
/// `ipc_buffer` maps them to this thread's IPC buffer address; `stack`
/// (optional) sets the static stack's size in bytes; `console` (optional,
/// after `stack`) is the capability of the console endpoint its lines go
/// to (see [`print`](crate::print); without it, the kernel's console).
#[macro_export]
macro_rules! sel4_program {
    ($main:path, ipc_buffer = $ipc:expr) => {
        $crate::sel4_program!($main, ipc_buffer = $ipc, stack = $crate::runtime::DEFAULT_STACK_BYTES);
    };
    ($main:path, ipc_buffer = $ipc:expr, stack = $stack:expr) => {
        $crate::sel4_program!($main, ipc_buffer = $ipc, stack = $stack, console = 0);
    };
    ($main:path, ipc_buffer = $ipc:expr, stack = $stack:expr, console = $console:expr) => {
        core::arch::global_asm!(
            ".section .bss.sel4_stack, \"aw\", @nobits",
            ".balign 16",
            ".space {stack}",
            "sel4_stack_top:",
            ".section .text._start, \"ax\", @progbits",
            ".global _start",
            "_start:",
            "test rsp, rsp",
            "jnz 2f",
            "lea rsp, [rip + sel4_stack_top]",
            "2:",
            "xor ebp, ebp",
            "call {entry}",
            "ud2",
            stack = const $stack,
            entry = sym sel4_rust_start,
        );

        extern "C" fn sel4_rust_start(rdi: u64, rsi: u64, rdx: u64, rcx: u64) -> ! {
            let regs = $crate::runtime::StartRegs { rdi, rsi, rdx, rcx };
            let ipc: fn($crate::runtime::StartRegs) -> u64 = $ipc;
            $crate::runtime::start(regs, ipc(regs), $console, $main)
        }

        #[panic_handler]
        fn sel4_panic(info: &core::panic::PanicInfo) -> ! {
            $crate::runtime::panic(info)
        }

        /// The precompiled `core` refers to this unwinding hook even when
        /// panics abort; it is never called here, as nothing unwinds.
        #[no_mangle]
        extern "C" fn rust_eh_personality() {}

        /// `memcpy` for the compiler (there is no libc): whole words, then
        /// the remaining bytes.
        ///
        /// # Safety
        /// C's contract: `src` readable and `dest` writable for `n` bytes,
        /// the two ranges not overlapping.
        #[no_mangle]
        unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
            // SAFETY: the caller guarantees valid, non-overlapping ranges;
            // the two string moves cover exactly `n` bytes, forwards.
            unsafe {
                core::arch::asm!(
                    "rep movsq",
                    "mov rcx, {tail}",
                    "rep movsb",
                    tail = in(reg) n % 8,
                    inout("rcx") n / 8 => _,
                    inout("rdi") dest => _,
                    inout("rsi") src => _,
                    options(nostack, preserves_flags)
                )
            };
            dest
        }

        /// `memmove` for the compiler: copies backwards when `dest` is
        /// above `src`.
        ///
        /// # Safety
        /// C's contract: `src` readable and `dest` writable for `n` bytes
        /// (the ranges may overlap).
        #[no_mangle]
        unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
            if n == 0 {
                return dest;
            }
            if (dest as usize) <= (src as usize) || (dest as usize) >= (src as usize).wrapping_add(n) {
                // SAFETY: a forward copy is correct when dest is below src
                // or the ranges do not overlap.
                unsafe { memcpy(dest, src, n) };
            } else {
                // SAFETY: backward copy from the last byte; the direction
                // flag is restored before returning, as the ABI requires.
                unsafe {
                    core::arch::asm!("std", "rep movsb", "cld", inout("rcx") n => _, inout("rdi") dest.add(n - 1) => _, inout("rsi") src.add(n - 1) => _, options(nostack))
                };
            }
            dest
        }

        /// `memset` for the compiler: whole words, then the remaining bytes.
        ///
        /// # Safety
        /// C's contract: `dest` writable for `n` bytes.
        #[no_mangle]
        unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
            let word = (value as u8 as u64).wrapping_mul(0x0101_0101_0101_0101);
            // SAFETY: the caller guarantees `dest..dest+n` is writable; the
            // two string stores cover exactly `n` bytes.
            unsafe {
                core::arch::asm!(
                    "rep stosq",
                    "mov rcx, {tail}",
                    "rep stosb",
                    tail = in(reg) n % 8,
                    inout("rcx") n / 8 => _,
                    inout("rdi") dest => _,
                    in("rax") word,
                    options(nostack, preserves_flags)
                )
            };
            dest
        }

        /// `memcmp` for the compiler.
        ///
        /// # Safety
        /// C's contract: `a` and `b` readable for `n` bytes.
        #[no_mangle]
        unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            for i in 0..n {
                // SAFETY: the caller guarantees both ranges are readable;
                // volatile reads keep this loop from becoming a memcmp call.
                let (x, y) = unsafe { (core::ptr::read_volatile(a.add(i)), core::ptr::read_volatile(b.add(i))) };
                if x != y {
                    return x as i32 - y as i32;
                }
            }
            0
        }

        /// `bcmp` for the compiler.
        ///
        /// # Safety
        /// As for `memcmp`.
        #[no_mangle]
        unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
            // SAFETY: same contract as memcmp.
            unsafe { memcmp(a, b, n) }
        }
    };
}
