//! A bootable ISO of a system: GRUB (from Debian's packages, installed when
//! missing) loads the kernel with the multiboot protocol and the root task
//! as its first module, exactly what QEMU's direct boot does. The image
//! boots from a CD in QEMU (`-cdrom`) or on a PC with a BIOS.

use crate::host_deps;
use crate::progress::Step;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the kernel and the root task lie inside the image.
const KERNEL: &str = "boot/sel4/kernel.elf";
const ROOT_TASK: &str = "boot/sel4/root-task.elf";

/// GRUB's configuration: boot at once, the kernel and the root task as
/// multiboot module, nothing else.
fn grub_cfg() -> String {
    format!(
        "set timeout=0\nset default=0\n\nmenuentry \"seL4 memory server system\" {{\n    \
         multiboot /{KERNEL}\n    module /{ROOT_TASK}\n    boot\n}}\n"
    )
}

/// Writes `out` (an ISO file) booting `kernel` with `root_task`; the
/// folder the image is made from is kept beside it (`<out>.d`).
pub fn build(kernel: &Path, root_task: &Path, out: &Path) -> Result<PathBuf> {
    host_deps::ensure_debian_packages(host_deps::ISO)?;
    let step = Step::start(format!("writing the bootable ISO {}", out.display()));
    let tree = out.with_extension("iso.d");
    if tree.exists() {
        std::fs::remove_dir_all(&tree).with_context(|| format!("removing {}", tree.display()))?;
    }
    for (from, to) in [(kernel, KERNEL), (root_task, ROOT_TASK)] {
        let to = tree.join(to);
        std::fs::create_dir_all(to.parent().context("a file inside the tree")?)?;
        std::fs::copy(from, &to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    let cfg = tree.join("boot/grub/grub.cfg");
    std::fs::create_dir_all(cfg.parent().context("a file inside the tree")?)?;
    std::fs::write(&cfg, grub_cfg())?;
    let output =
        Command::new("grub-mkrescue").arg("-o").arg(out).arg(&tree).output().context("cannot run grub-mkrescue")?;
    if !output.status.success() {
        bail!("grub-mkrescue failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    step.finish(&format!("{} KiB", std::fs::metadata(out)?.len() >> 10));
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_loads_the_kernel_and_the_root_task_as_its_first_module() {
        let cfg = grub_cfg();
        let multiboot = cfg.find(&format!("multiboot /{KERNEL}")).expect("the kernel is loaded");
        let module = cfg.find(&format!("module /{ROOT_TASK}")).expect("the root task is a module");
        assert!(multiboot < module && cfg.matches("module").count() == 1);
        assert!(cfg.contains("timeout=0"), "no menu wait");
    }
}
