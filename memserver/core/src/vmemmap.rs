//! vmemmap: backing frames for the page descriptors ("struct page", 64
//! bytes) of pfn ranges; the descriptor of pfn `p` is at
//! `vmemmap start + p * 64`.
//!
//! Populate maps 4 KiB descriptor frames, or 2 MiB ones for each 2 MiB block
//! of descriptors the range covers whole (when asked and the block is empty).
//! With the compound-page optimisation (as Linux's
//! `vmemmap_populate_compound_pages`), each compound page of order k keeps
//! two private frames, the head descriptors' and the first tail
//! descriptors', and every further descriptor frame of it maps the first
//! tail frame again, read-only. Depopulate (hot-remove) takes a populated
//! range out and frees every frame no other range still uses.
//!
//! Ownership: a client may populate a range only if no pfn of it, and no
//! descriptor frame it needs, belongs to another client's range
//! (`NotOwner`), so one client's descriptors never lie in, or outlive,
//! another's frames. Populating what the caller already populated whole is
//! done and charges nothing; a range partly over one of the caller's own is
//! `Overlap`. Ranges of one client may share a boundary descriptor frame (a
//! frame holds the descriptors of 64 pfns): it is charged to exactly one of
//! them, the one that mapped it, and when that one is depopulated the
//! charge passes to a range that still uses the frame.

use crate::accounting::Clients;
use crate::avl::{AvlMap, Entry};
use crate::backend::{Backend, FrameFor, Rights};
use crate::error::Error;
use crate::ids::{Badge, Pfn, MAX_PFN};
use crate::layout::{Area, PageSize, RegionAddr, DESCRIPTOR_SIZE, PAGE_SIZE};
use crate::limits::{MAX_COMPOUND_ORDER, MIN_COMPOUND_ORDER};
use crate::populate::{Batch, FrameSource, PageSpec, Prune, Region, Table};
use crate::quota::{Held, Objects};

/// Descriptors in one 4 KiB frame.
const PFNS_PER_FRAME: u64 = PAGE_SIZE / DESCRIPTOR_SIZE;
/// Private descriptor frames per compound page (Linux's
/// `VMEMMAP_RESERVE_NR`): the head's and the first tails'.
const PRIVATE_FRAMES: u64 = 2;

/// Options of [`crate::MemServer::vmemmap_populate`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmemmapOptions {
    /// Map 2 MiB descriptor frames where a whole 2 MiB block is covered.
    pub huge: bool,
    /// The range holds compound pages of this order: share their tail
    /// descriptor frames. Start and length must be multiples of `1 << order`.
    pub compound_order: Option<u32>,
}

/// A populated range as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmemmapRange {
    /// First pfn.
    pub start: Pfn,
    /// Number of pfns.
    pub pages: u64,
    /// Who populated it.
    pub owner: Badge,
    /// Compound order, if optimised.
    pub compound_order: Option<u32>,
}

#[derive(Clone, Copy)]
struct RangeRecord {
    owner: Badge,
    compound_order: Option<u32>,
    /// Whether the range is charged for its first descriptor frame, and
    /// for its last (the same frame if it has only one); its inner frames
    /// are always its own.
    charged_first: bool,
    charged_last: bool,
}

/// The descriptor address of `pfn` (any pfn up to [`MAX_PFN`]).
fn descriptor(pfn: u64) -> u64 {
    Area::Vmemmap.start() + pfn * DESCRIPTOR_SIZE
}

/// The pfns `[lo, hi)` whose descriptors share the 4 KiB frame of `pfn`'s.
fn frame_pfns(pfn: u64) -> (u64, u64) {
    let lo = pfn - pfn % PFNS_PER_FRAME;
    (lo, lo + PFNS_PER_FRAME)
}

/// The pages of one populate: descriptor frames over `[pos, end)`, fresh
/// or the `given` ones in order.
struct Descriptors<'a, F> {
    /// Frames the caller supplied, one per descriptor frame (none: fresh
    /// frames).
    given: &'a [F],
    /// Exact descriptor bytes of the range.
    first: u64,
    last: u64,
    /// Next frame to consider.
    pos: u64,
    huge: bool,
    /// Descriptor frames per compound page, if optimised.
    compound_frames: Option<u64>,
}

impl<F: Copy> Batch<F> for Descriptors<'_, F> {
    fn next<S: Copy>(&mut self, canonical: &Table<F, S>) -> Option<PageSpec<F>> {
        let large = PageSize::Large.bytes();
        while self.pos < self.last {
            let addr = RegionAddr::new(self.pos)?;
            if !self.given.is_empty() {
                // The range covers whole descriptor frames: one given
                // frame each, mapped over whatever is there (the insert
                // refuses an occupied place).
                let frame = *self.given.get(usize::try_from((self.pos - self.first) / PAGE_SIZE).ok()?)?;
                self.pos += PAGE_SIZE;
                let frame = FrameSource::Given(frame);
                return Some(PageSpec { addr, size: PageSize::Small, rights: Rights::ReadWrite, frame });
            }
            if let Some(per_page) = self.compound_frames {
                let index = (self.pos - self.first) / PAGE_SIZE % per_page;
                self.pos += PAGE_SIZE;
                let (frame, rights) = if index < PRIVATE_FRAMES {
                    (FrameSource::Fresh(FrameFor::SHARED), Rights::ReadWrite)
                } else {
                    let first_tail = addr.get() - (index - 1) * PAGE_SIZE;
                    (FrameSource::AliasOf(RegionAddr::new(first_tail)?), Rights::ReadOnly)
                };
                return Some(PageSpec { addr, size: PageSize::Small, rights, frame });
            }
            let whole_block = self.pos.is_multiple_of(large) && self.pos >= self.first && self.pos + large <= self.last;
            if self.huge && whole_block && !canonical.occupied(addr, PageSize::Large) {
                self.pos += large;
                return Some(PageSpec {
                    addr,
                    size: PageSize::Large,
                    rights: Rights::ReadWrite,
                    frame: FrameSource::Fresh(FrameFor::SHARED),
                });
            }
            self.pos += PAGE_SIZE;
            if !canonical.occupied(addr, PageSize::Small) {
                return Some(PageSpec {
                    addr,
                    size: PageSize::Small,
                    rights: Rights::ReadWrite,
                    frame: FrameSource::Fresh(FrameFor::SHARED),
                });
            }
        }
        None
    }
}

/// The vmemmap populator.
pub(crate) struct Vmemmap {
    ranges: AvlMap<RangeRecord>,
}

impl Vmemmap {
    pub(crate) const fn new() -> Self {
        Self { ranges: AvlMap::new() }
    }

    /// Validate `[start, start + pages)` with `options`, returning its end.
    fn check(start: Pfn, pages: u64, options: VmemmapOptions) -> Result<u64, Error> {
        let end =
            start.get().checked_add(pages).filter(|e| pages > 0 && *e <= MAX_PFN).ok_or(Error::InvalidArgument)?;
        if let Some(order) = options.compound_order {
            let valid = (MIN_COMPOUND_ORDER..=MAX_COMPOUND_ORDER).contains(&order)
                && start.get().is_multiple_of(1 << order)
                && pages.is_multiple_of(1 << order);
            if !valid {
                return Err(Error::InvalidArgument);
            }
        }
        Ok(end)
    }

    /// Map descriptors for `[start, start + pages)`, charged to `owner`:
    /// on fresh frames, or on `given` frames (Linux's memmap_on_memory),
    /// one per descriptor frame of a range of whole descriptor frames
    /// (`InvalidArgument` otherwise, or with options), none of it
    /// populated yet (`Overlap`: the frames would go unused).
    pub(crate) fn populate<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        owner: Badge,
        (start, pages): (Pfn, u64),
        options: VmemmapOptions,
        given: &[B::Frame],
    ) -> Result<(), Error> {
        let end = Self::check(start, pages, options)?;
        let s = start.get();
        if !given.is_empty() {
            let whole_frames = s.is_multiple_of(PFNS_PER_FRAME) && pages.is_multiple_of(PFNS_PER_FRAME);
            if !whole_frames || given.len() as u64 != pages / PFNS_PER_FRAME || options != VmemmapOptions::default() {
                return Err(Error::InvalidArgument);
            }
        }
        if self.admit(owner, s, end)? {
            return if given.is_empty() { Ok(()) } else { Err(Error::Overlap) };
        }
        self.ranges.reserve_total(self.ranges.len() + 1).map_err(|_| Error::OutOfMemory)?;
        let charge = pages * DESCRIPTOR_SIZE;
        clients.charge(owner, charge)?;
        let (first, last) = (descriptor(s), descriptor(end));
        let mut batch = Descriptors {
            given,
            first,
            last,
            pos: first - first % PAGE_SIZE,
            huge: options.huge,
            compound_frames: options.compound_order.map(|order| (1u64 << order) / PFNS_PER_FRAME),
        };
        // A boundary frame no range uses yet is mapped now, for this range.
        let charged_first = self.touching(frame_pfns(s)).next().is_none();
        let charged_last = self.touching(frame_pfns(end - 1)).next().is_none();
        let inserted = region.map(&mut batch).and_then(|_| {
            let record = RangeRecord { owner, compound_order: options.compound_order, charged_first, charged_last };
            // Room was made above and the range was admitted as new.
            self.ranges.insert(s, pages, record).map_err(|_| Error::Overlap)
        });
        if inserted.is_err() {
            clients.refund(owner, charge);
        }
        inserted
    }

    /// Whether `owner` populated `[start, start + pages)` whole already (a
    /// populate of it is done and changes nothing); the errors are those
    /// the populate would answer without changing anything.
    pub(crate) fn populated_whole(
        &self,
        owner: Badge,
        start: Pfn,
        pages: u64,
        options: VmemmapOptions,
    ) -> Result<bool, Error> {
        let end = Self::check(start, pages, options)?;
        self.admit(owner, start.get(), end)
    }

    /// Whether `owner` may populate `[s, end)`: `Ok(true)` if it populated
    /// all of it already, `Ok(false)` if none of it, `NotOwner` if a pfn of
    /// it or of its first or last descriptor frame is in another client's
    /// range, `Overlap` if it lies partly in one of `owner`'s.
    fn admit(&self, owner: Badge, s: u64, end: u64) -> Result<bool, Error> {
        let frames = (frame_pfns(s).0, frame_pfns(end - 1).1);
        if self.touching(frames).any(|r| r.val.owner != owner) {
            return Err(Error::NotOwner);
        }
        match self.touching((s, end)).next() {
            None => Ok(false),
            Some(r) if r.key <= s && end <= r.key + r.span => Ok(true),
            Some(_) => Err(Error::Overlap),
        }
    }

    /// The ranges with a pfn in `[lo, hi)`, in pfn order.
    fn touching(&self, (lo, hi): (u64, u64)) -> impl Iterator<Item = Entry<'_, RangeRecord>> + '_ {
        let before = self.ranges.floor(lo).filter(|r| r.key < lo && r.key + r.span > lo);
        let mut next = self.ranges.ceil(lo);
        before.into_iter().chain(core::iter::from_fn(move || {
            let r = next.filter(|r| r.key < hi)?;
            next = r.key.checked_add(1).and_then(|key| self.ranges.ceil(key));
            Some(r)
        }))
    }

    /// The range at `from`, just taken out, was charged for the descriptor
    /// frame of pfns `frame`: if a range still uses the frame, that one is
    /// charged for it now (both are one client's: its holdings stay).
    fn pass_charge(&mut self, clients: &mut Clients, from: u64, frame: (u64, u64)) {
        let Some((heir, span)) = self.touching(frame).next().map(|r| (r.key, r.span)) else { return };
        if let Some(record) = self.ranges.get_mut(heir) {
            record.charged_first |= frame_pfns(heir) == frame;
            record.charged_last |= frame_pfns(heir + span - 1) == frame;
        }
        clients.transfer(Held::Range(from), Held::Range(heir), Objects { frames: 1, ..Objects::ZERO });
    }

    /// Unmap the descriptors of the populated range `[start, start + pages)`
    /// (exactly as populated) and free the frames no other range uses,
    /// pruning the structures `prune` names (undoing a populate: those it
    /// created, and the frames it was given stay the caller's).
    pub(crate) fn depopulate<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        caller: Badge,
        (start, pages): (Pfn, u64),
        prune: Prune,
    ) -> Result<(), Error> {
        let s = start.get();
        let range = self.ranges.get(s).filter(|r| r.span == pages).ok_or(Error::NotFound)?;
        if range.val.owner != caller {
            return Err(Error::NotOwner);
        }
        let record = *range.val;
        self.ranges.remove(s);
        let (first, last) = (frame_pfns(s), frame_pfns(s + pages - 1));
        if record.charged_first {
            self.pass_charge(clients, s, first);
        }
        if record.charged_last && last != first {
            self.pass_charge(clients, s, last);
        }
        // Only the first and last frames can still be used by another range.
        let frames = (first.0..last.1)
            .step_by(PFNS_PER_FRAME as usize)
            .filter(|&lo| self.touching(frame_pfns(lo)).next().is_none())
            .filter_map(|lo| RegionAddr::new(descriptor(lo)));
        region.unmap(frames, prune);
        clients.refund(caller, pages * DESCRIPTOR_SIZE);
        Ok(())
    }

    /// Populated ranges.
    pub(crate) fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Populated ranges in pfn order.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = VmemmapRange> + '_ {
        self.ranges.iter().filter_map(|e| {
            let r = e.val;
            Some(VmemmapRange {
                start: Pfn::new(e.key)?,
                pages: e.span,
                owner: r.owner,
                compound_order: r.compound_order,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::layout::{Area, DESCRIPTOR_SIZE, LARGE_PAGE_SIZE};
    use crate::sim::Sim;
    use crate::{Badge, Config, MemServer, PageSize, Pfn, VmemmapOptions};
    use std::boxed::Box;

    const OWNER: Badge = Badge(1);

    fn server() -> Box<MemServer<Sim>> {
        let mut s = Box::new(MemServer::new(Sim::new(), Config { admin: Badge(0), cpus: 1 }));
        assert!(s.start(()).is_ok());
        s
    }

    fn descriptor_mapped(s: &MemServer<Sim>, pfn: u64) -> bool {
        s.translate(Area::Vmemmap.start() + pfn * DESCRIPTOR_SIZE).is_some()
    }

    #[test]
    fn a_descriptor_frame_shared_by_two_ranges_lives_until_both_go() {
        let mut s = server();
        let plain = VmemmapOptions::default();
        assert!(s.vmemmap_populate(OWNER, Pfn::new(0).unwrap(), 100, plain).is_ok());
        let frames = s.census().frames.small;
        assert!(s.vmemmap_populate(OWNER, Pfn::new(100).unwrap(), 100, plain).is_ok());
        assert_eq!(s.census().frames.small, frames + 2, "pfns 64..127 share a frame: 128..199 need two more");
        assert!(s.vmemmap_depopulate(OWNER, Pfn::new(0).unwrap(), 100).is_ok());
        assert!(!descriptor_mapped(&s, 10));
        assert!(descriptor_mapped(&s, 64) && descriptor_mapped(&s, 100), "shared frame kept");
        assert!(s.vmemmap_depopulate(OWNER, Pfn::new(100).unwrap(), 100).is_ok());
        assert!(!descriptor_mapped(&s, 100));
    }

    #[test]
    fn whole_2mib_blocks_of_descriptors_get_large_frames() {
        let mut s = server();
        let per_block = LARGE_PAGE_SIZE / DESCRIPTOR_SIZE;
        let huge = VmemmapOptions { huge: true, compound_order: None };
        // One whole block plus 64 pfns (one small frame) after it.
        assert!(s.vmemmap_populate(OWNER, Pfn::new(per_block).unwrap(), per_block + 64, huge).is_ok());
        assert_eq!(s.census().frames.large, 1);
        let first = s.translate(Area::Vmemmap.start() + per_block * DESCRIPTOR_SIZE).map(|l| l.size);
        assert_eq!(first, Some(PageSize::Large));
        assert!(s.vmemmap_depopulate(OWNER, Pfn::new(per_block).unwrap(), per_block + 64).is_ok());
        assert_eq!(s.census().frames.large, 0);
    }
}
