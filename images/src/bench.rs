//! `images bench`: boots the benchmark root task once per number of
//! registered spaces, under `-icount shift=0,sleep=off` (guest time counts
//! executed instructions, so figures repeat), and collects its
//! `bench <table> key=value ...` lines.

use crate::kernel::KernelBuild;
use crate::profile;
use crate::programs;
use crate::qemu::{self, BootOptions, Medium};
use crate::workspace::Workspace;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Registered spaces of the replication table, one boot each.
pub const SPACE_COUNTS: [usize; 6] = [1, 4, 16, 64, 256, 1024];
/// CPUs of the throughput table's boot (the benchmark's `BENCH_SPACES=0`).
const THROUGHPUT_CPUS: u32 = 4;

/// One measurement line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The table it belongs to.
    pub table: String,
    /// Its fields.
    pub fields: BTreeMap<String, String>,
}

impl Record {
    /// Parses `bench <table> key=value ...`; `None` for other lines.
    pub fn parse(line: &str) -> Option<Record> {
        let mut words = line.strip_prefix("bench ")?.split_whitespace();
        let table = words.next()?.to_string();
        let fields =
            words.map(|w| w.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect::<Option<_>>()?;
        Some(Record { table, fields })
    }

    /// Field `key` as a number.
    pub fn number(&self, key: &str) -> Result<f64> {
        let value = self.fields.get(key).with_context(|| format!("{} record without {key}", self.table))?;
        value.parse().with_context(|| format!("{key}={value} is not a number"))
    }

    /// Field `key` as text ("" when absent).
    pub fn text(&self, key: &str) -> &str {
        self.fields.get(key).map(String::as_str).unwrap_or("")
    }
}

/// Builds and boots the benchmark for every space count, then once more
/// under gdb for the profiles of a no-op and of a one-page vmalloc
/// (`crate::profile`, their function listings in
/// `target/bench/request-profile.txt` and `work-profile.txt`); returns all
/// records.
/// Prints each boot's wall-clock time on stderr.
pub fn run(ws: &Workspace, kernel_build: &KernelBuild) -> Result<Vec<Record>> {
    let kernel = &kernel_build.image;
    let options =
        BootOptions { smp: 1, timeout: Duration::from_secs(1800), echo: false, icount: true, memory_mib: 6144 };
    let mut records = Vec::new();
    let started = Instant::now();
    for spaces in SPACE_COUNTS.into_iter().chain([0]) {
        let root = programs::build_bench(ws, spaces)?;
        let boot = Instant::now();
        let options = BootOptions { smp: if spaces == 0 { THROUGHPUT_CPUS } else { options.smp }, ..options.clone() };
        let outcome = qemu::boot(Medium::Direct { kernel, root_task: &root }, &options)?;
        if !outcome.success() || !outcome.log.lines().any(|l| l == "bench done") {
            bail!("benchmark boot with {spaces} spaces failed: {}\n{}", outcome.verdict(), outcome.log);
        }
        eprintln!("bench: {spaces} spaces: boot took {:.0?}", boot.elapsed());
        records.extend(outcome.log.lines().filter_map(Record::parse));
    }
    let bench_dir = ws.metadata.target_directory.join("bench").into_std_path_buf();
    std::fs::create_dir_all(&bench_dir).with_context(|| format!("cannot create {}", bench_dir.display()))?;
    let profiled = Instant::now();
    let profiles = profile::profiles(ws, kernel_build, &bench_dir)?;
    eprintln!("bench: the profiles took {:.0?} ({}/*-profile.txt)", profiled.elapsed(), bench_dir.display());
    records.push(profiles.noop.record("request-profile"));
    records.push(profiles.work.record("work-profile"));
    eprintln!("bench: {} boots took {:.0?}", SPACE_COUNTS.len() + 2, started.elapsed());
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_other_lines_do_not() {
        let r = Record::parse("bench replication n=4 p=16 mode=cold invocations=200 floor=150").unwrap();
        assert_eq!(r.table, "replication");
        assert_eq!(r.number("invocations").unwrap(), 200.0);
        assert_eq!(r.text("mode"), "cold");
        assert!(r.number("missing").is_err());
        assert_eq!(Record::parse("bench done"), Some(Record { table: "done".into(), fields: BTreeMap::new() }));
        assert_eq!(Record::parse("scenario x: ok"), None);
        assert_eq!(Record::parse("bench t novalue"), None);
    }
}
