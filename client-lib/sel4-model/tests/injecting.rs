//! `Injecting` over the model: calls are counted per kind, the armed one
//! fails with its kind's error before reaching the kernel, and the rest go
//! through.

mod common;

use common::*;
use sel4_layer::abi::{init_cap, object_type};
use sel4_layer::injecting::{Call, Injecting};
use sel4_layer::kernel::Kernel;
use sel4_layer::{CapRights, PagingLevel, Sel4Error, Slot};
use sel4_model::{Cap, FrameSize, ObjectType};

#[test]
fn the_nth_call_of_the_armed_kind_fails_without_reaching_the_kernel() {
    let mut s = Sys::new();
    let untyped = s.info.untypeds[0].cptr;
    let slots: Vec<u64> = (0..4).map(|_| s.rt.slot().unwrap()).collect();
    let mut k = Injecting::new(s.m.clone());
    k.arm(Call::Retype, 2);
    let retype = |k: &mut Injecting<_>, slot| {
        k.untyped_retype(untyped, object_type::X86_4K, 0, Slot::in_root(init_cap::CNODE, slot), 1)
    };
    assert_eq!(retype(&mut k, slots[0]), Ok(()));
    let before = k.inner().clone();
    assert_eq!(retype(&mut k, slots[1]), Err(Sel4Error::NotEnoughMemory));
    assert_eq!(*k.inner(), before, "the failed call changed nothing");
    assert_eq!(retype(&mut k, slots[1]), Ok(()), "one failure, then disarmed");
    assert_eq!(k.calls(Call::Retype), 3);
    assert_eq!(k.inner().accounting().objects[&ObjectType::Frame(FrameSize::Small)], 2);
    // Arming 0 disarms.
    k.arm(Call::Retype, 1);
    k.arm(Call::Retype, 0);
    assert_eq!(retype(&mut k, slots[2]), Ok(()));
    assert_eq!(k.calls(Call::Copy), 0);
    // Calls on the wrapped kernel itself are not counted.
    k.inner_mut().page_get_address(slots[0]).unwrap();
    assert_eq!(k.calls(Call::PageGetAddress), 0);
    s.m = k.inner().clone();
    s.assert_sound();
}

#[test]
fn each_kind_fails_with_an_error_sel4_gives_for_it() {
    let mut s = Sys::new();
    let vspace = s.vspace();
    s.tables_for(vspace, 0x1000_0000, FrameSize::Small);
    let frame = s.frame(FrameSize::Small);
    let pt = s.retype(object_type::X86_PAGE_TABLE, 0);
    let dest = s.rt.slot().unwrap();
    let mut k = Injecting::new(s.m.clone());
    k.arm(Call::Copy, 1);
    k.arm(Call::PageMap, 1);
    k.arm(Call::StructureMap, 1);
    assert_eq!(k.cnode_copy(ROOT, dest, ROOT, frame, CapRights::ALL), Err(Sel4Error::FailedLookup));
    assert_eq!(k.page_map(frame, vspace, 0x1000_0000, CapRights::ALL, ATTRS), Err(Sel4Error::FailedLookup));
    let map_pt = k.paging_structure_map(pt, PagingLevel::PageTable, vspace, 0x1020_0000, ATTRS);
    assert_eq!(map_pt, Err(Sel4Error::FailedLookup));
    assert_eq!(k.inner().cap_at(dest), Some(Cap::Null));
    assert_eq!(k.inner().translate(k.inner().object_of(vspace).unwrap(), 0x1000_0000), None);
    // Disarmed after one failure each: the same calls succeed.
    k.cnode_copy(ROOT, dest, ROOT, frame, CapRights::ALL).unwrap();
    k.page_map(frame, vspace, 0x1000_0000, CapRights::ALL, ATTRS).unwrap();
    k.paging_structure_map(pt, PagingLevel::PageTable, vspace, 0x1020_0000, ATTRS).unwrap();
    for kind in [Call::Copy, Call::PageMap, Call::StructureMap] {
        assert_eq!(k.calls(kind), 2, "{kind:?}");
    }
    for kind in Call::ALL {
        assert_ne!(kind.injected_error(), Sel4Error::Unknown);
    }
    s.m = k.inner().clone();
    s.assert_sound();
}

#[test]
fn kinds_armed_together_share_one_countdown_and_fail_once() {
    let mut s = Sys::new();
    let vspace = s.vspace();
    s.tables_for(vspace, 0x1000_0000, FrameSize::Small);
    let frames: Vec<_> = (0..2).map(|_| s.frame(FrameSize::Small)).collect();
    let pt = s.retype(object_type::X86_PAGE_TABLE, 0);
    let mut k = Injecting::new(s.m.clone());
    k.arm_any(&[Call::PageMap, Call::StructureMap], 2);
    k.arm(Call::Copy, 1);
    assert!(k.armed());
    k.page_map(frames[0], vspace, 0x1000_0000, CapRights::ALL, ATTRS).unwrap();
    // The second map of either kind is the armed one.
    let map_pt = k.paging_structure_map(pt, PagingLevel::PageTable, vspace, 0x1020_0000, ATTRS);
    assert_eq!(map_pt, Err(Sel4Error::FailedLookup));
    k.page_map(frames[1], vspace, 0x1000_1000, CapRights::ALL, ATTRS).unwrap();
    k.paging_structure_map(pt, PagingLevel::PageTable, vspace, 0x1020_0000, ATTRS).unwrap();
    assert!(k.armed(), "Copy still is");
    // Arming Copy among others takes it out of its own countdown.
    k.arm_any(&[Call::Copy, Call::Retype], 3);
    let dest = s.rt.slot().unwrap();
    k.cnode_copy(ROOT, dest, ROOT, frames[0], CapRights::ALL).unwrap();
    k.arm_any(&[Call::Retype, Call::Copy], 0);
    assert!(!k.armed());
    assert_eq!(k.failures(), 1);
    s.m = k.inner().clone();
    s.assert_sound();
}
