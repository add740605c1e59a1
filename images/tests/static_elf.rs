//! The static-executable check on a real root-task-like file and on that
//! file changed in each way that makes it something else.

mod common;

use common::root_like;
use elf::abi::{PT_INTERP, PT_LOAD, PT_NULL};
use images::static_elf::{NotStatic, StaticElf};

/// The fixture's bytes and the file offsets of its program headers.
fn fixture() -> (Vec<u8>, Vec<usize>) {
    let bytes = std::fs::read(root_like(true)).unwrap();
    let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(bytes[56..58].try_into().unwrap()) as usize;
    (bytes, (0..phnum).map(|i| phoff + i * 56).collect())
}

fn p_type(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

#[test]
fn the_fixture_is_a_static_executable_ending_at_end() {
    let (bytes, _) = fixture();
    let elf = StaticElf::parse(&bytes).unwrap();
    assert!(elf.loads.len() >= 3, "read-only data, code, data and bss");
    assert!(elf.load_bytes() >= 20_000 + 4096 * 8, "its table and its state");
    assert_eq!(elf.load_bytes() % 4096, 0);
    let (symbols, names) = elf.file.symbol_table().unwrap().unwrap();
    let end = symbols.iter().find(|s| names.get(s.st_name as usize).unwrap() == "_end").unwrap();
    assert_eq!(elf.end(), end.st_value, "the linker's `_end` is the highest segment end");
}

#[test]
fn every_other_kind_of_file_is_refused_with_its_reason() {
    let (original, headers) = fixture();
    let changed = |change: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = original.clone();
        change(&mut bytes);
        StaticElf::parse(&bytes).err().map(|e| (e.to_string(), e))
    };
    let (text, e) = changed(&|b| b.truncate(10)).unwrap();
    assert!(matches!(e, NotStatic::NotElf(_)), "{text}");
    let (text, e) = changed(&|b| b[18..20].copy_from_slice(&183u16.to_le_bytes())).unwrap();
    assert!(matches!(e, NotStatic::WrongMachine(183)), "{text}");
    assert!(text.contains("AArch64") || text.contains("183"), "{text}");
    let (text, e) = changed(&|b| b[16..18].copy_from_slice(&1u16.to_le_bytes())).unwrap();
    assert!(matches!(e, NotStatic::NotExecutable(1)), "{text}");
    let stack = *headers.iter().find(|&&at| p_type(&original, at) == elf::abi::PT_GNU_STACK).unwrap();
    let (text, e) = changed(&|b| b[stack..stack + 4].copy_from_slice(&PT_INTERP.to_le_bytes())).unwrap();
    assert!(matches!(e, NotStatic::Dynamic("PT_INTERP")), "{text}");
    let loads: Vec<usize> = headers.iter().copied().filter(|&at| p_type(&original, at) == PT_LOAD).collect();
    let (text, e) = changed(&|b| {
        for &at in &loads {
            b[at..at + 4].copy_from_slice(&PT_NULL.to_le_bytes());
        }
    })
    .unwrap();
    assert!(matches!(e, NotStatic::NothingToLoad), "{text}");
    let last = *loads.last().unwrap();
    let (text, e) = changed(&|b| {
        let len = b.len() as u64;
        // p_filesz and p_memsz: more than the file holds.
        b[last + 32..last + 40].copy_from_slice(&len.to_le_bytes());
        b[last + 40..last + 48].copy_from_slice(&len.to_le_bytes());
    })
    .unwrap();
    assert!(matches!(e, NotStatic::Truncated { .. }), "{text}");
    let (text, e) = changed(&|b| b[4] = 1).unwrap();
    assert!(matches!(e, NotStatic::NotElf(_) | NotStatic::NotElf64), "{text}");
}
