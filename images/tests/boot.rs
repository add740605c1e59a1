//! End to end: build the kernel and the seL4 programs, boot them in QEMU
//! on 4 CPUs, and require the guest's own success status, the hello
//! child's IPC exchange and an `ok` line for every scenario.

use images::kernel::MAX_CPUS;
use images::qemu::BootOptions;
use std::time::Duration;

#[test]
fn demo_system_boots_and_every_scenario_succeeds() {
    let options = BootOptions::demo(MAX_CPUS, Duration::from_secs(300), false);
    let outcome = images::system::build_and_boot(&options).expect("build and boot");
    let log = &outcome.log;
    assert!(outcome.success(), "{}\n--- serial log ---\n{log}", outcome.verdict());
    assert!(log.contains(&format!("{MAX_CPUS} CPUs")), "bootinfo summary missing:\n{log}");
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
const SCENARIOS: [&str; 12] = [
    "vmalloc-shared",
    "vmemmap-crosses-top-level",
    "late-register",
    "percpu-smp",
    "unregister",
    "bad-input",
    "exhaustion",
    "reuse-across-kinds",
    "fault-injection",
    "client-death",
    "stress",
    "missed-syncs",
];
