//! A driftwatch daemon under test, a load run, the dev stack's Prometheus, and a private broker
//! for the outage test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use driftwatch_ingest::fleet::Truth;

use crate::common;

/// A unique set of topics with `partitions` partitions each.
pub struct Topics {
    pub prefix: String,
}

impl Topics {
    pub async fn create(brokers: &str, partitions: i32) -> anyhow::Result<Self> {
        let prefix = format!("{}-", common::unique("dw"));
        let topics = driftwatch_ingest::loadgen::LoadTopics::with_prefix(&prefix);
        driftwatch_ingest::loadgen::ensure_topics(brokers, &[], &topics.all(), partitions, Duration::from_secs(30))
            .await?;
        Ok(Self { prefix })
    }

    pub fn names(&self) -> [String; 3] {
        [
            format!("{}otlp_spans", self.prefix),
            format!("{}otlp_logs", self.prefix),
            format!("{}llm_events", self.prefix),
        ]
    }
}

/// What each test starts from: its own topics, consumer group, lake and daemon config.
pub struct Setup {
    pub brokers: String,
    pub dir: tempfile::TempDir,
    pub lake: PathBuf,
    pub topics: Topics,
    pub config: PathBuf,
}

impl Setup {
    /// Topics of `partitions` partitions on `brokers`, a group named after `name`, and a
    /// config flushing at `max_age` (`"1s"` flushes all along; `"10m"` keeps rows buffered
    /// until a revoke or shutdown).
    pub async fn new(brokers: &str, name: &str, partitions: i32, max_age: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let lake = dir.path().join("lake");
        Self::with_lake(brokers, name, partitions, max_age, dir, lake.display().to_string(), lake).await
    }

    /// The same with the lake at `location` (e.g. `s3://bucket/prefix`), whose files can be
    /// read on this machine at `lake` (the folder an S3 server keeps them in).
    pub async fn with_lake(
        brokers: &str,
        name: &str,
        partitions: i32,
        max_age: &str,
        dir: tempfile::TempDir,
        location: String,
        lake: PathBuf,
    ) -> anyhow::Result<Self> {
        let topics = Topics::create(brokers, partitions).await?;
        let config = write_config(dir.path(), brokers, &common::unique(name), &topics, &location, max_age)?;
        Ok(Self { brokers: brokers.to_owned(), dir, lake, topics, config })
    }

    pub fn start_daemon(&self) -> anyhow::Result<Daemon> {
        Daemon::start(&self.config, self.dir.path(), &[])
    }

    /// Produce with `loadgen` (mixed formats, 4 spans per message) on a blocking thread.
    pub fn produce(
        &self,
        inferences: usize,
        seed: u64,
        malformed: f64,
    ) -> tokio::task::JoinHandle<anyhow::Result<Truth>> {
        let (brokers, topics) = (self.brokers.clone(), Topics { prefix: self.topics.prefix.clone() });
        tokio::task::spawn_blocking(move || loadgen(&brokers, &topics, inferences, seed, malformed, 4, &[]))
    }

    /// [`Self::produce`] with each record batch compressed by `codec` (librdkafka's
    /// `compression.type`: gzip, snappy, lz4 or zstd).
    pub fn produce_compressed(
        &self,
        inferences: usize,
        seed: u64,
        codec: &'static str,
    ) -> tokio::task::JoinHandle<anyhow::Result<Truth>> {
        let (brokers, topics) = (self.brokers.clone(), Topics { prefix: self.topics.prefix.clone() });
        tokio::task::spawn_blocking(move || {
            loadgen(&brokers, &topics, inferences, seed, 0.0, 4, &[&format!("compression.type={codec}")])
        })
    }
}

/// Write a daemon config for these topics and lake, flushing at `max_age`. The group session
/// is 10 s, so that a killed member's partitions move on quickly.
pub fn write_config(
    dir: &Path,
    brokers: &str,
    group: &str,
    topics: &Topics,
    lake_location: &str,
    max_age: &str,
) -> anyhow::Result<PathBuf> {
    let base = driftwatch_ingest::loadgen::LoadTopics::with_prefix(&topics.prefix).daemon_config(
        brokers,
        group,
        lake_location,
    );
    let config = format!(
        r#"{base}
[kafka.librdkafka]
"session.timeout.ms" = "10000"
"heartbeat.interval.ms" = "1000"
"topic.metadata.refresh.interval.ms" = "2000"

[flush]
max_rows = 20000
max_age = "{max_age}"
"#
    );
    let path = dir.join(format!("{group}-{}.toml", common::free_port()));
    std::fs::write(&path, config)?;
    Ok(path)
}

/// A running `driftwatch ingest`.
pub struct Daemon {
    pub child: Child,
    pub http: String,
    pub log: PathBuf,
}

impl Daemon {
    /// Start `driftwatch ingest` with `config`, its log in `log_dir`, and extra environment.
    pub fn start(config: &Path, log_dir: &Path, env: &[(String, String)]) -> anyhow::Result<Self> {
        Self::start_at(config, log_dir, env, &format!("127.0.0.1:{}", common::free_port()))
    }

    /// The same, serving HTTP at `http` (`host:port`), e.g. the port the dev stack's
    /// Prometheus scrapes.
    pub fn start_at(config: &Path, log_dir: &Path, env: &[(String, String)], http: &str) -> anyhow::Result<Self> {
        // More room than the product's default for a debug build's shutdown flush on a busy
        // machine; the tests about the deadline start with their own.
        let mut command = common::driftwatch();
        command.env("DRIFTWATCH_SHUTDOWN_DEADLINE", "60s");
        Self::spawn(command, config, log_dir, env, http)
    }

    /// Start with the shutdown deadline a deployment gets when it sets none (the
    /// `--shutdown-deadline` default), whatever the developer's shell says.
    pub fn start_with_default_deadline(config: &Path, log_dir: &Path) -> anyhow::Result<Self> {
        let mut command = common::driftwatch();
        command.env_remove("DRIFTWATCH_SHUTDOWN_DEADLINE");
        Self::spawn(command, config, log_dir, &[], &format!("127.0.0.1:{}", common::free_port()))
    }

    fn spawn(
        mut command: Command,
        config: &Path,
        log_dir: &Path,
        env: &[(String, String)],
        http: &str,
    ) -> anyhow::Result<Self> {
        let http = http.to_owned();
        let port = http.rsplit(':').next().unwrap_or("http");
        let log = log_dir.join(format!("daemon-{port}.log"));
        // Defaults first, so that `env` can override them.
        let child = command
            .env("DRIFTWATCH_LOG", "info,object_store=warn")
            .envs(env.iter().map(|(key, value)| (key, value)))
            .args(["ingest", "--config"])
            .arg(config)
            .env("DRIFTWATCH_HTTP__LISTEN", format!("\"{http}\""))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let daemon = Self { child, http, log };
        let up = common::wait_for(Duration::from_secs(60), || common::http_get(&daemon.http, "/healthz").ok());
        if up.is_none() {
            bail!("daemon did not serve /healthz within 60 s; log:\n{}", daemon.log_tail());
        }
        Ok(daemon)
    }

    pub fn metrics(&self) -> anyhow::Result<String> {
        let (status, body) = common::http_get(&self.http, "/metrics")?;
        if status != 200 {
            bail!("/metrics answered {status}");
        }
        Ok(body)
    }

    /// True while the process has not exited.
    pub fn child_alive(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    pub fn ready(&self) -> bool {
        common::http_get(&self.http, "/readyz").is_ok_and(|(status, _)| status == 200)
    }

    /// Sum of a metric family's samples (optionally only those whose labels contain `filter`).
    pub fn metric_sum(&self, name: &str, filter: &str) -> anyhow::Result<f64> {
        Ok(metric_sum(&self.metrics()?, name, filter))
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// SIGTERM and wait; returns how long the shutdown took.
    pub fn stop(mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        common::terminate(&self.child)?;
        let status = common::wait_with_timeout(&mut self.child, timeout)?;
        if !status.success() {
            bail!("daemon exited with {status}; log:\n{}", self.log_tail());
        }
        Ok(started.elapsed())
    }

    /// SIGTERM and wait up to `timeout`; returns the exit status and how long the shutdown
    /// took, for a test that judges them itself.
    pub fn terminate(mut self, timeout: Duration) -> anyhow::Result<(std::process::ExitStatus, Duration)> {
        let started = Instant::now();
        common::terminate(&self.child)?;
        let status = common::wait_with_timeout(&mut self.child, timeout)?;
        Ok((status, started.elapsed()))
    }

    /// Messages consumed so far, by `/metrics`.
    pub fn messages(&self) -> anyhow::Result<u64> {
        Ok(self.metric_sum("driftwatch_messages_total", "")? as u64)
    }

    /// Event rows this daemon has committed to the lake, by `/metrics`.
    pub fn events_written(&self) -> anyhow::Result<u64> {
        Ok(self.metric_sum("driftwatch_lake_rows_written_total", "kind=\"events\"")? as u64)
    }

    /// Wait until `/metrics` counts at least `messages` consumed messages; false on timeout.
    pub fn consumed(&self, messages: u64, timeout: Duration) -> bool {
        common::wait_for(timeout, || {
            let seen = self.messages().ok()?;
            (seen >= messages).then_some(())
        })
        .is_some()
    }

    /// Rows buffered for the lake and not yet flushed, by `/metrics` (set every half second).
    pub fn buffered_rows(&self) -> anyhow::Result<u64> {
        Ok(self.metric_sum("driftwatch_buffered_rows", "")? as u64)
    }

    /// Send a signal by name (`STOP`, `CONT`, ...) without waiting.
    pub fn signal(&self, name: &str) -> anyhow::Result<()> {
        common::signal(&self.child, name)
    }

    pub fn kill9(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The dev stack's Prometheus (`DRIFTWATCH_TEST_PROMETHEUS`), queried over its HTTP API.
pub struct Prometheus {
    address: String,
}

impl Prometheus {
    pub fn from_stack() -> Self {
        let url = common::stack_var("DRIFTWATCH_TEST_PROMETHEUS");
        Self { address: url.trim_start_matches("http://").trim_end_matches('/').to_owned() }
    }

    /// An instant query: each result's labels and value.
    pub fn query(&self, promql: &str) -> anyhow::Result<Vec<(BTreeMap<String, String>, f64)>> {
        let encoded = percent_encoding::utf8_percent_encode(promql, percent_encoding::NON_ALPHANUMERIC);
        let (status, body) = common::http_get(&self.address, &format!("/api/v1/query?query={encoded}"))?;
        if status != 200 {
            bail!("Prometheus answered {status} to {promql:?}: {body}");
        }
        let answer: serde_json::Value = serde_json::from_str(&body)?;
        let results = answer["data"]["result"].as_array().ok_or_else(|| anyhow::anyhow!("no result in {body}"))?;
        results
            .iter()
            .map(|result| {
                let labels = serde_json::from_value(result["metric"].clone())?;
                let value = result["value"][1].as_str().ok_or_else(|| anyhow::anyhow!("no value in {result}"))?;
                Ok((labels, value.parse::<f64>()?))
            })
            .collect()
    }
}

/// The sample names of an exposition (`x_total`, `x_bucket`, `x_sum`, ...), as Prometheus
/// stores them.
pub fn sample_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// Sum of the samples of `name` in an exposition whose label set contains `filter`.
pub fn metric_sum(exposition: &str, name: &str, filter: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .filter(|line| line.contains(filter))
        .filter_map(|line| line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

/// Produce with `driftwatch loadgen`, with more `--producer-property` settings (`KEY=VALUE`)
/// than the one-message batches below, and return the truth it printed.
pub fn loadgen(
    brokers: &str,
    topics: &Topics,
    inferences: usize,
    seed: u64,
    malformed: f64,
    spans_per_message: usize,
    producer_properties: &[&str],
) -> anyhow::Result<Truth> {
    let extra = producer_properties.iter().flat_map(|property| ["--producer-property", property]);
    let output = common::run_ok(
        common::driftwatch()
            .args(["loadgen", "--brokers", brokers, "--topic-prefix", &topics.prefix, "--format", "mixed"])
            .args(["--inferences", &inferences.to_string(), "--seed", &seed.to_string()])
            .args(["--malformed-ratio", &malformed.to_string()])
            .args(["--spans-per-message", &spans_per_message.to_string()])
            // One message per record batch. Tansu 0.6 answers a fetch that starts inside a
            // record batch with the batches after it, so a consumer resuming mid-batch (after
            // a pause, a seek or a restart) would never see the rest of that batch; Apache
            // Kafka and Redpanda return the containing batch. Keeping every offset a batch
            // boundary makes the test broker behave like them.
            .args(["--producer-property", "batch.num.messages=1", "--producer-property", "linger.ms=0"])
            .args(extra),
    )?;
    serde_json::from_str(output.trim()).context("loadgen printed no truth JSON")
}

/// Wait until the lake holds as many distinct events, dead letters and feedback rows as `truth`
/// says (more, if the daemon duplicated something), read twice a moment apart to the same
/// counts; then read the rest of what [`assert_exactly`] compares.
pub async fn wait_for_lake(lake: &Path, truth: &Truth, timeout: Duration) -> anyhow::Result<LakeReading> {
    let (expected, dead, feedback) = (produced(truth), truth.malformed_messages, truth.total().feedback);
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(counts) = common::lake_counts(lake).await
            && counts.distinct_events as u64 >= expected
            && counts.dead_letters as u64 >= dead
            && counts.feedback_rows as u64 >= feedback
        {
            // The counts come from several queries while the daemon may still be committing:
            // return only a reading that a second one, a moment later, confirms.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let settled = read_lake(lake).await?;
            if settled.counts == counts {
                return Ok(settled);
            }
        }
        if Instant::now() >= deadline {
            let counts = common::lake_counts(lake).await.ok();
            bail!(
                "lake did not reach {expected} events / {dead} dead letters / {feedback} feedback rows within \
                 {timeout:?}: {counts:?}\nnewest daemon log:\n{}",
                newest_daemon_log(lake)
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The last lines of the most recent daemon log next to `lake`, for failure messages.
fn newest_daemon_log(lake: &Path) -> String {
    let Some(dir) = lake.parent() else { return String::new() };
    let newest = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("daemon-"))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    let text = newest.and_then(|e| std::fs::read_to_string(e.path()).ok()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("librdkafka: FAIL")).collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// Total distinct inference events in a truth.
pub fn produced(truth: &Truth) -> u64 {
    truth.per_app.values().map(|t| t.distinct_event_ids).sum()
}

/// Everything [`assert_exactly`] compares with a truth: `common::lake_counts` (events and dead
/// letters) and, per app, the feedback table and the rollups.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeReading {
    pub counts: common::LakeCounts,
    pub dead_letters_by_reason: BTreeMap<String, u64>,
    pub per_app: BTreeMap<String, common::AppFeedbackCounts>,
}

/// Read everything [`assert_exactly`] compares.
pub async fn read_lake(lake: &Path) -> anyhow::Result<LakeReading> {
    let session = driftwatch_analyze::LakeSession::open(&lake.display().to_string(), None).await?;
    let dead_letters_by_reason = driftwatch_analyze::lake_totals(&session)
        .await?
        .dead_letters_by_reason
        .into_iter()
        .map(|(reason, count)| Ok((reason, u64::try_from(count)?)))
        .collect::<anyhow::Result<_>>()?;
    Ok(LakeReading {
        counts: common::lake_counts(lake).await?,
        dead_letters_by_reason,
        per_app: common::lake_feedback_and_rollups(lake).await?,
    })
}

/// Column `index` of a query result as counts (a null sum counts nothing).
fn ints(batch: &arrow::array::RecordBatch, index: usize) -> anyhow::Result<Vec<u64>> {
    use arrow::array::{Array, AsArray};
    let column = arrow::compute::cast(batch.column(index), &arrow::datatypes::DataType::Int64)?;
    let column = column.as_primitive::<arrow::datatypes::Int64Type>();
    (0..column.len())
        .map(|row| if column.is_valid(row) { Ok(u64::try_from(column.value(row))?) } else { Ok(0) })
        .collect()
}

/// Event rows in the lake (one count, without the rest of [`read_lake`]), for polling while a
/// daemon writes; 0 before its first flush. Only for lakes on this machine.
pub async fn lake_event_rows(lake: &Path) -> anyhow::Result<u64> {
    if !lake.join("events").exists() {
        return Ok(0);
    }
    let session = driftwatch_analyze::LakeSession::open(&lake.display().to_string(), None).await?;
    let batches = session.sql_to_batches("SELECT count(*) FROM events").await?;
    Ok(batches.first().map(|batch| ints(batch, 0)).transpose()?.and_then(|rows| rows.first().copied()).unwrap_or(0))
}

/// Assert the lake equals the truth exactly: every event, dead letter and feedback row once,
/// and the rollups summing to the same calls, tokens and evaluations. The truth counts feedback
/// under the app that sent it, which in a generated fleet is also the app of the rated call, so
/// the lake's attribution (the matched call's app, else the sender's) agrees with it whether or
/// not the daemon still remembered the call (it forgets on restart). Malformed messages are
/// extra messages the generator adds, holding neither calls nor feedback of the truth.
pub fn assert_exactly(lake: &LakeReading, truth: &Truth, context: &str) {
    let counts = &lake.counts;
    let produced = produced(truth);
    assert_eq!(counts.event_rows as u64, produced, "{context}: event rows");
    assert_eq!(counts.distinct_events as u64, produced, "{context}: distinct event ids");
    assert_eq!(counts.dead_letters as u64, truth.malformed_messages, "{context}: dead letters");
    assert_eq!(counts.feedback_rows as u64, truth.total().feedback, "{context}: feedback rows");
    assert_eq!(lake.dead_letters_by_reason, truth.dead_letters_by_reason, "{context}: dead letters by reason");
    let sent = |app: &String| truth.per_app.contains_key(app);
    assert!(lake.per_app.keys().all(sent), "{context}: feedback or rollups of apps never sent: {:?}", lake.per_app);
    for (app, expected) in &truth.per_app {
        let got = counts.per_app.get(app).cloned().unwrap_or_default();
        assert_eq!(got.distinct_events as u64, expected.distinct_event_ids, "{context}: {app} events");
        assert_eq!(got.errors as u64, expected.errors, "{context}: {app} errors");
        assert_eq!(got.input_tokens as u64, expected.input_tokens, "{context}: {app} input tokens");
        assert_eq!(got.output_tokens as u64, expected.output_tokens, "{context}: {app} output tokens");
        lake.per_app.get(app).cloned().unwrap_or_default().assert_matches(expected, app, context);
    }
}

/// A Tansu broker of the test's own (the outage test stops and restarts it).
pub fn private_broker(log_dir: &Path) -> anyhow::Result<common::PrivateServer> {
    common::PrivateServer::start("tansu", log_dir, |address| {
        let url = format!("tcp://{address}");
        let mut command = Command::new(common::stack_var("DRIFTWATCH_TEST_TANSU"));
        command.args(["broker", "--listener-url", &url, "--advertised-listener-url", &url]);
        command.args(["--storage-engine", "memory://tansu/"]);
        command
    })
}

/// Append a transaction's commit marker to `topic`'s `partition`, as a transaction coordinator
/// writes one: a control record batch (Kafka's record batch v2 with the control and
/// transactional attributes, one record whose key is the marker type). No producer API writes
/// one, and Tansu refuses `EndTxn`, so the batch goes to the broker in a raw Produce request
/// (v3), on a connection of its own to `brokers`, which must be the partition's leader (the dev
/// stack has one broker).
pub fn append_commit_marker(brokers: &str, topic: &str, partition: i32) -> anyhow::Result<()> {
    use std::io::{Read, Write};

    const PRODUCE: i16 = 0;
    const PRODUCE_VERSION: i16 = 3;
    const CONTROL_AND_TRANSACTIONAL: i16 = 0x20 | 0x10;
    const COMMIT: i16 = 1;
    // Kafka's zigzag varint, as record fields are written.
    fn varint(value: i64, out: &mut Vec<u8>) {
        let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
        while zigzag >= 0x80 {
            out.push((zigzag as u8 & 0x7f) | 0x80);
            zigzag >>= 7;
        }
        out.push(zigzag as u8);
    }
    fn string(value: &str, out: &mut Vec<u8>) -> anyhow::Result<()> {
        out.extend(i16::try_from(value.len())?.to_be_bytes());
        out.extend(value.as_bytes());
        Ok(())
    }

    // The marker record: key (version, type), value (version, coordinator epoch).
    let (key, value) =
        ([0i16.to_be_bytes(), COMMIT.to_be_bytes()].concat(), [&0i16.to_be_bytes()[..], &0i32.to_be_bytes()].concat());
    let mut record = vec![0u8]; // attributes
    varint(0, &mut record); // timestamp delta
    varint(0, &mut record); // offset delta
    varint(i64::try_from(key.len())?, &mut record);
    record.extend(&key);
    varint(i64::try_from(value.len())?, &mut record);
    record.extend(&value);
    varint(0, &mut record); // headers
    let now = i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis())?;
    // Everything after the checksum, which covers it.
    let mut checked = Vec::new();
    checked.extend(CONTROL_AND_TRANSACTIONAL.to_be_bytes());
    checked.extend(0i32.to_be_bytes()); // last offset delta
    checked.extend(now.to_be_bytes()); // first timestamp
    checked.extend(now.to_be_bytes()); // max timestamp
    checked.extend(4242i64.to_be_bytes()); // producer id
    checked.extend(0i16.to_be_bytes()); // producer epoch
    checked.extend((-1i32).to_be_bytes()); // base sequence
    checked.extend(1i32.to_be_bytes()); // records
    varint(i64::try_from(record.len())?, &mut checked);
    checked.extend(&record);
    let mut after_length = Vec::new();
    after_length.extend((-1i32).to_be_bytes()); // partition leader epoch
    after_length.push(2); // magic
    after_length.extend(crc32c::crc32c(&checked).to_be_bytes());
    after_length.extend(&checked);
    let mut batch = Vec::new();
    batch.extend(0i64.to_be_bytes()); // base offset, assigned by the broker
    batch.extend(i32::try_from(after_length.len())?.to_be_bytes());
    batch.extend(&after_length);

    let mut request = Vec::new();
    request.extend(PRODUCE.to_be_bytes());
    request.extend(PRODUCE_VERSION.to_be_bytes());
    request.extend(7i32.to_be_bytes()); // correlation id
    string("driftwatch-tests", &mut request)?;
    request.extend((-1i16).to_be_bytes()); // no transactional id
    request.extend((-1i16).to_be_bytes()); // acks: all
    request.extend(10_000i32.to_be_bytes()); // timeout
    request.extend(1i32.to_be_bytes()); // topics
    string(topic, &mut request)?;
    request.extend(1i32.to_be_bytes()); // partitions
    request.extend(partition.to_be_bytes());
    request.extend(i32::try_from(batch.len())?.to_be_bytes());
    request.extend(&batch);

    let mut connection = std::net::TcpStream::connect(brokers.split(',').next().context("no broker")?)?;
    connection.set_read_timeout(Some(Duration::from_secs(30)))?;
    connection.write_all(&i32::try_from(request.len())?.to_be_bytes())?;
    connection.write_all(&request)?;
    let mut length = [0u8; 4];
    connection.read_exact(&mut length)?;
    let mut response = vec![0u8; usize::try_from(i32::from_be_bytes(length))?];
    connection.read_exact(&mut response)?;
    // correlation id, topic count, topic name, partition count, partition, then the error code.
    let topic_end = 4 + 4 + 2 + topic.len();
    let error_at = topic_end + 4 + 4;
    let error = response.get(error_at..error_at + 2).context("short Produce response")?;
    let error = i16::from_be_bytes([error[0], error[1]]);
    anyhow::ensure!(error == 0, "the broker refused the marker: error code {error}");
    Ok(())
}

/// Each `driftwatch_consumer_lag` series of an exposition, by its labels.
pub fn consumer_lags(exposition: &str) -> BTreeMap<String, f64> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("driftwatch_consumer_lag{"))
        .filter_map(|rest| {
            let (labels, value) = rest.split_once("} ")?;
            Some((labels.to_owned(), value.parse().ok()?))
        })
        .collect()
}
