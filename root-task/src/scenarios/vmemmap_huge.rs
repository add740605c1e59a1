//! Scenario `vmemmap-huge`: the seed's boundary on the 2 MiB path. A
//! populates, with 2 MiB descriptor frames (`huge`), the 65,536 pfns
//! centred on pfn 2^33, whose descriptors cross the boundary between two
//! top-level entries of the vmemmap area: two 2 MiB frames, the second
//! the first page of the new top-level entry. A writes the descriptors at
//! both ends and on both sides of the boundary right after the reply;
//! B and C read them (so the new top-level entry reached their spaces);
//! each is a 2 MiB mapping in the canonical table. Once A depopulates the
//! range, B's read of the same descriptor is a real fault.
//! `vmemmap-crosses-top-level`, next, populates the same boundary again
//! with compound pages.

use super::{done, expect_fault, read, run_done, translate, World, MIB};
use crate::fail;
use crate::verdict::Verdict;
use memserver_protocol::{FaultKind, Page, Request, DESCRIPTOR_SIZE, TOP_ENTRY_SPAN};
use root_task::agent_protocol::Command;

pub(super) fn run(w: &mut World) -> Verdict {
    let [a, b, c] = &w.agents;
    let per_frame = 2 * MIB / DESCRIPTOR_SIZE;
    let boundary = TOP_ENTRY_SPAN / DESCRIPTOR_SIZE;
    let (start, pages) = (boundary - per_frame, 2 * per_frame);
    done(a, Request::VmemmapPopulate { start_pfn: start, nr_pages: pages, compound_order: 0, huge: true })?;
    let probes = [start, boundary - 1, boundary, start + pages - 1];
    for (i, &pfn) in probes.iter().enumerate() {
        run_done(a, Command::Write { addr: w.region.descriptor_address(pfn), value: 0x4a6e_0000 + i as u64 })?;
    }
    for (i, &pfn) in probes.iter().enumerate() {
        let addr = w.region.descriptor_address(pfn);
        for reader in [b, c] {
            let seen = read(reader, addr)?;
            if seen != 0x4a6e_0000 + i as u64 {
                fail!(
                    "{} reads {seen:#x} at the descriptor of pfn {pfn:#x}, A wrote {:#x}",
                    reader.name,
                    0x4a6e_0000 + i
                );
            }
        }
        if translate(b, addr)?.page != Page::Large {
            fail!("the descriptor of pfn {pfn:#x} is not in a 2 MiB frame");
        }
    }
    let first = w.region.descriptor_address(boundary - per_frame);
    let second = w.region.descriptor_address(boundary);
    if first / TOP_ENTRY_SPAN == second / TOP_ENTRY_SPAN || !second.is_multiple_of(TOP_ENTRY_SPAN) {
        fail!("the frames at {first:#x} and {second:#x} do not meet at a top-level boundary");
    }
    done(a, Request::VmemmapDepopulate { start_pfn: start, nr_pages: pages })?;
    expect_fault(b, Command::Read { addr: second }, second, FaultKind::UnmappedRead)
}
