//! The call sites of panicking functions in a linked seL4 program: the
//! evidence behind `docs/no-panic.md`, checked by `tests/no_panic.rs`
//! against the audited list `docs/panic-sites.txt`.
//!
//! `objdump -d` (binutils) disassembles the program; the `elf` crate gives
//! the symbol table and the contents of the address slots. A call or jump
//! to a symbol's address is resolved through the symbol table; a call or
//! jump through an 8-byte slot (`call *0x..(%rip)`, the usual form in a
//! position-independent program) through the address stored in the slot.
//! Callers and callees are demangled without their hash, so every
//! instance of a generic function shares one key
//! (`memserver::populate::Region<B>::sync`).

use crate::disassembly;
use anyhow::{bail, Context, Result};
use elf::endian::AnyEndian;
use elf::ElfBytes;
use std::collections::BTreeMap;
use std::path::Path;

/// What a panicking function's name contains (`core::panicking::*`,
/// `core::option::unwrap_failed`, `core::result::unwrap_failed`,
/// `expect_failed`, slice index failures, `panic_bounds_check`,
/// `assert_failed`).
pub const PANICKY: [&str; 6] =
    ["panic", "unwrap_failed", "expect_failed", "index_fail", "bounds_check", "assert_failed"];

/// Whether `name` (demangled) names a panicking function.
pub fn is_panicky(name: &str) -> bool {
    PANICKY.iter().any(|word| name.contains(word))
}

/// Panic sites: (caller, callee) -> how many call sites.
pub type Sites = BTreeMap<(String, String), u32>;

/// What one line of `objdump -d --no-show-raw-insn` says, as far as panic
/// sites go.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// `0000000000204090 <name>:` starts the function `name` (mangled).
    Function(&'a str),
    /// A call or jump to an address.
    Direct(u64),
    /// A call or jump through the 8-byte slot at an address.
    Through(u64),
    /// Anything else.
    Other,
}

/// Reads one line of `objdump -d --no-show-raw-insn` output.
pub fn parse_line(line: &str) -> Line<'_> {
    if let Some((address, rest)) = line.split_once(" <") {
        if let Some(name) = rest.strip_suffix(">:") {
            if !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Line::Function(name);
            }
        }
    }
    // An instruction: `  2040b1:\tcall   *0x197a1(%rip)        # 21d858 <sym+0x90>`.
    let Some((_, instruction)) = disassembly::instruction(line) else { return Line::Other };
    let mut words = instruction.split_whitespace().skip_while(|w| matches!(*w, "bnd" | "notrack" | "cs" | "ds"));
    let Some(mnemonic) = words.next() else { return Line::Other };
    let branch = mnemonic.starts_with("call") || mnemonic.starts_with('j');
    let Some(operand) = words.next().filter(|_| branch) else { return Line::Other };
    if operand.starts_with('*') {
        // Only a slot addressed relative to the instruction pointer has a
        // fixed address, which objdump prints after `#`.
        if !operand.ends_with("(%rip)") {
            return Line::Other;
        }
        let slot = instruction.split_once('#').and_then(|(_, c)| c.split_whitespace().next());
        return slot.and_then(|s| u64::from_str_radix(s, 16).ok()).map_or(Line::Other, Line::Through);
    }
    match (u64::from_str_radix(operand, 16), words.next()) {
        (Ok(target), Some(symbol)) if symbol.starts_with('<') => Line::Direct(target),
        _ => Line::Other,
    }
}

/// A symbol's name without its hash (`::h0123...` or the v0 mangling's
/// crate disambiguators).
pub fn demangle(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

/// The program's symbols by address (demangled; where several name one
/// address, a panicking name wins, then the first in name order) and the
/// contents of its address slots.
struct Image<'data> {
    file: ElfBytes<'data, AnyEndian>,
    symbols: BTreeMap<u64, String>,
}

impl<'data> Image<'data> {
    fn parse(data: &'data [u8]) -> Result<Image<'data>> {
        let file = ElfBytes::<AnyEndian>::minimal_parse(data).context("not an ELF file")?;
        let (table, strings) = file.symbol_table()?.context("the program has no symbol table")?;
        let mut symbols: BTreeMap<u64, String> = BTreeMap::new();
        for symbol in table.iter() {
            let kind = symbol.st_symtype();
            if symbol.is_undefined() || kind == elf::abi::STT_SECTION || kind == elf::abi::STT_FILE {
                continue;
            }
            let name = demangle(strings.get(symbol.st_name as usize)?);
            if name.is_empty() {
                continue;
            }
            let keep = |old: &String| (is_panicky(old), std::cmp::Reverse(old.clone()));
            match symbols.get(&symbol.st_value) {
                Some(old) if keep(old) >= keep(&name) => {}
                _ => {
                    symbols.insert(symbol.st_value, name);
                }
            }
        }
        Ok(Image { file, symbols })
    }

    /// The 8 bytes at virtual address `address`, or `None` where no section
    /// with file contents holds them.
    fn word(&self, address: u64) -> Result<Option<u64>> {
        let Some(headers) = self.file.section_headers() else { return Ok(None) };
        for header in headers.iter() {
            let end = header.sh_addr.saturating_add(header.sh_size);
            if header.sh_addr == 0 || header.sh_type == elf::abi::SHT_NOBITS || address < header.sh_addr {
                continue;
            }
            if address.saturating_add(8) > end {
                continue;
            }
            let (data, _) = self.file.section_data(&header)?;
            let mut offset = usize::try_from(address - header.sh_addr)?;
            return Ok(Some(elf::endian::EndianParse::parse_u64_at(self.file.ehdr.endianness, &mut offset, data)?));
        }
        Ok(None)
    }

    /// The name of the function at `address`, if a symbol names it.
    fn name(&self, address: u64) -> Option<&str> {
        self.symbols.get(&address).map(String::as_str)
    }
}

/// Counts the panic sites of `disassembly` (the output of `objdump -d
/// --no-show-raw-insn` of `image`): calls and jumps from a function whose
/// name is not panicking itself to one whose name is.
fn count(image: &Image<'_>, disassembly: &str) -> Result<Sites> {
    let mut sites = Sites::new();
    let mut caller = String::new();
    for line in disassembly.lines() {
        let callee = match parse_line(line) {
            Line::Function(name) => {
                caller = demangle(name);
                continue;
            }
            Line::Direct(target) => image.name(target),
            Line::Through(slot) => match image.word(slot)? {
                Some(target) => image.name(target),
                None => None,
            },
            Line::Other => None,
        };
        if let Some(callee) = callee.filter(|c| is_panicky(c) && !is_panicky(&caller)) {
            *sites.entry((caller.clone(), callee.to_owned())).or_default() += 1;
        }
    }
    Ok(sites)
}

/// Every panic site of the program `elf`.
pub fn sites(elf: &Path) -> Result<Sites> {
    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let image = Image::parse(&data).with_context(|| format!("reading {}", elf.display()))?;
    count(&image, &disassembly::objdump(elf)?)
}

/// One `count caller -> callee` line per site, in key order.
pub fn format(sites: &Sites) -> String {
    sites.iter().map(|((caller, callee), n)| format!("{n} {caller} -> {callee}\n")).collect()
}

/// Reads lines written by [`format`] (blank lines and `#` comments are
/// skipped).
pub fn parse(text: &str) -> Result<Sites> {
    let mut sites = Sites::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#')) {
        let parsed =
            line.split_once(' ').and_then(|(n, rest)| Some((n.parse::<u32>().ok()?, rest.split_once(" -> ")?)));
        let Some((n, (caller, callee))) = parsed else {
            bail!("line {}: expected `count caller -> callee`, found `{line}`", i + 1);
        };
        if sites.insert((caller.to_owned(), callee.to_owned()), n).is_some() {
            bail!("line {}: site listed twice: `{line}`", i + 1);
        }
    }
    Ok(sites)
}

/// The sites of `found` that `audited` lacks (or lists with another
/// count), and those of `audited` that `found` lacks, as lines of
/// [`format`]. Both are empty exactly when the two are equal.
pub fn differences(found: &Sites, audited: &Sites) -> (Vec<String>, Vec<String>) {
    let missing_from = |a: &Sites, b: &Sites| -> Vec<String> {
        a.iter()
            .filter(|(key, n)| b.get(*key) != Some(*n))
            .map(|((caller, callee), n)| format!("{n} {caller} -> {callee}"))
            .collect()
    };
    (missing_from(found, audited), missing_from(audited, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objdump_lines_are_read() {
        assert_eq!(
            parse_line("00000000002040c0 <_ZN9memserver15sel4_rust_start17h6cd1c8ac7e65e6d6E>:"),
            Line::Function("_ZN9memserver15sel4_rust_start17h6cd1c8ac7e65e6d6E")
        );
        assert_eq!(
            parse_line("  20409e:\tcall   2040c0 <_ZN9memserver15sel4_rust_start17h6cd1c8ac7e65e6d6E>"),
            Line::Direct(0x2040c0)
        );
        assert_eq!(
            parse_line("  204c38:\tjmp    20d780 <_ZN4core9panicking5panic17h0123456789abcdefE>"),
            Line::Direct(0x20d780)
        );
        assert_eq!(
            parse_line("  21bddb:\tjbe    21be18 <_ZN4core5slice5index16slice_index_fail+0x48>"),
            Line::Direct(0x21be18)
        );
        assert_eq!(
            parse_line(
                "  2040b1:\tcall   *0x197a1(%rip)        # 21d858 <anon.86026d028ac502b6442f.1.llvm.58998+0x90>"
            ),
            Line::Through(0x21d858)
        );
        assert_eq!(
            parse_line("  2043b3:\tjmp    *0x19557(%rip)        # 21d910 <anon.1.llvm.5+0x148>"),
            Line::Through(0x21d910)
        );
        assert_eq!(parse_line("  2043b3:\tnotrack jmp *0x19557(%rip)        # 21d910 <x>"), Line::Through(0x21d910));
        assert_eq!(parse_line("  204100:\tcall   *%rax"), Line::Other);
        assert_eq!(parse_line("  204100:\tcall   *0x8(%rax)"), Line::Other);
        assert_eq!(parse_line("  204104:\tmov    0x197a1(%rip),%rax        # 21d858 <anon+0x90>"), Line::Other);
        assert_eq!(parse_line("  204108:\tret"), Line::Other);
        assert_eq!(parse_line("Disassembly of section .text:"), Line::Other);
        assert_eq!(parse_line(""), Line::Other);
    }

    #[test]
    fn names_lose_their_hash_and_keep_generic_parameters() {
        assert_eq!(
            demangle("_ZN9memserver8populate15Region$LT$B$GT$4sync17h23288dc84377a7c4E"),
            "memserver::populate::Region<B>::sync"
        );
        assert_eq!(demangle("_RNvCsfLfy6EI15iL_7___rustc17rust_begin_unwind"), "__rustc::rust_begin_unwind");
        assert!(is_panicky("core::panicking::panic_fmt"));
        assert!(is_panicky("core::slice::index::slice_index_fail"));
        assert!(!is_panicky("memserver::dispatch::Dispatcher<B>::reclaim"));
    }

    #[test]
    fn the_list_reads_back_and_differences_name_both_sides() {
        let text = "2 a::run -> core::panicking::panic_fmt\n1 heapless::vec::Vec<T,_>::swap_remove -> core::panicking::panic\n";
        let sites = parse(text).unwrap();
        assert_eq!(format(&sites), text);
        let mut changed = sites.clone();
        changed.insert(("a::run".into(), "core::panicking::panic_fmt".into()), 3);
        changed.insert(("b::new".into(), "core::option::unwrap_failed".into()), 1);
        let (new, vanished) = differences(&changed, &sites);
        assert_eq!(new, ["3 a::run -> core::panicking::panic_fmt", "1 b::new -> core::option::unwrap_failed"]);
        assert_eq!(vanished, ["2 a::run -> core::panicking::panic_fmt"]);
        assert_eq!(differences(&sites, &sites), (vec![], vec![]));
        assert!(parse("x a -> b").is_err());
        assert!(parse("1 a -> b\n1 a -> b").is_err());
    }
}
