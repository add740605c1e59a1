//! Accounting: frames the server owns, per-client usage against quotas,
//! and the statistics snapshot.
//! A charge that would pass a quota fails and changes nothing; a refund
//! restores the record exactly (a record back at zero usage and the default
//! quota is dropped, as if never made). Object quotas (frames, structures,
//! areas) are charged per allocation through the [`Ledger`].

use alloc::vec::Vec;

use crate::admin::Admin;
use crate::backend::{Holder, OpCounts, OpKind};
use crate::error::Error;
use crate::ids::Badge;
use crate::layout::PageSize;
use crate::limits::DEFAULT_QUOTA_BYTES;
use crate::quota::{Held, Ledger, Objects};

/// Frames the server owns, by size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameTally {
    /// 4 KiB frames.
    pub small: u64,
    /// 2 MiB frames.
    pub large: u64,
    /// 1 GiB frames.
    pub huge: u64,
}

impl FrameTally {
    /// No frame.
    pub const ZERO: FrameTally = FrameTally { small: 0, large: 0, huge: 0 };

    pub(crate) fn of_size(&mut self, size: PageSize) -> &mut u64 {
        match size {
            PageSize::Small => &mut self.small,
            PageSize::Large => &mut self.large,
            PageSize::Huge => &mut self.huge,
        }
    }
}

/// One client's usage and quota, in bytes of region memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientUsage {
    /// The client.
    pub badge: Badge,
    /// Bytes it holds: vmalloc and vmap sizes (of freed areas too, until
    /// the purge), vmemmap descriptor bytes, percpu sizes times the number
    /// of CPUs.
    pub used: u64,
    /// Bytes it may hold.
    pub quota: u64,
    /// Objects its allocations were charged (freed vmalloc areas'
    /// too, until the purge).
    pub objects: Objects,
    /// Objects it may hold.
    pub object_quota: Objects,
    /// The physical memory whose frames it may vmap.
    pub frames: FrameGrant,
    /// The holder of its data: a new one each time it comes to hold
    /// anything after it held nothing (`None` while it holds nothing, or
    /// once all are given).
    pub holder: Option<Holder>,
}

/// Physical memory a client's frames come from: the frames the system gave
/// it, which it cannot revoke under the server (see
/// `memserver_protocol::Request::GrantFrames`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameGrant {
    /// The physical address of its first byte.
    pub start: u64,
    /// Its bytes.
    pub bytes: u64,
}

impl FrameGrant {
    /// No memory: no frame of the client's is accepted.
    pub const NONE: FrameGrant = FrameGrant { start: 0, bytes: 0 };

    /// Whether the 4 KiB frame at `paddr` lies in it.
    pub fn holds(&self, paddr: u64) -> bool {
        paddr >= self.start
            && paddr.checked_add(crate::layout::PAGE_SIZE).is_some_and(|end| end - self.start <= self.bytes)
    }
}

/// Usage and quota records of the clients (those not at the defaults, in
/// badge order, as many as memory holds), and who the administrator is.
pub(crate) struct Clients {
    admin: Badge,
    records: Vec<ClientUsage>,
    ledger: Ledger,
    /// The object limits of a client with no others: a share of the
    /// server's memory ([`Clients::share_memory`]).
    share: Objects,
    /// The next record's [`Holder`].
    next_holder: u32,
}

impl Clients {
    pub(crate) const fn new(admin: Badge) -> Self {
        Self { admin, records: Vec::new(), ledger: Ledger::new(), share: Objects::DEFAULT, next_holder: 0 }
    }

    /// The server was given `memory` bytes: the default object limits
    /// become a share of it ([`Objects::share_of`]). Before any client.
    pub(crate) fn share_memory(&mut self, memory: u64) {
        self.share = Objects::share_of(memory);
    }

    /// The object limits of a client the administrator set none for.
    pub(crate) fn share(&self) -> Objects {
        self.share
    }

    fn default_quota(&self, badge: Badge) -> u64 {
        if badge == self.admin {
            u64::MAX
        } else {
            DEFAULT_QUOTA_BYTES
        }
    }

    /// The object limits of `badge` until the administrator sets others:
    /// none for the administrator, a bounded share for anyone else.
    fn default_objects(&self, badge: Badge) -> Objects {
        if badge == self.admin {
            Objects::UNLIMITED
        } else {
            self.share
        }
    }

    /// The proof that `caller` is the administrator; `Err(NotAdmin)` if it
    /// is not.
    pub(crate) fn admin(&self, caller: Badge) -> Result<Admin, Error> {
        if caller == self.admin {
            Ok(Admin::checked())
        } else {
            Err(Error::NotAdmin)
        }
    }

    /// The administrator's badge, for whom an [`Admin`] proof stands.
    pub(crate) fn badge_of(&self, _: &Admin) -> Badge {
        self.admin
    }

    /// The record of `badge` (a fresh one if it has none).
    pub(crate) fn usage(&self, badge: Badge) -> ClientUsage {
        let found = self.records.binary_search_by_key(&badge, |r| r.badge).ok();
        found.and_then(|i| self.records.get(i)).copied().unwrap_or(ClientUsage {
            badge,
            used: 0,
            quota: self.default_quota(badge),
            objects: Objects::ZERO,
            object_quota: self.default_objects(badge),
            frames: FrameGrant::NONE,
            holder: None,
        })
    }

    /// A holder never given before (`None` once all are given).
    fn new_holder(&mut self) -> Option<Holder> {
        self.next_holder = self.next_holder.checked_add(1)?;
        Some(Holder(self.next_holder))
    }

    /// The holder of `badge`'s frames' data: one for as long as it holds
    /// anything, then a new one.
    pub(crate) fn holder(&self, badge: Badge) -> Option<Holder> {
        self.usage(badge).holder
    }

    fn store(&mut self, record: ClientUsage) -> Result<(), Error> {
        // A tenure of the badge lasts while the client holds anything.
        let holds = record.used != 0 || record.objects != Objects::ZERO;
        let holder = match (holds, record.holder) {
            (false, _) => None,
            (true, None) => self.new_holder(),
            (true, held) => held,
        };
        let record = ClientUsage { holder, ..record };
        let keep = record.used != 0
            || record.quota != self.default_quota(record.badge)
            || record.objects != Objects::ZERO
            || record.object_quota != self.default_objects(record.badge)
            || record.frames != FrameGrant::NONE;
        match self.records.binary_search_by_key(&record.badge, |r| r.badge) {
            Ok(i) if keep => {
                if let Some(r) = self.records.get_mut(i) {
                    *r = record;
                }
            }
            Ok(i) => {
                self.records.remove(i);
            }
            Err(i) if keep => {
                self.records.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
                self.records.insert(i, record);
            }
            Err(_) => {}
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

    /// Set the object quota of `badge` (as [`Clients::set_quota`]).
    pub(crate) fn set_object_quota(&mut self, badge: Badge, limit: Objects) -> Result<(), Error> {
        let record = ClientUsage { object_quota: limit, ..self.usage(badge) };
        self.store(record)
    }

    /// Set the memory whose frames `badge` may vmap.
    pub(crate) fn grant_frames(&mut self, badge: Badge, frames: FrameGrant) -> Result<(), Error> {
        let record = ClientUsage { frames, ..self.usage(badge) };
        self.store(record)
    }

    /// Back to the default quotas, and no frame grant, for `badge` (its
    /// record goes once it holds nothing).
    pub(crate) fn reset_quotas(&mut self, badge: Badge) {
        let record = ClientUsage {
            quota: self.default_quota(badge),
            object_quota: self.default_objects(badge),
            frames: FrameGrant::NONE,
            ..self.usage(badge)
        };
        // Resetting never needs a new slot: the record exists or is default.
        let _ = self.store(record);
    }

    /// `Err(QuotaExceeded)` unless `badge` may hold one more area.
    pub(crate) fn admit(&self, badge: Badge) -> Result<(), Error> {
        let record = self.usage(badge);
        let one = Objects { areas: 1, ..Objects::ZERO };
        record.objects.plus_within(one, record.object_quota).map(drop).ok_or(Error::QuotaExceeded)
    }

    /// Charge `cost` to `badge` for the allocation `held`, within its
    /// object quota; on error nothing is charged or recorded.
    pub(crate) fn hold(&mut self, badge: Badge, held: Held, cost: Objects) -> Result<(), Error> {
        let before = self.usage(badge);
        let objects = before.objects.plus_within(cost, before.object_quota).ok_or(Error::QuotaExceeded)?;
        self.store(ClientUsage { objects, ..before })?;
        if let Err(e) = self.ledger.record(held, badge, cost) {
            // Back to the record as it was: it existed or needs no slot.
            let _ = self.store(before);
            return Err(e);
        }
        Ok(())
    }

    /// Part of `from`'s charge, `cost`, is `to`'s now; both are one
    /// client's allocations, so its usage does not change.
    pub(crate) fn transfer(&mut self, from: Held, to: Held, cost: Objects) {
        self.ledger.transfer(from, to, cost);
    }

    /// The allocation `from` is `to` now (the same area resized, or moved
    /// there), holding `frames` frames, and the structures it was charged
    /// for with those created between the operation counts `before` and
    /// `after` added and those deleted taken away. Its owner's usage
    /// follows, within its object quota where the charge grows; on error
    /// nothing changes.
    pub(crate) fn recharge(
        &mut self,
        from: Held,
        to: Held,
        frames: u64,
        before: &OpCounts,
        after: &OpCounts,
    ) -> Result<(), Error> {
        let (owner, old) = self.ledger.holder(from).ok_or(Error::NotFound)?;
        let ops = after.since(before);
        let structures = old.structures.saturating_add(ops.get(OpKind::CreateStructure));
        let new = Objects { frames, structures: structures.saturating_sub(ops.get(OpKind::DeleteStructure)), ..old };
        let usage = self.usage(owner);
        let rest = usage.objects.minus(old);
        let limit = if new.frames <= old.frames && new.structures <= old.structures {
            Objects::UNLIMITED
        } else {
            usage.object_quota
        };
        let objects = rest.plus_within(new, limit).ok_or(Error::QuotaExceeded)?;
        self.ledger.rekey(from, to, new)?;
        // The owner's record exists (it holds `from`): storing needs no memory.
        let _ = self.store(ClientUsage { objects, ..usage });
        Ok(())
    }

    /// The allocation `held` is gone: refund its owner what it was charged.
    pub(crate) fn release(&mut self, held: Held) {
        if let Some((owner, cost)) = self.ledger.take(held) {
            let record = self.usage(owner);
            // Shrinking a record never needs a new slot.
            let _ = self.store(ClientUsage { objects: record.objects.minus(cost), ..record });
        }
    }

    /// Clients with a record.
    pub(crate) fn records(&self) -> &[ClientUsage] {
        &self.records
    }
}

/// A count of everything the server holds, at one moment (the core's
/// view; the wire's [`memserver_protocol::Stats`] is what clients see).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Census {
    /// Frames the server owns.
    pub frames: FrameTally,
    /// Structures of the canonical table (its root excluded).
    pub canonical_structures: usize,
    /// Pages mapped in the canonical table.
    pub canonical_leaves: usize,
    /// Registered spaces.
    pub spaces: usize,
    /// Paging structures the server made in registered spaces, summed
    /// over them.
    pub space_structures: u64,
    /// Of those, the ones a purge kept empty for the next mappings.
    pub kept_structures: u64,
    /// Backend operations so far, by kind.
    pub ops: OpCounts,
    /// Faults repaired from the canonical table.
    pub missed_syncs: u64,
    /// vmalloc and vmap areas, live or awaiting purge.
    pub vmalloc_areas: usize,
    /// Bytes of freed vmalloc areas awaiting a purge.
    pub vmalloc_lazy_bytes: u64,
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
        assert_eq!(c.admin(Badge(2)).map(drop), Err(Error::NotAdmin));
        assert_eq!(c.admin(admin).map(drop), Ok(()));
    }

    #[test]
    fn records_are_as_many_as_clients_and_found_by_badge() {
        let mut c = Clients::new(Badge(0));
        // Badges in an order that is not theirs: the records stay sorted.
        for b in (1..=5000u64).map(|b| (b * 7919) % 5001) {
            assert_eq!(c.charge(Badge(b), b), Ok(()));
        }
        assert_eq!(c.records().len(), 5000);
        assert!(c.records().windows(2).all(|w| w[0].badge < w[1].badge));
        assert_eq!(c.usage(Badge(4321)).used, 4321);
        c.refund(Badge(4321), 4321);
        assert_eq!((c.records().len(), c.usage(Badge(4321)).used), (4999, 0));
    }

    #[test]
    fn object_quotas_bound_holdings_and_releases_refund_exactly() {
        let mut c = Clients::new(Badge(0));
        let limit = Objects { frames: 3, structures: 10, areas: 2 };
        assert_eq!(c.set_object_quota(Badge(1), limit), Ok(()));
        let cost = Objects { frames: 2, structures: 1, areas: 1 };
        assert_eq!(c.admit(Badge(1)), Ok(()));
        assert_eq!(c.hold(Badge(1), Held::Area(0), cost), Ok(()));
        assert_eq!(c.hold(Badge(1), Held::Area(1), cost), Err(Error::QuotaExceeded), "5 frames > 3");
        assert_eq!(c.usage(Badge(1)).objects, cost, "the refused charge left nothing");
        assert_eq!(c.hold(Badge(2), Held::Area(1), cost), Ok(()), "another client is not limited");
        c.release(Held::Area(0));
        assert_eq!(c.usage(Badge(1)).objects, Objects::ZERO);
        c.reset_quotas(Badge(1));
        c.release(Held::Area(1));
        assert!(c.records().is_empty(), "records back at defaults are dropped");
    }
}
