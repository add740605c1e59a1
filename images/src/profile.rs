//! Where a no-op request's instructions go: the benchmark root task
//! (`bench-1`) boots under QEMU's gdb stub, runs until it calls the
//! server at the server's priority (the request-cost table's second
//! loop: the first `TCB_SetPriority` the benchmark makes), and gdb
//! single-steps a few round trips of its no-op request
//! (`MemClient::translate`), every instruction of every thread and of the
//! kernel, printing each one's address and page-table root. One round
//! trip (from the client's entry into `translate` to the next) is then
//! split by side (client: the root task's page-table root; kernel: the
//! kernel's addresses; server: the other) and by function (the ELF
//! symbols of each side), and seL4's lazy FPU switches are counted: the
//! entries into the kernel's `handleFPUFault`, one each time a thread ran
//! an FPU instruction while another's FPU state was loaded.

use crate::bench::Record;
use crate::host_deps;
use crate::kernel::KernelBuild;
use crate::panic_sites::demangle;
use crate::programs;
use crate::qemu::{self, BootOptions, Medium};
use crate::workspace::Workspace;
use anyhow::{bail, Context, Result};
use elf::endian::AnyEndian;
use elf::ElfBytes;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Instructions single-stepped: more than three round trips.
const STEPS: u32 = 4000;
/// Calls of the no-op let go by before tracing (the loop warmed).
const WARM_CALLS: u32 = 20;
/// Where the kernel's addresses start (the upper half).
const KERNEL_BASE: u64 = 0xffff_8000_0000_0000;
/// The kernel's function for a thread's first FPU instruction while
/// another thread's FPU state is loaded.
const FPU_TRAP: &str = "handleFPUFault";

/// Which program an instruction belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    /// The calling program (the benchmark root task).
    Client,
    /// seL4.
    Kernel,
    /// The memory server.
    Server,
}

impl Side {
    /// The side's name in records and tables.
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Kernel => "kernel",
            Side::Server => "server",
        }
    }
}

/// One traced instruction: its address and the page-table root (CR3) it
/// ran under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The instruction's address.
    pub pc: u64,
    /// CR3 when it ran.
    pub root: u64,
}

/// Reads gdb's `trace <pc> <cr3>` lines (hexadecimal); other lines are
/// gdb's own.
pub fn parse_trace(output: &str) -> Vec<Step> {
    let hex = |w: &str| u64::from_str_radix(w, 16).ok();
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("trace ")?.split_whitespace();
            Some(Step { pc: hex(words.next()?)?, root: hex(words.next()?)? })
        })
        .collect()
}

/// The shortest stretch of `trace` from one occurrence of its first step
/// to the next (one round trip: an interrupt makes a stretch longer), if
/// the first step recurs.
pub fn round_trip(trace: &[Step]) -> Option<&[Step]> {
    let first = *trace.first()?;
    let starts: Vec<usize> = trace.iter().enumerate().filter(|(_, s)| **s == first).map(|(i, _)| i).collect();
    starts.windows(2).min_by_key(|w| w[1] - w[0]).and_then(|w| trace.get(w[0]..w[1]))
}

/// A program's functions: start address, end address and name.
#[derive(Debug, Default)]
pub struct Functions {
    by_start: BTreeMap<u64, (u64, String)>,
}

impl Functions {
    /// The functions of the ELF file `elf` (its sized function symbols).
    pub fn read(elf: &Path) -> Result<Functions> {
        let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
        let file = ElfBytes::<AnyEndian>::minimal_parse(&data).context("not an ELF file")?;
        let (table, strings) =
            file.symbol_table()?.with_context(|| format!("{} has no symbol table", elf.display()))?;
        let mut by_start = BTreeMap::new();
        for symbol in table.iter().filter(|s| s.st_symtype() == elf::abi::STT_FUNC && s.st_size > 0) {
            let name = demangle(strings.get(symbol.st_name as usize)?);
            by_start.insert(symbol.st_value, (symbol.st_value + symbol.st_size, name));
        }
        Ok(Functions { by_start })
    }

    /// The name of the function holding `pc` ("?" for none).
    pub fn name(&self, pc: u64) -> &str {
        match self.by_start.range(..=pc).next_back() {
            Some((_, (end, name))) if pc < *end => name,
            _ => "?",
        }
    }

    /// The start of the function named `name`.
    pub fn start(&self, name: &str) -> Option<u64> {
        self.by_start.iter().find(|(_, (_, n))| n == name).map(|(start, _)| *start)
    }
}

/// One round trip's instructions: per side, per function, and the lazy
/// FPU switches in it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// Instructions per side.
    pub sides: BTreeMap<Side, u64>,
    /// Instructions per side and function.
    pub functions: BTreeMap<(Side, String), u64>,
    /// Entries into the kernel's FPU trap handler.
    pub fpu_traps: u64,
}

impl Profile {
    /// The profile of `round_trip`, whose client runs under the page-table
    /// root `client_root`, with each side's functions.
    pub fn of(round_trip: &[Step], client_root: u64, functions: &BTreeMap<Side, Functions>) -> Profile {
        let fpu_trap = functions.get(&Side::Kernel).and_then(|f| f.start(FPU_TRAP));
        let mut profile = Profile::default();
        for step in round_trip {
            let side = match step {
                Step { pc, .. } if *pc >= KERNEL_BASE => Side::Kernel,
                Step { root, .. } if *root == client_root => Side::Client,
                _ => Side::Server,
            };
            *profile.sides.entry(side).or_default() += 1;
            let name = functions.get(&side).map_or("?", |f| f.name(step.pc));
            *profile.functions.entry((side, name.to_owned())).or_default() += 1;
            profile.fpu_traps += u64::from(Some(step.pc) == fpu_trap);
        }
        profile
    }

    /// All instructions of the round trip.
    pub fn total(&self) -> u64 {
        self.sides.values().sum()
    }

    /// The `bench request-profile` record of this profile.
    pub fn record(&self) -> Record {
        let mut fields: BTreeMap<String, String> =
            self.sides.iter().map(|(side, n)| (side.name().to_owned(), n.to_string())).collect();
        fields.insert("round_trip".into(), self.total().to_string());
        fields.insert("fpu_traps".into(), self.fpu_traps.to_string());
        Record { table: "request-profile".into(), fields }
    }

    /// The functions by instructions, most first: `count side name` lines.
    pub fn listing(&self) -> String {
        let mut rows: Vec<_> = self.functions.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        rows.iter().map(|((side, name), n)| format!("{n:6} {:6} {name}\n", side.name())).collect()
    }
}

/// The gdb commands that trace the no-op: stop at the benchmark's first
/// `TCB_SetPriority` (the kernel's `decodeSetPriority` at
/// `set_priority`), then at its `WARM_CALLS`-th next no-op (`translate`),
/// then step.
fn gdb_script(port: u16, set_priority: u64, translate: u64) -> String {
    format!(
        "set pagination off\nset confirm off\ntarget remote 127.0.0.1:{port}\n\
         hbreak *{set_priority:#x}\ncontinue\ndelete\n\
         hbreak *{translate:#x}\nignore 2 {WARM_CALLS}\ncontinue\ndelete\n\
         set $i = 0\nwhile $i < {STEPS}\nprintf \"trace %lx %lx\\n\", $pc, $cr3\nstepi\nset $i = $i + 1\nend\n\
         kill\nquit\n"
    )
}

/// Boots the benchmark under gdb and profiles one round trip of its no-op
/// request at the server's priority; writes the function listing to
/// `listing` and returns the profile.
pub fn noop(ws: &Workspace, kernel: &KernelBuild, listing: &Path) -> Result<Profile> {
    host_deps::ensure_debian_packages(host_deps::PROFILE)?;
    let root = programs::build_bench(ws, 1)?;
    let server = programs::build_memserver(ws)?;
    let functions: BTreeMap<Side, Functions> = [
        (Side::Client, Functions::read(&root)?),
        (Side::Kernel, Functions::read(&kernel.build_dir.join("kernel.elf"))?),
        (Side::Server, Functions::read(&server)?),
    ]
    .into_iter()
    .collect();
    let set_priority = functions[&Side::Kernel].start("decodeSetPriority").context("no decodeSetPriority in seL4")?;
    let translate = functions[&Side::Client]
        .start("client_lib::client::MemClient::translate")
        .context("the benchmark has no MemClient::translate of its own (inlined?)")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let options =
        BootOptions { smp: 1, timeout: Duration::from_secs(600), echo: false, icount: true, memory_mib: 6144 };
    let mut qemu = qemu::command(Medium::Direct { kernel: &kernel.image, root_task: &root }, &options);
    qemu.args(["-S", "-gdb", &format!("tcp:127.0.0.1:{port}")]).stdout(Stdio::null()).stdin(Stdio::null());
    let mut guest = qemu.spawn().context("cannot start qemu-system-x86_64")?;
    let script = std::env::temp_dir().join(format!("memserver-profile-{}.gdb", std::process::id()));
    std::fs::write(&script, gdb_script(port, set_priority, translate))?;
    // gdb connects once QEMU listens.
    std::thread::sleep(Duration::from_millis(500));
    let traced = Command::new("gdb").args(["-q", "-nx", "-batch", "-x"]).arg(&script).output();
    let _ = guest.kill();
    let _ = guest.wait();
    let _ = std::fs::remove_file(&script);
    let traced = traced.context("cannot run gdb")?;
    let trace = parse_trace(&String::from_utf8_lossy(&traced.stdout));
    let Some(trip) = round_trip(&trace) else {
        bail!(
            "gdb traced {} instructions and no whole round trip: {}",
            trace.len(),
            String::from_utf8_lossy(&traced.stderr)
        );
    };
    let profile = Profile::of(trip, trip[0].root, &functions);
    std::fs::File::create(listing)
        .and_then(|mut f| f.write_all(profile.listing().as_bytes()))
        .with_context(|| format!("cannot write {}", listing.display()))?;
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn functions(entries: &[(u64, u64, &str)]) -> Functions {
        Functions { by_start: entries.iter().map(|&(s, e, n)| (s, (e, n.to_owned()))).collect() }
    }

    #[test]
    fn gdb_lines_become_steps_and_others_are_skipped() {
        let out = "0x000000000020dc69 in ?? ()\ntrace 20dc69 3a000\ntrace ffffffff8072aff0 3a000\ntrace zz 1\n";
        let steps = parse_trace(out);
        assert_eq!(
            steps,
            vec![Step { pc: 0x20dc69, root: 0x3a000 }, Step { pc: 0xffff_ffff_8072_aff0, root: 0x3a000 }]
        );
    }

    #[test]
    fn the_shortest_stretch_between_recurrences_is_the_round_trip() {
        let s = |pc| Step { pc, root: 1 };
        let trace = [s(1), s(2), s(3), s(1), s(2), s(1), s(9), s(9), s(2), s(1)];
        assert_eq!(round_trip(&trace), Some(&trace[3..5]));
        assert_eq!(round_trip(&trace[..3]), None, "no recurrence");
    }

    #[test]
    fn steps_are_split_by_side_and_function_and_fpu_traps_counted() {
        let map: BTreeMap<Side, Functions> = [
            (Side::Client, functions(&[(0x1000, 0x1100, "translate")])),
            (Side::Kernel, functions(&[(KERNEL_BASE, KERNEL_BASE + 0x10, FPU_TRAP)])),
            (Side::Server, functions(&[(0x1000, 0x1200, "serve")])),
        ]
        .into_iter()
        .collect();
        let trip = [
            Step { pc: 0x1000, root: 7 },
            Step { pc: 0x1004, root: 7 },
            Step { pc: KERNEL_BASE, root: 7 },
            Step { pc: KERNEL_BASE + 4, root: 7 },
            Step { pc: 0x1000, root: 8 },
            Step { pc: 0x5000, root: 8 },
        ];
        let p = Profile::of(&trip, 7, &map);
        assert_eq!(p.sides, [(Side::Client, 2), (Side::Kernel, 2), (Side::Server, 2)].into_iter().collect());
        assert_eq!(p.fpu_traps, 1, "one entry into the handler");
        assert_eq!(p.functions[&(Side::Server, "serve".to_owned())], 1);
        assert_eq!(p.functions[&(Side::Server, "?".to_owned())], 1);
        assert_eq!(p.total(), 6);
        let r = p.record();
        assert_eq!((r.text("round_trip"), r.text("fpu_traps"), r.text("server")), ("6", "1", "2"));
        assert!(p.listing().starts_with("     2 client translate\n"));
    }
}
