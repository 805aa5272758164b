//! librdkafka client configuration: driftwatch's settings for exactly-once consumption, then
//! the operator's passthrough table (TLS, SASL, tuning) on top.

use rdkafka::ClientConfig;

use crate::config::{KafkaConfig, StartFrom};

/// Prefetch bound per partition queue unless the operator overrides it: librdkafka otherwise
/// prefetches up to 64 MiB per partition (vector#20939), which would make memory scale with
/// the number of partitions instead of with configuration.
const QUEUED_MAX_MESSAGES_KBYTES: &str = "16384";

/// Build the consumer configuration. Reserved keys are rejected by config validation, so the
/// passthrough cannot switch off manual commits.
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &kafka.group_id)
        .set("group.protocol", "classic")
        // Offsets are committed by driftwatch only after the lake holds the data.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.offset.reset",
            match kafka.start_from {
                StartFrom::Earliest => "earliest",
                StartFrom::Latest => "latest",
            },
        )
        .set("enable.partition.eof", "false")
        .set("queued.max.messages.kbytes", QUEUED_MAX_MESSAGES_KBYTES)
        .set("statistics.interval.ms", "5000")
        .set("session.timeout.ms", "30000")
        .set("max.poll.interval.ms", "300000")
        .set("client.id", "driftwatch");
    for (key, value) in &kafka.librdkafka {
        config.set(key, value);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn kafka() -> KafkaConfig {
        KafkaConfig {
            brokers: "b1:9092".to_owned(),
            group_id: "g".to_owned(),
            topics: Vec::new(),
            start_from: StartFrom::Earliest,
            offset_query_timeout: std::time::Duration::from_secs(1),
            max_inflight_flushes: 2,
            librdkafka: BTreeMap::new(),
            librdkafka_files: BTreeMap::new(),
        }
    }

    #[test]
    fn offsets_are_never_committed_automatically() {
        let config = client_config(&kafka());
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
        assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(config.get("group.protocol"), Some("classic"));
    }

    #[test]
    fn passthrough_applies_on_top() {
        let mut k = kafka();
        k.librdkafka.insert("security.protocol".to_owned(), "SASL_SSL".to_owned());
        k.librdkafka.insert("queued.max.messages.kbytes".to_owned(), "1024".to_owned());
        let config = client_config(&k);
        assert_eq!(config.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.get("queued.max.messages.kbytes"), Some("1024"));
    }
}
