//! The scale system (`systems/scale.toml`) boots in QEMU and its `scale`
//! scenario succeeds, reaching the counts of `root_task::scale_targets`;
//! its figures and the boot's wall time are printed (`--nocapture`).

use root_task::scale_targets::{AREAS, PERCPU_ALLOCS, SPACES, VMEMMAP_BASE_GIB, VMEMMAP_COMPOUND_GIB};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long the guest may take: the scenario is meant to stay well under
/// ten minutes on a 2-core host.
const TIMEOUT: Duration = Duration::from_secs(1200);

/// The fields of the scenario's `scale key=value ...` line.
fn figures(log: &str) -> BTreeMap<&str, u64> {
    let line = log.lines().find_map(|l| l.strip_prefix("scale ")).unwrap_or_else(|| panic!("no figures:\n{log}"));
    line.split_whitespace()
        .map(|field| {
            let (key, value) = field.split_once('=').unwrap_or_else(|| panic!("{field} in {line}"));
            (key, value.parse().unwrap_or_else(|e| panic!("{field} in {line}: {e}")))
        })
        .collect()
}

#[test]
fn the_scale_system_reaches_its_targets() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../systems/scale.toml");
    let prepared = images::described::prepare(&file).expect("build the scale system");
    let started = Instant::now();
    let outcome = images::qemu::boot(
        images::qemu::Medium::Direct { kernel: &prepared.kernel, root_task: &prepared.root_task },
        &prepared.options(TIMEOUT, false),
    )
    .expect("boot");
    let log = &outcome.log;
    assert!(outcome.success(), "{}\n--- serial log ---\n{log}", outcome.verdict());
    assert!(log.lines().any(|l| l == "scenario scale: ok"), "{log}");
    let figures = figures(log);
    let reached = (figures["spaces"], figures["areas"], figures["percpu"]);
    assert_eq!(reached, (SPACES.into(), AREAS.into(), PERCPU_ALLOCS.into()), "{figures:?}");
    let described = (figures["vmemmap-base-gib"], figures["vmemmap-compound-gib"]);
    assert_eq!(described, (VMEMMAP_BASE_GIB, VMEMMAP_COMPOUND_GIB), "{figures:?}");
    println!("scale figures: {figures:?}; the boot took {:.1} s", started.elapsed().as_secs_f64());
}
