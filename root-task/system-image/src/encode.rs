//! Packing a system into a blob (the host side): the header, the
//! description with every ELF file's place, then each distinct ELF file
//! once, at page-aligned offsets.

use crate::decode::{check_indices, DecodeError};
use crate::header::{Header, HEADER_LEN, PAGE_SIZE};
use crate::image::{ElfRef, SystemImage};
use alloc::vec::Vec;
use core::convert::Infallible;

/// Why a system cannot be packed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The system names a CPU that is not booted or an endpoint that is not
    /// named: [`crate::decode`] would refuse the blob.
    #[error("{0}")]
    Invalid(DecodeError),
    /// postcard cannot encode the description.
    #[error("the description does not encode: {0}")]
    Postcard(postcard::Error),
}

/// Packs `image` into a blob that [`crate::decode`] reads back as `image`.
/// Programs whose ELF files have the same bytes share one copy.
pub fn encode(image: &SystemImage<'_>) -> Result<Vec<u8>, EncodeError> {
    check_indices(image).map_err(EncodeError::Invalid)?;
    let mut files: Vec<&[u8]> = Vec::new();
    let indexed = image.as_ref().try_map(
        |&name| name,
        |_, &elf| {
            let index = files.iter().position(|f| *f == elf).unwrap_or_else(|| {
                files.push(elf);
                files.len() - 1
            });
            Ok::<usize, Infallible>(index)
        },
    );
    let Ok(indexed) = indexed;
    // The files start after the description, whose length depends on the
    // offsets it records: grow the start until the description fits.
    let mut files_start = 0;
    loop {
        let offsets = offsets(files_start, &files);
        let elf_ref = |_, i: usize| Ok::<_, Infallible>(ElfRef { offset: offsets[i], len: files[i].len() as u64 });
        let wire = indexed.clone().try_map(|name| name, elf_ref);
        let Ok(wire) = wire;
        let description = postcard::to_allocvec(&wire).map_err(EncodeError::Postcard)?;
        let needed = (HEADER_LEN + description.len()) as u64;
        if needed > files_start {
            files_start = needed.next_multiple_of(PAGE_SIZE);
            continue;
        }
        let total_len = files.last().map_or(needed, |last| offsets[files.len() - 1] + last.len() as u64);
        let mut blob = Vec::with_capacity(total_len as usize);
        blob.extend_from_slice(&Header { total_len, description_len: description.len() as u64 }.to_bytes());
        blob.extend_from_slice(&description);
        for (file, &offset) in files.iter().zip(&offsets) {
            blob.resize(offset as usize, 0);
            blob.extend_from_slice(file);
        }
        return Ok(blob);
    }
}

/// The offsets of `files` laid out from `start` (a page boundary), each
/// on a page boundary.
fn offsets(start: u64, files: &[&[u8]]) -> Vec<u64> {
    let mut next = start;
    files
        .iter()
        .map(|f| {
            let offset = next;
            next = (offset + f.len() as u64).next_multiple_of(PAGE_SIZE);
            offset
        })
        .collect()
}
