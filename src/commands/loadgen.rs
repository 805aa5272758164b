//! `driftwatch loadgen`: produce the synthetic fleet to Kafka and print the truth.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use driftwatch_ingest::fleet::files::FormatMix;
use driftwatch_ingest::fleet::{FleetConfig, WireFormat};
use driftwatch_ingest::loadgen::{LoadOptions, LoadTopics, ensure_topics, produce};

/// Wire format of the produced messages.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// OTLP protobuf (as the OTel Collector's Kafka exporter writes by default).
    OtlpProto,
    /// OTLP/JSON.
    OtlpJson,
    /// driftwatch JSON events.
    Json,
    /// Apps rotate through the three formats.
    Mixed,
}

/// `driftwatch loadgen` flags.
#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// Prefix of the three topic names (`<prefix>otlp_spans`, `<prefix>otlp_logs`, `<prefix>llm_events`).
    #[arg(long, env = "DRIFTWATCH_LOADGEN_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Create the topics first with this many partitions (0: do not create).
    #[arg(long, env = "DRIFTWATCH_LOADGEN_CREATE_PARTITIONS", default_value_t = 0)]
    pub create_partitions: i32,
    /// Wire format.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_FORMAT", value_enum, default_value_t = FormatArg::Mixed)]
    pub format: FormatArg,
    /// Inference calls to generate (feedback comes on top), at least 1.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_INFERENCES", default_value_t = 10_000, value_parser = super::parse_positive_count)]
    pub inferences: usize,
    /// Micro apps in the fleet, at least 1.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_APPS", default_value_t = 6, value_parser = super::parse_positive_count)]
    pub apps: usize,
    /// Seed: the same seed produces the same messages.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Share of malformed messages, 0 to 0.5.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_MALFORMED_RATIO", default_value_t = 0.0, value_parser = super::parse_malformed_ratio)]
    pub malformed_ratio: f64,
    /// Spans per OTLP message.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_SPANS_PER_MESSAGE", default_value_t = 20)]
    pub spans_per_message: usize,
    /// Messages per second (0: as fast as the broker takes them).
    #[arg(long, env = "DRIFTWATCH_LOADGEN_RATE", default_value_t = 0)]
    pub rate: u64,
    /// Extra librdkafka producer properties, `KEY=VALUE`, repeatable (e.g. `batch.num.messages=1`);
    /// a value may hold commas (`debug=broker,topic`). In the environment variable, one property
    /// per line.
    #[arg(long = "producer-property", env = "DRIFTWATCH_LOADGEN_PRODUCER_PROPERTIES", value_delimiter = '\n')]
    pub producer_properties: Vec<String>,
    /// Leave out prompt and answer text, as OpenTelemetry GenAI instrumentations do by default.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_NO_CONTENT")]
    pub no_content: bool,
    /// Also write the truth JSON to this file.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_TRUTH")]
    pub truth: Option<PathBuf>,
}

/// `KEY=VALUE` pairs of `--producer-property`. Parsed here rather than by clap, whose errors
/// quote the argument, which may hold a secret.
fn parse_properties(arguments: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    arguments
        .iter()
        .filter(|argument| !argument.trim().is_empty())
        .enumerate()
        .map(|(index, argument)| match argument.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.trim().to_owned())),
            _ => anyhow::bail!(
                "--producer-property number {}: expected KEY=VALUE, the argument has no key before a `=` (its \
                 text is not shown, as it may be a secret)",
                index + 1
            ),
        })
        .collect()
}

/// Run `driftwatch loadgen`.
pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let producer_properties = parse_properties(&args.producer_properties)?;
    let topics = LoadTopics::with_prefix(&args.topic_prefix);
    if args.create_partitions > 0 {
        ensure_topics(
            &args.brokers,
            &producer_properties,
            &topics.all(),
            args.create_partitions,
            Duration::from_secs(30),
        )
        .await
        .context("creating topics")?;
    }
    let options = LoadOptions {
        brokers: args.brokers.clone(),
        topics,
        fleet: FleetConfig {
            seed: args.seed,
            apps: args.apps,
            inferences: args.inferences,
            malformed_ratio: args.malformed_ratio,
            capture_content: !args.no_content,
            ..FleetConfig::default()
        },
        formats: match args.format {
            FormatArg::OtlpProto => FormatMix::Single(WireFormat::OtlpProto),
            FormatArg::OtlpJson => FormatMix::Single(WireFormat::OtlpJson),
            FormatArg::Json => FormatMix::Single(WireFormat::JsonEvents),
            FormatArg::Mixed => FormatMix::Mixed,
        },
        spans_per_message: args.spans_per_message,
        rate: args.rate,
        librdkafka: producer_properties,
    };
    let report = tokio::task::spawn_blocking(move || produce(&options)).await??;
    let json = report.truth.to_json();
    if let Some(path) = &args.truth {
        std::fs::write(path, &json).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("{json}");
    eprintln!(
        "loadgen: {} messages in {:.1}s ({:.0} msg/s)",
        report.truth.messages,
        report.elapsed.as_secs_f64(),
        report.truth.messages as f64 / report.elapsed.as_secs_f64().max(1e-9)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        args: LoadgenArgs,
    }

    fn properties(flags: &[&str]) -> anyhow::Result<Vec<(String, String)>> {
        let command = Command::try_parse_from(std::iter::once("loadgen").chain(flags.iter().copied()))?;
        parse_properties(&command.args.producer_properties)
    }

    #[test]
    fn a_producer_property_value_may_hold_commas_and_equals_signs() -> anyhow::Result<()> {
        let parsed =
            properties(&["--producer-property", "debug=broker,topic", "--producer-property", "sasl.jaas.config=a=b"])?;
        assert_eq!(
            parsed,
            vec![("debug".to_owned(), "broker,topic".to_owned()), ("sasl.jaas.config".to_owned(), "a=b".to_owned())]
        );
        Ok(())
    }

    #[test]
    fn a_producer_property_without_a_key_is_refused_without_showing_it() {
        for flag in ["hunter2SECRET", "=hunter2SECRET"] {
            let error = properties(&["--producer-property", "linger.ms=0", "--producer-property", flag])
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default();
            assert!(error.contains("number 2") && !error.contains("hunter2SECRET"), "{error}");
        }
    }

    #[test]
    fn out_of_range_flags_are_refused_by_the_parser() {
        for flags in
            [&["--malformed-ratio", "0.8"][..], &["--malformed-ratio", "NaN"], &["--apps", "0"], &["--inferences", "0"]]
        {
            assert!(
                Command::try_parse_from(std::iter::once("loadgen").chain(flags.iter().copied())).is_err(),
                "{flags:?}"
            );
        }
    }
}
