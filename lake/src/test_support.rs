//! Sample rows shared by the lake's unit tests.

use std::sync::Arc;

use crate::model::{
    CallStatus, DeadLetter, FeedbackEvent, FeedbackTally, InferenceEvent, RollupKey, RollupRow, SourcePosition,
};

/// 2024-05-01T00:00:00Z.
pub const DAY1: i64 = 1_714_521_600_000_000_000;
/// 2024-05-02T00:00:00Z.
#[allow(dead_code)]
pub const DAY2: i64 = DAY1 + 86_400_000_000_000;

pub fn source(topic: &str, partition: i32, offset: i64) -> Option<SourcePosition> {
    Some(SourcePosition { topic: Arc::from(topic), partition, offset })
}

/// An event with every persisted field set.
pub fn full_event(i: i64, app: &str, time: i64) -> InferenceEvent {
    InferenceEvent {
        event_id: format!("event-{i}"),
        trace_id: Some(format!("{i:032x}")),
        span_id: Some(format!("{i:016x}")),
        response_id: Some(format!("resp-{i}")),
        time,
        start_time: time - 1_500_000_000,
        app: app.to_owned(),
        environment: Some("prod".into()),
        provider: Some("openai".into()),
        operation: "chat".into(),
        request_model: Some("gpt-4o".into()),
        response_model: Some("gpt-4o-2024-08-06".into()),
        prompt_id: Some("summarise".into()),
        prompt_version: Some("v3".into()),
        input_tokens: Some(100 + i),
        output_tokens: Some(20),
        cache_read_tokens: Some(5),
        cache_write_tokens: Some(3),
        reasoning_tokens: Some(0),
        cost_usd: Some(0.000_125 * i as f64),
        reported_cost_usd: Some(0.0001),
        price_version: Some("gpt-4o@2024-01-01+flex".into()),
        service_tier: Some("flex".into()),
        latency_ms: Some(1500.25),
        ttft_ms: Some(210.5),
        status: if i % 3 == 0 { CallStatus::Error } else { CallStatus::Ok },
        error_type: (i % 3 == 0).then(|| "timeout".into()),
        finish_reason: Some("stop".into()),
        input_hash: Some(format!("in-{i}")),
        output_hash: Some(format!("out-{i}")),
        output_simhash: Some(u64::MAX - i as u64),
        output_chars: Some(420),
        golden_case: Some("case-1".into()),
        input_content: None,
        output_content: None,
        content: Some(r#"{"input":"hi","output":"hello"}"#.into()),
        source: source("genai-spans", 2, 1000 + i),
    }
}

/// An event with every optional field `None`.
pub fn bare_event(i: i64, app: &str, time: i64) -> InferenceEvent {
    InferenceEvent {
        event_id: format!("bare-{i}"),
        time,
        start_time: time,
        app: app.to_owned(),
        operation: "embeddings".into(),
        ..InferenceEvent::default()
    }
}

pub fn feedback(i: i64, time: i64) -> FeedbackEvent {
    FeedbackEvent {
        feedback_id: format!("fb-{i}"),
        time,
        app: "chat".into(),
        environment: Some("prod".into()),
        name: "hallucination".into(),
        score_value: (i % 2 == 0).then_some(0.75),
        score_label: (i % 2 == 1).then(|| "hallucinated".into()),
        trace_id: Some(format!("{i:032x}")),
        span_id: None,
        response_id: Some(format!("resp-{i}")),
        inference_id: Some(format!("event-{i}")),
        response_model: Some("gpt-4o".into()),
        provider: None,
        operation: Some("chat".into()),
        prompt_id: None,
        prompt_version: Some("v3".into()),
        source: if i % 2 == 0 { source("feedback", 0, i) } else { None },
    }
}

pub fn rollup(i: i64, window_start: i64) -> RollupRow {
    RollupRow {
        key: RollupKey {
            window_start,
            app: format!("app-{i}"),
            environment: Some("prod".into()),
            provider: (i % 2 == 0).then(|| "openai".into()),
            response_model: Some("gpt-4o".into()),
            prompt_id: None,
            prompt_version: Some("v1".into()),
            operation: Some("chat".into()),
        },
        requests: 10 + i,
        errors: 1,
        input_tokens: 1000,
        output_tokens: 200,
        cache_read_tokens: 50,
        cache_write_tokens: 30,
        reasoning_tokens: 7,
        cost_usd: 0.25,
        latency_us_hist: vec![1, 2, 3, i as u8],
        ttft_us_hist: Vec::new(),
        feedback: (0..i % 3)
            .map(|j| FeedbackTally {
                name: format!("eval-{j}"),
                count: j + 1,
                scored: Some(j),
                score_sum: 0.5 * j as f64,
                flagged: j,
            })
            .collect(),
    }
}

pub fn dead_letter(i: i64, time: i64) -> DeadLetter {
    DeadLetter {
        time,
        reason: "malformed_json",
        detail: format!("line {i}: expected value"),
        payload: format!("{{bad {i}").into_bytes(),
        source: source("genai-spans", 2, 5000 + i),
    }
}
