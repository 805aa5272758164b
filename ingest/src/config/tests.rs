use std::time::Duration;

use super::kafka::default_topics;
use super::*;
use crate::decode::{DecodeConfig, PayloadFormat};

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

#[test]
fn empty_file_gives_working_defaults() -> TestResult {
    let config = Config::from_toml_str("", "test", no_env())?;
    assert_eq!(config.lake.location, "./lake");
    assert!(config.kafka.is_none());
    assert!(config.flush.max_rows > 0);
    Ok(())
}

#[test]
fn kafka_defaults_to_the_three_design_topics() -> TestResult {
    let config = Config::from_toml_str("[kafka]\nbrokers = \"b:9092\"\n", "test", no_env())?;
    let kafka = config.kafka.ok_or("kafka section missing")?;
    let names: Vec<_> = kafka.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["otlp_spans", "otlp_logs", "llm_events"]);
    assert_eq!(kafka.group_id, "driftwatch");
    Ok(())
}

#[test]
fn a_lake_subtable_alone_keeps_the_default_location() -> TestResult {
    let config = Config::from_toml_str("[lake.parquet]\nmax_row_group_rows = 1000\n", "test", no_env())?;
    assert_eq!((config.lake.location.as_str(), config.lake.parquet.max_row_group_rows), ("./lake", 1000));
    Ok(())
}

#[test]
fn unknown_key_is_named() {
    let err = Config::from_toml_str("[flush]\nmax_rowz = 5\n", "driftwatch.toml", no_env())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("max_rowz"), "{err}");
    assert!(err.contains("driftwatch.toml"), "{err}");
}

#[test]
fn a_wrong_value_in_one_of_several_apps_says_which_line() {
    let text = "[[apps]]\nid = \"a\"\nteam = \"t\"\n\n[[apps]]\nid = \"b\"\nteam = \"t\"\nmax_risk_level = \"hgih\"\n";
    let err = Config::from_toml_str(text, "driftwatch.toml", no_env()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("hgih") && err.contains("line 8"), "{err}");
}

#[test]
fn invalid_values_name_key_and_fix() {
    let text = r#"
        [http]
        bearer_token = ""
        [flush]
        max_rows = 0
        max_bytes = 0
        [metrics]
        max_series = 0
        [lake.parquet]
        compression_level = 0
        bloom_filter_fpp = 1.5
        [kafka]
        brokers = "b:9092"
        [kafka.librdkafka]
        "enable.auto.commit" = "true"
        "auto.offset.reset" = "latest"
        [[apps]]
        id = "a"
        team = "t"
        monthly_budget_usd = -3
        [[apps]]
        id = "a"
        team = "t"
    "#;
    let err = Config::from_toml_str(text, "test", no_env()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`flush.max_rows`"), "{err}");
    assert!(err.contains("`flush.max_bytes`"), "{err}");
    assert!(err.contains("`metrics.max_series`"), "{err}");
    assert!(err.contains("`lake.parquet.compression_level` must be a zstd level, 1 to 22"), "{err}");
    assert!(err.contains("`lake.parquet.bloom_filter_fpp` must be strictly between 0 and 1"), "{err}");
    assert!(err.contains("enable.auto.commit"), "{err}");
    assert!(
        err.contains("\"auto.offset.reset\"` is set by driftwatch itself") && err.contains("kafka.start_from"),
        "{err}"
    );
    assert!(err.contains("`apps[0].monthly_budget_usd`"), "{err}");
    assert!(err.contains("listed twice"), "{err}");
    assert!(err.contains("`http.bearer_token` is empty"), "{err}");
}

/// A size or a listen address the deserializer cannot read gets an example of what it takes
/// (the walkthrough audit: "expected parsable string" and "invalid socket address syntax" said
/// neither).
#[test]
fn unreadable_sizes_and_addresses_get_an_example() {
    let err = |text: &str| Config::from_toml_str(text, "t", no_env()).err().map(|e| e.to_string()).unwrap_or_default();
    let size = err("[flush]\nmax_buffered_bytes = \"lots\"\n");
    assert!(size.contains("`flush.max_buffered_bytes`") && size.contains("e.g. \"64 MiB\""), "{size}");
    let listen = err("[http]\nlisten = \"localhost:9464\"\n");
    assert!(listen.contains("`http.listen`") && listen.contains("e.g. \"0.0.0.0:9464\""), "{listen}");
}

#[test]
fn flush_max_bytes_above_one_gib_is_rejected_with_the_limit() -> TestResult {
    let flush = |max_bytes: &str| {
        let text = format!("[flush]\nmax_bytes = \"{max_bytes}\"\nmax_buffered_bytes = \"8 GiB\"\n");
        Config::from_toml_str(&text, "test", no_env())
    };
    let err = flush("3 GiB").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`flush.max_bytes`") && err.contains("must be at most 1.0 GiB"), "{err}");
    assert!(!err.contains("max_buffered_bytes"), "only the one problem: {err}");
    // One decimal would show 1025 MiB as the limit itself.
    let err = flush("1025 MiB").err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`flush.max_bytes` (1.0 GiB, 1074790400 bytes) must be at most 1.0 GiB"), "{err}");
    assert_eq!(flush("1 GiB")?.flush.max_bytes, MAX_FLUSH_BYTES);
    Ok(())
}

#[test]
fn env_overrides_nest_and_type() -> TestResult {
    let env = vec![
        ("DRIFTWATCH_LAKE__LOCATION".to_owned(), "s3://bucket/lake".to_owned()),
        ("DRIFTWATCH_FLUSH__MAX_ROWS".to_owned(), "1234".to_owned()),
        ("DRIFTWATCH_FLUSH__MAX_AGE".to_owned(), "3s".to_owned()),
        ("DRIFTWATCH_KAFKA__BROKERS".to_owned(), "k1:9092,k2:9092".to_owned()),
        ("DRIFTWATCH_CONFIG".to_owned(), "ignored.toml".to_owned()),
        ("HOME".to_owned(), "/root".to_owned()),
    ];
    let config = Config::from_toml_str("[lake]\nlocation = \"/tmp/x\"\n", "test", env)?;
    assert_eq!(config.lake.location, "s3://bucket/lake");
    assert_eq!(config.flush.max_rows, 1234);
    assert_eq!(config.flush.max_age, Duration::from_secs(3));
    assert_eq!(config.kafka.map(|k| k.brokers).as_deref(), Some("k1:9092,k2:9092"));
    Ok(())
}

#[test]
fn env_override_of_the_wrong_type_names_the_variable_and_how_to_quote() -> TestResult {
    let number = vec![("DRIFTWATCH_KAFKA__GROUP_ID".to_owned(), "2024".to_owned())];
    let text = "[kafka]\nbrokers = \"b:9092\"\n";
    let err = Config::from_toml_str(text, "k.toml", number).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("DRIFTWATCH_KAFKA__GROUP_ID") && err.contains("quote"), "{err}");
    let quoted = vec![("DRIFTWATCH_KAFKA__GROUP_ID".to_owned(), "\"2024\"".to_owned())];
    let kafka = Config::from_toml_str(text, "k.toml", quoted)?.kafka.ok_or("kafka section missing")?;
    assert_eq!(kafka.group_id, "2024");
    Ok(())
}

#[test]
fn env_override_into_a_scalar_is_refused() {
    let env = vec![("DRIFTWATCH_LAKE__LOCATION__X".to_owned(), "1".to_owned())];
    let err = Config::from_toml_str("[lake]\nlocation = \"/tmp\"\n", "test", env).err().map(|e| e.to_string());
    assert!(err.unwrap_or_default().contains("DRIFTWATCH_LAKE__LOCATION__X"));
}

#[test]
fn shipped_example_configs_are_valid() -> TestResult {
    let secrets = tempfile::tempdir()?;
    let password = secrets.path().join("kafka-password");
    std::fs::write(&password, "example\n")?;
    for (name, text) in [
        ("driftwatch.example.toml", include_str!("../../../config/driftwatch.example.toml")),
        ("dev.toml", include_str!("../../../config/dev.toml")),
    ] {
        let text = text.replace("/run/secrets/kafka-password", &password.display().to_string());
        let config = Config::from_toml_str(&text, name, no_env())?;
        assert!(config.kafka.is_some(), "{name} configures Kafka");
    }
    Ok(())
}

#[test]
fn secrets_that_look_like_numbers_are_taken_as_text_and_never_quoted_in_errors() -> TestResult {
    let env = vec![
        ("DRIFTWATCH_HTTP__BEARER_TOKEN".to_owned(), "834729384729384".to_owned()),
        ("DRIFTWATCH_KAFKA__LIBRDKAFKA__SASL.PASSWORD".to_owned(), "0x1F".to_owned()),
        ("DRIFTWATCH_KAFKA__LIBRDKAFKA__SASL.USERNAME".to_owned(), "\"2024\"".to_owned()),
        ("DRIFTWATCH_LAKE__OPTIONS__AWS_SESSION_TOKEN".to_owned(), "123456789".to_owned()),
        ("DRIFTWATCH_LAKE__OPTIONS__AWS_ALLOW_HTTP".to_owned(), "true".to_owned()),
    ];
    let text = "[kafka]\nbrokers = \"b:9092\"\n[kafka.librdkafka]\n\"fetch.min.bytes\" = 1\n\"enable.ssl.certificate.verification\" = true\n";
    let config = Config::from_toml_str(text, "driftwatch.toml", env)?;
    let kafka = config.kafka.ok_or("no kafka")?;
    assert_eq!(kafka.librdkafka.get("sasl.password").map(String::as_str), Some("0x1F"));
    assert_eq!(kafka.librdkafka.get("sasl.username").map(String::as_str), Some("2024"), "quotes as TOML drops them");
    assert_eq!(config.lake.options.get("aws_session_token").map(String::as_str), Some("123456789"));
    assert_eq!(config.lake.options.get("aws_allow_http").map(String::as_str), Some("true"));
    assert_eq!(kafka.librdkafka.get("fetch.min.bytes").map(String::as_str), Some("1"));
    assert_eq!(kafka.librdkafka.get("enable.ssl.certificate.verification").map(String::as_str), Some("true"));
    assert!(config.http.bearer_token.is_some());

    let err = Config::from_toml_str("[http]\nbearer_token = 834729384729384\n", "driftwatch.toml", no_env())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("bearer token must be a quoted string"), "{err}");
    assert!(!err.contains("834729384729384"), "{err}");
    let unterminated = "[kafka.librdkafka]\n\"sasl.password\" = \"hunter2SECRET\n";
    let err = Config::from_toml_str(unterminated, "t", no_env()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("line 2") && !err.contains("hunter2SECRET"), "{err}");
    Ok(())
}

#[test]
fn passthrough_values_that_would_stall_the_daemon_are_refused() {
    let text = "[kafka]\nbrokers = \"b:9092\"\n[kafka.librdkafka]\n\"statistics.interval.ms\" = 0\n";
    let err = Config::from_toml_str(text, "t", no_env()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("statistics.interval.ms") && err.contains("above 0"), "{err}");
    // Every assignor, eager or cooperative, is fine.
    for assignor in ["roundrobin", "range", "cooperative-sticky"] {
        let fine = format!(
            "[kafka]\nbrokers = \"b:9092\"\n[kafka.librdkafka]\n\"partition.assignment.strategy\" = \"{assignor}\"\n\"statistics.interval.ms\" = 1000\n"
        );
        assert!(Config::from_toml_str(&fine, "t", no_env()).is_ok(), "{assignor}");
    }
}

/// The Kafka audit's two passthrough settings that librdkafka takes and exactly-once does not:
/// reading uncommitted transactions, and a rebalance timeout shorter than a revoke may take.
#[test]
fn passthrough_values_that_break_transactions_or_revokes_are_refused() {
    let config = |properties: &str| {
        let text = format!("[kafka]\nbrokers = \"b:9092\"\n[kafka.librdkafka]\n{properties}\n");
        Config::from_toml_str(&text, "t", no_env()).err().map(|e| e.to_string())
    };
    let err =
        config("\"isolation.level\" = \"read_uncommitted\"\n\"max.poll.interval.ms\" = 60000").unwrap_or_default();
    assert!(err.contains("isolation.level") && err.contains("aborted transactions"), "{err}");
    assert!(err.contains("max.poll.interval.ms") && err.contains("at least 120000"), "{err}");
    assert_eq!(config("\"isolation.level\" = \"READ_COMMITTED\"\n\"max.poll.interval.ms\" = 120000"), None);
}

#[test]
fn librdkafka_secrets_are_read_from_files() -> TestResult {
    let dir = tempfile::tempdir()?;
    let password = dir.path().join("kafka-password");
    std::fs::write(&password, "s3cr=t \n")?;
    let text = format!(
        "[kafka]\nbrokers = \"b:9092\"\n[kafka.librdkafka]\n\"sasl.username\" = \"u\"\n\
         [kafka.librdkafka_files]\n\"sasl.password\" = {:?}\n",
        password.display().to_string()
    );
    let kafka = Config::from_toml_str(&text, "test", no_env())?.kafka.ok_or("kafka section missing")?;
    assert_eq!(kafka.librdkafka.get("sasl.password").map(String::as_str), Some("s3cr=t "));
    assert_eq!(kafka.librdkafka.get("sasl.username").map(String::as_str), Some("u"));
    assert!(kafka.librdkafka_files.is_empty());
    Ok(())
}

/// A config printed with `{:?}` (a log line, a panic, a test failure) shows no secret: not a
/// SASL password written inline or read from a file, not the object store's keys.
#[test]
fn a_config_printed_for_debugging_shows_no_secret() -> TestResult {
    let dir = tempfile::tempdir()?;
    let password = dir.path().join("kafka-password");
    std::fs::write(&password, "FromFileSecret42\n")?;
    let text = format!(
        "[kafka]\nbrokers = \"b:9092\"\n[kafka.librdkafka]\n\"sasl.username\" = \"svc-user\"\n\
         \"ssl.key.password\" = \"InlineSecret42\"\n\"fetch.max.bytes\" = 1048576\n\
         [kafka.librdkafka_files]\n\"sasl.password\" = {:?}\n\
         [lake]\nlocation = \"s3://bucket/lake\"\n[lake.options]\naws_secret_access_key = \"LakeSecret42\"\n",
        password.display().to_string()
    );
    let config = Config::from_toml_str(&text, "test", no_env())?;
    let printed = format!("{config:?}");
    for secret in ["FromFileSecret42", "InlineSecret42", "LakeSecret42"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
    assert!(printed.contains("1048576") && printed.contains("aws_secret_access_key"), "{printed}");
    Ok(())
}

#[test]
fn unreadable_empty_twice_set_or_reserved_secret_files_name_the_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n")?;
    let missing = dir.path().join("missing");
    let text = format!(
        "[kafka]\nbrokers = \"b:9092\"\n[kafka.librdkafka]\n\"sasl.username\" = \"u\"\n\
         [kafka.librdkafka_files]\n\"sasl.password\" = {missing:?}\n\"ssl.key.password\" = {empty:?}\n\
         \"sasl.username\" = {empty:?}\n\"group.id\" = {empty:?}\n[flush]\nmax_rows = 0\n",
        missing = missing.display().to_string(),
        empty = empty.display().to_string(),
    );
    let err = Config::from_toml_str(&text, "test", no_env()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`kafka.librdkafka_files.\"sasl.password\"`: cannot read"), "{err}");
    assert!(err.contains("missing"), "{err}");
    assert!(err.contains("`kafka.librdkafka_files.\"ssl.key.password\"`") && err.contains("is empty"), "{err}");
    assert!(err.contains("also set in `kafka.librdkafka`"), "{err}");
    assert!(err.contains("`kafka.librdkafka_files.\"group.id\"` is set by driftwatch"), "{err}");
    assert!(err.contains("`flush.max_rows`"), "the other problems are reported in the same run: {err}");
    Ok(())
}

#[test]
fn shipped_collector_config_writes_the_default_topics_keyed_by_trace() -> TestResult {
    let collector: serde_yaml::Value = serde_yaml::from_str(include_str!("../../../config/otelcol-kafka.yaml"))?;
    let kafka = &collector["exporters"]["kafka"];
    for (signal, format) in [("traces", PayloadFormat::OtlpTraces), ("logs", PayloadFormat::OtlpLogs)] {
        let topic = kafka[signal]["topic"].as_str();
        let read_as = default_topics().into_iter().find(|t| Some(t.name.as_str()) == topic).map(|t| t.format);
        assert_eq!(read_as, Some(format), "{signal} go to {topic:?}, a default topic of that format");
        let encoding = kafka[signal]["encoding"].as_str();
        assert!(matches!(encoding, Some("otlp_proto" | "otlp_json")), "{signal} encoded as {encoding:?}");
    }
    for key in ["partition_traces_by_id", "partition_logs_by_trace_id"] {
        assert_eq!(kafka[key].as_bool(), Some(true), "{key}: retries must land in the first copy's partition");
    }
    Ok(())
}

#[test]
fn decode_section_round_trips_to_decoder_config() {
    let section = DecodeSection::default();
    let back = section.to_decode_config();
    let base = DecodeConfig::default();
    assert_eq!(back.max_payload_bytes, base.max_payload_bytes);
    assert_eq!(back.min_event_time, base.min_event_time);
    assert_eq!(back.max_future_skew_nanos, base.max_future_skew_nanos);
}

fn problems_of(text: &str) -> String {
    Config::from_toml_str(text, "t.toml", no_env()).err().map(|e| e.to_string()).unwrap_or_default()
}

#[test]
fn a_value_of_the_wrong_type_names_the_dotted_key_and_how_to_write_it() {
    let err = problems_of("[flush]\nmax_rows = \"ten\"\n");
    assert!(err.contains("`flush.max_rows`") && err.contains("line 2"), "{err}");
    assert!(err.contains("whole number without quotes"), "{err}");
    let err = problems_of("[flush]\nmax_age = \"10\"\n");
    assert!(err.contains("`flush.max_age`") && err.contains("\"10s\"") && err.contains("\"5m\""), "{err}");
    let err = problems_of("[[apps]]\nid = \"a\"\nteam = \"t\"\n[[apps]]\nid = \"b\"\nteam = 5\n");
    assert!(err.contains("`apps[1].team`") && err.contains("line 6"), "{err}");
    let err = problems_of("[kafka]\nbrokers = \"b:9092\"\n[kafka.librdkafka]\n\"sasl.password\" = [1]\n");
    assert!(err.contains("`kafka.librdkafka.\"sasl.password\"`"), "{err}");

    let env = vec![("DRIFTWATCH_FLUSH__MAX_AGE".to_owned(), "10".to_owned())];
    let err = Config::from_toml_str("", "t.toml", env).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("DRIFTWATCH_FLUSH__MAX_AGE") && err.contains("`flush.max_age`"), "{err}");
    assert!(err.contains("\"10s\""), "{err}");
}

#[test]
fn durations_that_would_wrap_or_never_fire_are_bounded() -> TestResult {
    let kafka = |timeout: &str| format!("[kafka]\nbrokers = \"b:9092\"\noffset_query_timeout = \"{timeout}\"\n");
    let err = problems_of(&kafka("25days"));
    assert!(err.contains("`kafka.offset_query_timeout` (25days) must be at most 10m"), "{err}");
    let timeout = Config::from_toml_str(&kafka("10m"), "t", no_env())?.kafka.map(|k| k.offset_query_timeout);
    assert_eq!(timeout, Some(MAX_OFFSET_QUERY_TIMEOUT));

    let err = problems_of("[flush]\nmax_age = \"1000000years\"\n");
    assert!(err.contains("`flush.max_age`") && err.contains("must be at most 1day"), "{err}");
    assert_eq!(Config::from_toml_str("[flush]\nmax_age = \"1day\"\n", "t", no_env())?.flush.max_age, MAX_FLUSH_AGE);

    let err = problems_of("[decode]\nmax_future_skew = \"1000years\"\n");
    assert!(err.contains("`decode.max_future_skew`") && err.contains("must be at most 1year"), "{err}");

    let scopes =
        "[decode]\nskip_instrumentation_scopes = [\"openinference.instrumentation.langchain\", \" litellm\", \"\"]\n";
    let err = problems_of(scopes);
    assert!(err.contains("`decode.skip_instrumentation_scopes[1]` = \" litellm\"") && err.contains("[2]"), "{err}");
    assert!(!err.contains("[0]"), "{err}");
    let fine = "[decode]\nskip_instrumentation_scopes = [\"openinference.instrumentation.langchain\"]\n";
    let skipped = Config::from_toml_str(fine, "t", no_env())?.decode.to_decode_config().skip_instrumentation_scopes;
    assert_eq!(skipped, ["openinference.instrumentation.langchain"]);
    Ok(())
}

#[test]
fn inflight_flushes_are_bounded_before_the_semaphore_sees_them() -> TestResult {
    let kafka = |n: u64| format!("[kafka]\nbrokers = \"b:9092\"\nmax_inflight_flushes = {n}\n");
    for n in [0, 65, 4_611_686_018_427_387_904] {
        let err = problems_of(&kafka(n));
        assert!(err.contains(&format!("`kafka.max_inflight_flushes` ({n}) must be 1 to 64")), "{err}");
    }
    let most = Config::from_toml_str(&kafka(64), "t", no_env())?.kafka.map(|k| k.max_inflight_flushes);
    assert_eq!(most, Some(MAX_INFLIGHT_FLUSHES));
    Ok(())
}

#[test]
fn topic_names_follow_kafkas_rules_and_patterns_are_refused() -> TestResult {
    let topic = |name: &str| {
        format!("[kafka]\nbrokers = \"b:9092\"\n[[kafka.topics]]\nname = {name:?}\nformat = \"json_events\"\n")
    };
    let long = "t".repeat(250);
    for (name, expected) in [
        ("b1 llm events", "holds ' '"),
        ("^llm_.*", "regex subscription"),
        ("..", "not a topic name"),
        (long.as_str(), "at most 249"),
        ("événements", "ASCII letters"),
    ] {
        let err = problems_of(&topic(name));
        assert!(err.contains("`kafka.topics[0].name`") && err.contains(expected), "{name}: {err}");
    }
    for name in ["llm_events.v2-prod", &"t".repeat(249)] {
        Config::from_toml_str(&topic(name), "t", no_env())?;
    }
    Ok(())
}

#[test]
fn min_event_time_is_a_past_rfc3339_time_that_fits_in_nanoseconds() -> TestResult {
    let at = |value: &str| format!("[decode]\nmin_event_time = {value}\n");
    for (value, expected) in [
        ("\"2100-01-01T00:00:00Z\"", "is not in the past"),
        ("\"2999-01-01T00:00:00Z\"", "outside the times"),
        ("\"1600-01-01T00:00:00Z\"", "outside the times"),
        ("\"2000-01-01\"", "\"2000-01-01T00:00:00Z\""),
        ("2000-01-01", "\"2000-01-01T00:00:00Z\""),
        ("2000-01-01T00:00:00", "\"2000-01-01T00:00:00Z\""),
        ("2000", "not a TOML integer"),
    ] {
        let err = problems_of(&at(value));
        assert!(err.contains("`decode.min_event_time`") && err.contains(expected), "{value}: {err}");
    }
    for value in ["\"2001-02-03T04:05:06Z\"", "2001-02-03T04:05:06Z", "2001-02-03T05:05:06+01:00"] {
        let config = Config::from_toml_str(&at(value), "t", no_env())?;
        assert_eq!(config.decode.to_decode_config().min_event_time, 981_173_106_000_000_000, "{value}");
    }
    Ok(())
}

#[test]
fn aliases_of_reserved_librdkafka_keys_are_refused_like_the_keys() {
    let text = "[kafka]\nbrokers = \"b:9092\"\n[kafka.librdkafka]\n\"metadata.broker.list\" = \"evil:9092\"\n\
                \"auto.commit.enable\" = \"true\"\n";
    let err = problems_of(text);
    assert!(
        err.contains("`kafka.librdkafka.\"metadata.broker.list\"` is set by driftwatch itself")
            && err.contains("use `kafka.brokers`"),
        "{err}"
    );
    assert!(err.contains("`kafka.librdkafka.\"auto.commit.enable\"` is set by driftwatch itself"), "{err}");
}

/// A secret-looking key; no message or `Debug` output may hold any of it.
const FINGERPRINT_KEY: &str = "5f0c9a27e4b1d8c36a72f9e0b4c1d5a8e3f60b7c2d9a4e1f8b5c0d7a3e6f2b91";

fn assert_key_not_shown(text: &str) {
    for part in [&FINGERPRINT_KEY[..12], &FINGERPRINT_KEY[26..38], &FINGERPRINT_KEY[52..]] {
        assert!(!text.contains(part) && !text.contains(&part.to_uppercase()), "the key shows in: {text}");
    }
}

fn write_key_file(dir: &std::path::Path, name: &str, text: &str) -> std::io::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path.display().to_string())
}

#[test]
fn without_a_fingerprint_section_fingerprints_are_unkeyed() -> TestResult {
    let config = Config::from_toml_str("", "test", no_env())?;
    assert!(config.fingerprint.key().is_none());
    let config = Config::from_toml_str("[fingerprint]\n", "test", no_env())?;
    assert!(config.fingerprint.key().is_none());
    Ok(())
}

#[test]
fn the_fingerprint_key_is_read_from_its_file_or_the_environment() -> TestResult {
    use crate::enrich::{FingerprintKey, keyed_content_hash};
    let expected = FingerprintKey::from_hex(FINGERPRINT_KEY)?;
    let same_key = |config: &Config| {
        config.fingerprint.key().map(|key| keyed_content_hash(key, "x")) == Some(keyed_content_hash(&expected, "x"))
    };
    let dir = tempfile::tempdir()?;
    // As `openssl rand -hex 32 > file` writes it: one trailing newline.
    let path = write_key_file(dir.path(), "fingerprint-key", &format!("{FINGERPRINT_KEY}\n"))?;
    let config = Config::from_toml_str(&format!("[fingerprint]\nkey_file = {path:?}\n"), "test", no_env())?;
    assert!(same_key(&config), "key file");

    let env = vec![("DRIFTWATCH_FINGERPRINT__KEY".to_owned(), FINGERPRINT_KEY.to_owned())];
    assert!(same_key(&Config::from_toml_str("", "test", env)?), "environment");
    let env = vec![("DRIFTWATCH_FINGERPRINT__KEY".to_owned(), format!("\"{FINGERPRINT_KEY}\""))];
    assert!(same_key(&Config::from_toml_str("", "test", env)?), "quoted in the environment");
    let env = vec![("DRIFTWATCH_FINGERPRINT__KEY_FILE".to_owned(), path.clone())];
    assert!(same_key(&Config::from_toml_str("", "test", env)?), "key file from the environment");
    // The shipped example's commented setting, uncommented.
    let example = "# [fingerprint]\n# key_file = \"/run/secrets/fingerprint-key\"\n";
    assert!(include_str!("../../../config/driftwatch.example.toml").contains(example));
    let uncommented = example.replace("# ", "").replace("/run/secrets/fingerprint-key", &path);
    assert!(same_key(&Config::from_toml_str(&uncommented, "driftwatch.example.toml", no_env())?), "example");

    // A hex key that TOML would read as a float (`0e...` is 0.0) is still the key.
    let float_like = format!("0e{}", "7".repeat(62));
    let env = vec![("DRIFTWATCH_FINGERPRINT__KEY".to_owned(), float_like.clone())];
    let config = Config::from_toml_str("", "test", env)?;
    let key = config.fingerprint.key().ok_or("no key")?;
    assert_eq!(keyed_content_hash(key, "x"), keyed_content_hash(&FingerprintKey::from_hex(&float_like)?, "x"));
    Ok(())
}

#[test]
fn a_bad_fingerprint_key_fails_naming_the_setting_and_never_the_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let short = write_key_file(dir.path(), "short", &FINGERPRINT_KEY[..63])?;
    let not_hex =
        write_key_file(dir.path(), "not-hex", &format!("{}z{}", &FINGERPRINT_KEY[..30], &FINGERPRINT_KEY[31..]))?;
    let good = write_key_file(dir.path(), "good", FINGERPRINT_KEY)?;
    let missing = dir.path().join("missing").display().to_string();
    let key_env = |value: &str| vec![("DRIFTWATCH_FINGERPRINT__KEY".to_owned(), value.to_owned())];
    let file = |path: &str| format!("[fingerprint]\nkey_file = {path:?}\n");
    for (text, env, expected) in [
        (
            file(&short),
            no_env(),
            vec!["`fingerprint.key_file`", "short", "64 hex characters", "has 63", "openssl rand -hex 32"],
        ),
        (file(&not_hex), no_env(), vec!["`fingerprint.key_file`", "not-hex", "character 31 is not a hex digit"]),
        (file(&missing), no_env(), vec!["`fingerprint.key_file`: cannot read", "missing"]),
        (
            file(&good),
            key_env(FINGERPRINT_KEY),
            vec!["`fingerprint.key`", "`fingerprint.key_file` are both set", "keep one"],
        ),
        (
            String::new(),
            key_env(&FINGERPRINT_KEY[1..]),
            vec!["DRIFTWATCH_FINGERPRINT__KEY", "has 63", "openssl rand -hex 32"],
        ),
        (String::new(), key_env(&format!("{FINGERPRINT_KEY}ab")), vec!["`fingerprint.key`", "has 66"]),
        (String::new(), key_env(""), vec!["`fingerprint.key` is empty", "DRIFTWATCH_FINGERPRINT__KEY"]),
        (format!("[fingerprint]\nkey = {:?}\n", &FINGERPRINT_KEY[..40]), no_env(), vec!["`fingerprint.key`", "has 40"]),
        // Written in the wrong place or as a number: refused without serde quoting the value.
        (format!("fingerprint = {FINGERPRINT_KEY:?}\n"), no_env(), vec!["`fingerprint`", "must be a table"]),
    ] {
        let err = Config::from_toml_str(&text, "driftwatch.toml", env).err().map(|e| e.to_string()).unwrap_or_default();
        for words in expected {
            assert!(err.contains(words), "{words:?} missing from: {err}");
        }
        assert_key_not_shown(&err);
    }

    // A key that TOML reads as a number is refused without quoting it.
    let err = Config::from_toml_str("[fingerprint]\nkey = 8347293847\n", "driftwatch.toml", no_env())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("line 2") && err.contains("must be a quoted string") && !err.contains("8347293847"), "{err}");

    // Reported beside the other problems, so one run shows them all.
    let text = format!("{}[flush]\nmax_rows = 0\n", file(&short));
    let err =
        Config::from_toml_str(&text, "driftwatch.toml", no_env()).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("`fingerprint.key_file`") && err.contains("`flush.max_rows`"), "{err}");
    Ok(())
}

#[test]
fn the_fingerprint_key_is_absent_from_debug_output() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = write_key_file(dir.path(), "fingerprint-key", FINGERPRINT_KEY)?;
    let from_file = Config::from_toml_str(&format!("[fingerprint]\nkey_file = {path:?}\n"), "test", no_env())?;
    let env = vec![("DRIFTWATCH_FINGERPRINT__KEY".to_owned(), FINGERPRINT_KEY.to_owned())];
    let from_env = Config::from_toml_str("", "test", env)?;
    for config in [from_file, from_env] {
        assert!(config.fingerprint.key().is_some());
        for debug in [format!("{config:?}"), format!("{config:#?}"), format!("{:?}", config.fingerprint)] {
            assert!(debug.contains("FingerprintKey(<redacted>)"), "{debug}");
            assert_key_not_shown(&debug);
        }
    }
    let debug = format!(
        "{:?}",
        Config::from_toml_str(
            "",
            "test",
            vec![("DRIFTWATCH_FINGERPRINT__KEY".to_owned(), FINGERPRINT_KEY.to_owned())]
        )?
        .fingerprint
    );
    assert!(debug.contains("KeyText(<redacted>)"), "{debug}");
    Ok(())
}
