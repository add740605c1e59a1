//! The time stamp counter. Under QEMU's `-icount shift=0` it advances with
//! executed instructions, so differences are repeatable cost figures;
//! under plain TCG it follows the host's clock.

/// The time stamp counter now.
pub fn cycles() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc reads the time stamp counter into edx:eax and has no
    // other effect.
    unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    ((hi as u64) << 32) | lo as u64
}
