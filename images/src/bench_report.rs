//! The benchmark's results: markdown tables with each figure beside its
//! reference, the summary line, and the files under `target/bench/` (JSON of
//! every record, CSV and an SVG plot of the replication table), which the
//! README's benchmark section is regenerated from.

use crate::bench::Record;
use anyhow::{Context, Result};
use plotters::prelude::*;
use std::fmt::Write;
use std::path::Path;

/// Where the README's generated section starts and ends.
const README_START: &str = "<!-- bench:start -->";
const README_END: &str = "<!-- bench:end -->";

/// The tables and the summary line.
pub struct Report {
    /// Markdown tables.
    pub markdown: String,
    /// `bench summary: ...`.
    pub summary: String,
}

fn of<'a>(records: &'a [Record], table: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
    records.iter().filter(move |r| r.table == table)
}

/// One replication row: (N, P) with cold, first-reuse and warm figures.
struct Row {
    spaces: f64,
    pages: f64,
    /// (invocations, floor) by mode.
    modes: [(f64, f64); 3],
}

const MODES: [&str; 3] = ["cold", "first-reuse", "warm"];

/// The replication records by cell, with their fields `measured` and
/// `reference` by mode.
fn replication_rows(records: &[Record], (measured, reference): (&str, &str)) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = Vec::new();
    for r in of(records, "replication") {
        let (spaces, pages) = (r.number("n")?, r.number("p")?);
        let mode = MODES.iter().position(|m| *m == r.text("mode")).context("unknown replication mode")?;
        let figures = (r.number(measured)?, r.number(reference)?);
        match rows.iter_mut().find(|row| row.spaces == spaces && row.pages == pages) {
            Some(row) => row.modes[mode] = figures,
            None => {
                let mut modes = [(0.0, 0.0); 3];
                modes[mode] = figures;
                rows.push(Row { spaces, pages, modes });
            }
        }
    }
    Ok(rows)
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}

/// A replication cell the benchmark skipped: its frames, copies and the
/// CNodes for them would take more than the server's free memory.
struct Skipped {
    spaces: f64,
    pages: f64,
    copies: f64,
    needed: f64,
    free: f64,
}

fn skipped_cells(records: &[Record]) -> Result<Vec<Skipped>> {
    of(records, "replication-skipped")
        .map(|r| {
            Ok(Skipped {
                spaces: r.number("n")?,
                pages: r.number("p")?,
                copies: r.number("copies")?,
                needed: r.number("needed")?,
                free: r.number("free")?,
            })
        })
        .collect()
}

/// Bytes of a MiB.
const MIB: f64 = (1 << 20) as f64;
/// Bytes of one paging structure (PDPT, page directory or page table).
const STRUCTURE_BYTES: f64 = 4096.0;

fn replication_table(md: &mut String, records: &[Record]) -> Result<(f64, f64)> {
    let rows = replication_rows(records, ("invocations", "floor"))?;
    let skipped = skipped_cells(records)?;
    writeln!(md, "**Replication cost** (seL4 invocations for one vmalloc of P pages and its vfree through the purge, N spaces registered)\n")?;
    writeln!(md, "| N | P | cold | floor | cold/floor | first reuse | warm | floor | warm/floor |")?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|")?;
    let mut lines: Vec<(f64, f64, String)> = Vec::new();
    let (mut cold_max, mut warm_max) = (0.0f64, 0.0f64);
    for row in &rows {
        let [(cold, cold_floor), (first, _), (warm, warm_floor)] = row.modes;
        let (c, w) = (ratio(cold, cold_floor), ratio(warm, warm_floor));
        (cold_max, warm_max) = (cold_max.max(c), warm_max.max(w));
        let line = format!("{cold} | {cold_floor} | {c:.3} | {first} | {warm} | {warm_floor} | {w:.3}");
        lines.push((row.spaces, row.pages, line));
    }
    for cell in &skipped {
        let line = format!(
            "not measured: its {} frame copies, their CNodes and frames take more than the server's memory \
             ({:.0} MiB needed, {:.0} MiB free) | | | | | |",
            cell.copies,
            cell.needed / MIB,
            cell.free / MIB
        );
        lines.push((cell.spaces, cell.pages, line));
    }
    lines.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    for (spaces, pages, line) in lines {
        writeln!(md, "| {spaces} | {pages} | {line} |")?;
    }
    Ok((cold_max, warm_max))
}

/// The server's work against the same invocations issued raw, by cell:
/// the guest instructions of a vmalloc + vfree + purge (three requests)
/// against the server's Page Maps, Page Unmaps and CNode Copies of it at
/// their raw cost in the same boot plus three raw IPC round trips. Returns
/// the largest warm ratio.
fn work_table(md: &mut String, records: &[Record]) -> Result<f64> {
    let raw = of(records, "raw-costs").next().context("no raw-costs record")?;
    writeln!(
        md,
        "\n**Server work** (guest instructions, `-icount`, of one vmalloc + vfree + purge of P pages with N spaces \
         registered, against the same Page Maps, Page Unmaps and CNode Copies issued raw by the benchmark in the same \
         boot, {} / {} / {} instructions each at N = {}, plus three raw IPC round trips; cold also retypes its frames, \
         which the kernel zeroes, and maps its structures, warm zeroes its recycled frames: neither is in the raw \
         figure)\n",
        raw.number("page_map")?,
        raw.number("page_unmap")?,
        raw.number("cnode_copy")?,
        raw.number("n")?
    )?;
    writeln!(md, "| N | P | cold | raw | cold/raw | warm | raw | warm/raw |\n|---|---|---|---|---|---|---|---|")?;
    let mut rows = replication_rows(records, ("cycles", "raw_cycles"))?;
    rows.sort_by(|a, b| a.spaces.total_cmp(&b.spaces).then(a.pages.total_cmp(&b.pages)));
    let mut warm_max = 0.0f64;
    for row in rows {
        let [(cold, cold_raw), _, (warm, warm_raw)] = row.modes;
        warm_max = warm_max.max(ratio(warm, warm_raw));
        writeln!(
            md,
            "| {} | {} | {cold} | {cold_raw} | {:.3} | {warm} | {warm_raw} | {:.3} |",
            row.spaces,
            row.pages,
            ratio(cold, cold_raw),
            ratio(warm, warm_raw)
        )?;
    }
    Ok(warm_max)
}

/// Requests per 10^9 guest instructions of the stress workload, by the
/// CPUs its agents run on.
fn throughput_table(md: &mut String, records: &[Record]) -> Result<()> {
    let runs: Vec<&Record> = of(records, "throughput").collect();
    let agents = runs.first().context("no throughput record")?.number("agents")?;
    writeln!(
        md,
        "\n**Throughput under contention** ({agents} client agents running the stress workload, pseudo-random \
         vmalloc/vfree, vmemmap and percpu requests with their canaries, spread over the client CPUs, agent i on CPU \
         i mod CPUs, so with 4 one shares CPU 0 with the server's one thread; guest instructions of every CPU, \
         `-icount`)\n"
    )?;
    writeln!(
        md,
        "| client CPUs | requests | guest instructions | requests per 10^9 instructions |\n|---|---|---|---|"
    )?;
    for r in runs {
        writeln!(
            md,
            "| {} | {} | {} | {} |",
            r.number("cpus")?,
            r.number("requests")?,
            r.number("cycles")?,
            r.number("per_gcycle")?
        )?;
    }
    Ok(())
}

/// Server metadata and kernel memory per mapped page and per space; the
/// figures of the largest N (per space) and of N = 1 (per page).
struct MemoryFigures {
    page_metadata: f64,
    space_metadata: f64,
}

fn memory_table(md: &mut String, records: &[Record]) -> Result<MemoryFigures> {
    writeln!(md, "\n**Memory** (server metadata: bytes of its heap in use, as its allocator counts them; kernel memory: untyped the root task retyped for a space's VSpace, a PML4 and its share of ASID pools, and the server's paging structures in it, 4 KiB each)\n")?;
    writeln!(md, "| N | P | metadata per mapped page | per page and space | metadata per registered space | kernel per space: VSpace | paging structures | total |")?;
    writeln!(md, "|---|---|---|---|---|---|---|---|")?;
    let mut figures = MemoryFigures { page_metadata: f64::NAN, space_metadata: f64::NAN };
    for r in of(records, "memory") {
        let (spaces, pages) = (r.number("n")?, r.number("p")?);
        let page = r.number("page_heap_bytes")? / pages;
        let space = r.number("space_heap_bytes")? / spaces;
        let vspace = r.number("root_bytes")? / spaces;
        let structures = r.number("structures")? * STRUCTURE_BYTES / spaces;
        writeln!(
            md,
            "| {spaces} | {pages} | {page:.1} | {:.1} | {space:.0} | {vspace:.0} | {structures:.0} | {:.0} |",
            page / spaces,
            vspace + structures
        )?;
        if spaces == 1.0 {
            figures.page_metadata = page;
        }
        figures.space_metadata = space;
    }
    Ok(figures)
}

/// Builds the tables and the summary line.
pub fn report(records: &[Record]) -> Result<Report> {
    let mut md = String::new();
    let (cold_max, warm_max) = replication_table(&mut md, records)?;
    let cost = of(records, "request-cost").next().context("no request-cost record")?;
    let (noop, raw) = (cost.number("noop_cycles")?, cost.number("raw_ipc_cycles")?);
    let (noop_fast, raw_fast) = (cost.number("noop_fastpath_cycles")?, cost.number("raw_ipc_fastpath_cycles")?);
    writeln!(md, "\n**Request cost** (guest instructions per round trip, `-icount`; seL4 takes the IPC fastpath for a Call only to a server of at least the caller's priority, and for the reply only to a caller of at least the server's, so only equal priorities have both directions on it)\n")?;
    writeln!(
        md,
        "| caller | no-op request (translate, unmapped) | raw seL4 Call/ReplyRecv to the same server | ratio |\n|---|---|---|---|"
    )?;
    writeln!(md, "| above the server (255 over 200) | {noop} | {raw} | {:.3} |", ratio(noop, raw))?;
    writeln!(md, "| at the server's priority | {noop_fast} | {raw_fast} | {:.3} |", ratio(noop_fast, raw_fast))?;
    let bare = cost.number("bare_noop_fastpath_cycles")?;
    writeln!(
        md,
        "| at the server's priority, the no-op's message sent by a bare system call (the server's share alone) \
         | {bare} | {raw_fast} | {:.3} |",
        ratio(bare, raw_fast)
    )?;
    let profile = of(records, "request-profile").next().context("no request-profile record")?;
    let fpu_traps = profile.number("fpu_traps")?;
    writeln!(
        md,
        "\n**Request path** (every instruction single-stepped under QEMU's gdb stub: one no-op round trip at the \
         server's priority, and the work of one page; by function in `target/bench/request-profile.txt` and \
         `work-profile.txt`)\n"
    )?;
    let work = of(records, "work-profile").next().context("no work-profile record")?;
    writeln!(
        md,
        "| what | client | kernel | server | in all | lazy FPU switches (seL4's FPU traps) |\n|---|---|---|---|---|---|"
    )?;
    for (what, p) in [("a no-op round trip", profile), ("a warm one-page vmalloc + vfree + purge, one space", work)] {
        let side = |name: &str| p.number(name);
        let row = (side("client")?, side("kernel")?, side("server")?, side("total")?, side("fpu_traps")?);
        writeln!(md, "| {what} | {} | {} | {} | {} | {} |", row.0, row.1, row.2, row.3, row.4)?;
    }
    let large = of(records, "large-pages").next().context("no large-pages record")?;
    let (small_inv, large_inv) = (large.number("small")?, large.number("large")?);
    writeln!(md, "\n**Large pages** (invocations for a 2 MiB-aligned 64 MiB vmalloc and its vfree)\n")?;
    writeln!(
        md,
        "| 4 KiB pages | 2 MiB pages | ratio |\n|---|---|---|\n| {small_inv} | {large_inv} | {:.1} |",
        ratio(small_inv, large_inv)
    )?;
    let huge = of(records, "huge-pages").next().context("no huge-pages record")?;
    let (large_1g, huge_1g) = (huge.number("large")?, huge.number("huge")?);
    writeln!(
        md,
        "\n**1 GiB pages** (invocations for a 1 GiB vmalloc and its vfree, on 2 MiB pages and on one 1 GiB \
         page)\n"
    )?;
    writeln!(
        md,
        "| 2 MiB pages | 1 GiB page | ratio |\n|---|---|---|\n| {large_1g} | {huge_1g} | {:.1} |",
        ratio(large_1g, huge_1g)
    )?;
    writeln!(md, "\n**Registration** (the K-th space registering while the region holds R mapped pages: invocations, server metadata and kernel memory it took; the server's records of slots and copies are reserved before the first invocation and grow by doubling, so a row shows such a growth where it happens and the next rows none)\n")?;
    writeln!(
        md,
        "| K | R | invocations | floor | ratio | metadata bytes | kernel bytes: VSpace | paging structures |"
    )?;
    writeln!(md, "|---|---|---|---|---|---|---|---|")?;
    for r in of(records, "late-register") {
        let (inv, floor) = (r.number("invocations")?, r.number("floor")?);
        writeln!(
            md,
            "| {} | {} | {inv} | {floor} | {:.3} | {} | {} | {} |",
            r.number("space")?,
            r.number("mapped")?,
            ratio(inv, floor),
            r.number("heap_bytes")?,
            r.number("root_bytes")?,
            r.number("structures")? * STRUCTURE_BYTES
        )?;
    }
    let memory = memory_table(&mut md, records)?;
    let work_max = work_table(&mut md, records)?;
    writeln!(md, "\n**vmemmap** (per GiB of described memory)\n")?;
    writeln!(md, "| path | frames | invocations |\n|---|---|---|")?;
    for r in of(records, "vmemmap") {
        writeln!(md, "| {} | {} | {} |", r.text("path"), r.number("frames")?, r.number("invocations")?)?;
    }
    throughput_table(&mut md, records)?;
    let batch = of(records, "batch").next().context("no batch record")?;
    let (single, batched) = (batch.number("single_cycles")?, batch.number("batch_cycles")?);
    writeln!(
        md,
        "\n**Batched requests** ({} one-page vmallocs: guest instructions, `-icount`, and invocations)\n",
        batch.number("ops")?
    )?;
    writeln!(md, "| single requests | one batch | ratio | invocations: single | invocations: batch |")?;
    writeln!(
        md,
        "|---|---|---|---|---|\n| {single} | {batched} | {:.2} | {} | {} |",
        ratio(single, batched),
        batch.number("single_invocations")?,
        batch.number("batch_invocations")?
    )?;
    let summary = format!(
        "bench summary: warm/floor max={warm_max:.3} cold/floor max={cold_max:.3} noop/raw-ipc={:.3} \
         noop/raw-ipc-fastpath={:.3} fpu-traps/request={fpu_traps} small/large={:.1} work/raw max={work_max:.3} \
         metadata/page={:.1} metadata/space={:.0}",
        ratio(noop, raw),
        ratio(noop_fast, raw_fast),
        ratio(small_inv, large_inv),
        memory.page_metadata,
        memory.space_metadata
    );
    Ok(Report { markdown: md, summary })
}

/// Reads the records a run wrote to `results.json`.
pub fn read_records(path: &Path) -> Result<Vec<Record>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let json: Vec<serde_json::Value> = serde_json::from_str(&text)?;
    json.iter()
        .map(|r| {
            let table = r["table"].as_str().context("record without a table")?.to_string();
            let fields = serde_json::from_value(r["fields"].clone())?;
            Ok(Record { table, fields })
        })
        .collect()
}

/// Writes `target/bench/` (results.json, replication.csv, replication.svg,
/// report.md) and the README's generated section with the plot beside it.
pub fn write(root: &Path, target_bench: &Path, records: &[Record], report: &Report) -> Result<()> {
    std::fs::create_dir_all(target_bench)?;
    let json: Vec<serde_json::Value> =
        records.iter().map(|r| serde_json::json!({ "table": r.table, "fields": r.fields })).collect();
    std::fs::write(target_bench.join("results.json"), serde_json::to_string_pretty(&json)?)?;
    let rows = replication_rows(records, ("invocations", "floor"))?;
    let mut csv = csv::Writer::from_path(target_bench.join("replication.csv"))?;
    csv.write_record(["spaces", "pages", "cold", "cold_floor", "first_reuse", "warm", "warm_floor"])?;
    for row in &rows {
        let [(c, cf), (f, _), (w, wf)] = row.modes;
        csv.write_record([row.spaces, row.pages, c, cf, f, w, wf].map(|v| v.to_string()))?;
    }
    csv.flush()?;
    let plot = target_bench.join("replication.svg");
    plot_replication(&rows, &plot)?;
    std::fs::write(target_bench.join("report.md"), format!("{}\n{}\n", report.markdown, report.summary))?;
    let docs_plot = root.join("docs/bench-replication.svg");
    std::fs::create_dir_all(root.join("docs"))?;
    std::fs::copy(&plot, &docs_plot)?;
    update_readme(&root.join("README.md"), report)
}

fn plot_replication(rows: &[Row], path: &Path) -> Result<()> {
    let area = SVGBackend::new(path, (900, 560)).into_drawing_area();
    area.fill(&WHITE)?;
    let x_max = rows.iter().map(|r| r.spaces * r.pages).fold(1.0, f64::max) * 2.0;
    let y_max = rows.iter().map(|r| r.modes[0].0.max(r.modes[2].0)).fold(1.0, f64::max) * 2.0;
    let mut chart = ChartBuilder::on(&area)
        .caption("seL4 invocations per vmalloc + vfree against N x P", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0.5f64..x_max).log_scale(), (1.0f64..y_max).log_scale())?;
    chart.configure_mesh().x_desc("N spaces x P pages").y_desc("invocations").draw()?;
    let series = [(0, 0, "cold", RED), (2, 0, "warm", BLUE), (2, 1, "floor (warm)", BLACK)];
    for (mode, which, label, color) in series {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| (r.spaces * r.pages, if which == 0 { r.modes[mode].0 } else { r.modes[mode].1 }))
            .filter(|p| p.1 > 0.0)
            .collect();
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))?
            .label(label)
            .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    area.present()?;
    Ok(())
}

fn update_readme(readme: &Path, report: &Report) -> Result<()> {
    let text = std::fs::read_to_string(readme)?;
    let section = format!(
        "{README_START}\n{}\n`{}`\n\n![replication cost](docs/bench-replication.svg)\n{README_END}",
        report.markdown, report.summary
    );
    let updated = match (text.find(README_START), text.find(README_END)) {
        (Some(a), Some(b)) if a < b => format!("{}{section}{}", &text[..a], &text[b + README_END.len()..]),
        _ => format!("{text}\n## Measured figures\n{section}\n"),
    };
    std::fs::write(readme, updated)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(lines: &[&str]) -> Vec<Record> {
        lines.iter().map(|l| Record::parse(l).unwrap()).collect()
    }

    /// A skipped cell is a row that says why, among the measured rows in
    /// order of N and P; the memory figures are per page and per space;
    /// the summary keeps its fields and adds the memory figures.
    #[test]
    fn skipped_cells_and_memory_figures_are_reported() {
        let r = records(&[
            "bench late-register space=1 mapped=32 invocations=69 floor=70 heap_bytes=640 root_bytes=4096 structures=3",
            "bench replication n=2 p=1 mode=cold invocations=13 floor=12 cycles=30000 raw_cycles=20000",
            "bench replication n=2 p=1 mode=first-reuse invocations=10 floor=7 cycles=25000 raw_cycles=20000",
            "bench replication n=2 p=1 mode=warm invocations=8 floor=7 cycles=24000 raw_cycles=20000",
            "bench replication-skipped n=2 p=16 copies=300000 needed=40000000 free=20971520",
            "bench memory n=2 p=1 page_heap_bytes=96 space_heap_bytes=1280 root_bytes=8192 structures=6",
            "bench replication n=1 p=16 mode=cold invocations=32 floor=33 cycles=90000 raw_cycles=60000",
            "bench raw-costs n=1 page_map=1500 page_unmap=1200 cnode_copy=900 ipc=1800",
            "bench request-cost rounds=1 noop_cycles=3600 raw_ipc_cycles=1800 noop_fastpath_cycles=900 raw_ipc_fastpath_cycles=850 bare_noop_fastpath_cycles=870",
            "bench request-profile client=80 kernel=790 server=180 total=1050 fpu_traps=0",
            "bench work-profile client=200 kernel=9000 server=4000 total=13200 fpu_traps=0",
            "bench large-pages bytes=1 small=33936 large=97",
            "bench huge-pages bytes=1 large=1100 huge=11",
            "bench batch ops=64 single_cycles=640000 batch_cycles=320000 single_invocations=64 batch_invocations=64",
            "bench throughput cpus=1 agents=4 requests=800 cycles=400000000 per_gcycle=2000",
            "bench throughput cpus=2 agents=4 requests=800 cycles=800000000 per_gcycle=1000",
        ]);
        let report = report(&r).unwrap();
        let table: Vec<&str> =
            report.markdown.lines().filter(|l| l.starts_with("| 1 |") || l.starts_with("| 2 |")).collect();
        assert!(table[0].starts_with("| 1 | 16 | 32 |"), "{table:?}");
        assert!(table[1].starts_with("| 2 | 1 | 13 |"), "{table:?}");
        assert!(
            table[2].starts_with("| 2 | 16 | not measured: its 300000 frame copies, their CNodes and frames take more than the server's memory (38 MiB needed, 20 MiB free)"),
            "{table:?}"
        );
        assert!(
            report.markdown.contains("| 2 | 1 | 96.0 | 48.0 | 640 | 4096 | 12288 | 16384 |"),
            "{}",
            report.markdown
        );
        assert!(report.markdown.contains("| 1 | 32 | 69 | 70 | 0.986 | 640 | 4096 | 12288 |"), "{}", report.markdown);
        assert!(report.summary.starts_with(
            "bench summary: warm/floor max=1.143 cold/floor max=1.083 noop/raw-ipc=2.000 noop/raw-ipc-fastpath=1.059"
        ));
        assert!(report.summary.ends_with("metadata/space=640"), "{}", report.summary);
        assert!(report.summary.contains("noop/raw-ipc-fastpath=1.059 fpu-traps/request=0 "), "{}", report.summary);
        assert!(report.markdown.contains("| a no-op round trip | 80 | 790 | 180 | 1050 | 0 |"), "{}", report.markdown);
        assert!(report.markdown.contains("one space | 200 | 9000 | 4000 | 13200 | 0 |"), "{}", report.markdown);
        assert!(report.summary.contains("work/raw max=1.200"), "{}", report.summary);
        assert!(report.markdown.contains("| 2 | 800 | 800000000 | 1000 |"), "{}", report.markdown);
        assert!(
            report.markdown.contains("| 2 | 1 | 30000 | 20000 | 1.500 | 24000 | 20000 | 1.200 |"),
            "{}",
            report.markdown
        );
        assert!(report.markdown.contains("| 640000 | 320000 | 2.00 | 64 | 64 |"), "{}", report.markdown);
    }

    /// Records written to results.json read back as they were.
    #[test]
    fn records_read_back_from_results_json() {
        let dir = std::env::temp_dir().join(format!("bench-records-{}", std::process::id()));
        let r = records(&["bench vmemmap path=base described_gib=1 frames=4096 invocations=16424"]);
        let json: Vec<serde_json::Value> =
            r.iter().map(|r| serde_json::json!({ "table": r.table, "fields": r.fields })).collect();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("results.json"), serde_json::to_string(&json).unwrap()).unwrap();
        assert_eq!(read_records(&dir.join("results.json")).unwrap(), r);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
