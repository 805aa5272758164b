//! What a dead letter keeps of a rejected message: scrubbed whole, then cut, so that PII the
//! cut splits is masked like the rest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bytesize::ByteSize;

use super::{PartitionBuffer, PayloadFormat, Processor};
use crate::aggregate::AggregateConfig;
use crate::config::Config;
use crate::enrich::{Enricher, ModelRegistry};
use crate::telemetry::{Metrics, MetricsConfig};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// 2025-06-01T12:00:00Z and a little after.
const NOW: i64 = 1_748_779_300_000_000_000;

/// The payload of the one dead letter `payload` leaves, with copies cut to `cap` bytes.
fn dead_letter_payload(
    payload: &[u8],
    format: PayloadFormat,
    cap: usize,
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.decode.max_dead_letter_payload_bytes = ByteSize::b(cap as u64);
    let (policies, default_policy) = config.content_policies();
    let enricher = Enricher::new(Arc::new(ModelRegistry::default_embedded()?), policies, default_policy);
    let mut processor = Processor::new(&config, Arc::new(enricher), Metrics::new(&MetricsConfig::default()));
    let mut buffer = PartitionBuffer::new(Arc::from("s"), Arc::from("t"), 0, 0, &AggregateConfig::default(), 100);
    processor.process(&mut buffer, payload, format, (0, 1), NOW);
    assert_eq!(buffer.dead_letters.len(), 1);
    Ok(buffer.dead_letters.remove(0).payload)
}

#[test]
fn pii_split_by_the_cut_of_a_rejected_message_is_masked() -> TestResult {
    for (secret, fragments) in
        [("card 4111 1111 1111 1111", ["4111", "1111"]), ("mail jane.doe@example.com", ["jane", "example"])]
    {
        // Not JSON (the message is cut short), so the whole message is the rejected item.
        let message = format!(r#"{{"id":"e1","app":"a","input":"{secret} and more"#);
        let cap = message.find(secret).expect("secret in message") + secret.len() - 3;
        for format in [PayloadFormat::JsonEvents, PayloadFormat::Auto] {
            let kept = dead_letter_payload(message.as_bytes(), format, cap)?;
            let kept = String::from_utf8(kept)?;
            assert!(kept.len() <= cap && kept.starts_with(r#"{"id":"e1""#), "{kept:?}");
            for fragment in fragments {
                assert!(!kept.contains(fragment), "{fragment} kept in {kept:?}");
            }
        }
    }
    Ok(())
}
