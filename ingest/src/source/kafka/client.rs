//! librdkafka client configuration: driftwatch's settings for exactly-once consumption, then
//! the operator's passthrough table (TLS, SASL, tuning) on top.

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;

use crate::config::KafkaConfig;

/// Prefetch bound per partition queue unless the operator overrides it: librdkafka otherwise
/// prefetches up to 64 MiB per partition (vector#20939), which would make memory scale with
/// the number of partitions instead of with configuration.
const QUEUED_MAX_MESSAGES_KBYTES: &str = "16384";

/// How often topic metadata is refreshed unless the operator overrides it: librdkafka's 5 minute
/// default would leave a daemon started before its topics were created idle for minutes after
/// they appear. One metadata request per 30 s costs nothing.
const TOPIC_METADATA_REFRESH_MS: &str = "30000";

/// First wait before reconnecting to a broker unless the operator overrides it (librdkafka
/// doubles it up to `reconnect.backoff.max.ms`, 10 s). librdkafka's 100 ms made a daemon whose
/// brokers are down try to connect about 20 times a second for the whole outage, each a TLS and
/// SASL handshake on a secured cluster.
const RECONNECT_BACKOFF_MS: &str = "1000";

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
        // Not `start_from`: the daemon positions every assigned partition itself (checkpoint,
        // log start or log end), so librdkafka's reset only acts when a position falls out of
        // the log mid-stream: a partition paused through a long lake outage whose next offset
        // retention deleted meanwhile. `latest` would then skip every message still retained
        // and never ingested; `earliest` loses only what retention already deleted.
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("queued.max.messages.kbytes", QUEUED_MAX_MESSAGES_KBYTES)
        .set("topic.metadata.refresh.interval.ms", TOPIC_METADATA_REFRESH_MS)
        .set("statistics.interval.ms", "5000")
        .set("reconnect.backoff.ms", RECONNECT_BACKOFF_MS)
        .set("session.timeout.ms", "30000")
        .set("max.poll.interval.ms", "300000")
        .set("client.id", "driftwatch");
    for (key, value) in &kafka.librdkafka {
        config.set(key, value);
    }
    config
}

/// Whether a librdkafka property holds a secret, whose value is never printed.
pub fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "sasl.oauthbearer.config", "ssl.key.pem", "ssl_key", "keystore"]
        .iter()
        .any(|part| key.contains(part))
}

/// Check each passthrough property against this build of librdkafka without creating a client
/// (nothing connects): unknown names, malformed values, and features the build lacks. One
/// problem per bad property, worded by [`describe_error`].
pub fn validate_passthrough(kafka: &KafkaConfig) -> Vec<String> {
    kafka
        .librdkafka
        .iter()
        .filter_map(|(key, value)| {
            let mut one = ClientConfig::new();
            one.set(key, value);
            one.create_native_config().err().map(|error| describe_error(&error, kafka))
        })
        .collect()
}

/// librdkafka's words for an error, naming the offending property but never printing the value
/// of a secret one: rdkafka's own text for a rejected property ends with its value, and a
/// mistyped `sasl.password` key would otherwise put the password in the log.
pub fn describe_error(error: &KafkaError, kafka: &KafkaConfig) -> String {
    describe_property_error(
        error,
        |key| format!("`kafka.librdkafka.\"{key}\"`"),
        |key| kafka.secret_properties.contains(key),
    )
}

/// [`describe_error`] for any client: `name` says where the property was set, `also_secret`
/// marks properties known to be secrets beyond those [`is_secret_property`] recognises.
pub fn describe_property_error(
    error: &KafkaError,
    name: impl Fn(&str) -> String,
    also_secret: impl Fn(&str) -> bool,
) -> String {
    match error {
        KafkaError::ClientConfig(result, description, key, value) => {
            // An unknown name may be a secret's misspelt one (`sasl.passwd`): only a known,
            // non-secret property shows the value it was given.
            let known = *result == RDKafkaConfRes::RD_KAFKA_CONF_INVALID;
            let secret = !known || is_secret_property(key) || also_secret(key);
            let name = name(key);
            if secret {
                // Also out of librdkafka's own words, should a version start quoting values.
                let description =
                    if value.is_empty() { description.clone() } else { description.replace(value, "…") };
                format!("{name}: {description} (its value is not shown)")
            } else {
                format!("{name} = {value:?}: {description}")
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::config::StartFrom;

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
            secret_properties: std::collections::BTreeSet::new(),
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
    fn a_position_that_falls_out_of_the_log_resumes_at_its_start_whatever_start_from_says() {
        for start_from in [StartFrom::Earliest, StartFrom::Latest] {
            let config = client_config(&KafkaConfig { start_from, ..kafka() });
            assert_eq!(config.get("auto.offset.reset"), Some("earliest"), "{start_from:?}");
        }
    }

    #[test]
    fn new_topics_are_noticed_within_seconds() {
        let config = client_config(&kafka());
        assert_eq!(config.get("topic.metadata.refresh.interval.ms"), Some(TOPIC_METADATA_REFRESH_MS));
    }

    #[test]
    fn reconnects_to_a_down_broker_back_off_from_a_second_unless_overridden() {
        assert_eq!(client_config(&kafka()).get("reconnect.backoff.ms"), Some("1000"));
        let mut k = kafka();
        k.librdkafka.insert("reconnect.backoff.ms".to_owned(), "250".to_owned());
        assert_eq!(client_config(&k).get("reconnect.backoff.ms"), Some("250"));
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

    #[test]
    fn the_production_example_properties_are_supported_by_this_build() {
        // SASL_SSL with SCRAM needs librdkafka built with OpenSSL: without it the daemon
        // configured as the example says cannot start.
        let mut k = kafka();
        for (key, value) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "driftwatch"),
            ("sasl.password", "s3cret"),
            ("ssl.ca.location", "/etc/ssl/certs/ca-certificates.crt"),
        ] {
            k.librdkafka.insert(key.to_owned(), value.to_owned());
        }
        assert_eq!(validate_passthrough(&k), Vec::<String>::new());
    }

    #[test]
    fn a_rejected_property_is_named_and_a_secret_value_never_printed() {
        let mut k = kafka();
        k.librdkafka.insert("sasl.passwd".to_owned(), "hunter2-SECRET".to_owned());
        k.librdkafka.insert("session.timeout.ms".to_owned(), "banana".to_owned());
        k.librdkafka.insert("ssl.key.password.typo".to_owned(), "hunter3-SECRET".to_owned());
        k.librdkafka.insert("from.a.file".to_owned(), "hunter4-SECRET".to_owned());
        k.secret_properties.insert("from.a.file".to_owned());
        let problems = validate_passthrough(&k).join("\n");
        for key in ["sasl.passwd", "session.timeout.ms", "ssl.key.password.typo", "from.a.file"] {
            assert!(problems.contains(&format!("`kafka.librdkafka.\"{key}\"`")), "{key}: {problems}");
        }
        assert!(!problems.contains("SECRET"), "{problems}");
        assert!(problems.contains("banana"), "a value that is no secret helps: {problems}");
    }
}
