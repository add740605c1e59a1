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
//! The records are sparse: per frame index, a sorted list of the copies
//! that frame has (16 bytes each), so memory follows the copies there
//! are, and what concerns one frame (unmapping it everywhere, forgetting
//! it) costs time in proportion to that frame's copies. The lists grow
//! with `try_reserve` in [`FrameCopies::plan`], before the invocations it
//! plans: a record that finds no memory fails the mapping with nothing
//! done.
//!
//! Pure bookkeeping, so it is built and tested on the host too; the seL4
//! backend (`sel4::backend`) makes the invocations.

use alloc::vec::Vec;
use memserver_protocol::bootstrap::SERVER_CNODE_BITS;
use sel4_layer::abi::CPtr;

/// No memory for a copy's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMemory;

// A copy's slot (its CPtr in the server's CSpace) fits a record's `u32`.
const _: () = assert!(2 * SERVER_CNODE_BITS <= 32);

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

/// Marks an extra copy (one that is not the space's kept copy).
const EXTRA: u8 = 1;
/// Marks a copy that is mapped.
const MAPPED: u8 = 2;
/// Marks a kept "copy" that is the frame's original capability.
const ORIGINAL: u8 = 4;

/// A capability of a frame held for one space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    /// The address an extra copy maps; 0 for a kept copy.
    addr: u64,
    /// The capability's slot.
    slot: u32,
    /// The space's index.
    space: u16,
    /// [`EXTRA`], [`MAPPED`] and [`ORIGINAL`].
    marks: u8,
}

/// Where a frame's list is sorted: by space, the kept copy before the
/// extras, extras by address.
type Key = (u16, u8, u64);

const fn kept_key(space: u16) -> Key {
    (space, 0, 0)
}

const fn extra_key(space: u16, addr: u64) -> Key {
    (space, EXTRA, addr)
}

impl Held {
    const fn key(&self) -> Key {
        (self.space, self.marks & EXTRA, self.addr)
    }

    /// A kept copy, neither mapped nor the original: a slot held only for
    /// reuse.
    const fn spare(&self) -> bool {
        self.marks & (EXTRA | MAPPED | ORIGINAL) == 0
    }
}

/// Keeps the count of spare copies as `old` becomes `new`.
fn recount(count: &mut u64, old: Option<&Held>, new: Option<&Held>) {
    let spare = |h: Option<&Held>| u64::from(h.is_some_and(Held::spare));
    *count = *count + spare(new) - spare(old);
}

/// The copies of `frame` in the record's `chunks`, if its chunk exists.
fn entry_mut(chunks: &mut [Vec<Vec<Held>>], frame: u32) -> Option<&mut Vec<Held>> {
    chunks.get_mut(frame as usize / CHUNK)?.get_mut(frame as usize % CHUNK)
}

fn search(list: &[Held], key: Key) -> Result<usize, usize> {
    list.binary_search_by_key(&key, Held::key)
}

/// Frame indices in one chunk of the record: a granule's objects.
const CHUNK: usize = 512;

/// Copies by frame index, each frame's sorted by space. The record is in
/// chunks of [`CHUNK`] frames, each allocated when one of its frames first
/// has a copy, so its memory follows the frames that have copies, not the
/// highest frame index.
#[derive(Default)]
pub struct FrameCopies {
    /// `chunks[frame / CHUNK][frame % CHUNK]`: the copies the frame has.
    chunks: Vec<Vec<Vec<Held>>>,
    /// One bit per frame index: whether the original serves a space.
    originals: Vec<u64>,
    /// Spare copies (kept, not mapped, not originals).
    spare: u64,
    /// The frame index [`FrameCopies::drop_unmapped`] goes on from.
    cursor: usize,
}

impl FrameCopies {
    /// No copies.
    pub const fn new() -> FrameCopies {
        FrameCopies { chunks: Vec::new(), originals: Vec::new(), spare: 0, cursor: 0 }
    }

    fn list(&self, frame: u32) -> &[Held] {
        self.entry(frame).map_or(&[], Vec::as_slice)
    }

    fn entry(&self, frame: u32) -> Option<&Vec<Held>> {
        self.chunks.get(frame as usize / CHUNK)?.get(frame as usize % CHUNK)
    }

    fn kept(&self, frame: u32, space: u16) -> Option<&Held> {
        let list = self.list(frame);
        search(list, kept_key(space)).ok().and_then(|i| list.get(i))
    }

    fn original_held(&self, frame: u32) -> bool {
        let i = frame as usize;
        self.originals.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set_original(&mut self, frame: u32, held: bool) {
        let i = frame as usize;
        if let Some(w) = self.originals.get_mut(i / 64) {
            if held {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }

    /// Makes room for the records of `frame`'s copies once it is mapped in
    /// `spaces` spaces (one a space, kept ones reused); returns how many
    /// new copies that makes: a frame with none maps its original
    /// capability in the first space.
    pub fn reserve_records(&mut self, frame: u32, spaces: usize) -> Result<usize, NoMemory> {
        let held = self.list(frame).len();
        let new = spaces.saturating_sub(held);
        if new > 0 {
            self.reserve(frame)?;
            let list = entry_mut(&mut self.chunks, frame).ok_or(NoMemory)?;
            list.try_reserve_exact(new).map_err(|_| NoMemory)?;
        }
        Ok(new.saturating_sub(usize::from(held == 0)))
    }

    /// Makes room for one more record of `frame`.
    fn reserve(&mut self, frame: u32) -> Result<(), NoMemory> {
        let c = frame as usize / CHUNK;
        if self.chunks.len() <= c {
            self.chunks.try_reserve(c + 1 - self.chunks.len()).map_err(|_| NoMemory)?;
            let words = ((c + 1) * CHUNK / 64).saturating_sub(self.originals.len());
            self.originals.try_reserve(words).map_err(|_| NoMemory)?;
            self.chunks.resize_with(c + 1, Vec::new);
            self.originals.resize((c + 1) * CHUNK / 64, 0);
        }
        let chunk = self.chunks.get_mut(c).ok_or(NoMemory)?;
        if chunk.is_empty() {
            chunk.try_reserve_exact(CHUNK).map_err(|_| NoMemory)?;
            chunk.resize_with(CHUNK, Vec::new);
        }
        let list = entry_mut(&mut self.chunks, frame).ok_or(NoMemory)?;
        if list.len() == list.capacity() {
            // A frame mapped in one space holds a single record.
            let grown = if list.is_empty() { list.try_reserve_exact(1) } else { list.try_reserve(1) };
            grown.map_err(|_| NoMemory)?;
        }
        Ok(())
    }

    /// How to map `frame` in `space`; `original` is the frame's original
    /// capability if the server does not need it itself. The memory to
    /// record what is planned is reserved: `Err` (nothing changed) when
    /// there is none.
    pub fn plan(&mut self, frame: u32, space: usize, original: Option<CPtr>) -> Result<CopyFor, NoMemory> {
        let space = u16::try_from(space).map_err(|_| NoMemory)?;
        let how = match self.kept(frame, space) {
            None => match original {
                Some(cap) if !self.original_held(frame) => CopyFor::Original(cap),
                _ => CopyFor::NewKept,
            },
            Some(held) if held.marks & MAPPED != 0 => CopyFor::NewExtra,
            Some(held) => CopyFor::Reuse(CPtr::from(held.slot)),
        };
        if !matches!(how, CopyFor::Reuse(_)) {
            self.reserve(frame)?;
        }
        Ok(how)
    }

    /// Records `held` for `frame` (replacing the record of its key),
    /// keeping the count of spare copies. A new record takes the room
    /// `plan` reserved, or room reserved now.
    fn record(&mut self, frame: u32, held: Held) -> Result<(), NoMemory> {
        let at = search(self.list(frame), held.key());
        if at.is_err() {
            self.reserve(frame)?;
        }
        let list = entry_mut(&mut self.chunks, frame).ok_or(NoMemory)?;
        match at {
            Ok(i) => {
                let old = list.get_mut(i).ok_or(NoMemory)?;
                recount(&mut self.spare, Some(old), Some(&held));
                *old = held;
            }
            Err(i) => {
                list.insert(i, held);
                recount(&mut self.spare, None, Some(&held));
            }
        }
        Ok(())
    }

    /// Records that `frame` is mapped at `addr` in `space` through `copy`,
    /// as `plan` said (after `plan`, there is room for it: `Ok`).
    pub fn mapped(&mut self, frame: u32, space: usize, addr: u64, copy: CPtr, how: CopyFor) -> Result<(), NoMemory> {
        let space = u16::try_from(space).map_err(|_| NoMemory)?;
        let slot = copy as u32;
        match how {
            CopyFor::NewExtra => self.record(frame, Held { addr, slot, space, marks: EXTRA | MAPPED })?,
            CopyFor::Reuse(_) | CopyFor::NewKept | CopyFor::Original(_) => {
                let original = matches!(how, CopyFor::Original(_))
                    || self.kept(frame, space).is_some_and(|held| held.marks & ORIGINAL != 0);
                let marks = if original { MAPPED | ORIGINAL } else { MAPPED };
                self.record(frame, Held { addr: 0, slot, space, marks })?;
                if original {
                    self.set_original(frame, true);
                }
            }
        }
        Ok(())
    }

    /// Records `copy` as the kept, unmapped copy of `frame` in `space`
    /// (after `plan`, there is room for it: `Ok`).
    pub fn keep_unmapped(&mut self, frame: u32, space: usize, copy: CPtr) -> Result<(), NoMemory> {
        let space = u16::try_from(space).map_err(|_| NoMemory)?;
        if self.kept(frame, space).is_some_and(|held| held.marks & ORIGINAL != 0) {
            self.set_original(frame, false);
        }
        self.record(frame, Held { addr: 0, slot: copy as u32, space, marks: 0 })
    }

    /// Kept copies not mapped now: slots held for reuse.
    pub fn kept_unmapped(&self) -> u64 {
        self.spare
    }

    /// Where in `frame`'s list the copy is through which it is mapped at
    /// `addr` in `space`: an extra copy for that address, else the kept
    /// copy if it is mapped.
    fn mapping_at(&self, frame: u32, space: usize, addr: u64) -> Option<usize> {
        let space = u16::try_from(space).ok()?;
        let list = self.list(frame);
        search(list, extra_key(space, addr)).ok().or_else(|| {
            search(list, kept_key(space)).ok().filter(|&i| list.get(i).is_some_and(|h| h.marks & MAPPED != 0))
        })
    }

    /// The copy through which `frame` is mapped at `addr` in `space`.
    pub fn mapping(&self, frame: u32, space: usize, addr: u64) -> Option<CPtr> {
        let i = self.mapping_at(frame, space, addr)?;
        self.list(frame).get(i).map(|held| CPtr::from(held.slot))
    }

    /// The copy through which `frame` is mapped at `addr` in `space`, now
    /// recorded as unmapped.
    pub fn unmapped(&mut self, frame: u32, space: usize, addr: u64) -> Option<Unmapped> {
        let at = self.mapping_at(frame, space, addr)?;
        let list = entry_mut(&mut self.chunks, frame)?;
        if list.get(at).is_some_and(|held| held.marks & EXTRA != 0) {
            return Some(Unmapped::Extra(CPtr::from(list.remove(at).slot)));
        }
        let held = list.get_mut(at)?;
        let old = *held;
        held.marks &= !MAPPED;
        recount(&mut self.spare, Some(&old), Some(held));
        Some(Unmapped::Kept(CPtr::from(held.slot)))
    }

    /// Records every mapping of `frame` as unmapped, calling `unmapped`
    /// with how each copy is to be disposed of. Its time follows the
    /// frame's copies.
    pub fn unmap_all(&mut self, frame: u32, mut unmapped: impl FnMut(Unmapped)) {
        let Some(list) = entry_mut(&mut self.chunks, frame) else { return };
        let spare = &mut self.spare;
        list.retain_mut(|held| {
            if held.marks & EXTRA != 0 {
                unmapped(Unmapped::Extra(CPtr::from(held.slot)));
                return false;
            }
            if held.marks & MAPPED != 0 {
                let old = *held;
                held.marks &= !MAPPED;
                recount(spare, Some(&old), Some(held));
                unmapped(Unmapped::Kept(CPtr::from(held.slot)));
            }
            true
        });
    }

    /// The original capability of `frame`, kept for a space and unmapped,
    /// is the server's again (to be mapped in its own VSpace).
    pub fn take_original(&mut self, frame: u32) {
        if !self.original_held(frame) {
            return;
        }
        self.set_original(frame, false);
        if let Some(list) = entry_mut(&mut self.chunks, frame) {
            list.retain(|held| held.marks & ORIGINAL == 0);
        }
    }

    /// Forgets the copies of `frame`, which is mapped nowhere, calling
    /// `freed` with each copy's slot (not the original's): the caller
    /// deletes them, or deleted them with its untyped's revoke.
    pub fn forget_frame(&mut self, frame: u32, mut freed: impl FnMut(CPtr)) {
        let Some(list) = entry_mut(&mut self.chunks, frame) else { return };
        for held in core::mem::take(list) {
            recount(&mut self.spare, Some(&held), None);
            if held.marks & ORIGINAL == 0 {
                freed(CPtr::from(held.slot));
            }
        }
        self.set_original(frame, false);
    }

    /// Gives up to `max` kept copies that are not mapped (never an
    /// original), calling `delete` with each copy's slot; returns how many.
    /// Each call goes on from the frame where the last one stopped.
    pub fn drop_unmapped(&mut self, max: usize, mut delete: impl FnMut(CPtr)) -> usize {
        let (frames, start) = (self.chunks.len() * CHUNK, self.cursor);
        let mut dropped = 0;
        for step in 0..frames {
            if dropped == max || self.spare == 0 {
                break;
            }
            let frame = (start + step) % frames;
            let Some(list) = entry_mut(&mut self.chunks, frame as u32) else { continue };
            let spare = &mut self.spare;
            list.retain(|held| {
                if dropped == max || !held.spare() {
                    return true;
                }
                delete(CPtr::from(held.slot));
                recount(spare, Some(held), None);
                dropped += 1;
                false
            });
            self.cursor = frame;
        }
        dropped
    }

    /// Forgets every copy in `space` (for an unregistered space), calling
    /// `delete` with each copy's slot (not an original's).
    pub fn forget_space(&mut self, space: usize, mut delete: impl FnMut(CPtr)) {
        let Ok(space) = u16::try_from(space) else { return };
        let lists = self
            .chunks
            .iter_mut()
            .enumerate()
            .flat_map(|(c, chunk)| chunk.iter_mut().enumerate().map(move |(k, list)| (c * CHUNK + k, list)));
        for (frame, list) in lists {
            let start = list.partition_point(|held| held.space < space);
            let end = start + list.get(start..).map_or(0, |rest| rest.partition_point(|held| held.space == space));
            for held in list.drain(start..end) {
                recount(&mut self.spare, Some(&held), None);
                if held.marks & ORIGINAL == 0 {
                    delete(CPtr::from(held.slot));
                } else if let Some(w) = self.originals.get_mut(frame / 64) {
                    *w &= !(1 << (frame % 64));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Maps `frame` at 0x1000 in `spaces` spaces through new kept copies
    /// in slots from `first_slot` on.
    fn kept_in(c: &mut FrameCopies, frame: u32, spaces: usize, first_slot: u64) {
        for space in 0..spaces {
            c.mapped(frame, space, 0x1000, first_slot + space as u64, CopyFor::NewKept).unwrap();
        }
    }

    /// The spare copies, counted one by one.
    fn scanned(c: &FrameCopies) -> u64 {
        c.chunks.iter().flatten().flatten().filter(|held| held.spare()).count() as u64
    }

    fn sorted(mut seen: Vec<Unmapped>) -> Vec<Unmapped> {
        seen.sort_by_key(|u| match u {
            Unmapped::Kept(s) | Unmapped::Extra(s) => *s,
        });
        seen
    }

    #[test]
    fn a_kept_copy_is_reused_and_a_second_address_gets_an_extra() {
        let mut c = FrameCopies::new();
        assert_eq!(c.plan(7, 2, None), Ok(CopyFor::NewKept));
        c.mapped(7, 2, 0x1000, 100, CopyFor::NewKept).unwrap();
        assert_eq!(c.plan(7, 2, None), Ok(CopyFor::NewExtra));
        c.mapped(7, 2, 0x5000, 101, CopyFor::NewExtra).unwrap();
        assert_eq!(c.unmapped(7, 2, 0x5000), Some(Unmapped::Extra(101)));
        assert_eq!(c.unmapped(7, 2, 0x1000), Some(Unmapped::Kept(100)));
        assert_eq!(c.unmapped(7, 2, 0x1000), None);
        assert_eq!(c.plan(7, 2, None), Ok(CopyFor::Reuse(100)));
        assert_eq!(c.kept_unmapped(), 1);
    }

    #[test]
    fn unmap_all_reports_every_mapping_once() {
        let mut c = FrameCopies::new();
        kept_in(&mut c, 4, 3, 10);
        c.mapped(4, 1, 0x2000, 20, CopyFor::NewExtra).unwrap();
        let mut seen = Vec::new();
        c.unmap_all(4, |u| seen.push(u));
        assert_eq!(sorted(seen), [Unmapped::Kept(10), Unmapped::Kept(11), Unmapped::Kept(12), Unmapped::Extra(20)]);
        c.unmap_all(4, |u| panic!("{u:?} reported twice"));
        assert_eq!(c.kept_unmapped(), 3);
    }

    #[test]
    fn only_unmapped_kept_copies_are_dropped_and_at_most_max() {
        let mut c = FrameCopies::new();
        c.mapped(1, 0, 0x1000, 50, CopyFor::NewKept).unwrap();
        for frame in 2..6 {
            c.keep_unmapped(frame, 0, 60 + frame as u64).unwrap();
        }
        let mut deleted = Vec::new();
        assert_eq!(c.drop_unmapped(3, |s| deleted.push(s)), 3);
        assert_eq!(deleted, [62, 63, 64]);
        assert_eq!(c.drop_unmapped(10, |s| deleted.push(s)), 1);
        assert_eq!(c.drop_unmapped(10, |s| deleted.push(s)), 0);
        assert_eq!(c.plan(1, 0, None), Ok(CopyFor::NewExtra), "the mapped copy stays");
        assert_eq!(c.plan(3, 0, None), Ok(CopyFor::NewKept), "a dropped copy is made again");
    }

    #[test]
    fn forgetting_a_space_deletes_its_copies_only() {
        let mut c = FrameCopies::new();
        c.mapped(9, 0, 0x1000, 70, CopyFor::NewKept).unwrap();
        c.mapped(9, 1, 0x1000, 71, CopyFor::NewKept).unwrap();
        c.mapped(9, 1, 0x3000, 72, CopyFor::NewExtra).unwrap();
        c.mapped(9, 2, 0x1000, 73, CopyFor::NewKept).unwrap();
        let mut deleted = Vec::new();
        c.forget_space(1, |s| deleted.push(s));
        deleted.sort();
        assert_eq!(deleted, [71, 72]);
        assert_eq!(c.plan(9, 0, None), Ok(CopyFor::NewExtra));
        assert_eq!(c.plan(9, 1, None), Ok(CopyFor::NewKept));
        assert_eq!(c.plan(9, 2, None), Ok(CopyFor::NewExtra));
    }

    #[test]
    fn the_original_serves_one_space_until_the_server_takes_it_back() {
        let mut c = FrameCopies::new();
        assert_eq!(c.plan(5, 0, Some(900)), Ok(CopyFor::Original(900)));
        c.mapped(5, 0, 0x1000, 900, CopyFor::Original(900)).unwrap();
        assert_eq!(c.plan(5, 1, Some(900)), Ok(CopyFor::NewKept), "the original maps once");
        c.mapped(5, 1, 0x1000, 30, CopyFor::NewKept).unwrap();
        let mut seen = Vec::new();
        c.unmap_all(5, |u| seen.push(u));
        assert_eq!(sorted(seen), [Unmapped::Kept(30), Unmapped::Kept(900)]);
        assert_eq!(c.kept_unmapped(), 1, "the original is no spare copy");
        assert_eq!(c.drop_unmapped(10, |s| assert_ne!(s, 900)), 1);
        assert_eq!(c.plan(5, 0, Some(900)), Ok(CopyFor::Reuse(900)));
        c.take_original(5);
        assert_eq!(c.plan(5, 0, None), Ok(CopyFor::NewKept));
        c.mapped(5, 2, 0x1000, 900, CopyFor::Original(900)).unwrap();
        c.unmap_all(5, |_| {});
        c.forget_space(2, |s| panic!("deleted {s}: the original is the server's"));
        assert_eq!(c.plan(5, 3, Some(900)), Ok(CopyFor::Original(900)), "forgetting its space frees the original");
        c.mapped(5, 3, 0x1000, 900, CopyFor::Original(900)).unwrap();
        c.unmap_all(5, |_| {});
        c.forget_frame(5, |s| panic!("freed {s}: the original is the server's"));
    }

    #[test]
    fn records_reserved_for_every_space_are_all_a_map_takes() {
        let mut c = FrameCopies::new();
        assert_eq!(c.reserve_records(5, 4), Ok(3), "the original maps the first space");
        let capacity = |c: &mut FrameCopies| entry_mut(&mut c.chunks, 5).map(|list| list.capacity());
        let reserved = capacity(&mut c).expect("a list");
        assert!(reserved >= 4);
        assert_eq!(c.plan(5, 0, Some(900)), Ok(CopyFor::Original(900)));
        c.mapped(5, 0, 0x1000, 900, CopyFor::Original(900)).unwrap();
        for space in 1..4 {
            assert_eq!(c.plan(5, space, Some(900)), Ok(CopyFor::NewKept));
            c.mapped(5, space, 0x1000, 30 + space as CPtr, CopyFor::NewKept).unwrap();
        }
        assert_eq!(capacity(&mut c), Some(reserved), "no record grew the list");
        c.unmap_all(5, |_| {});
        assert_eq!(c.reserve_records(5, 4), Ok(0), "mapped again, the kept copies serve");
        assert_eq!(capacity(&mut c), Some(reserved));
        assert_eq!(c.reserve_records(5, 6), Ok(2), "two more spaces, two more copies");
    }

    #[test]
    fn forgetting_a_frame_frees_its_kept_copies_and_nothing_else() {
        let mut c = FrameCopies::new();
        kept_in(&mut c, 3, 4, 40);
        c.mapped(2, 0, 0x2000, 50, CopyFor::NewKept).unwrap();
        c.unmap_all(3, |_| {});
        let mut freed = Vec::new();
        c.forget_frame(3, |s| freed.push(s));
        assert_eq!(freed, [40, 41, 42, 43]);
        assert_eq!(c.plan(3, 0, None), Ok(CopyFor::NewKept), "a new frame of that index starts with no copy");
        assert_eq!(c.plan(2, 0, None), Ok(CopyFor::NewExtra), "another frame keeps its copy");
        assert_eq!(c.kept_unmapped(), 0);
    }

    /// The count of unmapped kept copies (a statistic the server reports)
    /// follows every change, over a long mixed sequence.
    #[test]
    fn the_unmapped_count_follows_every_change() {
        let mut c = FrameCopies::new();
        let mut next_slot = 100;
        for step in 0u64..4000 {
            let (frame, space) = ((step * 7 % 13) as u32, (step * 5 % 6) as usize);
            let addr = 0x1000 * (step % 3);
            match step % 9 {
                0..=3 => {
                    let original = (step % 2 == 0).then_some(7000 + frame as u64);
                    let plan = c.plan(frame, space, original).unwrap();
                    let copy = match plan {
                        CopyFor::Reuse(copy) | CopyFor::Original(copy) => copy,
                        CopyFor::NewKept | CopyFor::NewExtra => {
                            next_slot += 1;
                            next_slot
                        }
                    };
                    if step % 4 == 0 && plan == CopyFor::NewKept {
                        c.keep_unmapped(frame, space, copy).unwrap();
                    } else {
                        c.mapped(frame, space, addr, copy, plan).unwrap();
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
            assert_eq!(c.kept_unmapped(), scanned(&c), "step {step}");
        }
    }

    /// 4,096 spaces (the seL4 x86-64 ASID ceiling) over frame indices far
    /// beyond a fixed table's: every space keeps its copy of every frame,
    /// reuses it after the frame was unmapped everywhere, and forgetting
    /// one space deletes that space's copies alone.
    #[test]
    fn four_thousand_spaces_keep_their_copies_of_every_frame() {
        let (spaces, frames) = (4096usize, 16u32);
        let frame = |k: u32| 100_000 + 37 * k;
        let slot = |k: u32, space: usize| u64::from(k) * spaces as u64 + space as u64 + 1;
        let mut c = FrameCopies::new();
        for k in 0..frames {
            for space in 0..spaces {
                let plan = c.plan(frame(k), space, None).unwrap();
                assert_eq!(plan, CopyFor::NewKept);
                c.mapped(frame(k), space, 0x7000_0000_0000, slot(k, space), plan).unwrap();
            }
        }
        for k in 0..frames {
            let mut unmapped = 0;
            c.unmap_all(frame(k), |u| {
                assert!(matches!(u, Unmapped::Kept(_)));
                unmapped += 1;
            });
            assert_eq!(unmapped, spaces);
        }
        assert_eq!(c.kept_unmapped(), u64::from(frames) * spaces as u64);
        assert_eq!(c.plan(frame(3), 4095, None), Ok(CopyFor::Reuse(slot(3, 4095))));
        let mut deleted = Vec::new();
        c.forget_space(2048, |s| deleted.push(s));
        assert_eq!(deleted, (0..frames).map(|k| slot(k, 2048)).collect::<Vec<_>>());
        assert_eq!(c.plan(frame(3), 2048, None), Ok(CopyFor::NewKept));
        assert_eq!(c.plan(frame(3), 2049, None), Ok(CopyFor::Reuse(slot(3, 2049))));
        assert_eq!(c.kept_unmapped(), u64::from(frames) * (spaces as u64 - 1));
    }

    /// A frame mapped in 1,024 spaces, and at a second address in each
    /// (extra copies), is unmapped everywhere at once: every kept copy is
    /// reported once and kept, every extra once and forgotten; the other
    /// frames' copies are untouched.
    #[test]
    fn a_frame_in_a_thousand_spaces_is_unmapped_everywhere() {
        let spaces = 1024;
        let mut c = FrameCopies::new();
        for space in 0..spaces {
            c.mapped(1, space, 0x1000, 10 + space as u64, CopyFor::NewKept).unwrap();
            assert_eq!(c.plan(1, space, None), Ok(CopyFor::NewExtra));
            c.mapped(1, space, 0x9000, 5000 + space as u64, CopyFor::NewExtra).unwrap();
            c.mapped(2, space, 0x2000, 9000 + space as u64, CopyFor::NewKept).unwrap();
        }
        let mut seen = Vec::new();
        c.unmap_all(1, |u| seen.push(u));
        let kept = (0..spaces as u64).map(|s| Unmapped::Kept(10 + s));
        let extra = (0..spaces as u64).map(|s| Unmapped::Extra(5000 + s));
        assert_eq!(sorted(seen), kept.chain(extra).collect::<Vec<_>>());
        assert_eq!(c.list(1).len(), spaces, "the extras are gone");
        assert_eq!(c.unmapped(2, 700, 0x2000), Some(Unmapped::Kept(9700)), "frame 2 is still mapped");
        assert_eq!(c.kept_unmapped(), spaces as u64 + 1);
    }
}
