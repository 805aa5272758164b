//! The fleet's clock and dice: turns a [`FleetConfig`] into a lazy stream of
//! inference and feedback records in emission order.
//!
//! Inference end times follow a diurnal rate (stratified over the period, so
//! the stream is produced in time order without buffering). Each call draws an
//! app, a model, tokens, latency and content from the catalog; feedback, late
//! emissions and producer retries wait in a small heap keyed by emission time,
//! so memory depends on the event rate times the longest delay, never on the
//! number of inferences.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use driftwatch_lake::model::{CallStatus, FeedbackEvent, InferenceEvent, UnixNanos};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::catalog::{
    AppProfile, EMBEDDINGS_MAX_INPUT_TOKENS, EMBEDDINGS_MODEL, ModelProfile, build_apps, model_profile,
};
use super::content;
use super::{FleetConfig, FleetRecord};

const NANOS_PER_SEC: f64 = 1e9;
const DAY_SECS: f64 = 86_400.0;
/// Peak-to-mean swing of the diurnal request rate.
const DIURNAL_AMPLITUDE: f64 = 0.55;
/// Seconds after midnight UTC where the sine term crosses zero upwards, putting the peak at 14:00 UTC.
const DIURNAL_PHASE_SECS: f64 = 8.0 * 3600.0;
/// Share of calls that replay a golden case.
const GOLDEN_RATE: f64 = 0.04;
/// Share of free-form inputs carrying planted personal data.
const PII_RATE: f64 = 0.06;
/// Share of feedback that is an LLM-as-judge hallucination evaluation (the rest is user thumbs).
const EVAL_SHARE: f64 = 0.55;
/// Longest feedback delay, so the pending heap stays small.
const MAX_FEEDBACK_DELAY_S: f64 = 20.0 * 60.0;

/// The synthetic fleet: apps plus a seeded, replayable record stream.
#[derive(Debug, Clone)]
pub struct Fleet {
    config: FleetConfig,
    apps: Vec<AppProfile>,
    /// Cumulative traffic weights for drawing an app.
    app_cdf: Vec<f64>,
    models: Vec<Vec<ModelProfile>>,
}

impl Fleet {
    /// Builds the fleet; `config.apps` is raised to at least one app.
    pub fn new(config: FleetConfig) -> Self {
        let apps = build_apps(config.apps.max(1));
        let total: f64 = apps.iter().map(|a| a.traffic_weight).sum();
        let mut acc = 0.0;
        let app_cdf = apps
            .iter()
            .map(|a| {
                acc += a.traffic_weight / total;
                acc
            })
            .collect();
        let models = apps.iter().map(|a| a.models.iter().map(|(_, m)| model_profile(m)).collect()).collect();
        Self { config, apps, app_cdf, models }
    }

    /// The apps of the fleet, in catalog order.
    pub fn apps(&self) -> &[AppProfile] {
        &self.apps
    }

    /// The configuration the fleet was built from.
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// All records in emission order. Lazy: each call restarts the same sequence.
    pub fn records(&self) -> impl Iterator<Item = FleetRecord> + '_ {
        Records {
            fleet: self,
            rng: ChaCha8Rng::seed_from_u64(self.config.seed),
            next_index: 0,
            ready: None,
            pending: BinaryHeap::new(),
            seq: 0,
            normaliser: diurnal_cdf(self.config.duration_secs.max(1) as f64),
        }
    }
}

/// A record waiting for its emission time.
#[derive(Debug)]
struct Pending {
    emit: UnixNanos,
    seq: u64,
    record: FleetRecord,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.emit, self.seq) == (other.emit, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.emit, self.seq).cmp(&(other.emit, other.seq))
    }
}

struct Records<'a> {
    fleet: &'a Fleet,
    rng: ChaCha8Rng,
    next_index: usize,
    /// The next on-time inference, emitted at its own time.
    ready: Option<(UnixNanos, FleetRecord)>,
    pending: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    /// Diurnal CDF at the end of the period.
    normaliser: f64,
}

impl Iterator for Records<'_> {
    type Item = FleetRecord;

    fn next(&mut self) -> Option<FleetRecord> {
        while self.ready.is_none() && self.next_index < self.fleet.config.inferences {
            self.draw_next();
        }
        let heap_first = match (&self.ready, self.pending.peek()) {
            (Some((ready_at, _)), Some(Reverse(p))) => p.emit <= *ready_at,
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if heap_first {
            self.pending.pop().map(|Reverse(p)| p.record)
        } else {
            self.ready.take().map(|(_, record)| record)
        }
    }
}

/// Lognormal draw by median and log-space sigma.
fn lognormal<R: Rng + ?Sized>(rng: &mut R, median: f64, sigma: f64) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    median * (sigma * z).exp()
}

/// Integral of the diurnal rate from 0 to `t` seconds.
fn diurnal_cdf(t: f64) -> f64 {
    let w = std::f64::consts::TAU / DAY_SECS;
    t + DIURNAL_AMPLITUDE / w * ((-DIURNAL_PHASE_SECS * w).cos() - ((t - DIURNAL_PHASE_SECS) * w).cos())
}

/// Seconds into the period where the diurnal CDF reaches `target` (Newton, derivative >= 1 - amplitude).
fn diurnal_inverse(target: f64, duration: f64) -> f64 {
    let w = std::f64::consts::TAU / DAY_SECS;
    let mut t = target.clamp(0.0, duration);
    for _ in 0..8 {
        let rate = 1.0 + DIURNAL_AMPLITUDE * ((t - DIURNAL_PHASE_SECS) * w).sin();
        t = (t - (diurnal_cdf(t) - target) / rate).clamp(0.0, duration);
    }
    t
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes`, appended to `out`, as the text formats spell ids.
pub(super) fn push_hex(bytes: &[u8], out: &mut String) {
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

fn random_hex<R: Rng + ?Sized>(rng: &mut R, len_bytes: usize) -> String {
    let mut out = String::with_capacity(len_bytes * 2);
    for _ in 0..len_bytes {
        push_hex(&[rng.random::<u8>()], &mut out);
    }
    out
}

/// The finish reason as `provider` reports it, for the fleet's OpenAI-style `reason`: Anthropic's
/// API has its own words, which instrumentations pass on unchanged.
fn provider_finish_reason<'a>(provider: &str, reason: &'a str) -> &'a str {
    match (provider, reason) {
        ("anthropic", "stop") => "end_turn",
        ("anthropic", "length") => "max_tokens",
        ("anthropic", "tool_calls") => "tool_use",
        ("anthropic", "content_filter") => "refusal",
        _ => reason,
    }
}

fn secs_to_nanos(secs: f64) -> i64 {
    (secs * NANOS_PER_SEC) as i64
}

/// Whether a call that uses the prompt cache opens its conversation: one in four (the first hex
/// digit of its trace id is 0 to 3). Told by the trace id already drawn rather than by a new draw,
/// which would shift every later draw of the seeded stream.
fn opens_conversation(event: &InferenceEvent) -> bool {
    event.trace_id.as_deref().and_then(|id| id.chars().next()).is_some_and(|digit| ('0'..='3').contains(&digit))
}

/// Stable per-key generator, so golden cases repeat their tokens and text.
fn keyed_rng(key: &str) -> ChaCha8Rng {
    let mut seed = [0u8; 32];
    seed.copy_from_slice(blake3::hash(key.as_bytes()).as_bytes());
    ChaCha8Rng::from_seed(seed)
}

impl Records<'_> {
    fn push_pending(&mut self, emit: UnixNanos, record: FleetRecord) {
        self.seq += 1;
        self.pending.push(Reverse(Pending { emit, seq: self.seq, record }));
    }

    fn draw_next(&mut self) {
        let fleet = self.fleet;
        let config = &fleet.config;
        let index = self.next_index;
        self.next_index += 1;
        let duration = config.duration_secs.max(1) as f64;
        // Stratified sampling keeps times increasing without sorting.
        let quantile = (index as f64 + self.rng.random::<f64>()) / config.inferences as f64;
        let offset = diurnal_inverse(quantile * self.normaliser, duration);
        let time = config.start + secs_to_nanos(offset);
        let fraction = offset / duration;

        let pick: f64 = self.rng.random();
        let app_index = fleet.app_cdf.iter().position(|&c| pick < c).unwrap_or(fleet.apps.len() - 1);
        let mut event = self.draw_inference(app_index, time, fraction);
        if !config.capture_content {
            // Dropped after drawing, so the rest of the fleet is the same as with content.
            event.input_content = None;
            event.output_content = None;
        }

        if !event.status.is_error()
            && event.operation != "embeddings"
            && self.rng.random_bool(config.feedback_ratio.clamp(0.0, 1.0))
        {
            let feedback = self.draw_feedback(&fleet.apps[app_index], &event, fraction);
            let emit = feedback.time;
            self.push_pending(emit, FleetRecord::Feedback(feedback));
        }
        let emit = if self.rng.random_bool(config.late_ratio.clamp(0.0, 1.0)) {
            time + secs_to_nanos(self.rng.random_range(120.0..1200.0))
        } else {
            time
        };
        if self.rng.random_bool(config.duplicate_ratio.clamp(0.0, 1.0)) {
            let retry_at = emit + secs_to_nanos(self.rng.random_range(1.0..30.0));
            self.push_pending(retry_at, FleetRecord::Retry(event.clone()));
        }
        if emit == time {
            self.ready = Some((time, FleetRecord::Inference(event)));
        } else {
            self.push_pending(emit, FleetRecord::Inference(event));
        }
    }

    fn draw_inference(&mut self, app_index: usize, time: UnixNanos, fraction: f64) -> InferenceEvent {
        let fleet = self.fleet;
        let app = &fleet.apps[app_index];
        let rng = &mut self.rng;
        let pick: f64 = rng.random();
        let mut acc = 0.0;
        let mut model_index = app.models.len() - 1;
        for (i, w) in app.model_weights.iter().enumerate() {
            acc += w;
            if pick < acc {
                model_index = i;
                break;
            }
        }
        let (provider, request_model) = &app.models[model_index];
        let profile = fleet.models[app_index][model_index];
        let embeddings = request_model == EMBEDDINGS_MODEL;
        let swapped = app.model_swap_at.is_some_and(|at| fraction >= at);
        let response_model = if swapped { profile.swapped_snapshot } else { profile.snapshot };
        let version_index = usize::from(fraction >= app.prompt_switch_at);
        // OpenAI's chat and responses APIs report the tier that served the call; its embeddings
        // API does not.
        let service_tier = (provider == "openai" && !embeddings).then(|| {
            let priority = app.priority_tier_from.is_some_and(|at| fraction >= at);
            (if priority { "priority" } else { "default" }).to_owned()
        });
        let prompt_version = &app.prompt_versions[version_index.min(app.prompt_versions.len() - 1)];

        let trace_id = random_hex(rng, 16);
        let span_id = random_hex(rng, 8);
        let mut event_id = String::with_capacity(48);
        event_id.push_str(&trace_id);
        event_id.push_str(&span_id);

        let golden = (!embeddings && rng.random_bool(GOLDEN_RATE)).then(|| rng.random_range(0..content::GOLDEN_CASES));
        let golden_case = golden.map(|n| format!("gc-{}-{n}", app.id));
        let input_text = match golden {
            Some(n) => content::golden_input(app.content_kind, n),
            None => content::input(rng, app.content_kind, PII_RATE),
        };

        let mut event = InferenceEvent {
            event_id,
            trace_id: Some(trace_id),
            span_id: Some(span_id),
            time,
            app: app.id.clone(),
            environment: Some(app.environment.clone()),
            provider: Some(provider.clone()),
            operation: if embeddings { "embeddings".to_owned() } else { app.operation.clone() },
            request_model: Some(request_model.clone()),
            response_model: Some(response_model.to_owned()),
            prompt_id: Some(app.prompt_id.clone()),
            prompt_version: Some(prompt_version.clone()),
            service_tier,
            golden_case,
            status: CallStatus::Ok,
            ..InferenceEvent::default()
        };

        if rng.random_bool(app.error_rate.clamp(0.0, 1.0)) {
            // Embeddings have no content filter and apps give them a short timeout.
            let (error_type, latency_s) = match (embeddings, rng.random_range(0..10u8)) {
                (_, 0..=4) => ("rate_limit_exceeded", rng.random_range(0.05..0.4)),
                (false, 5..=6) => {
                    ("timeout", if rng.random_bool(0.7) { 30.0 } else { 60.0 } + rng.random_range(0.0..0.2))
                }
                (true, 5..=6) => ("timeout", 10.0 + rng.random_range(0.0..0.2)),
                (true, _) | (false, 7..=8) => ("server_error", lognormal(rng, 1.5, 0.6)),
                (false, _) => ("content_filter", lognormal(rng, 0.5, 0.3)),
            };
            // A failed call gets no response, so nothing reports the model or tier that served it.
            event.response_model = None;
            event.service_tier = None;
            event.status = CallStatus::Error;
            event.error_type = Some(error_type.to_owned());
            event.latency_ms = Some(latency_s * 1e3);
            event.start_time = time - secs_to_nanos(latency_s);
            event.input_content = Some(input_text);
            return event;
        }

        // Golden inputs are fixed, so their prompt size is too.
        let input_tokens = match &event.golden_case {
            Some(case) => lognormal(&mut keyed_rng(case), app.input_tokens_median, 0.3),
            None => lognormal(rng, app.input_tokens_median, 0.45),
        }
        .round()
        .max(8.0) as i64;
        let input_tokens = if embeddings { input_tokens.min(EMBEDDINGS_MAX_INPUT_TOKENS) } else { input_tokens };
        event.input_tokens = Some(input_tokens);
        if profile.caches_prompts && input_tokens >= 1024 && rng.random_bool(0.45) {
            let cached = (input_tokens as f64 * rng.random_range(0.5..0.9)) as i64 / 128 * 128;
            // Where the provider reports writing its cache, the first call of a conversation
            // writes the prompt prefix that the later ones read.
            if profile.cache_write_usd_per_m.is_some() && opens_conversation(&event) {
                event.cache_write_tokens = Some(cached);
            } else {
                event.cache_read_tokens = Some(cached);
            }
        }

        if embeddings {
            let latency_s = lognormal(rng, 0.4 * (1.0 + input_tokens as f64 / 8000.0), 0.35);
            event.latency_ms = Some(latency_s * 1e3);
            event.start_time = time - secs_to_nanos(latency_s);
            event.reported_cost_usd = app.reports_cost.then(|| profile.cost_usd(input_tokens, 0, 0, 0));
            event.input_content = Some(input_text);
            return event;
        }

        let median_out = app.output_tokens_median.get(version_index).copied().unwrap_or(200.0);
        let golden_key = event.golden_case.as_ref().map(|case| format!("{case}|{prompt_version}|{response_model}"));
        let drawn = match &golden_key {
            Some(key) => lognormal(&mut keyed_rng(key), median_out, 0.5),
            None => lognormal(rng, median_out, 0.5),
        };
        // Reasoning tokens count against the output limit (OpenAI's max_completion_tokens,
        // Anthropic's max_tokens, Gemini's maxOutputTokens), so the answer gets what they leave.
        let reasoning = profile
            .reasoning_median
            .map(|m| (lognormal(rng, m, 0.6).round() as i64).clamp(0, app.max_output_tokens - 1));
        let room = app.max_output_tokens - reasoning.unwrap_or(0);
        let mut visible = drawn.round().max(1.0) as i64;
        let mut finish = "stop";
        if visible >= room {
            visible = room;
            finish = "length";
        } else if rng.random_bool(app.tool_call_rate) {
            visible = visible.min(60);
            finish = "tool_calls";
        } else if rng.random_bool(0.002) {
            visible = 12;
            finish = "content_filter";
        }
        event.reasoning_tokens = reasoning;
        let output_tokens = visible + reasoning.unwrap_or(0);
        event.output_tokens = Some(output_tokens);
        event.finish_reason = Some(provider_finish_reason(provider, finish).to_owned());

        let ttft_s = lognormal(rng, profile.ttft_median_s, profile.ttft_sigma)
            + reasoning.unwrap_or(0) as f64 / profile.tokens_per_s;
        let speed = lognormal(rng, profile.tokens_per_s, 0.25);
        let mut latency_s = ttft_s + visible as f64 / speed;
        // Provider congestion: a thin, long tail.
        if rng.random_bool(0.015) {
            latency_s *= rng.random_range(2.5..6.0);
        }
        event.latency_ms = Some(latency_s * 1e3);
        event.start_time = time - secs_to_nanos(latency_s);
        if app.streaming {
            event.ttft_ms = Some(ttft_s.min(latency_s) * 1e3);
        }
        event.response_id = profile.response_id_prefix.map(|prefix| {
            let mut id = String::with_capacity(prefix.len() + 29);
            id.push_str(prefix);
            content::push_alnum(rng, if prefix.is_empty() { 22 } else { 29 - prefix.len().min(20) }, &mut id);
            id
        });
        let (cached, written) = (event.cache_read_tokens.unwrap_or(0), event.cache_write_tokens.unwrap_or(0));
        event.reported_cost_usd =
            app.reports_cost.then(|| profile.cost_usd(input_tokens, cached, written, output_tokens));

        let target_chars = (visible as usize * 4).min(8000);
        let output_text = match finish {
            "tool_calls" => format!(
                "{{\"tool\":\"lookup\",\"arguments\":{{\"query\":\"{}\",\"limit\":{}}}}}",
                app.id,
                rng.random_range(3..10u8)
            ),
            "content_filter" => "I can't help with that request.".to_owned(),
            _ => match &golden_key {
                Some(key) => content::golden_output(rng, app.content_kind, key, target_chars),
                None => content::output(rng, app.content_kind, target_chars),
            },
        };
        event.input_content = Some(input_text);
        event.output_content = Some(output_text);
        event
    }

    fn draw_feedback(&mut self, app: &AppProfile, event: &InferenceEvent, fraction: f64) -> FeedbackEvent {
        let rng = &mut self.rng;
        let evaluation = rng.random_bool(EVAL_SHARE);
        let swapped = app.model_swap_at.is_some_and(|at| fraction >= at);
        let (name, score, label, delay_s) = if evaluation {
            let rate = if swapped { app.hallucination_rate.1 } else { app.hallucination_rate.0 };
            let flagged = rng.random_bool(rate.clamp(0.0, 1.0));
            let score = if flagged { rng.random_range(0.6..1.0) } else { rng.random_range(0.0..0.35) };
            let label = if flagged { "hallucinated" } else { "grounded" };
            ("hallucination", Some((score * 1000.0_f64).round() / 1000.0), label, lognormal(rng, 120.0, 0.6))
        } else {
            let down = rng.random_bool(app.thumbs_down_rate.clamp(0.0, 1.0));
            let (score, label) = if down { (0.0, "down") } else { (1.0, "up") };
            ("user_thumbs", app.thumbs_scored.then_some(score), label, lognormal(rng, 45.0, 0.9).max(2.0))
        };
        let mut feedback_id = String::with_capacity(35);
        feedback_id.push_str("fb-");
        feedback_id.push_str(&random_hex(rng, 16));
        FeedbackEvent {
            feedback_id,
            time: event.time + secs_to_nanos(delay_s.min(MAX_FEEDBACK_DELAY_S)),
            app: event.app.clone(),
            environment: event.environment.clone(),
            name: name.to_owned(),
            score_value: score,
            score_label: Some(label.to_owned()),
            trace_id: event.trace_id.clone(),
            span_id: event.span_id.clone(),
            response_id: event.response_id.clone(),
            inference_id: Some(event.event_id.clone()),
            response_model: event.response_model.clone(),
            provider: event.provider.clone(),
            operation: Some(event.operation.clone()),
            prompt_id: event.prompt_id.clone(),
            prompt_version: event.prompt_version.clone(),
            source: None,
        }
    }
}
