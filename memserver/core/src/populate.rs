//! The one populate_kernel path: the only code that creates kernel-region
//! structures, installs or removes leaves, or calls the backend. No one
//! else holds the backend mutably: [`Region`] owns it and hands out `&B`
//! only, so changes of MMU or capability state (maps, unmaps, registration,
//! the backend's start, its receive slot, failure injection) are its
//! methods.
//!
//! [`Region`] owns the canonical table, the registry of spaces and the
//! backend. Every change goes through [`Region::map`] or [`Region::unmap`],
//! which update the canonical table and then install the change in every
//! registered space before returning (eager, like Linux's
//! `arch_sync_kernel_mappings`), so no caller can forget the sync. A map
//! first updates the canonical table for the whole batch, recording the mask
//! of levels it created, then replicates per space: the structure walk is
//! done only when the mask is not empty. A failing map is undone by the same
//! unmap path, which takes out the structures the map created and no
//! others (empty ones a purge kept stay), leaving state and accounting
//! exactly as before.

#[cfg(feature = "sim")]
mod host;
mod table;

#[cfg(feature = "sim")]
pub use host::HostTable;
pub use table::{FrameKind, Leaf, Leaves, Mark, Prune, Structure, Table};

use crate::accounting::FrameTally;
use crate::backend::{Backend, FrameFor, OpCounts, OpKind, Platform, Rights, SpaceRef};
use crate::error::{BackendError, Error, FaultError, Limit};
use crate::ids::SpaceId;
use crate::layout::{Level, LevelMask, PageSize, RegionAddr, PAGE_SIZE};
use crate::limits::MAX_PAGES_PER_OP;
use memserver_protocol::{ErrorCode, FailurePoint};

/// Where the frame of a page to map comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameSource<F> {
    /// A new frame, owned by the server, zeroed unless it may come as its
    /// holder left it.
    Fresh(FrameFor),
    /// A frame a client supplied (vmap).
    Given(F),
    /// The owned frame already mapped at that address (vmemmap shared tail).
    AliasOf(RegionAddr),
}

/// One page of a map operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PageSpec<F> {
    pub(crate) addr: RegionAddr,
    pub(crate) size: PageSize,
    pub(crate) rights: Rights,
    pub(crate) frame: FrameSource<F>,
}

/// The pages of one map operation, produced one at a time; a producer may
/// look at the canonical table as it stands (to skip what is mapped).
pub(crate) trait Batch<F> {
    fn next<S: Copy>(&mut self, canonical: &Table<F, S>) -> Option<PageSpec<F>>;
}

/// Where the frames of a [`Contiguous`] range come from.
#[derive(Clone, Copy)]
enum Frames<'a, F> {
    /// Fresh zeroed frames.
    Fresh,
    /// The given frames, in order.
    Given(&'a [F]),
    /// The owned frames mapped from this address on, for the first this
    /// many bytes (then fresh ones): see [`Region::adopt`].
    MovedFrom(u64, u64),
}

/// The pages of a virtually contiguous range: fresh frames, the given
/// frames in order (one small page each), or another range's frames.
pub(crate) struct Contiguous<'a, F> {
    start: u64,
    next: u64,
    end: u64,
    size: PageSize,
    rights: Rights,
    frames: Frames<'a, F>,
    index: usize,
    /// Whom the fresh frames are for.
    user: FrameFor,
}

impl<'a, F> Contiguous<'a, F> {
    fn new(start: RegionAddr, len: u64, size: PageSize, rights: Rights, frames: Frames<'a, F>) -> Self {
        let start = start.get();
        Self {
            start,
            next: start,
            end: start.saturating_add(len),
            size,
            rights,
            frames,
            index: 0,
            user: FrameFor::SHARED,
        }
    }

    /// The same pages, their fresh frames for `user`.
    pub(crate) fn for_user(self, user: FrameFor) -> Self {
        Self { user, ..self }
    }

    /// Fresh zeroed frames of `size` for `[start, start + len)`.
    pub(crate) fn fresh(start: RegionAddr, len: u64, size: PageSize) -> Self {
        Self::new(start, len, size, Rights::ReadWrite, Frames::Fresh)
    }

    /// The same pages, mapped with `rights`.
    pub(crate) fn with_rights(self, rights: Rights) -> Self {
        Self { rights, ..self }
    }

    /// `frames`, one small page each, from `start` on.
    pub(crate) fn given(start: RegionAddr, frames: &'a [F], rights: Rights) -> Self {
        let len = frames.len() as u64 * PageSize::Small.bytes();
        Self::new(start, len, PageSize::Small, rights, Frames::Given(frames))
    }

    /// `[start, start + len)` of `size` pages with `rights`: the first
    /// `moved` bytes map the frames of the pages from `from` on again (to
    /// be handed over with [`Region::adopt`]), the rest fresh frames.
    pub(crate) fn moved(
        start: RegionAddr,
        len: u64,
        size: PageSize,
        rights: Rights,
        from: RegionAddr,
        moved: u64,
    ) -> Self {
        Self::new(start, len, size, rights, Frames::MovedFrom(from.get(), moved))
    }
}

impl<F: Copy> Batch<F> for Contiguous<'_, F> {
    fn next<S: Copy>(&mut self, _: &Table<F, S>) -> Option<PageSpec<F>> {
        if self.next >= self.end {
            return None;
        }
        let addr = RegionAddr::new(self.next)?;
        let offset = self.next - self.start;
        let frame = match self.frames {
            Frames::Given(frames) => FrameSource::Given(*frames.get(self.index)?),
            Frames::MovedFrom(from, moved) if offset < moved => FrameSource::AliasOf(RegionAddr::new(from + offset)?),
            Frames::Fresh | Frames::MovedFrom(..) => FrameSource::Fresh(self.user),
        };
        self.next += self.size.bytes();
        self.index += 1;
        Some(PageSpec { addr, size: self.size, rights: self.rights, frame })
    }
}

/// The start address of each `size` page of `[start, start + len)`: the
/// pages a contiguous map installed, for unmapping them.
pub(crate) fn pages_of(start: RegionAddr, len: u64, size: PageSize) -> impl Iterator<Item = RegionAddr> + Clone {
    let base = start.get();
    (0..len / size.bytes()).filter_map(move |i| RegionAddr::new(base + i * size.bytes()))
}

/// What a fault handler should check the mapping's rights against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A read or instruction fetch.
    Read,
    /// A write.
    Write,
}

/// The backend with its operation counters and frame and structure
/// tallies: every call is counted here, in one place.
struct Mmu<B> {
    backend: B,
    counts: OpCounts,
    frames: FrameTally,
    /// Structures made in registered spaces and not deleted.
    structures: u64,
}

impl<B: Backend> Mmu<B> {
    fn alloc_frame(&mut self, size: PageSize, user: FrameFor) -> Result<B::Frame, BackendError> {
        self.counts.record(OpKind::AllocFrame);
        let frame = self.backend.alloc_frame(size, user)?;
        *self.frames.of_size(size) += 1;
        Ok(frame)
    }

    fn free_frame(&mut self, frame: B::Frame, size: PageSize) {
        self.counts.record(OpKind::FreeFrame);
        self.backend.free_frame(frame);
        let n = self.frames.of_size(size);
        *n = n.saturating_sub(1);
    }

    fn return_frame(&mut self, frame: B::Frame) {
        self.backend.return_frame(frame);
    }

    fn unmap_everywhere(&mut self, frame: B::Frame) {
        self.counts.record(OpKind::UnmapEverywhere);
        self.backend.unmap_everywhere(frame);
    }

    fn create_structure(
        &mut self,
        space: SpaceRef<B::VSpace>,
        level: Level,
        addr: RegionAddr,
    ) -> Result<B::Structure, BackendError> {
        self.counts.record(OpKind::CreateStructure);
        let structure = self.backend.create_structure(space, level, addr)?;
        self.structures += 1;
        Ok(structure)
    }

    fn delete_structure(&mut self, space: SpaceRef<B::VSpace>, structure: B::Structure) {
        self.counts.record(OpKind::DeleteStructure);
        self.backend.delete_structure(space, structure);
        self.structures = self.structures.saturating_sub(1);
    }

    fn map_frame(&mut self, space: SpaceRef<B::VSpace>, leaf: &Leaf<B::Frame>) -> Result<(), BackendError> {
        self.counts.record(OpKind::MapFrame);
        self.backend.map_frame(space, leaf.addr, leaf.frame, leaf.size, leaf.rights)
    }

    fn unmap_frame(&mut self, space: SpaceRef<B::VSpace>, leaf: &Leaf<B::Frame>) {
        self.counts.record(OpKind::UnmapFrame);
        self.backend.unmap_frame(space, leaf.addr, leaf.frame);
    }

    fn remap_frame(&mut self, space: SpaceRef<B::VSpace>, leaf: &Leaf<B::Frame>) -> Result<(), BackendError> {
        self.counts.record(OpKind::RemapFrame);
        self.backend.remap_frame(space, leaf.addr, leaf.frame, leaf.rights)
    }

    fn zero_part(&mut self, frame: B::Frame, offset: u64, bytes: u64) -> Result<(), BackendError> {
        self.counts.record(OpKind::ZeroPart);
        self.backend.zero_part(frame, offset, bytes)
    }
}

/// Which copies of the pages of an unmap exist: in every registered
/// space (between requests, always), or, while a failed sync is undone,
/// in the spaces it finished (those below a registry index) and, in the
/// space at that index, the pages it had installed before it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reach {
    spaces_below: usize,
    pages_in_next: usize,
}

impl Reach {
    const ALL: Reach = Reach { spaces_below: usize::MAX, pages_in_next: 0 };
    const NONE: Reach = Reach { spaces_below: 0, pages_in_next: 0 };

    /// Whether the page at `position` in the unmap is installed in the
    /// space of registry index `space`.
    fn holds(self, space: usize, position: usize) -> bool {
        space < self.spaces_below || (space == self.spaces_below && position < self.pages_in_next)
    }
}

/// The canonical kernel region, the registry of spaces that replicate it,
/// and the backend that installs it.
pub struct Region<B: Backend> {
    mmu: Mmu<B>,
    table: Table<B::Frame, B::Structure>,
    /// Registered spaces by index (a freed index is reused first), grown
    /// as spaces register.
    spaces: alloc::vec::Vec<Option<B::VSpace>>,
    registered: usize,
    missed_syncs: u64,
}

impl<B: Backend> Region<B> {
    /// An empty region with no space registered.
    pub(crate) const fn new(backend: B) -> Self {
        Self {
            mmu: Mmu { backend, counts: OpCounts::new(), frames: FrameTally::ZERO, structures: 0 },
            table: Table::new(),
            spaces: alloc::vec::Vec::new(),
            registered: 0,
            missed_syncs: 0,
        }
    }

    /// Sets `len` bytes from `start` on to zero, in the 4 KiB pages that
    /// map them (owned by the region: percpu's). `InvalidArgument` where a
    /// page of the range is not such a page; on an error the pages before
    /// it are zeroed already (the caller zeroes free bytes only).
    pub(crate) fn zero(&mut self, start: RegionAddr, len: u64) -> Result<(), Error> {
        let end = start.get().checked_add(len).ok_or(Error::InvalidArgument)?;
        let mut at = start.get();
        while at < end {
            let page = at & !(PAGE_SIZE - 1);
            let leaf = RegionAddr::new(page).and_then(|addr| self.table.leaf_at(addr));
            let leaf = leaf.filter(|l| l.size == PageSize::Small && l.kind == FrameKind::Owned);
            let frame = leaf.ok_or(Error::InvalidArgument)?.frame;
            let upto = end.min(page + PAGE_SIZE);
            self.mmu.zero_part(frame, at - page, upto - at)?;
            at = upto;
        }
        Ok(())
    }

    /// The backend, for inspection.
    pub fn backend(&self) -> &B {
        &self.mmu.backend
    }

    /// The canonical table.
    pub fn canonical(&self) -> &Table<B::Frame, B::Structure> {
        &self.table
    }

    /// Backend operations performed so far, by kind.
    pub fn op_counts(&self) -> OpCounts {
        self.mmu.counts
    }

    /// Frames the server owns.
    pub fn frames(&self) -> FrameTally {
        self.mmu.frames
    }

    /// Paging structures the server made in registered spaces (every
    /// canonical structure once per space).
    pub fn space_structures(&self) -> u64 {
        self.mmu.structures
    }

    /// Registered spaces.
    pub fn space_count(&self) -> usize {
        self.registered
    }

    /// Faults repaired from the canonical table: syncs that were missed. The
    /// eager path keeps this at 0.
    pub fn missed_syncs(&self) -> u64 {
        self.missed_syncs
    }

    /// The handle of registered space `id`.
    pub fn vspace(&self, id: SpaceId) -> Option<B::VSpace> {
        self.spaces.get(id.index()).copied().flatten()
    }

    /// Registered spaces, in id order.
    pub fn space_ids(&self) -> impl Iterator<Item = SpaceId> + '_ {
        self.spaces.iter().enumerate().filter(|(_, v)| v.is_some()).filter_map(|(i, _)| SpaceId::new(i))
    }

    fn space_ref(&self, id: SpaceId) -> Option<SpaceRef<B::VSpace>> {
        self.vspace(id).map(|vspace| SpaceRef { id, vspace })
    }

    /// The lowest registry index in use.
    fn first_space(&self) -> Option<usize> {
        self.spaces.iter().position(Option::is_some)
    }

    /// Register `vspace`: it is entered in the registry first, then receives
    /// every structure and leaf of the region before this returns. On error
    /// everything installed in it is removed and it is not registered.
    pub(crate) fn register(&mut self, vspace: B::VSpace) -> Result<SpaceId, Error> {
        if self.spaces.iter().flatten().any(|v| *v == vspace) {
            return Err(Error::AlreadyRegistered);
        }
        let index = match self.spaces.iter().position(Option::is_none) {
            Some(index) => index,
            None => {
                self.spaces.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
                self.spaces.len()
            }
        };
        let id = SpaceId::new(index).ok_or(Error::LimitReached(Limit::Spaces))?;
        if index == self.spaces.len() {
            self.spaces.push(None);
        }
        if let Some(slot) = self.spaces.get_mut(index) {
            *slot = Some(vspace);
        }
        self.registered += 1;
        let space = SpaceRef { id, vspace };
        if let Err(e) = self.reserve_replication(id) {
            self.forget(id);
            return Err(e);
        }
        if let Err((e, installed)) = self.replicate_all(space) {
            self.teardown(space, installed);
            self.forget(id);
            // A VSpace that maps something where the region's structures
            // go is registered already (through another capability to it),
            // or not the root task's to give: either way not a new space.
            return Err(if e == Error::Backend(BackendError::Occupied) { Error::AlreadyRegistered } else { e });
        }
        Ok(id)
    }

    /// Makes room for space `id`'s replicas of every structure, and in the
    /// backend for its mappings of every leaf, before any is made.
    fn reserve_replication(&mut self, id: SpaceId) -> Result<(), Error> {
        for node in self.table.node_ids() {
            self.table.reserve_replica(node, id)?;
        }
        let table = &self.table;
        let frames = table.leaf_ids().filter_map(|leaf| table.leaf_by_id(leaf).map(|leaf| leaf.frame));
        self.mmu.backend.reserve_mappings(id, frames).map_err(Error::from)
    }

    /// Installs every structure and leaf in `space`; on error, says how
    /// many leaves (in leaf order) it had installed.
    fn replicate_all(&mut self, space: SpaceRef<B::VSpace>) -> Result<(), (Error, usize)> {
        for level in Level::CREATED_TOP_DOWN {
            for node in self.table.node_ids() {
                if self.table.structure_by_id(node).is_some_and(|s| s.level == level) {
                    self.install_structure(space, node).map_err(|e| (e, 0))?;
                }
            }
        }
        let mut installed = 0;
        for id in self.table.leaf_ids() {
            let Some(leaf) = self.table.leaf_by_id(id).copied() else { continue };
            self.mmu.map_frame(space, &leaf).map_err(|e| (e.into(), installed))?;
            installed += 1;
        }
        Ok(())
    }

    /// Makes the replica of canonical structure `node` in `space`.
    fn install_structure(&mut self, space: SpaceRef<B::VSpace>, node: table::NodeId) -> Result<(), Error> {
        let s = self.table.structure_by_id(node).ok_or(Error::NotFound)?;
        let (level, addr) = (s.level, RegionAddr::new(s.base).ok_or(Error::InvalidArgument)?);
        self.table.reserve_replica(node, space.id)?;
        let handle = self.mmu.create_structure(space, level, addr)?;
        self.table.set_replica(node, space.id, Some(handle));
        Ok(())
    }

    /// Remove everything the server installed in `space` (the first
    /// `leaves` leaves, in leaf order), leaves first, then structures from
    /// the bottom up.
    fn teardown(&mut self, space: SpaceRef<B::VSpace>, leaves: usize) {
        let mut left = leaves;
        for id in self.table.leaf_ids() {
            if left == 0 {
                break;
            }
            if let Some(leaf) = self.table.leaf_by_id(id).copied() {
                self.mmu.unmap_frame(space, &leaf);
                left -= 1;
            }
        }
        for level in Level::CREATED_TOP_DOWN.into_iter().rev() {
            for node in self.table.node_ids() {
                let Some(handle) =
                    self.table.structure_by_id(node).filter(|s| s.level == level).and_then(|s| s.replica(space.id))
                else {
                    continue;
                };
                self.mmu.delete_structure(space, handle);
                self.table.set_replica(node, space.id, None);
            }
        }
    }

    fn forget(&mut self, id: SpaceId) {
        if let Some(slot) = self.spaces.get_mut(id.index()) {
            if slot.take().is_some() {
                self.registered -= 1;
            }
        }
        while self.spaces.last().is_some_and(Option::is_none) {
            self.spaces.pop();
        }
    }

    /// Map every page of `batch` in the canonical table and in every
    /// registered space. Returns the levels created. On error nothing of it
    /// remains: state and accounting are as before.
    pub(crate) fn map<T: Batch<B::Frame>>(&mut self, batch: &mut T) -> Result<LevelMask, Error> {
        let mark = self.mark();
        let mut log = alloc::vec::Vec::new();
        let mut created = LevelMask::EMPTY;
        let canonical = self.map_canonical(batch, &mut log, &mut created).and_then(|()| self.reserve_sync(&log));
        let result = canonical.map_err(|e| (e, Reach::NONE));
        match result.and_then(|()| self.sync(&log, created)) {
            Ok(()) => Ok(created),
            Err((e, reach)) => {
                self.unmap_reached(log.iter().copied(), Prune::CreatedSince(mark), reach);
                Err(e)
            }
        }
    }

    /// This point in the canonical table's history: an unmap with
    /// [`Prune::CreatedSince`] this mark takes out the structures created
    /// after it (in the canonical table and every space) and keeps those
    /// that were there before.
    pub(crate) fn mark(&self) -> Mark {
        self.table.mark()
    }

    fn map_canonical<T: Batch<B::Frame>>(
        &mut self,
        batch: &mut T,
        log: &mut alloc::vec::Vec<RegionAddr>,
        created: &mut LevelMask,
    ) -> Result<(), Error> {
        while let Some(page) = batch.next(&self.table) {
            if log.len() >= MAX_PAGES_PER_OP {
                return Err(Error::LimitReached(Limit::PagesPerOp));
            }
            log.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
            let (frame, kind) = match page.frame {
                FrameSource::Fresh(user) => (self.mmu.alloc_frame(page.size, user)?, FrameKind::Owned),
                FrameSource::Given(frame) => (frame, FrameKind::Borrowed),
                FrameSource::AliasOf(at) => {
                    let owner = self.table.leaf_at(at).filter(|l| l.kind == FrameKind::Owned);
                    (owner.ok_or(Error::InvalidArgument)?.frame, FrameKind::Alias)
                }
            };
            match self.table.insert(Leaf::new(page.addr, frame, page.size, page.rights, kind)) {
                Ok(mask) => {
                    *created = created.union(mask);
                    log.push(page.addr);
                }
                Err(e) => {
                    if kind == FrameKind::Owned {
                        self.mmu.free_frame(frame, page.size);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Makes room for the mappings [`Region::sync`] makes of the leaves of
    /// `log` in every registered space.
    fn reserve_sync(&mut self, log: &[RegionAddr]) -> Result<(), Error> {
        let table = &self.table;
        let frames = log.iter().filter_map(|&addr| table.leaf_at(addr).map(|leaf| leaf.frame));
        self.mmu.backend.reserve_new_mappings(frames, self.registered).map_err(Error::from)
    }

    /// Install the leaves of `log`, and the structures created for them
    /// (walked only if `created` is not empty), in every registered space,
    /// in registry order. On error, says how far it got.
    fn sync(&mut self, log: &[RegionAddr], created: LevelMask) -> Result<(), (Error, Reach)> {
        for index in 0..self.spaces.len() {
            let Some(space) = SpaceId::new(index).and_then(|id| self.space_ref(id)) else { continue };
            let failed = |e: Error, pages_in_next: usize| (e, Reach { spaces_below: index, pages_in_next });
            if !created.is_empty() {
                for &addr in log {
                    for node in self.table.path(addr) {
                        if self.table.structure_by_id(node).is_some_and(|s| s.replica(space.id).is_none()) {
                            self.install_structure(space, node).map_err(|e| failed(e, 0))?;
                        }
                    }
                }
            }
            for (position, &addr) in log.iter().enumerate() {
                let leaf = *self.table.translate(addr).ok_or(failed(Error::NotFound, position))?;
                self.mmu.map_frame(space, &leaf).map_err(|e| failed(e.into(), position))?;
            }
        }
        Ok(())
    }

    /// Unmap the pages starting at each address of `pages` from every space
    /// and the canonical table, releasing frames, and remove the structures
    /// they leave empty that `prune` names (in the canonical table and in
    /// every space). Addresses where no page starts are skipped. Aliases
    /// and borrowed frames go first (their copies one by one), then owned
    /// frames (unmapped from every space at once, then freed).
    ///
    /// A purge keeps every structure ([`Prune::Keep`]), as Linux keeps its
    /// vmalloc page tables: the next allocation in the range maps its
    /// pages and makes nothing. A larger page takes the place of the empty
    /// ones below it ([`Region::clear_for`]), and memory running out
    /// reclaims them all ([`Region::reclaim_kept`]).
    pub(crate) fn unmap<I: Iterator<Item = RegionAddr> + Clone>(&mut self, pages: I, prune: Prune) {
        self.unmap_reached(pages, prune, Reach::ALL);
    }

    /// Gives up borrowed frames that no leaf holds.
    pub(crate) fn return_frames(&mut self, frames: &[B::Frame]) {
        for &frame in frames {
            self.mmu.return_frame(frame);
        }
    }

    /// [`Region::unmap`] of pages whose copies exist where `reach` says.
    fn unmap_reached<I: Iterator<Item = RegionAddr> + Clone>(&mut self, pages: I, prune: Prune, reach: Reach) {
        // Reach is monotone in the registry index: a page is installed
        // somewhere only if it is in the first registered space.
        let first = self.first_space();
        for owned_pass in [false, true] {
            for (position, addr) in pages.clone().enumerate() {
                let Some(leaf) =
                    self.table.leaf_at(addr).copied().filter(|l| (l.kind == FrameKind::Owned) == owned_pass)
                else {
                    continue;
                };
                if owned_pass {
                    if first.is_some_and(|first| reach.holds(first, position)) {
                        self.mmu.unmap_everywhere(leaf.frame);
                    }
                    self.mmu.free_frame(leaf.frame, leaf.size);
                } else {
                    self.unmap_copies(&leaf, position, reach);
                    // Undoing a request leaves the frames it was given to
                    // its caller; any other removal is the borrowed
                    // frame's last.
                    if leaf.kind == FrameKind::Borrowed && !matches!(prune, Prune::CreatedSince(_)) {
                        self.mmu.return_frame(leaf.frame);
                    }
                }
                if let Some(pruned) = self.table.remove(addr, prune) {
                    for s in &pruned {
                        self.delete_replicas(s);
                    }
                }
            }
        }
    }

    /// Unmaps the copies of a leaf whose frame is not the server's (an
    /// alias or a borrowed frame), one by one.
    fn unmap_copies(&mut self, leaf: &Leaf<B::Frame>, position: usize, reach: Reach) {
        for index in 0..self.spaces.len() {
            if !reach.holds(index, position) {
                break;
            }
            let Some(space) = SpaceId::new(index).and_then(|id| self.space_ref(id)) else { continue };
            self.mmu.unmap_frame(space, leaf);
        }
    }

    /// Deletes the empty structures (ones a purge kept) under the `size`
    /// pages of `[start, start + len)`, in the canonical table and every
    /// space, deepest first, so that the pages can take their place. The
    /// range must hold no leaf.
    pub(crate) fn clear_for(&mut self, start: RegionAddr, len: u64, size: PageSize) {
        for level in [Level::Pt, Level::Pd] {
            if (level as usize) < (size.leaf_level() as usize) {
                self.clear_empty(start, len, level);
            }
        }
    }

    /// Deletes every structure that holds no entry (those a purge kept), in
    /// the canonical table and every space, deepest first; whether there
    /// was one. Memory running out gives them up before any request fails.
    pub(crate) fn reclaim_kept(&mut self) -> bool {
        let mut any = false;
        for level in [Level::Pt, Level::Pd, Level::Pdpt] {
            let mut from = 0;
            while let Some((id, removed)) = self.table.take_empty(level, from) {
                self.delete_replicas(&removed);
                (any, from) = (true, id + 1);
            }
        }
        any
    }

    /// Structures a purge kept, summed over the spaces: empty, they hold
    /// no mapping, and [`Region::reclaim_kept`] gives them up.
    pub fn kept_structures(&self) -> u64 {
        self.table.kept_replicas() as u64
    }

    fn clear_empty(&mut self, start: RegionAddr, len: u64, level: Level) {
        let span = level.span();
        for raw in (start.get()..start.get().saturating_add(len)).step_by(span as usize) {
            let removed = RegionAddr::new(raw).and_then(|addr| self.table.remove_empty(addr, level));
            if let Some(removed) = removed {
                self.delete_replicas(&removed);
            }
        }
    }

    fn delete_replicas(&mut self, s: &table::Removed<B::Structure>) {
        for (index, handle) in s.replicas.iter().enumerate() {
            let (Some(handle), Some(space)) = (handle, SpaceId::new(index).and_then(|id| self.space_ref(id))) else {
                continue;
            };
            self.mmu.delete_structure(space, *handle);
        }
    }

    /// Hands the owned frames of the `size` pages of `[from, from + len)`
    /// to the pages of `[to, to + len)`, which a map of
    /// [`Contiguous::moved`] made map them again, and unmaps the old pages
    /// from every space and the canonical table (their copies only: the
    /// frames stay, with their contents, at `to`), keeping the structures
    /// they leave empty. Nothing can fail: it only removes.
    pub(crate) fn adopt(&mut self, from: RegionAddr, to: RegionAddr, len: u64, size: PageSize) {
        for (old, new) in pages_of(from, len, size).zip(pages_of(to, len, size)) {
            let frames = (self.table.translate(old).copied(), self.table.translate(new).copied());
            if let (Some(old_leaf), Some(new_leaf)) = frames {
                let owned_by_old = old_leaf.kind == FrameKind::Owned && new_leaf.kind == FrameKind::Alias;
                if owned_by_old && old_leaf.frame == new_leaf.frame {
                    for (addr, kind) in [(new, FrameKind::Owned), (old, FrameKind::Alias)] {
                        if let Some(leaf) = self.table.leaf_at_mut(addr) {
                            leaf.kind = kind;
                        }
                    }
                }
            }
        }
        self.unmap(pages_of(from, len, size), Prune::Keep);
    }

    /// Give the `size` pages of `[start, start + len)` `rights`, in the
    /// canonical table and in every registered space, in registry order.
    /// On error nothing changed: the pages have their old rights again
    /// everywhere (a copy whose rights cannot be put back is unmapped, so
    /// that its space's next access maps it from the canonical table).
    pub(crate) fn protect(&mut self, start: RegionAddr, len: u64, size: PageSize, rights: Rights) -> Result<(), Error> {
        let pages = pages_of(start, len, size);
        let Some(old) = pages.clone().find_map(|addr| self.table.translate(addr)).map(|leaf| leaf.rights) else {
            return Ok(());
        };
        self.set_rights(pages.clone(), rights);
        match self.remap(pages.clone(), Reach::ALL) {
            Ok(()) => Ok(()),
            Err((e, reach)) => {
                self.set_rights(pages.clone(), old);
                if let Err((_, unrestored)) = self.remap(pages.clone(), reach) {
                    self.unmap_unrestored(pages, unrestored, reach);
                }
                Err(e)
            }
        }
    }

    fn set_rights(&mut self, pages: impl Iterator<Item = RegionAddr>, rights: Rights) {
        for addr in pages {
            if let Some(leaf) = self.table.leaf_at_mut(addr) {
                leaf.rights = rights;
            }
        }
    }

    /// Gives the copies of the leaves that start at `pages`, where `reach`
    /// says they are, the canonical leaves' rights; on error, says how far
    /// it got.
    fn remap(&mut self, pages: impl Iterator<Item = RegionAddr> + Clone, reach: Reach) -> Result<(), (Error, Reach)> {
        for index in 0..self.spaces.len() {
            let Some(space) = SpaceId::new(index).and_then(|id| self.space_ref(id)) else { continue };
            for (position, addr) in pages.clone().enumerate() {
                if !reach.holds(index, position) {
                    return Ok(());
                }
                let Some(leaf) = self.table.leaf_at(addr).copied() else { continue };
                let failed = |e: BackendError| (e.into(), Reach { spaces_below: index, pages_in_next: position });
                self.mmu.remap_frame(space, &leaf).map_err(failed)?;
            }
        }
        Ok(())
    }

    /// Unmaps the copies of `pages` that `reach` holds and `restored` does
    /// not (their rights could not be put back); each space maps them
    /// again from the canonical table at its next access.
    fn unmap_unrestored(&mut self, pages: impl Iterator<Item = RegionAddr> + Clone, restored: Reach, reach: Reach) {
        for index in 0..self.spaces.len() {
            let Some(space) = SpaceId::new(index).and_then(|id| self.space_ref(id)) else { continue };
            for (position, addr) in pages.clone().enumerate() {
                let Some(leaf) = self.table.leaf_at(addr).copied() else { continue };
                if reach.holds(index, position) && !restored.holds(index, position) {
                    self.mmu.unmap_frame(space, &leaf);
                }
            }
        }
    }

    /// Repair a fault at `raw` in space `id` from the canonical table: if it
    /// maps the address with rights that allow `access`, reinstall that leaf
    /// in the space and count a missed sync; otherwise it is a real fault.
    pub fn handle_fault(&mut self, id: SpaceId, raw: u64, access: Access) -> Result<(), FaultError> {
        let space = self.space_ref(id).ok_or(FaultError::NoSuchSpace)?;
        let addr = RegionAddr::new(raw).ok_or(FaultError::OutsideRegion)?;
        let leaf = *self.table.translate(addr).ok_or(FaultError::NotMapped)?;
        if access == Access::Write && leaf.rights == Rights::ReadOnly {
            return Err(FaultError::Protection);
        }
        self.mmu.map_frame(space, &leaf).map_err(FaultError::RepairFailed)?;
        self.missed_syncs += 1;
        Ok(())
    }
}

impl<B: Platform> Region<B> {
    /// Starts the backend from `start` (see [`Platform::start`]).
    pub(crate) fn start_backend(&mut self, start: B::Start<'_>) -> Result<(), BackendError> {
        self.mmu.backend.start(start)
    }

    /// Unregister space `id`, removing everything the server created in it,
    /// then release its handle and what the backend kept for it.
    pub(crate) fn unregister(&mut self, id: SpaceId) -> Result<(), Error> {
        let space = self.space_ref(id).ok_or(Error::NoSuchSpace)?;
        self.teardown(space, usize::MAX);
        self.forget(id);
        self.mmu.backend.release_vspace(id, space.vspace);
        Ok(())
    }

    /// The physical address of `frame`.
    pub(crate) fn frame_address(&mut self, frame: B::Frame) -> u64 {
        self.mmu.backend.frame_address(frame)
    }

    /// Arms failure injection (see [`Platform::inject_failure`]).
    pub(crate) fn inject_failure(&mut self, point: FailurePoint, nth: u32) -> Result<(), ErrorCode> {
        self.mmu.backend.inject_failure(point, nth)
    }

    /// An empty slot for the next capability that arrives.
    pub(crate) fn take_receive_slot(&mut self) -> Option<B::VSpace> {
        self.mmu.backend.take_receive_slot()
    }

    /// Deletes the capability in `slot` that was not kept.
    pub(crate) fn empty_receive_slot(&mut self, slot: B::VSpace) {
        self.mmu.backend.empty_receive_slot(slot);
    }

    /// A frame a client supplied (see [`Platform::borrow_frame`]).
    pub(crate) fn borrow_frame(
        &mut self,
        cnode: B::VSpace,
        index: u64,
        depth: u8,
        rights: Rights,
    ) -> Result<(B::Frame, u64), Error> {
        self.mmu.backend.borrow_frame(cnode, index, depth, rights)
    }

    /// Grows the server's heap (see [`Platform::grow_heap`]).
    pub(crate) fn grow_heap(&mut self, bytes: u64) -> Result<(), BackendError> {
        self.mmu.backend.grow_heap(bytes)
    }
}

#[cfg(feature = "sim")]
impl Region<crate::sim::Sim> {
    /// The simulator's test hooks (making VSpaces and client frames,
    /// failure injection, losing a mapping): none of them is a backend
    /// operation.
    pub fn sim_hooks(&mut self) -> crate::sim::SimHooks<'_> {
        crate::sim::SimHooks::new(&mut self.mmu.backend)
    }
}

/// What a host test's rig does around the server as the rest of the
/// system would (the root task making a VSpace in the server's CSpace, the
/// loop deleting what arrived in its receive slot) needs the backend
/// itself. Only with `sim`, which the seL4 program is never built with:
/// there nothing reaches the backend but through the populate path.
#[cfg(feature = "sim")]
impl<B: crate::host_backend::HostBackend> Region<B> {
    /// The backend, for a host test's rig.
    pub fn rig_backend(&mut self) -> &mut B {
        &mut self.mmu.backend
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Area, PAGE_SIZE};
    use crate::sim::{Sim, SimFrame};

    fn region_with_spaces(n: usize) -> Region<Sim> {
        let mut r = Region::new(Sim::new());
        for _ in 0..n {
            let v = r.sim_hooks().new_vspace();
            assert!(r.register(v).is_ok());
        }
        r
    }

    /// A batch of explicit pages.
    struct List<'a, I>(&'a mut I);

    impl<I: Iterator<Item = PageSpec<SimFrame>>> Batch<SimFrame> for List<'_, I> {
        fn next<S: Copy>(&mut self, _: &Table<SimFrame, S>) -> Option<PageSpec<SimFrame>> {
            self.0.next()
        }
    }

    fn at(offset: u64) -> RegionAddr {
        RegionAddr::new(Area::Vmalloc.start() + offset).expect("in vmalloc")
    }

    #[test]
    fn the_level_mask_reports_created_structures_and_skips_the_walk_when_empty() {
        let mut r = region_with_spaces(2);
        let all = LevelMask::EMPTY.with(Level::Pdpt).with(Level::Pd).with(Level::Pt);
        assert_eq!(r.map(&mut Contiguous::<SimFrame>::fresh(at(0), 2 * PAGE_SIZE, PageSize::Small)), Ok(all));
        let before = r.op_counts();
        assert_eq!(
            r.map(&mut Contiguous::<SimFrame>::fresh(at(2 * PAGE_SIZE), PAGE_SIZE, PageSize::Small)),
            Ok(LevelMask::EMPTY)
        );
        let ops = r.op_counts().since(&before);
        assert_eq!((ops.get(OpKind::CreateStructure), ops.get(OpKind::MapFrame)), (0, 2));
        r.unmap(pages_of(at(0), 3 * PAGE_SIZE, PageSize::Small), Prune::All);
        assert_eq!((r.canonical().leaf_count(), r.canonical().structure_count()), (0, 0));
        assert_eq!(r.backend().live_structures(), 0);
    }

    #[test]
    fn aliases_go_before_their_owner_and_borrowed_frames_stay_with_the_client() {
        let mut r = region_with_spaces(2);
        let lent = r.sim_hooks().client_frame();
        assert!(r.map(&mut Contiguous::fresh(at(0), PAGE_SIZE, PageSize::Small)).is_ok());
        let alias = PageSpec {
            addr: at(PAGE_SIZE),
            size: PageSize::Small,
            rights: Rights::ReadOnly,
            frame: FrameSource::AliasOf(at(0)),
        };
        let borrowed = PageSpec {
            addr: at(2 * PAGE_SIZE),
            size: PageSize::Small,
            rights: Rights::ReadWrite,
            frame: FrameSource::Given(lent),
        };
        let mut pages = [alias, borrowed].into_iter();
        assert!(r.map(&mut List(&mut pages)).is_ok());
        assert_eq!(r.canonical().translate(at(PAGE_SIZE)).map(|l| l.kind), Some(FrameKind::Alias));
        assert_eq!(r.frames().small, 1, "one owned frame for two mappings");
        r.unmap(pages_of(at(0), 3 * PAGE_SIZE, PageSize::Small), Prune::All);
        assert_eq!(r.backend().live_frames(), FrameTally::ZERO);
        assert_eq!(r.canonical().leaf_count(), 0);
    }

    #[test]
    fn an_alias_of_nothing_is_refused_and_rolled_back() {
        let mut r = region_with_spaces(1);
        let mut pages = [
            PageSpec {
                addr: at(0),
                size: PageSize::Small,
                rights: Rights::ReadWrite,
                frame: FrameSource::Fresh(FrameFor::SHARED),
            },
            PageSpec {
                addr: at(PAGE_SIZE),
                size: PageSize::Small,
                rights: Rights::ReadOnly,
                frame: FrameSource::AliasOf(at(8 * PAGE_SIZE)),
            },
        ]
        .into_iter();
        assert_eq!(r.map(&mut List(&mut pages)), Err(Error::InvalidArgument));
        assert_eq!((r.canonical().leaf_count(), r.frames().small, r.backend().live_frames()), (0, 0, FrameTally::ZERO));
    }
}
