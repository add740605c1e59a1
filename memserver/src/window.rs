//! The server's private addresses for zeroing recycled frames: a window in
//! its own VSpace where recycled 4 KiB frames stay mapped, so zeroing a
//! frame for reuse costs no invocation after its first reuse (until the
//! frame's granule is reset: its mapping is removed first), and one scratch
//! address where a recycled 2 MiB frame is mapped while it is zeroed.
//! Frame index `i` sits at `WINDOW + i * 4 KiB`; the window's paging
//! structures are made when a frame index first needs one
//! ([`crate::own_vspace`]), and the record of which frames it holds (a bit
//! each) grows with the highest index it held. A third private address,
//! [`SCRATCH_SMALL`], takes a copy of a 4 KiB frame in use (whose original
//! maps in a space) while part of it is zeroed.

use alloc::vec::Vec;
use sel4_layer::abi::size;

/// First address of the window (1 GiB aligned, in the server's own VSpace).
pub const WINDOW: u64 = 0x6000_4000_0000;
/// Where the server maps a recycled 2 MiB frame to zero it.
pub const SCRATCH_LARGE: u64 = 0x6000_0000_0000;
/// The end of the window: the kernel region's start (16 TiB after the
/// scratch address, for frame indices up to 2^32 less 2^18).
const WINDOW_END: u64 = memserver_core::layout::REGION_START;
/// The end of the scratch address's frame.
const SCRATCH_END: u64 = SCRATCH_LARGE + (1 << size::LARGE_PAGE_BITS);
/// Where the server maps a copy of a 4 KiB frame in use to zero part of
/// it: after the large scratch frame.
pub const SCRATCH_SMALL: u64 = SCRATCH_END;
/// The end of that page.
const SCRATCH_SMALL_END: u64 = SCRATCH_SMALL + (1 << size::PAGE_BITS);

const _: () = assert!(SCRATCH_SMALL_END <= WINDOW, "the scratch frames and the window do not overlap");

/// No memory for the record of one more frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMemory;

/// Whether `bytes` bytes from `vaddr` on lie in the window or in one of
/// the scratch addresses' frames.
pub fn private(vaddr: u64, bytes: u64) -> bool {
    let Some(end) = vaddr.checked_add(bytes) else { return false };
    (WINDOW <= vaddr && end <= WINDOW_END)
        || (SCRATCH_LARGE <= vaddr && end <= SCRATCH_END)
        || (SCRATCH_SMALL <= vaddr && end <= SCRATCH_SMALL_END)
}

/// Which frames the window holds: a bit per frame index.
#[derive(Default)]
pub struct Window {
    frames: Vec<u64>,
}

impl Window {
    /// An empty window.
    pub const fn new() -> Window {
        Window { frames: Vec::new() }
    }

    /// Where frame `index` is (or would be) in the window; `None` past its
    /// end.
    pub fn address(index: u32) -> Option<u64> {
        let addr = WINDOW + (u64::from(index) << size::PAGE_BITS);
        (addr < WINDOW_END).then_some(addr)
    }

    /// Whether frame `index` is mapped in the window.
    pub fn holds(&self, index: u32) -> bool {
        let i = index as usize;
        self.frames.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Makes room to record frame `index`.
    pub fn reserve(&mut self, index: u32) -> Result<(), NoMemory> {
        let words = index as usize / 64 + 1;
        if words > self.frames.len() {
            self.frames.try_reserve(words - self.frames.len()).map_err(|_| NoMemory)?;
            self.frames.resize(words, 0);
        }
        Ok(())
    }

    /// Records frame `index` as mapped (it stays so until released), in
    /// the room [`Window::reserve`] made.
    pub fn hold(&mut self, index: u32) {
        let i = index as usize;
        if let Some(w) = self.frames.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    /// Records frame `index` as unmapped (the frame is about to be deleted).
    pub fn release(&mut self, index: u32) {
        let i = index as usize;
        if let Some(w) = self.frames.get_mut(i / 64) {
            *w &= !(1 << (i % 64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_the_window_and_the_scratch_frame_only() {
        let last = Window::address(u32::MAX - (1 << 18)).unwrap();
        assert_eq!(Window::address(u32::MAX - (1 << 18) + 1), None);
        assert!(private(Window::address(0).unwrap(), 4096));
        assert!(private(last, 4096));
        assert!(!private(last, 4097));
        assert!(private(SCRATCH_LARGE, 1 << 21));
        assert!(private(SCRATCH_SMALL, 4096));
        assert!(!private(SCRATCH_SMALL, 4097));
        assert!(!private(SCRATCH_LARGE + 4096, 1 << 21), "across both scratch frames");
        assert!(!private(SCRATCH_LARGE - 4096, 4096));
        assert!(!private(u64::MAX - 10, 100));
        assert!(!private(0x1000, 4096));
    }

    #[test]
    fn the_record_grows_with_the_highest_index_held() {
        let mut w = Window::new();
        let far = 1 << 20;
        assert!(!w.holds(far));
        w.reserve(far).unwrap();
        w.hold(far);
        assert!(w.holds(far) && !w.holds(far - 1));
        w.release(far);
        assert!(!w.holds(far));
        assert_eq!(w.frames.len(), (far as usize) / 64 + 1);
    }
}
