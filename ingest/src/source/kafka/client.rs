//! librdkafka client configuration: driftwatch's settings for exactly-once consumption, then
//! the operator's passthrough table (TLS, SASL, tuning) on top.

use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;
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

/// First wait before reconnecting to a broker unless the operator overrides it. librdkafka
/// doubles a broker's own reconnect wait up to `reconnect.backoff.max.ms` (10 s), but while
/// every broker is down it also picks one to connect to every `min(reconnect.backoff.ms / 2,
/// 1 s)` for its cluster requests (and re-bootstraps), whatever the doubling: with librdkafka's
/// 100 ms that was about 20 connection attempts a second for the whole outage, each a TLS and
/// SASL handshake on a secured cluster. 2 s brings it to the floor of one a second.
const RECONNECT_BACKOFF_MS: &str = "2000";

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

/// The error of a consumer librdkafka would not create, `problem` worded by [`describe_error`]:
/// one wording for the daemon's start and for `check-config`.
pub(crate) fn consumer_refused(problem: &str) -> crate::error::Error {
    crate::error::Error::Other(format!("kafka: creating the consumer: {problem}"))
}

/// Create a consumer from the whole client configuration, as the daemon does at start, and drop
/// it: librdkafka checks some properties only together, when a client is created (`ssl.ca.location`
/// naming a missing file once `security.protocol` is `ssl`), which [`validate_passthrough`]'s
/// property-by-property check cannot see. Nothing is subscribed, and creation does not wait for
/// a broker. The error is worded by [`describe_error`], as the daemon's is.
pub fn check_consumer(kafka: &KafkaConfig) -> Result<(), String> {
    client_config(kafka).create::<BaseConsumer>().map(drop).map_err(|error| describe_error(&error, kafka))
}

/// librdkafka's words for an error, naming the offending property but never printing the value
/// of a secret one: rdkafka's own text for a rejected property ends with its value, and a
/// mistyped `sasl.password` key would otherwise put the password in the log. A client that
/// cannot be created is said to be refused for its properties, which is what an operator changes.
pub fn describe_error(error: &KafkaError, kafka: &KafkaConfig) -> String {
    let is_secret = |key: &str| kafka.secret_properties.contains(key);
    if let KafkaError::ClientCreation(reason) = error {
        // librdkafka's reason names the property; no known one quotes a value, but should one
        // start to, a secret's is cut out here.
        let reason = kafka
            .librdkafka
            .iter()
            .filter(|(key, value)| !value.is_empty() && (is_secret_property(key) || is_secret(key)))
            .fold(reason.clone(), |reason, (_, value)| reason.replace(value.as_str(), "…"));
        return format!(
            "librdkafka refused the client properties (driftwatch's own, with `kafka.librdkafka` and \
             `kafka.librdkafka_files` on top): {reason}; fix or remove the property it names"
        );
    }
    describe_property_error(error, |key| format!("`kafka.librdkafka.\"{key}\"`"), is_secret)
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
        assert_eq!(client_config(&kafka()).get("reconnect.backoff.ms"), Some("2000"));
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
    fn properties_refused_only_when_a_client_is_created_fail_the_check() {
        // Loopback, so that the consumer's brokers thread looks nothing up.
        let quiet = || KafkaConfig { brokers: "127.0.0.1:9".to_owned(), ..kafka() };
        assert_eq!(check_consumer(&quiet()), Ok(()));
        let mut k = quiet();
        k.librdkafka.insert("security.protocol".to_owned(), "ssl".to_owned());
        k.librdkafka.insert("ssl.ca.location".to_owned(), "/nonexistent/ca.pem".to_owned());
        assert_eq!(validate_passthrough(&k), Vec::<String>::new(), "each property alone is fine");
        let problem = check_consumer(&k).err().unwrap_or_default();
        assert!(problem.contains("ssl.ca.location") && problem.contains("`kafka.librdkafka`"), "{problem}");

        let mut k = quiet();
        k.librdkafka.insert("security.protocol".to_owned(), "ssl".to_owned());
        k.librdkafka.insert("ssl.key.pem".to_owned(), "not-a-key-SECRET".to_owned());
        let problem = check_consumer(&k).err().unwrap_or_default();
        assert!(problem.contains("librdkafka refused") && !problem.contains("SECRET"), "{problem}");
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
