//! The launcher's outcomes, as `images run --system` shows them: a
//! success, a failure code, a client's fault in the region that the memory
//! server cannot repair (reported, the program reclaimed), and a fault of
//! a program that is not a client (from the kernel); the run fails (QEMU
//! status 35, exit status non-zero) because not every program succeeded.
//! The system is `tests/fixtures/verdicts/`, a crate of its own.

mod common;

#[test]
fn every_way_a_program_ends_is_reported_and_one_failure_fails_the_run() {
    let out = common::boot_fixture("verdicts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a system with failed programs succeeded:\n{stdout}");
    assert!(stderr.contains("Error: guest reported failure (QEMU status 35)"), "{stdout}\n{stderr}");
    let line = |prefix: &str| stdout.lines().find(|l| l.starts_with(prefix)).map(str::to_string);
    assert_eq!(line("launcher: succeeds: ").as_deref(), Some("launcher: succeeds: ok"), "{stdout}");
    assert_eq!(line("launcher: fails: ").as_deref(), Some("launcher: fails: FAILED (failure code 0x7)"), "{stdout}");
    let region = line("launcher: region-fault: ").unwrap_or_else(|| panic!("no region-fault line:\n{stdout}"));
    assert!(
        region.starts_with("launcher: region-fault: FAILED (UnmappedRead at 0x700040000000, instruction "),
        "{region}"
    );
    let null = line("launcher: null-read: ").unwrap_or_else(|| panic!("no null-read line:\n{stdout}"));
    assert!(null.starts_with("launcher: null-read: FAILED (VM fault at 0x0, instruction "), "{null}");
    assert!(stdout.lines().any(|l| l == "launcher: 1 of 4 programs succeeded"), "{stdout}");
}
