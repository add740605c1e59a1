//! Property tests: random sequences of register, unregister, vmalloc, vmap,
//! vfree, purge, vmemmap populate and depopulate (plain, huge and compound,
//! near pfn 0 and across the 512 GiB top-level boundary of the vmemmap
//! area), percpu alloc and free, and faults on unmapped addresses, by
//! several clients, some of them trying to free what is not theirs.
//!
//! After every step the invariant holds, and a failed step changed nothing.
//! At the end no sync was missed, and once everything is freed and every
//! space unregistered, all resources are back: only the first percpu chunk
//! remains mapped, no structure is alive, no client is charged.

mod common;

use common::{check, server, snapshot, ADMIN};
use memserver_core::layout::{DESCRIPTOR_SIZE, PAGE_SIZE, TOP_ENTRY_SPAN};
use memserver_core::limits::PERCPU_UNIT_SIZE;
use memserver_core::sim::Sim;
use memserver_core::{
    Access, Badge, FaultError, MemServer, PercpuOffset, Pfn, Rights, SpaceId, VmallocAddr, VmallocFlags, VmemmapOptions,
};
use proptest::prelude::*;

/// Sequences run by `random_sequences_keep_every_space_in_sync`.
const SEQUENCES: u32 = 10_000;
const CPUS: usize = 2;
const BOUNDARY_PFN: u64 = TOP_ENTRY_SPAN / DESCRIPTOR_SIZE;

#[derive(Clone, Debug)]
enum Op {
    Register,
    Unregister(usize),
    Vmalloc { client: u64, pages: u64, huge: bool },
    Vmap { client: u64, frames: usize, writable: bool },
    Vfree { pick: usize, wrong_caller: bool },
    Purge,
    Populate { client: u64, near_boundary: bool, offset: u64, pages: u64, mode: Mode },
    Depopulate { pick: usize, wrong_caller: bool },
    PercpuAlloc { client: u64, size: u64, align_shift: u32 },
    PercpuFree { pick: usize, wrong_caller: bool },
    Fault { space: usize, page: u64 },
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Plain,
    Huge,
    Compound,
}

fn op() -> impl Strategy<Value = Op> {
    let client = 1u64..4;
    prop_oneof![
        2 => Just(Op::Register),
        1 => any::<usize>().prop_map(Op::Unregister),
        3 => (client.clone(), 1u64..24, prop::bool::weighted(0.1))
            .prop_map(|(client, pages, huge)| Op::Vmalloc { client, pages: if huge { 512 * (pages % 2 + 1) } else { pages }, huge }),
        1 => (client.clone(), 1usize..6, any::<bool>()).prop_map(|(client, frames, writable)| Op::Vmap { client, frames, writable }),
        2 => (any::<usize>(), prop::bool::weighted(0.1)).prop_map(|(pick, wrong_caller)| Op::Vfree { pick, wrong_caller }),
        1 => Just(Op::Purge),
        3 => (client.clone(), any::<bool>(), 0u64..24, 1u64..5, prop_oneof![Just(Mode::Plain), Just(Mode::Huge), Just(Mode::Compound)])
            .prop_map(|(client, near_boundary, offset, pages, mode)| Op::Populate { client, near_boundary, offset, pages, mode }),
        2 => (any::<usize>(), prop::bool::weighted(0.1)).prop_map(|(pick, wrong_caller)| Op::Depopulate { pick, wrong_caller }),
        2 => (client, prop_oneof![8u64..512, Just(PERCPU_UNIT_SIZE)], 3u32..8)
            .prop_map(|(client, size, align_shift)| Op::PercpuAlloc { client, size, align_shift }),
        2 => (any::<usize>(), prop::bool::weighted(0.1)).prop_map(|(pick, wrong_caller)| Op::PercpuFree { pick, wrong_caller }),
        1 => (any::<usize>(), 0u64..64).prop_map(|(space, page)| Op::Fault { space, page }),
    ]
}

/// What the test knows it holds, to free it again.
#[derive(Default)]
struct Held {
    spaces: Vec<SpaceId>,
    areas: Vec<(VmallocAddr, Badge)>,
    ranges: Vec<(Pfn, u64, Badge)>,
    percpu: Vec<(PercpuOffset, Badge)>,
}

fn pick<T: Copy>(items: &[T], i: usize) -> Option<(usize, T)> {
    (!items.is_empty()).then(|| (i % items.len(), items[i % items.len()]))
}

fn other(owner: Badge) -> Badge {
    Badge(owner.0 % 3 + 1)
}

/// The pfn range a populate op names: plain and huge ranges are unaligned,
/// compound ranges are whole order-8 compound pages.
fn populate_range(near_boundary: bool, offset: u64, pages: u64, mode: Mode) -> (u64, u64) {
    let base = if near_boundary { BOUNDARY_PFN - 4 * 256 } else { 0 };
    match mode {
        Mode::Plain => (base + offset * 37, pages * 45),
        Mode::Huge => (base.saturating_sub(1 << 15) + offset * 99, (1 << 15) + pages * 64),
        Mode::Compound => (base + offset * 256, pages * 256),
    }
}

/// Apply `op`; `Err` means the server refused it.
fn apply(s: &mut MemServer<Sim>, held: &mut Held, op: &Op) -> Result<(), String> {
    let refused = |e| format!("{e:?}");
    match *op {
        Op::Register => {
            let v = s.sim_hooks().new_vspace();
            let id = s.register_space(&s.admin(ADMIN).expect("admin"), v).map_err(refused)?;
            held.spaces.push(id);
        }
        Op::Unregister(i) => {
            let (at, id) = pick(&held.spaces, i).ok_or("none")?;
            s.unregister_space(&s.admin(ADMIN).expect("admin"), id).map_err(refused)?;
            held.spaces.remove(at);
        }
        Op::Vmalloc { client, pages, huge } => {
            let a = s
                .vmalloc(Badge(client), pages * PAGE_SIZE, VmallocFlags { huge, ..VmallocFlags::DEFAULT })
                .map_err(refused)?;
            held.areas.push((a, Badge(client)));
        }
        Op::Vmap { client, frames, writable } => {
            let frames: Vec<_> = (0..frames).map(|_| s.sim_hooks().client_frame()).collect();
            let rights = if writable { Rights::ReadWrite } else { Rights::ReadOnly };
            let a = s.vmap(Badge(client), &frames, rights).map_err(refused)?;
            held.areas.push((a, Badge(client)));
        }
        Op::Vfree { pick: i, wrong_caller } => {
            let (at, (addr, owner)) = pick(&held.areas, i).ok_or("none")?;
            let caller = if wrong_caller { other(owner) } else { owner };
            s.vfree(caller, addr).map_err(refused)?;
            held.areas.remove(at);
        }
        Op::Purge => s.purge(&s.admin(ADMIN).expect("admin")),
        Op::Populate { client, near_boundary, offset, pages, mode } => {
            let (start, pages) = populate_range(near_boundary, offset, pages, mode);
            let options = match mode {
                Mode::Plain => VmemmapOptions::default(),
                Mode::Huge => VmemmapOptions { huge: true, compound_order: None },
                Mode::Compound => VmemmapOptions { huge: false, compound_order: Some(8) },
            };
            let pfn = Pfn::new(start).ok_or("pfn")?;
            let already = held.ranges.iter().any(|&(p, n, _)| p.get() <= start && start + pages <= p.get() + n);
            s.vmemmap_populate(Badge(client), pfn, pages, options).map_err(refused)?;
            if !already {
                held.ranges.push((pfn, pages, Badge(client)));
            }
        }
        Op::Depopulate { pick: i, wrong_caller } => {
            let (at, (pfn, pages, owner)) = pick(&held.ranges, i).ok_or("none")?;
            let caller = if wrong_caller { other(owner) } else { owner };
            s.vmemmap_depopulate(caller, pfn, pages).map_err(refused)?;
            held.ranges.remove(at);
        }
        Op::PercpuAlloc { client, size, align_shift } => {
            let off = s.percpu_alloc(Badge(client), size, 1 << align_shift).map_err(refused)?;
            held.percpu.push((off, Badge(client)));
        }
        Op::PercpuFree { pick: i, wrong_caller } => {
            let (at, (off, owner)) = pick(&held.percpu, i).ok_or("none")?;
            let caller = if wrong_caller { other(owner) } else { owner };
            s.percpu_free(caller, off).map_err(refused)?;
            held.percpu.remove(at);
        }
        Op::Fault { space, page } => {
            let (_, id) = pick(&held.spaces, space).ok_or("none")?;
            // Guard pages and the holes around areas are never mapped.
            let addr = held.areas.get(page as usize).map_or(page * PAGE_SIZE, |(a, _)| a.get() - PAGE_SIZE);
            if s.translate(addr).is_none() {
                let result = s.handle_fault(id, addr, Access::Read);
                assert!(matches!(result, Err(FaultError::NotMapped | FaultError::OutsideRegion)), "{result:?}");
            }
        }
    }
    Ok(())
}

fn release_everything(s: &mut MemServer<Sim>, held: Held) {
    for (addr, owner) in held.areas {
        s.vfree(owner, addr).expect("vfree");
    }
    for (pfn, pages, owner) in held.ranges {
        s.vmemmap_depopulate(owner, pfn, pages).expect("depopulate");
    }
    for (off, owner) in held.percpu {
        s.percpu_free(owner, off).expect("percpu free");
    }
    s.purge(&s.admin(ADMIN).expect("admin"));
    check(s);
    for id in held.spaces {
        s.unregister_space(&s.admin(ADMIN).expect("admin"), id).expect("unregister");
    }
    check(s);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: SEQUENCES, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_space_in_sync(ops in prop::collection::vec(op(), 1..12)) {
        let mut s = server(CPUS);
        let mut held = Held::default();
        for op in &ops {
            let before = snapshot(&s);
            if let Err(why) = apply(&mut s, &mut held, op) {
                prop_assert_eq!(snapshot(&s), before, "{:?} refused ({}) but changed state", op, why);
            }
            check(&s);
        }
        prop_assert_eq!(s.region().missed_syncs(), 0);
        release_everything(&mut s, held);
        let stats = s.census();
        let first_chunk = CPUS as u64 * PERCPU_UNIT_SIZE / PAGE_SIZE;
        prop_assert_eq!(stats.canonical_leaves as u64, first_chunk);
        prop_assert_eq!((stats.frames.small, stats.frames.large), (first_chunk, 0));
        prop_assert_eq!(s.region().backend().live_structures(), 0);
        prop_assert_eq!(s.vmalloc_free_ranges().count(), 1);
        prop_assert!(s.clients().is_empty(), "{:?}", s.clients());
        prop_assert_eq!(stats.missed_syncs, 0);
    }
}
