//! The frame capability copies the server holds in each space. A frame
//! mapped in a space is mapped through a copy of its capability (seL4 maps
//! a capability at one place only). The server keeps one copy per frame
//! per space even after unmapping, so a recycled frame is mapped again
//! with a single Page Map and no CNode Copy. A frame mapped at a second
//! address of the same space (a shared vmemmap tail frame) uses extra
//! copies, deleted when unmapped. Kept copies that are not mapped only
//! save a CNode Copy; when the server runs out of slots they are given up
//! ([`FrameCopies::drop_unmapped`]).
//!
//! The frame's original capability serves as one space's kept copy while
//! the server does not need it itself (it maps the original to zero a
//! recycled frame: [`FrameCopies::take_original`]), which saves one copy
//! per frame. It is never deleted here: it stays the server's.
//!
//! Pure bookkeeping, so it is built and tested on the host too; the seL4
//! backend (`sel4::backend`) makes the invocations.

use sel4_layer::abi::CPtr;

/// Spaces whose copies the table holds.
const MAX_SPACES: usize = 32;

/// Frames the server can hold at once (in use, spare or fresh).
pub const MAX_FRAMES: usize = 32768;
/// Extra copies (second and further mappings of a frame in one space).
const MAX_EXTRA: usize = 1 << 14;
/// Marks a kept copy that is mapped.
const MAPPED: u32 = 1 << 31;
/// Marks a kept "copy" that is the frame's original capability.
const ORIGINAL: u32 = 1 << 30;
/// The slot of an entry.
const SLOT: u32 = !(MAPPED | ORIGINAL);

/// How to map a frame in a space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyFor {
    /// Map the kept copy, which is unmapped.
    Reuse(CPtr),
    /// Map the original capability, and keep it for this space.
    Original(CPtr),
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
    /// `kept[frame][space]`: slot of the kept copy (`MAPPED` while mapped,
    /// `ORIGINAL` if it is the original), 0 for none.
    kept: [[u32; MAX_SPACES]; MAX_FRAMES],
    /// Kept copies that are not mapped (originals not counted).
    unmapped_kept: u64,
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
        FrameCopies { kept: [[0; MAX_SPACES]; MAX_FRAMES], unmapped_kept: 0, extra: heapless::FnvIndexMap::new() }
    }

    fn entry(&self, frame: u32, space: usize) -> Option<u32> {
        self.kept.get(frame as usize)?.get(space).copied()
    }

    /// Sets the kept entry of `frame` in `space` (if there is one), keeping
    /// the count of unmapped kept copies.
    fn set(&mut self, frame: u32, space: usize, value: u32) {
        let Some(e) = self.kept.get_mut(frame as usize).and_then(|row| row.get_mut(space)) else { return };
        let counted = |e: u32| u64::from(e != 0 && e & (MAPPED | ORIGINAL) == 0);
        self.unmapped_kept = self.unmapped_kept + counted(value) - counted(*e);
        *e = value;
    }

    /// How to map `frame` in `space`; `original` is the frame's original
    /// capability if the server does not need it itself.
    pub fn plan(&mut self, frame: u32, space: usize, original: Option<CPtr>) -> CopyFor {
        let original_free = !self.kept.get(frame as usize).is_some_and(|row| row.iter().any(|e| e & ORIGINAL != 0));
        match self.entry(frame, space) {
            Some(0) => match original {
                Some(cap) if original_free => CopyFor::Original(cap),
                _ => CopyFor::NewKept,
            },
            None => CopyFor::NewKept,
            Some(e) if e & MAPPED != 0 => CopyFor::NewExtra,
            Some(e) => CopyFor::Reuse((e & SLOT) as CPtr),
        }
    }

    /// Records that `frame` is mapped at `addr` in `space` through `copy`,
    /// as `plan` said. False if an extra copy cannot be recorded.
    pub fn mapped(&mut self, frame: u32, space: usize, addr: u64, copy: CPtr, how: CopyFor) -> bool {
        match how {
            CopyFor::Reuse(_) | CopyFor::NewKept | CopyFor::Original(_) => match self.entry(frame, space) {
                Some(e) => {
                    let original = if matches!(how, CopyFor::Original(_)) { ORIGINAL } else { e & ORIGINAL };
                    self.set(frame, space, copy as u32 | MAPPED | original);
                    true
                }
                None => false,
            },
            CopyFor::NewExtra => self.extra.insert((space as u8, addr), (copy as u32, frame)).is_ok(),
        }
    }

    /// Records `copy` as the kept, unmapped copy of `frame` in `space`.
    pub fn keep_unmapped(&mut self, frame: u32, space: usize, copy: CPtr) {
        self.set(frame, space, copy as u32);
    }

    /// Kept copies not mapped now: slots held for reuse.
    pub fn kept_unmapped(&self) -> u64 {
        self.unmapped_kept
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
        let e = self.entry(frame, space).filter(|e| e & MAPPED != 0)?;
        self.set(frame, space, e & !MAPPED);
        Some(Unmapped::Kept((e & SLOT) as CPtr))
    }

    /// Records every mapping of `frame` as unmapped, calling `unmapped`
    /// with how each copy is to be disposed of.
    pub fn unmap_all(&mut self, frame: u32, mut unmapped: impl FnMut(Unmapped)) {
        for space in 0..MAX_SPACES {
            if let Some(e) = self.entry(frame, space).filter(|e| e & MAPPED != 0) {
                self.set(frame, space, e & !MAPPED);
                unmapped(Unmapped::Kept((e & SLOT) as CPtr));
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

    /// The original capability of `frame`, kept for a space and unmapped,
    /// is the server's again (to be mapped in its own VSpace).
    pub fn take_original(&mut self, frame: u32) {
        for space in 0..MAX_SPACES {
            if self.entry(frame, space).is_some_and(|e| e & ORIGINAL != 0) {
                self.set(frame, space, 0);
            }
        }
    }

    /// Forgets the kept copies of `frame`, which is mapped nowhere and
    /// whose capabilities the caller deleted (with its untyped's revoke),
    /// calling `freed` with each copy's slot (not the original's).
    pub fn forget_frame(&mut self, frame: u32, mut freed: impl FnMut(CPtr)) {
        for space in 0..MAX_SPACES {
            match self.entry(frame, space) {
                Some(0) | None => {}
                Some(e) => {
                    if e & ORIGINAL == 0 {
                        freed((e & SLOT) as CPtr);
                    }
                    self.set(frame, space, 0);
                }
            }
        }
    }

    /// Gives up to `max` kept copies that are not mapped (never an
    /// original), calling `delete` with each copy's slot; returns how many.
    pub fn drop_unmapped(&mut self, max: usize, mut delete: impl FnMut(CPtr)) -> usize {
        let mut dropped = 0;
        for e in self.kept.iter_mut().flatten().filter(|e| **e != 0 && **e & (MAPPED | ORIGINAL) == 0).take(max) {
            delete(*e as CPtr);
            *e = 0;
            dropped += 1;
        }
        self.unmapped_kept -= dropped as u64;
        dropped
    }

    /// Forgets every copy in `space` (for an unregistered space), calling
    /// `delete` with each copy's slot (not an original's).
    pub fn forget_space(&mut self, space: usize, mut delete: impl FnMut(CPtr)) {
        for frame in 0..MAX_FRAMES as u32 {
            if let Some(e) = self.entry(frame, space).filter(|e| *e != 0) {
                if e & ORIGINAL == 0 {
                    delete((e & SLOT) as CPtr);
                }
                self.set(frame, space, 0);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn copies() -> Box<FrameCopies> {
        Box::new(FrameCopies::new())
    }

    /// Maps `frame` at 0x1000 in `spaces` spaces through new kept copies
    /// in slots from `first_slot` on.
    fn kept_in(c: &mut FrameCopies, frame: u32, spaces: usize, first_slot: u64) {
        for space in 0..spaces {
            c.mapped(frame, space, 0x1000, first_slot + space as u64, CopyFor::NewKept);
        }
    }

    /// The unmapped kept copies of frames `0..frames`, counted one by one.
    fn scanned(c: &FrameCopies, frames: usize) -> u64 {
        c.kept.iter().take(frames).flatten().filter(|e| **e != 0 && **e & (MAPPED | ORIGINAL) == 0).count() as u64
    }

    #[test]
    fn a_kept_copy_is_reused_and_a_second_address_gets_an_extra() {
        let mut c = copies();
        assert_eq!(c.plan(7, 2, None), CopyFor::NewKept);
        assert!(c.mapped(7, 2, 0x1000, 100, CopyFor::NewKept));
        assert_eq!(c.plan(7, 2, None), CopyFor::NewExtra);
        assert!(c.mapped(7, 2, 0x5000, 101, CopyFor::NewExtra));
        assert_eq!(c.unmapped(7, 2, 0x5000), Some(Unmapped::Extra(101)));
        assert_eq!(c.unmapped(7, 2, 0x1000), Some(Unmapped::Kept(100)));
        assert_eq!(c.unmapped(7, 2, 0x1000), None);
        assert_eq!(c.plan(7, 2, None), CopyFor::Reuse(100));
        assert_eq!(c.kept_unmapped(), 1);
    }

    #[test]
    fn unmap_all_reports_every_mapping_once() {
        let mut c = copies();
        kept_in(&mut c, 4, 3, 10);
        c.mapped(4, 1, 0x2000, 20, CopyFor::NewExtra);
        let mut seen = Vec::new();
        c.unmap_all(4, |u| seen.push(u));
        seen.sort_by_key(|u| match u {
            Unmapped::Kept(s) | Unmapped::Extra(s) => *s,
        });
        assert_eq!(seen, [Unmapped::Kept(10), Unmapped::Kept(11), Unmapped::Kept(12), Unmapped::Extra(20)]);
        c.unmap_all(4, |u| panic!("{u:?} reported twice"));
        assert_eq!(c.kept_unmapped(), 3);
    }

    #[test]
    fn only_unmapped_kept_copies_are_dropped_and_at_most_max() {
        let mut c = copies();
        c.mapped(1, 0, 0x1000, 50, CopyFor::NewKept);
        for frame in 2..6 {
            c.keep_unmapped(frame, 0, 60 + frame as u64);
        }
        let mut deleted = Vec::new();
        assert_eq!(c.drop_unmapped(3, |s| deleted.push(s)), 3);
        assert_eq!(deleted, [62, 63, 64]);
        assert_eq!(c.drop_unmapped(10, |s| deleted.push(s)), 1);
        assert_eq!(c.drop_unmapped(10, |s| deleted.push(s)), 0);
        assert_eq!(c.plan(1, 0, None), CopyFor::NewExtra, "the mapped copy stays");
        assert_eq!(c.plan(3, 0, None), CopyFor::NewKept, "a dropped copy is made again");
    }

    #[test]
    fn forgetting_a_space_deletes_its_copies_only() {
        let mut c = copies();
        c.mapped(9, 0, 0x1000, 70, CopyFor::NewKept);
        c.mapped(9, 1, 0x1000, 71, CopyFor::NewKept);
        c.mapped(9, 1, 0x3000, 72, CopyFor::NewExtra);
        let mut deleted = Vec::new();
        c.forget_space(1, |s| deleted.push(s));
        deleted.sort();
        assert_eq!(deleted, [71, 72]);
        assert_eq!(c.plan(9, 0, None), CopyFor::NewExtra);
        assert_eq!(c.plan(9, 1, None), CopyFor::NewKept);
    }

    #[test]
    fn the_original_serves_one_space_until_the_server_takes_it_back() {
        let mut c = copies();
        assert_eq!(c.plan(5, 0, Some(900)), CopyFor::Original(900));
        c.mapped(5, 0, 0x1000, 900, CopyFor::Original(900));
        assert_eq!(c.plan(5, 1, Some(900)), CopyFor::NewKept, "the original maps once");
        c.mapped(5, 1, 0x1000, 30, CopyFor::NewKept);
        let mut seen = Vec::new();
        c.unmap_all(5, |u| seen.push(u));
        seen.sort_by_key(|u| match u {
            Unmapped::Kept(s) | Unmapped::Extra(s) => *s,
        });
        assert_eq!(seen, [Unmapped::Kept(30), Unmapped::Kept(900)]);
        assert_eq!(c.kept_unmapped(), 1, "the original is no spare copy");
        assert_eq!(c.drop_unmapped(10, |s| assert_ne!(s, 900)), 1);
        assert_eq!(c.plan(5, 0, Some(900)), CopyFor::Reuse(900));
        c.take_original(5);
        assert_eq!(c.plan(5, 0, None), CopyFor::NewKept);
        c.mapped(5, 2, 0x1000, 900, CopyFor::Original(900));
        c.unmap_all(5, |_| {});
        c.forget_space(2, |s| panic!("deleted {s}: the original is the server's"));
        c.mapped(5, 3, 0x1000, 900, CopyFor::Original(900));
        c.unmap_all(5, |_| {});
        c.forget_frame(5, |s| panic!("freed {s}: the original is the server's"));
    }

    #[test]
    fn forgetting_a_frame_frees_its_kept_copies_and_nothing_else() {
        let mut c = copies();
        kept_in(&mut c, 3, 4, 40);
        c.mapped(2, 0, 0x2000, 50, CopyFor::NewKept);
        c.unmap_all(3, |_| {});
        let mut freed = Vec::new();
        c.forget_frame(3, |s| freed.push(s));
        assert_eq!(freed, [40, 41, 42, 43]);
        assert_eq!(c.plan(3, 0, None), CopyFor::NewKept, "a new frame of that index starts with no copy");
        assert_eq!(c.plan(2, 0, None), CopyFor::NewExtra, "another frame keeps its copy");
        assert_eq!(c.kept_unmapped(), 0);
    }

    /// The count of unmapped kept copies (a statistic the server reports)
    /// follows every change, over a long mixed sequence.
    #[test]
    fn the_unmapped_count_follows_every_change() {
        let mut c = copies();
        let mut next_slot = 100;
        for step in 0u64..4000 {
            let (frame, space) = ((step * 7 % 13) as u32, (step * 5 % 6) as usize);
            let addr = 0x1000 * (step % 3);
            match step % 9 {
                0..=3 => {
                    let original = (step % 2 == 0).then_some(7000 + frame as u64);
                    let plan = c.plan(frame, space, original);
                    let copy = match plan {
                        CopyFor::Reuse(copy) | CopyFor::Original(copy) => copy,
                        CopyFor::NewKept | CopyFor::NewExtra => {
                            next_slot += 1;
                            next_slot
                        }
                    };
                    if step % 4 == 0 && plan == CopyFor::NewKept {
                        c.keep_unmapped(frame, space, copy);
                    } else {
                        c.mapped(frame, space, addr, copy, plan);
                    }
                }
                4 | 5 => drop(c.unmapped(frame, space, addr)),
                6 => c.unmap_all(frame, |_| {}),
                7 => match step % 4 {
                    0 => c.take_original(frame),
                    1 => drop(c.drop_unmapped(2, |_| {})),
                    2 => c.forget_space(space, |_| {}),
                    _ => {
                        c.unmap_all(frame, |_| {});
                        c.forget_frame(frame, |_| {});
                    }
                },
                _ => {}
            }
            assert_eq!(c.kept_unmapped(), scanned(&c, 13), "step {step}");
        }
    }
}
