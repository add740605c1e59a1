//! A list the `scale` scenario keeps in memory the root task maps for
//! itself as the list grows, page by page, so it holds as many values as
//! the root task's memory allows.

use core::marker::PhantomData;
use core::mem::size_of;
use sel4_launch::allocator::Allocator;
use sel4_launch::vspace::VSpace;
use sel4_layer::abi::{size, ObjectType};
use sel4_layer::CapRights;

const PAGE: u64 = 1 << size::PAGE_BITS;

/// Values of type `T`, one after the other from a fixed address of the
/// root task's VSpace.
pub struct Ledger<T> {
    /// Where the first value is (page aligned).
    base: u64,
    /// Values held.
    len: u64,
    /// Bytes mapped from `base`.
    mapped: u64,
    values: PhantomData<T>,
}

impl<T: Copy> Ledger<T> {
    /// An empty list at `base`, a page-aligned address from which nothing
    /// of the root task's VSpace is mapped, as far as the list grows.
    pub const fn new(base: u64) -> Ledger<T> {
        Ledger { base, len: 0, mapped: 0, values: PhantomData }
    }

    /// Appends `value`, mapping a fresh page into `root` (the root task's
    /// VSpace) when the list reaches the end of those mapped.
    pub fn push(&mut self, alloc: &mut Allocator, root: &mut VSpace, value: T) {
        let at = self.address(self.len);
        while at + size_of::<T>() as u64 > self.base + self.mapped {
            let frame = alloc.retype(ObjectType::SmallPage, 0);
            root.map(alloc, frame, self.base + self.mapped, CapRights::READ_WRITE);
            self.mapped += PAGE;
        }
        // SAFETY: `at` lies in pages mapped read-write above, only this
        // ledger uses them, and it is aligned for `T`: `base` is page
        // aligned and a type's size is a multiple of its alignment.
        unsafe { (at as *mut T).write(value) };
        self.len += 1;
    }

    /// The values, in the order they were pushed.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        // SAFETY: every value below `len` was written by `push`, in pages
        // that stay mapped.
        (0..self.len).map(|i| unsafe { (self.address(i) as *const T).read() })
    }

    /// Values held.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Forgets every value from the `keep`-th on (their pages stay mapped
    /// for the list to grow into again).
    pub fn truncate(&mut self, keep: u64) {
        self.len = self.len.min(keep);
    }

    /// Where value `i` is.
    fn address(&self, i: u64) -> u64 {
        self.base + i * size_of::<T>() as u64
    }
}
