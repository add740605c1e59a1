//! The server's one index allocator: slots of `T` addressed by `u32` ids,
//! freed ids reused first, never-used ones handed out in order. It grows
//! with `try_reserve`, so running out of memory is an error the caller
//! turns into an `OutOfMemory` reply, never an abort; a capacity cap makes
//! a fixed limit answer [`ArenaError::Full`]. The canonical table's nodes
//! and leaves, the AVL maps of the allocators and the seL4 backend's
//! CNode slots are arenas. O(1) (growth amortised), no
//! panic.

use alloc::vec::Vec;

/// End of the free list.
const NIL: u32 = u32::MAX;

enum Slot<T> {
    Used(T),
    /// Free; `next` is the next slot of the free list.
    Vacant {
        next: u32,
    },
}

/// Why an insert failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArenaError {
    /// The arena holds as many values as its cap allows.
    Full,
    /// No memory for one more slot.
    OutOfMemory,
}

/// Slots of `T`, at most `cap` of them (below `u32::MAX`).
pub struct Arena<T> {
    slots: Vec<Slot<T>>,
    /// Head of the list of freed slots.
    free: u32,
    used: u32,
    cap: u32,
}

impl<T> Arena<T> {
    /// An empty arena of at most `cap` values; nothing is allocated yet.
    pub const fn new(cap: usize) -> Self {
        let cap = if cap < NIL as usize { cap as u32 } else { NIL - 1 };
        Self { slots: Vec::new(), free: NIL, used: 0, cap }
    }

    /// The value in slot `id`, if in use.
    pub fn get(&self, id: u32) -> Option<&T> {
        match self.slots.get(id as usize) {
            Some(Slot::Used(value)) => Some(value),
            _ => None,
        }
    }

    /// The value in slot `id`, if in use.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        match self.slots.get_mut(id as usize) {
            Some(Slot::Used(value)) => Some(value),
            _ => None,
        }
    }

    /// Stores `value` in a free slot (a freed one first) and gives its id.
    pub fn insert(&mut self, value: T) -> Result<u32, ArenaError> {
        self.reserve(1)?;
        if self.free != NIL {
            let id = self.free;
            let slot = self.slots.get_mut(id as usize).ok_or(ArenaError::Full)?;
            let Slot::Vacant { next } = *slot else { return Err(ArenaError::Full) };
            *slot = Slot::Used(value);
            self.free = next;
            self.used += 1;
            return Ok(id);
        }
        let id = u32::try_from(self.slots.len()).map_err(|_| ArenaError::Full)?;
        push_reserved(&mut self.slots, Slot::Used(value)).map_err(|_| ArenaError::OutOfMemory)?;
        self.used += 1;
        Ok(id)
    }

    /// Makes sure the next `n` inserts succeed: within the cap, and with
    /// the memory for them allocated now. On error nothing has changed.
    pub fn reserve(&mut self, n: usize) -> Result<(), ArenaError> {
        let n = u32::try_from(n).map_err(|_| ArenaError::Full)?;
        if self.used.checked_add(n).is_none_or(|total| total > self.cap) {
            return Err(ArenaError::Full);
        }
        // Freed slots are taken first; the rest are new ones.
        let freed = self.slots.len() - self.used as usize;
        let new = (n as usize).saturating_sub(freed);
        self.slots.try_reserve(new).map_err(|_| ArenaError::OutOfMemory)
    }

    /// Stores `n` values made by `value` in `n` consecutive never-used
    /// slots and gives the first id (freed slots are not consecutive).
    /// Within the cap counted in ids: every id stays below it.
    pub fn insert_run(&mut self, n: u32, mut value: impl FnMut() -> T) -> Result<u32, ArenaError> {
        let first = u32::try_from(self.slots.len()).map_err(|_| ArenaError::Full)?;
        if first.checked_add(n).is_none_or(|end| end > self.cap) || self.used + n > self.cap {
            return Err(ArenaError::Full);
        }
        self.slots.try_reserve(n as usize).map_err(|_| ArenaError::OutOfMemory)?;
        for _ in 0..n {
            if push_reserved(&mut self.slots, Slot::Used(value())).is_err() {
                return Err(ArenaError::OutOfMemory);
            }
        }
        self.used += n;
        Ok(first)
    }

    /// Takes the value out of slot `id`, freeing the slot.
    pub fn remove(&mut self, id: u32) -> Option<T> {
        let slot = self.slots.get_mut(id as usize)?;
        if !matches!(slot, Slot::Used(_)) {
            return None;
        }
        let Slot::Used(value) = core::mem::replace(slot, Slot::Vacant { next: self.free }) else { return None };
        self.free = id;
        self.used -= 1;
        Some(value)
    }

    /// Values that can still be stored before the cap.
    pub fn available(&self) -> usize {
        (self.cap - self.used) as usize
    }

    /// Slots in use.
    pub fn len(&self) -> usize {
        self.used as usize
    }

    /// Whether no slot is in use.
    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Every slot id ever handed out, in order (used or freed since).
    pub fn ids(&self) -> core::ops::Range<u32> {
        0..self.slots.len() as u32
    }
}

/// Appends `value` to room reserved before (`try_reserve`); gives it back
/// if there is none. The check lets the compiler drop `push`'s growth path,
/// whose allocation failure would abort.
pub(crate) fn push_reserved<T>(vec: &mut Vec<T>, value: T) -> Result<(), T> {
    if vec.len() < vec.capacity() {
        vec.push(value);
        Ok(())
    } else {
        Err(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_fresh_slots_in_order_and_reuses_freed_ones_first() {
        let mut a: Arena<char> = Arena::new(4);
        let ids = ['r', 'a', 'b', 'c'].map(|c| a.insert(c));
        assert_eq!(ids, [Ok(0), Ok(1), Ok(2), Ok(3)]);
        assert_eq!(a.insert('d'), Err(ArenaError::Full), "the cap answers");
        assert_eq!((a.remove(2), a.remove(2), a.available()), (Some('b'), None, 1));
        assert_eq!(a.remove(1), Some('a'));
        assert_eq!([a.insert('e'), a.insert('f'), a.insert('g')], [Ok(1), Ok(2), Err(ArenaError::Full)]);
        assert_eq!((a.get(0), a.get(2), a.len()), (Some(&'r'), Some(&'f'), 4));
        assert_eq!(a.ids().map(|id| a.get(id).copied()).collect::<Vec<_>>(), ['r', 'e', 'f', 'c'].map(Some));
    }

    #[test]
    fn a_failed_reservation_changes_nothing() {
        let mut a: Arena<u64> = Arena::new(usize::MAX);
        assert_eq!(a.reserve(usize::MAX), Err(ArenaError::Full));
        assert_eq!(a.reserve(1 << 40), Err(ArenaError::Full), "ids are u32");
        assert!(a.is_empty() && a.ids().next().is_none());
        assert_eq!((a.reserve(3), a.insert(5), a.insert(6)), (Ok(()), Ok(0), Ok(1)));
    }

    #[test]
    fn a_reservation_counts_freed_slots_and_the_cap() {
        let mut a: Arena<u8> = Arena::new(3);
        assert_eq!([a.insert(1), a.insert(2)], [Ok(0), Ok(1)]);
        assert_eq!(a.remove(0), Some(1));
        assert_eq!((a.reserve(2), a.reserve(3)), (Ok(()), Err(ArenaError::Full)));
        assert_eq!([a.insert(3), a.insert(4), a.insert(5)], [Ok(0), Ok(2), Err(ArenaError::Full)]);
    }

    #[test]
    fn a_run_is_never_used_consecutive_ids_within_the_cap() {
        let mut a: Arena<u8> = Arena::new(8);
        assert_eq!([a.insert(1), a.insert(2)], [Ok(0), Ok(1)]);
        assert_eq!(a.remove(0), Some(1));
        assert_eq!(a.insert_run(3, || 7), Ok(2), "the freed id 0 is not part of a run");
        assert_eq!((a.get(2), a.get(4), a.len()), (Some(&7), Some(&7), 4));
        assert_eq!(a.insert_run(4, || 9), Err(ArenaError::Full), "ids 5..9 pass the cap");
        assert_eq!(a.len(), 4, "a refused run changes nothing");
        assert_eq!([a.insert(3), a.insert_run(3, || 0)], [Ok(0), Ok(5)]);
        assert_eq!(a.available(), 0);
    }
}
