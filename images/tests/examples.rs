//! The examples outside the workspace, as a user boots them: `images run
//! --system examples/shared-buffer/system.toml` must exit 0 with both
//! programs' verdicts ok, and the ISO `build --system ... --out` writes
//! must boot to the same verdict with `run --iso`; `images run --system
//! examples/huge-pages/system.toml` must exit 0 with the owner's 1 GiB
//! page seen by both viewers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// One boot at a time (the host has two cores).
static ONE_BOOT: Mutex<()> = Mutex::new(());

/// Seconds each boot may take (the example's takes about 20 s on a
/// loaded host).
const TIMEOUT: &str = "900";

fn example() -> PathBuf {
    described("shared-buffer")
}

/// The system description of example `name`.
fn described(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../examples/{name}/system.toml"))
}

fn images(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_images")).args(args).output().expect("running images")
}

/// The guest's log and verdict lines of a boot that must have succeeded.
fn require_both_verdicts(out: &Output) {
    require_lines(
        out,
        &[
            "reader: 65536 bytes at 0x700000000000, 0 differ from the writer's",
            "reader: 16384 bytes at 0x700000011000, 0 differ from the writer's",
            "writer: the reader saw the same bytes in both; freed",
            "launcher: reader: ok",
            "launcher: writer: ok",
            "launcher: 2 of 2 programs succeeded",
        ],
    );
}

/// A boot that must have succeeded, with each of `lines` in its log.
fn require_lines(out: &Output, lines: &[&str]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stdout}\n{stderr}", out.status);
    for line in lines.iter().chain(&["guest reported success (QEMU status 33)"]) {
        assert!(stdout.lines().any(|l| l == *line), "no line {line:?} in\n{stdout}");
    }
}

#[test]
fn the_huge_pages_example_shares_one_1_gib_page_with_both_viewers() {
    let _one = ONE_BOOT.lock().unwrap_or_else(|e| e.into_inner());
    let system = described("huge-pages");
    let out =
        images(&["run".as_ref(), "--system".as_ref(), system.as_os_str(), "--timeout".as_ref(), TIMEOUT.as_ref()]);
    let viewer = "viewer: 513 canaries at 0x700000000000, 0 differ from the owner's";
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().filter(|l| *l == viewer).count(), 2, "both viewers:\n{stdout}");
    require_lines(
        &out,
        &[
            "owner: 1073741824 bytes at 0x700000000000 on one 1 GiB page, canaries written",
            "owner: both viewers saw every canary; freed",
            "launcher: viewer-1: ok",
            "launcher: viewer-2: ok",
            "launcher: owner: ok",
            "launcher: 3 of 3 programs succeeded",
        ],
    );
}

#[test]
fn run_system_boots_the_example_and_both_verdicts_are_ok() {
    let _one = ONE_BOOT.lock().unwrap_or_else(|e| e.into_inner());
    let out =
        images(&["run".as_ref(), "--system".as_ref(), example().as_os_str(), "--timeout".as_ref(), TIMEOUT.as_ref()]);
    require_both_verdicts(&out);
}

#[test]
fn the_example_s_iso_boots_to_the_same_verdict() {
    let _one = ONE_BOOT.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shared-buffer-out");
    let built =
        images(&["build".as_ref(), "--system".as_ref(), example().as_os_str(), "--out".as_ref(), dir.as_os_str()]);
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    for name in ["kernel.elf", "root-task.elf", "system.iso"] {
        assert!(dir.join(name).is_file(), "{name} was not written");
    }
    let iso = dir.join("system.iso");
    let out = images(&[
        "run".as_ref(),
        "--iso".as_ref(),
        iso.as_os_str(),
        "--smp".as_ref(),
        "2".as_ref(),
        "--timeout".as_ref(),
        TIMEOUT.as_ref(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Got VBE info in multiboot"), "not booted by GRUB:\n{stdout}");
    require_both_verdicts(&out);
}
