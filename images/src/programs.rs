//! The seL4 programs: built with cargo for the host target as static,
//! libc-free executables (link arguments come from their build scripts),
//! in a target folder of their own so a build started from inside
//! `cargo test` never waits on the outer build's lock.

use crate::progress::Step;
use crate::workspace::Workspace;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A program the root task embeds, the features it is built with, and the
/// environment variable through which the root task's build finds it.
struct Embedded {
    package: &'static str,
    bin: &'static str,
    features: &'static str,
    env: &'static str,
}

/// Every program the root task embeds.
const EMBEDDED: &[Embedded] = &[
    Embedded { package: "root-task", bin: "hello-child", features: "sel4", env: "ROOT_TASK_HELLO_CHILD_ELF" },
    Embedded { package: "root-task", bin: "agent", features: "sel4", env: "ROOT_TASK_AGENT_ELF" },
    Embedded { package: "root-task", bin: "visitor", features: "sel4", env: "ROOT_TASK_VISITOR_ELF" },
    Embedded { package: "memserver", bin: "memserver", features: "sel4", env: "ROOT_TASK_MEMSERVER_ELF" },
];

/// The launcher root task: package, binary, features.
const LAUNCHER: (&str, &str, &str) = ("system-root", "system-root", "sel4");

/// The package of the root programs (the demo root task and the
/// benchmark root task).
const ROOT_PACKAGE: &str = "root-task";

/// The cargo profile of this workspace's seL4 programs (`Cargo.toml`:
/// release, optimised over all their crates at once); a program of
/// another workspace is built with that workspace's `release`.
const PROFILE: &str = "sel4";

/// The package built without SSE: the memory server. Nothing it compiles
/// to (the standard library included: the whole-program build compiles it
/// again with the server) touches an FPU, MMX or SSE register, so the
/// server never takes the FPU from a client, and no request costs seL4's
/// lazy FPU switch, a trap on each side, whatever the client does with
/// the FPU (`tests/fpu_free.rs` checks the server's instructions). The
/// server passes no floating-point values, so the ABI rustc warns about
/// (it wants SSE2 for them) is never used.
const FPU_FREE: &str = "memserver";
/// The compiler flags of [`FPU_FREE`] (as `CARGO_ENCODED_RUSTFLAGS`).
const NO_SSE: &str = "-Ctarget-feature=-sse,-sse2";

/// Builds binary `bin` of `package` with `features` in `target_dir`, from
/// the workspace of `manifest` (this workspace's, with [`PROFILE`], when
/// `None`); returns the folder of what it built. [`FPU_FREE`] is built in
/// a folder of its own beside `target_dir`, with flags of its own.
fn cargo_build(
    ws: &Workspace,
    target_dir: &Path,
    manifest: Option<&Path>,
    (package, bin, features): (&str, &str, &str),
    env: &[(&str, OsString)],
) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    let profile = if manifest.is_some() { "release" } else { PROFILE };
    let fpu_free = manifest.is_none() && package == FPU_FREE;
    // Apart: the flags are not part of cargo's file names, so a shared
    // folder would rebuild every dependency at each switch of flags.
    let target_dir =
        &if fpu_free { target_dir.with_file_name(format!("{FPU_FREE}-no-sse")) } else { target_dir.into() };
    if fpu_free {
        command.env("CARGO_ENCODED_RUSTFLAGS", NO_SSE);
    }
    command.current_dir(ws.root()).args(["build", "--profile", profile, "--target-dir"]).arg(target_dir);
    if let Some(manifest) = manifest {
        command.arg("--manifest-path").arg(manifest);
    }
    command.args(["-p", package, "--bin", bin]);
    if !features.is_empty() {
        command.args(["--features", features]);
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let status = command.status().with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("building the seL4 programs failed ({status})");
    }
    Ok(target_dir.join(profile))
}

/// Builds the embedded programs, then the root program `root_bin` that
/// carries them (with the features `features` and `extra` build
/// environment), and returns its ELF file.
fn build_root(ws: &Workspace, (root_bin, features): (&str, &str), extra: &[(&str, OsString)]) -> Result<PathBuf> {
    let step = Step::start(format!("building the seL4 programs ({root_bin}, features {features})"));
    let target_dir = ws.sel4_dir().join("programs");
    let mut env: Vec<(&str, OsString)> = Vec::new();
    for e in EMBEDDED {
        let built = cargo_build(ws, &target_dir, None, (e.package, e.bin, e.features), &[])?;
        env.push((e.env, built.join(e.bin).into_os_string()));
    }
    env.extend(extra.iter().cloned());
    let root = cargo_build(ws, &target_dir, None, (ROOT_PACKAGE, root_bin, features), &env)?.join(root_bin);
    step.finish(&root.display().to_string());
    Ok(root)
}

/// Builds the demo system's root task (with every program it embeds) and
/// returns its ELF file.
pub fn build(ws: &Workspace) -> Result<PathBuf> {
    build_root(ws, ("root-task", "sel4"), &[])
}

/// Builds the scale system's root task (the demo's, with the `scale`
/// feature: it runs the `scale` scenario alone) and returns its ELF file
/// (a copy of its own, beside the demo's).
pub fn build_scale(ws: &Workspace) -> Result<PathBuf> {
    let built = build_root(ws, ("root-task", "sel4,scale"), &[])?;
    copy_as(&built, "root-task-scale")
}

/// Copies the ELF file `built` to `name` beside it and returns the copy.
fn copy_as(built: &Path, name: &str) -> Result<PathBuf> {
    let copy = built.with_file_name(name);
    std::fs::copy(built, &copy).with_context(|| format!("copying {} to {}", built.display(), copy.display()))?;
    Ok(copy)
}

/// Builds binary `bin` of `package` with `features` (comma-separated) for
/// seL4, as [`build`] builds the programs the root task embeds (same
/// profile and target folder; no kernel needed), and returns its ELF file.
pub fn build_program(ws: &Workspace, package: &str, bin: &str, features: &str) -> Result<PathBuf> {
    let target_dir = ws.sel4_dir().join("programs");
    Ok(cargo_build(ws, &target_dir, None, (package, bin, features), &[])?.join(bin))
}

/// Runs clippy, every warning an error, over the seL4 programs and the
/// libraries they are made of, with the features [`build`] builds them
/// with (code a host build of the workspace leaves out: the programs'
/// `main`s, the server loop and backend). In a target folder of its own;
/// the ELF files the root programs embed are empty placeholders there
/// (clippy links nothing).
pub fn clippy(ws: &Workspace) -> Result<()> {
    let target_dir = ws.sel4_dir().join("clippy");
    std::fs::create_dir_all(&target_dir).with_context(|| format!("cannot create {}", target_dir.display()))?;
    let placeholder = target_dir.join("placeholder.elf");
    std::fs::write(&placeholder, []).with_context(|| format!("cannot write {}", placeholder.display()))?;
    let mut packages: Vec<(&str, &str)> = EMBEDDED.iter().map(|e| (e.package, e.features)).collect();
    packages.push((ROOT_PACKAGE, "sel4"));
    packages.sort_unstable();
    packages.dedup();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(ws.root()).args(["clippy", "--target-dir"]).arg(&target_dir);
    for (package, _) in &packages {
        command.args(["-p", package]);
    }
    let features: Vec<String> = packages
        .iter()
        .flat_map(|(package, features)| {
            features.split(',').filter(|f| !f.is_empty()).map(move |f| format!("{package}/{f}"))
        })
        .collect();
    command.args(["--features", &features.join(","), "--lib", "--bins", "--", "-D", "warnings"]);
    command.envs(EMBEDDED.iter().map(|e| (e.env, &placeholder)));
    command.env("BENCH_SPACES", "1");
    let status = command.status().with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("clippy of the seL4 programs failed ({status})");
    }
    Ok(())
}

/// Builds binary `bin` of `package` with `features` for seL4 from the
/// cargo workspace of `manifest` (one outside this workspace, such as an
/// example's), in a target folder of that workspace's own under this
/// workspace's, and returns its ELF file.
pub fn build_manifest_program(
    ws: &Workspace,
    manifest: &Path,
    package: &str,
    bin: &str,
    features: &str,
) -> Result<PathBuf> {
    let folder = manifest.parent().and_then(Path::file_name).unwrap_or_default();
    let target_dir = ws.sel4_dir().join("external").join(folder);
    Ok(cargo_build(ws, &target_dir, Some(manifest), (package, bin, features), &[])?.join(bin))
}

/// Builds the launcher root task (`root = "launcher"`), which reads the
/// system it boots from the system image packed after it, and returns its
/// ELF file.
pub fn build_launcher(ws: &Workspace) -> Result<PathBuf> {
    build_program(ws, LAUNCHER.0, LAUNCHER.1, LAUNCHER.2)
}

/// Builds the memory server exactly as [`build`] does for the root task to
/// embed and returns its ELF file.
pub fn build_memserver(ws: &Workspace) -> Result<PathBuf> {
    let e = EMBEDDED.iter().find(|e| e.package == "memserver").context("no memserver among the embedded programs")?;
    build_program(ws, e.package, e.bin, e.features)
}

/// Builds the benchmark root task for `spaces` registered spaces and
/// returns its ELF file (a copy of its own, one per space count).
pub fn build_bench(ws: &Workspace, spaces: usize) -> Result<PathBuf> {
    let built = build_root(ws, ("bench", "sel4"), &[("BENCH_SPACES", spaces.to_string().into())])?;
    copy_as(&built, &format!("bench-{spaces}"))
}
