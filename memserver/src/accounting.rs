//! Accounting: frames the server owns, what replicating the region costs
//! each space, per-client usage against quotas, and the statistics snapshot.
//! A charge that would pass a quota fails and changes nothing; a refund
//! restores the record exactly (a record back at zero usage and the default
//! quota is dropped, as if never made).

use heapless::Vec;

use crate::backend::OpCounts;
use crate::error::{Error, Limit};
use crate::ids::Badge;
use crate::layout::PageSize;
use crate::limits::{DEFAULT_QUOTA_BYTES, MAX_CLIENTS, MAX_SPACES};

/// Frames the server owns, by size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameTally {
    /// 4 KiB frames.
    pub small: u64,
    /// 2 MiB frames.
    pub large: u64,
}

impl FrameTally {
    /// No frame.
    pub const ZERO: FrameTally = FrameTally { small: 0, large: 0 };

    pub(crate) fn of_size(&mut self, size: PageSize) -> &mut u64 {
        match size {
            PageSize::Small => &mut self.small,
            PageSize::Large => &mut self.large,
        }
    }
}

/// What replicating the region costs one space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceCost {
    /// Paging structures the server created in the space.
    pub structures: u64,
    /// Frame copies mapped in the space.
    pub frame_copies: u64,
}

/// One client's usage and quota, in bytes of region memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientUsage {
    /// The client.
    pub badge: Badge,
    /// Bytes it holds: vmalloc and vmap sizes, vmemmap descriptor bytes,
    /// percpu sizes times the number of CPUs.
    pub used: u64,
    /// Bytes it may hold.
    pub quota: u64,
}

/// Usage and quota records of the clients, and who the administrator is.
pub(crate) struct Clients {
    admin: Badge,
    records: Vec<ClientUsage, MAX_CLIENTS>,
}

impl Clients {
    pub(crate) const fn new(admin: Badge) -> Self {
        Self { admin, records: Vec::new() }
    }

    fn default_quota(&self, badge: Badge) -> u64 {
        if badge == self.admin {
            u64::MAX
        } else {
            DEFAULT_QUOTA_BYTES
        }
    }

    /// `Err(NotAdmin)` unless `caller` is the administrator.
    pub(crate) fn require_admin(&self, caller: Badge) -> Result<(), Error> {
        if caller == self.admin {
            Ok(())
        } else {
            Err(Error::NotAdmin)
        }
    }

    /// The record of `badge` (a fresh one if it has none).
    pub(crate) fn usage(&self, badge: Badge) -> ClientUsage {
        self.records.iter().find(|r| r.badge == badge).copied().unwrap_or(ClientUsage {
            badge,
            used: 0,
            quota: self.default_quota(badge),
        })
    }

    fn store(&mut self, record: ClientUsage) -> Result<(), Error> {
        let keep = record.used != 0 || record.quota != self.default_quota(record.badge);
        match self.records.iter().position(|r| r.badge == record.badge) {
            Some(i) if keep => {
                if let Some(r) = self.records.get_mut(i) {
                    *r = record;
                }
            }
            Some(i) => {
                self.records.swap_remove(i);
            }
            None if keep => self.records.push(record).map_err(|_| Error::LimitReached(Limit::Clients))?,
            None => {}
        }
        Ok(())
    }

    /// Charge `bytes` to `badge`, within its quota.
    pub(crate) fn charge(&mut self, badge: Badge, bytes: u64) -> Result<(), Error> {
        let mut record = self.usage(badge);
        record.used = record.used.checked_add(bytes).filter(|u| *u <= record.quota).ok_or(Error::QuotaExceeded)?;
        self.store(record)
    }

    /// Give back `bytes` charged to `badge`.
    pub(crate) fn refund(&mut self, badge: Badge, bytes: u64) {
        let mut record = self.usage(badge);
        record.used = record.used.saturating_sub(bytes);
        // Shrinking or dropping a record never needs a new slot.
        let _ = self.store(record);
    }

    /// Set the quota of `badge` (it may be below its current usage: further
    /// charges then fail until it frees enough).
    pub(crate) fn set_quota(&mut self, badge: Badge, bytes: u64) -> Result<(), Error> {
        let record = ClientUsage { quota: bytes, ..self.usage(badge) };
        self.store(record)
    }

    /// Clients with a record.
    pub(crate) fn records(&self) -> &[ClientUsage] {
        &self.records
    }
}

/// A snapshot of the server's accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Frames the server owns.
    pub frames: FrameTally,
    /// Structures of the canonical table (its root excluded).
    pub canonical_structures: usize,
    /// Pages mapped in the canonical table.
    pub canonical_leaves: usize,
    /// Replication cost of each registered space, by space index.
    pub spaces: [Option<SpaceCost>; MAX_SPACES],
    /// Backend operations so far, by kind.
    pub ops: OpCounts,
    /// Faults repaired from the canonical table.
    pub missed_syncs: u64,
    /// vmalloc and vmap areas, live or awaiting purge.
    pub vmalloc_areas: usize,
    /// Freed vmalloc pages awaiting a purge.
    pub vmalloc_lazy_pages: u64,
    /// Populated vmemmap ranges.
    pub vmemmap_ranges: usize,
    /// Populated percpu chunks.
    pub percpu_chunks: usize,
    /// Live percpu allocations.
    pub percpu_allocs: usize,
    /// Clients with a usage or quota record.
    pub clients: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_bound_charges_and_refunds_restore_records() {
        let admin = Badge(0);
        let mut c = Clients::new(admin);
        assert_eq!(c.charge(Badge(1), DEFAULT_QUOTA_BYTES + 1), Err(Error::QuotaExceeded));
        assert!(c.records().is_empty());
        assert_eq!(c.charge(Badge(1), 10), Ok(()));
        assert_eq!(c.usage(Badge(1)).used, 10);
        c.refund(Badge(1), 10);
        assert!(c.records().is_empty(), "a record back at default is dropped");
        assert_eq!(c.set_quota(Badge(2), 5), Ok(()));
        assert_eq!(c.charge(Badge(2), 6), Err(Error::QuotaExceeded));
        assert_eq!(c.charge(admin, u64::MAX / 2), Ok(()));
        assert_eq!(c.require_admin(Badge(2)), Err(Error::NotAdmin));
        assert_eq!(c.require_admin(admin), Ok(()));
    }

    #[test]
    fn running_out_of_records_is_a_limit() {
        let mut c = Clients::new(Badge(0));
        for b in 1..=MAX_CLIENTS as u64 {
            assert_eq!(c.charge(Badge(b), 1), Ok(()));
        }
        assert_eq!(c.charge(Badge(999), 1), Err(Error::LimitReached(Limit::Clients)));
        assert_eq!(c.charge(Badge(1), 1), Ok(()), "existing records still grow");
    }
}
