//! Accounting: objects, slots and untyped memory come back to their
//! baseline exactly when everything made is given back the way seL4 needs
//! it (each mapping unmapped, each capability deleted), and not otherwise.

mod common;

use common::*;
use sel4_layer::abi::object_type;
use sel4_layer::kernel::Kernel;
use sel4_layer::{CNode, CapRights, PagingLevel};
use sel4_model::{Accounting, BootConfig, FrameSize, ObjectType};

const BASE: u64 = 0x40_0000_0000;

/// What the memory server does for `spaces` registered spaces: an untyped
/// of its own, frames and structures retyped from it in batches, each
/// space with its own structures and a copy of every frame.
struct Work {
    frames: Vec<u64>,
    structures: Vec<u64>,
    copies: Vec<u64>,
}

/// A system with `spaces` VSpaces and an untyped of 4 MiB for the work,
/// its accounting then, and the work of `pages` pages done.
fn busy(spaces: usize, pages: u64) -> (Sys, Vec<u64>, u64, Accounting, Work) {
    let mut s = Sys::with(&BootConfig { root_cnode_bits: 12, untyped_bits: vec![24] });
    let spaces: Vec<u64> = (0..spaces).map(|_| s.vspace()).collect();
    let untyped = s.retype(object_type::UNTYPED, 22);
    let baseline = s.m.accounting();
    let work = build(&mut s, untyped, &spaces, pages);
    (s, spaces, untyped, baseline, work)
}

fn build(s: &mut Sys, untyped: u64, spaces: &[u64], pages: u64) -> Work {
    let batch = |s: &mut Sys, t, n| s.retype_n(untyped, t, 0, n).unwrap();
    let frames = batch(s, object_type::X86_4K, pages);
    let mut structures = Vec::new();
    let mut copies = Vec::new();
    for &v in spaces {
        for (level, t) in [
            (PagingLevel::Pdpt, object_type::X86_PDPT),
            (PagingLevel::PageDirectory, object_type::X86_PAGE_DIRECTORY),
            (PagingLevel::PageTable, object_type::X86_PAGE_TABLE),
        ] {
            let cap = batch(s, t, 1)[0];
            s.m.paging_structure_map(cap, level, v, BASE, ATTRS).unwrap();
            structures.push(cap);
        }
        for (i, &f) in frames.iter().enumerate() {
            let copy = s.copy(f);
            s.map(copy, v, BASE + ((i as u64) << 12)).unwrap();
            copies.push(copy);
        }
    }
    Work { frames, structures, copies }
}

#[test]
fn unmapping_and_deleting_everything_returns_objects_slots_and_memory() {
    let (mut s, spaces, _, baseline, work) = busy(3, 40);
    let busy = s.m.accounting();
    assert_eq!(busy.objects[&ObjectType::Frame(FrameSize::Small)], 40);
    assert_eq!(busy.objects[&ObjectType::PageTable], 3);
    assert_eq!(busy.slots, baseline.slots + 40 + 9 + 120);
    assert!(!busy.is_back_to(&baseline));
    for &c in &work.copies {
        s.m.page_unmap(c).unwrap();
        s.delete(c);
    }
    for &c in work.structures.iter().chain(&work.frames) {
        s.delete(c);
    }
    for &v in &spaces {
        assert!(s.m.leaves(s.object(v), 0..u64::MAX).is_empty());
    }
    let after = s.m.accounting();
    assert!(after.is_back_to(&baseline), "{after:?}\n{baseline:?}");
    assert_ne!(after, baseline, "the watermark stays until the next Retype");
    s.assert_sound();
}

/// Deleting the copies without Page Unmap (the bug the stress scenario
/// found) leaves every mapping: the frames live on behind them. Revoking
/// their untyped kills the frames, and the page tables with them, which
/// takes the mappings.
#[test]
fn deleting_mapped_copies_leaves_their_mappings_behind() {
    let (mut s, _, untyped, _, work) = busy(2, 8);
    for &c in &work.copies {
        s.delete(c);
    }
    assert_eq!(s.m.unowned_leaves().len(), 16);
    s.m.cnode_revoke(ROOT, untyped).unwrap();
    assert_eq!(s.m.accounting().objects.get(&ObjectType::Frame(FrameSize::Small)), None);
    let left = s.m.unowned_leaves();
    assert_eq!(left.len(), 0, "the page tables went with the untyped, taking the mappings: {left:?}");
    s.assert_sound();
}

/// Revoking the untyped also cleans up what the order of deletions left:
/// with the structures still mapped, their entries go when their last
/// capabilities do.
#[test]
fn revoking_the_untyped_takes_everything_back_at_once() {
    let (mut s, _, untyped, baseline, work) = busy(2, 8);
    for &c in &work.copies {
        s.m.page_unmap(c).unwrap();
    }
    s.revoke(untyped);
    assert!(s.m.accounting().is_back_to(&baseline));
    s.assert_sound();
}

#[test]
fn slots_in_use_per_cnode() {
    let mut s = Sys::new();
    let cnode = s.retype(object_type::CAP_TABLE, 6);
    let node = s.object(cnode);
    let frame = s.frame(FrameSize::Small);
    for i in 0..10 {
        s.m.cnode_copy(CNode { cap: cnode, depth: 6 }, i, ROOT, frame, CapRights::ALL).unwrap();
    }
    assert_eq!(s.m.slots_in_use(node), 10);
    s.revoke(frame);
    assert_eq!(s.m.slots_in_use(node), 0);
    s.assert_sound();
}
