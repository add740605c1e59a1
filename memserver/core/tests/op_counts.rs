//! Operation counts against the lower bound: mapping P pages into N spaces
//! cannot take fewer than P frame allocations, the structures each space
//! newly needs, and one leaf per page per space. Prints the table and
//! asserts the counts equal that minimum, that unmapping costs one revoke and
//! one free per page whatever N is (vmalloc keeps its structures, and the
//! next area in their range makes none), and that a late registration costs the region's
//! structures plus one leaf per page.

mod common;

use std::collections::BTreeSet;
use strum::VariantArray;

use common::{check, server, ADMIN};
use memserver_core::{Badge, Level, OpCounts, OpKind, PageSize, VmallocFlags};

/// Distinct structures of each created level that `pages` pages of `size`
/// from `start` need, counted from the addresses alone.
fn structures_needed(start: u64, pages: u64, size: PageSize) -> u64 {
    let levels: &[Level] = match size {
        PageSize::Small => &[Level::Pdpt, Level::Pd, Level::Pt],
        PageSize::Large => &[Level::Pdpt, Level::Pd],
        PageSize::Huge => &[Level::Pdpt],
    };
    levels
        .iter()
        .map(|l| (0..pages).map(|i| (start + i * size.bytes()) / l.span()).collect::<BTreeSet<_>>().len() as u64)
        .sum()
}

fn only(counts: OpCounts, expect: &[(OpKind, u64)]) {
    for &kind in OpKind::VARIANTS {
        let want = expect.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n);
        assert_eq!(counts.get(kind), want, "{kind:?} in {counts:?}");
    }
}

#[test]
fn mapping_p_pages_into_n_spaces_takes_exactly_the_minimum() {
    println!("| N spaces | P pages | size | structures/space | allocs | creates | maps | total | minimum | unmap ops | late register |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (n, p, size) in [
        (1, 1, PageSize::Small),
        (1, 64, PageSize::Small),
        (4, 64, PageSize::Small),
        (8, 600, PageSize::Small),
        (15, 1000, PageSize::Small),
        (4, 8, PageSize::Large),
    ] {
        let mut s = server(1);
        for _ in 0..n {
            let v = s.sim_hooks().new_vspace();
            s.register_space(&s.admin(ADMIN).expect("admin"), v).expect("register");
        }
        let before = s.region().op_counts();
        let sim_before = s.region().backend().counts();
        let huge = size == PageSize::Large;
        let addr =
            s.vmalloc(Badge(1), p * size.bytes(), VmallocFlags { huge, ..VmallocFlags::DEFAULT }).expect("vmalloc");
        check(&s);
        let counts = s.region().op_counts().since(&before);
        assert_eq!(counts, s.region().backend().counts().since(&sim_before), "server and MMU agree");
        let per_space = structures_needed(addr.get(), p, size);
        let minimum = p + per_space * n + p * n;
        only(counts, &[(OpKind::AllocFrame, p), (OpKind::CreateStructure, per_space * n), (OpKind::MapFrame, p * n)]);
        assert_eq!(counts.total(), minimum);

        // A late registration replicates the region: all its structures and leaves.
        let before = s.region().op_counts();
        let late = s.sim_hooks().new_vspace();
        let late_id = s.register_space(&s.admin(ADMIN).expect("admin"), late).expect("register late");
        let register = s.region().op_counts().since(&before);
        let region = s.region().canonical();
        only(
            register,
            &[
                (OpKind::CreateStructure, region.structure_count() as u64),
                (OpKind::MapFrame, region.leaf_count() as u64),
            ],
        );
        s.unregister_space(&s.admin(ADMIN).expect("admin"), late_id).expect("unregister");

        let before = s.region().op_counts();
        s.vfree(Badge(1), addr).expect("vfree");
        s.purge(&s.admin(ADMIN).expect("admin"));
        check(&s);
        let unmap = s.region().op_counts().since(&before);
        // vmalloc keeps its structures for the next areas.
        only(unmap, &[(OpKind::UnmapEverywhere, p), (OpKind::FreeFrame, p)]);
        assert_eq!(s.census().kept_structures, per_space * n);

        // The next area in the range maps its pages and makes nothing.
        let before = s.region().op_counts();
        let again =
            s.vmalloc(Badge(1), p * size.bytes(), VmallocFlags { huge, ..VmallocFlags::DEFAULT }).expect("vmalloc");
        check(&s);
        assert_eq!(again, addr, "the lowest free addresses again");
        only(s.region().op_counts().since(&before), &[(OpKind::AllocFrame, p), (OpKind::MapFrame, p * n)]);
        s.vfree(Badge(1), again).expect("vfree");
        s.purge(&s.admin(ADMIN).expect("admin"));
        println!(
            "| {n} | {p} | {size:?} | {per_space} | {p} | {} | {} | {} | {minimum} | {} | {} |",
            per_space * n,
            p * n,
            counts.total(),
            unmap.total(),
            register.total()
        );
    }
}
