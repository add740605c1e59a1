//! The paging structures the server made in its own VSpace, under its
//! private addresses (the zeroing window, the large scratch address and
//! the heap): each is made when a page there first needs it, and kept. The
//! record is a sorted list of their keys (8 bytes a structure), grown with
//! `try_reserve` before the structure is made.

use alloc::vec::Vec;
use memserver_core::layout::{Level, PageSize};

/// No memory for the record of one more structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMemory;

/// A structure's key: its base address (aligned to its span, at least
/// 2 MiB) with its level in the low bits.
fn key(level: Level, base: u64) -> u64 {
    base | level as u64
}

/// The levels a page of `size` is mapped under, from the top down.
fn levels(size: PageSize) -> &'static [Level] {
    let above = Level::Pml4 as usize - size.leaf_level() as usize;
    Level::CREATED_TOP_DOWN.get(..above).unwrap_or(&[])
}

/// Which structures of the server's own VSpace the server made.
#[derive(Default)]
pub struct OwnVSpace {
    made: Vec<u64>,
}

impl OwnVSpace {
    /// None made.
    pub const fn new() -> OwnVSpace {
        OwnVSpace { made: Vec::new() }
    }

    /// The structures a page of `size` at `addr` needs that are not made
    /// yet, with the address each is mapped at, from the top down.
    pub fn missing(&self, addr: u64, size: PageSize) -> impl Iterator<Item = (Level, u64)> + '_ {
        let needed = levels(size).iter().map(move |&level| (level, addr & !(level.span() - 1)));
        needed.filter(|&(level, base)| self.made.binary_search(&key(level, base)).is_err())
    }

    /// Makes room to record one more structure.
    pub fn reserve(&mut self) -> Result<(), NoMemory> {
        self.made.try_reserve(1).map_err(|_| NoMemory)
    }

    /// Records the structure of `level` at `base` as made, in the room
    /// [`OwnVSpace::reserve`] made.
    pub fn made(&mut self, level: Level, base: u64) {
        let k = key(level, base);
        if let Err(at) = self.made.binary_search(&k) {
            if self.made.len() < self.made.capacity() {
                self.made.insert(at, k);
            }
        }
    }

    /// How many structures were made.
    pub fn count(&self) -> usize {
        self.made.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn make_for(own: &mut OwnVSpace, addr: u64, size: PageSize) -> Vec<(Level, u64)> {
        let missing: Vec<_> = own.missing(addr, size).collect();
        for &(level, base) in &missing {
            own.reserve().unwrap();
            own.made(level, base);
        }
        missing
    }

    #[test]
    fn a_page_needs_only_the_structures_not_made_before_it() {
        let mut own = OwnVSpace::new();
        let base = 0x6000_0000_0000;
        assert_eq!(
            make_for(&mut own, base + GIB + 0x3000, PageSize::Small),
            [(Level::Pdpt, base), (Level::Pd, base + GIB), (Level::Pt, base + GIB)]
        );
        assert_eq!(make_for(&mut own, base + GIB + 0x1f_f000, PageSize::Small), []);
        assert_eq!(make_for(&mut own, base + GIB + 0x20_0000, PageSize::Small), [(Level::Pt, base + GIB + 0x20_0000)]);
        assert_eq!(make_for(&mut own, base, PageSize::Large), [(Level::Pd, base)]);
        assert_eq!(make_for(&mut own, base + 512 * GIB, PageSize::Large).len(), 2);
        assert_eq!(own.count(), 7);
    }
}
