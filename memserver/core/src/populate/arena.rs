//! The canonical table's fixed arenas (nodes, leaves): `N` slots addressed by
//! `u32` ids, so a host table can hold millions of leaves while the server's
//! stays small. Never-used slots are handed out in order, freed ones first,
//! through a free list threaded through the vacant slots themselves (no
//! memory beyond the slots). Const-constructible; O(1); no panic.

/// End of the free list.
const NIL: u32 = u32::MAX;

#[derive(Clone, Copy)]
enum Slot<T> {
    Used(T),
    /// Free; `next` is the next slot of the free list.
    Vacant {
        next: u32,
    },
}

/// `N` slots of `T` (`N` < `u32::MAX`).
pub(super) struct Arena<T, const N: usize> {
    slots: [Slot<T>; N],
    /// Head of the list of freed slots.
    free: u32,
    /// First never-used slot.
    fresh: u32,
    used: u32,
}

impl<T: Copy, const N: usize> Arena<T, N> {
    const FITS: () = assert!(N < NIL as usize);

    /// An arena whose slot 0 holds `first` (the table's root).
    #[allow(clippy::indexing_slicing, reason = "evaluated at compile time for the server's static, N > 0")]
    pub(super) const fn with_first(first: T) -> Self {
        let () = Self::FITS;
        let mut slots = [Slot::Vacant { next: NIL }; N];
        slots[0] = Slot::Used(first);
        Self { slots, free: NIL, fresh: 1, used: 1 }
    }

    /// An empty arena.
    pub(super) const fn new() -> Self {
        let () = Self::FITS;
        Self { slots: [Slot::Vacant { next: NIL }; N], free: NIL, fresh: 0, used: 0 }
    }

    /// Initialise an arena in place, slot by slot, so that one of many
    /// megabytes never passes through the stack.
    ///
    /// # Safety
    /// `this` must be valid for writes and aligned.
    #[cfg(feature = "sim")]
    pub(super) unsafe fn init_empty(this: *mut Self) {
        let () = Self::FITS;
        // SAFETY: the caller hands over writable, aligned memory for a whole
        // arena; each write stays inside it, and every slot is written
        // before the arena is used.
        unsafe {
            let slots = (&raw mut (*this).slots).cast::<Slot<T>>();
            for i in 0..N {
                slots.add(i).write(Slot::Vacant { next: NIL });
            }
            (&raw mut (*this).free).write(NIL);
            (&raw mut (*this).fresh).write(0);
            (&raw mut (*this).used).write(0);
        }
    }

    /// The value in slot `id`, if in use.
    pub(super) fn get(&self, id: u32) -> Option<&T> {
        match self.slots.get(id as usize) {
            Some(Slot::Used(value)) => Some(value),
            _ => None,
        }
    }

    /// The value in slot `id`, if in use.
    pub(super) fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        match self.slots.get_mut(id as usize) {
            Some(Slot::Used(value)) => Some(value),
            _ => None,
        }
    }

    /// Store `value` in a free slot and give its id; `None` when full.
    pub(super) fn insert(&mut self, value: T) -> Option<u32> {
        let id = if self.free != NIL {
            let Some(Slot::Vacant { next }) = self.slots.get(self.free as usize) else { return None };
            core::mem::replace(&mut self.free, *next)
        } else if (self.fresh as usize) < N {
            // Never used, so vacant: no need to read it (a store to memory
            // not yet in the cache, as a first-time fill of a big arena is).
            self.fresh += 1;
            self.fresh - 1
        } else {
            return None;
        };
        *self.slots.get_mut(id as usize)? = Slot::Used(value);
        self.used += 1;
        Some(id)
    }

    /// Take the value out of slot `id`, freeing it.
    pub(super) fn remove(&mut self, id: u32) -> Option<T> {
        let slot = self.slots.get_mut(id as usize)?;
        let Slot::Used(value) = *slot else { return None };
        *slot = Slot::Vacant { next: self.free };
        self.free = id;
        self.used -= 1;
        Some(value)
    }

    /// Slots that can still be filled.
    pub(super) fn available(&self) -> usize {
        N - self.used as usize
    }

    /// Slots in use.
    pub(super) fn len(&self) -> usize {
        self.used as usize
    }

    /// Every slot id, in order.
    pub(super) fn ids() -> impl Iterator<Item = u32> {
        0..N as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_fresh_slots_in_order_and_reuses_freed_ones_first() {
        let mut a: Arena<char, 4> = Arena::with_first('r');
        assert_eq!([a.insert('a'), a.insert('b'), a.insert('c'), a.insert('d')], [Some(1), Some(2), Some(3), None]);
        assert_eq!((a.remove(2), a.remove(2), a.available()), (Some('b'), None, 1));
        assert_eq!(a.remove(1), Some('a'));
        assert_eq!([a.insert('e'), a.insert('f'), a.insert('g')], [Some(1), Some(2), None]);
        assert_eq!((a.get(0), a.get(2), a.len()), (Some(&'r'), Some(&'f'), 4));
    }

    #[test]
    fn in_place_initialisation_gives_an_empty_arena() {
        let mut boxed = Box::<Arena<u64, 3>>::new_uninit();
        // SAFETY: a fresh box is writable and aligned for the arena.
        let mut a = unsafe {
            Arena::init_empty(boxed.as_mut_ptr());
            boxed.assume_init()
        };
        assert_eq!((a.len(), a.available(), a.get(0)), (0, 3, None));
        assert_eq!([a.insert(7), a.insert(8)], [Some(0), Some(1)]);
    }
}
