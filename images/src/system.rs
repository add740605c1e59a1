//! The whole demo system: kernel, programs, boot, and the bootable files
//! written for use outside this tool.

use crate::iso;
use crate::kernel;
use crate::programs;
use crate::qemu::{self, BootOptions, BootOutcome, Medium};
use crate::workspace::Workspace;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Builds the kernel (or takes it from the cache) and the seL4 programs,
/// then boots them.
pub fn build_and_boot(options: &BootOptions) -> Result<BootOutcome> {
    let ws = Workspace::load()?;
    let kernel = kernel::build(&ws)?;
    let root_task = programs::build(&ws)?;
    qemu::boot(Medium::Direct { kernel: &kernel.image, root_task: &root_task }, options)
}

/// The bootable files [`write`] puts in its output folder.
#[derive(Debug)]
pub struct Written {
    /// The kernel, as a 32-bit ELF for multiboot loaders.
    pub kernel: PathBuf,
    /// The root task's ELF, the kernel's first boot module.
    pub root_task: PathBuf,
    /// A BIOS-bootable ISO holding both, with GRUB.
    pub iso: PathBuf,
}

/// Builds the system and writes its kernel, root task and ISO to `out`.
pub fn write(out: &Path) -> Result<Written> {
    let ws = Workspace::load()?;
    let kernel = kernel::build(&ws)?;
    let root_task = programs::build(&ws)?;
    write_files(&kernel.image, &root_task, out)
}

/// Writes `kernel`, `root_task` and an ISO of both to `out`.
pub fn write_files(kernel: &Path, root_task: &Path, out: &Path) -> Result<Written> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let copy = |from: &Path, name: &str| -> Result<PathBuf> {
        let to = out.join(name);
        std::fs::copy(from, &to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        Ok(to)
    };
    let written = Written {
        kernel: copy(kernel, "kernel.elf")?,
        root_task: copy(root_task, "root-task.elf")?,
        iso: out.join("system.iso"),
    };
    iso::build(&written.kernel, &written.root_task, &written.iso)?;
    Ok(written)
}

/// Boots the ISO at `iso` (as [`write`] made it).
pub fn boot_iso(iso: &Path, options: &BootOptions) -> Result<BootOutcome> {
    qemu::boot(Medium::Iso(iso), options)
}
