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

fn replication_rows(records: &[Record]) -> Result<Vec<Row>> {
    let mut rows: Vec<Row> = Vec::new();
    for r in of(records, "replication") {
        let (spaces, pages) = (r.number("n")?, r.number("p")?);
        let mode = MODES.iter().position(|m| *m == r.text("mode")).context("unknown replication mode")?;
        let figures = (r.number("invocations")?, r.number("floor")?);
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

/// Builds the tables and the summary line.
pub fn report(records: &[Record]) -> Result<Report> {
    let mut md = String::new();
    let rows = replication_rows(records)?;
    writeln!(md, "**Replication cost** (seL4 invocations for one vmalloc of P pages and its vfree through the purge, N spaces registered)\n")?;
    writeln!(md, "| N | P | cold | floor | cold/floor | first reuse | warm | floor | warm/floor |")?;
    writeln!(md, "|---|---|---|---|---|---|---|---|---|")?;
    let (mut cold_max, mut warm_max) = (0.0f64, 0.0f64);
    for row in &rows {
        let [(cold, cold_floor), (first, _), (warm, warm_floor)] = row.modes;
        let (c, w) = (ratio(cold, cold_floor), ratio(warm, warm_floor));
        (cold_max, warm_max) = (cold_max.max(c), warm_max.max(w));
        writeln!(
            md,
            "| {} | {} | {cold} | {cold_floor} | {c:.3} | {first} | {warm} | {warm_floor} | {w:.3} |",
            row.spaces, row.pages
        )?;
    }
    let cost = of(records, "request-cost").next().context("no request-cost record")?;
    let (noop, raw) = (cost.number("noop_cycles")?, cost.number("raw_ipc_cycles")?);
    writeln!(md, "\n**Request cost** (guest instructions per round trip, `-icount`)\n")?;
    writeln!(
        md,
        "| no-op request (translate, unmapped) | raw seL4 Call/ReplyRecv to the same server | ratio |\n|---|---|---|"
    )?;
    writeln!(md, "| {noop} | {raw} | {:.3} |", ratio(noop, raw))?;
    let large = of(records, "large-pages").next().context("no large-pages record")?;
    let (small_inv, large_inv) = (large.number("small")?, large.number("large")?);
    writeln!(md, "\n**Large pages** (invocations for a 2 MiB-aligned 64 MiB vmalloc and its vfree)\n")?;
    writeln!(
        md,
        "| 4 KiB pages | 2 MiB pages | ratio |\n|---|---|---|\n| {small_inv} | {large_inv} | {:.1} |",
        ratio(small_inv, large_inv)
    )?;
    writeln!(md, "\n**Late registration** (invocations to register one more space)\n")?;
    writeln!(md, "| pages mapped in the region | invocations | floor | ratio |\n|---|---|---|---|")?;
    for r in of(records, "late-register") {
        let (inv, floor) = (r.number("invocations")?, r.number("floor")?);
        writeln!(md, "| {} | {inv} | {floor} | {:.3} |", r.number("mapped")?, ratio(inv, floor))?;
    }
    writeln!(md, "\n**vmemmap** (per GiB of described memory)\n")?;
    writeln!(md, "| path | frames | invocations |\n|---|---|---|")?;
    for r in of(records, "vmemmap") {
        writeln!(md, "| {} | {} | {} |", r.text("path"), r.number("frames")?, r.number("invocations")?)?;
    }
    let summary = format!(
        "bench summary: warm/floor max={warm_max:.3} cold/floor max={cold_max:.3} noop/raw-ipc={:.3} small/large={:.1}",
        ratio(noop, raw),
        ratio(small_inv, large_inv)
    );
    Ok(Report { markdown: md, summary })
}

/// Writes `target/bench/` (results.json, replication.csv, replication.svg,
/// report.md) and the README's generated section with the plot beside it.
pub fn write(root: &Path, target_bench: &Path, records: &[Record], report: &Report) -> Result<()> {
    std::fs::create_dir_all(target_bench)?;
    let json: Vec<serde_json::Value> =
        records.iter().map(|r| serde_json::json!({ "table": r.table, "fields": r.fields })).collect();
    std::fs::write(target_bench.join("results.json"), serde_json::to_string_pretty(&json)?)?;
    let rows = replication_rows(records)?;
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
