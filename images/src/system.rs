//! The whole demo system: kernel, programs, boot.

use crate::kernel;
use crate::programs;
use crate::qemu::{self, BootOptions, BootOutcome};
use crate::workspace::Workspace;
use anyhow::Result;

/// Builds the kernel (or takes it from the cache) and the seL4 programs,
/// then boots them.
pub fn build_and_boot(options: &BootOptions) -> Result<BootOutcome> {
    let ws = Workspace::load()?;
    let kernel = kernel::build(&ws)?;
    let root_task = programs::build(&ws)?;
    qemu::boot(&kernel.image, &root_task, options)
}
