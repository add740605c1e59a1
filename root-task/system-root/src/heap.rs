//! The launcher's heap (the decoded description lives there): a static
//! area under `linked_list_allocator`.

use linked_list_allocator::LockedHeap;

/// Bytes of heap: the description of a system of hundreds of programs.
const HEAP_BYTES: usize = 256 << 10;

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

static mut HEAP: [u8; HEAP_BYTES] = [0; HEAP_BYTES];

/// Gives the allocator its area; called once, first thing.
pub fn init() {
    // SAFETY: HEAP is used by nothing but the allocator, and init runs
    // once, before anything allocates; the pointer covers HEAP_BYTES.
    unsafe { ALLOCATOR.lock().init(core::ptr::addr_of_mut!(HEAP).cast(), HEAP_BYTES) };
}
