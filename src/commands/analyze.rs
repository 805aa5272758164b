//! `driftwatch analyze`: DataFusion over the lake.

use clap::{Args, Subcommand};
use driftwatch_analyze::{LakeSession, app_summary, lake_totals, render_summary_notes, render_summary_table};

use super::ingest::ConfigArgs;

/// Analysis subcommands.
#[derive(Debug, Subcommand)]
pub enum AnalyzeCommand {
    /// Per-app requests, tokens, cost, latency percentiles and hallucination rate.
    Summary(SummaryArgs),
}

/// `driftwatch analyze summary` flags.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// The ingest configuration: its `lake.location` and `[lake.options]` (object-store
    /// region, endpoint, credentials) say where and how to read the lake.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Lake location (local path or s3://bucket/prefix); overrides `lake.location`, which
    /// defaults to ./lake.
    #[arg(long, env = "DRIFTWATCH_LAKE")]
    pub lake: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long, env = "DRIFTWATCH_JSON", default_value_t = false)]
    pub json: bool,
}

/// Run an analyze subcommand.
pub async fn run(command: AnalyzeCommand) -> anyhow::Result<()> {
    match command {
        AnalyzeCommand::Summary(args) => {
            let mut config = args.config.load()?;
            if let Some(location) = args.lake {
                config.lake.location = location;
            }
            let store = driftwatch_ingest::runtime::open_lake(&config).await?;
            let session = LakeSession::open(&config.lake.location, Some(store.object_store())).await?;
            let summary = app_summary(&session).await?;
            let totals = lake_totals(&session).await?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"summary": summary, "totals": totals}))?
                );
            } else {
                println!("{}", render_summary_table(&summary));
                print!("{}", render_summary_notes(&totals));
            }
            Ok(())
        }
    }
}
