//! Per-client object quotas: besides bytes (see [`crate::accounting`]), a
//! client may hold at most so many frames, paging structures and areas.
//! A request is charged what it actually made the server create (frames
//! allocated, structures created in every space) and one area; the charge
//! is recorded against the allocation it made and refunded exactly when
//! that allocation goes (a freed vmalloc area goes at the purge that unmaps
//! it), so one client's requests never count against another's limits.
//! What outlives the allocation it was charged to, used by another
//! allocation of the same client (a vmemmap descriptor frame two of its
//! ranges share), has its charge moved to that one.

use crate::avl::{AvlMap, InsertError};
use crate::backend::{OpCounts, OpKind};
use crate::error::Error;
use crate::ids::Badge;

/// Counts of objects a client holds, or may hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Objects {
    /// Frames the server allocated for the client's requests.
    pub frames: u64,
    /// Paging structures the server created for them, summed over spaces.
    pub structures: u64,
    /// vmalloc areas, vmemmap ranges and percpu allocations.
    pub areas: u64,
}

impl Objects {
    /// Nothing.
    pub const ZERO: Objects = Objects { frames: 0, structures: 0, areas: 0 };
    /// No limit.
    pub const UNLIMITED: Objects = Objects { frames: u64::MAX, structures: u64::MAX, areas: u64::MAX };
    /// The limits of a client the administrator set none for: a bounded
    /// share of every kind.
    pub const DEFAULT: Objects = Objects {
        frames: crate::limits::DEFAULT_QUOTA_FRAMES,
        structures: crate::limits::DEFAULT_QUOTA_STRUCTURES,
        areas: crate::limits::DEFAULT_QUOTA_AREAS,
    };

    /// The default limits of a server given `memory` bytes: [`Objects::DEFAULT`],
    /// or fewer structures and areas where [`DEFAULT_SHARE`] of the memory
    /// holds fewer of them.
    ///
    /// [`DEFAULT_SHARE`]: crate::limits::DEFAULT_SHARE
    pub(crate) fn share_of(memory: u64) -> Objects {
        use crate::limits::{DEFAULT_SHARE, RECORD_BYTES, STRUCTURE_BYTES};
        let share = memory / DEFAULT_SHARE;
        Objects {
            frames: Self::DEFAULT.frames,
            structures: Self::DEFAULT.structures.min(share / STRUCTURE_BYTES),
            areas: Self::DEFAULT.areas.min(share / RECORD_BYTES),
        }
    }

    /// The limits a registration's quota names: each count as given, or
    /// `default`'s where it is [`Quota::DEFAULT_SHARE`] (`[frames,
    /// structures, areas]`).
    ///
    /// [`Quota::DEFAULT_SHARE`]: memserver_protocol::Quota::DEFAULT_SHARE
    pub(crate) fn from_quota([frames, structures, areas]: [u32; 3], default: Objects) -> Objects {
        let share =
            |n: u32, default: u64| if n == memserver_protocol::Quota::DEFAULT_SHARE { default } else { n.into() };
        Objects {
            frames: share(frames, default.frames),
            structures: share(structures, default.structures),
            areas: share(areas, default.areas),
        }
    }

    /// What one allocation cost: the frames and structures created between
    /// the backend operation counts `before` and `after`, and one area.
    pub(crate) fn one_area(before: &OpCounts, after: &OpCounts) -> Objects {
        let made = after.since(before);
        Objects { frames: made.get(OpKind::AllocFrame), structures: made.get(OpKind::CreateStructure), areas: 1 }
    }

    /// `self + other`, if it stays within `limit`.
    pub(crate) fn plus_within(self, other: Objects, limit: Objects) -> Option<Objects> {
        let sum = Objects {
            frames: self.frames.checked_add(other.frames)?,
            structures: self.structures.checked_add(other.structures)?,
            areas: self.areas.checked_add(other.areas)?,
        };
        (sum.frames <= limit.frames && sum.structures <= limit.structures && sum.areas <= limit.areas).then_some(sum)
    }

    /// `self - other`, floored at zero.
    pub(crate) fn minus(self, other: Objects) -> Objects {
        Objects {
            frames: self.frames.saturating_sub(other.frames),
            structures: self.structures.saturating_sub(other.structures),
            areas: self.areas.saturating_sub(other.areas),
        }
    }
}

/// An allocation that carries an object charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Held {
    /// The vmalloc or vmap area starting at this address.
    Area(u64),
    /// The vmemmap range starting at this pfn.
    Range(u64),
    /// The percpu allocation at this offset.
    Percpu(u32),
}

/// Who holds each allocation, and what it was charged: a map per kind of
/// allocation, as large as the allocations.
pub(crate) struct Ledger {
    areas: AvlMap<(Badge, Objects)>,
    ranges: AvlMap<(Badge, Objects)>,
    percpu: AvlMap<(Badge, Objects)>,
}

impl Ledger {
    pub(crate) const fn new() -> Self {
        Self { areas: AvlMap::new(), ranges: AvlMap::new(), percpu: AvlMap::new() }
    }

    /// The map of `held`'s kind and its key there.
    fn map(&mut self, held: Held) -> (&mut AvlMap<(Badge, Objects)>, u64) {
        match held {
            Held::Area(start) => (&mut self.areas, start),
            Held::Range(pfn) => (&mut self.ranges, pfn),
            Held::Percpu(offset) => (&mut self.percpu, offset.into()),
        }
    }

    /// The owner of `held` and its charge.
    pub(crate) fn holder(&mut self, held: Held) -> Option<(Badge, Objects)> {
        let (map, key) = self.map(held);
        map.get(key).map(|e| *e.val)
    }

    /// The allocation `from` is `to` now (an area that moved), charged
    /// `cost`; on error nothing changes.
    pub(crate) fn rekey(&mut self, from: Held, to: Held, cost: Objects) -> Result<(), Error> {
        if from == to {
            self.set(from, cost);
            return Ok(());
        }
        let (owner, _) = self.holder(from).ok_or(Error::NotFound)?;
        self.record(to, owner, cost)?;
        self.take(from);
        Ok(())
    }

    fn set(&mut self, held: Held, cost: Objects) {
        let (map, key) = self.map(held);
        if let Some(entry) = map.get_mut(key) {
            entry.1 = cost;
        }
    }

    /// Records that `owner` holds `held` at `cost`.
    pub(crate) fn record(&mut self, held: Held, owner: Badge, cost: Objects) -> Result<(), Error> {
        let (map, key) = self.map(held);
        map.insert(key, 0, (owner, cost)).map_err(|e| match e {
            // A key is never live twice.
            InsertError::Duplicate => Error::Overlap,
            InsertError::Full | InsertError::OutOfMemory => Error::OutOfMemory,
        })
    }

    /// Moves `cost` of the charge of `from` to `to` when one client holds
    /// both (its holdings do not change): what `from` was charged for
    /// outlives it, used by `to`. Otherwise nothing changes.
    pub(crate) fn transfer(&mut self, from: Held, to: Held, cost: Objects) {
        let (Some((owner, given)), Some((heir, taken))) = (self.holder(from), self.holder(to)) else {
            return;
        };
        if owner != heir {
            return;
        }
        let Some(taken) = taken.plus_within(cost, Objects::UNLIMITED) else { return };
        self.set(from, given.minus(cost));
        self.set(to, taken);
    }

    /// Forgets `held`, returning its owner and charge.
    pub(crate) fn take(&mut self, held: Held) -> Option<(Badge, Objects)> {
        let (map, key) = self.map(held);
        map.remove(key).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_stay_within_every_limit_and_differences_floor_at_zero() {
        let limit = Objects { frames: 4, structures: 2, areas: 1 };
        let one = Objects { frames: 2, structures: 1, areas: 1 };
        assert_eq!(Objects::ZERO.plus_within(one, limit), Some(one));
        assert_eq!(one.plus_within(one, limit), None, "a second area is over the limit");
        assert_eq!(Objects::ZERO.minus(one), Objects::ZERO);
        assert_eq!(Objects::UNLIMITED.plus_within(one, Objects::UNLIMITED), None, "overflow is refused");
    }

    #[test]
    fn the_ledger_keeps_one_record_per_allocation() {
        let mut l = Ledger::new();
        let cost = Objects { frames: 1, structures: 0, areas: 1 };
        assert_eq!(l.record(Held::Area(0x1000), Badge(1), cost), Ok(()));
        assert_eq!(l.record(Held::Area(0x1000), Badge(2), cost), Err(Error::Overlap));
        assert_eq!(l.take(Held::Area(0x1000)), Some((Badge(1), cost)));
        assert_eq!(l.take(Held::Area(0x1000)), None);
    }

    #[test]
    fn a_charge_moves_only_between_one_clients_allocations() {
        let mut l = Ledger::new();
        let (two, one) = (Objects { frames: 2, structures: 1, areas: 1 }, Objects { frames: 1, ..Objects::ZERO });
        assert_eq!(l.record(Held::Range(0), Badge(1), two), Ok(()));
        assert_eq!(l.record(Held::Range(100), Badge(1), two), Ok(()));
        assert_eq!(l.record(Held::Range(200), Badge(2), two), Ok(()));
        l.transfer(Held::Range(0), Held::Range(100), one);
        l.transfer(Held::Range(0), Held::Range(200), one);
        l.transfer(Held::Range(0), Held::Range(300), one);
        assert_eq!(l.take(Held::Range(0)), Some((Badge(1), Objects { frames: 1, structures: 1, areas: 1 })));
        assert_eq!(l.take(Held::Range(100)), Some((Badge(1), Objects { frames: 3, structures: 1, areas: 1 })));
        assert_eq!(l.take(Held::Range(200)), Some((Badge(2), two)), "another client's charge is untouched");
    }
}
