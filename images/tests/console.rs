//! The launcher prints for its programs: four programs, two on each of two
//! CPUs, print 40 lines of 600 bytes each at once, and every line arrives
//! whole, once. The system is `tests/fixtures/console/`, a crate of its
//! own.

mod common;

/// The programs and the lines each prints (as the fixture's main.rs).
const PROGRAMS: u64 = 4;
const LINES: u64 = 40;
const LETTERS: u64 = 580;

/// Program `k`'s line `n`.
fn line(k: u64, n: u64) -> String {
    let letters: String = (0..LETTERS).map(|i| char::from(b'a' + ((7 * k + n + i) % 26) as u8)).collect();
    format!("console-{k} line {n}: {letters}")
}

#[test]
fn lines_printed_at_once_by_programs_on_two_cpus_arrive_whole() {
    let out = common::boot_fixture("console");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for k in 0..PROGRAMS {
        for n in 0..LINES {
            let expected = line(k, n);
            let count = stdout.lines().filter(|l| *l == expected).count();
            assert_eq!(count, 1, "program {k}'s line {n} arrived {count} times whole in\n{stdout}");
        }
    }
    assert!(stdout.lines().any(|l| l == "launcher: 4 of 4 programs succeeded"), "{stdout}");
}
