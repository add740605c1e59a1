//! The memory the server's record of frame copies (`FrameCopies`) takes,
//! measured by the allocator: bytes live on the heap after many frames are
//! mapped in one space (bytes per mapped page) and after frames are mapped
//! in 1,024 spaces (bytes per copy). The record is sparse, so both stay
//! flat as the frames and spaces grow: a dense table of frames times spaces
//! took 4 MiB at 32 spaces whatever was mapped.

use memserver::frame_copies::FrameCopies;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting the bytes each thread holds.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

// SAFETY: every call is the system allocator's own, with the same
// arguments; counting touches a thread-local cell only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes this thread holds on the heap.
fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Maps frames `0..frames` in spaces `0..spaces`, as the backend does (the
/// first space maps the original); the bytes the record took.
fn mapped(frames: u32, spaces: usize) -> (FrameCopies, f64) {
    let before = live();
    let mut c = FrameCopies::new();
    let mut slot = 1000;
    for frame in 0..frames {
        for space in 0..spaces {
            let plan = c.plan(frame, space, Some(u64::from(frame))).unwrap();
            slot += 1;
            c.mapped(frame, space, 0x7000_0000_0000 + u64::from(frame) * 4096, slot, plan).unwrap();
        }
    }
    let bytes = (live() - before) as f64;
    (c, bytes)
}

#[test]
fn the_record_of_frame_copies_costs_bytes_in_proportion_to_the_copies() {
    let (_, one_space) = mapped(200_000, 1);
    let per_page = one_space / 200_000.0;
    let (_, many) = mapped(1_000, 1_024);
    let per_copy = many / (1_000.0 * 1_024.0);
    eprintln!("frame copies: {per_page:.1} bytes per page mapped in one space, {per_copy:.1} per copy in 1,024 spaces");
    assert!(per_page <= 48.0, "{per_page} bytes per mapped page");
    assert!(per_copy <= 17.0, "{per_copy} bytes per copy");
    let (_, few) = mapped(1_000, 4);
    let per_copy_few = few / 4_000.0;
    assert!(per_copy_few <= 24.0, "{per_copy_few} bytes per copy in 4 spaces");
}
