//! Random invocation sequences against the model, checking after every
//! step its own consistency (`Model::check`) and the rules as a caller sees
//! them:
//! - a failed invocation changes nothing;
//! - Page Map adds exactly its one mapping, Page Unmap removes at most its
//!   own, structure Unmap only those below the structure, structure Map and
//!   the CNode and ASID operations other than Delete and Revoke add or
//!   remove no mapping;
//! - Delete and Revoke only remove mappings whose frame, or a table on
//!   whose path, or whose VSpace's ASID, went in the step;
//! - a mapping no capability owns appears only through Delete or Revoke,
//!   and only where a capability owned it before (5.0.0 leaves a deleted
//!   copy's mapping when the copy is not the frame's last capability).

mod common;

use common::*;
use proptest::prelude::*;
use sel4_layer::abi::init_cap;
use sel4_layer::kernel::Kernel;
use sel4_layer::{CNode, CapRights, PagingLevel, Sel4Error, Slot};
use sel4_model::{BootConfig, Hazard, Leaf, Model};
use std::collections::BTreeSet;

/// Root CNode slots: 2^6, so every CPtr below 64 resolves.
const ROOT_BITS: u32 = 6;
/// Sub-CNodes retyped by the sequences have 2^2 slots.
const SUB_BITS: u8 = 2;

/// A CNode slot: of the root CNode, or of a sub-CNode whose capability is
/// in a root slot.
#[derive(Clone, Copy, Debug)]
struct Place {
    sub: Option<u64>,
    index: u64,
}

impl Place {
    fn node(self) -> CNode {
        match self.sub {
            None => ROOT,
            Some(cap) => CNode { cap, depth: SUB_BITS },
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Retype { untyped: u64, object_type: u64, size_bits: u64, dest: Place, count: u64 },
    Copy { dest: Place, src: Place, rights: u8 },
    Mint { dest: Place, src: Place, rights: u8, badge: u64 },
    Move { dest: Place, src: Place },
    Delete(Place),
    Revoke(Place),
    Map { frame: u64, vspace: u64, vaddr: u64, rights: u8 },
    Remap { frame: u64, vspace: u64, rights: u8 },
    Unmap(u64),
    Address(u64),
    StructureMap { cap: u64, level: u8, vspace: u64, vaddr: u64 },
    StructureUnmap { cap: u64, level: u8 },
    Assign { pool: u64, vspace: u64 },
    MakePool { untyped: u64, dest: Place },
}

/// A root slot, mostly where the sequences' objects are (17..32, the
/// prelude's first); never the root task's own TCB (1) or CNode (2):
/// deleting, moving or revoking those ends the root task's invocations
/// (cap faults, tested in `cspace.rs`).
fn slot() -> impl Strategy<Value = u64> {
    prop_oneof![1 => 3u64..64, 1 => 3u64..7, 1 => 12u64..17, 10 => 17u64..32]
}

/// A VSpace argument: mostly the prelude's two.
fn vspace() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 17u64..19, 1 => slot()]
}

/// A frame argument: mostly the prelude's frames and where their copies go.
fn frame() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 19u64..32, 1 => slot()]
}

/// Mostly addresses the prelude's page tables cover.
fn vaddr() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => prop::sample::select(vec![0x1000u64, 0x2000, 0x3000]),
        1 => prop::sample::select(vec![0x20_0000u64, 0x20_1000, 0x4000_0000, 0x80_0000_0000, 0x1234, 0x8000_0000_0000, 0xffff_ff00_0000_0000]),
    ]
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        6 => slot().prop_map(|index| Place { sub: None, index }),
        1 => (17u64..32, 0u64..4).prop_map(|(cap, index)| Place { sub: Some(cap), index }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    use sel4_layer::abi::object_type as t;
    let types = vec![
        t::X86_4K,
        t::X86_4K,
        t::X86_4K,
        t::X86_PAGE_TABLE,
        t::X86_PAGE_TABLE,
        t::X86_PAGE_DIRECTORY,
        t::X86_PDPT,
        t::X64_PML4,
        t::X86_LARGE_PAGE,
        t::CAP_TABLE,
        t::UNTYPED,
        t::ENDPOINT,
        t::TCB,
        12,
    ];
    let retype = (
        12u64..17,
        prop::sample::select(types),
        prop::sample::select(vec![0u64, 2, 4, 12, 13]),
        place(),
        prop::sample::select(vec![1u64, 1, 1, 2, 3, 257]),
    )
        .prop_map(|(untyped, object_type, size_bits, dest, count)| Op::Retype {
            untyped,
            object_type,
            size_bits,
            dest,
            count,
        });
    prop_oneof![
        4 => retype,
        2 => (place(), place(), 0u8..8).prop_map(|(dest, src, rights)| Op::Copy { dest, src, rights }),
        // Copies of the prelude's frames, which then map on their own.
        3 => (place(), 19u64..21).prop_map(|(dest, index)| Op::Copy { dest, src: Place { sub: None, index }, rights: 7 }),
        1 => (place(), place(), 0u8..8, 0u64..3).prop_map(|(dest, src, rights, badge)| Op::Mint { dest, src, rights, badge }),
        1 => (place(), place()).prop_map(|(dest, src)| Op::Move { dest, src }),
        2 => place().prop_map(Op::Delete),
        1 => place().prop_map(Op::Revoke),
        6 => (frame(), vspace(), vaddr(), 0u8..8).prop_map(|(frame, vspace, vaddr, rights)| Op::Map { frame, vspace, vaddr, rights }),
        1 => (slot(), vspace(), 0u8..8).prop_map(|(frame, vspace, rights)| Op::Remap { frame, vspace, rights }),
        2 => frame().prop_map(Op::Unmap),
        1 => slot().prop_map(Op::Address),
        3 => (slot(), 0u8..3, vspace(), vaddr()).prop_map(|(cap, level, vspace, vaddr)| Op::StructureMap { cap, level, vspace, vaddr }),
        1 => (slot(), 0u8..3).prop_map(|(cap, level)| Op::StructureUnmap { cap, level }),
        1 => (prop_oneof![Just(init_cap::ASID_POOL), slot()], slot()).prop_map(|(pool, vspace)| Op::Assign { pool, vspace }),
        1 => (12u64..32, place()).prop_map(|(untyped, dest)| Op::MakePool { untyped, dest }),
    ]
}

fn rights(bits: u8) -> CapRights {
    CapRights { write: bits & 1 != 0, read: bits & 2 != 0, grant: bits & 4 != 0 }
}

fn level(n: u8) -> PagingLevel {
    [PagingLevel::Pdpt, PagingLevel::PageDirectory, PagingLevel::PageTable][n as usize % 3]
}

fn run(m: &mut Model, op: &Op) -> Result<(), Sel4Error> {
    match *op {
        Op::Retype { untyped, object_type, size_bits, dest, count } => {
            let root = dest.sub.unwrap_or(init_cap::CNODE);
            let slot = Slot { root, node_index: 0, node_depth: 0, offset: dest.index };
            m.untyped_retype(untyped, object_type, size_bits, slot, count)
        }
        Op::Copy { dest, src, rights: r } => m.cnode_copy(dest.node(), dest.index, src.node(), src.index, rights(r)),
        Op::Mint { dest, src, rights: r, badge } => {
            m.cnode_mint(dest.node(), dest.index, src.node(), src.index, rights(r), badge)
        }
        Op::Move { dest, src } => m.cnode_move(dest.node(), dest.index, src.node(), src.index),
        Op::Delete(p) => m.cnode_delete(p.node(), p.index),
        Op::Revoke(p) => m.cnode_revoke(p.node(), p.index),
        Op::Map { frame, vspace, vaddr, rights: r } => m.page_map(frame, vspace, vaddr, rights(r), ATTRS),
        Op::Remap { frame, vspace, rights: r } => m.page_remap(frame, vspace, rights(r), ATTRS),
        Op::Unmap(frame) => m.page_unmap(frame),
        Op::Address(frame) => m.page_get_address(frame).map(drop),
        Op::StructureMap { cap, level: l, vspace, vaddr } => {
            m.paging_structure_map(cap, level(l), vspace, vaddr, ATTRS)
        }
        Op::StructureUnmap { cap, level: l } => m.paging_structure_unmap(cap, level(l)),
        Op::Assign { pool, vspace } => m.asid_pool_assign(pool, vspace),
        Op::MakePool { untyped, dest } => {
            m.asid_control_make_pool(init_cap::ASID_CONTROL, untyped, dest.node(), dest.index)
        }
    }
}

/// A mapping as the MMU sees it, without which object the memory is now
/// (a Retype can put a new frame under a mapping a deleted copy left).
type Key = (u16, u64, u64);

fn key(asid: u16, l: &Leaf) -> Key {
    (asid, l.vaddr, l.paddr)
}

/// Every mapping of every VSpace with an ASID, and the unowned ones.
fn mappings(m: &Model) -> (BTreeSet<Key>, BTreeSet<Key>) {
    let mut all = BTreeSet::new();
    for (asid, pml4) in m.assigned_vspaces() {
        for leaf in m.leaves(pml4, 0..u64::MAX) {
            all.insert(key(asid, &leaf));
        }
    }
    let unowned = m.unowned_leaves().iter().map(|(asid, l)| key(*asid, l)).collect();
    (all, unowned)
}

/// Two VSpaces (slots 17, 18), two frames (19, 20), each VSpace's tables
/// for 0x1000 (21..27), and the first frame mapped there in the first
/// VSpace, so sequences start where mappings exist.
fn prelude() -> Sys {
    let mut s = Sys::with(&BootConfig { root_cnode_bits: ROOT_BITS, untyped_bits: vec![18, 16, 14, 12, 12] });
    let (v1, v2) = (s.vspace(), s.vspace());
    let (f1, f2) = (s.frame(sel4_model::FrameSize::Small), s.frame(sel4_model::FrameSize::Small));
    assert_eq!([v1, v2, f1, f2], [17, 18, 19, 20]);
    for v in [v1, v2] {
        s.tables_for(v, 0x1000, sel4_model::FrameSize::Small);
    }
    s.map(f1, v1, 0x1000).unwrap();
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_invocations_keep_the_model_consistent_and_the_rules(ops in prop::collection::vec(op(), 1..120)) {
        let mut m = prelude().m;
        for op in &ops {
            let before = m.clone();
            let (maps_before, unowned_before) = mappings(&before);
            let result = run(&mut m, op);
            prop_assert_eq!(m.check(), Vec::<String>::new(), "after {:?}", op);
            for h in m.hazards() {
                prop_assert!(!matches!(h, Hazard::CapFault { .. } | Hazard::NoThread), "{:?} after {:?}", h, op);
            }
            if result.is_err() {
                let mut after = m.clone();
                after.take_hazards();
                let mut expected = before.clone();
                expected.take_hazards();
                prop_assert_eq!(after, expected, "{:?} failed with {:?} and changed the state", op, result);
                continue;
            }
            let (maps_after, unowned_after) = mappings(&m);
            let added: Vec<_> = maps_after.difference(&maps_before).collect();
            let removed: Vec<_> = maps_before.difference(&maps_after).collect();
            match op {
                Op::Map { .. } => {
                    prop_assert_eq!(added.len(), 1, "{:?}", op);
                    prop_assert!(removed.is_empty(), "{:?} removed {:?}", op, removed);
                }
                Op::Unmap(_) => {
                    prop_assert!(added.is_empty());
                    prop_assert!(removed.len() <= 1, "{:?} removed {:?}", op, removed);
                }
                Op::Remap { .. } => prop_assert!(added.len() <= 1 && removed.len() <= 1, "{:?}", op),
                Op::StructureUnmap { cap, .. } => {
                    prop_assert!(added.is_empty());
                    let table = before.object_of(*cap);
                    for &&(asid, vaddr, _) in &removed {
                        let pml4 = before.assigned_vspaces().iter().find(|(a, _)| *a == asid).map(|&(_, p)| p);
                        let path = pml4.map(|p| before.tables_on_path(p, vaddr)).unwrap_or_default();
                        prop_assert!(table.is_some_and(|t| path.contains(&t)), "{:?} unmapped {:#x}, not below it", op, vaddr);
                    }
                }
                Op::Delete(_) | Op::Revoke(_) => {
                    prop_assert!(added.is_empty(), "{:?} added {:?}", op, added);
                    for &&(asid, vaddr, _) in &removed {
                        prop_assert!(went(&before, &m, asid, vaddr), "{:?} unmapped {:#x} of ASID {} though nothing on its path went", op, vaddr, asid);
                    }
                    for k in unowned_after.difference(&unowned_before) {
                        prop_assert!(maps_before.contains(k), "{:?} made {:?} unowned", op, k);
                    }
                }
                _ => {
                    prop_assert!(added.is_empty() && removed.is_empty(), "{:?} changed mappings: +{:?} -{:?}", op, added, removed);
                }
            }
            if !matches!(op, Op::Delete(_) | Op::Revoke(_)) {
                prop_assert!(unowned_after.is_subset(&unowned_before), "{:?} left a mapping unowned", op);
            }
        }
    }
}

/// Whether the frame mapped at `vaddr` of `asid`'s VSpace, a table on
/// the path to it, or the VSpace's ASID went between `before` and `after`.
fn went(before: &Model, after: &Model, asid: u16, vaddr: u64) -> bool {
    let Some(&(_, pml4)) = before.assigned_vspaces().iter().find(|(a, _)| *a == asid) else { return true };
    if !after.assigned_vspaces().contains(&(asid, pml4)) {
        return true;
    }
    let frame = before.translate(pml4, vaddr).and_then(|l| l.frame);
    let frame_went = frame.is_some_and(|f| !after.is_alive(f));
    frame_went || before.tables_on_path(pml4, vaddr).iter().any(|&t| !after.is_alive(t))
}

/// What a frame-capability sequence may do: copy a frame capability, map
/// one at a page of the prelude's page table, unmap, delete, revoke.
#[derive(Clone, Copy, Debug)]
enum FrameOp {
    Copy { src: u64, dest: u64 },
    Map { cap: u64, page: u64 },
    Unmap(u64),
    Delete(u64),
    Revoke(u64),
}

/// A frame slot: one of the two originals (19, 20) or room for copies
/// (the prelude's tables are in 21..27).
fn frame_slot() -> impl Strategy<Value = u64> {
    prop_oneof![19u64..21, 27u64..35]
}

fn frame_op() -> impl Strategy<Value = FrameOp> {
    let s = frame_slot;
    prop_oneof![
        3 => (s(), s()).prop_map(|(src, dest)| FrameOp::Copy { src, dest }),
        4 => (s(), 0u64..6).prop_map(|(cap, page)| FrameOp::Map { cap, page }),
        1 => s().prop_map(FrameOp::Unmap),
        2 => s().prop_map(FrameOp::Delete),
        1 => s().prop_map(FrameOp::Revoke),
    ]
}

/// A frame capability in the reference: its frame (0 or 1), whether it is
/// the retyped original, and the page it mapped.
#[derive(Clone, Copy, Debug, PartialEq)]
struct RefCap {
    frame: usize,
    original: bool,
    mapped: Option<u64>,
}

/// The 5.0.0 frame rules written down independently of the model: a
/// capability maps once; Page Unmap clears its own page if that page
/// still maps its frame; Delete unmaps only through the frame's last
/// capability; Revoke of an original deletes the frame's other
/// capabilities (none of them last), of a copy nothing.
#[derive(Clone, Debug, Default)]
struct Reference {
    caps: std::collections::BTreeMap<u64, RefCap>,
    pages: std::collections::BTreeMap<u64, usize>,
}

impl Reference {
    fn apply(&mut self, op: FrameOp) -> bool {
        match op {
            FrameOp::Copy { src, dest } => {
                let Some(&c) = self.caps.get(&src) else { return false };
                if self.caps.contains_key(&dest) {
                    return false;
                }
                self.caps.insert(dest, RefCap { frame: c.frame, original: false, mapped: None });
            }
            FrameOp::Map { cap, page } => {
                let Some(c) = self.caps.get_mut(&cap) else { return false };
                if c.mapped.is_some() || self.pages.contains_key(&page) {
                    return false;
                }
                c.mapped = Some(page);
                self.pages.insert(page, c.frame);
            }
            FrameOp::Unmap(cap) => {
                let Some(c) = self.caps.get_mut(&cap) else { return false };
                if let Some(page) = c.mapped.take() {
                    if self.pages.get(&page) == Some(&c.frame) {
                        self.pages.remove(&page);
                    }
                }
            }
            FrameOp::Delete(cap) => {
                let Some(c) = self.caps.remove(&cap) else { return true };
                let last = !self.caps.values().any(|o| o.frame == c.frame);
                if let (true, Some(page)) = (last, c.mapped) {
                    if self.pages.get(&page) == Some(&c.frame) {
                        self.pages.remove(&page);
                    }
                }
            }
            FrameOp::Revoke(cap) => {
                let Some(&c) = self.caps.get(&cap) else { return true };
                if c.original {
                    self.caps.retain(|&slot, o| slot == cap || o.frame != c.frame);
                }
            }
        }
        true
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The model's frame mappings follow the reference's rules exactly.
    #[test]
    fn frame_capabilities_follow_the_5_0_0_unmap_rule(ops in prop::collection::vec(frame_op(), 1..60)) {
        let mut s = prelude();
        let v = s.object(17);
        s.m.page_unmap(19).unwrap();
        let paddrs = [s.m.page_get_address(19).unwrap(), s.m.page_get_address(20).unwrap()];
        let mut reference = Reference::default();
        for (i, &slot) in [19u64, 20].iter().enumerate() {
            reference.caps.insert(slot, RefCap { frame: i, original: true, mapped: None });
        }
        for op in ops {
            let expected = reference.apply(op);
            let result = match op {
                FrameOp::Copy { src, dest } => s.m.cnode_copy(ROOT, dest, ROOT, src, CapRights::ALL),
                FrameOp::Map { cap, page } => s.map(cap, 17, 0x1000 * (page + 1)),
                FrameOp::Unmap(cap) => s.m.page_unmap(cap),
                FrameOp::Delete(cap) => s.m.cnode_delete(ROOT, cap),
                FrameOp::Revoke(cap) => s.m.cnode_revoke(ROOT, cap),
            };
            prop_assert_eq!(result.is_ok(), expected, "{:?}: {:?}", op, result);
            for page in 0..6 {
                let paddr = s.m.translate(v, 0x1000 * (page + 1)).map(|l| l.paddr);
                let want = reference.pages.get(&page).map(|&f| paddrs[f]);
                prop_assert_eq!(paddr, want, "page {} after {:?}", page, op);
            }
        }
        prop_assert_eq!(s.m.check(), Vec::<String>::new());
    }
}
