//! The blob's header and where the blob lies: at the first page boundary
//! at or after the root task's `_end` (the host tool appends it to the root
//! task's image there, as a read-only segment).
//!
//! | bytes  | field                                            |
//! |--------|--------------------------------------------------|
//! | 0..8   | [`MAGIC`]                                        |
//! | 8..16  | total length of the blob, little endian          |
//! | 16..24 | length of the postcard description that follows  |

use crate::DecodeError;
use core::ops::Range;

/// The first bytes of every blob (the last one is the format's version).
pub const MAGIC: [u8; 8] = *b"SEL4SYS1";
/// Bytes of the header; the description starts here.
pub const HEADER_LEN: usize = 24;
/// The page size: the blob starts on a page boundary, and so does every
/// ELF file in it.
pub const PAGE_SIZE: u64 = 4096;

/// The header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Total length of the blob, header included.
    pub total_len: u64,
    /// Length of the postcard-encoded description.
    pub description_len: u64,
}

impl Header {
    /// The header's bytes.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..16].copy_from_slice(&self.total_len.to_le_bytes());
        bytes[16..].copy_from_slice(&self.description_len.to_le_bytes());
        bytes
    }

    /// Reads the header at the start of `bytes`.
    pub fn read(bytes: &[u8]) -> Result<Header, DecodeError> {
        let field = |range: Range<usize>| -> Result<[u8; 8], DecodeError> {
            bytes.get(range).and_then(|b| b.try_into().ok()).ok_or(DecodeError::TooShort { len: bytes.len() })
        };
        if field(0..8)? != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let header = Header {
            total_len: u64::from_le_bytes(field(8..16)?),
            description_len: u64::from_le_bytes(field(16..24)?),
        };
        if header.total_len < HEADER_LEN as u64 {
            return Err(DecodeError::LengthMismatch { header: header.total_len, actual: HEADER_LEN as u64 });
        }
        Ok(header)
    }
}

/// Where the blob of a root task whose image ends at `end` (its `_end`
/// symbol) starts: the first page boundary at or after it. `None` if that
/// is past the address space.
pub fn blob_start(end: u64) -> Option<u64> {
    end.checked_next_multiple_of(PAGE_SIZE)
}

/// The addresses of the blob that starts at `start` (from [`blob_start`]),
/// whose first [`HEADER_LEN`] bytes (or more) the caller gives as
/// `header`: checks the alignment and the magic and reads the length. The
/// caller then builds the blob's slice over the range and [`decode`]s it.
///
/// [`decode`]: crate::decode
pub fn locate(start: u64, header: &[u8]) -> Result<Range<u64>, DecodeError> {
    if !start.is_multiple_of(PAGE_SIZE) {
        return Err(DecodeError::Unaligned { start });
    }
    let total = Header::read(header)?.total_len;
    let end = start.checked_add(total).ok_or(DecodeError::PastAddressSpace { start, len: total })?;
    Ok(start..end)
}
