//! percpu: per-CPU allocations. A chunk holds one unit of
//! [`PERCPU_UNIT_SIZE`] bytes for each configured CPU, chunk `c` at
//! `percpu start + c * stride` (the stride is the units of every CPU the
//! server serves, as many as the kernel booted), unit `u` of it
//! `u * PERCPU_UNIT_SIZE` further. An offset names the same place in
//! every unit of its chunk. What an offset is and where CPU `u`'s copy of
//! it lies are defined once, by the protocol's [`PercpuLayout`], which the
//! server announces to clients: this allocator makes its offsets, maps its
//! chunks and finds addresses with it, so a client's address is always the
//! one mapped.
//!
//! The first chunk is populated at start-up and kept; further chunks are
//! created and populated when no chunk has room, and depopulated when their
//! last allocation is freed: their number is bounded by memory and by the
//! 32-bit offsets of the wire. Only the owner may free an allocation.
//!
//! An allocation starts as zeros in every unit, as Linux's `alloc_percpu`
//! does: a new chunk's frames are zeroed, and a chunk remembers the
//! granules that allocations used and gave back; an allocation over any of
//! them zeroes its range in every unit before it is made (and fails, with
//! nothing made, where that cannot be done).

use crate::accounting::Clients;
use crate::avl::AvlMap;
use crate::backend::Backend;
use crate::error::{Error, Limit};
use crate::ids::{Badge, CpuId};
use crate::layout::{Area, PageSize, PercpuAddr, RegionAddr, PAGE_SIZE};
use crate::limits::{PERCPU_GRANULE, PERCPU_UNIT_SIZE};
use crate::populate::{pages_of, Contiguous, Prune, Region};
use alloc::vec::Vec;
use memserver_protocol::PercpuLayout;

/// Granules in one unit.
const GRANULES: usize = (PERCPU_UNIT_SIZE / PERCPU_GRANULE) as usize;
const WORDS: usize = GRANULES.div_ceil(64);

/// A percpu allocation: the same offset in every unit of its chunk, as
/// [`PercpuLayout`] defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PercpuOffset(u32);

impl PercpuOffset {
    /// `raw` as an offset (validity is checked by the allocator).
    pub const fn new(raw: u32) -> Self {
        Self(raw)
    }

    /// The raw offset, as on the wire.
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// A live allocation as seen from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PercpuAlloc {
    /// Where it is.
    pub offset: PercpuOffset,
    /// Bytes asked for (per CPU).
    pub size: u64,
    /// Who allocated it.
    pub owner: Badge,
}

#[derive(Clone, Copy)]
struct AllocRecord {
    size: u64,
    owner: Badge,
}

/// A bit per granule of a unit.
type Granules = [u64; WORDS];

/// Whether granule `g` of `map` is set.
fn has(map: &Granules, g: usize) -> bool {
    map.get(g / 64).is_some_and(|w| w & (1 << (g % 64)) != 0)
}

/// Sets (`on`) or clears granules `from..from + count` of `map`.
fn mark(map: &mut Granules, from: usize, count: usize, on: bool) {
    for g in from..from + count {
        if let Some(w) = map.get_mut(g / 64) {
            if on {
                *w |= 1 << (g % 64);
            } else {
                *w &= !(1 << (g % 64));
            }
        }
    }
}

/// Occupancy of one chunk's units, a bit per granule, and the granules
/// that may hold an earlier allocation's bytes.
#[derive(Clone, Copy)]
struct Chunk {
    map: Granules,
    used: usize,
    /// Granules an allocation used and gave back since the chunk was
    /// populated (its frames zeroed), and no later allocation zeroed.
    dirty: Granules,
}

impl Chunk {
    const EMPTY: Chunk = Chunk { map: [0; WORDS], used: 0, dirty: [0; WORDS] };

    fn is_set(&self, g: usize) -> bool {
        has(&self.map, g)
    }

    fn set(&mut self, from: usize, count: usize, on: bool) {
        mark(&mut self.map, from, count, on);
        self.used = if on { self.used + count } else { self.used.saturating_sub(count) };
        if !on {
            mark(&mut self.dirty, from, count, true);
        }
    }

    /// Whether a granule of `from..from + count` may hold old bytes.
    fn any_dirty(&self, from: usize, count: usize) -> bool {
        (from..from + count).any(|g| has(&self.dirty, g))
    }

    /// The first free run of `count` granules starting at a multiple of
    /// `align` granules; each busy granule skips the search past it.
    fn find(&self, count: usize, align: usize) -> Option<usize> {
        let mut start = 0;
        while start + count <= GRANULES {
            match (start..start + count).find(|&g| self.is_set(g)) {
                Some(busy) => start = (busy + 1).next_multiple_of(align.max(1)),
                None => return Some(start),
            }
        }
        None
    }
}

/// The percpu allocator.
pub(crate) struct Percpu {
    cpus: usize,
    /// Chunks by index; `None` for one depopulated (its index is reused).
    chunks: Vec<Option<Chunk>>,
    allocs: AvlMap<AllocRecord>,
}

impl Percpu {
    /// The allocator for `cpus` CPUs, with no chunk yet: see
    /// [`Percpu::start`].
    pub(crate) const fn new(cpus: usize) -> Self {
        Self { cpus, chunks: Vec::new(), allocs: AvlMap::new() }
    }

    /// Check the CPU count and populate the first chunk (once).
    pub(crate) fn start<B: Backend>(&mut self, region: &mut Region<B>) -> Result<(), Error> {
        if self.cpus == 0 || self.cpus > usize::from(u16::MAX) {
            return Err(Error::InvalidArgument);
        }
        match self.chunks.first() {
            Some(Some(_)) => Ok(()),
            _ => self.populate_chunk(region, 0),
        }
    }

    /// The percpu layout this allocator serves, as announced to clients.
    pub(crate) const fn layout(&self) -> PercpuLayout {
        PercpuLayout {
            start: Area::Percpu.start(),
            unit_size: PERCPU_UNIT_SIZE,
            chunk_stride: self.cpus as u64 * PERCPU_UNIT_SIZE,
            // `start` refuses more than u16::MAX.
            cpus: self.cpus as u16,
        }
    }

    /// The offset of granule `granule` of chunk `index`.
    fn offset(&self, index: usize, granule: usize) -> Option<PercpuOffset> {
        let chunk = u32::try_from(index).ok()?;
        self.layout().offset(chunk, granule as u64 * PERCPU_GRANULE).map(PercpuOffset)
    }

    /// The chunk and granule `offset` names.
    fn place(&self, offset: PercpuOffset) -> (usize, usize) {
        let layout = self.layout();
        (layout.chunk(offset.0) as usize, (layout.in_unit(offset.0) / PERCPU_GRANULE) as usize)
    }

    /// Where chunk `index` starts: its first offset in CPU 0's unit.
    fn chunk_start(&self, index: usize) -> Option<RegionAddr> {
        let first = self.offset(index, 0)?;
        self.layout().address(first.0, 0).and_then(PercpuAddr::new).map(PercpuAddr::region)
    }

    fn chunk_len(&self) -> u64 {
        self.cpus as u64 * PERCPU_UNIT_SIZE
    }

    fn populate_chunk<B: Backend>(&mut self, region: &mut Region<B>, index: usize) -> Result<(), Error> {
        let start = self.chunk_start(index).ok_or(Error::LimitReached(Limit::PercpuChunks))?;
        let len = self.chunk_len();
        if index >= self.chunks.len() {
            self.chunks.try_reserve(index + 1 - self.chunks.len()).map_err(|_| Error::OutOfMemory)?;
        }
        region.map(&mut Contiguous::fresh(start, len, PageSize::Small))?;
        if index >= self.chunks.len() {
            self.chunks.resize(index + 1, None);
        }
        if let Some(slot) = self.chunks.get_mut(index) {
            *slot = Some(Chunk::EMPTY);
        }
        Ok(())
    }

    fn depopulate_chunk<B: Backend>(&mut self, region: &mut Region<B>, index: usize) {
        if let Some(start) = self.chunk_start(index) {
            region.unmap(pages_of(start, self.chunk_len(), PageSize::Small), Prune::All);
        }
        if let Some(slot) = self.chunks.get_mut(index) {
            *slot = None;
        }
        while self.chunks.last().is_some_and(Option::is_none) {
            self.chunks.pop();
        }
    }

    /// `size` bytes aligned to `align` in every unit, for `owner`, who is
    /// charged `size` times the number of CPUs.
    pub(crate) fn alloc<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        owner: Badge,
        size: u64,
        align: u64,
    ) -> Result<PercpuOffset, Error> {
        if size == 0 || size > PERCPU_UNIT_SIZE || !align.is_power_of_two() || align > PAGE_SIZE {
            return Err(Error::InvalidArgument);
        }
        self.allocs.reserve_total(self.allocs.len() + 1).map_err(|_| Error::OutOfMemory)?;
        let count = size.div_ceil(PERCPU_GRANULE) as usize;
        let align_granules = (align.max(PERCPU_GRANULE) / PERCPU_GRANULE) as usize;
        let charge = size * self.cpus as u64;
        clients.charge(owner, charge)?;
        let placed = self.make_room(region, count, align_granules);
        let zeroed = placed.and_then(|(index, granule, offset)| {
            self.zero_for_reuse(region, (index, granule, count), offset).map(|()| (index, granule, offset))
        });
        let (index, granule, offset) = match zeroed {
            Ok(place) => place,
            Err(e) => {
                clients.refund(owner, charge);
                return Err(e);
            }
        };
        if let Some(chunk) = self.chunks.get_mut(index).and_then(Option::as_mut) {
            chunk.set(granule, count, true);
        }
        // Room was made above and offsets of live allocations differ.
        let _ = self.allocs.insert(offset.0.into(), count as u64 * PERCPU_GRANULE, AllocRecord { size, owner });
        Ok(offset)
    }

    /// Zeroes the `count` granules from `granule` of chunk `index` (at
    /// `offset`) in every unit if an earlier allocation used any of them,
    /// and forgets that they were used. A failure leaves them to zero
    /// again (only free bytes were written).
    fn zero_for_reuse<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        (index, granule, count): (usize, usize, usize),
        offset: PercpuOffset,
    ) -> Result<(), Error> {
        let dirty = self.chunks.get(index).and_then(Option::as_ref).is_some_and(|c| c.any_dirty(granule, count));
        if !dirty {
            return Ok(());
        }
        let bytes = count as u64 * PERCPU_GRANULE;
        for cpu in 0..self.cpus {
            let at = self.layout().address(offset.0, cpu as u16).and_then(PercpuAddr::new);
            region.zero(at.ok_or(Error::InvalidArgument)?.region(), bytes)?;
        }
        if let Some(chunk) = self.chunks.get_mut(index).and_then(Option::as_mut) {
            mark(&mut chunk.dirty, granule, count, false);
        }
        Ok(())
    }

    /// Where `count` granules aligned to `align` granules go: the first
    /// chunk with room, else a new chunk in the first free slot, populated
    /// here. Returns the chunk, the granule and the offset.
    fn make_room<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        count: usize,
        align: usize,
    ) -> Result<(usize, usize, PercpuOffset), Error> {
        let found = self.chunks.iter().enumerate().find_map(|(i, c)| c.as_ref()?.find(count, align).map(|g| (i, g)));
        let (index, granule) = match found {
            Some(place) => place,
            None => (self.chunks.iter().position(Option::is_none).unwrap_or(self.chunks.len()), 0),
        };
        let offset = self.offset(index, granule).ok_or(Error::LimitReached(Limit::PercpuChunks))?;
        if found.is_none() {
            self.populate_chunk(region, index)?;
        }
        Ok((index, granule, offset))
    }

    /// Free `offset`; a chunk other than the first is depopulated when empty.
    pub(crate) fn free<B: Backend>(
        &mut self,
        region: &mut Region<B>,
        clients: &mut Clients,
        caller: Badge,
        offset: PercpuOffset,
    ) -> Result<(), Error> {
        let entry = self.allocs.get(offset.0.into()).ok_or(Error::NotFound)?;
        let (span, record) = (entry.span, *entry.val);
        if record.owner != caller {
            return Err(Error::NotOwner);
        }
        self.allocs.remove(offset.0.into());
        let (index, granule) = self.place(offset);
        let mut now_empty = false;
        if let Some(chunk) = self.chunks.get_mut(index).and_then(Option::as_mut) {
            chunk.set(granule, (span / PERCPU_GRANULE) as usize, false);
            now_empty = chunk.used == 0;
        }
        if now_empty && index != 0 {
            self.depopulate_chunk(region, index);
        }
        clients.refund(caller, record.size * self.cpus as u64);
        Ok(())
    }

    /// The address of `offset` in `cpu`'s unit, in a populated chunk.
    pub(crate) fn address(&self, offset: PercpuOffset, cpu: CpuId) -> Result<PercpuAddr, Error> {
        if cpu.index() >= self.cpus {
            return Err(Error::InvalidArgument);
        }
        let (index, _) = self.place(offset);
        self.chunks.get(index).and_then(Option::as_ref).ok_or(Error::NotFound)?;
        let raw = self.layout().address(offset.0, cpu.index() as u16).ok_or(Error::NotFound)?;
        PercpuAddr::new(raw).ok_or(Error::NotFound)
    }

    /// Live allocations in offset order.
    pub(crate) fn allocations(&self) -> impl Iterator<Item = PercpuAlloc> + '_ {
        // Keys are offsets, which fit a u32.
        self.allocs.iter().map(|e| PercpuAlloc {
            offset: PercpuOffset(e.key as u32),
            size: e.val.size,
            owner: e.val.owner,
        })
    }

    /// Live allocations.
    pub(crate) fn allocation_count(&self) -> usize {
        self.allocs.len()
    }

    /// Populated chunks.
    pub(crate) fn chunk_count(&self) -> usize {
        self.chunks.iter().flatten().count()
    }

    /// Configured CPUs.
    pub(crate) fn cpus(&self) -> usize {
        self.cpus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_search_skips_busy_granules_and_keeps_alignment() {
        let mut c = Chunk::EMPTY;
        c.set(0, 3, true);
        assert_eq!(c.find(2, 1), Some(3));
        assert_eq!(c.find(2, 4), Some(4));
        c.set(4, GRANULES - 4, true);
        assert_eq!(c.find(1, 1), Some(3));
        assert_eq!(c.find(2, 1), None);
        c.set(0, GRANULES, false);
        assert_eq!((c.used, c.find(GRANULES, 1)), (0, Some(0)));
    }

    #[test]
    fn offsets_name_one_place_per_unit_and_chunks_lie_a_stride_apart() {
        let p = Percpu::new(4);
        let off = p.offset(2, 3).unwrap();
        let stride = 4 * PERCPU_UNIT_SIZE;
        assert_eq!(off.get() as u64, 2 * stride + 3 * PERCPU_GRANULE);
        assert_eq!(p.place(off), (2, 3));
        let chunk_start = |i| p.chunk_start(i).map(RegionAddr::get);
        assert_eq!(chunk_start(1), Some(Area::Percpu.start() + stride));
        let last = (u64::from(u32::MAX) + 1) / stride - 1;
        assert!(p.chunk_start(last as usize).is_some());
        assert_eq!(p.chunk_start(last as usize + 1), None, "offsets are 32 bits");
        assert_eq!(p.offset(0, GRANULES), None, "past the unit");
    }
}
