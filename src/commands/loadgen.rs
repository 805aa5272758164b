//! `driftwatch loadgen`: produce the synthetic fleet to Kafka and print the truth.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use driftwatch_ingest::fleet::files::FormatMix;
use driftwatch_ingest::fleet::{DEFAULT_START, FleetConfig, WireFormat};
use driftwatch_ingest::loadgen::{LoadOptions, LoadTopics, ensure_topics, produce};
use driftwatch_lake::model::UnixNanos;

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
    /// Create the topics first with this many partitions (0: do not create). Topics that already
    /// exist are kept as they are.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_CREATE_PARTITIONS", default_value_t = 0,
          value_parser = clap::value_parser!(i32).range(0..))]
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
    /// Event time of the first call: an RFC 3339 time, or `now` (the same seed then gives the
    /// same messages but for their times).
    #[arg(long, env = "DRIFTWATCH_LOADGEN_START", default_value = "2026-11-01T00:00:00Z", value_parser = parse_start)]
    pub start: StartArg,
    /// Event time the calls spread over, with a daily traffic curve (e.g. `10m`, `6h`, `3d`).
    #[arg(long, env = "DRIFTWATCH_LOADGEN_PERIOD", default_value = "3d", value_parser = parse_period)]
    pub period: Duration,
    /// Most spans in one OTLP message. An app's batch is also sent after 5 s of event time, as the
    /// Collector's batch processor does, so messages fill only when an app makes that many
    /// calls within 5 s of `--period`.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_SPANS_PER_MESSAGE", default_value_t = 20,
          value_parser = super::parse_positive_count)]
    pub spans_per_message: usize,
    /// Messages per second (0: as fast as the broker takes them).
    #[arg(long, env = "DRIFTWATCH_LOADGEN_RATE", default_value_t = 0)]
    pub rate: u64,
    /// Extra librdkafka producer properties, `KEY=VALUE`, repeatable (e.g. `batch.num.messages=1`);
    /// a value may hold commas (`debug=broker,topic`). In the environment variable, one property
    /// per line.
    // The variable's value stays out of `--help`: it may hold SASL passwords.
    #[arg(
        long = "producer-property",
        env = "DRIFTWATCH_LOADGEN_PRODUCER_PROPERTIES",
        value_delimiter = '\n',
        hide_env_values = true
    )]
    pub producer_properties: Vec<String>,
    /// Leave out prompt and answer text, as OpenTelemetry GenAI instrumentations do by default.
    #[arg(long, env = "DRIFTWATCH_LOADGEN_NO_CONTENT", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_content: bool,
    /// Also write the truth JSON to this file (created before anything is produced, so that a
    /// path that cannot be written fails the run at once).
    #[arg(long, env = "DRIFTWATCH_LOADGEN_TRUTH")]
    pub truth: Option<PathBuf>,
}

/// `--start`: a fixed time, or the time the run starts.
#[derive(Debug, Clone, Copy)]
pub enum StartArg {
    /// Unix nanoseconds.
    At(UnixNanos),
    /// When loadgen starts producing.
    Now,
}

impl StartArg {
    fn nanos(self) -> UnixNanos {
        match self {
            StartArg::At(nanos) => nanos,
            StartArg::Now => chrono::Utc::now().timestamp_nanos_opt().unwrap_or(DEFAULT_START),
        }
    }
}

fn parse_start(text: &str) -> Result<StartArg, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("now") {
        return Ok(StartArg::Now);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .and_then(|time| time.timestamp_nanos_opt())
        .map(StartArg::At)
        .ok_or_else(|| "expected `now` or an RFC 3339 time such as 2026-11-01T00:00:00Z".to_owned())
}

fn parse_period(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(period) if period >= Duration::from_secs(1) && period <= MAX_PERIOD => Ok(period),
        Ok(_) => Err("must be from 1s to 3650d".to_owned()),
        Err(error) => Err(format!("{error}; expected a duration such as 10m, 6h or 3d")),
    }
}

/// The longest `--period`: ten years of calls is far more than any test needs.
const MAX_PERIOD: Duration = Duration::from_secs(3650 * 86_400);

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
    let mut truth_file = match &args.truth {
        Some(path) => Some((
            path,
            std::fs::File::create(path).with_context(|| format!("creating the truth file {}", path.display()))?,
        )),
        None => None,
    };
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
            start: args.start.nanos(),
            duration_secs: i64::try_from(args.period.as_secs()).unwrap_or(i64::MAX),
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
        created_partitions: (args.create_partitions > 0).then(|| args.create_partitions.unsigned_abs() as usize),
    };
    let report = tokio::task::spawn_blocking(move || produce(&options)).await??;
    let json = report.truth.to_json();
    println!("{json}");
    if let Some((path, file)) = &mut truth_file {
        writeln!(file, "{json}")
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing the truth file {}", path.display()))?;
    }
    let seconds = report.elapsed.as_secs_f64();
    tracing::info!(
        messages = report.truth.messages,
        seconds = format_args!("{seconds:.1}"),
        per_second = format_args!("{:.0}", report.truth.messages as f64 / seconds.max(1e-9)),
        "Produced the fleet."
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
        for flags in [
            &["--malformed-ratio", "0.8"][..],
            &["--malformed-ratio", "NaN"],
            &["--apps", "0"],
            &["--inferences", "0"],
            &["--spans-per-message", "0"],
            &["--create-partitions=-3"],
            &["--period", "0s"],
            &["--period", "soon"],
            &["--start", "yesterday"],
        ] {
            assert!(
                Command::try_parse_from(std::iter::once("loadgen").chain(flags.iter().copied())).is_err(),
                "{flags:?}"
            );
        }
    }

    #[test]
    fn start_and_period_set_the_fleets_event_time() -> anyhow::Result<()> {
        let command = Command::try_parse_from(["loadgen", "--start", "2026-12-07T10:00:00+01:00", "--period", "10m"])?;
        assert_eq!(command.args.period, Duration::from_secs(600));
        assert!(matches!(command.args.start, StartArg::At(nanos) if nanos == 1_796_634_000_000_000_000));
        let command = Command::try_parse_from(["loadgen", "--start", "now"])?;
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        assert!((command.args.start.nanos() - now).abs() < 60_000_000_000);
        let defaults = Command::try_parse_from(["loadgen"])?;
        assert_eq!(defaults.args.start.nanos(), DEFAULT_START, "the default start keeps a seed reproducible");
        assert_eq!(defaults.args.period, Duration::from_secs(3 * 86_400));
        Ok(())
    }
}
