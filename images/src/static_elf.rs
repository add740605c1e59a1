//! Static x86-64 executables, the only programs seL4 and the root task
//! load here: the checks that a file is one, and the memory its loadable
//! segments take (every 4 KiB page a segment touches gets a frame).

use elf::abi::{EM_X86_64, ET_EXEC, PT_DYNAMIC, PT_INTERP, PT_LOAD};
use elf::endian::LittleEndian;
use elf::file::Class;
use elf::segment::ProgramHeader;
use elf::ElfBytes;
use std::collections::BTreeSet;

/// The page size the loaders map segments with.
pub const PAGE: u64 = 4096;

/// Why a file is not a static x86-64 executable.
#[derive(Debug, thiserror::Error)]
pub enum NotStatic {
    /// Not a little-endian ELF file.
    #[error("not a little-endian ELF file ({0})")]
    NotElf(elf::ParseError),
    /// A 32-bit ELF file.
    #[error("a 32-bit ELF file, not a 64-bit one")]
    NotElf64,
    /// For another machine.
    #[error("for machine {0} ({name}), not x86-64 ({EM_X86_64})", name = elf::to_str::e_machine_to_string(*.0))]
    WrongMachine(u16),
    /// A relocatable object, a position-independent executable or a
    /// shared library.
    #[error("of ELF type {0} ({name}), not a non-PIE executable (ET_EXEC)", name = elf::to_str::e_type_to_string(*.0))]
    NotExecutable(u16),
    /// Needs a dynamic loader.
    #[error("dynamically linked (it has a {0} program header)")]
    Dynamic(&'static str),
    /// No loadable segment.
    #[error("it has nothing to load (no PT_LOAD segment with bytes)")]
    NothingToLoad,
    /// A loadable segment's bytes lie past the end of the file, or its
    /// addresses wrap.
    #[error(
        "a PT_LOAD segment ({filesz:#x} bytes at file offset {offset:#x}) lies outside the file or the address space"
    )]
    Truncated {
        /// The segment's file offset.
        offset: u64,
        /// Its bytes in the file.
        filesz: u64,
    },
}

/// A checked static x86-64 executable.
pub struct StaticElf<'a> {
    /// The parsed file.
    pub file: ElfBytes<'a, LittleEndian>,
    /// Its PT_LOAD segments with bytes in memory.
    pub loads: Vec<ProgramHeader>,
}

impl<'a> StaticElf<'a> {
    /// Checks that `bytes` is a static, non-PIE x86-64 executable with
    /// something to load, every loadable segment inside the file.
    pub fn parse(bytes: &'a [u8]) -> Result<StaticElf<'a>, NotStatic> {
        let file = ElfBytes::<LittleEndian>::minimal_parse(bytes).map_err(NotStatic::NotElf)?;
        let ehdr = &file.ehdr;
        if ehdr.class != Class::ELF64 {
            return Err(NotStatic::NotElf64);
        }
        if ehdr.e_machine != EM_X86_64 {
            return Err(NotStatic::WrongMachine(ehdr.e_machine));
        }
        if ehdr.e_type != ET_EXEC {
            return Err(NotStatic::NotExecutable(ehdr.e_type));
        }
        let segments: Vec<ProgramHeader> = file.segments().map(|s| s.iter().collect()).unwrap_or_default();
        for (kind, name) in [(PT_INTERP, "PT_INTERP"), (PT_DYNAMIC, "PT_DYNAMIC")] {
            if segments.iter().any(|s| s.p_type == kind) {
                return Err(NotStatic::Dynamic(name));
            }
        }
        let loads: Vec<ProgramHeader> = segments.into_iter().filter(|s| s.p_type == PT_LOAD && s.p_memsz > 0).collect();
        if loads.is_empty() {
            return Err(NotStatic::NothingToLoad);
        }
        for s in &loads {
            let in_file = s.p_offset.checked_add(s.p_filesz).is_some_and(|end| end <= bytes.len() as u64);
            if !in_file || s.p_filesz > s.p_memsz || s.p_vaddr.checked_add(s.p_memsz).is_none() {
                return Err(NotStatic::Truncated { offset: s.p_offset, filesz: s.p_filesz });
            }
        }
        Ok(StaticElf { file, loads })
    }

    /// The highest address a loadable segment reaches (its end).
    pub fn end(&self) -> u64 {
        self.loads.iter().map(|s| s.p_vaddr + s.p_memsz).max().unwrap_or(0)
    }

    /// Bytes of the frames a loader maps for it: every page that a
    /// loadable segment touches, once.
    pub fn load_bytes(&self) -> u64 {
        let pages: BTreeSet<u64> =
            self.loads.iter().flat_map(|s| (s.p_vaddr / PAGE)..(s.p_vaddr + s.p_memsz).div_ceil(PAGE)).collect();
        pages.len() as u64 * PAGE
    }
}
