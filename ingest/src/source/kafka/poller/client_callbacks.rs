//! librdkafka's client callbacks: statistics (high watermarks and positions for the lag
//! metric, brokers seen up), log lines (forwarded to tracing; the asynchronous commit failures and mid-stream offset
//! resets that librdkafka reports only there are counted) and errors (counted by kind, logged
//! without flooding, and turned into [`BrokerHealth`] for readiness).

use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;

use super::PollerContext;
use crate::telemetry::ConsumerErrorKind;

impl ClientContext for PollerContext {
    fn stats(&self, statistics: Statistics) {
        if statistics.brokers.values().any(|broker| broker.state == "UP") {
            self.brokers.mark_up();
        }
        self.metrics.note_high_watermarks(
            statistics
                .topics
                .iter()
                .flat_map(|(topic, t)| t.partitions.values().map(move |p| (topic.as_str(), p.partition, p.hi_offset))),
        );
        // The position (`app_offset`) moves past transaction markers and aborted records that
        // are never handed on; set beside what was handed on, it tells lag where they end.
        let held = self.lock_held();
        self.metrics.note_consumer_positions(statistics.topics.iter().flat_map(|(topic, t)| {
            let held = &held;
            t.partitions
                .values()
                .map(move |p| (topic.as_str(), p.partition, held.positions.get(topic, p.partition), p.app_offset))
        }));
    }

    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        // librdkafka reports an asynchronous commit's failure to an offset-commit callback or a
        // reply queue; rdkafka 0.39's `commit(.., Async)` sets neither, and librdkafka then only
        // logs it under this facility.
        if facility == "COMMITFAIL" {
            self.metrics.record_consumer_error(ConsumerErrorKind::Commit);
        }
        // A position that fell out of the log while the partition was being consumed (retention
        // deleted messages not yet read, or the log was truncated or recreated): librdkafka
        // resets it to the log's start (`auto.offset.reset` is always earliest) and says so only
        // in this warning; no consumer error is raised for it.
        if facility == "OFFSET" && matches!(level, RDKafkaLogLevel::Warning) && message.contains("offset reset") {
            self.metrics.record_consumer_error(ConsumerErrorKind::OffsetReset);
        }
        forward_librdkafka_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = match error.rdkafka_error_code() {
            // Not an error: the end of a partition's log, reported when a user configuration
            // turns `enable.partition.eof` on.
            Some(RDKafkaErrorCode::PartitionEOF) => return,
            Some(RDKafkaErrorCode::AllBrokersDown) => {
                // librdkafka raises it again on every re-bootstrap cycle (about twice a second
                // while the brokers stay away): counted once per outage, so that the rate means
                // outages, not reconnect attempts.
                if !self.brokers.mark_down() {
                    return;
                }
                ConsumerErrorKind::AllBrokersDown
            }
            Some(RDKafkaErrorCode::BrokerTransportFailure) => ConsumerErrorKind::Transport,
            Some(code) if is_auth_refusal(code) => {
                self.brokers.mark_auth_refused();
                ConsumerErrorKind::Auth
            }
            // A fatal error arrives here under its underlying code (librdkafka translates
            // `ERR__FATAL` before handing the event on), so it is told apart, counted as fatal
            // and acted on where the poll returns it (`on_poll_error`).
            _ => ConsumerErrorKind::Client,
        };
        self.metrics.record_consumer_error(kind);
        self.log_rate_limited(kind.as_str(), &format!("{error}: {reason}"));
    }
}

/// Whether the brokers answer this client, as librdkafka's callbacks tell it, for readiness.
#[derive(Debug, Default)]
pub struct BrokerHealth {
    /// Every broker unreachable (librdkafka's "all brokers down").
    down: AtomicBool,
    /// The brokers refused this client's credentials or its rights since they were last up.
    auth_refused: AtomicBool,
}

impl BrokerHealth {
    /// A broker answered: a statistics report with a broker up, a message, an assignment.
    pub(in crate::source::kafka) fn mark_up(&self) {
        self.down.store(false, Ordering::Release);
        self.auth_refused.store(false, Ordering::Release);
    }

    /// Every broker is down; `true` when they were not already.
    fn mark_down(&self) -> bool {
        !self.down.swap(true, Ordering::AcqRel)
    }

    fn mark_auth_refused(&self) {
        self.auth_refused.store(true, Ordering::Release);
    }

    /// Why the daemon cannot consume, if the brokers are the reason.
    pub(in crate::source::kafka) fn unready_reason(&self) -> Option<&'static str> {
        if self.auth_refused.load(Ordering::Acquire) {
            Some(
                "Kafka brokers refuse this client (authentication or authorization failed; check the SASL/SSL settings and ACLs)",
            )
        } else if self.down.load(Ordering::Acquire) {
            Some("Kafka brokers unreachable")
        } else {
            None
        }
    }
}

/// Errors that say the brokers refused the client's credentials or its rights: retrying will
/// not help until an operator fixes the configuration or the ACLs.
fn is_auth_refusal(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
    )
}

/// librdkafka's log lines, as rdkafka's default `ClientContext::log` forwards them (under the
/// `librdkafka` target), for a context that also looks at them.
fn forward_librdkafka_log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", "librdkafka: {facility} {message}");
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "librdkafka: {facility} {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", "librdkafka: {facility} {message}");
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "librdkafka: {facility} {message}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::test_support::{TestResult, consumer_errors, context_over_a_fresh_lake};
    use super::*;

    /// rdkafka 0.39 registers no offset-commit callback, so librdkafka reports a failed
    /// asynchronous commit only as a COMMITFAIL log line: that line is what counts it.
    #[test]
    fn a_commit_failure_librdkafka_only_logs_is_counted() -> TestResult {
        let runtime = tokio::runtime::Runtime::new()?;
        let ((_lake, _receiver), context) = context_over_a_fresh_lake(&runtime, "commitfail", Duration::from_secs(1))?;
        context.log(RDKafkaLogLevel::Warning, "FETCH", "Fetch backoff");
        assert_eq!(consumer_errors(&context.metrics, "commit")?, (0, 0), "other log lines count nothing");
        context.log(
            RDKafkaLogLevel::Warning,
            "COMMITFAIL",
            "Offset commit (manual) failed for 1/1 partition(s) in join-state wait-unassign-to-complete: \
             Local: Waiting for coordinator: otlp_spans((null))[1]@164",
        );
        assert_eq!(consumer_errors(&context.metrics, "commit")?, (1, 1));
        Ok(())
    }

    /// A mid-stream reset of a position that fell out of the log is only a librdkafka warning;
    /// it is counted. The debug line of an ordinary reset (no committed offset) is not.
    #[test]
    fn a_position_reset_out_of_range_mid_stream_is_counted() -> TestResult {
        let runtime = tokio::runtime::Runtime::new()?;
        let ((_lake, _receiver), context) = context_over_a_fresh_lake(&runtime, "reset", Duration::from_secs(1))?;
        context.log(
            RDKafkaLogLevel::Debug,
            "OFFSET",
            "llm_events [0]: offset reset (at offset INVALID, broker 1) to offset BEGINNING: no previously \
             committed offset available: Local: No offset stored",
        );
        assert_eq!(consumer_errors(&context.metrics, "offset_reset")?, (0, 0));
        context.log(
            RDKafkaLogLevel::Warning,
            "OFFSET",
            "llm_events [0]: offset reset (at offset 1200 (leader epoch 3), broker 1) to offset BEGINNING \
             (leader epoch 3): fetch failed due to requested offset not available on the broker: Broker: Offset \
             out of range",
        );
        assert_eq!(consumer_errors(&context.metrics, "offset_reset")?, (1, 1));
        Ok(())
    }

    /// librdkafka raises "all brokers down" again on every re-bootstrap while they stay away;
    /// the counter says how many outages there were, and readiness says which kind.
    #[test]
    fn broker_outages_are_counted_once_each_and_auth_refusals_named() -> TestResult {
        let runtime = tokio::runtime::Runtime::new()?;
        let ((_lake, _receiver), context) = context_over_a_fresh_lake(&runtime, "outages", Duration::from_secs(1))?;
        let down = || KafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        assert_eq!(context.brokers.unready_reason(), None);
        for _ in 0..5 {
            context.error(down(), "2/2 brokers are down");
        }
        assert_eq!(consumer_errors(&context.metrics, "all_brokers_down")?, (1, 1));
        assert_eq!(context.brokers.unready_reason(), Some("Kafka brokers unreachable"));
        context.brokers.mark_up();
        assert_eq!(context.brokers.unready_reason(), None);
        context.error(down(), "2/2 brokers are down");
        assert_eq!(consumer_errors(&context.metrics, "all_brokers_down")?, (2, 2), "a second outage");

        context.error(KafkaError::Global(RDKafkaErrorCode::Authentication), "SASL SCRAM authentication failed");
        assert_eq!(consumer_errors(&context.metrics, "auth")?.1, 1);
        let reason = context.brokers.unready_reason().unwrap_or_default();
        assert!(reason.contains("authentication"), "{reason}");
        context.brokers.mark_up();
        assert_eq!(context.brokers.unready_reason(), None);
        Ok(())
    }
}
