//! The binary as a user meets it: the demo on its embedded default, bad configuration failing at
//! start with the key and the fix, and structured JSON logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;

use anyhow::Context;

#[test]
fn demo_ingests_a_reproducible_fleet_and_matches_its_truth() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let run = |sub: &str| -> anyhow::Result<serde_json::Value> {
        let out = common::run_ok(
            common::driftwatch().args(["demo", "--inferences", "4000", "--json", "--dir"]).arg(dir.path().join(sub)),
        )?;
        Ok(serde_json::from_str(&out)?)
    };
    let first = run("a")?;
    // `--json` runs the demo's own check too (and exits non-zero when it fails).
    assert_eq!(first["check"]["mismatches"], serde_json::json!([]), "{}", first["check"]);
    let summary = first["summary"].as_array().expect("summary rows");
    assert!(summary.len() >= 5, "at least five apps");
    let truth = &first["truth"]["per_app"];
    for row in summary {
        let app = row["app"].as_str().unwrap();
        assert_eq!(row["requests"], truth[app]["distinct_event_ids"], "{app} requests");
        assert_eq!(row["input_tokens"], truth[app]["input_tokens"], "{app} input tokens");
        assert!(row["p95_latency_ms"].as_f64().unwrap() > 0.0, "{app} p95 latency");
        assert!(row["cost_usd"].as_f64().unwrap() > 0.0, "{app} cost");
    }
    assert_eq!(first["totals"]["dead_letters"], first["truth"]["malformed_messages"]);
    assert!(first["totals"]["feedback"].as_i64().unwrap() > 0);
    // Same seed, same fleet, same lake contents (cost sums may differ in the last bit: the
    // parallel aggregation adds floats in a different order).
    let second = run("b")?;
    let without_cost = |value: &serde_json::Value| -> Vec<serde_json::Value> {
        value["summary"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        let mut row = row.clone();
                        row.as_object_mut().map(|o| o.remove("cost_usd"));
                        row
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(without_cost(&first), without_cost(&second));
    for (a, b) in first["summary"].as_array().unwrap().iter().zip(second["summary"].as_array().unwrap()) {
        let (a, b) = (a["cost_usd"].as_f64().unwrap(), b["cost_usd"].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "cost {a} vs {b}");
    }
    Ok(())
}

#[test]
fn bad_configuration_fails_at_start_naming_the_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[flush]\nmax_rows = 0\n[kafka]\nbrokers = \"b:9092\"\n[kafka.librdkafka]\n\"enable.auto.commit\" = \"true\"\n",
    )?;
    let output = common::driftwatch().args(["ingest", "--config"]).arg(&config).stdin(Stdio::null()).output()?;
    assert!(!output.status.success(), "a bad config must stop the daemon");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`flush.max_rows` must be at least 1"), "{stderr}");
    assert!(stderr.contains("enable.auto.commit"), "{stderr}");

    std::fs::write(&config, "[flush]\nmax_rowz = 5\n")?;
    let output = common::driftwatch().args(["check-config", "--config"]).arg(&config).output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_rowz") && stderr.contains("bad.toml"), "{stderr}");

    let output = common::driftwatch()
        .args(["check-config", "--config"])
        .arg(&config)
        .env("DRIFTWATCH_LAKE__LOCATION__DEEP", "x")
        .output()?;
    assert!(!output.status.success());
    Ok(())
}

/// A truth file that cannot be written fails `loadgen` before it produces anything: found only
/// at the end, the run's truth was lost with its messages already on the topics.
#[test]
fn loadgen_fails_at_once_when_its_truth_file_cannot_be_written() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let truth = dir.path().join("no-such-folder").join("truth.json");
    let started = std::time::Instant::now();
    // No broker listens on port 1: reaching it would take the metadata timeout (30 s).
    let output = common::driftwatch()
        .args(["loadgen", "--brokers", "127.0.0.1:1", "--inferences", "10", "--truth"])
        .arg(&truth)
        .stdin(Stdio::null())
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("creating the truth file") && stderr.contains("no-such-folder"), "{stderr}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "it tried the broker first: {stderr}");
    Ok(())
}

/// clap shows environment values in `--help`; loadgen's producer properties may hold a SASL
/// password, so theirs is never shown.
#[test]
fn loadgen_help_never_shows_the_producer_properties_from_the_environment() -> anyhow::Result<()> {
    let output = common::driftwatch()
        .args(["loadgen", "--help"])
        .env("DRIFTWATCH_LOADGEN_PRODUCER_PROPERTIES", "sasl.username=alice\nsasl.password=Hunter2SuperSecret")
        .stdin(Stdio::null())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("DRIFTWATCH_LOADGEN_PRODUCER_PROPERTIES"), "{stdout}");
    assert!(!stdout.contains("Hunter2") && !stdout.contains("alice"), "{stdout}");
    Ok(())
}

/// `check-config` checks what `ingest` checks before it consumes: the librdkafka properties
/// against this build (never printing a secret's value), the model registry the config names
/// and the lake location with its options; a good config passes and leaves no lake behind.
#[test]
fn check_config_checks_the_registry_and_the_lake_location() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("c.toml");
    let lake = dir.path().join("lake");
    let check = |text: String| -> anyhow::Result<(bool, String)> {
        std::fs::write(&config, text)?;
        let output = common::driftwatch().args(["check-config", "--config"]).arg(&config).output()?;
        Ok((output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned()))
    };
    let at = |location: &str| format!("[lake]\nlocation = {location:?}\n");

    let (ok, stderr) = check(at(&lake.display().to_string()))?;
    assert!(ok, "{stderr}");
    assert!(!lake.exists(), "check-config created the lake directory");
    let password = dir.path().join("password");
    std::fs::write(&password, "hunter2-SECRET\n")?;
    let kafka = format!(
        "[kafka]\nbrokers = \"b:9092\"\n[kafka.librdkafka]\n\"session.timeout.ms\" = \"banana\"\n\
         [kafka.librdkafka_files]\n\"sasl.passwd\" = {:?}\n",
        password.display().to_string()
    );
    for (text, expected) in [
        (kafka.clone(), "`kafka.librdkafka.\"sasl.passwd\"`: No such configuration property"),
        (kafka, "`kafka.librdkafka.\"session.timeout.ms\"` = \"banana\""),
        (format!("{}[registry]\npath = \"/nonexistent/models.yaml\"\n", at("/tmp/l")), "/nonexistent/models.yaml"),
        (at("s4://bucket/lake"), "s4://bucket/lake"),
        (format!("{}[lake.options]\naws_regoin = \"x\"\n", at("s3://bucket/lake")), "aws_regoin"),
        (
            format!("{}[lake.options]\naws_endpoint = \"127.0.0.1:9000\"\n", at("s3://b/l")),
            "`lake.options.aws_endpoint`",
        ),
        (format!("{}[lake.options]\naws_region = \"eu west 1\"\n", at("s3://b/l")), "`lake.options.aws_region`"),
        (format!("{}[lake.options]\naws_allow_http = \"maybe\"\n", at("s3://b/l")), "`lake.options.aws_allow_http`"),
        (at("s3:/my-bucket/lake"), "lake: `lake.location`: "),
        (at("~/lake"), "lake: `lake.location`: "),
        ("[flush]\nmax_rows = \"ten\"\n".to_owned(), "`flush.max_rows`"),
        ("[decode]\nmin_event_time = \"2100-01-01T00:00:00Z\"\n".to_owned(), "`decode.min_event_time`"),
    ] {
        let (ok, stderr) = check(text.clone())?;
        assert!(!ok, "accepted: {text}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
        assert!(!stderr.contains("SECRET"), "a secret printed: {stderr}");
    }
    Ok(())
}

/// Properties librdkafka refuses only together, when the consumer is created (TLS with a CA file
/// that does not exist), fail `check-config` with the words the daemon fails with at start; and
/// an S3 endpoint without its scheme stops a file run and `analyze` with its key instead of a
/// panic.
#[test]
fn check_config_refuses_what_the_daemon_refuses_in_the_same_words() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("c.toml");
    let last_line = |output: &std::process::Output| {
        let stderr = String::from_utf8_lossy(&output.stderr);
        stderr.lines().rfind(|line| line.starts_with("driftwatch: ")).unwrap_or_default().to_owned()
    };
    std::fs::write(
        &config,
        format!(
            "[lake]\nlocation = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\n[kafka]\nbrokers = \"127.0.0.1:9\"\n\
             [kafka.librdkafka]\n\"security.protocol\" = \"ssl\"\n\"ssl.ca.location\" = \"/nonexistent/ca.pem\"\n",
            dir.path().join("lake").display().to_string()
        ),
    )?;
    let checked = common::driftwatch().args(["check-config", "--config"]).arg(&config).output()?;
    let started = common::driftwatch().args(["ingest", "--config"]).arg(&config).stdin(Stdio::null()).output()?;
    assert!(!checked.status.success() && !started.status.success());
    let (checked, started) = (last_line(&checked), last_line(&started));
    assert!(checked.contains("creating the consumer") && checked.contains("ssl.ca.location"), "{checked}");
    assert_eq!(checked, started);

    std::fs::write(
        &config,
        "[lake]\nlocation = \"s3://bucket/x\"\n[lake.options]\naws_endpoint = \"127.0.0.1:9000\"\n",
    )?;
    let input = dir.path().join("events.ndjson");
    std::fs::write(&input, "{}\n")?;
    let output = common::driftwatch()
        .args(["ingest", "--config"])
        .arg(&config)
        .arg("--source")
        .arg(format!("file:{}", input.display()))
        .output()?;
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(last_line(&output).contains("`lake.options.aws_endpoint`"), "{}", last_line(&output));
    // A reader of the lake names the key the same way.
    let output = common::driftwatch().args(["analyze", "summary", "--config"]).arg(&config).output()?;
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(last_line(&output).contains("`lake.options.aws_endpoint`"), "{}", last_line(&output));
    Ok(())
}

/// Settings that switch TLS off or send Kafka credentials in clear are legitimate in a lab:
/// `check-config` accepts them (exit 0) but warns of each, naming it and never printing a
/// secret; and it connects to no broker.
#[test]
fn check_config_warns_of_each_setting_that_weakens_security() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("c.toml");
    let broker = std::net::TcpListener::bind("127.0.0.1:0")?;
    broker.set_nonblocking(true)?;
    std::fs::write(
        &config,
        format!(
            "[lake]\nlocation = \"s3://bucket/lake\"\n[lake.options]\naws_endpoint = \"http://127.0.0.1:9\"\n\
             aws_region = \"us-east-1\"\naws_allow_http = \"true\"\nallow_invalid_certificates = \"TRUE\"\n\
             [kafka]\nbrokers = \"{}\"\n[kafka.librdkafka]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\
             \"sasl.mechanisms\" = \"PLAIN\"\n\"sasl.username\" = \"dw\"\n\"sasl.password\" = \"hunter2-SECRET\"\n\
             \"enable.ssl.certificate.verification\" = false\n\"ssl.endpoint.identification.algorithm\" = \"none\"\n",
            broker.local_addr()?
        ),
    )?;
    let output = common::driftwatch().args(["check-config", "--config"]).arg(&config).output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for (setting, words) in [
        ("enable.ssl.certificate.verification", "TLS certificate verification is off for Kafka"),
        ("ssl.endpoint.identification.algorithm", "TLS host name verification is off for Kafka"),
        ("security.protocol", "SASL PLAIN over `security.protocol` = sasl_plaintext"),
        ("aws_allow_http", "plain HTTP is allowed for the S3 lake"),
        ("allow_invalid_certificates", "TLS certificate verification is off for the S3 lake"),
    ] {
        let warned = stderr.lines().filter(|line| line.contains("WARN") && line.contains(words)).collect::<Vec<_>>();
        assert_eq!(warned.len(), 1, "{setting} warned once: {stderr}");
        assert!(warned[0].contains(setting), "{setting} named: {stderr}");
    }
    assert!(!stderr.contains("SECRET"), "a secret printed: {stderr}");
    assert!(broker.accept().is_err(), "check-config connected to the broker");
    Ok(())
}

/// `driftwatch ingest` over a two-line NDJSON file (one good event, one malformed line) with
/// the given log format; returns its stderr.
fn ingest_small_file_logging(format: &str) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("events.ndjson");
    std::fs::write(
        &input,
        "{\"id\":\"e1\",\"time\":\"2026-11-20T10:00:00Z\",\"app\":\"a\",\"request_model\":\"gpt-4o\",\"input_tokens\":5,\"output_tokens\":7,\"latency_ms\":120}\nnot json\n",
    )?;
    let output = common::driftwatch()
        .args(["--log-format", format, "--log", "info", "ingest", "--source"])
        .arg(format!("file:{}", input.display()))
        .arg("--lake")
        .arg(dir.path().join("lake"))
        .output()?;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    Ok(String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn text_logs_carry_no_colour_codes_when_not_at_a_terminal() -> anyhow::Result<()> {
    let stderr = ingest_small_file_logging("text")?;
    assert!(stderr.contains("File source finished."), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "escape codes in piped logs: {stderr:?}");
    Ok(())
}

#[test]
fn json_logs_are_one_object_per_line() -> anyhow::Result<()> {
    let stderr = ingest_small_file_logging("json")?;
    let mut lines = 0;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| anyhow::anyhow!("{e}: {line}"))?;
        assert!(value.get("level").is_some() && value.get("message").is_some(), "{line}");
        lines += 1;
    }
    assert!(lines >= 2, "expected start and finish log lines, got {lines}");

    // A fatal error too is one JSON object, with no plain line beside it.
    let output = common::driftwatch()
        .args(["--log-format", "json", "ingest", "--source", "file:/nonexistent/input.ndjson", "--lake"])
        .arg(tempfile::tempdir()?.path())
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| anyhow::anyhow!("{e}: {line}"))?;
        assert!(value.to_string().contains("/nonexistent/input.ndjson") || value.get("level").is_some(), "{line}");
    }
    assert!(stderr.contains("/nonexistent/input.ndjson"), "{stderr}");
    Ok(())
}

/// A folder run reads files through symbolic links, says which entries it skips, and goes on
/// past a file it refuses (replaced since its checkpoint), failing only at the end.
#[tokio::test]
async fn a_folder_run_goes_on_past_a_refused_file_and_follows_links() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (input, elsewhere, lake) = (dir.path().join("in"), dir.path().join("elsewhere"), dir.path().join("lake"));
    std::fs::create_dir_all(input.join("sub"))?;
    std::fs::create_dir_all(&elsewhere)?;
    let line = |id: &str, app: &str| {
        format!(
            "{{\"id\":\"{id}\",\"time\":\"2026-11-20T10:00:00Z\",\"app\":\"{app}\",\"request_model\":\"gpt-4o\",\"input_tokens\":5}}\n"
        )
    };
    let ingest = || {
        common::driftwatch()
            .args(["ingest", "--source"])
            .arg(format!("file:{}", input.display()))
            .arg("--lake")
            .arg(&lake)
            .output()
    };
    std::fs::write(input.join("a.jsonl"), line("a1", "a"))?;
    let first = ingest()?;
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));

    // a.jsonl replaced by a file shorter than its checkpoint; b.jsonl new; c.jsonl a link to a
    // file outside the folder; a subfolder that is not read.
    std::fs::write(input.join("a.jsonl"), "{}\n")?;
    std::fs::write(input.join("b.jsonl"), line("b1", "b"))?;
    std::fs::write(elsewhere.join("c.jsonl"), line("c1", "c"))?;
    std::os::unix::fs::symlink(elsewhere.join("c.jsonl"), input.join("c.jsonl"))?;
    std::fs::write(input.join("sub").join("d.jsonl"), line("d1", "d"))?;
    let second = ingest()?;
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a refused file fails the run: {stderr}");
    assert!(stderr.contains("1 of 3 files were not ingested") && stderr.contains("a.jsonl"), "{stderr}");
    assert!(stderr.contains("Not a file; skipped"), "{stderr}");

    let counts = common::lake_counts(&lake).await?;
    let apps: Vec<&str> = counts.per_app.keys().map(String::as_str).collect();
    assert_eq!(apps, ["a", "b", "c"], "b and the linked c were read past the refused a; sub/ was not");
    assert_eq!(counts.per_app["a"].rows, 1, "the refused file added nothing");
    Ok(())
}

/// A file run stopped by SIGTERM flushes what it read, checkpoints it and fails, saying where
/// it stopped and what it did not read (a backfill script must not take it for done); the same
/// command run again resumes and lands every call exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_file_run_fails_and_the_same_command_resumes_it() -> anyhow::Result<()> {
    use driftwatch_ingest::fleet::files::{FormatMix, write_fleet_files};
    use driftwatch_ingest::fleet::{Fleet, FleetConfig};

    let dir = tempfile::tempdir()?;
    let (input, lake) = (dir.path().join("input"), dir.path().join("lake"));
    // Enough input that the run is still reading when the signal comes.
    let fleet = Fleet::new(FleetConfig { seed: 12, apps: 3, inferences: 20_000, ..FleetConfig::default() });
    let generated = write_fleet_files(&fleet, &input, FormatMix::Text, 10, 0.0, 12)?;
    // Named relative to the working directory: the lake's provenance is the absolute path.
    let ingest = |log: std::fs::File| -> anyhow::Result<std::process::Child> {
        Ok(common::driftwatch()
            .current_dir(dir.path())
            .args(["ingest", "--source", "file:input", "--lake"])
            .arg(&lake)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?)
    };
    let log_path = dir.path().join("first.log");
    let mut first = ingest(std::fs::File::create(&log_path)?)?;
    let started = common::wait_for(std::time::Duration::from_secs(60), || {
        std::fs::read_to_string(&log_path).ok().filter(|log| log.contains("File source started."))
    });
    assert!(started.is_some(), "the run never started; log:\n{}", std::fs::read_to_string(&log_path)?);
    common::terminate(&first)?;
    let status = common::wait_with_timeout(&mut first, std::time::Duration::from_secs(60))?;
    let log = std::fs::read_to_string(&log_path)?;
    assert!(!status.success(), "an interrupted run is not a finished one; log:\n{log}");
    assert_ne!(status.code(), Some(124), "ended by the deadline, not by the run; log:\n{log}");
    assert!(
        log.contains("interrupted before the end of the input") && log.contains("run the same command again"),
        "log:\n{log}"
    );

    let rerun = ingest(std::fs::File::create(dir.path().join("rerun.log"))?)?.wait()?;
    assert!(rerun.success(), "the resumed run failed: {rerun}");
    let counts = common::lake_counts(&lake).await?;
    for (app, truth) in &generated.truth.per_app {
        let got = counts.per_app.get(app).with_context(|| format!("{app} missing from the lake"))?;
        assert_eq!(got.rows as u64, truth.requests, "{app} rows");
        assert_eq!(got.distinct_events as u64, truth.distinct_event_ids, "{app}: each event once");
    }
    let session = driftwatch_analyze::LakeSession::open(&lake.display().to_string(), None).await?;
    let topics = common::sql_rows(&session, "SELECT DISTINCT source_topic FROM events").await?;
    let absolute_input = std::fs::canonicalize(&input)?.display().to_string();
    assert!(!topics.is_empty());
    for topic in topics.iter().flatten().flatten() {
        assert!(topic.starts_with(&absolute_input), "{topic} is not under {absolute_input}");
    }
    Ok(())
}
