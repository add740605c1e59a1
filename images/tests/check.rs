//! `images check --system FILE`, as a user runs it: the summary of a good
//! description, and for every bad one a non-zero exit with the error that
//! names the file, line, column and field.

mod common;

use common::{cases, scratch, write};
use std::path::Path;
use std::process::{Command, Output};

fn images_check(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_images")).args(["check", "--system"]).arg(file).output().unwrap()
}

#[test]
fn a_good_description_prints_its_system() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systems/tiny.toml");
    let out = images_check(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for line in [
        "root task \"launcher\" (priority 255), 2 CPU(s), 128 MiB of guest RAM",
        "memory server: 16 MiB of memory, priority 200, CPU 0,",
        "endpoints: pipe",
        "programs: 2",
        "  writer: priority 150, CPU 0, stack 64 KiB, heap 64 KiB, client (quota 4 MiB, frames 1024, structures 64, areas 8), endpoints [pipe],",
        "  reader: priority 150, CPU 1, stack 64 KiB, no heap, client (quota 1 MiB, frames 16, structures 64, areas 2), endpoints [pipe],",
        "memory: needs ",
    ] {
        assert!(stdout.contains(line), "no {line:?} in\n{stdout}");
    }
}

#[test]
fn every_bad_description_fails_with_its_place_and_field() {
    let cases = cases();
    // The runs mostly wait for cargo metadata: run them side by side.
    let runs: Vec<(Output, String)> = std::thread::scope(|s| {
        let runs: Vec<_> = cases
            .iter()
            .map(|case| {
                let (file, at) = write(case);
                s.spawn(move || (images_check(&file), at))
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (case, (out, at)) in cases.iter().zip(runs) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "case {}: accepted\n{}", case.name, String::from_utf8_lossy(&out.stdout));
        let line = format!("Error: {at}: ");
        let error = stderr.lines().find(|l| l.starts_with(&line));
        let error = error.unwrap_or_else(|| panic!("case {}: no line starting {line:?} in\n{stderr}", case.name));
        assert!(error.contains(case.field), "case {}: {error}\nexpected {}", case.name, case.field);
    }
    let missing = scratch("descriptions").join("no-such-description.toml");
    let out = images_check(&missing);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot read the system description {}", missing.display())), "{stderr}");
}
