//! `driftwatch demo`: the whole pipeline on an embedded default, no broker needed.
//!
//! 1. Generate a reproducible fleet (seeded): apps, models, prompt versions, errors, streaming,
//!    feedback with hallucination flags, golden cases, and ~1% malformed input.
//! 2. Write it as the wire formats real producers use: OTLP/JSON lines (half the apps, as an OTel
//!    Collector file exporter writes them) and NDJSON events (the other half).
//! 3. Ingest those files through the real pipeline into a fresh lake.
//! 4. Read the lake back with DataFusion and print the per-app summary, checked against the
//!    generator's truth.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use driftwatch_analyze::{LakeSession, app_summary, lake_totals, render_summary_table};
use driftwatch_ingest::config::{AppConfig, Config};
use driftwatch_ingest::decode::PayloadFormat;
use driftwatch_ingest::fleet::{Encoder, Fleet, FleetConfig, FleetRecord, Stream, Truth, WireFormat, WireMessage};
use driftwatch_ingest::runtime::Components;
use driftwatch_ingest::source::file;
use tokio_util::sync::CancellationToken;

/// Marks a folder the demo created, so it only ever deletes its own output.
const MARKER: &str = ".driftwatch-demo";

/// `driftwatch demo` flags.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's input files and lake; recreated on each run.
    #[arg(long, env = "DRIFTWATCH_DEMO_DIR", default_value = "./driftwatch-demo")]
    pub dir: PathBuf,
    /// Seed of the synthetic fleet: the same seed gives the same fleet.
    #[arg(long, env = "DRIFTWATCH_DEMO_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Number of micro apps (at least 5).
    #[arg(long, env = "DRIFTWATCH_DEMO_APPS", default_value_t = 6)]
    pub apps: usize,
    /// Inference calls to generate.
    #[arg(long, env = "DRIFTWATCH_DEMO_INFERENCES", default_value_t = 50_000)]
    pub inferences: usize,
    /// Share of malformed messages mixed into the input.
    #[arg(long, env = "DRIFTWATCH_DEMO_MALFORMED_RATIO", default_value_t = 0.01)]
    pub malformed_ratio: f64,
    /// Print the summary as JSON instead of a table.
    #[arg(long, env = "DRIFTWATCH_DEMO_JSON", default_value_t = false)]
    pub json: bool,
}

/// Input files the demo writes, one per stream.
struct DemoInputs {
    spans: PathBuf,
    logs: PathBuf,
    events: PathBuf,
}

/// Run the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    if args.apps < 5 {
        bail!("--apps must be at least 5 (got {})", args.apps);
    }
    prepare_dir(&args.dir)?;
    let fleet = Fleet::new(FleetConfig {
        seed: args.seed,
        apps: args.apps,
        inferences: args.inferences,
        malformed_ratio: args.malformed_ratio,
        ..FleetConfig::default()
    });
    let inputs = DemoInputs {
        spans: args.dir.join("input/otlp_spans.jsonl"),
        logs: args.dir.join("input/otlp_logs.jsonl"),
        events: args.dir.join("input/llm_events.ndjson"),
    };
    let truth = write_inputs(&fleet, &inputs, args.seed, args.malformed_ratio)?;

    let lake = args.dir.join("lake");
    let mut config = Config::default();
    config.lake.location = lake.display().to_string();
    config.apps = fleet
        .apps()
        .iter()
        .enumerate()
        .map(|(index, app)| AppConfig {
            id: app.id.clone(),
            team: app.team.clone(),
            monthly_budget_usd: Some(app.monthly_budget_usd),
            max_risk_level: None,
            // One app keeps (scrubbed) content so the lake shows what retention looks like.
            retain_content: index == 0,
            scrub_pii: true,
        })
        .collect();
    config.validate()?;
    let components = Components::build(config).await?;
    let shutdown = CancellationToken::new();
    crate::shutdown::on_signal(shutdown.clone())?;
    for (path, format) in [
        (&inputs.spans, PayloadFormat::OtlpTraces),
        (&inputs.logs, PayloadFormat::OtlpLogs),
        (&inputs.events, PayloadFormat::JsonEvents),
    ] {
        file::run_file(&components, path, format, shutdown.clone())
            .await
            .with_context(|| format!("ingesting {}", path.display()))?;
    }

    let session = LakeSession::open(&lake.display().to_string(), None).await?;
    let summary = app_summary(&session).await?;
    let totals = lake_totals(&session).await?;
    if args.json {
        let doc = serde_json::json!({ "summary": summary, "totals": totals, "truth": truth });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("driftwatch demo: {} inference calls from {} apps (seed {})\n", args.inferences, args.apps, args.seed);
    println!("{}", render_summary_table(&summary));
    println!(
        "lake: {} event rows ({} distinct), {} feedback rows, {} rollup rows, {} dead letters",
        totals.events, totals.distinct_events, totals.feedback, totals.rollup_rows, totals.dead_letters
    );
    for (reason, count) in &totals.dead_letters_by_reason {
        println!("  dead letter {reason}: {count}");
    }
    let mismatches = compare_with_truth(&summary, &truth);
    if mismatches.is_empty() {
        println!("\ncheck: per-app requests and tokens in the lake equal the generator's truth");
    } else {
        for line in &mismatches {
            println!("MISMATCH {line}");
        }
        bail!("the lake does not match the generator's truth ({} mismatches)", mismatches.len());
    }
    println!(
        "\nlake written to {} (Hive-partitioned Parquet; e.g. duckdb -c \"select app, count(*) from \
         read_parquet('{}/events/**/*.parquet', hive_partitioning=true) group by app\")",
        lake.display(),
        lake.display()
    );
    Ok(())
}

fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let is_empty = std::fs::read_dir(dir)?.next().is_none();
        if !is_empty && !dir.join(MARKER).exists() {
            bail!("{} exists and was not created by the demo; pick another --dir", dir.display());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir.join("input"))?;
    std::fs::write(dir.join(MARKER), b"created by driftwatch demo; deleted and recreated on each run\n")?;
    Ok(())
}

/// Encode the fleet: even-numbered apps speak OTLP/JSON, odd-numbered ones JSON events.
fn write_inputs(fleet: &Fleet, inputs: &DemoInputs, seed: u64, malformed_ratio: f64) -> anyhow::Result<Truth> {
    let otlp_apps: HashMap<&str, bool> =
        fleet.apps().iter().enumerate().map(|(index, app)| (app.id.as_str(), index % 2 == 0)).collect();
    let mut otlp = Encoder::new(WireFormat::OtlpJson, 50, malformed_ratio, seed);
    let mut json = Encoder::new(WireFormat::JsonEvents, 1, malformed_ratio, seed.wrapping_add(1));
    let open = |path: &Path| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ))
    };
    let mut spans = open(&inputs.spans)?;
    let mut logs = open(&inputs.logs)?;
    let mut events = open(&inputs.events)?;
    let mut truth = Truth::default();
    let mut out: Vec<WireMessage> = Vec::new();
    let mut write = |out: &mut Vec<WireMessage>, truth: &mut Truth| -> anyhow::Result<()> {
        for message in out.drain(..) {
            truth.observe(&message);
            let sink = match message.stream {
                Stream::Spans => &mut spans,
                Stream::Logs => &mut logs,
                Stream::Events => &mut events,
            };
            // One message per line: a stray newline inside a malformed payload must not split it.
            let line: Vec<u8> = message.payload.iter().map(|&b| if b == b'\n' { b' ' } else { b }).collect();
            sink.write_all(&line)?;
            sink.write_all(b"\n")?;
        }
        Ok(())
    };
    for record in fleet.records() {
        let app = match &record {
            FleetRecord::Inference(event) => event.app.as_str(),
            FleetRecord::Feedback(feedback) => feedback.app.as_str(),
        };
        if otlp_apps.get(app).copied().unwrap_or(false) {
            otlp.push(&record, &mut out);
        } else {
            json.push(&record, &mut out);
        }
        write(&mut out, &mut truth)?;
    }
    otlp.finish(&mut out);
    json.finish(&mut out);
    write(&mut out, &mut truth)?;
    drop(write);
    for mut sink in [spans, logs, events] {
        sink.flush()?;
    }
    Ok(truth)
}

fn compare_with_truth(summary: &[driftwatch_analyze::AppSummary], truth: &Truth) -> Vec<String> {
    let mut mismatches = Vec::new();
    for (app, expected) in &truth.per_app {
        let Some(row) = summary.iter().find(|row| &row.app == app) else {
            mismatches.push(format!("{app}: missing from the lake"));
            continue;
        };
        let checks = [
            ("requests", row.requests, expected.distinct_event_ids),
            ("errors", row.errors, expected.errors),
            ("input_tokens", row.input_tokens, expected.input_tokens),
            ("output_tokens", row.output_tokens, expected.output_tokens),
        ];
        for (name, got, want) in checks {
            if u64::try_from(got).ok() != Some(want) {
                mismatches.push(format!("{app} {name}: lake {got}, truth {want}"));
            }
        }
    }
    mismatches
}
