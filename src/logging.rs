//! Structured logs with tracing: human-readable text by default, JSON for log pipelines.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Logging flags shared by every subcommand.
#[derive(Debug, Args)]
pub struct LoggingArgs {
    /// Log line format.
    #[arg(long, env = "DRIFTWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax, e.g. `info,driftwatch_ingest=debug`). The default
    /// keeps object_store's per-request retry notes out: a failed lake commit is logged once,
    /// with its final error, by the flusher.
    #[arg(long, env = "DRIFTWATCH_LOG", default_value = "info,object_store=warn", global = true)]
    pub log: String,
}

/// Install the global subscriber; logs go to stderr so stdout stays for command output.
pub fn init(args: &LoggingArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&args.log)?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        // Colour codes only for a person at a terminal: in journald, kubectl logs or a file
        // they are noise that breaks grep.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    }
    .map_err(|error| anyhow::anyhow!("{error}"))
}
