//! What the build needs from the host, and installing what is missing:
//! Debian packages (QEMU, xmllint) and a Python venv for the kernel's
//! generator scripts.

use crate::progress::{self, Step};
use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A command the build runs, and the Debian package that provides it.
struct DebianNeed {
    command: &'static str,
    package: &'static str,
}

/// Host commands the kernel build and the QEMU boot need.
const DEBIAN_NEEDS: &[DebianNeed] = &[
    DebianNeed { command: "qemu-system-x86_64", package: "qemu-system-x86" },
    DebianNeed { command: "xmllint", package: "libxml2-utils" },
    DebianNeed { command: "make", package: "make" },
    DebianNeed { command: "gcc", package: "gcc" },
    DebianNeed { command: "objcopy", package: "binutils" },
];

/// PyPI packages the kernel's generator scripts import, pinned.
const PYTHON_NEEDS: &[&str] = &["tempita==0.6.0", "six==1.17.0", "ply==3.11"];

/// The Debian packages whose commands are not found on `path` (a
/// PATH-style list of folders).
fn missing_packages(path: &OsStr) -> Vec<&'static str> {
    DEBIAN_NEEDS
        .iter()
        .filter(|need| !std::env::split_paths(path).any(|dir| dir.join(need.command).is_file()))
        .map(|need| need.package)
        .collect()
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

/// Installs the Debian packages whose commands are missing, or fails with
/// the list and the command to run when this process is not root.
pub fn ensure_debian_packages() -> Result<()> {
    let missing = missing_packages(&std::env::var_os("PATH").unwrap_or_default());
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
        let all: Vec<&str> = DEBIAN_NEEDS.iter().map(|n| n.package).collect();
        assert_eq!(missing_packages(dir.as_os_str()), all);
        std::fs::write(dir.join("xmllint"), "").unwrap();
        assert!(!missing_packages(dir.as_os_str()).contains(&"libxml2-utils"));
        assert!(missing_packages(dir.as_os_str()).contains(&"qemu-system-x86"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
