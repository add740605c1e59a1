//! The seL4 kernel: located in the `sel4-sys` crate's source, configured
//! for QEMU, built with its own Makefile, converted for QEMU's multiboot
//! loader, and cached by a hash of everything that goes into it.

use crate::host_deps;
use crate::progress::{self, Step};
use crate::workspace::Workspace;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The crate that carries the kernel source, and the version we pin.
const SOURCE_CRATE: &str = "sel4-sys";
const SOURCE_VERSION: &str = "0.0.28";

/// Warnings gcc 12 raises on seL4 5.0.0, which builds with -Werror. They do
/// not touch kernel logic; `-mpopcnt` gives the SMP kernel its popcount.
const KERNEL_CFLAGS: &str = "-Wno-address-of-packed-member -Wno-array-bounds -mpopcnt";

/// The fixed make arguments of the standalone kernel build.
/// `CIRCULAR_INCLUDES=true` skips an include-cycle lint whose script
/// crashes on gcc 12's line markers.
const MAKE_ARGS: &[&str] =
    &["ARCH=x86", "SEL4_ARCH=x86_64", "PLAT=pc99", "DEBUG=1", "PYTHON=python3", "CIRCULAR_INCLUDES=true"];

/// How many CPUs (seL4 nodes) the kernel supports: the bootstrap
/// contract's. One SMP build serves every boot: it starts as many of these
/// as QEMU provides, and the invocation labels (which depend on SMP
/// support) stay the same for all.
pub const KERNEL_CPUS: u32 = memserver_protocol::bootstrap::KERNEL_CPUS as u32;

/// One change to the kernel's fixed configuration header.
#[derive(Debug)]
enum Edit {
    /// Delete `#define NAME ...`.
    Remove(&'static str),
    /// Rename `NAME` to another option of the same kind.
    Rename(&'static str, &'static str),
    /// Set `NAME` to a value, replacing every definition or adding one.
    Set(&'static str, String),
}

/// The one documented place where the stock `pc99` configuration
/// (`include/plat/pc99/autoconf.h`) is made to boot under QEMU's
/// software CPU (TCG):
/// - TCG has no INVPCID: drop PCID support;
/// - TCG lacks the FSGSBASE instructions by default: use the MSRs;
/// - QEMU's default local APIC is an xAPIC, not an x2APIC;
/// - QEMU's default machine has no IOMMU;
/// - printing gives the kernel boot log and `seL4_DebugPutChar`;
/// - `KERNEL_CPUS` CPUs (the header defines the count twice: both are set).
fn edits() -> Vec<Edit> {
    vec![
        Edit::Remove("CONFIG_SUPPORT_PCID"),
        Edit::Rename("CONFIG_FSGSBASE_INST", "CONFIG_FSGSBASE_MSR"),
        Edit::Rename("CONFIG_X2APIC", "CONFIG_XAPIC"),
        Edit::Remove("CONFIG_IOMMU"),
        Edit::Set("CONFIG_PRINTING", "1".into()),
        Edit::Set("CONFIG_MAX_NUM_NODES", KERNEL_CPUS.to_string()),
    ]
}

/// A fix of a bug in the seL4 5.0.0 source: `from` must occur exactly
/// once in `file`, and becomes `to`.
#[derive(Debug)]
struct Patch {
    file: &'static str,
    from: &'static str,
    to: &'static str,
}

/// The kernel bugs this project fixes, each with why.
///
/// 1. seL4 5.0.0's x86 `handleVMFault` keeps the fault address in a
///    `uint32_t`, so on x86-64 a fault handler receives only the low 32 bits
///    of the address (later seL4 releases hold it in a `word_t`). The memory
///    server repairs and reports faults in a region far above 4 GiB, so it
///    needs the whole address.
/// 2. The barrier that ends a cross-CPU remote call (`ipi_wait`) flips a
///    sense bit, and each waiter spins until the bit differs from what it
///    read on arrival. The cores of one call are not those of the next, so
///    a waiter whose CPU is slow to look (a QEMU vCPU thread the host has
///    descheduled) can see two calls complete, the bit flipped back, and
///    spin forever; the next call aimed at that CPU then waits for it
///    forever, with the kernel lock held. The stress scenario hung this way
///    (two CPUs in `ipi_wait`, two in `clh_lock_acquire`). Counting
///    generations instead of flipping a bit makes every completed call
///    visible to every earlier waiter.
/// 3. seL4 5.0.0 declares the multiboot information's address fields after
///    `mmap_addr` as C pointers, 64 bits on x86-64, where the multiboot
///    specification has 32-bit physical addresses: every field from
///    `drives_addr` on is read at the wrong offset. A loader that passes
///    VBE video information (GRUB, booting the ISO) then makes the kernel
///    dereference a garbage address and triple-fault at boot (QEMU's own
///    loader passes none). The fields become `uint32_t` and the two VBE
///    reads convert them to pointers.
/// 4. The kernel's bitfield generator builds its parser with ply, which
///    writes the parser's tables (`parsetab.py`) beside the generator and
///    reads them at the next start: under `make -j`, two generators run at
///    once, and one can read the other's half-written tables and fail
///    (`SyntaxError` in `parsetab.py`). Without the tables written, each
///    builds its parser in memory.
const PATCHES: &[Patch] = &[
    Patch {
        file: "src/arch/x86/kernel/vspace.c",
        from: "    uint32_t addr;\n    uint32_t fault;\n\n    addr = getFaultAddr();",
        to: "    word_t addr;\n    uint32_t fault;\n\n    addr = getFaultAddr();",
    },
    Patch {
        file: "src/arch/x86/kernel/ipi.c",
        from: "        ipiSyncBarrier.globalsense =\n            ~ipiSyncBarrier.globalsense;",
        to: "        ipiSyncBarrier.globalsense =\n            ipiSyncBarrier.globalsense + 1;",
    },
    Patch {
        file: "include/arch/x86/arch/kernel/multiboot.h",
        from: "    void *drives_addr;\n    void *config_table;\n    void *boot_loader_name;\n    void *apm_table;\n    \
               /* The bootinfo types are declared to be precisely the VBE layout, so\n     \
               * we can reuse those types here */\n    \
               seL4_VBEInfoBlock_t *vbe_control_info;\n    seL4_VBEModeInfoBlock_t *vbe_mode_info;",
        to: "    uint32_t drives_addr;\n    uint32_t config_table;\n    uint32_t boot_loader_name;\n    \
             uint32_t apm_table;\n    /* Physical addresses of the VBE blocks */\n    \
             uint32_t vbe_control_info;\n    uint32_t vbe_mode_info;",
    },
    Patch {
        file: "src/arch/x86/kernel/boot_sys.c",
        from: "        boot_state.vbe_info.vbeInfoBlock = *mbi->vbe_control_info;\n        \
               boot_state.vbe_info.vbeModeInfoBlock = *mbi->vbe_mode_info;",
        to: "        boot_state.vbe_info.vbeInfoBlock = *(seL4_VBEInfoBlock_t *)(word_t)mbi->vbe_control_info;\n        \
             boot_state.vbe_info.vbeModeInfoBlock = *(seL4_VBEModeInfoBlock_t *)(word_t)mbi->vbe_mode_info;",
    },
    Patch { file: "tools/bitfield_gen.py", from: "    yacc.yacc(debug=0)", to: "    yacc.yacc(debug=0, write_tables=False)" },
];

/// Applies `patch` to the source tree at `source`.
fn apply_patch(source: &Path, patch: &Patch) -> Result<()> {
    let path = source.join(patch.file);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if text.matches(patch.from).count() != 1 {
        bail!("patch for {} does not apply: its context occurs {} times", patch.file, text.matches(patch.from).count());
    }
    std::fs::write(&path, text.replacen(patch.from, patch.to, 1))?;
    Ok(())
}

/// Applies `edits` to the text of an `autoconf.h`.
fn apply_edits(header: &str, edits: &[Edit]) -> String {
    let mut out = String::new();
    let mut set_seen = vec![false; edits.len()];
    for line in header.lines() {
        let name = line.strip_prefix("#define ").and_then(|rest| rest.split_whitespace().next());
        let mut line = line.to_string();
        for (i, edit) in edits.iter().enumerate() {
            match (edit, name) {
                (Edit::Remove(n), Some(name)) if *n == name => line.clear(),
                (Edit::Rename(from, to), Some(name)) if *from == name => line = line.replacen(from, to, 1),
                (Edit::Set(n, value), Some(name)) if *n == name => {
                    line = format!("#define {n} {value}");
                    set_seen[i] = true;
                }
                _ => {}
            }
        }
        if !line.is_empty() {
            out.push_str(&line);
            out.push('\n');
        }
    }
    for (edit, seen) in edits.iter().zip(set_seen) {
        if let (Edit::Set(n, value), false) = (edit, seen) {
            out.push_str(&format!("#define {n} {value}\n"));
        }
    }
    out
}

/// A built kernel: where its configured source, its build folder (with
/// the generated headers) and its QEMU-loadable image are.
#[derive(Debug, Clone)]
pub struct KernelBuild {
    /// The configured copy of the kernel source.
    pub source: PathBuf,
    /// The make build folder (generated headers live here).
    pub build_dir: PathBuf,
    /// `kernel.elf` converted to 32-bit ELF for QEMU's multiboot loader.
    pub image: PathBuf,
}

/// Finds the `sel4-sys` crate's kernel source (its `seL4/` folder) through
/// `cargo metadata`: the crate is a locked, never-compiled dependency of
/// this package, so cargo has downloaded and checksummed it.
pub fn locate_source(ws: &Workspace) -> Result<PathBuf> {
    let package = ws
        .metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == SOURCE_CRATE && p.version.to_string() == SOURCE_VERSION)
        .with_context(|| format!("{SOURCE_CRATE} {SOURCE_VERSION} is not in cargo metadata"))?;
    let dir = package.manifest_path.parent().context("manifest without folder")?.join("seL4");
    if !dir.join("Makefile").is_file() {
        bail!("{dir} holds no kernel Makefile");
    }
    Ok(dir.into_std_path_buf())
}

/// Everything that decides the kernel image, hashed into its cache key.
fn cache_key() -> String {
    let mut hash = Sha256::new();
    hash.update(format!("{SOURCE_CRATE}-{SOURCE_VERSION}|{KERNEL_CFLAGS}|{MAKE_ARGS:?}|{:?}|{PATCHES:?}", edits()));
    hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Builds the kernel, or returns the cached build.
pub fn build(ws: &Workspace) -> Result<KernelBuild> {
    let root = ws.sel4_dir().join(format!("kernel-{}", cache_key()));
    let build =
        KernelBuild { source: root.join("src"), build_dir: root.join("build"), image: root.join("kernel32.elf") };
    if build.image.is_file() {
        progress::note(&format!("kernel: cached at {}", build.image.display()));
        return Ok(build);
    }
    host_deps::ensure_debian_packages(host_deps::BUILD_AND_BOOT)?;
    let venv_bin = host_deps::ensure_python_venv(&ws.python_venv())?;
    let step = Step::start(format!("building the seL4 5.0.0 kernel (up to {KERNEL_CPUS} CPUs)"));
    // Build in a private folder and rename it into place when complete, so
    // an interrupted or concurrent build never leaves a half cache entry.
    let partial = root.with_extension(format!("partial-{}", std::process::id()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    let source = partial.join("src");
    let build_dir = partial.join("build");
    std::fs::create_dir_all(&build_dir)?;
    copy_tree(&locate_source(ws)?, &source)?;
    let header = source.join("include/plat/pc99/autoconf.h");
    let stock = std::fs::read_to_string(&header)?;
    std::fs::write(&header, apply_edits(&stock, &edits()))?;
    for patch in PATCHES {
        apply_patch(&source, patch)?;
    }
    make(&source, &build_dir, &venv_bin)?;
    let status = Command::new("objcopy")
        .args(["-O", "elf32-i386"])
        .arg(build_dir.join("kernel.elf"))
        .arg(partial.join("kernel32.elf"))
        .status()?;
    if !status.success() {
        bail!("objcopy of {} failed", build_dir.join("kernel.elf").display());
    }
    if let Err(e) = std::fs::rename(&partial, &root) {
        // Another build finished first: keep its result.
        std::fs::remove_dir_all(&partial)?;
        if !build.image.is_file() {
            return Err(e).context("cannot move the kernel build into place");
        }
    }
    step.finish(&build.image.display().to_string());
    Ok(build)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let status = Command::new("cp").arg("-r").arg(from).arg(to).status()?;
    if !status.success() {
        bail!("copying {} to {} failed", from.display(), to.display());
    }
    Ok(())
}

fn make(source: &Path, build_dir: &Path, venv_bin: &Path) -> Result<()> {
    let path = std::env::join_paths(
        std::iter::once(venv_bin.to_path_buf())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )?;
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let log = build_dir.join("make.log");
    let output = Command::new("make")
        .current_dir(build_dir)
        .arg("-f")
        .arg(source.join("Makefile"))
        .arg(format!("SOURCE_ROOT={}", source.display()))
        .args(MAKE_ARGS)
        .arg(format!("-j{jobs}"))
        .env("PATH", path)
        .env("CFLAGS", KERNEL_CFLAGS)
        .output()
        .context("cannot run make")?;
    let mut text = output.stdout;
    text.extend_from_slice(&output.stderr);
    std::fs::write(&log, &text)?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&text);
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        bail!(
            "kernel build failed ({}); last lines of {}:\n{}",
            output.status,
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_apply_once_to_the_pinned_source() {
        let ws = Workspace::load().unwrap();
        let pristine = locate_source(&ws).unwrap();
        for patch in PATCHES {
            let text = std::fs::read_to_string(pristine.join(patch.file)).unwrap();
            assert_eq!(text.matches(patch.from).count(), 1, "{}", patch.file);
        }
    }

    #[test]
    fn edits_remove_rename_and_set_every_definition() {
        let stock = "#define CONFIG_SUPPORT_PCID 1\n#define CONFIG_X2APIC 1\n\
                     #define CONFIG_MAX_NUM_NODES 1\n#define CONFIG_OTHER 3\n#define CONFIG_MAX_NUM_NODES 1\n";
        let edited = apply_edits(stock, &edits());
        assert_eq!(
            edited,
            "#define CONFIG_XAPIC 1\n#define CONFIG_MAX_NUM_NODES 4\n#define CONFIG_OTHER 3\n\
             #define CONFIG_MAX_NUM_NODES 4\n#define CONFIG_PRINTING 1\n"
        );
    }
}
