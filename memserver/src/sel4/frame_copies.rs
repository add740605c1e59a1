//! The frame capability copies the server holds in each space. A frame
//! mapped in a space is mapped through a copy of its capability (seL4 maps
//! a capability at one place only). The server keeps one copy per frame
//! per space even after unmapping, so a recycled frame is mapped again
//! with a single Page Map and no CNode Copy. A frame mapped at a second
//! address of the same space (a shared vmemmap tail frame) uses extra
//! copies, deleted when unmapped.

use crate::limits::MAX_SPACES;
use client_lib::sel4::abi::CPtr;

/// Frames the server can hold at once (in use, spare or fresh).
pub const MAX_FRAMES: usize = 32768;
/// Extra copies (second and further mappings of a frame in one space).
const MAX_EXTRA: usize = 1 << 14;
/// Marks a kept copy that is mapped.
const MAPPED: u32 = 1 << 31;

/// How to map a frame in a space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyFor {
    /// Map the kept copy, which is unmapped.
    Reuse(CPtr),
    /// Make a copy and keep it for this space.
    NewKept,
    /// The kept copy is mapped elsewhere: make an extra copy.
    NewExtra,
}

/// How an unmapped copy is disposed of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmapped {
    /// A kept copy: unmap it and keep it.
    Kept(CPtr),
    /// An extra copy: delete it.
    Extra(CPtr),
}

/// Copies by frame index and space.
pub struct FrameCopies {
    /// `kept[frame][space]`: slot of the kept copy (`MAPPED` while mapped),
    /// 0 for none.
    kept: [[u32; MAX_SPACES]; MAX_FRAMES],
    /// (space, address) -> (extra copy, frame index).
    extra: heapless::FnvIndexMap<(u8, u64), (u32, u32), MAX_EXTRA>,
}

impl Default for FrameCopies {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameCopies {
    /// No copies.
    pub const fn new() -> FrameCopies {
        FrameCopies { kept: [[0; MAX_SPACES]; MAX_FRAMES], extra: heapless::FnvIndexMap::new() }
    }

    fn entry(&mut self, frame: u32, space: usize) -> Option<&mut u32> {
        self.kept.get_mut(frame as usize)?.get_mut(space)
    }

    /// How to map `frame` in `space`.
    pub fn plan(&mut self, frame: u32, space: usize) -> CopyFor {
        match self.entry(frame, space).map(|e| *e) {
            Some(0) | None => CopyFor::NewKept,
            Some(e) if e & MAPPED != 0 => CopyFor::NewExtra,
            Some(e) => CopyFor::Reuse(e as CPtr),
        }
    }

    /// Records that `frame` is mapped at `addr` in `space` through `copy`,
    /// as `plan` said. False if an extra copy cannot be recorded.
    pub fn mapped(&mut self, frame: u32, space: usize, addr: u64, copy: CPtr, how: CopyFor) -> bool {
        match how {
            CopyFor::Reuse(_) | CopyFor::NewKept => match self.entry(frame, space) {
                Some(e) => {
                    *e = copy as u32 | MAPPED;
                    true
                }
                None => false,
            },
            CopyFor::NewExtra => self.extra.insert((space as u8, addr), (copy as u32, frame)).is_ok(),
        }
    }

    /// Records `copy` as the kept, unmapped copy of `frame` in `space`.
    pub fn keep_unmapped(&mut self, frame: u32, space: usize, copy: CPtr) {
        if let Some(e) = self.entry(frame, space) {
            *e = copy as u32;
        }
    }

    /// Kept copies not mapped now, among frames `0..frames`: slots held
    /// for reuse.
    pub fn kept_unmapped(&self, frames: u32) -> u64 {
        let rows = self.kept.iter().take(frames as usize);
        rows.flatten().filter(|e| **e != 0 && **e & MAPPED == 0).count() as u64
    }

    /// Whether an extra copy could be recorded now.
    pub fn extra_room(&self) -> bool {
        self.extra.len() < self.extra.capacity()
    }

    /// The copy through which `frame` is mapped at `addr` in `space`, now
    /// recorded as unmapped.
    pub fn unmapped(&mut self, frame: u32, space: usize, addr: u64) -> Option<Unmapped> {
        if let Some((copy, _)) = self.extra.remove(&(space as u8, addr)) {
            return Some(Unmapped::Extra(copy as CPtr));
        }
        let e = self.entry(frame, space)?;
        (*e & MAPPED != 0).then(|| {
            *e &= !MAPPED;
            Unmapped::Kept(*e as CPtr)
        })
    }

    /// Records every mapping of `frame` as unmapped, calling `unmapped`
    /// with how each copy is to be disposed of.
    pub fn unmap_all(&mut self, frame: u32, mut unmapped: impl FnMut(Unmapped)) {
        if let Some(row) = self.kept.get_mut(frame as usize) {
            for e in row.iter_mut().filter(|e| **e & MAPPED != 0) {
                *e &= !MAPPED;
                unmapped(Unmapped::Kept(*e as CPtr));
            }
        }
        self.extra.retain(|_, (copy, f)| {
            let keep = *f != frame;
            if !keep {
                unmapped(Unmapped::Extra(*copy as CPtr));
            }
            keep
        });
    }

    /// Forgets every copy of `frame` (revoked by the caller), calling
    /// `freed` with each copy's slot.
    pub fn forget_frame(&mut self, frame: u32, mut freed: impl FnMut(CPtr)) {
        if let Some(row) = self.kept.get_mut(frame as usize) {
            for e in row.iter_mut().filter(|e| **e != 0) {
                freed((*e & !MAPPED) as CPtr);
                *e = 0;
            }
        }
        self.extra.retain(|_, (copy, f)| {
            let keep = *f != frame;
            if !keep {
                freed(*copy as CPtr);
            }
            keep
        });
    }

    /// Forgets every copy in `space` (for an unregistered space), calling
    /// `delete` with each copy's slot.
    pub fn forget_space(&mut self, space: usize, mut delete: impl FnMut(CPtr)) {
        for row in self.kept.iter_mut() {
            if let Some(e) = row.get_mut(space).filter(|e| **e != 0) {
                delete((*e & !MAPPED) as CPtr);
                *e = 0;
            }
        }
        self.extra.retain(|(s, _), (copy, _)| {
            let keep = *s as usize != space;
            if !keep {
                delete(*copy as CPtr);
            }
            keep
        });
    }
}
