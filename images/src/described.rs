//! A system booted from its description: the description read, its files
//! built and checked ([`crate::description`]), the root task it names
//! (for `root = "launcher"`, the launcher packed with the system image),
//! and the boot with the description's CPUs and RAM, or the bootable files
//! written out.

use crate::description::resolve::{resolve, Resolved};
use crate::description::Description;
use crate::kernel;
use crate::programs;
use crate::qemu::{self, BootOptions, BootOutcome, Medium};
use crate::system::{self, Written};
use crate::workspace::Workspace;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use system_image::RootKind;

/// A described system ready to boot: its root task and the boot's
/// settings.
#[derive(Debug)]
pub struct Prepared {
    /// The kernel (a 32-bit ELF for multiboot loaders).
    pub kernel: PathBuf,
    /// The root task's ELF (for the launcher, with the system image).
    pub root_task: PathBuf,
    /// CPUs to boot.
    pub cpus: u32,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
}

impl Prepared {
    /// Boot options for this system: its CPUs and RAM, `timeout`, the log
    /// echoed when `echo`.
    pub fn options(&self, timeout: Duration, echo: bool) -> BootOptions {
        BootOptions { memory_mib: self.memory_mib, ..BootOptions::demo(self.cpus, timeout, echo) }
    }
}

/// Reads, checks and builds the system described in `file`.
pub fn prepare(file: &Path) -> Result<Prepared> {
    let ws = Workspace::load()?;
    let resolved = resolve(Description::load(file)?, &ws)?;
    let kernel = kernel::build(&ws)?.image;
    let root_task = root_task(&ws, &resolved)?;
    let d = &resolved.description;
    let memory_mib = u32::try_from(d.memory >> 20).context("the guest's RAM is too large for QEMU")?;
    Ok(Prepared { kernel, root_task, cpus: d.system.cpus, memory_mib })
}

/// The root task `resolved` names, built (and for the launcher, packed
/// with the system image next to the launcher's ELF).
fn root_task(ws: &Workspace, resolved: &Resolved) -> Result<PathBuf> {
    match resolved.description.system.root {
        RootKind::Launcher => {
            let launcher = programs::build_launcher(ws)?;
            let name = resolved.description.file.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            let packed = launcher.with_file_name(format!("system-root-{name}"));
            crate::system_image::write(&launcher, &resolved.blob(), &packed)?;
            Ok(packed)
        }
        RootKind::Demo => programs::build(ws),
        RootKind::Scale => programs::build_scale(ws),
        RootKind::Bench => bail!(
            "{}: the benchmark root task boots once per space count: run `images bench`",
            resolved.description.file.display()
        ),
    }
}

/// Builds and boots the system described in `file`; its CPUs and RAM come
/// from the description.
pub fn build_and_boot(file: &Path, timeout: Duration, echo: bool) -> Result<BootOutcome> {
    let prepared = prepare(file)?;
    qemu::boot(
        Medium::Direct { kernel: &prepared.kernel, root_task: &prepared.root_task },
        &prepared.options(timeout, echo),
    )
}

/// Builds the system described in `file` and writes its kernel, root task
/// and ISO to `out`.
pub fn write(file: &Path, out: &Path) -> Result<Written> {
    let prepared = prepare(file)?;
    system::write_files(&prepared.kernel, &prepared.root_task, out)
}
