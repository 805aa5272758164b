//! Unit tests of [`super::Metrics`]: exposition names, overflow folding, labels.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use driftwatch_lake::model::{CallStatus, FeedbackEvent, InferenceEvent};

use super::*;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn event(app: &str, model: &str) -> InferenceEvent {
    InferenceEvent {
        event_id: format!("{app}-{model}"),
        app: app.to_owned(),
        environment: Some("prod".to_owned()),
        provider: Some("openai".to_owned()),
        operation: "chat".to_owned(),
        response_model: Some(model.to_owned()),
        input_tokens: Some(120),
        output_tokens: Some(30),
        cache_read_tokens: Some(100),
        cache_write_tokens: Some(15),
        reasoning_tokens: Some(10),
        cost_usd: Some(0.5),
        latency_ms: Some(700.0),
        ttft_ms: Some(90.0),
        ..InferenceEvent::default()
    }
}

const SERIES: &str = r#"app="w2e",environment="prod",provider="openai",model="gpt-4o",operation="chat""#;
const OVERFLOW: &str = r#"app="__overflow__",environment="__overflow__",provider="__overflow__",model="__overflow__",operation="__overflow__""#;

fn failed(app: &str, error_type: Option<&str>) -> InferenceEvent {
    InferenceEvent {
        status: CallStatus::Error,
        error_type: error_type.map(str::to_owned),
        // A fast failure: faster than any success here.
        latency_ms: Some(50.0),
        ..event(app, "gpt-4o")
    }
}

/// Whether `text` has exactly `line` (a bare `contains` would let `... 1` match `... 12`).
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|exposed| exposed == line)
}

/// A verdict `name` on an openai gpt-4o chat call of `app` in prod, without a score.
fn verdict(app: &str, name: &str) -> FeedbackEvent {
    FeedbackEvent {
        app: app.to_owned(),
        environment: Some("prod".to_owned()),
        provider: Some("openai".to_owned()),
        response_model: Some("gpt-4o".to_owned()),
        operation: Some("chat".to_owned()),
        name: name.to_owned(),
        ..FeedbackEvent::default()
    }
}

fn populated() -> Metrics {
    let metrics = Metrics::new(&MetricsConfig::default());
    let mut failed = event("w2e", "gpt-4o");
    failed.status = CallStatus::Error;
    failed.error_type = Some("rate_limit".to_owned());
    metrics.observe_event(&event("w2e", "gpt-4o"));
    metrics.observe_event(&failed);
    metrics.observe_feedback(&FeedbackEvent { score_value: Some(0.9), ..verdict("w2e", "hallucination") });
    metrics.record_message("llm_events", MessageResult::Ok);
    metrics.record_message("llm_events", MessageResult::Ok);
    metrics.record_message("llm_events", MessageResult::Rejected);
    metrics.record_spans_skipped(4);
    metrics.record_reported_costs_dropped(2);
    metrics.record_ttfts_dropped(3);
    metrics.record_decode_error("malformed_json");
    metrics.record_dead_letter("negative_tokens");
    metrics.note_high_watermarks([("otlp_spans", 3, 142)]);
    metrics.set_lag_start("otlp_spans", 3, Some(100));
    metrics.record_files_written("events", 1, 500, 65_536);
    metrics.record_checkpoint("otlp_spans", 3, SystemTime::now() - Duration::from_secs(30));
    metrics.set_buffered(10, 2048);
    metrics.set_flush_max_age(Duration::from_secs(600));
    metrics.record_flush(FlushReason::Age, 0.2);
    metrics.record_consumer_error(ConsumerErrorKind::Transport);
    metrics
}

/// prometheus-client ends every HELP text with a period itself: a help string that has
/// one too reads "Inference calls..".
#[test]
fn help_texts_end_in_one_period() -> TestResult {
    let text = populated().encode()?;
    let help: Vec<&str> = text.lines().filter(|line| line.starts_with("# HELP ")).collect();
    assert!(help.len() > 20, "every metric has a HELP line: {text}");
    for line in help {
        assert!(line.ends_with('.') && !line.ends_with(".."), "{line}");
    }
    Ok(())
}

#[test]
fn exposition_has_the_exact_names_units_and_buckets() -> TestResult {
    let metrics = populated();
    let text = metrics.encode()?;

    for expected in [
        format!("driftwatch_requests_total{{{SERIES}}} 2"),
        format!("driftwatch_errors_total{{{SERIES},error_type=\"rate_limit\"}} 1"),
        format!("driftwatch_cost_usd_total{{{SERIES}}} 1.0"),
        format!("driftwatch_tokens_total{{{SERIES},token_type=\"input\"}} 240"),
        format!("driftwatch_tokens_total{{{SERIES},token_type=\"cache_read\"}} 200"),
        format!("driftwatch_tokens_total{{{SERIES},token_type=\"cache_write\"}} 30"),
        format!("driftwatch_tokens_total{{{SERIES},token_type=\"reasoning\"}} 20"),
        format!("gen_ai_client_token_usage_bucket{{le=\"256.0\",{SERIES},gen_ai_token_type=\"input\"}} 2"),
        format!("gen_ai_client_token_usage_bucket{{le=\"64.0\",{SERIES},gen_ai_token_type=\"output\"}} 2"),
        format!("gen_ai_client_token_usage_bucket{{le=\"67108864.0\",{SERIES},gen_ai_token_type=\"input\"}} 2"),
        format!("gen_ai_client_operation_duration_seconds_bucket{{le=\"0.64\",{SERIES}}} 0"),
        format!("gen_ai_client_operation_duration_seconds_bucket{{le=\"1.28\",{SERIES}}} 1"),
        format!("gen_ai_client_operation_duration_seconds_bucket{{le=\"81.92\",{SERIES}}} 1"),
        format!("gen_ai_client_operation_duration_seconds_count{{{SERIES}}} 1"),
        format!("gen_ai_client_operation_duration_seconds_count{{{SERIES},error_type=\"rate_limit\"}} 1"),
        // Time to first token shares the duration buckets: 90 ms lies between 0.08 and 0.16.
        format!("driftwatch_time_to_first_token_seconds_bucket{{le=\"0.08\",{SERIES}}} 0"),
        format!("driftwatch_time_to_first_token_seconds_bucket{{le=\"0.16\",{SERIES}}} 2"),
        format!("driftwatch_time_to_first_token_seconds_bucket{{le=\"81.92\",{SERIES}}} 2"),
        format!("driftwatch_feedback_total{{{SERIES},name=\"hallucination\",flagged=\"true\"}} 1"),
        "# TYPE gen_ai_client_operation_duration_seconds histogram".to_owned(),
        "# TYPE driftwatch_requests counter".to_owned(),
        "driftwatch_messages_total{topic=\"llm_events\",result=\"ok\"} 2".to_owned(),
        "driftwatch_messages_total{topic=\"llm_events\",result=\"rejected\"} 1".to_owned(),
        "driftwatch_messages_total{topic=\"llm_events\",result=\"skipped\"} 0".to_owned(),
        "driftwatch_spans_skipped_total 4".to_owned(),
        "driftwatch_reported_costs_dropped_total 2".to_owned(),
        "driftwatch_ttfts_dropped_total 3".to_owned(),
        "driftwatch_decode_errors_total{reason=\"malformed_json\"} 1".to_owned(),
        "driftwatch_dead_letters_total{reason=\"negative_tokens\"} 1".to_owned(),
        "driftwatch_consumer_lag{topic=\"otlp_spans\",partition=\"3\"} 42".to_owned(),
        "driftwatch_lake_files_written_total{kind=\"events\"} 1".to_owned(),
        "driftwatch_lake_rows_written_total{kind=\"events\"} 500".to_owned(),
        "driftwatch_lake_bytes_written_total{kind=\"events\"} 65536".to_owned(),
        "driftwatch_buffered_rows 10".to_owned(),
        "driftwatch_buffered_bytes 2048".to_owned(),
        "driftwatch_flush_max_age_seconds 600.0".to_owned(),
        "driftwatch_flushes_total{reason=\"age\"} 1".to_owned(),
        "driftwatch_flush_duration_seconds_count 1".to_owned(),
        "driftwatch_consumer_errors_total{kind=\"transport\"} 1".to_owned(),
        "driftwatch_series_overflow_total 0".to_owned(),
        format!("driftwatch_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")),
        "# EOF".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains("_total_total"), "{text}");
    let age_line = text
        .lines()
        .find(|line| line.starts_with("driftwatch_checkpoint_age_seconds{topic=\"otlp_spans\",partition=\"3\"}"))
        .ok_or("no checkpoint age")?;
    let age: f64 = age_line.rsplit(' ').next().ok_or("no value")?.parse()?;
    assert!((29.0..120.0).contains(&age), "{age_line}");
    assert!(text.contains("driftwatch_checkpoint_timestamp_seconds{topic=\"otlp_spans\",partition=\"3\"}"));
    Ok(())
}

/// A partition with no checkpoint yet ages from its assignment, so a stall before the first
/// checkpoint shows; it has no checkpoint timestamp until that checkpoint, which then takes over.
#[test]
fn a_partition_without_a_checkpoint_ages_from_its_assignment() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig::default());
    let value = |text: &str, name: &str| -> Option<f64> {
        let prefix = format!("{name}{{topic=\"llm_events\",partition=\"1\"}} ");
        text.lines().find_map(|line| line.strip_prefix(&prefix)?.parse().ok())
    };
    metrics.record_assigned_without_checkpoint("llm_events", 1, SystemTime::now() - Duration::from_secs(700));
    let text = metrics.encode()?;
    assert!(value(&text, CHECKPOINT_AGE_SECONDS).is_some_and(|age| (699.0..800.0).contains(&age)), "{text}");
    assert_eq!(value(&text, CHECKPOINT_TIMESTAMP_SECONDS), None, "{text}");

    let committed = SystemTime::now() - Duration::from_secs(5);
    metrics.record_checkpoint("llm_events", 1, committed);
    let text = metrics.encode()?;
    assert!(value(&text, CHECKPOINT_AGE_SECONDS).is_some_and(|age| (4.0..100.0).contains(&age)), "{text}");
    let unix = committed.duration_since(std::time::UNIX_EPOCH)?.as_secs_f64();
    assert!(value(&text, CHECKPOINT_TIMESTAMP_SECONDS).is_some_and(|t| (t - unix).abs() < 0.01), "{text}");
    Ok(())
}

/// Lag is computed at each scrape from the latest high watermark, so it moves with new
/// watermarks alone (no loop has to set it), and only partitions this process owns are
/// reported.
#[test]
fn lag_follows_the_high_watermark_of_owned_partitions_only() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig::default());
    let lags = |metrics: &Metrics| -> std::result::Result<Vec<String>, Box<dyn std::error::Error>> {
        Ok(metrics
            .encode()?
            .lines()
            .filter(|line| line.starts_with("driftwatch_consumer_lag{"))
            .map(str::to_owned)
            .collect())
    };
    // Statistics also carry partitions just given away, and "not known yet" (-1) marks.
    metrics.note_high_watermarks([("spans", 0, 1_000), ("spans", 1, 500), ("spans", -1, 9), ("logs", 0, -1)]);
    assert_eq!(lags(&metrics)?, Vec::<String>::new(), "nothing owned yet");
    metrics.set_lag_start("spans", 0, Some(400));
    metrics.set_lag_start("spans", 2, None);
    metrics.set_lag_start("logs", 0, Some(7));
    assert_eq!(lags(&metrics)?, vec!["driftwatch_consumer_lag{topic=\"spans\",partition=\"0\"} 600"]);
    metrics.note_high_watermarks([("spans", 0, 1_250), ("spans", 2, 80), ("logs", 0, 5)]);
    assert_eq!(
        lags(&metrics)?,
        vec![
            "driftwatch_consumer_lag{topic=\"logs\",partition=\"0\"} 0",
            "driftwatch_consumer_lag{topic=\"spans\",partition=\"0\"} 850",
            "driftwatch_consumer_lag{topic=\"spans\",partition=\"2\"} 0",
        ],
        "a start past the watermark is no negative lag; nothing read yet is none"
    );
    let held = |metrics: &Metrics, count: usize| -> Result<bool, MetricsError> {
        let line = format!("driftwatch_assigned_partitions {count}");
        Ok(metrics.encode()?.lines().any(|exposed| exposed == line))
    };
    assert!(held(&metrics, 3)?, "three partitions held, one of them with no watermark yet");
    metrics.remove_partition("spans", 0);
    metrics.note_high_watermarks([("spans", 0, 2_000)]);
    assert_eq!(lags(&metrics)?.len(), 2, "a partition given away is no longer reported");
    assert!(held(&metrics, 2)?, "the one given away is no longer held");
    Ok(())
}

/// The high watermark comes with librdkafka's statistics, every 5 s; under steady load each flush
/// moved the start up to a watermark seconds old, and lag read about 0 with seconds of messages
/// waiting. What has been handed on is a fresher floor under the watermark.
#[test]
fn lag_counts_up_to_what_was_handed_on_when_the_watermark_is_older() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig::default());
    let lag = |metrics: &Metrics| -> std::result::Result<Option<String>, Box<dyn std::error::Error>> {
        let prefix = "driftwatch_consumer_lag{topic=\"spans\",partition=\"0\"} ";
        Ok(metrics.encode()?.lines().find_map(|line| line.strip_prefix(prefix)).map(str::to_owned))
    };
    metrics.note_handed_on([("spans", 0, 90)]);
    assert_eq!(lag(&metrics)?, None, "not owned yet: nothing noted");
    metrics.set_lag_start("spans", 0, Some(40));
    metrics.note_handed_on([("spans", 0, 90)]);
    assert_eq!(lag(&metrics)?.as_deref(), Some("50"), "no watermark yet: what was handed on is behind");
    metrics.note_high_watermarks([("spans", 0, 100)]);
    assert_eq!(lag(&metrics)?.as_deref(), Some("60"));
    // A flush moves the start to 100 while messages up to 130 were handed on since the watermark.
    metrics.set_lag_start("spans", 0, Some(100));
    metrics.note_handed_on([("spans", 0, 130)]);
    assert_eq!(lag(&metrics)?.as_deref(), Some("30"), "the 30 messages not in the lake are behind");
    metrics.remove_partition("spans", 0);
    metrics.set_lag_start("spans", 0, Some(10));
    assert_eq!(lag(&metrics)?.as_deref(), None, "taken back: nothing known of the old assignment");
    Ok(())
}

/// A log whose tail is a transaction marker (or an aborted transaction): the consumer's
/// position passes it without handing anything on, and lag counts from there once every
/// message handed on is in the lake, not from where the lake's data ends (which left a lag of
/// 1 for good on a quiet transactional partition, and paged as a stall).
#[test]
fn lag_counts_past_records_the_consumer_passed_over_once_the_lake_holds_what_came_before() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig::default());
    let lag = |metrics: &Metrics, partition: i32| -> std::result::Result<String, Box<dyn std::error::Error>> {
        let prefix = format!("driftwatch_consumer_lag{{topic=\"spans\",partition=\"{partition}\"}} ");
        let text = metrics.encode()?;
        Ok(text.lines().find_map(|line| line.strip_prefix(&prefix)).ok_or("no lag series")?.to_owned())
    };
    for partition in 0..4 {
        metrics.set_lag_start("spans", partition, Some(10));
    }
    metrics.note_high_watermarks((0..4).map(|partition| ("spans", partition, 11)));
    assert_eq!(lag(&metrics, 0)?, "1", "the lake holds 0..10, the marker at 10 is not known as one yet");
    metrics.note_consumer_positions([
        // Messages up to 9 handed on and in the lake, the marker at 10 passed over.
        ("spans", 0, Some(10), 11),
        // Nothing handed on since the assignment at 10; the marker passed over.
        ("spans", 1, None, 11),
        // Messages up to 10 handed on (so offset 10 was a message), not yet in the lake.
        ("spans", 2, Some(11), 11),
        // librdkafka's "no position yet".
        ("spans", 3, None, -1001),
    ]);
    assert_eq!(lag(&metrics, 0)?, "0", "caught up: only the marker lay beyond the lake");
    assert_eq!(lag(&metrics, 1)?, "0");
    assert_eq!(lag(&metrics, 2)?, "1", "a message handed on but not yet in the lake is behind");
    assert_eq!(lag(&metrics, 3)?, "1");
    // New messages after the marker are behind until read and stored.
    metrics.note_high_watermarks([("spans", 0, 15)]);
    assert_eq!(lag(&metrics, 0)?, "4");
    metrics.note_consumer_positions([("spans", 0, Some(15), 15)]);
    assert_eq!(lag(&metrics, 0)?, "5", "read but not yet in the lake: everything past the lake's end");
    metrics.set_lag_start("spans", 0, Some(15));
    assert_eq!(lag(&metrics, 0)?, "0");
    // A new epoch back at the log's start (a recreated log): the old position does not count.
    metrics.set_lag_start("spans", 2, Some(0));
    assert_eq!(lag(&metrics, 2)?, "11");
    // Given away, then statistics taken during the release still carry the old position; given
    // back at an earlier checkpoint (rows dropped with a lost assignment), lag counts from it.
    metrics.remove_partition("spans", 1);
    metrics.note_consumer_positions([("spans", 1, None, 11)]);
    metrics.note_high_watermarks([("spans", 1, 11)]);
    metrics.set_lag_start("spans", 1, Some(6));
    assert_eq!(lag(&metrics, 1)?, "5", "the old position is not this assignment's");
    Ok(())
}

#[test]
fn every_named_metric_is_exposed() -> TestResult {
    let metrics = populated();
    let text = metrics.encode()?;
    for name in [
        GEN_AI_CLIENT_OPERATION_DURATION_SECONDS,
        GEN_AI_CLIENT_TOKEN_USAGE,
        TIME_TO_FIRST_TOKEN_SECONDS,
        CONSUMER_LAG,
        ASSIGNED_PARTITIONS,
        CHECKPOINT_AGE_SECONDS,
        CHECKPOINT_TIMESTAMP_SECONDS,
        BUFFERED_ROWS,
        BUFFERED_BYTES,
        BUFFERED_BYTES_LIMIT,
        FLUSH_MAX_AGE_SECONDS,
        SUBSCRIBED_TOPICS_MISSING,
        SUBSCRIBED_PARTITIONS,
        WAITING_FOR_FLUSH_SLOT,
        KAFKA_BROKERS_AVAILABLE,
        FLUSH_DURATION_SECONDS,
        EVENT_LAG_SECONDS,
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} not registered:\n{text}");
    }
    // Counters are declared without `_total` and sampled with it.
    for name in [
        REQUESTS_TOTAL,
        ERRORS_TOTAL,
        COST_USD_TOTAL,
        UNPRICED_REQUESTS_TOTAL,
        TOKENS_TOTAL,
        FEEDBACK_TOTAL,
        MESSAGES_TOTAL,
        SPANS_SKIPPED_TOTAL,
        REPORTED_COSTS_DROPPED_TOTAL,
        TTFTS_DROPPED_TOTAL,
        DECODE_ERRORS_TOTAL,
        DEAD_LETTERS_TOTAL,
        LAKE_FILES_WRITTEN_TOTAL,
        LAKE_BYTES_WRITTEN_TOTAL,
        LAKE_ROWS_WRITTEN_TOTAL,
        FLUSHES_TOTAL,
        CONSUMER_ERRORS_TOTAL,
        SERIES_OVERFLOW_TOTAL,
        LABEL_VALUE_OVERFLOW_TOTAL,
    ] {
        let base = name.strip_suffix("_total").ok_or(name)?;
        assert!(text.contains(&format!("# TYPE {base} counter")), "{name} not registered:\n{text}");
    }
    assert!(text.contains("# TYPE driftwatch_build info"), "{text}");
    // The process metrics, registered in every daemon's registry (their values are checked
    // against independent sources in `process`'s tests).
    #[cfg(target_os = "linux")]
    for (name, kind) in [
        (PROCESS_CPU_SECONDS_TOTAL.strip_suffix("_total").ok_or("no _total")?, "counter"),
        (PROCESS_RESIDENT_MEMORY_BYTES, "gauge"),
        (PROCESS_VIRTUAL_MEMORY_BYTES, "gauge"),
        (PROCESS_THREADS, "gauge"),
        (PROCESS_OPEN_FDS, "gauge"),
        (PROCESS_MAX_FDS, "gauge"),
        (PROCESS_START_TIME_SECONDS, "gauge"),
    ] {
        assert!(text.contains(&format!("# TYPE {name} {kind}")), "{name} not registered:\n{text}");
    }
    Ok(())
}

#[test]
fn event_lag_counts_from_the_call_end_to_its_reading() -> TestResult {
    const SECOND: i64 = 1_000_000_000;
    let metrics = Metrics::new(&MetricsConfig::default());
    let read_at = 1_764_000_000 * SECOND;
    // Live: 3 s of collector batching. Backlog: two days old. A producer clock 5 s ahead. A
    // month's backfill read through Kafka: 20 days old, past the week a bucket once ended at.
    metrics.observe_event_lag(read_at - 3 * SECOND, read_at);
    metrics.observe_event_lag(read_at - 2 * 86_400 * SECOND, read_at);
    metrics.observe_event_lag(read_at + 5 * SECOND, read_at);
    metrics.observe_event_lag(read_at - 20 * 86_400 * SECOND, read_at);
    let text = metrics.encode()?;
    for line in [
        "driftwatch_event_lag_seconds_bucket{le=\"1.0\"} 1",
        "driftwatch_event_lag_seconds_bucket{le=\"5.0\"} 2",
        "driftwatch_event_lag_seconds_bucket{le=\"86400.0\"} 2",
        "driftwatch_event_lag_seconds_bucket{le=\"259200.0\"} 3",
        "driftwatch_event_lag_seconds_bucket{le=\"604800.0\"} 3",
        "driftwatch_event_lag_seconds_bucket{le=\"2592000.0\"} 4",
        "driftwatch_event_lag_seconds_count 4",
        "driftwatch_event_lag_seconds_sum 1900803.0",
    ] {
        assert!(has_line(&text, line), "missing {line:?} in\n{text}");
    }
    Ok(())
}

#[test]
fn label_sets_beyond_the_cap_fold_into_overflow() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig { max_series: 3 });
    for app in ["a", "b", "c", "d", "e"] {
        metrics.observe_event(&event(app, "m"));
    }
    // Known series still resolve normally after the cap is reached.
    metrics.observe_event(&event("a", "m"));
    metrics.observe_event(&event("e", "m"));
    assert_eq!(metrics.series_count(), 3);
    let text = metrics.encode()?;
    assert!(text.contains(&format!("driftwatch_requests_total{{{OVERFLOW}}} 3")), "{text}");
    assert!(text.contains(
        "driftwatch_requests_total{app=\"a\",environment=\"prod\",provider=\"openai\",model=\"m\",operation=\"chat\"} 2"
    ));
    assert!(!text.contains("app=\"d\""), "{text}");
    assert!(!text.contains("app=\"e\""), "{text}");
    assert!(text.contains("driftwatch_series_overflow_total 3"), "{text}");
    Ok(())
}

/// A reasoning model can think for a minute before its first token: that must stay below a
/// finite bucket, or `histogram_quantile` reports the last finite bound instead.
#[test]
fn a_slow_first_token_lands_in_a_finite_bucket() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig::default());
    let mut reasoning = event("w2e", "gpt-4o");
    reasoning.latency_ms = Some(70_000.0);
    reasoning.ttft_ms = Some(45_000.0);
    metrics.observe_event(&reasoning);
    let text = metrics.encode()?;
    for (bound, count) in [("20.48", 0), ("40.96", 0), ("81.92", 1), ("+Inf", 1)] {
        let line = format!("driftwatch_time_to_first_token_seconds_bucket{{le=\"{bound}\",{SERIES}}} {count}");
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
    Ok(())
}

/// Phoenix and the OTel examples name the evaluation `Hallucination`; its verdict counts as one.
#[test]
fn feedback_names_are_read_in_any_case() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig::default());
    let verdict = |name: &str, score: f64, label: Option<&str>| FeedbackEvent {
        app: "w2e".to_owned(),
        environment: Some("prod".to_owned()),
        provider: Some("openai".to_owned()),
        response_model: Some("gpt-4o".to_owned()),
        operation: Some("chat".to_owned()),
        name: name.to_owned(),
        score_value: Some(score),
        score_label: label.map(str::to_owned),
        ..FeedbackEvent::default()
    };
    metrics.observe_feedback(&verdict("Hallucination", 0.9, None));
    metrics.observe_feedback(&verdict("user_thumbs", 0.0, Some("\u{1F44E}")));
    let text = metrics.encode()?;
    for line in [
        format!("driftwatch_feedback_total{{{SERIES},name=\"Hallucination\",flagged=\"true\"}} 1"),
        format!("driftwatch_feedback_total{{{SERIES},name=\"user_thumbs\",flagged=\"true\"}} 1"),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
    Ok(())
}

#[test]
fn error_types_beyond_the_per_series_cap_fold() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig::default());
    for n in 0..40 {
        let mut failed = event("w2e", "gpt-4o");
        failed.status = CallStatus::Error;
        failed.error_type = Some(format!("type_{n}"));
        metrics.observe_event(&failed);
    }
    let mut unknown = event("w2e", "gpt-4o");
    unknown.status = CallStatus::Error;
    metrics.observe_event(&unknown);
    let text = metrics.encode()?;
    let error_series = text.lines().filter(|line| line.starts_with("driftwatch_errors_total{")).count();
    assert_eq!(error_series, 33, "32 kept values plus __overflow__");
    assert!(text.contains(&format!("driftwatch_errors_total{{{SERIES},error_type=\"__overflow__\"}} 9")), "{text}");
    assert!(text.contains("driftwatch_label_value_overflow_total 9"), "{text}");
    assert!(text.contains("driftwatch_series_overflow_total 0"), "no label set folded: {text}");
    Ok(())
}

#[test]
fn error_types_and_feedback_names_are_capped_over_all_label_sets_too() -> TestResult {
    // Ten label sets, each allowed 32 values of its own, share max_series = 10 values in all.
    let metrics = Metrics::new(&MetricsConfig { max_series: 10 });
    for app in 0..10 {
        for n in 0..4 {
            let mut failed = event(&format!("app{app}"), "gpt-4o");
            failed.status = CallStatus::Error;
            failed.error_type = Some(format!("type_{n}"));
            metrics.observe_event(&failed);
        }
        metrics.observe_feedback(&FeedbackEvent {
            score_value: Some(1.0),
            ..verdict(&format!("app{app}"), &format!("judge_{app}"))
        });
    }
    let text = metrics.encode()?;
    let kept = |prefix: &str, label: &str| {
        text.lines()
            .filter(|line| line.starts_with(prefix) && line.contains(label) && !line.contains("__overflow__"))
            .count()
    };
    let (error_types, feedback_names) =
        (kept("driftwatch_errors_total{", "error_type="), kept("driftwatch_feedback_total{", "name="));
    assert_eq!(error_types + feedback_names, 10, "{text}");
    // The first ten values taken (the first apps' error types) stand; 40 + 10 - 10 folded.
    assert!(text.contains("driftwatch_label_value_overflow_total 40"), "{text}");
    assert!(text.contains("driftwatch_series_overflow_total 0"), "no label set folded: {text}");

    // With the budget spent, a new app's flagged hallucination still shows under its name (the
    // backlog audit: 15.6 % of a 200-app fleet's verdicts were `name="__overflow__"`).
    metrics.observe_feedback(&FeedbackEvent {
        score_label: Some("hallucinated".to_owned()),
        ..verdict("app0", "hallucination")
    });
    let text = metrics.encode()?;
    assert!(
        text.lines().any(|line| line.starts_with("driftwatch_feedback_total{")
            && line.contains("app=\"app0\"")
            && line.contains("name=\"hallucination\",flagged=\"true\"} 1")),
        "{text}"
    );
    assert!(text.contains("driftwatch_label_value_overflow_total 40"), "not folded: {text}");
    Ok(())
}

/// OTel sets `error.type` on a failed call's duration and leaves it off a successful one, so
/// `{error_type=""}` selects successful calls: a fast failure must not land in their buckets.
#[test]
fn failed_calls_are_timed_under_their_error_type_and_successes_without_one() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig::default());
    metrics.observe_event(&event("w2e", "gpt-4o"));
    metrics.observe_event(&failed("w2e", Some("rate_limit")));
    metrics.observe_event(&failed("w2e", Some("rate_limit")));
    // Without a type, or with an empty one, a failure would pass for a success in Prometheus.
    metrics.observe_event(&failed("w2e", None));
    metrics.observe_event(&failed("w2e", Some("")));
    let text = metrics.encode()?;
    let duration = "gen_ai_client_operation_duration_seconds";
    for line in [
        format!("{duration}_bucket{{le=\"0.08\",{SERIES}}} 0"),
        format!("{duration}_bucket{{le=\"1.28\",{SERIES}}} 1"),
        format!("{duration}_count{{{SERIES}}} 1"),
        format!("{duration}_bucket{{le=\"0.08\",{SERIES},error_type=\"rate_limit\"}} 2"),
        format!("{duration}_count{{{SERIES},error_type=\"rate_limit\"}} 2"),
        format!("{duration}_bucket{{le=\"0.08\",{SERIES},error_type=\"_OTHER\"}} 2"),
        format!("{duration}_count{{{SERIES},error_type=\"_OTHER\"}} 2"),
        format!("driftwatch_errors_total{{{SERIES},error_type=\"rate_limit\"}} 2"),
        format!("driftwatch_errors_total{{{SERIES},error_type=\"_OTHER\"}} 2"),
        format!("driftwatch_requests_total{{{SERIES}}} 5"),
    ] {
        assert!(has_line(&text, &line), "missing {line:?} in\n{text}");
    }
    let duration_series = text.lines().filter(|line| line.starts_with(&format!("{duration}_count{{"))).count();
    assert_eq!(duration_series, 3, "success, rate_limit, _OTHER:\n{text}");
    // Successes carry no error_type at all (as OTel exporters render an unset attribute), and
    // time to first token has none: OTel defines it for successful responses only.
    assert!(!text.contains("error_type=\"\""), "{text}");
    assert!(
        !text.lines().any(|line| line.starts_with(TIME_TO_FIRST_TOKEN_SECONDS) && line.contains("error_type")),
        "{text}"
    );
    Ok(())
}

/// The duration histogram takes its `error_type` values from the same capped per-series set as
/// `driftwatch_errors_total`, and a folded call is counted as folded once, not once per metric.
#[test]
fn duration_error_types_share_the_errors_cap() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig::default());
    for n in 0..40 {
        metrics.observe_event(&failed("w2e", Some(&format!("type_{n}"))));
    }
    let text = metrics.encode()?;
    let error_types = |prefix: &str| -> BTreeSet<String> {
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| Some(line.split("error_type=\"").nth(1)?.split('"').next()?.to_owned()))
            .collect()
    };
    let on_duration = error_types("gen_ai_client_operation_duration_seconds_count{");
    assert_eq!(on_duration.len(), 33, "32 kept values plus __overflow__: {on_duration:?}");
    assert!(on_duration.contains(OVERFLOW_LABEL_VALUE), "{on_duration:?}");
    assert_eq!(on_duration, error_types("driftwatch_errors_total{"));
    let folded = format!("gen_ai_client_operation_duration_seconds_count{{{SERIES},error_type=\"__overflow__\"}} 8");
    assert!(has_line(&text, &folded), "missing {folded:?} in\n{text}");
    assert!(has_line(&text, "driftwatch_label_value_overflow_total 8"), "{text}");
    assert!(has_line(&text, "driftwatch_series_overflow_total 0"), "{text}");
    Ok(())
}

/// Beyond `max_series`, a failed call folds into the overflow label set and keeps its error type.
#[test]
fn failed_calls_beyond_the_series_cap_fold_with_their_error_type() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig { max_series: 1 });
    metrics.observe_event(&event("a", "gpt-4o"));
    metrics.observe_event(&event("b", "gpt-4o"));
    metrics.observe_event(&failed("c", Some("timeout")));
    assert_eq!(metrics.series_count(), 1);
    let text = metrics.encode()?;
    for line in [
        format!("gen_ai_client_operation_duration_seconds_count{{{OVERFLOW}}} 1"),
        format!("gen_ai_client_operation_duration_seconds_count{{{OVERFLOW},error_type=\"timeout\"}} 1"),
        format!("driftwatch_errors_total{{{OVERFLOW},error_type=\"timeout\"}} 1"),
        "driftwatch_series_overflow_total 2".to_owned(),
    ] {
        assert!(has_line(&text, &line), "missing {line:?} in\n{text}");
    }
    assert!(!text.contains("app=\"b\"") && !text.contains("app=\"c\""), "{text}");
    Ok(())
}

#[test]
fn missing_optional_labels_are_empty_and_bad_values_are_ignored() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig::default());
    metrics.observe_event(&InferenceEvent {
        app: "bare".to_owned(),
        operation: "embeddings".to_owned(),
        input_tokens: Some(-5),
        cost_usd: Some(f64::NAN),
        latency_ms: Some(f64::INFINITY),
        ..InferenceEvent::default()
    });
    let text = metrics.encode()?;
    let labels = r#"app="bare",environment="",provider="",model="",operation="embeddings""#;
    assert!(text.contains(&format!("driftwatch_requests_total{{{labels}}} 1")), "{text}");
    assert!(text.contains(&format!("driftwatch_tokens_total{{{labels},token_type=\"input\"}} 0")), "{text}");
    // Every token type of a label set is exposed from its first call on, unreported ones at 0.
    for token_type in ["output", "cache_read", "cache_write", "reasoning"] {
        let line = format!("driftwatch_tokens_total{{{labels},token_type=\"{token_type}\"}} 0");
        assert!(has_line(&text, &line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains(&format!("driftwatch_cost_usd_total{{{labels}}} 0.0")), "{text}");
    assert!(text.contains(&format!("gen_ai_client_operation_duration_seconds_count{{{labels}}} 0")), "{text}");
    Ok(())
}

#[test]
fn config_defaults_and_rejects_unknown_fields() -> TestResult {
    let config: MetricsConfig = serde_json::from_str("{}")?;
    assert_eq!(config.max_series, 2_000);
    assert!(serde_json::from_str::<MetricsConfig>(r#"{"max_sets": 1}"#).is_err());
    Ok(())
}

/// A counter that first appears at 1 has no earlier sample for `increase()` to rise from, so
/// an alert on the first dead letter of a kind would never fire: every closed label set is
/// exposed at zero before anything happens, and a source's topic before its first message.
#[test]
fn closed_label_sets_and_tracked_topics_start_at_zero() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig::default());
    metrics.track_topic("llm_events");
    let text = metrics.encode()?;
    let mut expected: Vec<String> = DECODE_ERROR_REASONS
        .iter()
        .flat_map(|reason| {
            [
                format!("driftwatch_decode_errors_total{{reason=\"{reason}\"}} 0"),
                format!("driftwatch_dead_letters_total{{reason=\"{reason}\"}} 0"),
            ]
        })
        .collect();
    expected.push(format!("driftwatch_dead_letters_total{{reason=\"{AGGREGATE_FAILED_REASON}\"}} 0"));
    expected.extend(
        ConsumerErrorKind::ALL
            .iter()
            .map(|kind| format!("driftwatch_consumer_errors_total{{kind=\"{}\"}} 0", kind.as_str())),
    );
    expected.extend(
        FlushReason::ALL.iter().map(|reason| format!("driftwatch_flushes_total{{reason=\"{}\"}} 0", reason.as_str())),
    );
    for kind in ["events", "feedback", "rollups", "dead_letter"] {
        for name in ["files", "rows", "bytes"] {
            expected.push(format!("driftwatch_lake_{name}_written_total{{kind=\"{kind}\"}} 0"));
        }
    }
    for result in ["ok", "partial", "rejected", "skipped"] {
        expected.push(format!("driftwatch_messages_total{{topic=\"llm_events\",result=\"{result}\"}} 0"));
    }
    for line in &expected {
        assert!(text.lines().any(|exposed| exposed == line), "missing `{line}` in\n{text}");
    }
    assert_eq!(expected.len(), 16 * 2 + 1 + 14 + 9 + 12 + 4);

    metrics.record_dead_letter("corrupt_framing");
    metrics.record_message("llm_events", MessageResult::Rejected);
    let text = metrics.encode()?;
    assert!(text.contains("driftwatch_dead_letters_total{reason=\"corrupt_framing\"} 1\n"), "{text}");
    assert!(text.contains("driftwatch_messages_total{topic=\"llm_events\",result=\"rejected\"} 1\n"), "{text}");
    Ok(())
}

/// A call that reported tokens but got no price is counted as unpriced, so that spend missing
/// from the cost total shows; a priced call, and a call without tokens (nothing to price), are
/// not.
#[test]
fn calls_with_tokens_but_no_price_are_counted() -> TestResult {
    let metrics = Metrics::new(&MetricsConfig::default());
    metrics.observe_event(&event("w2e", "gpt-4o"));
    let unregistered = InferenceEvent { cost_usd: None, ..event("w2e", "gpt-4o") };
    metrics.observe_event(&unregistered);
    metrics.observe_event(&unregistered);
    let failed_before_usage =
        InferenceEvent { cost_usd: None, input_tokens: None, output_tokens: None, ..event("w2e", "gpt-4o") };
    metrics.observe_event(&failed_before_usage);
    let text = metrics.encode()?;
    assert!(text.contains(&format!("driftwatch_unpriced_requests_total{{{SERIES}}} 2\n")), "{text}");
    assert!(text.contains(&format!("driftwatch_requests_total{{{SERIES}}} 4\n")), "{text}");
    assert!(text.contains(&format!("driftwatch_cost_usd_total{{{SERIES}}} 0.5\n")), "{text}");
    Ok(())
}

/// A full cache drops the label sets unused since a scrape an hour old, with their series and
/// their share of the extra-value budget, so a fleet's new apps get their own series instead of
/// folding into `__overflow__` until a restart (the backlog audit: departed apps held their
/// slots for good).
#[test]
fn idle_label_sets_make_room_for_new_apps() -> TestResult {
    use crate::telemetry::genai::IDLE_EVICTION;

    let metrics = Metrics::new(&MetricsConfig { max_series: 2 });
    let genai = &metrics.inner.genai;
    metrics.observe_event(&failed("retired", Some("timeout")));
    metrics.observe_event(&event("busy", "gpt-4o"));
    let start = std::time::Instant::now();
    assert_eq!(genai.end_scrape(start), 0, "nothing has been idle for an hour");
    // Used since that scrape, `busy` is not idle an hour later; `retired` is.
    metrics.observe_event(&event("busy", "gpt-4o"));
    assert_eq!(genai.end_scrape(start + IDLE_EVICTION - Duration::from_secs(1)), 0, "not yet an hour");
    assert_eq!(genai.end_scrape(start + IDLE_EVICTION), 1);

    // The freed slot and the budget the retired app's error type held (2 in all) go to a new app.
    for error_type in ["rate_limit", "server_error"] {
        metrics.observe_event(&failed("new-app", Some(error_type)));
    }
    let text = metrics.encode()?;
    assert!(!text.contains("app=\"retired\""), "its series are gone: {text}");
    for error_type in ["rate_limit", "server_error"] {
        let series = format!(
            "app=\"new-app\",environment=\"prod\",provider=\"openai\",model=\"gpt-4o\",operation=\"chat\",error_type=\"{error_type}\"}} 1"
        );
        assert!(text.contains(&format!("driftwatch_errors_total{{{series}")), "{error_type}: {text}");
    }
    assert!(text.contains("driftwatch_series_overflow_total 0"), "{text}");
    assert!(text.contains("driftwatch_label_value_overflow_total 0"), "{text}");
    assert!(text.contains("driftwatch_requests_total{app=\"busy\""), "{text}");
    Ok(())
}
