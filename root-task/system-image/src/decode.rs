//! Reading a blob: the header, the description, and every ELF file's
//! place, checked so that whatever the bytes, the result is an error or a
//! system whose every index (endpoints, CPUs) and ELF slice is in range.

use crate::header::{Header, HEADER_LEN, PAGE_SIZE};
use crate::image::{ElfRef, Part, System, SystemImage};

/// Why a blob does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the header.
    #[error("the system image has {len} bytes, fewer than its header")]
    TooShort {
        /// The bytes there are.
        len: usize,
    },
    /// The header's magic is not [`MAGIC`](crate::header::MAGIC).
    #[error("no system image here (wrong magic)")]
    BadMagic,
    /// The blob does not start on a page boundary.
    #[error("a system image at {start:#x} is not page aligned")]
    Unaligned {
        /// Its start address.
        start: u64,
    },
    /// The blob would end past the address space.
    #[error("a system image of {len} bytes at {start:#x} ends past the address space")]
    PastAddressSpace {
        /// Its start address.
        start: u64,
        /// Its length from the header.
        len: u64,
    },
    /// The header's total length is not the blob's.
    #[error("the header says {header} bytes, the system image has {actual}")]
    LengthMismatch {
        /// The header's length.
        header: u64,
        /// The blob's.
        actual: u64,
    },
    /// The description runs past the blob.
    #[error("the description ({len} bytes) runs past the system image")]
    DescriptionOutOfBounds {
        /// The header's description length.
        len: u64,
    },
    /// The description is not a postcard-encoded system.
    #[error("the description does not decode: {0}")]
    Malformed(postcard::Error),
    /// Bytes are left after the description.
    #[error("{0} bytes follow the description")]
    TrailingBytes(usize),
    /// An ELF file lies outside the blob, over its description, or not at
    /// a page boundary.
    #[error("the ELF file of {part:?} ({len} bytes at offset {offset:#x}) is not a page-aligned part of the files")]
    ElfOutOfBounds {
        /// Whose file.
        part: Part,
        /// Its offset.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// No CPU is booted.
    #[error("the system boots no CPU")]
    NoCpus,
    /// A CPU that is not booted.
    #[error("{part:?} runs on CPU {cpu}, but {cpus} are booted")]
    CpuOutOfRange {
        /// Whose CPU.
        part: Part,
        /// The CPU.
        cpu: u32,
        /// The CPUs booted.
        cpus: u32,
    },
    /// A program's endpoint index past the named endpoints.
    #[error("program {program} holds endpoint {endpoint}, but {endpoints} are named")]
    EndpointOutOfRange {
        /// The program's index.
        program: usize,
        /// The endpoint index.
        endpoint: u32,
        /// The named endpoints.
        endpoints: usize,
    },
}

/// Reads the system image `blob` (the whole blob, as [`crate::locate`]
/// found it), borrowing names and ELF files from it.
pub fn decode(blob: &[u8]) -> Result<SystemImage<'_>, DecodeError> {
    let header = Header::read(blob)?;
    if header.total_len != blob.len() as u64 {
        return Err(DecodeError::LengthMismatch { header: header.total_len, actual: blob.len() as u64 });
    }
    let description_end = usize::try_from(header.description_len).ok().and_then(|len| len.checked_add(HEADER_LEN));
    let description = description_end
        .and_then(|end| blob.get(HEADER_LEN..end))
        .ok_or(DecodeError::DescriptionOutOfBounds { len: header.description_len })?;
    let files_start = HEADER_LEN + description.len();
    let (system, rest): (System<&str, ElfRef>, _) =
        postcard::take_from_bytes(description).map_err(DecodeError::Malformed)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    check_indices(&system)?;
    system.try_map(|name| name, |part, elf| elf_slice(blob, files_start, part, elf))
}

/// The bytes of `elf`, which must lie page aligned in `blob`, after the
/// description (which ends at `files_start`).
fn elf_slice(blob: &[u8], files_start: usize, part: Part, elf: ElfRef) -> Result<&[u8], DecodeError> {
    let out_of_bounds = || DecodeError::ElfOutOfBounds { part, offset: elf.offset, len: elf.len };
    if !elf.offset.is_multiple_of(PAGE_SIZE) {
        return Err(out_of_bounds());
    }
    let start = usize::try_from(elf.offset).map_err(|_| out_of_bounds())?;
    let end = usize::try_from(elf.len).ok().and_then(|len| start.checked_add(len)).ok_or_else(out_of_bounds)?;
    if start < files_start {
        return Err(out_of_bounds());
    }
    blob.get(start..end).ok_or_else(out_of_bounds)
}

/// Checks every CPU and endpoint index of `system`.
pub(crate) fn check_indices<N, E>(system: &System<N, E>) -> Result<(), DecodeError> {
    let cpus = system.cpus;
    if cpus == 0 {
        return Err(DecodeError::NoCpus);
    }
    let check_cpu = |part, cpu| if cpu < cpus { Ok(()) } else { Err(DecodeError::CpuOutOfRange { part, cpu, cpus }) };
    if let Some(server) = &system.memserver {
        check_cpu(Part::MemServer, server.cpu)?;
    }
    for (i, program) in system.programs.iter().enumerate() {
        check_cpu(Part::Program(i), program.cpu)?;
        let endpoints = system.endpoints.len();
        if let Some(&endpoint) = program.endpoints.iter().find(|&&e| e as usize >= endpoints) {
            return Err(DecodeError::EndpointOutOfRange { program: i, endpoint, endpoints });
        }
    }
    Ok(())
}
