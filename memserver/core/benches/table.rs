//! Host benchmark of the canonical table against the `x86_64` crate's
//! page-table mapper (`OffsetPageTable` over frames in a host buffer), in one
//! run and on one workload: map 1 M 4 KiB pages at the start of the vmalloc
//! area in address order, then translate each of them in the same order.
//! Run with `cargo bench -p memserver --bench table`; it ends with one line,
//! `table bench: ours map+translate 1M = X ms, x86_64 crate = Y ms, ratio =
//! Z`: the best run of each side (other load on the machine only ever adds
//! time), then the medians; ratio = ours / x86_64, at most 1 meets the target.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use memserver_core::layout::{Area, PAGE_SIZE};
use memserver_core::populate::HostTable;
use memserver_core::RegionAddr;
use x86_64::structures::paging::mapper::Translate;
use x86_64::structures::paging::{
    FrameAllocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags, PhysFrame, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

/// Pages mapped and translated per run.
const PAGES: u64 = 1 << 20;
/// Structures the workload needs on either side: a PDPT, 4 PDs and 2048 PTs
/// below the top level (ours holds its root in the same pool).
const TABLES: usize = 1 + 1 + 4 + 2048;
/// Physical address of the first mapped frame (page `i` maps frame
/// `FRAME_BASE + i * 4 KiB`); above the frames that hold page tables.
const FRAME_BASE: u64 = 1 << 32;

/// Address of page `i` of the workload.
fn page_addr(i: u64) -> u64 {
    Area::Vmalloc.start() + i * PAGE_SIZE
}

/// What translating every page must add up to.
fn expected_sum() -> u64 {
    (0..PAGES).map(|i| FRAME_BASE + i * PAGE_SIZE).sum()
}

/// How long one run spent mapping and translating.
#[derive(Clone, Copy)]
struct Run {
    map: Duration,
    translate: Duration,
}

impl Run {
    fn total(self) -> Duration {
        self.map + self.translate
    }
}

/// Time `map` then `translate` over a state `setup` builds (not timed); the
/// state is dropped after the clock stops. Checks the translation sum.
fn timed<T>(setup: impl FnOnce() -> T, map: impl FnOnce(&mut T), translate: impl FnOnce(&T) -> u64) -> Run {
    let mut state = setup();
    let start = Instant::now();
    map(&mut state);
    let mapped = Instant::now();
    let sum = black_box(translate(&state));
    let run = Run { map: mapped - start, translate: mapped.elapsed() };
    assert_eq!(sum, expected_sum(), "every page translates to its frame");
    drop(state);
    run
}

/// Our side: a canonical table sized for the workload.
fn ours() -> Run {
    timed(
        || HostTable::new(TABLES, PAGES as usize),
        |t| {
            for i in 0..PAGES {
                let addr = RegionAddr::new(page_addr(i)).expect("in the vmalloc area");
                t.map_small(addr, FRAME_BASE + i * PAGE_SIZE).expect("room for every page");
            }
        },
        |t| {
            (0..PAGES)
                .filter_map(|i| RegionAddr::new(page_addr(i)))
                .filter_map(|a| t.table().translate(a))
                .map(|l| l.frame)
                .sum()
        },
    )
}

/// Page-table frames for the `x86_64` crate: frame `i` of the buffer has
/// physical address `i * 4 KiB`; frame 0 is the top level.
struct Frames {
    buf: Vec<PageTable>,
    next: usize,
}

// SAFETY: each frame is handed out once per run, is 4 KiB aligned (a
// `PageTable`) and lies in the buffer the mapper reaches through its offset.
unsafe impl FrameAllocator<Size4KiB> for Frames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let i = self.next;
        if i >= self.buf.len() {
            return None;
        }
        self.next += 1;
        Some(PhysFrame::containing_address(PhysAddr::new(i as u64 * PAGE_SIZE)))
    }
}

/// The `x86_64` crate's side: `OffsetPageTable` over `frames`, whose top
/// level is cleared first (the crate zeroes every table it creates).
fn theirs(frames: &mut Frames) -> Run {
    timed(
        || {
            frames.next = 1;
            let base = frames.buf.as_mut_ptr();
            // SAFETY: `base` points at the buffer's first frame, which nothing
            // else refers to while this mapper lives; the mapper reaches the
            // other frames at `base + physical address`, all inside the buffer.
            let mapper = unsafe {
                (*base).zero();
                OffsetPageTable::new(&mut *base, VirtAddr::from_ptr(base))
            };
            (mapper, &mut *frames)
        },
        |(mapper, frames)| {
            let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
            for i in 0..PAGES {
                let page = Page::<Size4KiB>::containing_address(VirtAddr::new(page_addr(i)));
                let frame = PhysFrame::containing_address(PhysAddr::new(FRAME_BASE + i * PAGE_SIZE));
                // SAFETY: the page and frame are never accessed; only the
                // tables in the buffer are written.
                unsafe { mapper.map_to(page, frame, flags, *frames) }.expect("room for every page").ignore();
            }
        },
        |(mapper, _)| {
            (0..PAGES).filter_map(|i| mapper.translate_addr(VirtAddr::new(page_addr(i)))).map(|p| p.as_u64()).sum()
        },
    )
}

/// The `q` quantile (0: best, 0.5: median) of one phase of `runs`, in ms.
fn quantile_ms(runs: &[Run], phase: fn(Run) -> Duration, q: f64) -> f64 {
    let mut d: Vec<Duration> = runs.iter().copied().map(phase).collect();
    d.sort();
    d.get((d.len() as f64 * q) as usize).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    let mut group = c.benchmark_group("map+translate 1M pages");
    group.sampling_mode(SamplingMode::Flat);
    let mut frames = Frames { buf: vec![PageTable::new(); TABLES], next: 1 };
    let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    let [our_runs, their_runs] = &mut runs;
    group.bench_function("memserver Table", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| ours()).inspect(|r| our_runs.push(*r)).map(Run::total).sum())
    });
    group.bench_function("x86_64 OffsetPageTable", |b| {
        b.iter_custom(|iters| {
            (0..iters).map(|_| theirs(&mut frames)).inspect(|r| their_runs.push(*r)).map(Run::total).sum()
        })
    });
    group.finish();
    c.final_summary();
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test` runs each side once, unoptimised: no figures.
        return;
    }
    for (name, r) in [("ours", &*our_runs), ("x86_64 crate", &*their_runs)] {
        let [map, translate] = [|r: Run| r.map, |r: Run| r.translate].map(|p| [0.0, 0.5].map(|q| quantile_ms(r, p, q)));
        println!(
            "table bench phases: {name}: map {:.1} ms (median {:.1}), translate {:.1} ms (median {:.1}), {} runs",
            map[0],
            map[1],
            translate[0],
            translate[1],
            r.len()
        );
    }
    let [ours_ms, theirs_ms] = [&*our_runs, &*their_runs].map(|r| [0.0, 0.5].map(|q| quantile_ms(r, Run::total, q)));
    println!(
        "table bench: ours map+translate 1M = {:.1} ms, x86_64 crate = {:.1} ms, ratio = {:.2} \
         (medians {:.1} ms, {:.1} ms, ratio {:.2})",
        ours_ms[0],
        theirs_ms[0],
        ours_ms[0] / theirs_ms[0],
        ours_ms[1],
        theirs_ms[1],
        ours_ms[1] / theirs_ms[1]
    );
}
