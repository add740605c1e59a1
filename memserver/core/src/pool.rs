//! Index allocation for the fixed arenas: never-used indices are handed out
//! in order, released ones are reused first. Const-constructible, so a whole
//! server can sit in a `static` with no start-up copy; O(1), no panic.

use heapless::Vec;

/// Indices `first..N` of an arena of `N` slots (`N` <= 65535).
pub(crate) struct IdPool<const N: usize> {
    released: Vec<u16, N>,
    fresh: u16,
}

impl<const N: usize> IdPool<N> {
    const FITS: () = assert!(N < u16::MAX as usize);

    /// A pool whose indices below `first` are reserved by the caller.
    pub(crate) const fn new(first: u16) -> Self {
        let () = Self::FITS;
        Self { released: Vec::new(), fresh: first }
    }

    /// An unused index, if any is left.
    pub(crate) fn alloc(&mut self) -> Option<u16> {
        if let Some(id) = self.released.pop() {
            return Some(id);
        }
        if (self.fresh as usize) < N {
            self.fresh += 1;
            return Some(self.fresh - 1);
        }
        None
    }

    /// Give `id` back (it must have come from [`IdPool::alloc`]).
    pub(crate) fn release(&mut self, id: u16) {
        // Fewer ids are out than the capacity, so this always fits.
        let _ = self.released.push(id);
    }

    /// Indices that can still be handed out.
    pub(crate) fn available(&self) -> usize {
        N - self.fresh as usize + self.released.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_each_index_once_and_reuses_released_ones() {
        let mut p: IdPool<4> = IdPool::new(1);
        assert_eq!([p.alloc(), p.alloc(), p.alloc(), p.alloc()], [Some(1), Some(2), Some(3), None]);
        p.release(2);
        assert_eq!(p.available(), 1);
        assert_eq!(p.alloc(), Some(2));
        assert_eq!(p.available(), 0);
    }
}
