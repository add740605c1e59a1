//! Reports of real faults waiting for the administrator. Reporting never
//! blocks the server: each space has a bounded queue, and a report that
//! finds its space's queue full is dropped and counted in the next report
//! of that space the administrator takes. A space whose threads fault
//! without end, or whose client forges faults, so loses only its own
//! reports, and never silently. Only spaces with waiting reports have a
//! queue, so the memory is that of the reports waiting; a report that
//! finds no memory for a new queue is counted and that count rides on the
//! next report taken.

use crate::ids::SpaceId;
use crate::limits::REPORTS_PER_SPACE;
use alloc::vec::Vec;
use heapless::Deque;
use memserver_protocol::FaultReport;

/// One space's waiting reports (never empty while it is kept).
struct Queue {
    space: SpaceId,
    reports: Deque<FaultReport, REPORTS_PER_SPACE>,
    /// Reports dropped since one was last taken.
    dropped: u32,
}

/// The waiting reports, by space.
pub struct FaultReports {
    /// Queues of the spaces with waiting reports, in id order.
    queues: Vec<Queue>,
    /// The space [`FaultReports::take`] looks at first, so taking goes
    /// round the spaces.
    next: SpaceId,
    /// Reports dropped for want of memory for their space's queue.
    unqueued: u32,
}

impl Default for FaultReports {
    fn default() -> Self {
        Self::new()
    }
}

impl FaultReports {
    /// No reports.
    pub const fn new() -> FaultReports {
        FaultReports { queues: Vec::new(), next: SpaceId::FIRST, unqueued: 0 }
    }

    /// Queues `report` of space `id`, or drops and counts it if the space's
    /// queue is full.
    pub fn push(&mut self, id: SpaceId, report: FaultReport) {
        let at = match self.queues.binary_search_by_key(&id, |q| q.space) {
            Ok(at) => at,
            Err(at) => {
                if self.queues.try_reserve(1).is_err() {
                    self.unqueued = self.unqueued.saturating_add(1);
                    return;
                }
                self.queues.insert(at, Queue { space: id, reports: Deque::new(), dropped: 0 });
                at
            }
        };
        if let Some(queue) = self.queues.get_mut(at) {
            if queue.reports.push_back(report).is_err() {
                queue.dropped = queue.dropped.saturating_add(1);
            }
        }
    }

    /// The oldest report of the next space that has one, with the reports
    /// of that space dropped since one was last taken.
    pub fn take(&mut self) -> Option<FaultReport> {
        let at = self.queues.iter().position(|q| q.space >= self.next).unwrap_or(0);
        let queue = self.queues.get_mut(at)?;
        let mut report = queue.reports.pop_front()?;
        report.dropped = core::mem::take(&mut queue.dropped).saturating_add(core::mem::take(&mut self.unqueued));
        let space = queue.space;
        if queue.reports.is_empty() {
            self.queues.remove(at);
        }
        self.next = SpaceId::new(space.index() + 1).unwrap_or(SpaceId::FIRST);
        Some(report)
    }

    /// Whether any report waits.
    pub fn pending(&self) -> bool {
        !self.queues.is_empty()
    }

    /// Forgets the reports of space `id` (it was unregistered).
    pub fn forget(&mut self, id: SpaceId) {
        if let Ok(at) = self.queues.binary_search_by_key(&id, |q| q.space) {
            self.queues.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memserver_protocol::FaultKind;
    use std::vec::Vec;

    fn report(space: u16, addr: u64) -> FaultReport {
        FaultReport { space, addr, ip: 0x20_0000, kind: FaultKind::UnmappedRead, dropped: 0 }
    }

    fn id(space: u16) -> SpaceId {
        SpaceId::new(space.into()).unwrap()
    }

    #[test]
    fn a_full_queue_drops_only_its_own_spaces_reports_and_counts_them() {
        let mut r = FaultReports::new();
        let flood = REPORTS_PER_SPACE as u64 + 100;
        for addr in 0..flood {
            r.push(id(3), report(3, addr));
        }
        r.push(id(7), report(7, 0xbeef));
        let mut taken = Vec::new();
        while let Some(t) = r.take() {
            taken.push(t);
        }
        assert!(!r.pending());
        let (three, seven): (Vec<FaultReport>, Vec<FaultReport>) = taken.iter().partition(|t| t.space == 3);
        assert_eq!(seven, [report(7, 0xbeef)], "the other space's report is kept whole");
        assert_eq!(three.len(), REPORTS_PER_SPACE);
        assert_eq!(three.iter().map(|t| t.addr).collect::<Vec<_>>(), (0..REPORTS_PER_SPACE as u64).collect::<Vec<_>>());
        let dropped: u64 = three.iter().map(|t| u64::from(t.dropped)).sum();
        assert_eq!(three.len() as u64 + dropped, flood, "every report is taken or counted");
        assert_eq!(three[0].dropped, 100, "the count rides on the next report taken");
    }

    #[test]
    fn queues_are_kept_only_for_spaces_with_reports_at_any_space_id() {
        let mut r = FaultReports::new();
        for space in [4095, 17, 8191] {
            r.push(id(space), report(space, 1));
        }
        assert_eq!(r.queues.len(), 3);
        let order: Vec<u16> = (0..3).filter_map(|_| r.take()).map(|t| t.space).collect();
        assert_eq!(order, [17, 4095, 8191]);
        assert!(r.queues.is_empty() && !r.pending());
    }

    #[test]
    fn taking_goes_round_the_spaces_and_forgetting_clears_one() {
        let mut r = FaultReports::new();
        for space in [1, 2] {
            for addr in 0..3 {
                r.push(id(space), report(space, addr));
            }
        }
        let order: Vec<u16> = (0..4).filter_map(|_| r.take()).map(|t| t.space).collect();
        assert_eq!(order, [1, 2, 1, 2]);
        r.forget(id(2));
        assert_eq!(r.take().map(|t| (t.space, t.addr)), Some((1, 2)));
        assert_eq!(r.take(), None);
        assert!(!r.pending());
    }
}
