//! Running out of heap is an error, never an abort: with every allocation
//! refused, the canonical table answers `OutOfMemory` exactly where it must
//! grow, and the failed insert changes nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use memserver_core::layout::{Area, PAGE_SIZE};
use memserver_core::populate::HostTable;
use memserver_core::{Error, RegionAddr};

/// The system allocator, refusing every allocation of a thread while its
/// `REFUSE` is set (the test harness's own threads allocate meanwhile).
struct Refusing;

thread_local! {
    static REFUSE: Cell<bool> = const { Cell::new(false) };
}

fn refusing() -> bool {
    REFUSE.with(Cell::get)
}

// SAFETY: every call is passed on to the system allocator unchanged, or
// refused with a null pointer, which `GlobalAlloc` allows.
unsafe impl GlobalAlloc for Refusing {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if refusing() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if refusing() {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Refusing = Refusing;

fn at(i: u64) -> RegionAddr {
    RegionAddr::new(Area::Vmalloc.start() + i * PAGE_SIZE).expect("in vmalloc")
}

#[test]
fn a_table_that_cannot_grow_answers_out_of_memory_and_stays_as_it_was() {
    const PAGES: u64 = 3000;
    let mut t = HostTable::new(64, 10_000);
    let mut refusals = 0;
    let mut i = 0;
    while i < PAGES {
        REFUSE.with(|r| r.set(true));
        let refused = t.map_small(at(i), i);
        REFUSE.with(|r| r.set(false));
        match refused {
            Ok(_) => i += 1,
            Err(e) => {
                assert_eq!(e, Error::OutOfMemory, "page {i}");
                assert_eq!(t.table().leaf_count() as u64, i, "a refused insert adds nothing");
                assert!(t.table().translate(at(i)).is_none());
                refusals += 1;
                // Allowed to grow, the same insert succeeds.
                assert!(t.map_small(at(i), i).is_ok());
                i += 1;
            }
        }
    }
    // The leaves grow by doubling (4, 8, ... 4096), the entries with each
    // new structure: every growth was refused once.
    assert!(refusals >= 10, "{refusals} refusals");
    assert!((0..PAGES).all(|i| t.table().translate(at(i)).map(|l| l.frame) == Some(i)));
}
