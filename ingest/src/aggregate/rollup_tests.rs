//! Unit tests of [`super::RollupAggregator`].

use driftwatch_lake::histogram::{self, deserialize, merge_serialized};
use driftwatch_lake::model::{CallStatus, FeedbackEvent, InferenceEvent};

use super::*;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

const MINUTE: i64 = 60_000_000_000;
/// 2025-01-01T00:00:00Z, a minute boundary.
const T0: i64 = 1_735_689_600_000_000_000;

fn event(app: &str, time: i64) -> InferenceEvent {
    InferenceEvent {
        event_id: format!("{app}-{time}"),
        time,
        app: app.to_owned(),
        environment: Some("prod".to_owned()),
        provider: Some("openai".to_owned()),
        operation: "chat".to_owned(),
        response_model: Some("gpt-4o".to_owned()),
        prompt_id: Some("greet".to_owned()),
        prompt_version: Some("3".to_owned()),
        ..InferenceEvent::default()
    }
}

fn feedback(app: &str, time: i64, name: &str, score: Option<f64>, label: Option<&str>) -> FeedbackEvent {
    FeedbackEvent {
        feedback_id: format!("{app}-{time}-{name}"),
        time,
        app: app.to_owned(),
        environment: Some("prod".to_owned()),
        name: name.to_owned(),
        score_value: score,
        score_label: label.map(str::to_owned),
        provider: Some("openai".to_owned()),
        operation: Some("chat".to_owned()),
        response_model: Some("gpt-4o".to_owned()),
        prompt_id: Some("greet".to_owned()),
        prompt_version: Some("3".to_owned()),
        ..FeedbackEvent::default()
    }
}

fn aggregator(max_open_keys: usize) -> RollupAggregator {
    RollupAggregator::new(&AggregateConfig { max_open_keys, ..AggregateConfig::default() })
}

#[test]
fn counts_and_sums_per_key() -> TestResult {
    let mut agg = aggregator(100);
    let mut ok = event("where2eat", T0 + 5);
    ok.input_tokens = Some(100);
    ok.output_tokens = Some(20);
    ok.cache_read_tokens = Some(40);
    ok.cache_write_tokens = Some(30);
    ok.reasoning_tokens = Some(5);
    ok.cost_usd = Some(0.25);
    ok.latency_ms = Some(1200.0);
    ok.ttft_ms = Some(300.0);
    agg.add_event(&ok)?;
    let mut failed = event("where2eat", T0 + MINUTE - 1);
    failed.status = CallStatus::Error;
    failed.input_tokens = Some(7);
    failed.cache_write_tokens = Some(2);
    failed.cost_usd = Some(0.5);
    failed.latency_ms = Some(50.0);
    agg.add_event(&failed)?;
    assert_eq!(agg.open_keys(), 1);

    let rows = agg.drain()?;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.key.window_start, T0);
    assert_eq!(row.key.app, "where2eat");
    assert_eq!(row.key.operation.as_deref(), Some("chat"));
    assert_eq!(row.key.response_model.as_deref(), Some("gpt-4o"));
    assert_eq!((row.requests, row.errors), (2, 1));
    assert_eq!((row.input_tokens, row.output_tokens), (107, 20));
    assert_eq!((row.cache_read_tokens, row.cache_write_tokens, row.reasoning_tokens), (40, 32, 5));
    assert!((row.cost_usd - 0.75).abs() < 1e-12);
    let latency = deserialize(&row.latency_us_hist)?;
    assert_eq!(latency.len(), 2);
    assert!(latency.equivalent(latency.min(), 50_000));
    assert!(latency.equivalent(latency.max(), 1_200_000));
    let ttft = deserialize(&row.ttft_us_hist)?;
    assert_eq!(ttft.len(), 1);
    assert!(ttft.equivalent(ttft.max(), 300_000));
    Ok(())
}

#[test]
fn distinct_keys_drain_sorted_and_empty_histograms_are_empty() -> TestResult {
    let mut agg = aggregator(100);
    for app in ["zeta", "alpha", "mid"] {
        agg.add_event(&event(app, T0))?;
    }
    let mut other_model = event("alpha", T0);
    other_model.response_model = Some("gpt-4o-mini".to_owned());
    agg.add_event(&other_model)?;
    let rows = agg.drain()?;
    let keys: Vec<(&str, Option<&str>)> =
        rows.iter().map(|row| (row.key.app.as_str(), row.key.response_model.as_deref())).collect();
    assert_eq!(
        keys,
        [("alpha", Some("gpt-4o")), ("alpha", Some("gpt-4o-mini")), ("mid", Some("gpt-4o")), ("zeta", Some("gpt-4o"))]
    );
    assert!(rows.iter().all(|row| row.latency_us_hist.is_empty() && row.ttft_us_hist.is_empty()));
    Ok(())
}

#[test]
fn late_event_goes_to_its_own_older_window() -> TestResult {
    let mut agg = aggregator(100);
    agg.add_event(&event("app", T0 + 10 * MINUTE + 3))?;
    agg.add_event(&event("app", T0 + 2 * MINUTE + 59_000_000_000))?;
    agg.add_event(&event("app", T0 + 10 * MINUTE + 30_000_000_000))?;
    let rows = agg.drain()?;
    let windows: Vec<(i64, i64)> = rows.iter().map(|row| (row.key.window_start, row.requests)).collect();
    assert_eq!(windows, [(T0 + 2 * MINUTE, 1), (T0 + 10 * MINUTE, 2)]);
    Ok(())
}

#[test]
fn pre_epoch_times_floor_to_their_minute() {
    assert_eq!(window_start(-1), -MINUTE);
    assert_eq!(window_start(0), 0);
    assert_eq!(window_start(MINUTE + 1), MINUTE);
}

#[test]
fn merged_drained_partials_equal_one_histogram_over_all_values() -> TestResult {
    let mut agg = aggregator(100);
    let mut whole = histogram::new_histogram()?;
    let mut merged = histogram::new_histogram()?;
    for (i, chunk) in (0..6_000u64).collect::<Vec<_>>().chunks(1_000).enumerate() {
        for &n in chunk {
            let ms = 0.5 + ((n * 7_919) % 45_000) as f64 / 3.0;
            let mut e = event("app", T0 + i64::try_from(n)?);
            e.latency_ms = Some(ms);
            agg.add_event(&e)?;
            whole.record(histogram::millis_to_micros(ms))?;
        }
        // One drain per chunk: each yields a partial row of the same key.
        let rows = agg.drain()?;
        assert_eq!(rows.len(), 1, "chunk {i}");
        merge_serialized(&mut merged, &rows[0].latency_us_hist)?;
    }
    assert_eq!(buckets(&merged), buckets(&whole), "(bucket value, count) of every non-empty bucket");
    // Every bucket's count, empty ones too, and the total, min, max and precision. Both ways
    // round: `eq` walks only the left histogram's buckets.
    assert!(merged == whole, "the merged histogram differs from the whole one");
    assert!(whole == merged, "the whole histogram differs from the merged one");
    Ok(())
}

/// Every non-empty bucket of a histogram as (highest value equivalent to the bucket, count).
fn buckets(histogram: &hdrhistogram::Histogram<u64>) -> Vec<(u64, u64)> {
    histogram.iter_recorded().map(|bucket| (bucket.value_iterated_to(), bucket.count_at_value())).collect()
}

#[test]
fn feedback_tallies_per_name_with_flags() -> TestResult {
    let mut agg = aggregator(100);
    agg.add_feedback(&feedback("app", T0 + 1, "hallucination", Some(0.9), None), T0 + 1)?;
    agg.add_feedback(&feedback("app", T0 + 2, "hallucination", Some(0.1), None), T0 + 2)?;
    agg.add_feedback(&feedback("app", T0 + 3, "hallucination", None, Some("hallucinated")), T0 + 3)?;
    agg.add_feedback(&feedback("app", T0 + 4, "user_thumbs", Some(1.0), Some("up")), T0 + 4)?;
    agg.add_feedback(&feedback("app", T0 + 5, "user_thumbs", Some(-1.0), Some("down")), T0 + 5)?;
    agg.add_feedback(&feedback("app", T0 + 6, "relevance", Some(0.7), None), T0 + 6)?;
    // A thumbs-down with no value: a result, and a flagged one, but no score to average.
    agg.add_feedback(&feedback("app", T0 + 7, "user_thumbs", None, Some("down")), T0 + 7)?;
    // Feedback and inferences of the same key share one row.
    agg.add_event(&event("app", T0 + 8))?;
    let rows = agg.drain()?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].requests, 1);
    let tallies: Vec<(&str, i64, Option<i64>, i64)> =
        rows[0].feedback.iter().map(|t| (t.name.as_str(), t.count, t.scored, t.flagged)).collect();
    assert_eq!(
        tallies,
        [("hallucination", 3, Some(2), 2), ("relevance", 1, Some(1), 0), ("user_thumbs", 3, Some(2), 2)]
    );
    // Mean scores over the results that had one: (0.9 + 0.1) / 2 and (1 - 1) / 2.
    let mean = |tally: &driftwatch_lake::model::FeedbackTally| tally.score_sum / tally.scored.unwrap_or(0) as f64;
    assert!((mean(&rows[0].feedback[0]) - 0.5).abs() < 1e-12);
    assert!(mean(&rows[0].feedback[2]).abs() < 1e-12);
    Ok(())
}

/// Latencies that are not a duration (NaN, infinite, negative) are left out of the histograms,
/// as the live metrics leave them out; the call itself still counts.
#[test]
fn latencies_that_are_not_durations_are_not_recorded() -> TestResult {
    let mut agg = aggregator(100);
    for latency in [f64::NAN, f64::INFINITY, -5.0, 120.0] {
        agg.add_event(&InferenceEvent { latency_ms: Some(latency), ..event("app", T0) })?;
    }
    let rows = agg.drain()?;
    assert_eq!(rows[0].requests, 4);
    let latency = histogram::deserialize(&rows[0].latency_us_hist)?;
    assert_eq!(latency.len(), 1, "only the 120 ms call is timed");
    Ok(())
}

/// An evaluation name per result (an id put into the name) cannot make the tally list grow
/// without bound: past 32 names the others share `__overflow__`, while the first-class names
/// keep their own tallies however late they come. Counts and flags are all kept.
#[test]
fn feedback_names_past_the_cap_share_the_overflow_tally() -> TestResult {
    let mut agg = aggregator(100);
    for i in 0..40 {
        agg.add_feedback(&feedback("app", T0 + i, &format!("eval-{i}"), Some(1.0), Some("fail")), T0 + i)?;
    }
    agg.add_feedback(&feedback("app", T0 + 50, "Hallucination", Some(0.9), None), T0 + 50)?;
    agg.add_feedback(&feedback("app", T0 + 51, "user_thumbs", Some(-1.0), None), T0 + 51)?;
    agg.add_feedback(&feedback("app", T0 + 52, "eval-3", Some(1.0), None), T0 + 52)?;
    let rows = agg.drain()?;
    assert_eq!(rows.len(), 1);
    let tallies = &rows[0].feedback;
    assert_eq!(tallies.len(), 32 + 1 + 2, "{tallies:?}");
    let tally = |name: &str| tallies.iter().find(|t| t.name == name).map(|t| (t.count, t.flagged));
    assert_eq!(tally("eval-3"), Some((2, 1)), "a name under the cap keeps counting");
    assert_eq!(tally(OVERFLOW_LABEL_VALUE), Some((8, 8)), "eval-32 .. eval-39");
    assert_eq!(tally("Hallucination"), Some((1, 1)));
    assert_eq!(tally("user_thumbs"), Some((1, 1)));
    assert_eq!(tallies.iter().map(|t| t.count).sum::<i64>(), 43);
    Ok(())
}

#[test]
fn feedback_without_context_is_its_own_key() -> TestResult {
    let mut agg = aggregator(100);
    agg.add_event(&event("app", T0))?;
    let mut bare = feedback("app", T0, "user_thumbs", Some(1.0), None);
    bare.operation = None;
    bare.response_model = None;
    agg.add_feedback(&bare, bare.time)?;
    let rows = agg.drain()?;
    assert_eq!(rows.len(), 2);
    let bare_row = rows.iter().find(|row| row.key.operation.is_none()).ok_or("no bare row")?;
    assert_eq!((bare_row.requests, bare_row.feedback.len()), (0, 1));
    Ok(())
}

#[test]
fn the_cap_asks_for_a_drain_and_never_refuses_an_event() -> TestResult {
    let mut agg = aggregator(2);
    agg.add_event(&event("a", T0))?;
    assert!(!agg.is_full());
    agg.add_event(&event("b", T0))?;
    assert!(agg.is_full());
    // Past the cap (the rest of a message), new keys are still opened and counted.
    agg.add_event(&event("a", T0 + 1))?;
    agg.add_event(&event("c", T0))?;
    agg.add_feedback(&feedback("d", T0, "user_thumbs", None, None), T0)?;
    assert_eq!(agg.open_keys(), 4);
    let rows = agg.drain()?;
    assert_eq!(rows.iter().map(|row| row.requests).sum::<i64>(), 4);
    assert_eq!(rows.iter().map(|row| row.feedback.len()).sum::<usize>(), 1);
    assert!(!agg.is_full());
    Ok(())
}

/// A drain gives back what the open keys took, however many there were: the memory budget
/// counts it, and a drained partition must not keep counting against the budget.
#[test]
fn a_drain_gives_back_the_memory_of_many_keys() -> TestResult {
    let mut agg = aggregator(100_000);
    for minute in 0..20_000 {
        agg.add_event(&event("app", T0 + minute * 60_000_000_000))?;
    }
    assert!(agg.approx_bytes() > 20_000 * 17);
    assert_eq!(agg.drain()?.len(), 20_000);
    assert_eq!(agg.approx_bytes(), 0);
    Ok(())
}

#[test]
fn drain_empties_and_the_aggregator_is_reusable() -> TestResult {
    let mut agg = aggregator(100);
    assert!(agg.is_empty());
    assert!(agg.drain()?.is_empty());
    let mut e = event("app", T0);
    e.latency_ms = Some(10.0);
    agg.add_event(&e)?;
    agg.add_feedback(&feedback("app", T0, "relevance", Some(1.0), None), T0)?;
    let before = agg.approx_bytes();
    assert!(before > 0);
    assert!(!agg.is_empty());
    assert_eq!(agg.drain()?.len(), 1);
    assert!(agg.is_empty());
    assert_eq!(agg.open_keys(), 0);
    assert!(agg.drain()?.is_empty());
    assert_eq!(agg.approx_bytes(), 0, "a drained aggregator holds nothing against the budget");
    agg.add_event(&e)?;
    let rows = agg.drain()?;
    assert_eq!((rows.len(), rows[0].requests), (1, 1));
    Ok(())
}

#[test]
fn many_keys_with_shared_hash_chains_stay_distinct() -> TestResult {
    let mut agg = aggregator(10_000);
    for round in 0..3 {
        for n in 0..2_000 {
            let mut e = event(&format!("app-{n}"), T0 + round);
            e.prompt_version = Some(format!("{}", n % 7));
            agg.add_event(&e)?;
        }
    }
    assert_eq!(agg.open_keys(), 2_000);
    let rows = agg.drain()?;
    assert!(rows.iter().all(|row| row.requests == 3));
    Ok(())
}

#[test]
fn config_defaults_and_rejects_unknown_fields() -> TestResult {
    let config: AggregateConfig = serde_json::from_str("{}")?;
    assert_eq!(config.max_open_keys, 50_000);
    assert!(serde_json::from_str::<AggregateConfig>(r#"{"max_keys": 3}"#).is_err());
    Ok(())
}
