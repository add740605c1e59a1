//! The memory server's memory as untyped pieces: as few as can be, each a
//! power of two of at most 16 MiB (the boot untypeds the launcher retypes
//! them from are not all larger), or of 1 GiB when the memory is a
//! multiple of 1 GiB (each piece a block the server can make a 1 GiB frame
//! of; the guest then needs 1 GiB-aligned memory for them), at most as
//! many as the server takes.

/// The largest piece, in bits: 16 MiB.
pub const MAX_PIECE_BITS: u32 = 24;
/// The piece of a memory that is a multiple of 1 GiB, in bits.
pub const GIB_PIECE_BITS: u32 = 30;
/// The smallest piece, in bits: 2 MiB, the server's large page (the
/// description's memory is a multiple of it).
pub const MIN_PIECE_BITS: u32 = 21;
/// The most untyped capabilities the memory server takes at start.
pub const MAX_PIECES: u64 = 64;

/// `count` pieces of 2^`bits` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pieces {
    /// How many.
    pub count: u64,
    /// The size of each, in bits.
    pub bits: u32,
}

/// The pieces that make `bytes` exactly, or `None` when `bytes` is not a
/// non-zero multiple of 2 MiB or needs more than [`MAX_PIECES`].
pub fn pieces(bytes: u64) -> Option<Pieces> {
    if bytes == 0 {
        return None;
    }
    let bits = match bytes.trailing_zeros() {
        zeros if zeros >= GIB_PIECE_BITS => GIB_PIECE_BITS,
        zeros => zeros.min(MAX_PIECE_BITS),
    };
    if bits < MIN_PIECE_BITS {
        return None;
    }
    let count = bytes >> bits;
    (count <= MAX_PIECES).then_some(Pieces { count, bits })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_multiple_of_2_mib_is_made_exactly_of_the_largest_pieces_that_fit() {
        for mib in (2..1024).step_by(2) {
            let bytes = mib << 20;
            let Some(p) = pieces(bytes) else {
                let bits = bytes.trailing_zeros().min(MAX_PIECE_BITS);
                assert!(mib > 128 && bytes >> bits > MAX_PIECES, "{mib} MiB refused");
                continue;
            };
            assert_eq!(p.count << p.bits, bytes, "{mib} MiB");
            assert!((MIN_PIECE_BITS..=MAX_PIECE_BITS).contains(&p.bits), "{mib} MiB: {p:?}");
            // Larger pieces would not make it exactly, or are not allowed.
            assert!(p.bits == MAX_PIECE_BITS || bytes % (1 << (p.bits + 1)) != 0, "{mib} MiB: {p:?}");
        }
        assert_eq!(pieces(64 << 20), Some(Pieces { count: 4, bits: 24 }), "the demo's grant");
    }

    #[test]
    fn multiples_of_1_gib_are_made_of_1_gib_pieces() {
        for gib in 1..=MAX_PIECES {
            assert_eq!(pieces(gib << 30), Some(Pieces { count: gib, bits: GIB_PIECE_BITS }), "{gib} GiB");
        }
    }

    #[test]
    fn other_amounts_are_refused() {
        for bytes in [0, 4096, 1 << 20, 3 << 20, (2 << 20) + 4096, (1024 << 20) + (16 << 20), 65 << 30] {
            assert_eq!(pieces(bytes), None, "{bytes:#x}");
        }
    }
}
