//! The server's private addresses for zeroing recycled frames: a window in
//! its own VSpace where recycled 4 KiB frames stay mapped, so zeroing a
//! frame for reuse costs no invocation after its first reuse (until the
//! frame's granule is reset: its mapping is removed first), and one scratch
//! address where a recycled 2 MiB frame is mapped while it is zeroed.
//! Frame index `i` sits at `WINDOW + i * 4 KiB`; the window's page tables
//! are all made at start ([`Window::tables`]), so the server's own memory
//! use does not grow while it serves.

use crate::granules::MAX_FRAMES;
use sel4_layer::abi::size;

/// First address of the window (1 GiB aligned, in the server's own VSpace).
pub const WINDOW: u64 = 0x6000_4000_0000;
/// Where the server maps a recycled 2 MiB frame to zero it.
pub const SCRATCH_LARGE: u64 = 0x6000_0000_0000;
/// Frames one window page table covers.
const PER_TABLE: usize = 512;
/// The end of the window.
const WINDOW_END: u64 = WINDOW + ((MAX_FRAMES as u64) << size::PAGE_BITS);
/// The end of the scratch address's frame.
const SCRATCH_END: u64 = SCRATCH_LARGE + (1 << size::LARGE_PAGE_BITS);

const _: () = assert!(SCRATCH_END <= WINDOW, "the scratch frame and the window do not overlap");

/// Whether `bytes` bytes from `vaddr` on lie in the window or in the
/// scratch address's frame.
pub fn private(vaddr: u64, bytes: u64) -> bool {
    let Some(end) = vaddr.checked_add(bytes) else { return false };
    (WINDOW <= vaddr && end <= WINDOW_END) || (SCRATCH_LARGE <= vaddr && end <= SCRATCH_END)
}

/// Which frames the window holds.
pub struct Window {
    frames: [u64; MAX_FRAMES / 64],
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

impl Window {
    /// An empty window.
    pub const fn new() -> Window {
        Window { frames: [0; MAX_FRAMES / 64] }
    }

    /// Where frame `index` is (or would be) in the window.
    pub fn address(index: u32) -> u64 {
        WINDOW + ((index as u64) << size::PAGE_BITS)
    }

    /// Whether frame `index` is mapped in the window.
    pub fn holds(&self, index: u32) -> bool {
        let i = index as usize;
        self.frames.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Records frame `index` as mapped (it stays so until released).
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

    /// The address of each of the window's page tables.
    pub fn tables() -> impl Iterator<Item = u64> {
        (0..MAX_FRAMES.div_ceil(PER_TABLE)).map(|t| Window::address((t * PER_TABLE) as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_the_window_and_the_scratch_frame_only() {
        assert!(private(Window::address(0), 4096));
        assert!(private(Window::address(MAX_FRAMES as u32 - 1), 4096));
        assert!(!private(Window::address(MAX_FRAMES as u32 - 1), 4097));
        assert!(private(SCRATCH_LARGE, 1 << 21));
        assert!(!private(SCRATCH_LARGE + 4096, 1 << 21));
        assert!(!private(SCRATCH_LARGE - 4096, 4096));
        assert!(!private(u64::MAX - 10, 100));
        assert!(!private(0x1000, 4096));
    }
}
