//! The instructions of a linked program that use the FPU's state: x87
//! (every mnemonic that starts with `f`), MMX, SSE and AVX (an `%mm`,
//! `%xmm`, `%ymm` or `%zmm` operand, `emms`, the MXCSR's loads and
//! stores) and the state's saves and restores (`xsave`, `xrstor` and
//! their kin). seL4 hands the FPU to a thread lazily: the first such
//! instruction a thread runs after another used the FPU traps into the
//! kernel, which moves the FPU's state over. A program with none of them
//! never takes the FPU from another; `tests/fpu_free.rs` requires that of
//! the memory server, so no request of a client that uses the FPU costs
//! a trap on each side.

use crate::disassembly;
use anyhow::Result;
use std::path::Path;

/// Whether the instruction text `instruction` (as objdump prints it, AT&T
/// syntax: `movups %xmm0,(%rsp)`) uses the FPU's state.
pub fn uses_fpu(instruction: &str) -> bool {
    let mut words = instruction.split_whitespace().skip_while(|w| matches!(*w, "lock" | "rep" | "repz" | "repnz"));
    let Some(mnemonic) = words.next() else { return false };
    let operands = words.next().unwrap_or("");
    let state = ["emms", "ldmxcsr", "stmxcsr", "vldmxcsr", "vstmxcsr", "xsave", "xrstor"];
    mnemonic.starts_with('f')
        || state.iter().any(|s| mnemonic.starts_with(s))
        || ["%mm", "%xmm", "%ymm", "%zmm", "%st"].iter().any(|r| operands.contains(r))
}

/// The instructions of `disassembly` (`objdump -d --no-show-raw-insn`'s
/// output) that use the FPU's state: address and text.
pub fn fpu_instructions(disassembly: &str) -> Vec<(String, String)> {
    disassembly
        .lines()
        .filter_map(disassembly::instruction)
        .filter(|(_, instruction)| uses_fpu(instruction))
        .map(|(address, instruction)| (address.to_owned(), instruction.trim().to_owned()))
        .collect()
}

/// The instructions of the program `elf` that use the FPU's state.
pub fn in_program(elf: &Path) -> Result<Vec<(String, String)>> {
    Ok(fpu_instructions(&disassembly::objdump(elf)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fpu_sse_and_state_instructions_are_found() {
        for instruction in [
            "movups %xmm0,0x10(%rsp)",
            "pxor   %xmm1,%xmm1",
            "vmovdqu %ymm0,(%rdi)",
            "movq   %mm0,%rax",
            "fldt   0x8(%rsp)",
            "fnstcw -0x2(%rsp)",
            "fxsave64 (%rdi)",
            "xsaveopt (%rdi)",
            "ldmxcsr 0x4(%rsp)",
            "emms",
            "fstp   %st(0)",
        ] {
            assert!(uses_fpu(instruction), "{instruction}");
        }
    }

    #[test]
    fn general_purpose_instructions_are_not() {
        for instruction in [
            "mov    %rax,%fs:0x28",
            "mfence",
            "lock cmpxchg %r13b,0x2bc8d(%rip)",
            "rep movsq %ds:(%rsi),%es:(%rdi)",
            "call   21a620 <memserver_core::dispatch::Dispatcher<B>::request>",
            "xchg   %rax,0x52c4e2(%rip)",
            "nopw   0x0(%rax,%rax,1)",
        ] {
            assert!(!uses_fpu(instruction), "{instruction}");
        }
    }

    #[test]
    fn a_disassembly_yields_its_fpu_instructions_with_their_addresses() {
        let text = "0000000000204090 <f>:\n  204090:\tpush   %rbp\n  204091:\tmovaps %xmm0,(%rsp)\n\n  204095:\tret\n";
        assert_eq!(fpu_instructions(text), vec![("204091".to_owned(), "movaps %xmm0,(%rsp)".to_owned())]);
    }
}
