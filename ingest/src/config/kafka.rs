//! The `[kafka]` section: brokers, group, topics, librdkafka passthrough, and its checks.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::decode::PayloadFormat;

use super::load::text_values;
use super::validate::format_duration;

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
    /// Only messages produced after the group first took the partition up: the log's end at
    /// that moment is kept in the lake as the partition's first checkpoint, so a restart or a
    /// handover before anything arrives does not skip what came in between.
    Latest,
}

/// The Kafka source (consumer group over several topics). Its `Debug` form shows a librdkafka
/// value only where [`value_may_be_shown`](crate::source::kafka::client::value_may_be_shown)
/// says it holds no secret (`sasl.password` never appears in a log or a panic).
#[derive(Clone, Deserialize)]
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
    /// Flush batches handed to the lake writer and not yet durable (it writes them one at a time,
    /// in order, while the pipeline goes on decoding); beyond it partitions are paused
    /// (backpressure). Raising it buys slack for a slow lake, not parallel writes. 1 to
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

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown =
            |key: &str| crate::source::kafka::client::value_may_be_shown(key) && !self.secret_properties.contains(key);
        let librdkafka: BTreeMap<&str, &str> = self
            .librdkafka
            .iter()
            .map(|(key, value)| (key.as_str(), if shown(key) { value.as_str() } else { "<redacted>" }))
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("topics", &self.topics)
            .field("start_from", &self.start_from)
            .field("offset_query_timeout", &self.offset_query_timeout)
            .field("max_inflight_flushes", &self.max_inflight_flushes)
            .field("librdkafka", &librdkafka)
            .field("librdkafka_files", &self.librdkafka_files)
            .field("secret_properties", &self.secret_properties)
            .finish()
    }
}

fn default_group_id() -> String {
    "driftwatch".to_owned()
}

pub(super) fn default_topics() -> Vec<TopicConfig> {
    vec![
        TopicConfig { name: "otlp_spans".to_owned(), format: PayloadFormat::OtlpTraces },
        TopicConfig { name: "otlp_logs".to_owned(), format: PayloadFormat::OtlpLogs },
        TopicConfig { name: "llm_events".to_owned(), format: PayloadFormat::JsonEvents },
    ]
}

fn default_offset_query_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Flush batches in flight by default: one being written while the next is gathered, which
/// keeps the lake busy; the file source uses it too.
pub const DEFAULT_MAX_INFLIGHT_FLUSHES: usize = 2;

fn default_max_inflight_flushes() -> usize {
    DEFAULT_MAX_INFLIGHT_FLUSHES
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

/// The most `kafka.max_inflight_flushes`: each holds a whole flush batch in memory, and the
/// writer takes them one at a time.
pub const MAX_INFLIGHT_FLUSHES: usize = 64;

pub(super) fn validate_kafka(kafka: &KafkaConfig, problems: &mut Vec<String>) {
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

/// Values of passthrough properties that librdkafka accepts but that would stop the daemon from
/// working: it reads high watermarks and broker reachability from librdkafka's statistics,
/// committed transactions only, and flushes revoked partitions inside the rebalance timeout.
fn passthrough_value_problem(key: &str, value: &str) -> Option<String> {
    match key {
        "isolation.level" if !value.trim().eq_ignore_ascii_case("read_committed") => Some(format!(
            "`kafka.librdkafka.\"{key}\"` = {value:?}: driftwatch reads only committed transactions \
             (librdkafka's default, \"read_committed\"); anything else would ingest the messages of aborted \
             transactions, which their producers retry, as calls that never happened; remove it"
        )),
        "max.poll.interval.ms"
            if value.trim().parse::<u128>().is_ok_and(|ms| ms < crate::source::kafka::REVOKE_TIMEOUT.as_millis()) =>
        {
            Some(format!(
                "`kafka.librdkafka.\"{key}\"` = {value:?}: it is also the group's rebalance timeout, and a \
                 revoke may spend up to {} s flushing and checkpointing the partitions it gives up; a member \
                 slower than the timeout is expelled and the group rebalances again; set at least {} \
                 (driftwatch's default is 300000) or remove it",
                crate::source::kafka::REVOKE_TIMEOUT.as_secs(),
                crate::source::kafka::REVOKE_TIMEOUT.as_millis()
            ))
        }
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
pub(super) fn reserved_key_problem(table: &str, key: &str) -> Option<String> {
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
