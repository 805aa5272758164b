//! What the lake should hold after ingesting a fleet: per-app sums built from
//! the [`MessageTruth`] each [`WireMessage`] carries.
//!
//! The encoder fills a message's truth as it encodes records; [`Truth::observe`]
//! adds it up; the demo prints [`Truth::table`] and tests compare the lake with
//! [`Truth::to_json`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use driftwatch_lake::model::{FeedbackEvent, HALLUCINATION_EVALUATION, InferenceEvent};
use serde::{Deserialize, Serialize};

use super::WireMessage;
use super::malformed::Malformation;
use crate::decode::PayloadFormat;

/// Sums for one app. Inference counters count rows as delivered (producer
/// retries included, as the lake's `events` table holds them);
/// `distinct_event_ids` counts each event id once.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppTruth {
    /// Inference rows.
    pub requests: u64,
    /// Inference rows with error status.
    pub errors: u64,
    /// Sum of input tokens.
    pub input_tokens: u64,
    /// Sum of output tokens (reasoning included).
    pub output_tokens: u64,
    /// Sum of cache-read input tokens.
    pub cache_read_tokens: u64,
    /// Sum of input tokens written to the prompt cache. Absent in truths written before it was
    /// recorded.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Sum of reasoning tokens.
    pub reasoning_tokens: u64,
    /// Feedback rows of any name.
    pub feedback: u64,
    /// Feedback rows named `hallucination`.
    pub hallucination_evals: u64,
    /// Hallucination evaluations that flagged the answer.
    pub hallucination_flagged: u64,
    /// Distinct inference event ids.
    pub distinct_event_ids: u64,
}

impl AppTruth {
    /// Adds one inference row; `first` is false for a producer retry.
    pub fn add_inference(&mut self, event: &InferenceEvent, first: bool) {
        let tokens = |v: Option<i64>| v.map_or(0, |t| u64::try_from(t).unwrap_or(0));
        self.requests += 1;
        self.errors += u64::from(event.status.is_error());
        self.input_tokens += tokens(event.input_tokens);
        self.output_tokens += tokens(event.output_tokens);
        self.cache_read_tokens += tokens(event.cache_read_tokens);
        self.cache_write_tokens += tokens(event.cache_write_tokens);
        self.reasoning_tokens += tokens(event.reasoning_tokens);
        self.distinct_event_ids += u64::from(first);
    }

    /// Adds one feedback row.
    pub fn add_feedback(&mut self, feedback: &FeedbackEvent) {
        self.feedback += 1;
        if feedback.name.eq_ignore_ascii_case(HALLUCINATION_EVALUATION) {
            self.hallucination_evals += 1;
            self.hallucination_flagged += u64::from(feedback.is_flagged());
        }
    }

    /// Adds another sum into this one.
    pub fn merge(&mut self, other: &AppTruth) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.feedback += other.feedback;
        self.hallucination_evals += other.hallucination_evals;
        self.hallucination_flagged += other.hallucination_flagged;
        self.distinct_event_ids += other.distinct_event_ids;
    }
}

/// What one wire message should yield.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MessageTruth {
    /// App of the rows (messages never mix apps); `None` for malformed messages.
    pub app: Option<String>,
    /// Good rows the message holds.
    pub rows: AppTruth,
    /// The decoder must reject the whole message (one reject, no rows).
    pub malformed: bool,
    /// What is wrong with a malformed message, which decides its dead-letter reason.
    pub malformation: Option<Malformation>,
}

/// Expected lake contents for a whole run.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Truth {
    /// Sums per app.
    pub per_app: BTreeMap<String, AppTruth>,
    /// Messages the decoder must reject.
    pub malformed_messages: u64,
    /// All messages produced.
    pub messages: u64,
    /// Dead letters per reason: one per malformed message, under the reason its reader gives
    /// it ([`Truth::observe`], [`Truth::observe_read_as`]). Absent in truths written before it
    /// was recorded.
    #[serde(default)]
    pub dead_letters_by_reason: BTreeMap<String, u64>,
}

impl Truth {
    /// Adds one message's truth, for a reader that reads its stream in the stream's own format
    /// (the default Kafka topics: `otlp_traces`, `otlp_logs`, `json_events`).
    pub fn observe(&mut self, msg: &WireMessage) {
        self.observe_read_as(msg, msg.stream.payload_format());
    }

    /// Adds one message's truth, for a reader that reads it as `read_as` (see
    /// [`Malformation::dead_letter_reason`]).
    pub fn observe_read_as(&mut self, msg: &WireMessage, read_as: PayloadFormat) {
        self.messages += 1;
        if msg.truth.malformed {
            self.malformed_messages += 1;
            if let Some(malformation) = msg.truth.malformation {
                let reason = malformation.dead_letter_reason(read_as);
                *self.dead_letters_by_reason.entry(reason.to_owned()).or_default() += 1;
            }
            return;
        }
        if let Some(app) = &msg.truth.app {
            match self.per_app.get_mut(app) {
                Some(sum) => sum.merge(&msg.truth.rows),
                None => {
                    self.per_app.insert(app.clone(), msg.truth.rows);
                }
            }
        }
    }

    /// Adds another run's truth into this one (the runs must not share event ids).
    pub fn merge(&mut self, other: &Truth) {
        for (app, sum) in &other.per_app {
            self.per_app.entry(app.clone()).or_default().merge(sum);
        }
        self.malformed_messages += other.malformed_messages;
        self.messages += other.messages;
        for (reason, count) in &other.dead_letters_by_reason {
            *self.dead_letters_by_reason.entry(reason.clone()).or_default() += count;
        }
    }

    /// Sum over all apps.
    pub fn total(&self) -> AppTruth {
        let mut total = AppTruth::default();
        for sum in self.per_app.values() {
            total.merge(sum);
        }
        total
    }

    /// Pretty JSON, for files the tests and the demo compare against.
    pub fn to_json(&self) -> String {
        // Maps of strings to integers always serialise; the fallback only keeps the signature infallible.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A fixed-width table for terminals.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<26} {:>9} {:>7} {:>13} {:>12} {:>12} {:>12} {:>10} {:>9} {:>8} {:>8}",
            "app",
            "requests",
            "errors",
            "input_tok",
            "output_tok",
            "cached_tok",
            "written_tok",
            "reasoning",
            "feedback",
            "h_evals",
            "h_flag"
        );
        let mut row = |name: &str, t: &AppTruth| {
            let _ = writeln!(
                out,
                "{:<26} {:>9} {:>7} {:>13} {:>12} {:>12} {:>12} {:>10} {:>9} {:>8} {:>8}",
                name,
                t.requests,
                t.errors,
                t.input_tokens,
                t.output_tokens,
                t.cache_read_tokens,
                t.cache_write_tokens,
                t.reasoning_tokens,
                t.feedback,
                t.hallucination_evals,
                t.hallucination_flagged
            );
        };
        for (app, sum) in &self.per_app {
            row(app, sum);
        }
        row("TOTAL", &self.total());
        let _ = writeln!(out, "messages: {}  malformed: {}", self.messages, self.malformed_messages);
        out
    }
}
