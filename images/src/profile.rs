//! Where the instructions of a request go: the benchmark root task
//! (`bench-1`) boots under QEMU's gdb stub, and gdb single-steps every
//! instruction of every thread and of the kernel, printing each one's
//! address and page-table root, twice: a few round trips of the no-op
//! request (`MemClient::translate`) once the benchmark calls the server at
//! the server's priority (the request-cost table's second loop, after the
//! first `TCB_SetPriority` the benchmark makes), and a warm one-page
//! vmalloc + vfree + purge (`tables::profiled_work`, up to
//! `tables::profiled_work_end`). One round trip of the no-op (from the
//! client's entry into `translate` to the next), and the work, are split by
//! side (client: the root task's page-table root; kernel: the kernel's
//! addresses; server: the other) and by function (the ELF symbols of each
//! side), and seL4's lazy FPU switches are counted: the entries into the
//! kernel's `handleFPUFault`, one each time a thread ran an FPU
//! instruction while another's FPU state was loaded.

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

/// Instructions single-stepped of the no-op: more than three round trips.
const NOOP_STEPS: u32 = 4000;
/// Instructions single-stepped of the work: more than all of it.
const WORK_STEPS: u32 = 30000;
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

/// Reads gdb's `<tag> <pc> <cr3>` lines (hexadecimal) of the trace
/// `tag`; other lines are gdb's own or another trace's.
pub fn parse_trace(output: &str, tag: &str) -> Vec<Step> {
    let hex = |w: &str| u64::from_str_radix(w, 16).ok();
    output
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == tag).then_some(())?;
            Some(Step { pc: hex(words.next()?)?, root: hex(words.next()?)? })
        })
        .collect()
}

/// `trace` up to its first step at `end` (`None` if it never gets there).
pub fn until(trace: &[Step], end: u64) -> Option<&[Step]> {
    trace.get(..trace.iter().position(|s| s.pc == end)?)
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

    /// The `bench <table>` record of this profile: instructions per side,
    /// in all, and the FPU traps.
    pub fn record(&self, table: &str) -> Record {
        let mut fields: BTreeMap<String, String> =
            self.sides.iter().map(|(side, n)| (side.name().to_owned(), n.to_string())).collect();
        fields.insert("total".into(), self.total().to_string());
        fields.insert("fpu_traps".into(), self.fpu_traps.to_string());
        Record { table: table.into(), fields }
    }

    /// The functions by instructions, most first: `count side name` lines.
    pub fn listing(&self) -> String {
        let mut rows: Vec<_> = self.functions.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        rows.iter().map(|((side, name), n)| format!("{n:6} {:6} {name}\n", side.name())).collect()
    }
}

/// Where gdb stops and steps: the kernel's `decodeSetPriority`, the
/// client's `translate` and `profiled_work`.
struct Stops {
    set_priority: u64,
    translate: u64,
    work: u64,
}

/// The gdb commands that trace the no-op (`noop` lines): stop at the
/// benchmark's first `TCB_SetPriority`, then at its `WARM_CALLS`-th next
/// no-op, then step; and the work (`work` lines): stop at it, then step.
fn gdb_script(port: u16, stops: &Stops) -> String {
    let step = |tag: &str, steps: u32| {
        format!("set $i = 0\nwhile $i < {steps}\nprintf \"{tag} %lx %lx\\n\", $pc, $cr3\nstepi\nset $i = $i + 1\nend\n")
    };
    format!(
        "set pagination off\nset confirm off\ntarget remote 127.0.0.1:{port}\n\
         hbreak *{:#x}\ncontinue\ndelete\nhbreak *{:#x}\nignore 2 {WARM_CALLS}\ncontinue\ndelete\n{}\
         hbreak *{:#x}\ncontinue\ndelete\n{}kill\nquit\n",
        stops.set_priority,
        stops.translate,
        step("noop", NOOP_STEPS),
        stops.work,
        step("work", WORK_STEPS)
    )
}

/// The two profiles of one traced boot.
#[derive(Debug)]
pub struct Profiles {
    /// One no-op round trip.
    pub noop: Profile,
    /// The warm one-page vmalloc + vfree + purge.
    pub work: Profile,
}

/// Boots the benchmark under gdb and profiles one round trip of its no-op
/// request at the server's priority and its profiled work; writes their
/// function listings to `request-profile.txt` and `work-profile.txt` in
/// `folder` and returns the profiles.
pub fn profiles(ws: &Workspace, kernel: &KernelBuild, folder: &Path) -> Result<Profiles> {
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
    let client = |name: &str| {
        functions[&Side::Client]
            .start(name)
            .with_context(|| format!("the benchmark has no {name} of its own (inlined?)"))
    };
    let stops = Stops {
        set_priority: functions[&Side::Kernel].start("decodeSetPriority").context("no decodeSetPriority in seL4")?,
        translate: client("client_lib::client::MemClient::translate")?,
        work: client("bench::tables::profiled_work")?,
    };
    let work_end = client("bench::tables::profiled_work_end")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let options =
        BootOptions { smp: 1, timeout: Duration::from_secs(600), echo: false, icount: true, memory_mib: 6144 };
    let mut qemu = qemu::command(Medium::Direct { kernel: &kernel.image, root_task: &root }, &options);
    qemu.args(["-S", "-gdb", &format!("tcp:127.0.0.1:{port}")]).stdout(Stdio::null()).stdin(Stdio::null());
    let mut guest = qemu.spawn().context("cannot start qemu-system-x86_64")?;
    let script = std::env::temp_dir().join(format!("memserver-profile-{}.gdb", std::process::id()));
    std::fs::write(&script, gdb_script(port, &stops))?;
    // gdb connects once QEMU listens.
    std::thread::sleep(Duration::from_millis(500));
    let traced = Command::new("gdb").args(["-q", "-nx", "-batch", "-x"]).arg(&script).output();
    let _ = guest.kill();
    let _ = guest.wait();
    let _ = std::fs::remove_file(&script);
    let traced = traced.context("cannot run gdb")?;
    let output = String::from_utf8_lossy(&traced.stdout);
    let (noop, work) = (parse_trace(&output, "noop"), parse_trace(&output, "work"));
    let why = || String::from_utf8_lossy(&traced.stderr).into_owned();
    let Some(trip) = round_trip(&noop) else {
        bail!("gdb traced {} instructions of the no-op and no whole round trip: {}", noop.len(), why());
    };
    let Some(worked) = until(&work, work_end) else {
        bail!("gdb traced {} instructions of the work and not its end: {}", work.len(), why());
    };
    let profiles = Profiles {
        noop: Profile::of(trip, trip[0].root, &functions),
        work: Profile::of(worked, worked.first().map_or(0, |s| s.root), &functions),
    };
    for (name, profile) in [("request-profile.txt", &profiles.noop), ("work-profile.txt", &profiles.work)] {
        let listing = folder.join(name);
        std::fs::File::create(&listing)
            .and_then(|mut f| f.write_all(profile.listing().as_bytes()))
            .with_context(|| format!("cannot write {}", listing.display()))?;
    }
    Ok(profiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn functions(entries: &[(u64, u64, &str)]) -> Functions {
        Functions { by_start: entries.iter().map(|&(s, e, n)| (s, (e, n.to_owned()))).collect() }
    }

    #[test]
    fn gdb_lines_become_steps_and_others_are_skipped() {
        let out = "0x000000000020dc69 in ?? ()\nnoop 20dc69 3a000\nnoop ffffffff8072aff0 3a000\nnoop zz 1\nwork 1 2\n";
        let steps = parse_trace(out, "noop");
        assert_eq!(
            steps,
            vec![Step { pc: 0x20dc69, root: 0x3a000 }, Step { pc: 0xffff_ffff_8072_aff0, root: 0x3a000 }]
        );
        assert_eq!(parse_trace(out, "work"), vec![Step { pc: 1, root: 2 }]);
        assert_eq!(until(&steps, 0xffff_ffff_8072_aff0), Some(&steps[..1]));
        assert_eq!(until(&steps, 7), None);
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
        let r = p.record("request-profile");
        assert_eq!(r.table, "request-profile");
        assert_eq!((r.text("total"), r.text("fpu_traps"), r.text("server")), ("6", "1", "2"));
        assert!(p.listing().starts_with("     2 client translate\n"));
    }
}
