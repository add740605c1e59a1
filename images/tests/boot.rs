//! End to end: build the kernel and the seL4 programs, boot them in QEMU
//! on 4 CPUs, directly (from the demo's description, `systems/demo.toml`)
//! and from the bootable ISO, and on 2 CPUs, and require the guest's
//! own success status, the hello child's IPC exchange and an `ok` line for
//! every scenario.

use images::kernel::KERNEL_CPUS;
use images::qemu::{BootOptions, BootOutcome};
use std::sync::Mutex;
use std::time::Duration;

/// One boot at a time: two guests of 4 vCPUs on a 2-core host would slow
/// each other past their timeouts.
static ONE_BOOT: Mutex<()> = Mutex::new(());

fn options() -> BootOptions {
    BootOptions::demo(KERNEL_CPUS, Duration::from_secs(300), false)
}

#[test]
fn demo_system_boots_from_its_description_and_every_scenario_succeeds() {
    let _one = ONE_BOOT.lock().unwrap_or_else(|e| e.into_inner());
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../systems/demo.toml");
    let outcome = images::described::build_and_boot(&demo, options().timeout, false).expect("build and boot");
    require_every_scenario(&outcome, KERNEL_CPUS);
}

#[test]
fn the_written_iso_boots_to_the_same_verdict() {
    let _one = ONE_BOOT.lock().unwrap_or_else(|e| e.into_inner());
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("system-out");
    let written = images::system::write(&out).expect("build and write the bootable files");
    for file in [&written.kernel, &written.root_task, &written.iso] {
        assert!(file.is_file(), "{} was not written", file.display());
    }
    let outcome = images::system::boot_iso(&written.iso, &options()).expect("boot the ISO");
    assert!(outcome.log.contains("Got VBE info in multiboot"), "not booted by GRUB:\n{}", outcome.log);
    require_every_scenario(&outcome, KERNEL_CPUS);
}

/// On fewer CPUs than the kernel is built for, the server keeps percpu
/// units for those the kernel booted, and every scenario still passes.
#[test]
fn the_demo_on_two_cpus_serves_two() {
    let _one = ONE_BOOT.lock().unwrap_or_else(|e| e.into_inner());
    let outcome = images::system::build_and_boot(&BootOptions { smp: 2, ..options() }).expect("build and boot");
    require_every_scenario(&outcome, 2);
}

/// The guest's success, the bootinfo summary and the server's start line
/// for `cpus` CPUs, the hello child's exchange and an `ok` line for every
/// scenario.
fn require_every_scenario(outcome: &BootOutcome, cpus: u32) {
    let log = &outcome.log;
    assert!(outcome.success(), "{}\n--- serial log ---\n{log}", outcome.verdict());
    assert!(log.contains(&format!("{cpus} CPUs")), "bootinfo summary missing:\n{log}");
    assert!(log.contains(&format!("memserver: serving {cpus} CPUs")), "the server serves other CPUs:\n{log}");
    let child = log.lines().find(|l| l.starts_with("hello-child: challenge")).expect("no line from the child");
    let (answer, expected) = child.split_once(", answer ").and_then(|(_, r)| r.split_once(", expected ")).unwrap();
    assert_eq!(answer, expected, "child saw a wrong answer: {child}");
    assert!(log.contains("root-task: hello-child exchange ok"), "root task did not confirm:\n{log}");
    for name in SCENARIOS {
        let line = log.lines().find(|l| l.starts_with(&format!("scenario {name}: "))).unwrap_or_else(|| {
            panic!("no line for scenario {name}:\n{log}");
        });
        assert_eq!(line, format!("scenario {name}: ok"), "\n{log}");
    }
    let failed: Vec<&str> = log.lines().filter(|l| l.starts_with("scenario ") && !l.ends_with(": ok")).collect();
    assert!(failed.is_empty(), "failed scenarios: {failed:?}");
}

/// Every scenario the root task must report, by name.
const SCENARIOS: [&str; 18] = [
    "vmalloc-shared",
    "vmemmap-huge",
    "vmemmap-crosses-top-level",
    "late-register",
    "area-options",
    "batch",
    "vmap",
    "percpu-smp",
    "unregister",
    "bad-input",
    "forged-faults",
    "exhaustion",
    "reuse-across-kinds",
    "fault-injection",
    "client-death",
    "stress",
    "greedy",
    "missed-syncs",
];
