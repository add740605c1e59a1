//! The server's heap, where all its records live: a static part in the
//! program's image, then memory the server maps for itself from its
//! untyped memory, 4 KiB frames at the grown part's end from
//! [`HEAP_START`] on ([`HeapGrowth`]; the seL4 backend's `grow_heap` maps
//! them and hands them over through [`HeapMemory`]), so its records are
//! bounded by the memory it was given.
//!
//! The heap grows when a request failed for want of it: every allocation
//! is fallible, so an allocation that found no room fails its request with
//! `OutOfMemory` and changes nothing, and the allocator remembers how much
//! it lacked ([`Heap::take_shortfall`]). [`retrying`] then grows the heap
//! by at least that and runs the request again; a request that failed with
//! no shortfall (frames or slots ran out) is answered at once, as is one
//! for which not one page could be added. Each growth takes memory from the
//! untyped pool, so the retries end.
//!
//! On seL4 (feature `sel4`) the allocator is talc: the static part is its
//! first arena, claimed at the first allocation, and grown memory is one
//! second arena, extended in place as it grows (so one allocation can span
//! growths). A reserve of the static part is held back for the records the
//! growth itself makes (a granule's first batch), and set aside again after
//! each growth.

use memserver_core::layout::PAGE_SIZE;

/// Where the grown part of the heap starts in the server's own VSpace.
pub const HEAP_START: u64 = 0x5000_0000_0000;
/// Where it must end: 16 TiB on, where the zeroing scratch address is.
pub const HEAP_END: u64 = crate::window::SCRATCH_LARGE;
/// The least a growth adds, so that many small shortfalls cost few
/// growths.
const MIN_GROWTH: u64 = 256 << 10;

/// The grown part of the heap: the pages mapped from [`HEAP_START`] on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapGrowth {
    pages: u64,
}

impl HeapGrowth {
    /// Nothing grown.
    pub const fn new() -> HeapGrowth {
        HeapGrowth { pages: 0 }
    }

    /// Where the grown part ends: the next page goes here.
    pub const fn end(&self) -> u64 {
        HEAP_START + self.pages * PAGE_SIZE
    }

    /// The address of the next page, if the heap's addresses have room.
    pub const fn next(&self) -> Option<u64> {
        if self.end() < HEAP_END {
            Some(self.end())
        } else {
            None
        }
    }

    /// Records the next page as mapped.
    pub fn grew(&mut self) {
        self.pages += 1;
    }

    /// Pages mapped.
    pub const fn pages(&self) -> u64 {
        self.pages
    }
}

/// Whether `bytes` bytes from `vaddr` on lie in the heap's grown part's
/// addresses.
pub fn in_heap(vaddr: u64, bytes: u64) -> bool {
    vaddr >= HEAP_START && vaddr.checked_add(bytes).is_some_and(|end| end <= HEAP_END)
}

/// Where the grown heap's memory goes: to the allocator.
pub trait HeapMemory {
    /// Hands `start..end` (in the heap's addresses, mapped read-write,
    /// following what was handed over before) to the allocator.
    fn heap_grown(&mut self, start: u64, end: u64) -> Result<(), memserver_core::error::BackendError>;
    /// Bytes the allocator has handed out and not had back.
    fn heap_in_use(&self) -> u64;
}

/// The allocator's side of growth.
pub trait Heap {
    /// The most an allocation lacked since the last call, if one failed.
    fn take_shortfall(&mut self) -> Option<u64>;
    /// Runs `grow` (a growth of the heap) with the heap's reserve free for
    /// the records the growth makes; whether it grew.
    fn growing(&mut self, grow: impl FnOnce() -> bool) -> bool;
}

/// How much to grow for an allocation that lacked `shortfall` bytes: that
/// much and a page for the allocator's own tags, at least
/// [`MIN_GROWTH`], in whole pages.
pub fn growth(shortfall: u64) -> u64 {
    shortfall.max(MIN_GROWTH).saturating_add(PAGE_SIZE).div_ceil(PAGE_SIZE) * PAGE_SIZE
}

/// Runs `attempt` on `d` and answers what it returns, except when it
/// failed (`out_of_memory`) for want of heap: then the heap grows (`grow`,
/// by [`growth`] of the shortfall) and the attempt runs again, as long as
/// growing succeeds.
pub fn retrying<D, R>(
    d: &mut D,
    heap: &mut impl Heap,
    mut attempt: impl FnMut(&mut D) -> R,
    out_of_memory: impl Fn(&R) -> bool,
    mut grow: impl FnMut(&mut D, u64) -> bool,
) -> R {
    // A shortfall of earlier work (already answered) is not this one's.
    let _ = heap.take_shortfall();
    loop {
        let result = attempt(d);
        let Some(shortfall) = heap.take_shortfall().filter(|_| out_of_memory(&result)) else { return result };
        if !heap.growing(|| grow(d, growth(shortfall))) {
            return result;
        }
    }
}

#[cfg(feature = "sel4")]
pub use allocator::{short, Server};

/// Whether an allocation failed since the last [`Heap::take_shortfall`]:
/// on the host, the heap is the host's and never runs short.
#[cfg(not(feature = "sel4"))]
pub fn short() -> bool {
    false
}

/// talc, with a source that claims the static part and remembers
/// shortfalls, as the program's global allocator.
#[cfg(feature = "sel4")]
mod allocator {
    use super::{Heap, HeapMemory};
    use core::alloc::Layout;
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicUsize, Ordering};
    use memserver_core::error::BackendError;
    use sel4_layer::injecting::Injecting;
    use sel4_layer::kernel::Syscalls;
    use talc::base::binning::Binning;
    use talc::base::Talc;
    use talc::source::Source;
    use talc::TalcLock;

    /// Bytes of the static part: the records of start-up (8 bytes a slot
    /// of the server's CNode at most, and the granules') and a reserve.
    const STATIC_BYTES: usize = 4 << 20;
    /// The reserve held back for a growth's own records: 64 KiB.
    const RESERVE: Layout = Layout::new::<[u64; 8192]>();

    /// The state of the heap beside talc's own.
    #[derive(Debug)]
    pub struct Growable {
        /// The static part, until claimed.
        unclaimed: Option<(*mut u8, usize)>,
        /// The end of the grown arena, once there is one.
        grown_end: Option<NonNull<u8>>,
        /// The reserve, while held back.
        reserve: Option<NonNull<u8>>,
    }

    // SAFETY: its pointers name memory that only the allocator uses, and
    // the allocator's lock serialises every use of them.
    unsafe impl Send for Growable {}

    // SAFETY: `acquire` touches only `talc` (claiming the static part) and
    // the source's own fields; it allocates nothing.
    unsafe impl Source for Growable {
        fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
            if let Some((base, size)) = talc.source.unclaimed.take() {
                // SAFETY: the static part is used by nothing but this
                // allocator, which claims it once, and lives as long as the
                // program.
                return unsafe { talc.claim(base, size) }.map(|_| ()).ok_or(());
            }
            SHORTFALL.fetch_max(layout.size().saturating_add(layout.align()), Ordering::Relaxed);
            Err(())
        }
    }

    /// The server's allocator. An allocation it cannot serve is refused
    /// (allocations are only fallible on the server's side, `try_reserve`,
    /// which turns that into an `OutOfMemory` reply).
    #[global_allocator]
    static HEAP: TalcLock<spin::Mutex<()>, Growable> = TalcLock::new(Growable {
        unclaimed: Some((
            {
                static mut MEMORY: [u8; STATIC_BYTES] = [0; STATIC_BYTES];
                &raw mut MEMORY
            }
            .cast(),
            STATIC_BYTES,
        )),
        grown_end: None,
        reserve: None,
    });

    /// The most an allocation lacked since it was last asked: beside the
    /// allocator's lock, so that asking (before and after every request)
    /// is one instruction.
    static SHORTFALL: AtomicUsize = AtomicUsize::new(0);

    /// The program's heap, as [`retrying`](super::retrying) grows it.
    pub struct Server;

    /// Whether an allocation failed since the last
    /// [`Heap::take_shortfall`].
    pub fn short() -> bool {
        SHORTFALL.load(Ordering::Relaxed) > 0
    }

    impl Heap for Server {
        fn take_shortfall(&mut self) -> Option<u64> {
            let shortfall = SHORTFALL.swap(0, Ordering::Relaxed);
            (shortfall > 0).then_some(shortfall as u64)
        }

        fn growing(&mut self, grow: impl FnOnce() -> bool) -> bool {
            let reserve = HEAP.lock().source.reserve.take();
            if let Some(reserve) = reserve {
                // SAFETY: the reserve was allocated with `RESERVE` below
                // and is used by nothing.
                unsafe { HEAP.lock().deallocate(reserve.as_ptr(), RESERVE) };
            }
            let grew = grow();
            let mut heap = HEAP.lock();
            // SAFETY: `RESERVE` has a nonzero size.
            heap.source.reserve = unsafe { heap.allocate(RESERVE) };
            grew
        }
    }

    impl HeapMemory for Injecting<Syscalls> {
        fn heap_grown(&mut self, start: u64, end: u64) -> Result<(), BackendError> {
            if !super::in_heap(start, end.saturating_sub(start)) {
                return Err(BackendError::Rejected(0));
            }
            let mut heap = HEAP.lock();
            let (start, end) = (start as *mut u8, end as *mut u8);
            // `start..end` lies in the heap's addresses, which no Rust
            // object of the program occupies or refers to (they are outside
            // its image and stack), and the backend mapped frames
            // read-write there for the whole range, following what it
            // handed over before; talc alone uses it from now on.
            heap.source.grown_end = match heap.source.grown_end {
                // SAFETY: see above; `grown_end` is the end talc gave for
                // the grown arena, and `end` follows it.
                Some(grown_end) => Some(unsafe { heap.extend(grown_end, end) }),
                // SAFETY: see above; the first growth is a new arena.
                None => unsafe { heap.claim(start, end as usize - start as usize) },
            };
            Ok(())
        }

        /// talc's count of the bytes its live allocations asked for.
        fn heap_in_use(&self) -> u64 {
            HEAP.lock().counters().allocated_bytes as u64
        }
    }
}

#[cfg(feature = "model")]
impl HeapMemory for sel4_layer::injecting::Injecting<sel4_model::Model> {
    /// The model checks that every page is mapped writable in the server's
    /// own VSpace (a store there would fault otherwise).
    fn heap_grown(&mut self, start: u64, end: u64) -> Result<(), memserver_core::error::BackendError> {
        let model = self.inner_mut();
        use memserver_protocol::bootstrap::{cspace, server_slot};
        let own = model.object_of(cspace::cptr(server_slot::VSPACE));
        let writable = |model: &mut sel4_model::Model, addr| own.is_some_and(|pml4| model.write(pml4, addr).is_some());
        let mut pages = (start..end).step_by(PAGE_SIZE as usize);
        if in_heap(start, end.saturating_sub(start)) && pages.all(|addr| writable(model, addr)) {
            Ok(())
        } else {
            Err(memserver_core::error::BackendError::Rejected(0))
        }
    }

    /// The model's server runs on the host's heap, not counted.
    fn heap_in_use(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// The allocator's shortfall, as the request last left it.
    struct Lacking(Rc<Cell<Option<u64>>>);

    impl Heap for Lacking {
        fn take_shortfall(&mut self) -> Option<u64> {
            self.0.take()
        }

        fn growing(&mut self, grow: impl FnOnce() -> bool) -> bool {
            grow()
        }
    }

    /// A server whose request needs `needs` bytes of heap, and fails
    /// (changing nothing) while it has less, or always when its frames
    /// ran out; its heap grows from `untyped` bytes.
    struct Server {
        needs: u64,
        heap: u64,
        untyped: u64,
        frames_out: bool,
        attempts: u32,
        growths: Vec<u64>,
        lacked: Rc<Cell<Option<u64>>>,
    }

    fn server(needs: u64, untyped: u64) -> (Server, Lacking) {
        let lacked = Rc::new(Cell::new(None));
        let s = Server { needs, heap: 0, untyped, frames_out: false, attempts: 0, growths: Vec::new(), lacked };
        let heap = Lacking(s.lacked.clone());
        (s, heap)
    }

    fn serve(s: &mut Server, heap: &mut Lacking) -> Result<(), ()> {
        let request = |s: &mut Server| {
            s.attempts += 1;
            if s.frames_out {
                Err(())
            } else if s.heap < s.needs {
                s.lacked.set(Some(s.needs - s.heap));
                Err(())
            } else {
                Ok(())
            }
        };
        let grow = |s: &mut Server, bytes: u64| {
            let added = bytes.min(s.untyped);
            (s.untyped, s.heap) = (s.untyped - added, s.heap + added);
            s.growths.push(added);
            added > 0
        };
        retrying(s, heap, request, Result::is_err, grow)
    }

    #[test]
    fn growth_covers_the_shortfall_in_whole_pages() {
        assert_eq!(growth(1), MIN_GROWTH + PAGE_SIZE);
        assert_eq!(growth(10 << 20), (10 << 20) + PAGE_SIZE);
        assert_eq!(growth((10 << 20) + 1), (10 << 20) + 2 * PAGE_SIZE);
    }

    #[test]
    fn a_request_short_of_heap_succeeds_after_one_growth() {
        let (mut s, mut heap) = server(10 << 20, 1 << 30);
        assert_eq!(serve(&mut s, &mut heap), Ok(()));
        assert_eq!((s.attempts, s.growths), (2, vec![growth(10 << 20)]));
        let (mut s, mut heap) = server(100, 1 << 30);
        assert_eq!(serve(&mut s, &mut heap), Ok(()));
        assert_eq!(s.growths, [MIN_GROWTH + PAGE_SIZE]);
    }

    /// Growth goes on while it adds memory, and the request fails once
    /// the untyped memory is gone.
    #[test]
    fn the_heap_grows_as_far_as_the_untyped_memory_goes() {
        let (mut s, mut heap) = server(10 << 20, 3 << 20);
        assert_eq!(serve(&mut s, &mut heap), Err(()));
        assert_eq!((s.attempts, s.growths), (2, vec![3 << 20, 0]));
        assert_eq!(s.heap, 3 << 20);
    }

    /// A request that failed with no allocation short (its frames ran
    /// out) is not retried, even with a shortfall left from earlier.
    #[test]
    fn a_failure_without_a_shortfall_is_answered_at_once() {
        let (mut s, mut heap) = server(0, 1 << 30);
        s.frames_out = true;
        s.lacked.set(Some(4096));
        assert_eq!(serve(&mut s, &mut heap), Err(()));
        assert_eq!((s.attempts, s.growths.len(), s.heap), (1, 0, 0));
    }
}
