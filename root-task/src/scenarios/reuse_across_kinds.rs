//! Scenario `reuse-across-kinds`: memory freed by one kind of object serves
//! every kind. seL4 gives untyped memory back only when an untyped is
//! reset, so the server groups its objects by the 2 MiB granule of untyped
//! memory they came from and resets a granule none of whose objects is in
//! use when a kind has nothing else left. A client whose quota exceeds the
//! server's memory fills it with areas of 2 MiB pages until the server runs
//! out, frees them, and must then get as many areas with 4 KiB pages (and
//! their page tables in every space); then the reverse: it fills the memory
//! with 4 KiB pages, frees them, and must get the 2 MiB-page areas again.
//! Memory the server takes for its own records meanwhile (its heap grows
//! from the same untyped memory) is memory neither kind gets: each count
//! may fall short by as many areas' worth. At the end the server's
//! resources are what they were before.

use super::{done, unchanged, Resources, World, MIB};
use crate::fail;
use crate::verdict::{Context, Reason, Verdict};
use memserver_protocol::{ErrorCode, Quota, Reply, Request, Stats};
use root_task::agent::Agent;
use sel4_layer::println;

/// Bytes of each area: two 2 MiB pages, or 1,024 pages of 4 KiB.
const AREA: u64 = 4 * MIB;
/// A granule of the server's untyped memory, the unit it resets.
const GRANULE: u64 = 2 * MIB;
/// More areas than the server's memory holds.
const MAX_AREAS: usize = 64;
/// The client's quota: more than all the server's memory.
const QUOTA: Quota = Quota::bytes_only(MAX_AREAS as u64 * AREA);

type Areas = heapless::Vec<u64, MAX_AREAS>;

/// Memory the server does not use: never retyped, or held by spare objects.
fn unused(s: &Stats) -> u64 {
    s.untyped_free + s.spare_bytes
}

/// Areas' worth of memory the server took for itself since `since`.
fn taken(w: &World, since: &Stats) -> Result<usize, Reason> {
    Ok(w.stats()?.own_bytes.saturating_sub(since.own_bytes).div_ceil(AREA) as usize)
}

fn pages(large: bool) -> &'static str {
    if large {
        "2 MiB"
    } else {
        "4 KiB"
    }
}

/// `x`'s vmalloc of one area.
fn area(x: &Agent, large: bool) -> Result<Result<u64, ErrorCode>, Reason> {
    match x.request(Request::Vmalloc { size: AREA, large_pages: large }).context(x.name)? {
        Ok(Reply::Address(addr)) => Ok(Ok(addr)),
        Err(code) => Ok(Err(code)),
        other => fail!("{}: vmalloc answered {other:?}", x.name),
    }
}

/// Areas of `large` pages until the server's memory runs out.
fn fill(w: &World, x: &Agent, large: bool) -> Result<Areas, Reason> {
    let mut areas = Areas::new();
    loop {
        match area(x, large)? {
            Ok(addr) if areas.push(addr).is_ok() => {}
            Ok(_) => fail!("{MAX_AREAS} areas of {} pages fit: the server has more memory than expected", pages(large)),
            Err(ErrorCode::OutOfMemory) => return Ok(areas),
            Err(code) => {
                fail!(
                    "area #{} of {} pages answered {code:?} ({} MiB unused)",
                    areas.len() + 1,
                    pages(large),
                    unused(&w.stats()?) >> 20
                )
            }
        }
    }
}

/// `n` areas of `large` pages, which must all succeed but for the areas'
/// worth the server took for itself since `since`; `after` names what used
/// the memory before.
fn allocate(w: &World, x: &Agent, n: usize, large: bool, after: &str, since: &Stats) -> Result<Areas, Reason> {
    let mut areas = Areas::new();
    for i in 0..n {
        match area(x, large)? {
            Ok(addr) if areas.push(addr).is_ok() => {}
            Err(ErrorCode::OutOfMemory) if i + taken(w, since)? >= n => return Ok(areas),
            result => {
                let s = w.stats()?;
                fail!(
                    "after {after} were freed, area #{} of {n} with {} pages answered {result:?} with {} MiB unused ({} spare objects holding {} MiB)",
                    i + 1,
                    pages(large),
                    unused(&s) >> 20,
                    s.spare_objects,
                    s.spare_bytes >> 20
                )
            }
        }
    }
    Ok(areas)
}

/// Frees `areas` and purges, so their frames and page tables are spare.
fn free(w: &World, x: &Agent, areas: &Areas) -> Verdict {
    for &addr in areas {
        done(x, Request::Vfree { addr })?;
    }
    w.server.admin.purge().context("purge")
}

pub fn run(w: &mut World) -> Verdict {
    w.server.admin.purge().context("purge")?;
    let baseline = Resources::of(&w.stats()?);
    let x = w.crowd.first_mut().ok_or_else(|| crate::verdict::reason(format_args!("no crowd agent")))?;
    x.register_with_quota(&w.server.admin, QUOTA).context(x.name)?;
    x.start().context(x.name)?;
    let x = w.crowd.first().ok_or_else(|| crate::verdict::reason(format_args!("no crowd agent")))?;
    steps(w, x)?;
    let x = w.crowd.first_mut().ok_or_else(|| crate::verdict::reason(format_args!("no crowd agent")))?;
    x.unregister(&w.server.admin).context("unregister")?;
    unchanged(w, &baseline, format_args!("after the areas were freed and the client unregistered"))
}

fn steps(w: &World, x: &Agent) -> Verdict {
    let large = fill(w, x, true)?;
    let filled = w.stats()?;
    let left = unused(&filled);
    let n = large.len();
    free(w, x, &large)?;
    let small = allocate(w, x, n, false, "areas of 2 MiB pages", &filled)?;
    // The fill used the memory: what it left is less than an area and
    // what the partly used granules hold (less than one each: the one of
    // the server's own objects, the one of the area's paging structures,
    // and the memory outside whole granules).
    if left >= AREA + 3 * GRANULE {
        fail!("{n} areas of 2 MiB pages left {} MiB unused", left >> 20);
    }
    free(w, x, &small)?;
    let small = fill(w, x, false)?;
    if small.len() + taken(w, &filled)? < n {
        fail!("{} areas of 4 KiB pages fit where {n} of 2 MiB pages did", small.len());
    }
    free(w, x, &small)?;
    let again = allocate(w, x, n, true, "areas of 4 KiB pages", &filled)?;
    free(w, x, &again)?;
    println!(
        "reuse-across-kinds: {n} areas of 4 MiB with 2 MiB pages ({} MiB left unused), then as many with 4 KiB pages; {} with 4 KiB pages, then {} with 2 MiB pages ({} KiB taken for the server's records)",
        left >> 20,
        small.len(),
        again.len(),
        (w.stats()?.own_bytes - filled.own_bytes) >> 10
    );
    Ok(())
}
