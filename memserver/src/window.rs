//! A window in the server's own VSpace where recycled 4 KiB frames stay
//! mapped, so zeroing a frame for reuse costs no invocation after its first
//! reuse (until the frame's granule is reset: its mapping is removed first). Frame index `i` sits at `WINDOW + i * 4 KiB`; the window's page
//! tables are all made at start ([`Window::tables`]), so the server's own
//! memory use does not grow while it serves.

use crate::frame_copies::MAX_FRAMES;
use sel4_layer::abi::size;

/// First address of the window (1 GiB aligned, in the server's own VSpace).
pub const WINDOW: u64 = 0x6000_4000_0000;
/// Frames one window page table covers.
const PER_TABLE: usize = 512;

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
