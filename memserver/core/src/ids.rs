//! Identifier newtypes: address spaces, CPUs, clients (IPC badges) and page
//! frame numbers. Each constructor that takes a raw number checks its range,
//! so a held value is always valid.

use crate::layout::{Area, DESCRIPTOR_SIZE};
use crate::limits::{MAX_PERCPU_CPUS, MAX_SPACES};

/// A registered address space: an index into the server's registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpaceId(u8);

impl SpaceId {
    /// The id with registry index `index`, if below [`MAX_SPACES`].
    pub fn new(index: usize) -> Option<Self> {
        (index < MAX_SPACES).then_some(Self(index as u8))
    }

    /// The registry index, always below [`MAX_SPACES`].
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// This space's bit in a space set.
    pub(crate) const fn bit(self) -> u32 {
        1 << self.0
    }
}

/// A CPU, below [`MAX_PERCPU_CPUS`] (the configured count is checked where used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CpuId(u16);

impl CpuId {
    /// The CPU with number `n`, if below [`MAX_PERCPU_CPUS`].
    pub fn new(n: usize) -> Option<Self> {
        (n < MAX_PERCPU_CPUS).then_some(Self(n as u16))
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
        assert!(SpaceId::new(MAX_SPACES).is_none());
        assert_eq!(SpaceId::new(3).map(SpaceId::bit), Some(8));
        assert!(CpuId::new(MAX_PERCPU_CPUS).is_none());
        assert_eq!(CpuId::new(1).map(CpuId::index), Some(1));
        assert!(Pfn::new(MAX_PFN).is_none());
        assert_eq!(Pfn::new(MAX_PFN - 1).map(Pfn::get), Some(MAX_PFN - 1));
    }
}
