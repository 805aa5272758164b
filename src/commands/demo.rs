//! `driftwatch demo`: the whole pipeline on an embedded default, no broker needed.
//!
//! 1. Generate a reproducible fleet (seeded): apps, models, prompt versions, errors, streaming,
//!    feedback with hallucination flags, golden cases, and ~1% malformed input.
//! 2. Write it in the wire formats real producers use, a third of the apps each: OTLP protobuf
//!    and OTLP/JSON lines (as an OTel Collector's file exporter writes them) and NDJSON events.
//! 3. Ingest those files through the real pipeline into a fresh lake.
//! 4. Read the lake back with DataFusion and print the per-app summary, checked against the
//!    generator's truth.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use driftwatch_analyze::{LakeSession, app_summary, lake_totals, render_summary_notes, render_summary_table};
use driftwatch_ingest::config::{AppConfig, Config};
use driftwatch_ingest::fleet::files::{FormatMix, write_fleet_files};
use driftwatch_ingest::fleet::{Fleet, FleetConfig, Truth};
use driftwatch_ingest::pipeline::Shutdown;
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
    /// Inference calls to generate (at least 1).
    #[arg(long, env = "DRIFTWATCH_DEMO_INFERENCES", default_value_t = 50_000, value_parser = super::parse_positive_count)]
    pub inferences: usize,
    /// Share of malformed messages mixed into the input, 0 to 0.5.
    #[arg(long, env = "DRIFTWATCH_DEMO_MALFORMED_RATIO", default_value_t = 0.01, value_parser = super::parse_malformed_ratio)]
    pub malformed_ratio: f64,
    /// Print the summary as JSON instead of a table.
    #[arg(long, env = "DRIFTWATCH_DEMO_JSON", default_value_t = false)]
    pub json: bool,
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
    let input = args.dir.join("input");
    let generated = write_fleet_files(&fleet, &input, FormatMix::Mixed, 20, args.malformed_ratio, args.seed)
        .with_context(|| format!("writing the fleet to {}", input.display()))?;
    let truth = generated.truth;

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
    let requested = CancellationToken::new();
    crate::shutdown::on_signal(requested.clone())?;
    let shutdown = Shutdown::new(requested, crate::shutdown::DEFAULT_DEADLINE);
    let mut processor = components.processor();
    for (path, format) in &generated.files {
        file::run_file_with(&components, &mut processor, path, *format, &shutdown)
            .await
            .with_context(|| format!("ingesting {}", path.display()))?;
    }

    let session = LakeSession::open(&lake.display().to_string(), None).await?;
    let summary = app_summary(&session).await?;
    let totals = lake_totals(&session).await?;
    // Checked before either output, so `--json` fails a wrong lake just as the table does.
    let mismatches = compare_with_truth(&summary, &truth);
    if args.json {
        let doc = serde_json::json!({
            "summary": summary,
            "totals": totals,
            "truth": truth,
            "check": { "mismatches": mismatches },
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return fail_on_mismatches(&mismatches);
    }
    println!("driftwatch demo: {} inference calls from {} apps (seed {})\n", args.inferences, args.apps, args.seed);
    println!("{}", render_summary_table(&summary));
    print!("{}", render_summary_notes(&totals));
    if mismatches.is_empty() {
        println!("\ncheck: per-app requests and tokens in the lake equal the generator's truth");
    } else {
        for line in &mismatches {
            println!("MISMATCH {line}");
        }
        fail_on_mismatches(&mismatches)?;
    }
    println!(
        "\nlake written to {} (Hive-partitioned Parquet; e.g. duckdb -c \"select app, count(*) from \
         read_parquet('{}/events/*/*/*.parquet', hive_partitioning=true, hive_types_autocast=false) group by \
         app\"; README: Reading the lake from other tools)",
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

/// The demo's exit status: an error when the lake disagrees with the generator's truth.
fn fail_on_mismatches(mismatches: &[String]) -> anyhow::Result<()> {
    if mismatches.is_empty() {
        return Ok(());
    }
    bail!("the lake does not match the generator's truth ({} mismatches)", mismatches.len())
}

/// Every way the lake's per-app summary differs from the generator's truth: an app missing on
/// either side, or a count that differs.
fn compare_with_truth(summary: &[driftwatch_analyze::AppSummary], truth: &Truth) -> Vec<String> {
    let mut mismatches = Vec::new();
    // An app the generator never produced means rows were mis-attributed (or invented).
    for row in summary.iter().filter(|row| !truth.per_app.contains_key(&row.app)) {
        mismatches.push(format!("{}: in the lake but not in the truth", row.app));
    }
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

#[cfg(test)]
mod tests {
    use driftwatch_analyze::AppSummary;
    use driftwatch_ingest::fleet::AppTruth;

    use super::*;

    fn row(app: &str, requests: i64) -> AppSummary {
        AppSummary {
            app: app.to_owned(),
            requests,
            errors: 0,
            input_tokens: 10 * requests,
            output_tokens: 0,
            cost_usd: 0.0,
            unpriced_requests: 0,
            no_usage_requests: 0,
            p50_latency_ms: None,
            p95_latency_ms: None,
            p99_latency_ms: None,
            p50_ttft_ms: None,
            p95_ttft_ms: None,
            hallucination_evals: 0,
            hallucination_flagged: 0,
            hallucination_rate: None,
            thumbs_evals: 0,
            thumbs_down: 0,
            thumbs_down_rate: None,
            feedback: 0,
        }
    }

    fn truth(apps: &[(&str, u64)]) -> Truth {
        let mut truth = Truth::default();
        for &(app, requests) in apps {
            let sums = AppTruth { distinct_event_ids: requests, input_tokens: 10 * requests, ..AppTruth::default() };
            truth.per_app.insert(app.to_owned(), sums);
        }
        truth
    }

    #[test]
    fn the_check_fails_on_an_app_missing_on_either_side_or_a_count() {
        let expected = truth(&[("a", 2), ("b", 3)]);
        assert!(compare_with_truth(&[row("a", 2), row("b", 3)], &expected).is_empty());
        assert_eq!(compare_with_truth(&[row("a", 2)], &expected), ["b: missing from the lake"]);
        assert_eq!(
            compare_with_truth(&[row("a", 2), row("b", 3), row("ghost", 1)], &expected),
            ["ghost: in the lake but not in the truth"]
        );
        let wrong = compare_with_truth(&[row("a", 2), row("b", 4)], &expected);
        assert_eq!(wrong, ["b requests: lake 4, truth 3", "b input_tokens: lake 40, truth 30"]);
        assert!(fail_on_mismatches(&wrong).is_err());
        assert!(fail_on_mismatches(&[]).is_ok());
    }
}
