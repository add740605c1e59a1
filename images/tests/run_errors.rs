//! `images run --system FILE` and `build --system FILE --out DIR` on a
//! description a user gets wrong: each exits non-zero before anything
//! boots, with the same error `images check` gives (file, line, column
//! and field): a bad description, a missing ELF file, a quota larger than
//! the server's memory, a system that does not fit the guest's RAM, server
//! memory the launcher cannot give.

mod common;

use common::{cases, scratch, write};
use std::process::Command;

/// The cases a user meets first, by name.
const CASES: [&str; 6] = [
    "syntax",
    "missing-elf",
    "quota-above-server-memory",
    "does-not-fit",
    "server-memory-in-too-many-pieces",
    "missing-manifest",
];

#[test]
fn run_and_build_of_a_bad_description_fail_with_its_place_and_field() {
    let out_dir = scratch("not-written");
    for case in cases().iter().filter(|c| CASES.contains(&c.name)) {
        let (file, at) = write(case);
        for args in [vec!["run", "--timeout", "1"], vec!["build", "--out", out_dir.to_str().unwrap()]] {
            let out =
                Command::new(env!("CARGO_BIN_EXE_images")).args(&args).arg("--system").arg(&file).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "case {} ({}): accepted", case.name, args[0]);
            let line = format!("Error: {at}: ");
            let error = stderr.lines().find(|l| l.starts_with(&line));
            let error = error
                .unwrap_or_else(|| panic!("case {} ({}): no line starting {line:?} in\n{stderr}", case.name, args[0]));
            assert!(error.contains(case.field), "case {}: {error}\nexpected {}", case.name, case.field);
            assert!(!stderr.contains("booting in QEMU"), "case {}: booted", case.name);
        }
    }
    assert!(!out_dir.join("system.iso").exists(), "an ISO was written for a bad description");
}
