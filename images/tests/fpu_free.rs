//! The memory server touches no FPU state (`images::fpu_free`): built as
//! the demo system builds it, its ELF has no x87, MMX, SSE or AVX
//! instruction, so it never takes the FPU from a client.

use images::fpu_free;
use images::programs;
use images::workspace::Workspace;

#[test]
fn the_memory_server_has_no_fpu_instruction() {
    let ws = Workspace::load().expect("cargo metadata");
    let elf = programs::build_memserver(&ws).expect("building the memory server");
    let found = fpu_free::in_program(&elf).expect("disassembling the memory server");
    let first: Vec<String> = found.iter().take(10).map(|(address, text)| format!("  {address}: {text}")).collect();
    assert!(
        found.is_empty(),
        "{} uses the FPU in {} instructions; the first:\n{}",
        elf.display(),
        found.len(),
        first.join("\n")
    );
}
