//! `camgate-bench`: runs the benchmark sections (camgate against one ffmpeg per camera) in
//! order, writes `OUT/report.md` and `OUT/results.json`, and with `--write-report` replaces
//! the generated region of `bench/REPORT.md`. How it works: bench/README.md.

mod cost;
mod ctx;
mod fanout;
mod glass;
mod procs;
mod procstat;
mod record;
mod report;
mod restream;
mod snapshot;
mod startup;
mod stats;
mod transcode;
mod webrtc;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::json;

use crate::ctx::Ctx;
use crate::report::{Machine, Section};

/// Every section, in the order they run. A section is a module with
/// `pub async fn run(ctx: &Ctx) -> anyhow::Result<Section>`, listed here and in
/// [`run_section`].
const SECTIONS: &[&str] = &[
    "cost",
    "startup",
    "fanout",
    "webrtc",
    "glass",
    "record",
    "snapshot",
    "transcode",
    "restream",
];

#[derive(Debug, Parser)]
#[command(
    name = "camgate-bench",
    about = "Benchmarks camgate against one ffmpeg process per camera on this machine",
    long_about = "Benchmarks camgate against one ffmpeg process per camera on this machine. \
        Writes OUT/report.md and OUT/results.json; --write-report also replaces the generated \
        part of bench/REPORT.md. Exits non-zero if any section cannot produce its figures."
)]
struct Args {
    /// Short windows and small N (about 6 minutes in all), for CI: keeps the harness working,
    /// its figures are not meaningful.
    #[arg(long)]
    quick: bool,
    /// Comma-separated sections to run (default: all, in order).
    #[arg(long, value_delimiter = ',', value_name = "SECTIONS")]
    only: Vec<String>,
    /// Directory for report.md, results.json and the processes' logs.
    #[arg(long, default_value = "target/bench", value_name = "DIR")]
    out: PathBuf,
    /// Also replace the generated region of bench/REPORT.md with this run's tables.
    #[arg(long)]
    write_report: bool,
    /// The camgate binary to benchmark (default: the one next to camgate-bench).
    #[arg(long, value_name = "PATH")]
    camgate: Option<PathBuf>,
}

/// Runs one section by id.
async fn run_section(id: &str, ctx: &Ctx) -> Result<Section> {
    match id {
        "cost" => cost::run(ctx).await,
        "startup" => startup::run(ctx).await,
        "fanout" => fanout::run(ctx).await,
        "webrtc" => webrtc::run(ctx).await,
        // The fanout, latency and glass sections are added here by their owners.
        "glass" => glass::run(ctx).await,
        "record" => record::run(ctx).await,
        "snapshot" => snapshot::run(ctx).await,
        "transcode" => transcode::run(ctx).await,
        "restream" => restream::run(ctx).await,
        other => anyhow::bail!("unknown section {other:?}"),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let selected: Vec<String> = if args.only.is_empty() {
        SECTIONS.iter().map(|s| s.to_string()).collect()
    } else {
        for s in &args.only {
            if !SECTIONS.contains(&s.as_str()) {
                anyhow::bail!("unknown section {s:?}; known: {}", SECTIONS.join(","));
            }
        }
        // Run in the canonical order whatever order --only names them in.
        SECTIONS
            .iter()
            .filter(|s| args.only.iter().any(|o| o == *s))
            .map(|s| s.to_string())
            .collect()
    };
    procs::raise_nofile_limit();
    let camgate = match &args.camgate {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .context("cannot find camgate-bench's own path")?
            .with_file_name("camgate"),
    };
    anyhow::ensure!(
        camgate.is_file(),
        "camgate binary {} not found (build it, or pass --camgate PATH)",
        camgate.display()
    );
    std::fs::create_dir_all(args.out.join("logs"))
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run(args, selected, camgate))
}

async fn run(args: Args, selected: Vec<String>, camgate: PathBuf) -> Result<()> {
    let ctx = Ctx::new(args.quick, args.out.clone(), camgate)?;
    let machine = Machine::describe();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let date = report::now_utc();
    eprintln!(
        "camgate-bench: sections {selected:?}, out {}",
        ctx.out.display()
    );
    let mut sections = Vec::new();
    let mut failures = Vec::new();
    for id in &selected {
        let started = Instant::now();
        eprintln!("== section {id}");
        match run_section(id, &ctx).await {
            Ok(section) => {
                eprintln!("== section {id} done in {:.0?}", started.elapsed());
                sections.push(section);
            }
            Err(e) => {
                eprintln!("== section {id} FAILED: {e:#}");
                failures.push((id.clone(), format!("{e:#}")));
            }
        }
    }
    let markdown = report::render(&machine, &date, &command, args.quick, &sections, &failures);
    let results = json!({
        "date": date,
        "command": command,
        "quick": args.quick,
        "machine": machine.to_json(),
        "sections": sections.iter().map(|s| (s.id.clone(), s.json.clone())).collect::<serde_json::Map<_, _>>(),
        "failures": failures.iter().map(|(id, e)| json!({"section": id, "error": e})).collect::<Vec<_>>(),
    });
    let report_md = ctx.out.join("report.md");
    std::fs::write(&report_md, &markdown)
        .with_context(|| format!("cannot write {}", report_md.display()))?;
    let results_json = ctx.out.join("results.json");
    std::fs::write(&results_json, serde_json::to_string_pretty(&results)?)
        .with_context(|| format!("cannot write {}", results_json.display()))?;
    println!("{markdown}");
    eprintln!(
        "camgate-bench: wrote {} and {}",
        report_md.display(),
        results_json.display()
    );
    if args.write_report {
        let path = ctx.root.join("bench/REPORT.md");
        let doc = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        std::fs::write(&path, report::replace_generated(&doc, &markdown))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("camgate-bench: updated {}", path.display());
    }
    if !failures.is_empty() {
        anyhow::bail!(
            "{} section(s) failed: {}",
            failures.len(),
            failures
                .iter()
                .map(|(id, _)| id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}
