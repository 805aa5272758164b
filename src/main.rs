//! `driftwatch`: one binary for the whole pipeline.
//!
//! # Layout
//!
//! - `ingest`: the daemon (Kafka) or a backfill (`--source file:PATH`): source -> decode ->
//!   enrich -> aggregate -> Parquet lake -> checkpoint, with live `/metrics`.
//! - `demo`: generates a reproducible synthetic fleet, runs it through the real pipeline into a
//!   fresh lake, and prints the per-app summary read back from that lake.
//! - `analyze`: DataFusion over the lake.
//! - `loadgen`: writes the demo's synthetic fleet to Kafka (OTLP protobuf, OTLP/JSON or JSON
//!   events, malformed messages mixed in on request) and prints the truth to compare a lake with.
//! - `check-config`: validates a config file, the model registry it names and the lake
//!   location, without starting anything.
//!
//! Runtime knobs are flags (each with `--long`, `DRIFTWATCH_*` env and a default); the pipeline
//! itself lives in the TOML config file (`--config`).

mod commands;
mod logging;
mod shutdown;

use clap::{Parser, Subcommand};

/// jemalloc returns freed flush buffers to the OS (decay) and does not fragment the way glibc
/// malloc does under per-event allocations, so RSS tracks the configured buffers.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Watch fleets of LLM-powered micro apps.
#[derive(Debug, Parser)]
#[command(name = "driftwatch", version, about)]
struct Cli {
    #[command(flatten)]
    logging: logging::LoggingArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consume GenAI telemetry into the Parquet lake (Kafka daemon, or files with --source).
    Ingest(commands::ingest::IngestArgs),
    /// Run the pipeline end to end on a generated fleet and print what landed in the lake.
    Demo(commands::demo::DemoArgs),
    /// Analyse the lake.
    #[command(subcommand)]
    Analyze(commands::analyze::AnalyzeCommand),
    /// Produce the synthetic fleet to Kafka (load tests, dev stack) and print the truth.
    Loadgen(commands::loadgen::LoadgenArgs),
    /// Check a configuration file and print the effective configuration's problems, if any.
    CheckConfig(commands::ingest::CheckConfigArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let json_logs = matches!(cli.logging.log_format, logging::LogFormat::Json);
    if let Err(error) = logging::init(&cli.logging) {
        eprintln!("driftwatch: cannot set up logging: {}", error_chain(&error));
        return std::process::ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("driftwatch: cannot start the async runtime: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Ingest(args) => commands::ingest::run(args).await,
            Command::Demo(args) => commands::demo::run(args).await,
            Command::Analyze(command) => commands::analyze::run(command).await,
            Command::Loadgen(args) => commands::loadgen::run(args).await,
            Command::CheckConfig(args) => commands::ingest::check_config(&args).await,
        }
    });
    // Dropping the runtime would wait for every blocking task, such as a local lake write the
    // shutdown gave up on; the commands have finished their work by now.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let message = error_chain(&error);
            tracing::error!(error = message, "driftwatch failed.");
            // A person at a terminal reads this line; a log pipeline reading JSON gets the
            // event above and would choke on a plain line.
            if !json_logs {
                eprintln!("driftwatch: {message}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once. The library errors end their message with their
/// source's (so a log line with just the top error is complete), which `{:#}` would repeat;
/// a cause whose text already ends what came before it is skipped.
fn error_chain(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.ends_with(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library-style error: its message ends with its source's.
    #[derive(Debug)]
    struct Outer {
        source: std::io::Error,
    }

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "commit failed: {}", self.source)
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn error_chain_says_each_cause_once() {
        let inner = std::io::Error::other("disk full");
        let error = anyhow::Error::new(Outer { source: inner }).context("flushing partition 3");
        assert_eq!(error_chain(&error), "flushing partition 3: commit failed: disk full");
        let plain = anyhow::anyhow!("disk full").context("writing");
        assert_eq!(error_chain(&plain), "writing: disk full");
    }
}
