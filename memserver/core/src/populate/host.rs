//! A canonical table of any capacity for host measurement (feature `sim`):
//! the server's own [`Table`], filled through its one insert function. It
//! is an instance of its own: the server's table still changes only through
//! the populate path.

use super::table::{FrameKind, Leaf, Table};
use crate::backend::Rights;
use crate::error::Error;
use crate::layout::{LevelMask, PageSize, RegionAddr};

/// A table whose frames are physical addresses; it has no registered space.
pub struct HostTable {
    table: Table<u64, ()>,
}

impl HostTable {
    /// An empty table of at most `tables` structures (the root included)
    /// and `leaves` pages.
    pub fn new(tables: usize, leaves: usize) -> Self {
        Self { table: Table::with_capacity(tables, leaves) }
    }

    /// Map the 4 KiB page at `addr` to `frame`, read-write, as the server
    /// maps a fresh frame: the structures on the way are created. Reports
    /// which levels were created.
    pub fn map_small(&mut self, addr: RegionAddr, frame: u64) -> Result<LevelMask, Error> {
        self.table.insert(Leaf::new(addr, frame, PageSize::Small, Rights::ReadWrite, FrameKind::Owned))
    }

    /// The table, for translation and the other reads.
    pub fn table(&self) -> &Table<u64, ()> {
        &self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{Area, PAGE_SIZE};

    #[test]
    fn a_table_beyond_the_server_limits_maps_and_translates() {
        const PAGES: u64 = 70_000;
        let mut t = HostTable::new(256, PAGES as usize);
        let at = |i: u64| RegionAddr::new(Area::Vmalloc.start() + i * PAGE_SIZE).expect("in vmalloc");
        for i in 0..PAGES {
            assert!(t.map_small(at(i), i * PAGE_SIZE).is_ok());
        }
        assert!(t.map_small(at(PAGES), 0).is_err(), "leaves exhausted");
        assert_eq!((t.table().leaf_count(), t.table().structure_count()), (PAGES as usize, 1 + 1 + 137));
        assert!((0..PAGES).all(|i| t.table().translate(at(i)).map(|l| l.frame) == Some(i * PAGE_SIZE)));
    }
}
