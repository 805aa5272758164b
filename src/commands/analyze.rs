//! `driftwatch analyze`: DataFusion over the lake.

use clap::{Args, Subcommand};
use driftwatch_analyze::{LakeSession, app_summary, lake_totals, render_summary_table};

/// Analysis subcommands.
#[derive(Debug, Subcommand)]
pub enum AnalyzeCommand {
    /// Per-app requests, tokens, cost, latency percentiles and hallucination rate.
    Summary(SummaryArgs),
}

/// `driftwatch analyze summary` flags.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Lake location (local path or s3://bucket/prefix).
    #[arg(long, env = "DRIFTWATCH_LAKE", default_value = "./lake")]
    pub lake: String,
    /// Print JSON instead of a table.
    #[arg(long, env = "DRIFTWATCH_JSON", default_value_t = false)]
    pub json: bool,
}

/// Run an analyze subcommand.
pub async fn run(command: AnalyzeCommand) -> anyhow::Result<()> {
    match command {
        AnalyzeCommand::Summary(args) => {
            let store = driftwatch_lake::store::LakeStore::open(&args.lake, &Default::default()).await?;
            let session = LakeSession::open(&args.lake, Some(store.object_store())).await?;
            let summary = app_summary(&session).await?;
            if args.json {
                let totals = lake_totals(&session).await?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"summary": summary, "totals": totals}))?
                );
            } else {
                println!("{}", render_summary_table(&summary));
            }
            Ok(())
        }
    }
}
