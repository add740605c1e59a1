//! vmalloc: virtually contiguous areas in the vmalloc area, backed by fresh
//! zeroed frames (`vmalloc`) or by caller frames (`vmap`).
//!
//! Free address ranges live in an augmented AVL tree (lowest fit in
//! O(log n)); each area starts at the alignment asked for (a page at
//! least, up to 1 GiB) and is followed by unmapped guard pages (one unless
//! asked otherwise; none is Linux's `VM_NO_GUARD`); 2 MiB pages are used
//! when asked and the size allows. `vfree` is lazy: the area stays
//! mapped, its addresses reserved and its owner charged for it (bytes and
//! objects) until a purge unmaps the freed areas in one batch; only then
//! are the addresses reused and the owner refunded. A purge is forced when
//! the freed areas hold more than [`LAZY_PURGE_BYTES`]. Every area records
//! its owner, and only the owner may free it.

use alloc::vec::Vec;

use crate::accounting::Clients;
use crate::avl::{AvlMap, InsertError};
use crate::backend::{Backend, FrameFor, Holder, Rights};
use crate::error::{Error, Limit};
use crate::ids::Badge;
use crate::layout::{Area, PageSize, RegionAddr, VmallocAddr, PAGE_SIZE};
use crate::limits::{LAZY_PURGE_BYTES, MAX_PAGES_PER_OP, MAX_VMALLOC_ALIGN, MAX_VMAP_FRAMES};
use crate::populate::{pages_of, Contiguous, Mark, Prune, Region};
use crate::quota::Held;

/// Options of [`crate::MemServer::vmalloc`] (those of Linux's
/// `__vmalloc_node_range`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmallocFlags {
    /// Use 2 MiB pages if the size is at least 2 MiB (it is then rounded
    /// up to a multiple of 2 MiB, and the area aligned to 2 MiB).
    pub huge: bool,
    /// Use 1 GiB pages (Linux's gigantic pages) if the size is a multiple
    /// of 1 GiB (the area is then aligned to 1 GiB); where no 1 GiB frame
    /// is to be had, 2 MiB pages if `huge`.
    pub gigantic: bool,
    /// Alignment of the area's first address: a power of two up to
    /// [`MAX_VMALLOC_ALIGN`]; below a page it is a page.
    pub align: u64,
    /// Unmapped pages after the area (Linux: one, or none with
    /// `VM_NO_GUARD`). Guard pages beyond the first are charged to the
    /// caller's bytes: they take address space from everyone.
    pub guard_pages: u64,
    /// Fail instead of purging lazily freed areas to make room (Linux's
    /// non-blocking allocations, which neither wait nor flush).
    pub no_purge: bool,
    /// Zero the frames; off, a frame that last held the caller's own data
    /// may come as it was ([`FrameFor`]).
    pub zero: bool,
}

impl VmallocFlags {
    /// 4 KiB pages, page aligned, one guard page, purging when it helps.
    pub const DEFAULT: VmallocFlags =
        VmallocFlags { huge: false, gigantic: false, align: PAGE_SIZE, guard_pages: 1, no_purge: false, zero: true };
    /// [`VmallocFlags::DEFAULT`] with the largest pages the size allows.
    pub const HUGE: VmallocFlags = VmallocFlags { huge: true, gigantic: true, ..Self::DEFAULT };
}

impl Default for VmallocFlags {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What [`crate::MemServer::vrealloc`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resized {
    /// The area's first address now.
    pub addr: VmallocAddr,
    /// Whether it moved there (the addresses after it were not free).
    pub moved: bool,
}

/// How an area is backed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Fresh frames of this size, owned by the server.
    Frames(PageSize),
    /// Caller frames (4 KiB each).
    Vmap,
}

/// An area as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmArea {
    /// Its first address.
    pub start: VmallocAddr,
    /// Mapped bytes (the guard pages excluded).
    pub size: u64,
    /// Bytes of unmapped guard pages after it.
    pub guard: u64,
    /// Who allocated it.
    pub owner: Badge,
    /// How it is backed.
    pub backing: Backing,
    /// Freed, awaiting the purge (and still charged to its owner).
    pub lazy: bool,
}

#[derive(Clone, Copy)]
struct AreaRecord {
    size: u64,
    /// Bytes of guard pages after it.
    guard: u64,
    /// The alignment of its first address (kept when it moves).
    align: u64,
    /// The rights its pages are mapped with.
    rights: Rights,
    /// The most its pages may be given: read-write, or for a vmap of
    /// frames given read-only, read-only.
    granted: Rights,
    owner: Badge,
    backing: Backing,
    lazy: bool,
}

impl AreaRecord {
    fn page_size(&self) -> PageSize {
        match self.backing {
            Backing::Frames(size) => size,
            Backing::Vmap => PageSize::Small,
        }
    }

    /// Bytes of address space it reserves.
    fn span(&self) -> u64 {
        self.size + self.guard
    }

    /// Frames it holds: one per page.
    fn frames(&self) -> u64 {
        self.size / self.page_size().bytes()
    }

    /// `LimitReached` if one request may not map its pages.
    fn fits_one_request(&self) -> Result<(), Error> {
        if self.frames() > MAX_PAGES_PER_OP as u64 {
            return Err(Error::LimitReached(Limit::PagesPerOp));
        }
        Ok(())
    }

    /// Bytes charged to its owner: its size, and its guard pages beyond
    /// the one every area has.
    fn charge(&self) -> u64 {
        self.size + self.guard.saturating_sub(PAGE_SIZE)
    }
}

/// The vmalloc allocator. Its maps grow with the areas; free ranges are
/// separated by areas, so there is at most one more of them than areas,
/// and the free map always has room for that many (made before an area is
/// added), so giving a range back never needs memory.
pub(crate) struct Vmalloc {
    free: AvlMap<()>,
    busy: AvlMap<AreaRecord>,
    /// The freed areas awaiting the purge, by start.
    lazy: Vec<u64>,
    /// Bytes of the freed areas awaiting the purge.
    lazy_bytes: u64,
}

impl Vmalloc {
    /// An allocator with no free range yet: see [`Vmalloc::start`].
    pub(crate) const fn new() -> Self {
        Self { free: AvlMap::new(), busy: AvlMap::new(), lazy: Vec::new(), lazy_bytes: 0 }
    }

    /// Make the whole vmalloc area free (once, on an unused allocator).
    pub(crate) fn start(&mut self) {
        if self.free.len() == 0 && self.busy.len() == 0 {
            // The first insert into an empty map cannot fail.
            let _ = self.free.insert(Area::Vmalloc.start(), Area::Vmalloc.size(), ());
        }
    }

    /// Take `len` bytes aligned to `align` from the lowest free range that
    /// surely fits.
    fn take_range(&mut self, len: u64, align: u64) -> Result<u64, Error> {
        let search = len.checked_add(align - PAGE_SIZE).ok_or(Error::InvalidArgument)?;
        let (start, span) = self.free.first_fit(search).map(|e| (e.key, e.span)).ok_or(Error::NoAddressSpace)?;
        let addr = start.next_multiple_of(align);
        let end = start + span;
        self.free.remove(start);
        // One range out, at most two back, into the room `reserve` made.
        if addr > start {
            self.free.insert(start, addr - start, ()).map_err(|_| Error::OutOfMemory)?;
        }
        if addr + len < end {
            self.free.insert(addr + len, end - addr - len, ()).map_err(|_| Error::OutOfMemory)?;
        }
        Ok(addr)
    }

    /// Give `[start, start + len)` back, merged with its free neighbours.
    fn give_range(&mut self, start: u64, len: u64) {
        let (mut lo, mut hi) = (start, start + len);
        if let Some(prev) = self.free.floor(start).filter(|e| e.key + e.span == start).map(|e| e.key) {
            if let Some((span, ())) = self.free.remove(prev) {
                lo = prev;
                hi = hi.max(prev + span);
            }
        }
        if let Some((span, ())) = self.free.remove(hi) {
            hi += span;
        }
        // The free map has room for one range more than there are areas.
        let _ = self.free.insert(lo, hi - lo, ());
    }

    /// Reserve the span of `record` at its alignment, purging lazily
    /// freed areas once if the area is out of room (unless `no_purge`).
    fn reserve<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        record: AreaRecord,
        no_purge: bool,
    ) -> Result<u64, Error> {
        let room = self.busy.reserve_total(self.busy.len() + 1).and_then(|()| {
            // Free ranges: one more than areas, and two more while a range is split.
            self.free.reserve_total(self.busy.len() + 3)
        });
        room.map_err(|_| Error::OutOfMemory)?;
        let (len, align) = (record.span(), record.align);
        let start = match self.take_range(len, align) {
            Err(Error::NoAddressSpace) if self.lazy_bytes > 0 && !no_purge => {
                self.purge(region, clients);
                self.take_range(len, align)
            }
            other => other,
        }?;
        if let Err(e) = self.busy.insert(start, len, record) {
            self.give_range(start, len);
            return Err(match e {
                InsertError::Full | InsertError::OutOfMemory => Error::OutOfMemory,
                InsertError::Duplicate => Error::Overlap,
            });
        }
        Ok(start)
    }

    fn unreserve(&mut self, start: u64) {
        if let Some((len, _)) = self.busy.remove(start) {
            self.give_range(start, len);
        }
    }

    /// Reserve, charge and map an area (purging only if not `no_purge`;
    /// `map` learns the holder of the owner's data); undo all of it on
    /// failure.
    fn create<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        record: AreaRecord,
        no_purge: bool,
        map: impl FnOnce(&mut Region<B>, RegionAddr, Option<Holder>) -> Result<(), Error>,
    ) -> Result<VmallocAddr, Error> {
        record.fits_one_request()?;
        clients.charge(record.owner, record.charge())?;
        let start = match self.reserve(region, clients, record, no_purge) {
            Ok(start) => start,
            Err(e) => {
                clients.refund(record.owner, record.charge());
                return Err(e);
            }
        };
        let holder = clients.holder(record.owner);
        let result = VmallocAddr::new(start).ok_or(Error::NoAddressSpace).and_then(|addr| {
            map(region, addr.region(), holder)?;
            Ok(addr)
        });
        if result.is_err() {
            self.unreserve(start);
            clients.refund(record.owner, record.charge());
        }
        result
    }

    /// `size` bytes of fresh memory for `owner`, zeroed unless
    /// `flags.zero` is off (see [`FrameFor`]).
    pub(crate) fn vmalloc<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        owner: Badge,
        size: u64,
        flags: VmallocFlags,
    ) -> Result<VmallocAddr, Error> {
        let room = Area::Vmalloc.size();
        let guard = flags.guard_pages.checked_mul(PAGE_SIZE).filter(|&guard| guard <= room);
        let Some(guard) = guard else { return Err(Error::InvalidArgument) };
        if size == 0 || size > room || !flags.align.is_power_of_two() || flags.align > MAX_VMALLOC_ALIGN {
            return Err(Error::InvalidArgument);
        }
        let page = match size {
            _ if flags.gigantic && size.is_multiple_of(PageSize::Huge.bytes()) => PageSize::Huge,
            _ if flags.huge && size >= PageSize::Large.bytes() => PageSize::Large,
            _ => PageSize::Small,
        };
        let area = |page: PageSize| AreaRecord {
            size: size.next_multiple_of(page.bytes()),
            guard,
            align: flags.align.max(page.bytes()),
            rights: Rights::ReadWrite,
            granted: Rights::ReadWrite,
            owner,
            backing: Backing::Frames(page),
            lazy: false,
        };
        match self.create_mapped(region, clients, area(page), flags.no_purge, flags.zero) {
            // No 1 GiB frame to be had (the backend has no untyped block
            // free of objects in use), or no memory for the records of
            // one: 2 MiB pages, as Linux falls back. If they fail too, the
            // answer is the first failure's, so that a caller that can
            // find more memory (the server's heap growing) tries again.
            Err(Error::OutOfMemory) if page == PageSize::Huge && flags.huge => self
                .create_mapped(region, clients, area(PageSize::Large), flags.no_purge, flags.zero)
                .map_err(|_| Error::OutOfMemory),
            created => created,
        }
    }

    /// Creates the area `record` describes on fresh frames of its pages,
    /// zeroed if `zero` (else see [`FrameFor`]).
    fn create_mapped<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        record: AreaRecord,
        no_purge: bool,
        zero: bool,
    ) -> Result<VmallocAddr, Error> {
        let (size, page) = (record.size, record.page_size());
        self.create(region, clients, record, no_purge, |region, start, holder| {
            region.clear_for(start, size, page);
            region.map(&mut Contiguous::fresh(start, size, page).for_user(FrameFor::client(holder, zero))).map(|_| ())
        })
    }

    /// Map `frames` (4 KiB each) contiguously for `owner`.
    pub(crate) fn vmap<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        owner: Badge,
        frames: &[B::Frame],
        rights: Rights,
    ) -> Result<VmallocAddr, Error> {
        if frames.is_empty() {
            return Err(Error::InvalidArgument);
        }
        if frames.len() > MAX_VMAP_FRAMES {
            return Err(Error::LimitReached(Limit::VmapFrames));
        }
        let size = frames.len() as u64 * PAGE_SIZE;
        let (guard, align, backing) = (PAGE_SIZE, PAGE_SIZE, Backing::Vmap);
        let record = AreaRecord { size, guard, align, rights, granted: rights, owner, backing, lazy: false };
        self.create(region, clients, record, false, |region, start, _| {
            region.map(&mut Contiguous::given(start, frames, rights)).map(|_| ())
        })
    }

    /// Free the area at `addr`: it is unmapped, its addresses made reusable
    /// and its owner refunded at the next purge, forced now if the freed
    /// areas hold more than [`LAZY_PURGE_BYTES`].
    pub(crate) fn vfree<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        caller: Badge,
        addr: VmallocAddr,
    ) -> Result<(), Error> {
        self.live_area(caller, addr)?;
        self.lazy.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
        self.lazy.push(addr.get());
        let Some(area) = self.busy.get_mut(addr.get()) else { return Err(Error::NotFound) };
        area.lazy = true;
        self.lazy_bytes += area.size;
        if self.lazy_bytes > LAZY_PURGE_BYTES {
            self.purge(region, clients);
        }
        Ok(())
    }

    /// The live area at `addr`, if it is `caller`'s.
    fn live_area(&self, caller: Badge, addr: VmallocAddr) -> Result<AreaRecord, Error> {
        if !addr.get().is_multiple_of(PAGE_SIZE) {
            return Err(Error::InvalidArgument);
        }
        let area = self.busy.get(addr.get()).map(|e| *e.val).filter(|a| !a.lazy).ok_or(Error::NotFound)?;
        if area.owner != caller {
            return Err(Error::NotOwner);
        }
        Ok(area)
    }

    /// Give the caller's live area at `addr` `rights` in every space at
    /// once (Linux's `set_memory_ro` and `set_memory_rw` over the whole
    /// area); a write to it when read-only is a real fault. A vmap area of
    /// frames given read-only stays read-only (`InvalidArgument`). On error
    /// nothing changed.
    pub(crate) fn protect<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        caller: Badge,
        addr: VmallocAddr,
        rights: Rights,
    ) -> Result<(), Error> {
        let area = self.live_area(caller, addr)?;
        if rights == Rights::ReadWrite && area.granted == Rights::ReadOnly {
            return Err(Error::InvalidArgument);
        }
        if rights != area.rights {
            region.protect(addr.region(), area.size, area.page_size(), rights)?;
            self.set_record(addr.get(), AreaRecord { rights, ..area });
        }
        Ok(())
    }

    /// Resize the caller's live vmalloc area at `addr` to `size` bytes
    /// (rounded up to its pages), keeping its contents: a shrink unmaps
    /// the tail in every space; a growth maps only the new tail if the
    /// addresses after the area (its guard pages included) are free, else
    /// the area moves: its frames are mapped at a new place of the same
    /// alignment, with the new tail, before the old place is unmapped. On
    /// error nothing changed.
    pub(crate) fn vrealloc<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        caller: Badge,
        addr: VmallocAddr,
        size: u64,
    ) -> Result<Resized, Error> {
        let start = addr.get();
        let area = self.live_area(caller, addr)?;
        // A vmap area maps the caller's frames: there is nothing to grow it with.
        let Backing::Frames(page) = area.backing else { return Err(Error::InvalidArgument) };
        if size == 0 || size > Area::Vmalloc.size() {
            return Err(Error::InvalidArgument);
        }
        let size = size.next_multiple_of(page.bytes());
        if size <= area.size {
            self.shrink(region, clients, start, area, size);
            return Ok(Resized { addr, moved: false });
        }
        let grown = AreaRecord { size, ..area };
        grown.fits_one_request()?;
        self.busy.reserve_total(self.busy.len() + 1).map_err(|_| Error::OutOfMemory)?;
        clients.charge(caller, size - area.size)?;
        let result = match self.free.get(start + area.span()).filter(|e| e.span >= size - area.size) {
            Some(_) => self.grow_in_place(region, clients, start, area, grown).map(|()| Resized { addr, moved: false }),
            None => self.relocate(region, clients, start, area, grown).map(|new| Resized { addr: new, moved: true }),
        };
        if result.is_err() {
            clients.refund(caller, size - area.size);
        }
        result
    }

    /// The area at `start` reserves `record`'s span now.
    fn set_record(&mut self, start: u64, record: AreaRecord) {
        // The entry's own node is free for the new one: this cannot fail.
        self.busy.remove(start);
        let _ = self.busy.insert(start, record.span(), record);
    }

    /// Shrinks the area at `start` to `size` (at most its size): its tail
    /// unmapped, the addresses after its new guard pages free, its owner
    /// refunded the tail's bytes and frames.
    fn shrink<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        start: u64,
        area: AreaRecord,
        size: u64,
    ) {
        let Some(tail) = RegionAddr::new(start + size).filter(|_| size < area.size) else { return };
        let before = region.op_counts();
        region.unmap(pages_of(tail, area.size - size, area.page_size()), Prune::Keep);
        let shrunk = AreaRecord { size, ..area };
        self.set_record(start, shrunk);
        self.give_range(start + shrunk.span(), area.size - size);
        clients.refund(area.owner, area.size - size);
        // Fewer frames and structures: the new charge is within any quota.
        let _ = clients.recharge(Held::Area(start), Held::Area(start), shrunk.frames(), &before, &region.op_counts());
    }

    /// Grows the area at `start` into the free range right after it.
    fn grow_in_place<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        start: u64,
        area: AreaRecord,
        grown: AreaRecord,
    ) -> Result<(), Error> {
        let (end, extra) = (start + area.span(), grown.size - area.size);
        let tail = RegionAddr::new(start + area.size).ok_or(Error::InvalidArgument)?;
        let Some((span, ())) = self.free.remove(end) else { return Err(Error::NotFound) };
        if span > extra {
            // Into the node just freed.
            let _ = self.free.insert(end + extra, span - extra, ());
        }
        self.set_record(start, grown);
        region.clear_for(tail, extra, area.page_size());
        let (before, mark) = (region.op_counts(), region.mark());
        let tail_pages = Contiguous::fresh(tail, extra, area.page_size()).with_rights(area.rights);
        let made =
            region.map(&mut tail_pages.for_user(FrameFor::client(clients.holder(area.owner), true))).and_then(|_| {
                clients.recharge(Held::Area(start), Held::Area(start), grown.frames(), &before, &region.op_counts())
            });
        if made.is_err() {
            region.unmap(pages_of(tail, extra, area.page_size()), Prune::CreatedSince(mark));
            self.set_record(start, area);
            self.give_range(end, extra);
        }
        made
    }

    /// Moves the area at `start` to a new place, grown to `grown`'s size:
    /// its frames mapped there again with fresh ones after them, charged
    /// to the new place, then the old place unmapped and free.
    fn relocate<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        start: u64,
        area: AreaRecord,
        grown: AreaRecord,
    ) -> Result<VmallocAddr, Error> {
        let old = RegionAddr::new(start).ok_or(Error::InvalidArgument)?;
        let new = self.reserve(region, clients, grown, false)?;
        if let Some(at) = RegionAddr::new(new) {
            region.clear_for(at, grown.size, area.page_size());
        }
        let (before, mark) = (region.op_counts(), region.mark());
        let made = VmallocAddr::new(new).ok_or(Error::NoAddressSpace).and_then(|at| {
            let page = area.page_size();
            let pages = Contiguous::moved(at.region(), grown.size, page, area.rights, old, area.size);
            region.map(&mut pages.for_user(FrameFor::client(clients.holder(area.owner), true)))?;
            clients.recharge(Held::Area(start), Held::Area(new), grown.frames(), &before, &region.op_counts())?;
            Ok(at)
        });
        match made {
            Ok(at) => {
                let before = region.op_counts();
                region.adopt(old, at.region(), area.size, area.page_size());
                self.unreserve(start);
                let _ =
                    clients.recharge(Held::Area(new), Held::Area(new), grown.frames(), &before, &region.op_counts());
            }
            Err(_) => {
                if let Some(at) = RegionAddr::new(new) {
                    region.unmap(pages_of(at, grown.size, area.page_size()), Prune::CreatedSince(mark));
                }
                self.unreserve(new);
            }
        }
        made
    }

    /// Unmap every lazily freed area in one batch, make its addresses
    /// (guard page included) free again, and refund its owner the bytes and
    /// objects it was charged. The paging structures stay for the next
    /// areas ([`Prune::Keep`]).
    pub(crate) fn purge<B: Backend>(&mut self, region: &mut Region<B>, clients: &mut Clients) {
        self.purge_owner(region, clients, None);
    }

    /// [`Vmalloc::purge`] of the freed areas of `owner` only (of everyone
    /// with `None`).
    pub(crate) fn purge_owner<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        owner: Option<Badge>,
    ) {
        // Taken out while the areas go, and put back with those that stay:
        // its memory stays.
        let mut lazy = core::mem::take(&mut self.lazy);
        lazy.retain(|&start| {
            let Some(area) = self.busy.get(start).map(|e| *e.val) else { return false };
            if owner.is_some_and(|owner| owner != area.owner) {
                return true;
            }
            self.take_down(region, start, &area, Prune::Keep);
            self.lazy_bytes = self.lazy_bytes.saturating_sub(area.size);
            clients.refund(area.owner, area.charge());
            clients.release(Held::Area(start));
            false
        });
        self.lazy = lazy;
    }

    /// Unmap the area at `start`, removing the empty structures `prune`
    /// names, and make its addresses free.
    fn take_down<B: Backend>(&mut self, region: &mut Region<B>, start: u64, area: &AreaRecord, prune: Prune) {
        if let Some(addr) = RegionAddr::new(start) {
            region.unmap(pages_of(addr, area.size, area.page_size()), prune);
        }
        self.unreserve(start);
    }

    /// Undo the live area at `addr`, made since `mark`, at once (unmapped
    /// with the structures made for it and no others, addresses free,
    /// refunded): for a vmalloc or vmap that must not stand.
    pub(crate) fn revert<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        addr: VmallocAddr,
        mark: Mark,
    ) {
        let Some(area) = self.busy.get(addr.get()).map(|e| *e.val).filter(|a| !a.lazy) else { return };
        self.take_down(region, addr.get(), &area, Prune::CreatedSince(mark));
        clients.refund(area.owner, area.charge());
    }

    /// Areas in address order.
    pub(crate) fn areas(&self) -> impl Iterator<Item = VmArea> + '_ {
        self.busy.iter().filter_map(|e| {
            let a = e.val;
            let start = VmallocAddr::new(e.key)?;
            Some(VmArea { start, size: a.size, guard: a.guard, owner: a.owner, backing: a.backing, lazy: a.lazy })
        })
    }

    /// Free ranges `(start, length)` in address order.
    pub(crate) fn free_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.free.iter().map(|e| (e.key, e.span))
    }

    /// Areas, live or awaiting the purge.
    pub(crate) fn area_count(&self) -> usize {
        self.busy.len()
    }

    /// Bytes of the freed areas awaiting the purge.
    pub(crate) fn lazy_bytes(&self) -> u64 {
        self.lazy_bytes
    }

    /// Whether `owner` has freed areas awaiting the purge (still charged
    /// to it).
    pub(crate) fn holds_lazy(&self, owner: Badge) -> bool {
        self.lazy.iter().any(|start| self.busy.get(*start).is_some_and(|e| e.val.owner == owner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_and_giving_back_a_range_restores_the_free_tree() {
        let mut v = Vmalloc::new();
        v.start();
        let whole: std::vec::Vec<(u64, u64)> = v.free_ranges().collect();
        let a = v.take_range(3 * PAGE_SIZE, PAGE_SIZE).expect("room");
        let b = v.take_range(PageSize::Large.bytes() + PAGE_SIZE, PageSize::Large.bytes()).expect("room");
        assert_eq!(a, Area::Vmalloc.start());
        assert_eq!(b % PageSize::Large.bytes(), 0);
        assert_eq!(v.free_ranges().count(), 2, "the alignment gap stays free");
        v.give_range(a, 3 * PAGE_SIZE);
        v.give_range(b, PageSize::Large.bytes() + PAGE_SIZE);
        assert_eq!(v.free_ranges().collect::<std::vec::Vec<_>>(), whole);
        assert_eq!(v.take_range(Area::Vmalloc.size() + PAGE_SIZE, PAGE_SIZE), Err(Error::NoAddressSpace));
    }
}
