//! What the build needs from the host, and installing what is missing:
//! Debian packages (QEMU, xmllint) and a Python venv for the kernel's
//! generator scripts.

use crate::progress::{self, Step};
use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the build needs from a Debian package: a command on PATH, or a
/// file at a fixed place (for packages that bring no command of their own).
#[derive(Clone, Copy, Debug)]
pub enum Probe {
    /// A command found on PATH.
    Command(&'static str),
    /// A file that exists when the package is installed.
    File(&'static str),
}

/// Something the build uses, and the Debian package that provides it.
#[derive(Clone, Copy, Debug)]
pub struct DebianNeed {
    probe: Probe,
    package: &'static str,
}

/// Host commands the kernel build and the QEMU boot need.
pub const BUILD_AND_BOOT: &[DebianNeed] = &[
    DebianNeed { probe: Probe::Command("qemu-system-x86_64"), package: "qemu-system-x86" },
    DebianNeed { probe: Probe::Command("xmllint"), package: "libxml2-utils" },
    DebianNeed { probe: Probe::Command("make"), package: "make" },
    DebianNeed { probe: Probe::Command("gcc"), package: "gcc" },
    DebianNeed { probe: Probe::Command("objcopy"), package: "binutils" },
];

/// What `grub-mkrescue` needs to write a BIOS-bootable ISO: GRUB's tools,
/// its i386-pc platform files, and the ISO 9660 and FAT image writers.
pub const ISO: &[DebianNeed] = &[
    DebianNeed { probe: Probe::Command("grub-mkrescue"), package: "grub-common" },
    DebianNeed { probe: Probe::File("/usr/lib/grub/i386-pc/multiboot.mod"), package: "grub-pc-bin" },
    DebianNeed { probe: Probe::Command("xorriso"), package: "xorriso" },
    DebianNeed { probe: Probe::Command("mformat"), package: "mtools" },
];

/// What the benchmark's request profile (`crate::profile`) drives QEMU's
/// gdb stub with.
pub const PROFILE: &[DebianNeed] = &[DebianNeed { probe: Probe::Command("gdb"), package: "gdb" }];

/// PyPI packages the kernel's generator scripts import, pinned.
const PYTHON_NEEDS: &[&str] = &["tempita==0.6.0", "six==1.17.0", "ply==3.11"];

/// The packages of `needs` whose probe fails: a command not found on
/// `path` (a PATH-style list of folders), or a file that does not exist.
fn missing_packages(needs: &[DebianNeed], path: &OsStr) -> Vec<&'static str> {
    let present = |need: &DebianNeed| match need.probe {
        Probe::Command(command) => std::env::split_paths(path).any(|dir| dir.join(command).is_file()),
        Probe::File(file) => Path::new(file).exists(),
    };
    needs.iter().filter(|need| !present(need)).map(|need| need.package).collect()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0").unwrap_or(false)
}

fn run(command: &mut Command) -> Result<()> {
    let status = command.status().with_context(|| format!("cannot start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed with {status}");
    }
    Ok(())
}

/// Installs the Debian packages of `needs` that are missing, or fails with
/// the list and the command to run when this process is not root.
pub fn ensure_debian_packages(needs: &[DebianNeed]) -> Result<()> {
    let missing = missing_packages(needs, &std::env::var_os("PATH").unwrap_or_default());
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!("apt-get update && apt-get install -y {}", missing.join(" "));
    if !is_root() {
        bail!("missing Debian packages: {}; install them with: sudo sh -c '{install}'", missing.join(", "));
    }
    let step = Step::start(format!("installing Debian packages: {}", missing.join(" ")));
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    step.finish("");
    Ok(())
}

/// Makes sure `venv` holds a Python venv with the kernel generators' PyPI
/// packages and returns its `bin/` folder, to put first on PATH.
pub fn ensure_python_venv(venv: &Path) -> Result<PathBuf> {
    let bin = venv.join("bin");
    let stamp = venv.join("installed.txt");
    let wanted = PYTHON_NEEDS.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|have| have == wanted) {
        return Ok(bin);
    }
    let step = Step::start(format!("creating Python venv {} with {}", venv.display(), PYTHON_NEEDS.join(" ")));
    run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(venv))
        .context("python3 -m venv failed (on Debian: apt-get install python3-venv)")?;
    run(Command::new(bin.join("pip")).args(["install", "--quiet", "--disable-pip-version-check"]).args(PYTHON_NEEDS))?;
    std::fs::write(&stamp, wanted)?;
    progress::note("venv ready");
    step.finish("");
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_are_missing_exactly_when_their_command_is_not_on_path() {
        let dir = std::env::temp_dir().join(format!("images-host-deps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let all: Vec<&str> = BUILD_AND_BOOT.iter().map(|n| n.package).collect();
        assert_eq!(missing_packages(BUILD_AND_BOOT, dir.as_os_str()), all);
        std::fs::write(dir.join("xmllint"), "").unwrap();
        assert!(!missing_packages(BUILD_AND_BOOT, dir.as_os_str()).contains(&"libxml2-utils"));
        assert!(missing_packages(BUILD_AND_BOOT, dir.as_os_str()).contains(&"qemu-system-x86"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_probe_checks_the_file_not_the_path() {
        let present = DebianNeed { probe: Probe::File("/"), package: "root" };
        let absent = DebianNeed { probe: Probe::File("/no/such/file/here"), package: "absent" };
        assert_eq!(missing_packages(&[present, absent], OsStr::new("")), ["absent"]);
    }
}
