//! vmemmap ranges of several clients, through the wire protocol: a client
//! cannot populate any pfn of another client's range, nor a range whose
//! descriptors would share a descriptor frame with another client's; one
//! client's depopulate never takes another's descriptors; re-populating
//! one's own range is done and charges nothing; and a descriptor frame
//! that ranges of one client share stays charged to that client, exactly
//! once, until its last range goes. After every step each client is
//! charged exactly the descriptor frames under its ranges.

mod common;

use std::collections::BTreeSet;

use common::dispatcher::{dispatcher, register, register_quota, send};
use memserver_core::dispatch::Dispatcher;
use memserver_core::sim::Sim;
use memserver_core::Badge;
use memserver_protocol::{ErrorCode, Quota, Reply, Request, Stats};

const A: Badge = Badge(0x100);
const B: Badge = Badge(0x101);
/// pfns whose descriptors share one 4 KiB descriptor frame.
const PFNS_PER_FRAME: u64 = 64;
const VMEMMAP_START: u64 = 0x7100_0000_0000;

fn populate(d: &mut Dispatcher<Sim>, caller: Badge, start_pfn: u64, nr_pages: u64) -> Reply {
    send(d, caller, Request::VmemmapPopulate { start_pfn, nr_pages, compound_order: 0, huge: false }, None)
}

fn depopulate(d: &mut Dispatcher<Sim>, caller: Badge, start_pfn: u64, nr_pages: u64) -> Reply {
    send(d, caller, Request::VmemmapDepopulate { start_pfn, nr_pages }, None)
}

fn stats(d: &mut Dispatcher<Sim>) -> Stats {
    match send(d, common::ADMIN, Request::Stats, None) {
        Reply::Stats(stats) => stats,
        other => panic!("stats: {other:?}"),
    }
}

/// The descriptor frames (as pfn / 64) under `client`'s ranges.
fn frames_of(d: &Dispatcher<Sim>, client: Badge) -> BTreeSet<u64> {
    let ranges = d.server().vmemmap_ranges().filter(|r| r.owner == client);
    ranges.flat_map(|r| r.start.get() / PFNS_PER_FRAME..=(r.start.get() + r.pages - 1) / PFNS_PER_FRAME).collect()
}

/// Each client's descriptor frames are mapped (its descriptors translate
/// through the protocol), no other client's range uses them, and the
/// client is charged exactly them, and exactly its descriptor bytes; the
/// server holds exactly `baseline` frames besides.
fn check_charges(d: &mut Dispatcher<Sim>, baseline: u64) {
    let mut all = BTreeSet::new();
    for client in [A, B] {
        let frames = frames_of(d, client);
        for &f in &frames {
            let addr = VMEMMAP_START + f * 4096;
            assert!(
                matches!(send(d, client, Request::Translate { addr }, None), Reply::Translation(Some(t)) if t.writable),
                "{client:?}'s descriptor frame {f} at {addr:#x} is not mapped"
            );
            assert!(all.insert(f), "descriptor frame {f} is under ranges of two clients");
        }
        let usage = d.server().usage(client);
        let bytes: u64 = d.server().vmemmap_ranges().filter(|r| r.owner == client).map(|r| r.pages * 64).sum();
        assert_eq!(usage.objects.frames, frames.len() as u64, "{client:?} uses frames {frames:?}");
        assert_eq!(usage.used, bytes, "{client:?}'s descriptor bytes");
    }
    assert_eq!(stats(d).frames, baseline + all.len() as u64, "frames the server holds");
}

/// A dispatcher with a space for A and one for B, and the frames the
/// server holds then.
fn two_clients() -> (Box<Dispatcher<Sim>>, u64) {
    let mut d = dispatcher();
    register(&mut d, A);
    register(&mut d, B);
    let baseline = stats(&mut d).frames;
    (d, baseline)
}

#[test]
fn a_client_cannot_populate_another_clients_pfns_or_descriptor_frames() {
    let (mut d, baseline) = two_clients();
    // A's range has descriptor frames 15 (pfns 960..1024), 16 and 17 (1088..1152).
    assert_eq!(populate(&mut d, A, 1000, 100), Reply::Done);
    check_charges(&mut d, baseline);
    let refused = [
        (1000, 100, "A's range exactly"),
        (1010, 10, "inside A's range"),
        (900, 300, "around A's range"),
        (1050, 100, "partly over A's range"),
        (970, 30, "below A's range, sharing descriptor frame 15"),
        (1100, 20, "above A's range, sharing descriptor frame 17"),
        (1151, 1, "the last pfn of descriptor frame 17"),
    ];
    for (start, pages, what) in refused {
        let before = common::snapshot(d.server());
        assert_eq!(populate(&mut d, B, start, pages), Reply::Error(ErrorCode::NotOwner), "B: {what}");
        assert_eq!(common::snapshot(d.server()), before, "B: {what} changed the state");
    }
    // Frames of their own are B's: 14 (896..960) and 18 (1152..1216).
    assert_eq!(populate(&mut d, B, 896, 64), Reply::Done);
    assert_eq!(populate(&mut d, B, 1152, 40), Reply::Done);
    check_charges(&mut d, baseline);

    // A's own range again, whole or in part: done, nothing new, no charge.
    for (start, pages) in [(1000, 100), (1010, 10)] {
        let before = common::snapshot(d.server());
        assert_eq!(populate(&mut d, A, start, pages), Reply::Done);
        assert_eq!(common::snapshot(d.server()), before, "A re-populating {start}+{pages}");
    }
    assert_eq!(populate(&mut d, A, 1050, 100), Reply::Error(ErrorCode::Overlap), "partly over its own");
    // Sharing descriptor frame 17 with its own range is A's to do.
    assert_eq!(populate(&mut d, A, 1100, 50), Reply::Done);
    assert_eq!(populate(&mut d, B, 1150, 2), Reply::Error(ErrorCode::NotOwner), "in frame 17, which is A's");
    check_charges(&mut d, baseline);

    // A's depopulate takes nothing of B's; B cannot take A's.
    assert_eq!(depopulate(&mut d, B, 1100, 50), Reply::Error(ErrorCode::NotOwner));
    assert_eq!(depopulate(&mut d, A, 1000, 100), Reply::Done);
    check_charges(&mut d, baseline);
    assert_eq!(frames_of(&d, B), BTreeSet::from([14, 18]));
    assert_eq!(frames_of(&d, A), BTreeSet::from([17]), "frame 17 stays for A's other range");
    // Frames 15 and 16 are free now: B may take them.
    assert_eq!(populate(&mut d, B, 960, 128), Reply::Done);
    check_charges(&mut d, baseline);

    for (client, start, pages) in [(A, 1100, 50), (B, 896, 64), (B, 1152, 40), (B, 960, 128)] {
        assert_eq!(depopulate(&mut d, client, start, pages), Reply::Done, "{client:?} {start}+{pages}");
        check_charges(&mut d, baseline);
    }
    assert_eq!((stats(&mut d).frames, stats(&mut d).vmemmap_ranges), (baseline, 0));
}

#[test]
fn a_descriptor_frame_one_clients_ranges_share_stays_charged_once_until_the_last_goes() {
    let (mut d, baseline) = two_clients();
    assert_eq!(populate(&mut d, B, 1 << 20, 1000), Reply::Done, "B's range, far away");
    // The middle range maps frames 1, 2 and 3; its neighbours share frame 1
    // (pfns 64..128) and frame 3 (192..256).
    let ranges = [(100, 100), (30, 70), (200, 10), (210, 5)];
    for (start, pages) in ranges {
        assert_eq!(populate(&mut d, A, start, pages), Reply::Done, "{start}+{pages}");
        check_charges(&mut d, baseline);
    }
    assert_eq!(d.server().usage(A).objects.frames, 4);
    let b_before = d.server().usage(B);
    // The middle goes first: the shared frames pass to the neighbours; then
    // frame 3's holder goes and it passes on again.
    for (start, pages) in [(100, 100), (200, 10), (30, 70), (210, 5)] {
        assert_eq!(depopulate(&mut d, A, start, pages), Reply::Done, "{start}+{pages}");
        check_charges(&mut d, baseline);
        assert_eq!(d.server().usage(B), b_before, "B's charge does not move");
    }
    assert_eq!(d.server().usage(A).objects.frames, 0);
}

#[test]
fn unregistering_a_client_reclaims_its_shared_descriptor_frames_exactly() {
    let mut d = dispatcher();
    register(&mut d, B);
    assert_eq!(populate(&mut d, B, 512, 64), Reply::Done);
    let before = common::snapshot(d.server());
    let space = register(&mut d, A);
    for (start, pages) in [(100, 100), (30, 70), (200, 10), (210, 5), (600, 7)] {
        assert_eq!(populate(&mut d, A, start, pages), Reply::Done, "{start}+{pages}");
    }
    assert_eq!(depopulate(&mut d, A, 100, 100), Reply::Done);
    assert_eq!(send(&mut d, common::ADMIN, Request::Unregister { space }, None), Reply::Done);
    assert_eq!(common::snapshot(d.server()), before, "A's frames, charges and records are all gone");
}

#[test]
fn re_populating_ones_own_range_is_done_at_the_area_quota() {
    let mut d = dispatcher();
    register_quota(&mut d, A, Quota { areas: 3, ..Quota::bytes(u64::MAX) });
    for start in [0, 1024, 2048] {
        assert_eq!(populate(&mut d, A, start, 100), Reply::Done, "range at {start}");
    }
    assert_eq!(populate(&mut d, A, 4096, 100), Reply::Error(ErrorCode::QuotaExceeded), "a fourth range");
    for (start, pages) in [(0, 100), (1024, 50), (2060, 10)] {
        let before = common::snapshot(d.server());
        assert_eq!(populate(&mut d, A, start, pages), Reply::Done, "re-populating {start}+{pages}");
        assert_eq!(common::snapshot(d.server()), before, "re-populating {start}+{pages} changed the state");
    }
}
