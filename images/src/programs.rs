//! The seL4 programs: built with cargo for the host target as static,
//! libc-free executables (link arguments come from their build scripts),
//! in a target folder of their own so a build started from inside
//! `cargo test` never waits on the outer build's lock.

use crate::progress::Step;
use crate::workspace::Workspace;
use anyhow::{bail, Context, Result};
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
    Embedded { package: "root-task", bin: "client", features: "sel4", env: "ROOT_TASK_CLIENT_ELF" },
    Embedded { package: "memserver", bin: "memserver", features: "sel4", env: "ROOT_TASK_MEMSERVER_ELF" },
];

/// The root task's package and binary.
const ROOT_TASK: (&str, &str) = ("root-task", "root-task");

/// Builds binary `bin` of `package` with `features` in `target_dir`.
fn cargo_build(
    ws: &Workspace,
    target_dir: &Path,
    (package, bin, features): (&str, &str, &str),
    env: &[(&str, PathBuf)],
) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(ws.root()).args(["build", "--release", "--target-dir"]).arg(target_dir);
    command.args(["-p", package, "--bin", bin, "--features", features]);
    command.envs(env.iter().map(|(k, v)| (k, v)));
    let status = command.status().with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("building the seL4 programs failed ({status})");
    }
    Ok(())
}

/// Builds the embedded programs, then the root task that carries them, and
/// returns the root task's ELF file.
pub fn build(ws: &Workspace) -> Result<PathBuf> {
    let step = Step::start("building the seL4 programs");
    let target_dir = ws.sel4_dir().join("programs");
    let out = target_dir.join("release");
    for e in EMBEDDED {
        cargo_build(ws, &target_dir, (e.package, e.bin, e.features), &[])?;
    }
    let env: Vec<(&str, PathBuf)> = EMBEDDED.iter().map(|e| (e.env, out.join(e.bin))).collect();
    cargo_build(ws, &target_dir, (ROOT_TASK.0, ROOT_TASK.1, "sel4"), &env)?;
    let root_task = out.join(ROOT_TASK.1);
    step.finish(&root_task.display().to_string());
    Ok(root_task)
}
