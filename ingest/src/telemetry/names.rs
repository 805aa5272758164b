//! Every metric name driftwatch ingest exposes, in one place (STYLE 12).
//!
//! The constants are the names as scraped (what dashboards and alerts query).
//! prometheus-client appends `_total` to counters and `_info` to info metrics
//! itself, so [`super::metrics`] registers those with the suffix stripped.
//! Label names are constants too, so a dashboard and the code cannot drift.

/// GenAI call duration, seconds (OTel `gen_ai.client.operation.duration`).
pub const GEN_AI_CLIENT_OPERATION_DURATION_SECONDS: &str = "gen_ai_client_operation_duration_seconds";
/// GenAI tokens per call by `gen_ai_token_type` (OTel `gen_ai.client.token.usage`).
pub const GEN_AI_CLIENT_TOKEN_USAGE: &str = "gen_ai_client_token_usage";
/// Inference calls seen.
pub const REQUESTS_TOTAL: &str = "driftwatch_requests_total";
/// Inference calls with error status, by `error_type`.
pub const ERRORS_TOTAL: &str = "driftwatch_errors_total";
/// Priced cost of inference calls, USD.
pub const COST_USD_TOTAL: &str = "driftwatch_cost_usd_total";
/// Inference calls that reported tokens but could not be priced (a model missing from the
/// registry, or a time before its first price): their spend is missing from the cost total.
pub const UNPRICED_REQUESTS_TOTAL: &str = "driftwatch_unpriced_requests_total";
/// Tokens by `token_type` (input, output, cache_read, cache_write, reasoning).
pub const TOKENS_TOTAL: &str = "driftwatch_tokens_total";
/// Feedback results by evaluation `name` and `flagged`.
pub const FEEDBACK_TOTAL: &str = "driftwatch_feedback_total";
/// Time to first token of streaming calls, seconds, in [`DURATION_BUCKETS`]: a reasoning model's
/// first token can take as long as a whole call (OTel's server-side TTFT advice stops at 10 s).
pub const TIME_TO_FIRST_TOKEN_SECONDS: &str = "driftwatch_time_to_first_token_seconds";

/// Source messages by `topic` and `result` (ok, partial, rejected, skipped).
pub const MESSAGES_TOTAL: &str = "driftwatch_messages_total";
/// Spans that were not inference calls (DESIGN §3.1).
pub const SPANS_SKIPPED_TOTAL: &str = "driftwatch_spans_skipped_total";
/// Inference calls kept without the cost their producer reported, because it was no amount (not
/// a number, negative, NaN or infinite); driftwatch's own price is unaffected.
pub const REPORTED_COSTS_DROPPED_TOTAL: &str = "driftwatch_reported_costs_dropped_total";
/// Inference calls kept without their time to first token, which was longer than the call.
pub const TTFTS_DROPPED_TOTAL: &str = "driftwatch_ttfts_dropped_total";
/// Seconds from an inference call's event time (its end) to its reading by driftwatch, in
/// [`EVENT_LAG_BUCKETS`]: a few seconds of collector batching when live, hours or days while a
/// backlog is caught up, when the rate of the call counters is that of the backlog, not of the
/// fleet (Vector's `source_lag_time_seconds` is the same measure).
pub const EVENT_LAG_SECONDS: &str = "driftwatch_event_lag_seconds";
/// Decode failures by `reason`.
pub const DECODE_ERRORS_TOTAL: &str = "driftwatch_decode_errors_total";
/// Rows written to the dead-letter lake by `reason`.
pub const DEAD_LETTERS_TOTAL: &str = "driftwatch_dead_letters_total";
/// Messages delivered again at an offset already consumed in the same assignment, skipped.
pub const REDELIVERED_TOTAL: &str = "driftwatch_redelivered_messages_total";
/// Events and feedback dropped because the same id arrived again within the dedup window (producer retries).
pub const DUPLICATES_DROPPED_TOTAL: &str = "driftwatch_duplicates_dropped_total";
/// Messages behind the partition's high watermark, by `topic` and `partition`: counted from
/// the lake checkpoint, or before the first flush from where this member started reading.
pub const CONSUMER_LAG: &str = "driftwatch_consumer_lag";
/// Kafka partitions this daemon holds: 0 for a member of a group with more members than
/// partitions, and the spread over a fleet's daemons shows an uneven assignment.
pub const ASSIGNED_PARTITIONS: &str = "driftwatch_assigned_partitions";
/// Lake files durably written, by `kind` (events, feedback, rollups, dead_letter, ...).
pub const LAKE_FILES_WRITTEN_TOTAL: &str = "driftwatch_lake_files_written_total";
/// Bytes of lake files durably written, by `kind`.
pub const LAKE_BYTES_WRITTEN_TOTAL: &str = "driftwatch_lake_bytes_written_total";
/// Rows in lake files durably written, by `kind`.
pub const LAKE_ROWS_WRITTEN_TOTAL: &str = "driftwatch_lake_rows_written_total";
/// Seconds since the last committed checkpoint, by `topic` and `partition`,
/// computed at scrape time so it grows while commits stall.
pub const CHECKPOINT_AGE_SECONDS: &str = "driftwatch_checkpoint_age_seconds";
/// Unix time of the last committed checkpoint, by `topic` and `partition`.
pub const CHECKPOINT_TIMESTAMP_SECONDS: &str = "driftwatch_checkpoint_timestamp_seconds";
/// Rows buffered and not yet in the lake.
pub const BUFFERED_ROWS: &str = "driftwatch_buffered_rows";
/// Approximate bytes buffered and not yet in the lake.
pub const BUFFERED_BYTES: &str = "driftwatch_buffered_bytes";
/// The configured `flush.max_buffered_bytes`: the budget `driftwatch_buffered_bytes` is held
/// under, exported so a dashboard can show both (and the resident set) on one scale.
pub const BUFFERED_BYTES_LIMIT: &str = "driftwatch_buffered_bytes_limit";
/// The configured `flush.max_age`, seconds: a partition's rows wait at most this long before
/// their flush, so a stall alert compares checkpoint ages with it instead of a fixed threshold
/// that a longer `max_age` would trip on every quiet partition.
pub const FLUSH_MAX_AGE_SECONDS: &str = "driftwatch_flush_max_age_seconds";
/// Subscribed topics that do not exist on the brokers (a misspelt or not yet created topic),
/// checked every 10 s while nothing is assigned and every minute while something is.
pub const SUBSCRIBED_TOPICS_MISSING: &str = "driftwatch_subscribed_topics_missing";
/// Partitions of the subscribed topics that exist, per the brokers' metadata at the same
/// checks: what the members of the consumer group should hold between them. Summed over the
/// group, `driftwatch_assigned_partitions` falling short of it for long means partitions
/// nobody reads, whose lag no daemon reports (a dead static member inside its session, a
/// coordinator that has not evicted a dead member).
pub const SUBSCRIBED_PARTITIONS: &str = "driftwatch_subscribed_partitions";
/// 0 while the Kafka brokers are all unreachable or refuse this client's credentials or rights
/// (what `/readyz` then says), else 1; 1 for a run with no Kafka source.
pub const KAFKA_BROKERS_AVAILABLE: &str = "driftwatch_kafka_brokers_available";
/// 1 while reading input waits for a flush slot (every slot held by a flush in flight), else 0.
pub const WAITING_FOR_FLUSH_SLOT: &str = "driftwatch_waiting_for_flush_slot";
/// Lake buffer flushes by `reason` (rows, bytes, age, keys, revoke, shutdown, memory,
/// end_of_input, offset_reset: `FlushReason`).
pub const FLUSHES_TOTAL: &str = "driftwatch_flushes_total";
/// Duration of lake buffer flushes, seconds.
pub const FLUSH_DURATION_SECONDS: &str = "driftwatch_flush_duration_seconds";
/// Source consumer errors by `kind`.
pub const CONSUMER_ERRORS_TOTAL: &str = "driftwatch_consumer_errors_total";
/// Every `reason` of [`DECODE_ERRORS_TOTAL`]: the decoder's codes (`decode::Error::reason`) and
/// the file framing's (`source::framing::Unreadable::reason`). The series are created at zero
/// when the registry is, so `increase()` sees the first failure of each reason (a series that
/// appears at 1 has no earlier sample to rise from) and dashboards show 0, not "No data".
pub const DECODE_ERROR_REASONS: [&str; 16] = [
    "payload_too_large",
    "empty_payload",
    "not_utf8",
    "malformed_json",
    "malformed_protobuf",
    "missing_field",
    "invalid_field",
    "negative_tokens",
    "implausible_tokens",
    "timestamp_out_of_range",
    "negative_latency",
    "implausible_latency",
    "non_finite_number",
    "unknown_event_type",
    "unsupported_signal",
    "corrupt_framing",
];
/// The `reason` of [`DEAD_LETTERS_TOTAL`] besides [`DECODE_ERROR_REASONS`]: a decoded row the
/// rollups refused.
pub const AGGREGATE_FAILED_REASON: &str = "aggregate_failed";
/// Observations folded into the `__overflow__` label set by the cap on label sets.
pub const SERIES_OVERFLOW_TOTAL: &str = "driftwatch_series_overflow_total";
/// Observations whose `error_type` or feedback name was folded into `__overflow__` by the cap
/// on values per label set.
pub const LABEL_VALUE_OVERFLOW_TOTAL: &str = "driftwatch_label_value_overflow_total";
/// Always 1; the `version` label says which build runs.
pub const BUILD_INFO: &str = "driftwatch_build_info";

/// The standard process metrics every Prometheus client library exports (no `driftwatch_`
/// prefix, so stock dashboards and alerts find them): user + system CPU seconds.
pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
/// Resident set size, bytes.
pub const PROCESS_RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
/// Virtual memory size, bytes.
pub const PROCESS_VIRTUAL_MEMORY_BYTES: &str = "process_virtual_memory_bytes";
/// OS threads.
pub const PROCESS_THREADS: &str = "process_threads";
/// Open file descriptors.
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
/// The soft limit on open file descriptors.
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
/// Process start, Unix seconds.
pub const PROCESS_START_TIME_SECONDS: &str = "process_start_time_seconds";

/// Label: the micro app.
pub const LABEL_APP: &str = "app";
/// Label: deployment environment.
pub const LABEL_ENVIRONMENT: &str = "environment";
/// Label: normalised provider.
pub const LABEL_PROVIDER: &str = "provider";
/// Label: the response model.
pub const LABEL_MODEL: &str = "model";
/// Label: GenAI operation.
pub const LABEL_OPERATION: &str = "operation";
/// Label: error type of a failed call.
pub const LABEL_ERROR_TYPE: &str = "error_type";
/// Label of `gen_ai_client_token_usage` (OTel attribute `gen_ai.token.type`).
pub const LABEL_GEN_AI_TOKEN_TYPE: &str = "gen_ai_token_type";
/// Label of `driftwatch_tokens_total`.
pub const LABEL_TOKEN_TYPE: &str = "token_type";
/// Label: evaluation name of feedback.
pub const LABEL_NAME: &str = "name";
/// Label: whether feedback flagged a problem.
pub const LABEL_FLAGGED: &str = "flagged";
/// Label: source topic (or file source id).
pub const LABEL_TOPIC: &str = "topic";
/// Label: source partition.
pub const LABEL_PARTITION: &str = "partition";
/// Label: outcome of a message.
pub const LABEL_RESULT: &str = "result";
/// Label: machine-readable reason code.
pub const LABEL_REASON: &str = "reason";
/// Label: lake file kind.
pub const LABEL_KIND: &str = "kind";
/// Label: build version.
pub const LABEL_VERSION: &str = "version";

/// Value of every GenAI label in the series that absorbs label sets beyond the cap.
pub const OVERFLOW_LABEL_VALUE: &str = "__overflow__";

/// OTel bucket advice for `gen_ai.client.operation.duration`, seconds.
pub const DURATION_BUCKETS: [f64; 14] =
    [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];
/// OTel bucket advice for `gen_ai.client.token.usage`.
pub const TOKEN_BUCKETS: [f64; 14] = [
    1.0,
    4.0,
    16.0,
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];
/// Buckets of [`EVENT_LAG_SECONDS`]: from collector batching (seconds) to a quarter-old backlog
/// (a month's backfill read through Kafka, or loadgen's fixed 2026-11 fleet, landed in `+Inf`
/// with a week as the last bound).
pub const EVENT_LAG_BUCKETS: [f64; 15] = [
    1.0,
    5.0,
    15.0,
    30.0,
    60.0,
    300.0,
    900.0,
    1_800.0,
    3_600.0,
    21_600.0,
    86_400.0,
    259_200.0,
    604_800.0,
    2_592_000.0,
    7_776_000.0,
];
/// Flush durations, seconds: from a small local file to a slow object-store upload.
pub const FLUSH_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
