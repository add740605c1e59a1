//! A linked program's machine code as text: `objdump -d
//! --no-show-raw-insn` (binutils), one function label or instruction per
//! line, read by `panic_sites` and `fpu_free`.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// The disassembly of the program `elf`.
pub fn objdump(elf: &Path) -> Result<String> {
    let mut command = Command::new("objdump");
    command.args(["-d", "--no-show-raw-insn"]).arg(elf);
    let out = command.output().context("cannot run objdump (Debian package binutils)")?;
    if !out.status.success() {
        bail!("{command:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An instruction's line split into its address and its text
/// (`  2040b1:\tcall   *0x197a1(%rip)`): `None` for any other line.
pub fn instruction(line: &str) -> Option<(&str, &str)> {
    let (address, instruction) = line.split_once(":\t")?;
    let address = address.trim();
    (!address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit())).then_some((address, instruction))
}
