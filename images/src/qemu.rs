//! Booting an image in QEMU: the software CPU, `isa-debug-exit` for the
//! guest's status, the serial log streamed and kept, and a timeout.

use crate::progress::Step;
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wait_timeout::ChildExt;

/// The CPU model that boots seL4 under TCG (see SEL4_BOOT_FACTS).
const CPU: &str = "Nehalem,-vme,+pdpe1gb,+fsgsbase";
/// QEMU's exit status when the guest wrote the success value to the exit
/// port (`sel4_layer::runtime::QEMU_SUCCESS_STATUS`).
pub const SUCCESS_STATUS: i32 = 33;

/// How to boot.
#[derive(Clone, Debug)]
pub struct BootOptions {
    /// Number of CPUs.
    pub smp: u32,
    /// How long the guest may run before it is stopped as hung.
    pub timeout: Duration,
    /// Echo the serial log to standard output while it runs.
    pub echo: bool,
    /// Run with `-icount shift=0,sleep=off`: guest time (and the time stamp
    /// counter) then advances with executed instructions, so cycle counts
    /// are repeatable.
    pub icount: bool,
    /// Guest RAM in MiB.
    pub memory_mib: u32,
}

impl BootOptions {
    /// The demo system's boot: `smp` CPUs, 512 MiB, the host's clock.
    pub fn demo(smp: u32, timeout: Duration, echo: bool) -> BootOptions {
        BootOptions { smp, timeout, echo, icount: false, memory_mib: 512 }
    }
}

/// What a boot produced.
#[derive(Debug)]
pub struct BootOutcome {
    /// QEMU's exit status, `None` when it was stopped at the timeout.
    pub status: Option<i32>,
    /// Everything the guest printed on its serial port.
    pub log: String,
}

impl BootOutcome {
    /// True when the guest ended QEMU with the success value.
    pub fn success(&self) -> bool {
        self.status == Some(SUCCESS_STATUS)
    }

    /// A one-line account of how the guest ended.
    pub fn verdict(&self) -> String {
        match self.status {
            Some(SUCCESS_STATUS) => format!("guest reported success (QEMU status {SUCCESS_STATUS})"),
            Some(35) => "guest reported failure (QEMU status 35)".into(),
            Some(s) => format!("QEMU ended without a guest verdict (status {s})"),
            None => "timed out: the guest neither finished nor failed in time".into(),
        }
    }
}

/// What QEMU boots from.
#[derive(Clone, Copy, Debug)]
pub enum Medium<'a> {
    /// QEMU's own multiboot loader: the kernel, with the root task as its
    /// only module.
    Direct {
        /// The kernel (a 32-bit ELF, as QEMU's loader wants).
        kernel: &'a Path,
        /// The root task's ELF.
        root_task: &'a Path,
    },
    /// A bootable ISO (see [`crate::iso`]) in the CD drive, booted by the
    /// BIOS and GRUB.
    Iso(&'a Path),
}

/// The QEMU command that boots `medium` with `options` (the guest's serial
/// port on standard output).
pub fn command(medium: Medium, options: &BootOptions) -> Command {
    let mut command = Command::new("qemu-system-x86_64");
    command
        .args(["-cpu", CPU, "-m", &options.memory_mib.to_string(), "-smp", &options.smp.to_string()])
        .args(if options.icount { &["-icount", "shift=0,sleep=off"][..] } else { &[] })
        .args(["-accel", "tcg", "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    match medium {
        Medium::Direct { kernel, root_task } => command.arg("-kernel").arg(kernel).arg("-initrd").arg(root_task),
        Medium::Iso(iso) => command.args(["-boot", "d", "-cdrom"]).arg(iso),
    };
    command
}

/// Boots `medium`.
pub fn boot(medium: Medium, options: &BootOptions) -> Result<BootOutcome> {
    let step = Step::start(format!("booting in QEMU ({} CPUs, timeout {} s)", options.smp, options.timeout.as_secs()));
    let mut command = command(medium, options);
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).spawn().context("cannot start qemu-system-x86_64")?;
    let log = Arc::new(Mutex::new(String::new()));
    let stdout = child.stdout.take().context("no QEMU stdout")?;
    let reader = {
        let (log, echo) = (Arc::clone(&log), options.echo);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).trim_matches('\r').to_string();
                if echo {
                    println!("{line}");
                }
                let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        })
    };
    let status = match child.wait_timeout(options.timeout)? {
        Some(status) => status.code(),
        None => {
            child.kill()?;
            child.wait()?;
            None
        }
    };
    // The reader ends when QEMU's stdout closes.
    let _ = reader.join();
    let log = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
    let outcome = BootOutcome { status, log };
    step.finish(&outcome.verdict());
    Ok(outcome)
}
