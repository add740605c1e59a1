//! Numbers for the frames clients supply (vmap). Each borrowed frame is
//! the server's copy of the client's capability, and it needs a frame
//! index for the tables the server's own frames use ([`FrameCopies`],
//! indexed densely): borrowed frames number from just above the pool's
//! objects, and a number given back is the next one taken, so the indices
//! stay as dense as the borrowed frames held at once.
//!
//! [`FrameCopies`]: crate::frame_copies::FrameCopies

use alloc::vec::Vec;

/// No memory for the record of one more borrowed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMemory;

/// The numbers of borrowed frames in use.
pub struct Borrowed {
    /// Numbers given back, to take again first.
    free: Vec<u32>,
    /// Numbers ever taken: the next new one.
    issued: u32,
}

impl Borrowed {
    /// None taken yet.
    pub const fn new() -> Borrowed {
        Borrowed { free: Vec::new(), issued: 0 }
    }

    /// A number not in use. The list of free numbers keeps room for every
    /// number issued, so [`Borrowed::give_back`] never needs memory.
    pub fn take(&mut self) -> Result<u32, NoMemory> {
        if let Some(n) = self.free.pop() {
            return Ok(n);
        }
        let n = self.issued;
        let issued = n.checked_add(1).ok_or(NoMemory)?;
        self.free.try_reserve(issued as usize - self.free.len()).map_err(|_| NoMemory)?;
        self.issued = issued;
        Ok(n)
    }

    /// Gives back number `n`, taken from here.
    pub fn give_back(&mut self, n: u32) {
        self.free.push(n);
    }

    /// Numbers in use.
    pub fn in_use(&self) -> u32 {
        self.issued - self.free.len() as u32
    }
}

impl Default for Borrowed {
    fn default() -> Borrowed {
        Borrowed::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_given_back_are_taken_again_before_new_ones() {
        let mut b = Borrowed::new();
        let taken: Vec<u32> = (0..4).map(|_| b.take().unwrap()).collect();
        assert_eq!(taken, [0, 1, 2, 3]);
        b.give_back(2);
        b.give_back(0);
        assert_eq!(b.in_use(), 2);
        assert_eq!([b.take().unwrap(), b.take().unwrap(), b.take().unwrap()], [0, 2, 4]);
        // Room for every issued number stays: giving all back allocates nothing.
        let capacity = b.free.capacity();
        for n in 0..5 {
            b.give_back(n);
        }
        assert_eq!((b.free.capacity(), b.in_use()), (capacity, 0));
    }
}
