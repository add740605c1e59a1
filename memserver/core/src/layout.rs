//! The kernel region's fixed layout: ONE table ([`LAYOUT`]) placing the
//! vmalloc, vmemmap and percpu areas in the upper part of the user half, each
//! a whole number of 512 GiB top-level entries, and the address types that
//! can only hold addresses inside the region (or inside one area).
//!
//! Guarantees, checked at compile time: areas are in ascending order, do not
//! overlap, lie below the user-half limit, and the vmemmap area spans at least
//! two top-level entries (so a descriptor range can cross a top-level
//! boundary, the seed's failure case).

use core::fmt;
use core::marker::PhantomData;
/// The protocol's layout constants, defined there once for both sides.
pub use memserver_protocol::{DESCRIPTOR_SIZE, TOP_ENTRY_SPAN};

/// Bytes in a small (4 KiB) page.
pub const PAGE_SIZE: u64 = 1 << 12;
/// Bytes in a large (2 MiB) page.
pub const LARGE_PAGE_SIZE: u64 = 1 << 21;
/// Bytes in a huge (1 GiB) page.
pub const HUGE_PAGE_SIZE: u64 = 1 << 30;
/// Entries in every paging structure.
pub const ENTRIES: usize = 512;
/// First address of the kernel half, owned by seL4; the region lies below.
pub const USER_HALF_END: u64 = 0x0000_8000_0000_0000;

/// The three areas of the kernel region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    /// Virtually contiguous allocations and mappings of caller frames.
    Vmalloc = 0,
    /// Page descriptors: the descriptor of pfn `p` is at `start + p * 64`.
    Vmemmap = 1,
    /// Per-CPU chunks: one unit per CPU in each chunk.
    Percpu = 2,
}

/// One row of the layout table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AreaSpec {
    /// Which area this row places.
    pub area: Area,
    /// Index of the first top-level (PML4) entry of the area.
    pub first_entry: u64,
    /// Number of top-level entries the area spans.
    pub entries: u64,
}

/// The layout of the kernel region, the single source of truth.
///
/// | area    | start                 | end (exclusive)       | PML4 entries | size    |
/// |---------|-----------------------|-----------------------|--------------|---------|
/// | vmalloc | 0x0000_7000_0000_0000 | 0x0000_7080_0000_0000 | 224          | 512 GiB |
/// | (hole)  | 0x0000_7080_0000_0000 | 0x0000_7100_0000_0000 | 225          | 512 GiB |
/// | vmemmap | 0x0000_7100_0000_0000 | 0x0000_7200_0000_0000 | 226-227      | 1 TiB   |
/// | (hole)  | 0x0000_7200_0000_0000 | 0x0000_7280_0000_0000 | 228          | 512 GiB |
/// | percpu  | 0x0000_7280_0000_0000 | 0x0000_7300_0000_0000 | 229          | 512 GiB |
///
/// Holes are never mapped, so an overrun of an area faults. Everything below
/// 0x0000_7000_0000_0000 (112 TiB) is left to programs.
pub const LAYOUT: [AreaSpec; 3] = [
    AreaSpec { area: Area::Vmalloc, first_entry: 224, entries: 1 },
    AreaSpec { area: Area::Vmemmap, first_entry: 226, entries: 2 },
    AreaSpec { area: Area::Percpu, first_entry: 229, entries: 1 },
];

/// First address of the kernel region.
pub const REGION_START: u64 = LAYOUT[0].first_entry * TOP_ENTRY_SPAN;
/// End (exclusive) of the kernel region.
#[allow(clippy::indexing_slicing, reason = "evaluated at compile time, where a bad index fails the build")]
pub const REGION_END: u64 = (LAYOUT[LAYOUT.len() - 1].first_entry + LAYOUT[LAYOUT.len() - 1].entries) * TOP_ENTRY_SPAN;

#[allow(clippy::indexing_slicing, reason = "evaluated at compile time, where a bad index fails the build")]
const fn layout_is_valid() -> bool {
    let mut i = 0;
    let mut prev_end = 0;
    while i < LAYOUT.len() {
        let row = LAYOUT[i];
        if row.area as usize != i || row.entries == 0 || row.first_entry < prev_end {
            return false;
        }
        prev_end = row.first_entry + row.entries;
        i += 1;
    }
    prev_end * TOP_ENTRY_SPAN <= USER_HALF_END && LAYOUT[Area::Vmemmap as usize].entries >= 2
}
const _: () = assert!(layout_is_valid(), "the layout table is inconsistent");

impl Area {
    /// All areas, in layout order.
    pub const ALL: [Area; 3] = [Area::Vmalloc, Area::Vmemmap, Area::Percpu];

    /// This area's row of [`LAYOUT`].
    #[allow(
        clippy::indexing_slicing,
        reason = "the discriminant indexes its own row: checked by layout_is_valid at compile time"
    )]
    pub const fn spec(self) -> AreaSpec {
        LAYOUT[self as usize]
    }

    /// First address of the area.
    pub const fn start(self) -> u64 {
        self.spec().first_entry * TOP_ENTRY_SPAN
    }

    /// Size of the area in bytes.
    pub const fn size(self) -> u64 {
        self.spec().entries * TOP_ENTRY_SPAN
    }

    /// End (exclusive) of the area.
    pub const fn end(self) -> u64 {
        self.start() + self.size()
    }

    /// Whether `raw` lies in this area.
    pub const fn contains(self, raw: u64) -> bool {
        raw >= self.start() && raw < self.end()
    }

    /// The area containing `raw`, if any (holes belong to none).
    pub fn of(raw: u64) -> Option<Area> {
        Area::ALL.into_iter().find(|a| a.contains(raw))
    }
}

/// An address inside one of the areas of the kernel region (never in a hole
/// and never outside the region).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionAddr(u64);

impl RegionAddr {
    /// `raw` as a region address, if it lies in an area.
    pub fn new(raw: u64) -> Option<Self> {
        Area::of(raw).map(|_| Self(raw))
    }

    /// The raw address.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The area this address is in.
    pub fn area(self) -> Area {
        // A RegionAddr is only built inside an area; Vmalloc is unreachable
        // as a fallback and keeps this total without a panic path.
        Area::of(self.0).unwrap_or(Area::Vmalloc)
    }
}

impl fmt::Debug for RegionAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegionAddr({:#x})", self.0)
    }
}

/// Marker for one area, used to type addresses that belong to it.
pub trait AreaMarker: Copy + Eq {
    /// The area this marker stands for.
    const AREA: Area;
}

/// Marker type of the vmalloc area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmallocArea;
/// Marker type of the vmemmap area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmemmapArea;
/// Marker type of the percpu area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PercpuArea;

impl AreaMarker for VmallocArea {
    const AREA: Area = Area::Vmalloc;
}
impl AreaMarker for VmemmapArea {
    const AREA: Area = Area::Vmemmap;
}
impl AreaMarker for PercpuArea {
    const AREA: Area = Area::Percpu;
}

/// An address inside area `A`; it cannot be built outside that area.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AreaAddr<A: AreaMarker>(u64, PhantomData<A>);

/// An address in the vmalloc area.
pub type VmallocAddr = AreaAddr<VmallocArea>;
/// An address in the vmemmap area.
pub type VmemmapAddr = AreaAddr<VmemmapArea>;
/// An address in the percpu area.
pub type PercpuAddr = AreaAddr<PercpuArea>;

impl<A: AreaMarker> AreaAddr<A> {
    /// `raw` as an address of area `A`, if it lies there.
    pub fn new(raw: u64) -> Option<Self> {
        A::AREA.contains(raw).then_some(Self(raw, PhantomData))
    }

    /// The address `offset` bytes into area `A`, if that is still inside it.
    pub fn at_offset(offset: u64) -> Option<Self> {
        A::AREA.start().checked_add(offset).and_then(Self::new)
    }

    /// The raw address.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Bytes from the start of area `A`.
    pub const fn offset(self) -> u64 {
        self.0 - A::AREA.start()
    }

    /// The same address as a region address.
    pub const fn region(self) -> RegionAddr {
        RegionAddr(self.0)
    }
}

impl<A: AreaMarker> From<AreaAddr<A>> for RegionAddr {
    fn from(addr: AreaAddr<A>) -> Self {
        addr.region()
    }
}

impl<A: AreaMarker> fmt::Debug for AreaAddr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}Addr({:#x})", A::AREA, self.0)
    }
}

/// Size of a mapped page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// 4 KiB, a leaf in a page table.
    Small,
    /// 2 MiB, a leaf in a page directory.
    Large,
    /// 1 GiB, a leaf in a page directory pointer table.
    Huge,
}

impl PageSize {
    /// Bytes in a page of this size.
    pub const fn bytes(self) -> u64 {
        match self {
            PageSize::Small => PAGE_SIZE,
            PageSize::Large => LARGE_PAGE_SIZE,
            PageSize::Huge => HUGE_PAGE_SIZE,
        }
    }

    /// The level of the structure that holds a leaf of this size.
    pub const fn leaf_level(self) -> Level {
        match self {
            PageSize::Small => Level::Pt,
            PageSize::Large => Level::Pd,
            PageSize::Huge => Level::Pdpt,
        }
    }
}

/// A level of the 4-level x86-64 paging hierarchy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Page table: entries map 4 KiB.
    Pt = 1,
    /// Page directory: entries map 2 MiB.
    Pd = 2,
    /// Page directory pointer table: entries map 1 GiB.
    Pdpt = 3,
    /// Top level: entries map 512 GiB. It is the VSpace itself, never created.
    Pml4 = 4,
}

impl Level {
    /// The levels the server creates, from the top down.
    pub const CREATED_TOP_DOWN: [Level; 3] = [Level::Pdpt, Level::Pd, Level::Pt];

    /// Bytes covered by one entry of a structure at this level.
    pub const fn entry_span(self) -> u64 {
        PAGE_SIZE << (9 * (self as u32 - 1))
    }

    /// Bytes covered by a whole structure at this level.
    pub const fn span(self) -> u64 {
        self.entry_span() * ENTRIES as u64
    }

    /// Index of the entry for `raw` in a structure at this level.
    pub const fn index(self, raw: u64) -> usize {
        ((raw / self.entry_span()) % ENTRIES as u64) as usize
    }

    /// The level below this one, `None` for page tables.
    pub const fn below(self) -> Option<Level> {
        match self {
            Level::Pml4 => Some(Level::Pdpt),
            Level::Pdpt => Some(Level::Pd),
            Level::Pd => Some(Level::Pt),
            Level::Pt => None,
        }
    }
}

/// Which levels of structure an operation created (Linux's
/// `PGTBL_P*D_MODIFIED` mask): the sync step only walks for these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelMask(u8);

impl LevelMask {
    /// No level created.
    pub const EMPTY: LevelMask = LevelMask(0);

    /// The mask with `level` added.
    pub const fn with(self, level: Level) -> Self {
        Self(self.0 | 1 << level as u8)
    }

    /// Whether `level` is in the mask.
    pub const fn contains(self, level: Level) -> bool {
        self.0 & (1 << level as u8) != 0
    }

    /// Whether no level is in the mask.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of two masks.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_are_whole_top_level_entries_in_the_user_half() {
        for area in Area::ALL {
            assert_eq!(area.start() % TOP_ENTRY_SPAN, 0);
            assert_eq!(area.size() % TOP_ENTRY_SPAN, 0);
            assert!(area.end() <= USER_HALF_END);
            assert_eq!(Level::Pml4.index(area.start()) as u64, area.spec().first_entry);
        }
        assert_eq!(REGION_START, 0x0000_7000_0000_0000);
        assert_eq!(REGION_END, 0x0000_7300_0000_0000);
        assert!(Area::Vmemmap.size() >= 2 * TOP_ENTRY_SPAN);
    }

    #[test]
    fn addresses_cannot_be_built_outside_their_area() {
        assert!(RegionAddr::new(REGION_START - 1).is_none());
        assert!(RegionAddr::new(Area::Vmalloc.end()).is_none(), "hole after vmalloc");
        assert!(RegionAddr::new(REGION_END).is_none());
        assert!(VmallocAddr::new(Area::Vmemmap.start()).is_none());
        assert!(VmemmapAddr::new(Area::Vmemmap.end() - 1).is_some());
        assert!(PercpuAddr::at_offset(Area::Percpu.size()).is_none());
        assert!(VmallocAddr::at_offset(u64::MAX).is_none());
        let a = VmemmapAddr::at_offset(TOP_ENTRY_SPAN).map(RegionAddr::from);
        assert_eq!(a.map(RegionAddr::area), Some(Area::Vmemmap));
    }

    #[test]
    fn level_geometry() {
        assert_eq!(Level::Pt.span(), LARGE_PAGE_SIZE);
        assert_eq!(Level::Pml4.entry_span(), TOP_ENTRY_SPAN);
        assert_eq!(Level::Pd.index(LARGE_PAGE_SIZE * 3), 3);
        assert_eq!(PageSize::Large.leaf_level(), Level::Pd);
        let mask = LevelMask::EMPTY.with(Level::Pdpt);
        assert!(mask.contains(Level::Pdpt) && !mask.contains(Level::Pt));
        assert!(!mask.union(LevelMask::EMPTY.with(Level::Pt)).is_empty());
    }
}
