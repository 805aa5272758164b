//! librdkafka client configuration: driftwatch's settings for exactly-once consumption, then
//! the operator's passthrough table (TLS, SASL, tuning) on top.

use rdkafka::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;
use tracing::warn;

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
/// passthrough cannot switch off manual commits. Warns of each passthrough setting that weakens
/// security ([`weakened_security`]): a configuration is built once per run, when the daemon
/// creates its consumer or `check-config` checks it.
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    warn_of_weakened_security(kafka);
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

/// Passthrough properties whose values are shown in errors: each one's value is a number, a
/// flag, a name from a fixed list or a path, never a secret. Any other property's value is
/// never printed, since a property's name says too little to tell a secret
/// (`sasl.oauthbearer.extensions` holds credentials; a misspelt `sasl.passwd` holds a password).
/// Names are compared exactly, as librdkafka compares them.
const PROPERTIES_SHOWN_WITH_THEIR_VALUE: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "enable.ssl.certificate.verification",
    "ssl.endpoint.identification.algorithm",
    "ssl.ca.location",
    "partition.assignment.strategy",
    "statistics.interval.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "queued.max.messages.kbytes",
    "queued.min.messages",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.wait.max.ms",
    "max.partition.fetch.bytes",
    "topic.metadata.refresh.interval.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "socket.timeout.ms",
    "socket.keepalive.enable",
    "client.rack",
    "api.version.request",
    "broker.address.family",
    "isolation.level",
    "check.crcs",
    "log_level",
    "debug",
    // Producer properties (`driftwatch loadgen --producer-property`).
    "linger.ms",
    "queue.buffering.max.ms",
    "batch.num.messages",
    "batch.size",
    "acks",
    "request.required.acks",
    "compression.type",
    "compression.codec",
    "enable.idempotence",
    "message.timeout.ms",
    "message.max.bytes",
    "queue.buffering.max.messages",
    "queue.buffering.max.kbytes",
    "retries",
    "request.timeout.ms",
];

/// Whether the value of librdkafka property `key` may be printed: only for the properties on a
/// fixed list of properties that hold no secret.
pub fn value_may_be_shown(key: &str) -> bool {
    PROPERTIES_SHOWN_WITH_THEIR_VALUE.contains(&key)
}

/// A passthrough setting that switches TLS protection off or sends Kafka credentials
/// unencrypted. Each is a legitimate choice in a lab, so it is accepted; it is said at every
/// start (and by `check-config`) so that it is not carried into production unnoticed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeakenedSecurity {
    /// The librdkafka property that does it.
    pub property: &'static str,
    /// What it exposes and what to change, for the operator.
    pub note: &'static str,
}

/// The settings among `kafka.librdkafka` that weaken the connection's security, in property
/// order. Values are compared as librdkafka parses them: booleans and enum values ignoring
/// case, SASL mechanism names exactly.
pub fn weakened_security(kafka: &KafkaConfig) -> Vec<WeakenedSecurity> {
    let value = |key: &str| kafka.librdkafka.get(key).map(|value| value.trim());
    let mut found = Vec::new();
    if value("enable.ssl.certificate.verification")
        .is_some_and(|value| ["false", "f", "0"].iter().any(|off| value.eq_ignore_ascii_case(off)))
    {
        found.push(WeakenedSecurity {
            property: "enable.ssl.certificate.verification",
            note: "TLS certificate verification is off for Kafka: any certificate is taken for the broker's, so \
                   anyone on the network path can read and alter the messages and the SASL credentials; remove \
                   `kafka.librdkafka.\"enable.ssl.certificate.verification\"` outside a lab",
        });
    }
    if value("ssl.endpoint.identification.algorithm").is_some_and(|value| value.eq_ignore_ascii_case("none")) {
        found.push(WeakenedSecurity {
            property: "ssl.endpoint.identification.algorithm",
            note: "TLS host name verification is off for Kafka: a certificate issued to any host by a trusted CA \
                   is taken for the broker's; remove `kafka.librdkafka.\"ssl.endpoint.identification.algorithm\"` \
                   (librdkafka's default is https) outside a lab",
        });
    }
    if value("security.protocol").is_some_and(|value| value.eq_ignore_ascii_case("sasl_plaintext")) {
        // librdkafka picks the mechanism by its exact name; `sasl.mechanism` is an alias, and
        // which of the two wins when both are set is not defined, so either counts.
        let mechanisms = [value("sasl.mechanisms"), value("sasl.mechanism")];
        let note = if mechanisms.contains(&Some("PLAIN")) {
            Some(
                "SASL PLAIN over `security.protocol` = sasl_plaintext sends the Kafka password in clear, and every \
                 message unencrypted; set `kafka.librdkafka.\"security.protocol\"` to sasl_ssl outside a lab",
            )
        } else if mechanisms.iter().flatten().any(|mechanism| mechanism.starts_with("SCRAM-SHA-")) {
            Some(
                "SASL SCRAM over `security.protocol` = sasl_plaintext exchanges the Kafka credentials unencrypted \
                 (open to offline guessing of the password) and sends every message unencrypted; set \
                 `kafka.librdkafka.\"security.protocol\"` to sasl_ssl outside a lab",
            )
        } else if mechanisms.contains(&Some("OAUTHBEARER")) {
            Some(
                "SASL OAUTHBEARER over `security.protocol` = sasl_plaintext sends the bearer token in clear, and \
                 every message unencrypted; set `kafka.librdkafka.\"security.protocol\"` to sasl_ssl outside a lab",
            )
        } else {
            None
        };
        found.extend(note.map(|note| WeakenedSecurity { property: "security.protocol", note }));
    }
    found
}

/// Log each of [`weakened_security`]'s findings as a warning.
fn warn_of_weakened_security(kafka: &KafkaConfig) {
    for WeakenedSecurity { property, note } in weakened_security(kafka) {
        warn!(property, "{note}");
    }
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
    crate::error::Error::ConsumerRefused { problem: problem.to_owned() }
}

/// Create a consumer from the whole client configuration, as the daemon does at start, and drop
/// it at once: librdkafka checks some properties only together, when a client is created
/// (`ssl.ca.location` naming a missing file once `security.protocol` is `ssl`), which
/// [`validate_passthrough`]'s property-by-property check cannot see. The consumer is given no
/// brokers, so it connects to none: librdkafka only connects to the brokers it is given, and a
/// check must not reach a cluster (nor fail because one is down). The error is worded by
/// [`describe_error`], as the daemon's is.
pub fn check_consumer(kafka: &KafkaConfig) -> Result<(), String> {
    let mut config = client_config(kafka);
    for brokers in ["bootstrap.servers", "metadata.broker.list"] {
        config.remove(brokers);
    }
    config.create::<BaseConsumer>().map(drop).map_err(|error| describe_error(&error, kafka))
}

/// librdkafka's words for an error, naming the offending property but never printing its value
/// unless [`value_may_be_shown`]: rdkafka's own text for a rejected property ends with its
/// value, and a mistyped `sasl.password` key would otherwise put the password in the log. A
/// client that cannot be created is said to be refused for its properties, which is what an
/// operator changes.
pub fn describe_error(error: &KafkaError, kafka: &KafkaConfig) -> String {
    let is_secret = |key: &str| kafka.secret_properties.contains(key);
    if let KafkaError::ClientCreation(reason) = error {
        // librdkafka's reason names the property; no known one quotes a value, but should one
        // start to, any value that may not be shown is cut out here.
        let reason = kafka
            .librdkafka
            .iter()
            .filter(|(key, value)| !value.is_empty() && (!value_may_be_shown(key) || is_secret(key)))
            .fold(reason.clone(), |reason, (_, value)| reason.replace(value.as_str(), "…"));
        return format!(
            "librdkafka refused the client properties (driftwatch's own, with `kafka.librdkafka` and \
             `kafka.librdkafka_files` on top): {reason}; fix or remove the property it names"
        );
    }
    describe_property_error(error, |key| format!("`kafka.librdkafka.\"{key}\"`"), is_secret)
}

/// [`describe_error`] for any client: `name` says where the property was set, `also_secret`
/// marks properties whose value is never shown even when [`value_may_be_shown`] says it may
/// (one read from a secret file). The value is shown only for a known property that
/// [`value_may_be_shown`] lists; otherwise the message names the property and says its value is
/// not shown.
pub fn describe_property_error(
    error: &KafkaError,
    name: impl Fn(&str) -> String,
    also_secret: impl Fn(&str) -> bool,
) -> String {
    match error {
        KafkaError::ClientConfig(result, description, key, value) => {
            // An unknown name may be a secret's misspelt one (`sasl.passwd`): only a known
            // property that is listed as never secret shows the value it was given.
            let known = *result == RDKafkaConfRes::RD_KAFKA_CONF_INVALID;
            let secret = !known || !value_may_be_shown(key) || also_secret(key);
            let name = name(key);
            let fix = if known {
                "correct the value or remove the property"
            } else {
                "correct the name (librdkafka's CONFIGURATION.md lists them) or remove the property"
            };
            if secret {
                // Also out of librdkafka's own words, should a version start quoting values.
                let description =
                    if value.is_empty() { description.clone() } else { description.replace(value, "…") };
                format!("{name}: {description} (its value is not shown); {fix}")
            } else {
                format!("{name} = {value:?}: {description}; {fix}")
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
    fn a_rejected_value_is_printed_only_for_a_property_known_to_hold_no_secret() {
        // Secrets that no name fragment gives away: OAUTHBEARER extensions carry credentials.
        for (key, value) in [
            ("sasl.oauthbearer.extensions", "PW-S3cr3t-x"),
            ("sasl.oauthbearer.method", "PW-S3cr3t-x"),
            ("ssl.endpoint.identification.algorithm.typo", "PW-S3cr3t-x"),
            ("socket.send.buffer.bytes", "PW-S3cr3t-x"),
        ] {
            let mut k = kafka();
            k.librdkafka.insert(key.to_owned(), value.to_owned());
            let problems = validate_passthrough(&k).join("\n");
            let problems = if problems.is_empty() { check_consumer(&k).err().unwrap_or_default() } else { problems };
            assert!(problems.contains(key), "{key} is named: {problems}");
            assert!(!problems.contains("S3cr3t"), "{key}: {problems}");
            assert!(problems.contains("remove"), "says what to fix: {problems}");
        }
        let mut k = kafka();
        k.librdkafka.insert("security.protocol".to_owned(), "tls-please".to_owned());
        let problems = validate_passthrough(&k).join("\n");
        assert!(problems.contains("\"tls-please\""), "a listed property shows its value: {problems}");
    }

    #[test]
    fn the_check_consumer_connects_to_no_broker() -> Result<(), Box<dyn std::error::Error>> {
        let broker = std::net::TcpListener::bind("127.0.0.1:0")?;
        broker.set_nonblocking(true)?;
        let k = KafkaConfig { brokers: broker.local_addr()?.to_string(), ..kafka() };
        assert_eq!(check_consumer(&k), Ok(()));
        // The kernel completes a connection before it is accepted: any attempt is queued here.
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(broker.accept().is_err(), "check_consumer connected to the broker");
        Ok(())
    }

    fn weakened(pairs: &[(&str, &str)]) -> Vec<&'static str> {
        let mut k = kafka();
        for &(key, value) in pairs {
            k.librdkafka.insert(key.to_owned(), value.to_owned());
        }
        weakened_security(&k).into_iter().map(|found| found.property).collect()
    }

    #[test]
    fn each_setting_that_weakens_security_is_noted_once() {
        for value in ["false", "FALSE", "f", "0"] {
            assert_eq!(
                weakened(&[("enable.ssl.certificate.verification", value)]),
                ["enable.ssl.certificate.verification"],
                "{value}"
            );
        }
        for value in ["none", "NONE", "None"] {
            assert_eq!(
                weakened(&[("ssl.endpoint.identification.algorithm", value)]),
                ["ssl.endpoint.identification.algorithm"],
                "{value}"
            );
        }
        for (mechanism_key, mechanism) in [
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.mechanism", "PLAIN"),
            ("sasl.mechanisms", "SCRAM-SHA-256"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.mechanisms", "OAUTHBEARER"),
        ] {
            for protocol in ["sasl_plaintext", "SASL_PLAINTEXT"] {
                assert_eq!(
                    weakened(&[("security.protocol", protocol), (mechanism_key, mechanism)]),
                    ["security.protocol"],
                    "{protocol} {mechanism}"
                );
            }
        }
        assert_eq!(
            weakened(&[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanisms", "PLAIN"),
                ("enable.ssl.certificate.verification", "false"),
                ("ssl.endpoint.identification.algorithm", "none"),
            ]),
            ["enable.ssl.certificate.verification", "ssl.endpoint.identification.algorithm", "security.protocol"]
        );
    }

    #[test]
    fn secure_settings_are_not_noted() {
        for pairs in [
            &[][..],
            &[("enable.ssl.certificate.verification", "true")],
            &[("ssl.endpoint.identification.algorithm", "https")],
            &[("security.protocol", "sasl_ssl"), ("sasl.mechanisms", "PLAIN")],
            // Kerberos does not send the password, and GSSAPI is librdkafka's default mechanism.
            &[("security.protocol", "sasl_plaintext"), ("sasl.mechanisms", "GSSAPI")],
            &[("security.protocol", "sasl_plaintext")],
        ] {
            assert_eq!(weakened(pairs), Vec::<&str>::new(), "{pairs:?}");
        }
    }

    #[test]
    fn the_notes_name_the_property_and_no_value() {
        let mut k = kafka();
        k.librdkafka.insert("security.protocol".to_owned(), "sasl_plaintext".to_owned());
        k.librdkafka.insert("sasl.mechanisms".to_owned(), "PLAIN".to_owned());
        k.librdkafka.insert("sasl.password".to_owned(), "hunter2-SECRET".to_owned());
        k.librdkafka.insert("enable.ssl.certificate.verification".to_owned(), "false".to_owned());
        for found in weakened_security(&k) {
            assert!(found.note.contains(&format!("`kafka.librdkafka.\"{}\"`", found.property)), "{found:?}");
            assert!(!found.note.contains("SECRET"), "{found:?}");
        }
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
