//! Packing a root task with a system image: the blob becomes a new
//! read-only PT_LOAD segment at the first page boundary at or after the
//! image's highest segment end, where the root task finds it (the page
//! after its `_end`). seL4 gives the root task frames for the whole range
//! from its lowest to its highest segment address, so the blob must follow
//! the image directly.
//!
//! The program header table has no room for one more entry in place, so a
//! new table (the old entries, then the blob's) is written after the blob,
//! inside the new segment, and the ELF header's `e_phoff` and `e_phnum`
//! point at it; a PT_PHDR entry is moved to describe it. Every other byte
//! of the file stays as it was (the old table too, unused).

use crate::static_elf::{NotStatic, StaticElf, PAGE};
use anyhow::Context;
use elf::abi::{PF_R, PT_LOAD, PT_PHDR};
use elf::segment::ProgramHeader;
use std::path::Path;

/// Bytes of one ELF64 program header.
const PHDR_SIZE: usize = 56;
/// Where the ELF64 header keeps `e_phoff` (8 bytes) and `e_phnum` (2).
const E_PHOFF: usize = 32;
const E_PHNUM: usize = 56;
/// `e_phnum` this value or above means the count is kept elsewhere.
const PN_XNUM: u16 = 0xffff;

/// Why a root task cannot carry a system image.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// Not a static x86-64 executable.
    #[error("the root task is not a static x86-64 executable: {0}")]
    NotStatic(NotStatic),
    /// No symbol table to check `_end` against.
    #[error("the root task has no symbol table, so where it looks for the system image (`_end`) is unknown")]
    NoSymbolTable,
    /// No `_end`: the linker defines it only for a program that refers to
    /// it, and a root task that reads a system image does.
    #[error("the root task has no `_end` symbol: it does not look for a system image after its image")]
    NoEnd,
    /// `_end` is not where the image ends, so the root task would look for
    /// the blob elsewhere than where it is.
    #[error("the root task's `_end` is {end:#x}, but its highest segment ends at {highest:#x}")]
    EndMismatch {
        /// `_end`.
        end: u64,
        /// The highest segment end.
        highest: u64,
    },
    /// Program headers of an unexpected size, or too many of them.
    #[error("the root task's program header table ({count} entries of {size} bytes) cannot take one more")]
    ProgramHeaders {
        /// `e_phnum`.
        count: u16,
        /// `e_phentsize`.
        size: u16,
    },
    /// The blob would lie past the address space.
    #[error("a system image of {len} bytes after {end:#x} lies past the address space")]
    PastAddressSpace {
        /// The image's end.
        end: u64,
        /// The blob's length.
        len: usize,
    },
}

/// A root task with its system image.
pub struct Packed {
    /// The new ELF file.
    pub bytes: Vec<u8>,
    /// The blob's address (the page at or after `_end`).
    pub blob_address: u64,
    /// The blob's offset in the file.
    pub blob_offset: u64,
}

/// Appends `blob` to the root task `root_task` (a static, non-PIE x86-64
/// executable whose `_end` is its highest segment end) as a new read-only
/// segment at the page boundary at or after `_end`.
pub fn pack(root_task: &[u8], blob: &[u8]) -> Result<Packed, PackError> {
    let elf = StaticElf::parse(root_task).map_err(PackError::NotStatic)?;
    let highest = elf.end();
    let (symbols, names) = elf.file.symbol_table().ok().flatten().ok_or(PackError::NoSymbolTable)?;
    let end = symbols
        .iter()
        .find(|s| names.get(s.st_name as usize).is_ok_and(|name| name == "_end"))
        .ok_or(PackError::NoEnd)?
        .st_value;
    if end != highest {
        return Err(PackError::EndMismatch { end, highest });
    }
    let (count, size) = (elf.file.ehdr.e_phnum, elf.file.ehdr.e_phentsize);
    if size as usize != PHDR_SIZE || count >= PN_XNUM - 1 {
        return Err(PackError::ProgramHeaders { count, size });
    }
    let blob_address = ::system_image::blob_start(end).ok_or(PackError::PastAddressSpace { end, len: blob.len() })?;
    let mut segments: Vec<ProgramHeader> = elf.file.segments().map(|s| s.iter().collect()).unwrap_or_default();
    let mut bytes = root_task.to_vec();
    let blob_offset = (bytes.len() as u64).next_multiple_of(PAGE);
    bytes.resize(blob_offset as usize, 0);
    bytes.extend_from_slice(blob);
    let table_offset = (bytes.len() as u64).next_multiple_of(8);
    let table_len = ((segments.len() + 1) * PHDR_SIZE) as u64;
    let segment_len = table_offset + table_len - blob_offset;
    blob_address.checked_add(segment_len).ok_or(PackError::PastAddressSpace { end, len: blob.len() })?;
    let table_address = blob_address + (table_offset - blob_offset);
    for s in segments.iter_mut().filter(|s| s.p_type == PT_PHDR) {
        (s.p_offset, s.p_vaddr, s.p_paddr, s.p_filesz, s.p_memsz) =
            (table_offset, table_address, table_address, table_len, table_len);
    }
    segments.push(ProgramHeader {
        p_type: PT_LOAD,
        p_flags: PF_R,
        p_offset: blob_offset,
        p_vaddr: blob_address,
        p_paddr: blob_address,
        p_filesz: segment_len,
        p_memsz: segment_len,
        p_align: PAGE,
    });
    bytes.resize(table_offset as usize, 0);
    for s in &segments {
        bytes.extend_from_slice(&program_header(s));
    }
    bytes[E_PHOFF..E_PHOFF + 8].copy_from_slice(&table_offset.to_le_bytes());
    bytes[E_PHNUM..E_PHNUM + 2].copy_from_slice(&(segments.len() as u16).to_le_bytes());
    Ok(Packed { bytes, blob_address, blob_offset })
}

/// Packs the root task in the file `root_task` with `blob` and writes the
/// result to `out`.
pub fn write(root_task: &Path, blob: &[u8], out: &Path) -> anyhow::Result<Packed> {
    let elf = std::fs::read(root_task).with_context(|| format!("reading the root task {}", root_task.display()))?;
    let packed = pack(&elf, blob).with_context(|| format!("packing the system image into {}", root_task.display()))?;
    std::fs::write(out, &packed.bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(packed)
}

/// The ELF64 little-endian bytes of `s`.
fn program_header(s: &ProgramHeader) -> [u8; PHDR_SIZE] {
    let mut bytes = [0; PHDR_SIZE];
    bytes[0..4].copy_from_slice(&s.p_type.to_le_bytes());
    bytes[4..8].copy_from_slice(&s.p_flags.to_le_bytes());
    for (i, field) in [s.p_offset, s.p_vaddr, s.p_paddr, s.p_filesz, s.p_memsz, s.p_align].iter().enumerate() {
        bytes[8 + i * 8..16 + i * 8].copy_from_slice(&field.to_le_bytes());
    }
    bytes
}
