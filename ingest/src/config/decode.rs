//! The `[decode]` section: payload size and event plausibility limits.

use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use crate::decode::DecodeConfig;

use super::validate::format_duration;

/// The longest `decode.max_future_skew`, a year: events dated further ahead are clock errors,
/// and a larger value would only switch the check off. (365.25 days, humantime's `1year`.)
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(31_557_600);

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
    /// Instrumentation scope names (`InstrumentationScope.name`) whose spans are skipped: a
    /// framework's layer over an instrumented provider client, which reports the same calls.
    pub skip_instrumentation_scopes: Vec<String>,
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
            skip_instrumentation_scopes: base.skip_instrumentation_scopes,
        }
    }
}

impl DecodeSection {
    /// What is wrong with the event time bounds: a minimum that is not in the past would send
    /// every event to dead letters, and one that nanoseconds since 1970 cannot hold, or a skew
    /// beyond [`MAX_FUTURE_SKEW`], would switch the check off.
    pub(super) fn problems(&self) -> Vec<String> {
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
        for (index, scope) in self.skip_instrumentation_scopes.iter().enumerate() {
            if scope.trim().is_empty() || scope.trim() != scope {
                problems.push(format!(
                    "`decode.skip_instrumentation_scopes[{index}]` = {scope:?}: write the scope name exactly as the \
                     instrumentation reports it (e.g. \"openinference.instrumentation.langchain\"), without \
                     surrounding spaces"
                ));
            }
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
            skip_instrumentation_scopes: self.skip_instrumentation_scopes.clone(),
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
