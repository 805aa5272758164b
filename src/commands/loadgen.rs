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
    /// Inference calls to generate (feedback comes on top).
    #[arg(long, env = "DRIFTWATCH_LOADGEN_INFERENCES", default_value_t = 10_000)]
    pub inferences: usize,
    /// Micro apps in the fleet.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_APPS", default_value_t = 6)]
    pub apps: usize,
    /// Seed: the same seed produces the same messages.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Share of malformed messages.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_MALFORMED_RATIO", default_value_t = 0.0)]
    pub malformed_ratio: f64,
    /// Spans per OTLP message.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_SPANS_PER_MESSAGE", default_value_t = 20)]
    pub spans_per_message: usize,
    /// Messages per second (0: as fast as the broker takes them).
    #[arg(long, env = "DRIFTWATCH_LOADGEN_RATE", default_value_t = 0)]
    pub rate: u64,
    /// Extra librdkafka producer properties, `KEY=VALUE`, repeatable (e.g. `batch.num.messages=1`).
    #[arg(long = "producer-property", env = "DRIFTWATCH_LOADGEN_PRODUCER_PROPERTIES", value_delimiter = ',', value_parser = parse_property)]
    pub producer_properties: Vec<(String, String)>,
    /// Leave out prompt and answer text, as OpenTelemetry GenAI instrumentations do by default.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_NO_CONTENT")]
    pub no_content: bool,
    /// Also write the truth JSON to this file.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_TRUTH")]
    pub truth: Option<PathBuf>,
}

fn parse_property(value: &str) -> Result<(String, String), String> {
    value.split_once('=').map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned())).ok_or_else(|| {
        "expected KEY=VALUE: the argument has no `=` (its text is not shown, as it may be a secret)".to_owned()
    })
}

/// Run `driftwatch loadgen`.
pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let topics = LoadTopics::with_prefix(&args.topic_prefix);
    if args.create_partitions > 0 {
        ensure_topics(
            &args.brokers,
            &args.producer_properties,
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
        librdkafka: args.producer_properties.clone(),
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
