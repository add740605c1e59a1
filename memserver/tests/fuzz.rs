//! The fuzz run of `cargo test`: builds the targets of `memserver/fuzz`
//! with libFuzzer's coverage instrumentation and runs them side by side,
//! for `SECONDS` each, or for `MEMSERVER_FUZZ_SECONDS` each when that is
//! set (the long run, README "Fuzzing"). A crash fails the test with the
//! path of the input that caused it.
//!
//! Stable Rust is enough: the instrumentation is LLVM's sanitizer-coverage
//! pass, enabled with `-C passes`/`-C llvm-args`, and no sanitizer runs
//! (the server is safe Rust). The first build fetches `libfuzzer-sys` from
//! crates.io and compiles libFuzzer's C++ with the system's C++ compiler;
//! nothing else is installed. The build has its own target directory under
//! cargo's test scratch directory: the outer build holds the lock on the
//! workspace's.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The fuzz targets (binaries of `memserver/fuzz`) and their seeds
/// (`memserver/fuzz/seeds/<seeds>`): `backend` serves `dispatch`'s sessions.
const TARGETS: [(&str, &str); 3] = [("decode", "decode"), ("dispatch", "dispatch"), ("backend", "dispatch")];
/// How long the bounded run fuzzes each target (they run in parallel).
const SECONDS: u64 = 75;
/// Longest input: a dispatch session of a few dozen messages.
const MAX_LEN: usize = 512;
/// The coverage instrumentation `cargo fuzz` uses, less the sanitizer.
const INSTRUMENT: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing";

#[test]
fn fuzz_targets_find_no_crash() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz");
    let bin = build(&crate_dir, &work.join("target"));
    let seconds = std::env::var("MEMSERVER_FUZZ_SECONDS")
        .map_or(SECONDS, |s| s.parse().expect("MEMSERVER_FUZZ_SECONDS is a number of seconds"));
    let budget = format!("-max_total_time={seconds}");
    let runs: Vec<(&str, Child)> = TARGETS
        .iter()
        .map(|&(t, seeds)| (t, start(&bin.join(t), &crate_dir.join("seeds").join(seeds), &work.join(t), &budget)))
        .collect();
    let mut crashes = Vec::new();
    for (target, mut child) in runs {
        let status = child.wait().expect("the fuzzer ran");
        let dir = work.join(target);
        let log = fs::read_to_string(dir.join("log")).unwrap_or_default();
        let stat = |name: &str| {
            log.lines().find_map(|l| l.strip_prefix(&format!("stat::{name}:"))).map_or("?", str::trim).to_owned()
        };
        println!(
            "fuzz {target}: {} executions, {} per second, {} new inputs, {status}",
            stat("number_of_executed_units"),
            stat("average_exec_per_sec"),
            stat("new_units_added")
        );
        let found = artifacts(&dir.join("artifacts"));
        if !status.success() || !found.is_empty() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("fuzz {target} failed; end of {}:", dir.join("log").display());
            tail.iter().rev().for_each(|l| eprintln!("  {l}"));
            crashes.push(format!("{target}: {status}, inputs {found:?}"));
        }
    }
    assert!(
        crashes.is_empty(),
        "fuzzing found crashes (replay one with a test in memserver/tests/fuzz_replay.rs): {crashes:#?}"
    );
}

/// Builds the fuzz targets into `target_dir`; returns where the binaries are.
fn build(crate_dir: &Path, target_dir: &Path) -> PathBuf {
    let host = host_triple();
    println!("building the fuzz targets (the first time fetches libfuzzer-sys and compiles libFuzzer)");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .args(["--target", &host, "--target-dir"])
        .arg(target_dir)
        // The instrumentation applies to the target only (not to build
        // scripts and proc macros) because the target is named.
        .env("RUSTFLAGS", INSTRUMENT)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the fuzz targets failed: {status}");
    target_dir.join(host).join("release")
}

fn host_triple() -> String {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("rustc runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.strip_prefix("host: ")).expect("rustc names its host").to_owned()
}

/// Starts fuzzing `binary` from `seeds` and what earlier runs kept in
/// `dir/corpus`, writing its log and any crash input under `dir`.
fn start(binary: &Path, seeds: &Path, dir: &Path, budget: &str) -> Child {
    let (corpus, artifacts) = (dir.join("corpus"), dir.join("artifacts"));
    // Crash inputs of an earlier run are not this run's.
    let _ = fs::remove_dir_all(&artifacts);
    for d in [&corpus, &artifacts] {
        fs::create_dir_all(d).expect("a fuzz work directory");
    }
    let log = File::create(dir.join("log")).expect("a fuzz log");
    // libFuzzer runs each input on the main thread; the seL4 backend's
    // server (about 6 MB: the frame-copy table is dense) passes through
    // the stack on its way into its box, so the targets get the 64 MiB of
    // stack the host tests build the server with (see `harness::built`).
    Command::new("sh")
        .args(["-c", "ulimit -s 65536 && exec \"$0\" \"$@\""])
        .arg(binary)
        .arg(&corpus)
        .arg(seeds)
        .arg(budget)
        .arg(format!("-max_len={MAX_LEN}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(["-print_final_stats=1", "-timeout=10", "-rss_limit_mb=4096"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()))
}

/// The crash (or timeout) inputs libFuzzer wrote to `dir`.
fn artifacts(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect());
    entries.unwrap_or_default()
}
