//! `driftwatch ingest`: the Kafka daemon, or a file backfill with `--source file:PATH`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use driftwatch_ingest::config::Config;
use driftwatch_ingest::decode::PayloadFormat;
use driftwatch_ingest::pipeline::Shutdown;
use driftwatch_ingest::runtime::Components;
use driftwatch_ingest::source::file;
use tokio_util::sync::CancellationToken;

/// Flags shared by commands that read the config file.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The TOML configuration file; without it the built-in defaults apply.
    #[arg(long, env = "DRIFTWATCH_CONFIG")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    /// Load, apply `DRIFTWATCH_<SECTION>__<KEY>` overrides, validate.
    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(self.config.as_deref(), std::env::vars())?)
    }
}

/// `driftwatch ingest` flags.
#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Where messages come from: `kafka` (the `[kafka]` config section) or `file:PATH` (a file,
    /// or every file in a folder) for backfill.
    #[arg(long, env = "DRIFTWATCH_SOURCE", default_value = "kafka")]
    pub source: String,
    /// Payload format of file input: auto, otlp_traces, otlp_logs or json_events.
    #[arg(long, env = "DRIFTWATCH_FORMAT", default_value = "auto", value_parser = parse_format)]
    pub format: PayloadFormat,
    /// Lake location; overrides `lake.location`.
    #[arg(long, env = "DRIFTWATCH_LAKE")]
    pub lake: Option<String>,
    /// After SIGTERM/SIGINT, how long flushing and checkpointing may take before the process exits anyway
    /// (with 124). The final flush gets all but the last quarter of it (at most 10 s): flushes the lake
    /// still refuses then are given up, the run ends with an error, and the Kafka daemon uses the rest
    /// to leave its consumer group.
    #[arg(long, env = "DRIFTWATCH_SHUTDOWN_DEADLINE", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_deadline: Duration,
}

/// `driftwatch check-config` flags.
#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Parse a payload format name as the config file's `format` key is read, so the two cannot
/// drift apart.
pub fn parse_format(value: &str) -> Result<PayloadFormat, String> {
    use serde::Deserialize as _;
    use serde::de::IntoDeserializer as _;
    let name: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = value.into_deserializer();
    PayloadFormat::deserialize(name).map_err(|error| error.to_string())
}

/// Validate a config file, the model registry it names and its lake location, without
/// starting anything or writing to the lake.
pub async fn check_config(args: &CheckConfigArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
    let models = driftwatch_ingest::runtime::check(&config).await?;
    println!(
        "configuration OK: lake {}, {} app(s), {models} registered model(s), kafka {}",
        config.lake.location,
        config.apps.len(),
        config.kafka.as_ref().map_or("not configured".to_owned(), |k| k.brokers.clone())
    );
    Ok(())
}

/// Run `driftwatch ingest`.
pub async fn run(args: IngestArgs) -> anyhow::Result<()> {
    let mut config = args.config.load()?;
    if let Some(lake) = &args.lake {
        config.lake.location.clone_from(lake);
    }
    let requested = CancellationToken::new();
    crate::shutdown::on_signal(requested.clone())?;
    crate::shutdown::arm_deadline(requested.clone(), args.shutdown_deadline);
    let shutdown = Shutdown::new(requested, args.shutdown_deadline);
    if let Some(path) = args.source.strip_prefix("file:") {
        return run_files(config, Path::new(path), args.format, &shutdown).await;
    }
    match args.source.as_str() {
        "kafka" => driftwatch_ingest::source::kafka::run_daemon(config, shutdown).await.map_err(Into::into),
        other => bail!("unknown --source {other:?}; use `kafka` or `file:PATH`"),
    }
}

/// `driftwatch ingest --source file:PATH`: every file of `path` in turn, calls before the
/// feedback that rates them, one report line per file. Fails when a file was refused or a
/// signal stopped the run before the end of the input.
async fn run_files(config: Config, path: &Path, format: PayloadFormat, shutdown: &Shutdown) -> anyhow::Result<()> {
    let components = Components::build(config).await?;
    let paths = file::expand_paths(path)?;
    if paths.is_empty() {
        bail!("--source file:{} holds no files to ingest", path.display());
    }
    // Calls before the feedback that rates them, whatever the files' names.
    let decode = components.config.decode.to_decode_config();
    let paths = file::order_for_feedback_join(paths, format, &decode).await;
    // One processor for every file, so feedback is joined to inferences of earlier files.
    let mut processor = components.processor();
    let files = paths.len();
    let mut refused = Vec::new();
    let mut interrupted = None;
    for (index, path) in paths.iter().enumerate() {
        let report = match file::run_file_with(&components, &mut processor, path, format, shutdown).await {
            Ok(report) => report,
            // One file that cannot be read from its checkpoint does not hold back the others;
            // anything else (the lake) would fail them all.
            Err(error) if files > 1 && error.is_about_one_file() => {
                tracing::error!(path = %path.display(), %error, "File not ingested; going on with the others.");
                refused.push(path.display().to_string());
                continue;
            }
            Err(error) => return Err(error).with_context(|| format!("ingesting {}", path.display())),
        };
        print_file_report(path, &report);
        if report.interrupted {
            interrupted = Some((path, report.committed_to, &paths[index + 1..]));
            break;
        }
    }
    // A backfill stopped by a signal has not ingested its input: a script or a unit that
    // checks the status must not take it for done.
    if let Some((path, committed_to, unread)) = interrupted {
        let length = std::fs::metadata(path).map_or_else(|_| "?".to_owned(), |m| m.len().to_string());
        let unread = match unread {
            [] => String::new(),
            files => format!(
                "; not read: {}",
                files.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        };
        bail!(
            "interrupted before the end of the input: {} stopped at byte {committed_to} of {length}{unread}. \
             What was read is in the lake and checkpointed; run the same command again to resume.",
            path.display()
        );
    }
    if !refused.is_empty() {
        bail!("{} of {files} files were not ingested (see the errors above): {}", refused.len(), refused.join(", "));
    }
    Ok(())
}

/// What one file's run did, and where to look when some of it was dead-lettered.
fn print_file_report(path: &Path, report: &file::FileRunReport) {
    println!(
        "{}: {} messages, committed to byte {} (resumed from {}), {} flushes",
        path.display(),
        report.messages,
        report.committed_to,
        report.resumed_from,
        report.flushes
    );
    if report.rejected_messages + report.partly_rejected_messages > 0 {
        println!(
            "{}: {} messages dead-lettered whole and {} in part (the lake's dead_letter table \
             says why); a wrong --format dead-letters every message",
            path.display(),
            report.rejected_messages,
            report.partly_rejected_messages
        );
    }
    if report.unreadable_bytes > 0 {
        println!(
            "{}: {} bytes could not be split into messages and are in dead_letter (see the warning above)",
            path.display(),
            report.unreadable_bytes
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_are_the_config_files() {
        for (name, format) in [
            ("auto", PayloadFormat::Auto),
            ("otlp_traces", PayloadFormat::OtlpTraces),
            ("otlp_logs", PayloadFormat::OtlpLogs),
            ("json_events", PayloadFormat::JsonEvents),
        ] {
            assert_eq!(parse_format(name), Ok(format));
        }
        let error = parse_format("otlp").err().unwrap_or_default();
        assert!(error.contains("otlp_traces") && error.contains("json_events"), "the names are listed: {error}");
    }
}
