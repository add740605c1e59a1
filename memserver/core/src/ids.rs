//! Identifier newtypes: address spaces, CPUs, clients (IPC badges) and page
//! frame numbers. Each constructor that takes a raw number checks its range,
//! so a held value is always valid.

use crate::layout::{Area, DESCRIPTOR_SIZE};
use memserver_protocol::bootstrap::FaultBadge;

/// A registered address space: an index into the server's registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpaceId(u16);

impl SpaceId {
    /// Ids there can be: as many as a fault badge names
    /// ([`FaultBadge::SPACES`], twice seL4 x86-64's 4,096 ASIDs).
    pub const COUNT: usize = FaultBadge::SPACES;

    /// The first id.
    pub const FIRST: SpaceId = SpaceId(0);

    /// The id with registry index `index`, if below [`SpaceId::COUNT`].
    pub fn new(index: usize) -> Option<Self> {
        (index < Self::COUNT).then_some(Self(index as u16))
    }

    /// The registry index, always below [`SpaceId::COUNT`].
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The id as the wire carries it.
    pub const fn wire(self) -> u16 {
        self.0
    }
}

/// A CPU (the count the server serves is checked where used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuId(u16);

impl CpuId {
    /// The CPU with number `n`, if it fits the id.
    pub fn new(n: usize) -> Option<Self> {
        u16::try_from(n).ok().map(Self)
    }

    /// The CPU number.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A client's identity: the badge of the endpoint capability it calls with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Badge(pub u64);

/// Page frame numbers whose descriptors fit in the vmemmap area.
pub const MAX_PFN: u64 = Area::Vmemmap.size() / DESCRIPTOR_SIZE;

/// A page frame number whose descriptor lies inside the vmemmap area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pfn(u64);

impl Pfn {
    /// `n` as a pfn, if below [`MAX_PFN`].
    pub fn new(n: u64) -> Option<Self> {
        (n < MAX_PFN).then_some(Self(n))
    }

    /// The raw number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_check_ranges() {
        assert!(SpaceId::new(SpaceId::COUNT).is_none());
        assert_eq!(SpaceId::new(4095).map(SpaceId::wire), Some(4095));
        assert!(CpuId::new(1 << 16).is_none());
        assert_eq!(CpuId::new(1).map(CpuId::index), Some(1));
        assert!(Pfn::new(MAX_PFN).is_none());
        assert_eq!(Pfn::new(MAX_PFN - 1).map(Pfn::get), Some(MAX_PFN - 1));
    }
}
