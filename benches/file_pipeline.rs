//! The whole-pipeline throughput figure: a generated fleet file goes through
//! `source::file::run_file` (read, frame, decode, dedup, enrich, aggregate, buffer, Parquet
//! encode, atomic lake writes, checkpoints) in this process, into a fresh local lake.
//!
//! Four inputs are generated before anything is timed, from the same fleet: an NDJSON
//! `llm_events` file (every app on JSON events: inferences and feedback) and a length-prefixed
//! OTLP protobuf traces file (every app on OTLP protobuf, 50 spans per message), each once with
//! prompt and answer text (so every event is fingerprinted) and once without (what OpenTelemetry
//! GenAI instrumentations send by default).
//! Each is ingested twice into a new lake with the default flush settings; the better run is
//! reported: wall time, process CPU time (user + sys of every thread, from `/proc/self/stat`),
//! rows per second, rows per CPU-second ("per core") and input MB/s.
//!
//! `DRIFTWATCH_BENCH_EVENTS` sets the number of inference calls (default 500 000), spread at
//! about 1 000 calls/s so that OTLP batches are as full as a busy Collector's;
//! `DRIFTWATCH_BENCH_ONLY` keeps only the inputs whose label contains it (e.g. `no content`).
//! Run with `cargo bench --bench file_pipeline`.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use driftwatch_ingest::config::Config;
use driftwatch_ingest::decode::PayloadFormat;
use driftwatch_ingest::fleet::files::{FormatMix, write_fleet_files};
use driftwatch_ingest::fleet::{Fleet, WireFormat};
use driftwatch_ingest::pipeline::Shutdown;
use driftwatch_ingest::runtime::Components;
use driftwatch_ingest::source::file::run_file;
use tokio_util::sync::CancellationToken;

use support::{mib, secs, si};

/// Spans per OTLP message, as a Collector batch processor would send them.
const SPANS_PER_MESSAGE: usize = 50;
/// Runs per input; the best is reported (the first also warms the page cache and allocator).
const RUNS: usize = 2;

/// One timed ingest of one file.
#[derive(Debug, Clone, Copy)]
struct Run {
    wall: Duration,
    cpu_seconds: f64,
    /// Size of the lake the run wrote.
    lake_bytes: u64,
}

/// One input file and what it must yield.
struct Input {
    label: String,
    path: std::path::PathBuf,
    format: PayloadFormat,
    /// Lines or length-prefixed records in the file.
    messages: u64,
    /// Rows the file yields (inference events plus feedback).
    rows: u64,
    /// Inference events (spans) among them.
    inferences: u64,
    bytes: u64,
}

fn generate(fleet: &Fleet, dir: &Path, format: WireFormat) -> anyhow::Result<Input> {
    let content = if fleet.config().capture_content { "content" } else { "no content" };
    let files = write_fleet_files(fleet, dir, FormatMix::Single(format), SPANS_PER_MESSAGE, 0.0, fleet.config().seed)
        .with_context(|| format!("writing the fleet to {}", dir.display()))?;
    let (label, wanted) = match format {
        WireFormat::JsonEvents => (format!("NDJSON events, {content}"), PayloadFormat::JsonEvents),
        _ => (format!("OTLP proto spans, {content}"), PayloadFormat::OtlpTraces),
    };
    let (path, format) =
        files.files.iter().find(|(_, f)| *f == wanted).cloned().context("the fleet wrote no file of that format")?;
    let total = files.truth.total();
    // The OTLP traces file carries the inference spans; feedback went to the logs file.
    let rows = if wanted == PayloadFormat::JsonEvents { total.requests + total.feedback } else { total.requests };
    let bytes = std::fs::metadata(&path)?.len();
    // Single(JsonEvents) puts every message (feedback included) in the one NDJSON file.
    let messages =
        if wanted == PayloadFormat::JsonEvents { files.truth.messages } else { count_length_prefixed(&path)? };
    Ok(Input { label, path, format, messages, rows, inferences: total.requests, bytes })
}

/// Records in a length-prefixed (4-byte big-endian length, then payload) file.
fn count_length_prefixed(path: &Path) -> anyhow::Result<u64> {
    let data = std::fs::read(path)?;
    let mut at = 0usize;
    let mut count = 0u64;
    while at + 4 <= data.len() {
        let length = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        at += 4 + length;
        count += 1;
    }
    Ok(count)
}

async fn ingest_once(input: &Input, lake: &Path) -> anyhow::Result<Run> {
    let mut config = Config::default();
    config.lake.location = lake.display().to_string();
    config.validate()?;
    let components = Components::build(config).await?;
    let before = support::sample("self")?;
    let started = Instant::now();
    let never_stopped = Shutdown::new(CancellationToken::new(), Duration::from_secs(30));
    let report = run_file(&components, &input.path, input.format, &never_stopped).await?;
    let wall = started.elapsed();
    let after = support::sample("self")?;
    if report.messages != input.messages || report.committed_to != i64::try_from(input.bytes)? || report.interrupted {
        bail!(
            "{}: read {} of {} messages, committed to byte {} of {} (interrupted: {})",
            input.label,
            report.messages,
            input.messages,
            report.committed_to,
            input.bytes,
            report.interrupted
        );
    }
    Ok(Run { wall, cpu_seconds: after.cpu_seconds - before.cpu_seconds, lake_bytes: tree_bytes(lake)? })
}

/// Bytes of all files under `dir`: the lake's size on disk.
fn tree_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        total += if kind.is_dir() { tree_bytes(&entry.path())? } else { entry.metadata()?.len() };
    }
    Ok(total)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; this harness has no options of its own.
    let inferences = support::env_usize("DRIFTWATCH_BENCH_EVENTS", 500_000)?;
    let work = tempfile::Builder::new().prefix("driftwatch-file-bench-").tempdir()?;
    let fleet = Fleet::new(support::busy_fleet(inferences, true));
    let bare_fleet = Fleet::new(support::busy_fleet(inferences, false));
    let duration_secs = fleet.config().duration_secs;

    println!(
        "driftwatch file pipeline: {inferences} inference calls from {} apps over {duration_secs} s, default flush settings",
        fleet.apps().len()
    );
    let generating = Instant::now();
    let inputs = [
        generate(&fleet, &work.path().join("json"), WireFormat::JsonEvents)?,
        generate(&fleet, &work.path().join("otlp"), WireFormat::OtlpProto)?,
        generate(&bare_fleet, &work.path().join("json-bare"), WireFormat::JsonEvents)?,
        generate(&bare_fleet, &work.path().join("otlp-bare"), WireFormat::OtlpProto)?,
    ];
    println!("inputs generated in {} (not timed)\n", secs(generating.elapsed()));

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!(
        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>11} {:>13} {:>15} {:>10} {:>9}",
        "input", "messages", "rows", "MiB", "wall", "cpu (u+s)", "rows/s wall", "rows/cpu-s", "MB/s", "lake MiB"
    );
    // `DRIFTWATCH_BENCH_ONLY=no content` runs only the inputs whose label contains it (profiling).
    let only = std::env::var("DRIFTWATCH_BENCH_ONLY").unwrap_or_default();
    for (index, input) in inputs.iter().enumerate().filter(|(_, input)| input.label.contains(only.as_str())) {
        let mut best: Option<Run> = None;
        for run in 0..RUNS {
            let lake = work.path().join(format!("lake-{index}-{run}"));
            let result = runtime.block_on(ingest_once(input, &lake))?;
            std::fs::remove_dir_all(&lake).ok();
            if best.is_none_or(|b| result.wall < b.wall) {
                best = Some(result);
            }
        }
        let Some(best) = best else { continue };
        let rows = input.rows as f64;
        println!(
            "{:<30} {:>9} {:>9} {:>9.1} {:>9} {:>9.2} s {:>13} {:>15} {:>10.1} {:>9.1}",
            input.label,
            input.messages,
            input.rows,
            input.bytes as f64 / (1024.0 * 1024.0),
            secs(best.wall),
            best.cpu_seconds,
            si(rows / best.wall.as_secs_f64()),
            si(rows / best.cpu_seconds.max(f64::EPSILON)),
            input.bytes as f64 / 1e6 / best.wall.as_secs_f64(),
            best.lake_bytes as f64 / (1024.0 * 1024.0),
        );
        if input.format == PayloadFormat::OtlpTraces {
            println!("{:<30} spans/cpu-s: {}", "", si(input.inferences as f64 / best.cpu_seconds.max(f64::EPSILON)));
        }
    }
    let peak = support::sample("self")?.peak_rss_bytes;
    println!("\npeak RSS of the bench process (generation included): {}", mib(peak));
    Ok(())
}
