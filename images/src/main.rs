//! `images`: build and boot the seL4 demo system, or any described one.

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use images::bench_report;
use images::description::resolve::resolve;
use images::description::Description;
use images::kernel::{self, KERNEL_CPUS};
use images::qemu::BootOptions;
use images::workspace::Workspace;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Builds seL4 and the memory server system, and boots it in QEMU")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build everything, boot the demo system (or the described one),
    /// stream its serial log and exit with the guest's verdict (0 for
    /// success).
    Run {
        /// CPUs to boot (1 to 4); a described system boots its own.
        #[arg(long, default_value_t = KERNEL_CPUS, value_parser = clap::value_parser!(u32).range(1..=KERNEL_CPUS as i64), conflicts_with = "system")]
        smp: u32,
        /// Seconds the guest may run before it counts as hung.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Boot this ISO (as `build` writes it) from QEMU's CD drive
        /// instead of building and booting directly.
        #[arg(long, conflicts_with = "system")]
        iso: Option<PathBuf>,
        /// Build and boot the system this description (TOML, as in
        /// systems/) describes, with its CPUs and RAM.
        #[arg(long)]
        system: Option<PathBuf>,
    },
    /// Build everything and write the kernel, the root task and a
    /// bootable ISO (GRUB) to a folder.
    Build {
        /// The folder to write `kernel.elf`, `root-task.elf` and
        /// `system.iso` to.
        #[arg(long)]
        out: PathBuf,
        /// Build the system this description describes instead of the
        /// demo.
        #[arg(long)]
        system: Option<PathBuf>,
    },
    /// Boot the benchmark image under `-icount` once per number of
    /// registered spaces, print the tables and the summary line, and write
    /// target/bench/ and the README's figures.
    Bench {
        /// Make the tables from the records a run wrote (its
        /// `target/bench/results.json`) instead of booting.
        #[arg(long)]
        records: Option<PathBuf>,
    },
    /// Run clippy (warnings as errors) over the seL4 programs with the
    /// features they are built with.
    Clippy,
    /// Read and check a system description, build its cargo binaries,
    /// check its ELF files and memory, and print the system; exits non-zero
    /// with the error (file:line:column and field) on a bad description.
    Check {
        /// The description file (TOML, as in systems/).
        #[arg(long)]
        system: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Run { smp, timeout, iso, system } => {
            let timeout = Duration::from_secs(timeout);
            let options = BootOptions::demo(smp, timeout, true);
            let outcome = match (iso, system) {
                (_, Some(system)) => images::described::build_and_boot(&system, timeout, true)?,
                (Some(iso), None) => images::system::boot_iso(&iso, &options)?,
                (None, None) => images::system::build_and_boot(&options)?,
            };
            if !outcome.success() {
                bail!("{}", outcome.verdict());
            }
            println!("{}", outcome.verdict());
            Ok(())
        }
        Cmd::Build { out, system } => {
            let written = match system {
                Some(system) => images::described::write(&system, &out)?,
                None => images::system::write(&out)?,
            };
            println!("{}\n{}\n{}", written.kernel.display(), written.root_task.display(), written.iso.display());
            Ok(())
        }
        Cmd::Bench { records } => {
            let ws = Workspace::load()?;
            let records = match records {
                Some(path) => bench_report::read_records(&path)?,
                None => images::bench::run(&ws, &kernel::build(&ws)?)?,
            };
            let report = bench_report::report(&records)?;
            println!("{}\n{}", report.markdown, report.summary);
            bench_report::write(
                &ws.root(),
                &ws.metadata.target_directory.join("bench").into_std_path_buf(),
                &records,
                &report,
            )
        }
        Cmd::Clippy => images::programs::clippy(&Workspace::load()?),
        Cmd::Check { system } => {
            let description = Description::load(&system)?;
            let resolved = resolve(description, &Workspace::load()?)?;
            println!("{resolved}");
            Ok(())
        }
    }
}
