//! The daemon's configuration: one TOML file plus `DRIFTWATCH_<SECTION>__<KEY>` environment
//! overrides. The structs below are the documentation of every key (STYLE 3).
//!
//! Loading is three steps, all before anything is spawned: parse the file into a TOML table,
//! overlay environment overrides, deserialize with `deny_unknown_fields`, then [`Config::validate`]
//! checks the values and names the key that is wrong and what to do about it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use crate::aggregate::AggregateConfig;
use crate::decode::{DecodeConfig, PayloadFormat};
use crate::enrich::{ContentPolicy, RiskLevel};
use crate::telemetry::{BearerToken, HttpConfig, MetricsConfig};
use driftwatch_lake::parquet::ParquetOptions;

/// Prefix of configuration overrides in the environment; `__` separates nesting levels.
pub const ENV_PREFIX: &str = "DRIFTWATCH_";

/// Errors found while loading or validating configuration. Each says which key and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `at` is where in the file (" at line L, column C"), `message` the key it is about
    /// (`flush.max_rows`) and toml's words without its snippet of the file, which would quote
    /// the line and so any secret on it.
    #[error("config file {origin} is not valid TOML or has a wrong key{at}: {message}")]
    Parse { origin: String, at: String, message: String },
    #[error("environment override {var} cannot apply: {reason}")]
    Env { var: String, reason: String },
    #[error(
        "config file {origin} with the environment overrides {} has a wrong key or value: {message}; \
         an override that looks like a number or boolean is read as one, so quote a string \
         (e.g. DRIFTWATCH_KAFKA__GROUP_ID='\"2024\"')",
        .vars.join(", ")
    )]
    ParseWithEnv { origin: String, vars: Vec<String>, message: String },
    #[error("invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { problems: Vec<String> },
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// The whole daemon configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the Parquet lake lives and how files are written.
    #[serde(default)]
    pub lake: LakeConfig,
    /// The Kafka source; required by `driftwatch ingest` unless `--source file:` is given.
    #[serde(default)]
    pub kafka: Option<KafkaConfig>,
    /// When buffered rows become files.
    #[serde(default)]
    pub flush: FlushConfig,
    /// Limits applied while decoding input.
    #[serde(default)]
    pub decode: DecodeSection,
    /// Rollup aggregation limits.
    #[serde(default)]
    pub aggregate: AggregateConfig,
    /// Live metrics, including the label cardinality cap.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The HTTP endpoint serving /metrics, /healthz and /readyz.
    #[serde(default)]
    pub http: HttpConfig,
    /// The model registry (prices, risk levels).
    #[serde(default)]
    pub registry: RegistryConfig,
    /// Defaults for apps that are not listed in `apps`.
    #[serde(default)]
    pub default_app: AppDefaults,
    /// The known micro apps: owners, budgets, content policy.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
}

/// Lake location and writer settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    /// A local path, `file://` URL, `s3://bucket/prefix`, or `memory://` (tests); `./lake` when
    /// unset, also when only `[lake.parquet]` or `[lake.options]` is given.
    #[serde(default = "default_lake_location")]
    pub location: String,
    /// Object-store options (`aws_endpoint`, `aws_region`, ...), on top of the `AWS_*` environment.
    /// Values may be TOML strings, numbers or booleans.
    #[serde(default, deserialize_with = "text_values")]
    pub options: HashMap<String, String>,
    /// Parquet writer properties; every one is explicit (DESIGN §5).
    #[serde(default)]
    pub parquet: ParquetOptions,
}

fn default_lake_location() -> String {
    "./lake".to_owned()
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self { location: default_lake_location(), options: HashMap::new(), parquet: ParquetOptions::default() }
    }
}

/// One Kafka topic to consume and what its messages hold.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Topic name.
    pub name: String,
    /// Payload format; protobuf vs JSON is still detected per message.
    pub format: PayloadFormat,
}

/// Where a partition starts when the lake has no checkpoint for it. Offsets committed to Kafka
/// are never read (they are advisory, for lag tools): a group pointed at a new or emptied lake
/// starts here, not where Kafka says it was. A position that falls out of the log later (a
/// partition paused while retention deleted its next offset) resumes at the log's start
/// whatever this says, so that no retained message is skipped.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StartFrom {
    /// The oldest retained message: nothing already in the topic is missed.
    #[default]
    Earliest,
    /// Only messages produced after the daemon joined.
    Latest,
}

/// The Kafka source (consumer group over several topics).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// Consumer group; also names the lake checkpoint stream (`kafka.<group>.<topic>`, every
    /// character but letters, digits, `-` and `_` written as `_`), so groups whose ids differ
    /// only in those characters (`dw.prod`, `dw_prod`) share checkpoints: give each group on one
    /// lake an id that differs in letters or digits.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Topics to consume, each by its exact name (Kafka's rule: 1 to 249 letters, digits, `.`,
    /// `_` or `-`); librdkafka's `^regex` subscriptions are not supported, since each topic's
    /// format is looked up by name.
    #[serde(default = "default_topics")]
    pub topics: Vec<TopicConfig>,
    /// Start position for partitions without a lake checkpoint (see [`StartFrom`]).
    #[serde(default)]
    pub start_from: StartFrom,
    /// Bound on offset queries (the watermark check on assignment); some brokers are known to
    /// leave ListOffsets unanswered. At most [`MAX_OFFSET_QUERY_TIMEOUT`].
    #[serde(default = "default_offset_query_timeout", with = "humantime_serde")]
    pub offset_query_timeout: Duration,
    /// Flushes being written at once; beyond it partitions are paused (backpressure). 1 to
    /// [`MAX_INFLIGHT_FLUSHES`].
    #[serde(default = "default_max_inflight_flushes")]
    pub max_inflight_flushes: usize,
    /// librdkafka properties passed through verbatim (TLS, SASL, tuning). Keys driftwatch must
    /// own for exactly-once (`enable.auto.commit`, `group.id`, ...) and their aliases are
    /// rejected. Values may be written as TOML strings, numbers or booleans; librdkafka takes
    /// them all as text.
    #[serde(default, deserialize_with = "text_values")]
    pub librdkafka: BTreeMap<String, String>,
    /// librdkafka properties whose values are read from files when the config loads, so that
    /// secrets (`sasl.password`, `ssl.key.password`) can come from a mounted Kubernetes secret
    /// or a systemd credential instead of the config file: `"sasl.password" =
    /// "/run/secrets/kafka-password"`. One trailing newline is dropped. Merged into
    /// [`librdkafka`](Self::librdkafka); a key may be set in only one of the two.
    #[serde(default)]
    pub librdkafka_files: BTreeMap<String, PathBuf>,
    /// Properties whose values came from `librdkafka_files`: secrets, never printed.
    #[serde(skip)]
    pub secret_properties: BTreeSet<String>,
}

/// A TOML error as line, column, the key it is about and the message, without toml's snippet of
/// the file.
fn parse_error(origin: &str, text: &str, key: Option<&str>, error: &toml::de::Error) -> ConfigError {
    let at = error
        .span()
        .and_then(|span| text.get(..span.start))
        .map(|before| {
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |current| current.chars().count()) + 1;
            format!(" at line {line}, column {column}")
        })
        .unwrap_or_default();
    ConfigError::Parse { origin: origin.to_owned(), at, message: explain(key, error.message()) }
}

/// Deserialize the configuration, keeping the dotted key an error is about (`flush.max_rows`,
/// `apps[1].team`, `kafka.librdkafka."sasl.password"`), which the deserializer's own words lack.
fn deserialize_keyed<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Config, (Option<String>, D::Error)> {
    serde_path_to_error::deserialize(deserializer).map_err(|error| (dotted_key(error.path()), error.into_inner()))
}

/// A path as the config's keys are written in messages; `None` for the whole document.
fn dotted_key(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut key = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Map { key: name } => {
                if !key.is_empty() {
                    key.push('.');
                }
                let bare = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare { key.push_str(name) } else { key.push_str(&format!("{name:?}")) }
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    (!key.is_empty()).then_some(key)
}

/// The deserializer's message, after the key it is about, with how to write the value where
/// its words are a Rust type's (`expected usize`) or give no example (`expected a duration`).
fn explain(key: Option<&str>, message: &str) -> String {
    let message = message.trim_end();
    let hint = if message.ends_with("expected a duration") {
        "; write a number with a unit, e.g. \"10s\", \"5m\" or \"1h 30m\""
    } else if ["usize", "u64", "u32", "u16", "u8", "i64", "i32"]
        .iter()
        .any(|t| message.ends_with(&format!("expected {t}")))
    {
        "; write a whole number without quotes, e.g. 1000"
    } else if ["f64", "f32"].iter().any(|t| message.ends_with(&format!("expected {t}"))) {
        "; write a number without quotes, e.g. 2.5"
    } else {
        ""
    };
    match key {
        Some(key) => format!("`{key}`: {message}{hint}"),
        None => format!("{message}{hint}"),
    }
}

/// A table of options passed on as text (`kafka.librdkafka`, `lake.options`), its scalar values
/// taken as text. A value of the wrong shape is reported without itself: it may be a secret
/// (`sasl.password = 20240517` is a number to TOML).
fn text_values<'de, D, M>(deserializer: D) -> Result<M, D::Error>
where
    D: serde::Deserializer<'de>,
    M: FromIterator<(String, String)>,
{
    struct AsText;
    impl serde::de::Visitor<'_> for AsText {
        type Value = String;
        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("a string, number or boolean")
        }
        fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<String, E> {
            Ok(value.to_owned())
        }
        fn visit_string<E: serde::de::Error>(self, value: String) -> Result<String, E> {
            Ok(value)
        }
        fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<String, E> {
            Ok(value.to_string())
        }
        fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<String, E> {
            Ok(value.to_string())
        }
    }
    struct Text(String);
    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(AsText).map(Text)
        }
    }
    let table = BTreeMap::<String, Text>::deserialize(deserializer)?;
    Ok(table.into_iter().map(|(key, Text(value))| (key, value)).collect())
}

fn default_group_id() -> String {
    "driftwatch".to_owned()
}

fn default_topics() -> Vec<TopicConfig> {
    vec![
        TopicConfig { name: "otlp_spans".to_owned(), format: PayloadFormat::OtlpTraces },
        TopicConfig { name: "otlp_logs".to_owned(), format: PayloadFormat::OtlpLogs },
        TopicConfig { name: "llm_events".to_owned(), format: PayloadFormat::JsonEvents },
    ]
}

fn default_offset_query_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_max_inflight_flushes() -> usize {
    2
}

/// librdkafka keys that the daemon sets itself; overriding them would break the delivery guarantee.
/// librdkafka's aliases of them are here too (its CONFIGURATION.md: `bootstrap.servers` is an
/// alias of `metadata.broker.list`; the topic-level `enable.auto.commit` one of
/// `auto.commit.enable`), since setting an alias sets the property itself.
pub const RESERVED_LIBRDKAFKA_KEYS: &[&str] = &[
    "group.id",
    "bootstrap.servers",
    "metadata.broker.list",
    "enable.auto.commit",
    "auto.commit.enable",
    "enable.auto.offset.store",
    "group.protocol",
    "auto.offset.reset",
];

/// The longest `kafka.offset_query_timeout`. librdkafka takes timeouts as 32-bit milliseconds,
/// so about 24.8 days and more wrap to an immediate timeout; and a broker that has not
/// answered in minutes is better asked again.
pub const MAX_OFFSET_QUERY_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The most `kafka.max_inflight_flushes`: each holds a whole flush batch in memory, and a
/// handful already keeps the lake busy.
pub const MAX_INFLIGHT_FLUSHES: usize = 64;

/// The longest `flush.max_age`: the lake is meant to be minutes behind, and a partition's rows
/// wait in memory (and its offsets uncommitted) until they are flushed.
pub const MAX_FLUSH_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest `decode.max_future_skew`, a year: events dated further ahead are clock errors,
/// and a larger value would only switch the check off. (365.25 days, humantime's `1year`.)
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(31_557_600);

/// The largest `flush.max_bytes`. Arrow string columns use 32-bit offsets, so one batch's text
/// column (content, ids) holds at most 2 GiB; a buffer flushes just past `max_bytes`, and half
/// the offsets' reach leaves room for that and for estimates that run low.
pub const MAX_FLUSH_BYTES: ByteSize = ByteSize::gib(1);

/// When a partition's buffered rows are written out. Whichever limit is hit first wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlushConfig {
    /// Rows (events + feedback + dead letters) per partition before a flush.
    pub max_rows: usize,
    /// Approximate buffered bytes per partition before a flush; at most [`MAX_FLUSH_BYTES`].
    pub max_bytes: ByteSize,
    /// Oldest buffered row's age before a flush: bounds how stale the lake is. At most
    /// [`MAX_FLUSH_AGE`].
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// The memory budget for rows: all partitions' buffers plus the batches being written.
    /// At the budget the largest buffer is flushed early and the Kafka source takes no more
    /// messages until a flush completes (librdkafka's prefetch, bounded by
    /// `queued.max.messages.kbytes`, then fills and the assignment is paused); the batch of
    /// messages in hand (at most 1 MiB of payload) is finished first. Fixed costs come
    /// on top: the dedup window per partition (about 50 bytes per id), the feedback join
    /// (about 120 bytes per inference), the event channel (32 MiB) and Parquet encoding of one
    /// batch at a time. The file source holds its one buffer plus its batches being written to
    /// the same budget: it flushes early and stops reading until a flush completes.
    pub max_buffered_bytes: ByteSize,
    /// Recent event ids remembered per partition to drop producer retries before they reach
    /// rollups: at least the last this many, at most twice as many.
    pub dedup_window: usize,
}

impl Default for FlushConfig {
    fn default() -> Self {
        Self {
            max_rows: 200_000,
            max_bytes: ByteSize::mib(64),
            max_age: Duration::from_secs(10),
            max_buffered_bytes: ByteSize::mib(512),
            dedup_window: 100_000,
        }
    }
}

/// Decoding limits (the serde face of [`DecodeConfig`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeSection {
    /// Larger messages are dead-lettered as `payload_too_large`.
    pub max_payload_bytes: ByteSize,
    /// Dead-letter copies of rejected payloads are truncated to this.
    pub max_dead_letter_payload_bytes: ByteSize,
    /// Events older than this are rejected as implausible: an RFC 3339 time in the past, such as
    /// "2000-01-01T00:00:00Z" (quoted or not).
    #[serde(deserialize_with = "rfc3339_time")]
    pub min_event_time: chrono::DateTime<chrono::Utc>,
    /// Events further in the future than this are rejected. At most [`MAX_FUTURE_SKEW`].
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// More tokens than this on one call is rejected as implausible.
    pub max_tokens_per_call: i64,
}

impl Default for DecodeSection {
    fn default() -> Self {
        let base = DecodeConfig::default();
        Self {
            max_payload_bytes: ByteSize::b(base.max_payload_bytes as u64),
            max_dead_letter_payload_bytes: ByteSize::b(base.max_dead_letter_payload_bytes as u64),
            min_event_time: chrono::DateTime::from_timestamp_nanos(base.min_event_time),
            max_future_skew: Duration::from_nanos(base.max_future_skew_nanos.max(0) as u64),
            max_tokens_per_call: base.max_tokens_per_call,
        }
    }
}

impl DecodeSection {
    /// What is wrong with the event time bounds: a minimum that is not in the past would send
    /// every event to dead letters, and one that nanoseconds since 1970 cannot hold, or a skew
    /// beyond [`MAX_FUTURE_SKEW`], would switch the check off.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let example = "use a past time such as \"2000-01-01T00:00:00Z\" (the default)";
        let min = self.min_event_time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        if self.min_event_time.timestamp_nanos_opt().is_none() {
            problems.push(format!(
                "`decode.min_event_time` ({min}) is outside the times event timestamps can hold \
                 (1677-09-21 to 2262-04-11, nanoseconds since 1970); {example}"
            ));
        } else if self.min_event_time >= chrono::Utc::now() {
            problems.push(format!(
                "`decode.min_event_time` ({min}) is not in the past, so every event would be rejected as too \
                 old; {example}"
            ));
        }
        if self.max_future_skew > MAX_FUTURE_SKEW {
            problems.push(format!(
                "`decode.max_future_skew` ({}) must be at most {}: events dated further ahead are clock errors; \
                 the default is 1day",
                format_duration(self.max_future_skew),
                format_duration(MAX_FUTURE_SKEW)
            ));
        }
        problems
    }

    /// The decoder's own configuration.
    pub fn to_decode_config(&self) -> DecodeConfig {
        DecodeConfig {
            max_payload_bytes: usize::try_from(self.max_payload_bytes.as_u64()).unwrap_or(usize::MAX),
            max_dead_letter_payload_bytes: usize::try_from(self.max_dead_letter_payload_bytes.as_u64())
                .unwrap_or(usize::MAX),
            min_event_time: self.min_event_time.timestamp_nanos_opt().unwrap_or(i64::MIN),
            max_future_skew_nanos: i64::try_from(self.max_future_skew.as_nanos()).unwrap_or(i64::MAX),
            max_tokens_per_call: self.max_tokens_per_call,
        }
    }
}

/// An RFC 3339 time, written as a TOML string or as a TOML offset date-time.
fn rfc3339_time<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<chrono::DateTime<chrono::Utc>, D::Error> {
    use serde::de::Error as _;
    let example = "write a date, a time and an offset, e.g. \"2000-01-01T00:00:00Z\"";
    let text = match toml::Value::deserialize(deserializer)? {
        toml::Value::String(text) => text,
        toml::Value::Datetime(datetime) => datetime.to_string(),
        other => {
            return Err(D::Error::custom(format!(
                "expected an RFC 3339 time, not a TOML {}; {example}",
                other.type_str()
            )));
        }
    };
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|time| time.with_timezone(&chrono::Utc))
        .map_err(|error| D::Error::custom(format!("{text:?} is not an RFC 3339 time ({error}); {example}")))
}

/// Where the model registry comes from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Path to `models.yaml`; unset uses the registry embedded in the binary.
    pub path: Option<PathBuf>,
}

/// Policy for apps that are not listed in `apps`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppDefaults {
    /// Keep scrubbed prompt and completion text in the lake (off: hashes and lengths only).
    pub retain_content: bool,
    /// Scrub PII from retained content.
    pub scrub_pii: bool,
}

impl Default for AppDefaults {
    fn default() -> Self {
        Self { retain_content: false, scrub_pii: true }
    }
}

/// One known micro app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// App id as it appears in telemetry (`service.name` or `driftwatch.app`).
    pub id: String,
    /// Owning team: the `team` label alerts are routed by. Validated now; read by the alerting
    /// and analysis jobs, which are not built yet.
    pub team: String,
    /// Monthly budget in USD, for budget checks. Validated now; read by the analysis job's
    /// budget checks, which are not built yet.
    pub monthly_budget_usd: Option<f64>,
    /// Highest model risk level the app is approved for. Validated now; read by the analysis
    /// job's governance checks, which are not built yet.
    pub max_risk_level: Option<RiskLevel>,
    /// Keep scrubbed content for this app.
    #[serde(default)]
    pub retain_content: bool,
    /// Scrub PII from this app's retained content.
    #[serde(default = "default_true")]
    pub scrub_pii: bool,
}

fn default_true() -> bool {
    true
}

impl Config {
    /// Load a TOML file (or the empty default when `path` is None), apply environment overrides,
    /// and validate.
    pub fn load(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let (text, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                (text, path.display().to_string())
            }
            None => (String::new(), "<defaults>".to_owned()),
        };
        Self::from_toml_str(&text, &origin, env)
    }

    /// Parse TOML text, apply overrides, validate.
    pub fn from_toml_str(text: &str, origin: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Self> {
        let mut table: toml::Table = toml::from_str(text).map_err(|error| parse_error(origin, text, None, &error))?;
        let vars = apply_env_overrides(&mut table, env)?;
        let mut config: Config = deserialize_keyed(table).map_err(|(key, source)| {
            if vars.is_empty() {
                // A table has lost the text's positions; the same error read from the text says
                // which line, so which of several `[[apps]]` is wrong.
                let (key, source) =
                    match toml::Deserializer::parse(text).map_err(|error| (None, error)).and_then(deserialize_keyed) {
                        Err(found_in_text) => found_in_text,
                        Ok(_) => (key, source),
                    };
                parse_error(origin, text, key.as_deref(), &source)
            } else {
                ConfigError::ParseWithEnv {
                    origin: origin.to_owned(),
                    vars,
                    message: explain(key.as_deref(), source.message()),
                }
            }
        })?;
        let mut problems = config.read_secret_files();
        if let Err(ConfigError::Invalid { problems: more }) = config.validate() {
            problems.extend(more);
        }
        if problems.is_empty() { Ok(config) } else { Err(ConfigError::Invalid { problems }) }
    }

    /// Read `kafka.librdkafka_files` into `kafka.librdkafka`; returns what could not be read.
    fn read_secret_files(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(kafka) = self.kafka.as_mut() else { return problems };
        for (property, path) in std::mem::take(&mut kafka.librdkafka_files) {
            if let Some(problem) = reserved_key_problem("librdkafka_files", &property) {
                problems.push(problem);
                continue;
            }
            let key = format!("`kafka.librdkafka_files.\"{property}\"`");
            if kafka.librdkafka.contains_key(&property) {
                problems.push(format!("{key} is also set in `kafka.librdkafka`; keep one of the two"));
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let value = text.strip_suffix('\n').map_or(text.as_str(), |v| v.strip_suffix('\r').unwrap_or(v));
                    if value.is_empty() {
                        problems.push(format!("{key}: {} is empty", path.display()));
                    } else {
                        kafka.secret_properties.insert(property.clone());
                        kafka.librdkafka.insert(property, value.to_owned());
                    }
                }
                Err(error) => problems.push(format!("{key}: cannot read {}: {error}", path.display())),
            }
        }
        problems
    }

    /// Check values that types alone cannot. Collects every problem so one run shows them all.
    pub fn validate(&self) -> Result<()> {
        let mut problems = Vec::new();
        if self.lake.location.trim().is_empty() {
            problems.push("`lake.location` is empty: set a local path or an s3:// URL".to_owned());
        }
        problems.extend(
            self.lake.parquet.problems().into_iter().map(|(field, reason)| format!("`lake.parquet.{field}` {reason}")),
        );
        if self.flush.max_rows == 0 {
            problems.push("`flush.max_rows` must be at least 1".to_owned());
        }
        if self.flush.max_bytes.as_u64() == 0 {
            problems.push("`flush.max_bytes` must be larger than 0 (e.g. \"64 MiB\")".to_owned());
        }
        if self.flush.max_bytes > MAX_FLUSH_BYTES {
            problems.push(format!(
                "`flush.max_bytes` ({}) must be at most {MAX_FLUSH_BYTES}: a flushed batch's text columns hold at \
                 most 2 GiB; set it to {MAX_FLUSH_BYTES} or less (the default is 64 MiB)",
                self.flush.max_bytes
            ));
        }
        if self.metrics.max_series == 0 {
            problems
                .push("`metrics.max_series` must be at least 1: every series would fold into the overflow".to_owned());
        }
        if self.flush.max_age.is_zero() {
            problems.push("`flush.max_age` must be longer than 0s (e.g. \"10s\")".to_owned());
        }
        if self.flush.max_age > MAX_FLUSH_AGE {
            problems.push(format!(
                "`flush.max_age` ({}) must be at most {}: rows wait in memory, uncommitted, until they are \
                 flushed; the default is 10s",
                format_duration(self.flush.max_age),
                format_duration(MAX_FLUSH_AGE)
            ));
        }
        if self.flush.max_buffered_bytes < self.flush.max_bytes {
            problems.push(format!(
                "`flush.max_buffered_bytes` ({}) must be at least `flush.max_bytes` ({})",
                self.flush.max_buffered_bytes, self.flush.max_bytes
            ));
        }
        if self.decode.max_payload_bytes.as_u64() == 0 {
            problems.push("`decode.max_payload_bytes` must be larger than 0".to_owned());
        }
        problems.extend(self.decode.problems());
        if self.aggregate.max_open_keys == 0 {
            problems.push("`aggregate.max_open_keys` must be at least 1".to_owned());
        }
        if self.decode.max_tokens_per_call <= 0 {
            problems.push("`decode.max_tokens_per_call` must be positive".to_owned());
        }
        if self.http.bearer_token.as_ref().is_some_and(BearerToken::is_empty) {
            // Checked here too, not only when the endpoint binds, so that `check-config` sees it
            // (an unset secret often arrives as an empty environment variable).
            problems.push(
                "`http.bearer_token` is empty (DRIFTWATCH_HTTP__BEARER_TOKEN set to nothing?): set the secret or remove the key"
                    .to_owned(),
            );
        }
        if let Some(kafka) = &self.kafka {
            validate_kafka(kafka, &mut problems);
        }
        let mut seen = HashSet::new();
        for (index, app) in self.apps.iter().enumerate() {
            let key = format!("apps[{index}]");
            if app.id.trim().is_empty() {
                problems.push(format!("`{key}.id` is empty"));
            } else if !seen.insert(app.id.as_str()) {
                problems.push(format!("`{key}.id` = {:?} is listed twice; keep one entry per app", app.id));
            }
            if app.team.trim().is_empty() {
                problems.push(format!("`{key}.team` is empty: alerts are routed by team"));
            }
            if let Some(budget) = app.monthly_budget_usd
                && (!budget.is_finite() || budget <= 0.0)
            {
                problems.push(format!("`{key}.monthly_budget_usd` = {budget} must be a positive number of USD"));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid { problems }) }
    }

    /// Content policy per listed app, for the enricher.
    pub fn content_policies(&self) -> (HashMap<String, ContentPolicy>, ContentPolicy) {
        let policies = self
            .apps
            .iter()
            .map(|app| (app.id.clone(), ContentPolicy { retain_content: app.retain_content, scrub_pii: app.scrub_pii }))
            .collect();
        let default_policy =
            ContentPolicy { retain_content: self.default_app.retain_content, scrub_pii: self.default_app.scrub_pii };
        (policies, default_policy)
    }
}

fn validate_kafka(kafka: &KafkaConfig, problems: &mut Vec<String>) {
    if kafka.brokers.trim().is_empty() {
        problems.push("`kafka.brokers` is empty: set host:port of at least one broker".to_owned());
    }
    if kafka.group_id.trim().is_empty() {
        problems.push("`kafka.group_id` is empty".to_owned());
    }
    if kafka.topics.is_empty() {
        problems.push("`kafka.topics` is empty: list at least one topic".to_owned());
    }
    let mut names = HashSet::new();
    for (index, topic) in kafka.topics.iter().enumerate() {
        if topic.name.trim().is_empty() {
            problems.push(format!("`kafka.topics[{index}].name` is empty"));
        } else if let Some(problem) = topic_name_problem(&topic.name) {
            problems.push(format!("`kafka.topics[{index}].name` = {:?} {problem}", topic.name));
        } else if !names.insert(topic.name.as_str()) {
            problems.push(format!("`kafka.topics[{index}].name` = {:?} is listed twice", topic.name));
        }
    }
    if kafka.offset_query_timeout.is_zero() {
        problems.push("`kafka.offset_query_timeout` must be longer than 0s (e.g. \"5s\")".to_owned());
    }
    if kafka.offset_query_timeout > MAX_OFFSET_QUERY_TIMEOUT {
        problems.push(format!(
            "`kafka.offset_query_timeout` ({}) must be at most {}: librdkafka wraps longer timeouts (about 25 \
             days and more) to none at all, and an unanswered query is retried anyway; the default is 5s",
            format_duration(kafka.offset_query_timeout),
            format_duration(MAX_OFFSET_QUERY_TIMEOUT)
        ));
    }
    if !(1..=MAX_INFLIGHT_FLUSHES).contains(&kafka.max_inflight_flushes) {
        problems.push(format!(
            "`kafka.max_inflight_flushes` ({}) must be 1 to {MAX_INFLIGHT_FLUSHES}: each flush in flight holds its \
             rows in memory; the default is 2",
            kafka.max_inflight_flushes
        ));
    }
    problems.extend(crate::source::kafka::client::validate_passthrough(kafka));
    problems.extend(kafka.librdkafka.keys().filter_map(|key| reserved_key_problem("librdkafka", key)));
    problems.extend(kafka.librdkafka.iter().filter_map(|(key, value)| passthrough_value_problem(key, value)));
}

/// Why `name` cannot be subscribed to as one topic, or `None`. Kafka's rule: 1 to 249 ASCII
/// letters, digits, `.`, `_` and `-`, not `.` or `..`. librdkafka would take a name starting with
/// `^` as a regex subscription, which driftwatch does not support.
fn topic_name_problem(name: &str) -> Option<String> {
    if name.starts_with('^') {
        return Some(
            "is a regex subscription, which driftwatch does not support: each topic's `format` needs an exact \
             name; list every topic by name"
                .to_owned(),
        );
    }
    if name == "." || name == ".." {
        return Some("is not a topic name Kafka allows".to_owned());
    }
    if name.len() > 249 {
        return Some(format!("is {} characters long; Kafka allows at most 249", name.len()));
    }
    name.chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .map(|c| format!("holds {c:?}; Kafka topic names hold only ASCII letters, digits, `.`, `_` and `-`"))
}

/// A duration as config values are written (`10m`, `1day`).
fn format_duration(duration: Duration) -> String {
    humantime_serde::re::humantime::format_duration(duration).to_string()
}

/// Values of passthrough properties that librdkafka accepts but that would stop the daemon from
/// working: it assigns whole partition sets (eager rebalancing), and it reads high watermarks
/// and broker reachability from librdkafka's statistics.
fn passthrough_value_problem(key: &str, value: &str) -> Option<String> {
    match key {
        "partition.assignment.strategy" if value.contains("cooperative-sticky") => Some(format!(
            "`kafka.librdkafka.\"{key}\"` = {value:?}: driftwatch uses eager rebalancing (whole assignments, \
             flushed and checkpointed on revoke), which cooperative-sticky does not allow; use \"range\" or \
             \"roundrobin\", or remove it"
        )),
        "statistics.interval.ms" if value.trim().parse::<u64>().is_ok_and(|ms| ms == 0) => Some(format!(
            "`kafka.librdkafka.\"{key}\"` = {value:?}: consumer lag and broker reachability come from \
             librdkafka's statistics, so it must be above 0 (driftwatch's default is 5000); remove it or set a \
             positive interval"
        )),
        _ => None,
    }
}

/// The problem with setting librdkafka property `key` in the `kafka.<table>` table, when it is
/// one driftwatch sets itself.
fn reserved_key_problem(table: &str, key: &str) -> Option<String> {
    RESERVED_LIBRDKAFKA_KEYS.contains(&key).then(|| {
        let instead = match key {
            "group.id" => " and use `kafka.group_id`",
            "bootstrap.servers" | "metadata.broker.list" => " and use `kafka.brokers`",
            "auto.offset.reset" => " and use `kafka.start_from` for where a partition without a checkpoint starts",
            _ => "",
        };
        format!("`kafka.{table}.\"{key}\"` is set by driftwatch itself (exactly-once needs it); remove it{instead}")
    })
}

/// Overlay `DRIFTWATCH_A__B__C=value` onto `a.b.c`. Values parse as TOML scalars (numbers,
/// booleans, quoted strings, arrays) when they can and are strings otherwise, except under
/// `kafka.librdkafka`, `kafka.librdkafka_files` and `lake.options` and for `http.bearer_token`,
/// which are always text (one pair of surrounding double quotes dropped). Variables with a
/// single `_` after the prefix (`DRIFTWATCH_CONFIG`) are CLI flags, not config keys, and are left alone.
/// Returns the variables applied, in order.
pub fn apply_env_overrides(
    table: &mut toml::Table,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>> {
    let mut applied = Vec::new();
    for (var, value) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else { continue };
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env { var, reason: "empty key segment (use A__B, not A____B)".to_owned() });
        }
        let parsed = if is_text_key(&path) {
            let unquoted = value.strip_prefix('"').and_then(|rest| rest.strip_suffix('"')).unwrap_or(&value);
            toml::Value::String(unquoted.to_owned())
        } else {
            parse_env_value(&value)
        };
        let mut node = &mut *table;
        for segment in &path[..path.len() - 1] {
            let entry = node.entry(segment.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = match entry {
                toml::Value::Table(inner) => inner,
                _ => {
                    return Err(ConfigError::Env {
                        var,
                        reason: format!("`{segment}` is not a table in the config, so it has no sub-keys"),
                    });
                }
            };
        }
        if let Some(last) = path.last() {
            node.insert(last.clone(), parsed);
        }
        applied.push(var);
    }
    Ok(applied)
}

/// Keys whose environment values are taken as text, never as TOML: librdkafka properties, object
/// store options and the bearer token are text, and a secret such as `20240517` or `0x1F` must
/// not become a number (changing it, or failing with the value in the message). One pair of
/// surrounding double quotes is dropped, as TOML would, so `'"2024"'` still means `2024`.
fn is_text_key(path: &[String]) -> bool {
    match path {
        [http, token] => http == "http" && token == "bearer_token",
        [kafka, table, ..] if kafka == "kafka" => table == "librdkafka" || table == "librdkafka_files",
        [lake, options, ..] => lake == "lake" && options == "options",
        _ => false,
    }
}

fn parse_env_value(value: &str) -> toml::Value {
    let probe = format!("v = {value}");
    match toml::from_str::<toml::Table>(&probe) {
        Ok(mut table) => table.remove("v").unwrap_or_else(|| toml::Value::String(value.to_owned())),
        Err(_) => toml::Value::String(value.to_owned()),
    }
}

#[cfg(test)]
mod tests;
