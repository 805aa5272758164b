//! The Kafka load harness: what the `driftwatch ingest` daemon costs per event compared with a
//! plain librdkafka consumer reading the same messages into nothing.
//!
//! For each input (`DRIFTWATCH_BENCH_KAFKA_FORMATS`, default `json,otlp`; `json-bare` and
//! `otlp-bare` are the same fleet without prompt and answer text, as OpenTelemetry GenAI
//! instrumentations send by default) and each size (`DRIFTWATCH_BENCH_KAFKA_SIZES`, inference
//! calls, default `100000,300000`):
//!
//! 1. A unique topic set (3 partitions each) is created and the synthetic fleet is produced
//!    into it with `loadgen::produce` (one message per record batch, see below); the truth says
//!    how many messages the consumers must see.
//! 2. (a) The release `driftwatch ingest` binary consumes them into a fresh temporary lake with
//!    the default flush settings until its `/metrics` `driftwatch_messages_total` reaches the
//!    produced count, then gets SIGTERM (final flush and checkpoint) and exits.
//!    (b) This bench binary re-executes itself as a plain `BaseConsumer` (fresh group, same
//!    prefetch bound as the daemon) that reads until every partition's high watermark.
//! 3. Both children are measured the same way from outside: CPU seconds (user + sys, all
//!    threads) from `/proc/<pid>/stat` once the process has exited but is not yet reaped, and
//!    peak RSS from `VmHWM` in `/proc/<pid>/status`, sampled while it runs. For the daemon, the
//!    mean `VmRSS` while it consumed each quarter of the messages is reported too, and the
//!    table's last column is the change from the second quarter's mean to the fourth's: with
//!    memory bounded by configuration it stays near zero once the dedup window and join index
//!    are full (about 600 000 rows at the default sizes) while the consume rate holds; a
//!    slowing broker lowers it, because age-triggered flushes then hold fewer rows.
//!
//! Needs a broker: `scripts/dev-stack up && eval "$(scripts/dev-stack env)"` exports
//! `DRIFTWATCH_TEST_KAFKA`. Run with `cargo bench --bench kafka_load`.
//!
//! Tansu 0.6 answers a fetch that starts inside a record batch with the batches after it, so a
//! consumer resuming mid-batch would lose messages; producing one message per batch keeps
//! every offset a batch boundary (`batch.num.messages=1`, `linger.ms=0`).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use driftwatch_ingest::fleet::WireFormat;
use driftwatch_ingest::fleet::files::FormatMix;
use driftwatch_ingest::loadgen::{LoadOptions, LoadTopics, ensure_topics, produce};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use support::{mib, si};

/// Set in the environment of the re-executed bench binary: run as the plain consumer.
const PLAIN_CONSUMER_ENV: &str = "DRIFTWATCH_BENCH_PLAIN_CONSUMER";
/// Partitions per topic.
const PARTITIONS: i32 = 3;
/// Spans per OTLP message.
const SPANS_PER_MESSAGE: usize = 50;
/// How long any consumer may take to read everything before the bench fails.
const CONSUME_TIMEOUT: Duration = Duration::from_secs(600);
/// Sampling period of `/proc`.
const POLL: Duration = Duration::from_millis(50);
/// Scrape period of the daemon's `/metrics`. Rendering the registry is work the daemon does for
/// the harness, not for the events: a 50 ms period made it ~5 % of the daemon's CPU in a perf
/// profile, where Prometheus scrapes every 15 s or more. Twice a second keeps it near 0.5 %
/// and bounds the error of the busy time (first and last message) to a period each.
const SCRAPE_EVERY: Duration = Duration::from_millis(500);
/// The daemon's prefetch bound (`queued.max.messages.kbytes`), given to the plain consumer too
/// so peak RSS compares the same librdkafka buffering.
const QUEUED_MAX_MESSAGES_KBYTES: &str = "16384";

/// What one consumer process did, measured from outside.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Seconds from the first consumed message to the last (the consumer's own clock).
    busy: Duration,
    /// CPU seconds (user + sys) of the whole process life.
    cpu_seconds: f64,
    /// Peak resident set size.
    peak_rss_bytes: u64,
    /// Mean resident set size while each quarter of the messages was consumed (daemon only: its
    /// `/metrics` says how far it is). Peak RSS is the maximum of short spikes (a flush
    /// encoding while the buffers are full), so it moves between runs; whether memory grows
    /// with the event count shows in these means, within one run.
    rss_by_quarter: Option<[u64; 4]>,
}

fn main() -> anyhow::Result<()> {
    if std::env::var_os(PLAIN_CONSUMER_ENV).is_some() {
        return plain_consumer_child();
    }
    let brokers = std::env::var("DRIFTWATCH_TEST_KAFKA").map_err(|_| {
        anyhow::anyhow!(
            "DRIFTWATCH_TEST_KAFKA is not set. The Kafka load harness needs a broker: run\n  \
             scripts/dev-stack up && eval \"$(scripts/dev-stack env)\" && cargo bench --bench kafka_load"
        )
    })?;
    let sizes = list_env("DRIFTWATCH_BENCH_KAFKA_SIZES", "100000,300000")?
        .iter()
        .map(|size| size.replace('_', "").parse::<usize>().with_context(|| format!("bad size {size:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let formats = list_env("DRIFTWATCH_BENCH_KAFKA_FORMATS", "json,otlp")?
        .iter()
        .map(|name| match name.as_str() {
            "json" => Ok((WireFormat::JsonEvents, true)),
            "otlp" => Ok((WireFormat::OtlpProto, true)),
            "json-bare" => Ok((WireFormat::JsonEvents, false)),
            "otlp-bare" => Ok((WireFormat::OtlpProto, false)),
            other => bail!(
                "unknown format {other:?} in DRIFTWATCH_BENCH_KAFKA_FORMATS; use json, otlp, json-bare, otlp-bare"
            ),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let work = tempfile::Builder::new().prefix("driftwatch-kafka-bench-").tempdir()?;

    println!("driftwatch Kafka load harness: brokers {brokers}, {PARTITIONS} partitions per topic");
    let mut lines = Vec::new();
    for &(format, content) in &formats {
        for &size in &sizes {
            lines.extend(run_case(&runtime, &brokers, (format, content), size, work.path())?);
        }
    }
    println!(
        "\n{:<10} {:>8} {:>9} {:>9} {:<15} {:>11} {:>12} {:>15} {:>11} {:>12}",
        "input",
        "calls",
        "messages",
        "rows",
        "consumer",
        "rows/s",
        "msgs/s",
        "cpu s / M rows",
        "peak RSS",
        "RSS Q2->Q4"
    );
    for line in &lines {
        println!("{line}");
    }
    Ok(())
}

/// Produce one fleet, consume it with the daemon and with the plain consumer; the table lines.
fn run_case(
    runtime: &tokio::runtime::Runtime,
    brokers: &str,
    (format, capture_content): (WireFormat, bool),
    inferences: usize,
    work: &Path,
) -> anyhow::Result<Vec<String>> {
    let label = match (format == WireFormat::JsonEvents, capture_content) {
        (true, true) => "json",
        (true, false) => "json-bare",
        (false, true) => "otlp",
        (false, false) => "otlp-bare",
    };
    let prefix = format!("{}-", unique(&format!("bench-{label}-{inferences}")));
    let topics = LoadTopics::with_prefix(&prefix);
    runtime.block_on(ensure_topics(brokers, &[], &topics.all(), PARTITIONS, Duration::from_secs(30)))?;
    let started = Instant::now();
    let report = produce(&LoadOptions {
        brokers: brokers.to_owned(),
        topics: topics.clone(),
        fleet: support::busy_fleet(inferences, capture_content),
        formats: FormatMix::Single(format),
        spans_per_message: SPANS_PER_MESSAGE,
        rate: 0,
        librdkafka: vec![("batch.num.messages".to_owned(), "1".to_owned()), ("linger.ms".to_owned(), "0".to_owned())],
        created_partitions: None,
    })?;
    let truth = report.truth;
    let total = truth.total();
    let rows = total.requests + total.feedback;
    println!(
        "\n[{label} {inferences}] produced {} messages ({rows} rows) to {prefix}* in {:.1} s",
        truth.messages,
        started.elapsed().as_secs_f64()
    );

    let daemon = run_daemon(brokers, &topics, truth.messages, &work.join(&prefix))?;
    println!(
        "  daemon: {:.2} s busy, {:.2} cpu s, peak RSS {}",
        daemon.busy.as_secs_f64(),
        daemon.cpu_seconds,
        mib(daemon.peak_rss_bytes)
    );
    if let Some(quarters) = daemon.rss_by_quarter {
        println!("  daemon mean RSS while consuming each quarter of the messages: {}", quarters.map(mib).join(" / "));
    }
    let plain = run_plain_consumer(brokers, &topics, truth.messages)?;
    println!(
        "  plain consumer: {:.2} s busy, {:.2} cpu s, peak RSS {}",
        plain.busy.as_secs_f64(),
        plain.cpu_seconds,
        mib(plain.peak_rss_bytes)
    );

    let line = |who: &str, m: &Measured| {
        let busy = m.busy.as_secs_f64().max(f64::EPSILON);
        let growth = m
            .rss_by_quarter
            .filter(|q| q[1] > 0 && q[3] > 0)
            .map_or_else(|| "-".to_owned(), |q| format!("{:+.1} %", (q[3] as f64 / q[1] as f64 - 1.0) * 100.0));
        format!(
            "{:<10} {:>8} {:>9} {:>9} {:<15} {:>11} {:>12} {:>15.2} {:>11} {:>12}",
            label,
            inferences,
            truth.messages,
            rows,
            who,
            si(rows as f64 / busy),
            si(truth.messages as f64 / busy),
            m.cpu_seconds / (rows as f64 / 1e6),
            mib(m.peak_rss_bytes),
            growth
        )
    };
    let ratio = daemon.cpu_seconds / plain.cpu_seconds.max(f64::EPSILON);
    Ok(vec![
        line("driftwatch", &daemon),
        line("plain rdkafka", &plain),
        format!(
            "{:<10} {:>8} {:>9} {:>9} {:<15} CPU ratio daemon / plain consumer: {ratio:.2}x",
            label, inferences, "", "", ""
        ),
    ])
}

/// (a) The release daemon into a fresh lake until `driftwatch_messages_total` reaches `expected`.
fn run_daemon(brokers: &str, topics: &LoadTopics, expected: u64, dir: &Path) -> anyhow::Result<Measured> {
    std::fs::create_dir_all(dir)?;
    let lake = dir.join("lake");
    let config = dir.join("driftwatch.toml");
    std::fs::write(&config, topics.daemon_config(brokers, "bench", &lake.display().to_string()))?;
    let listen = format!("127.0.0.1:{}", free_port()?);
    let log = dir.join("daemon.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_driftwatch"));
    // Overrides from the developer's shell must not change what is measured.
    for (key, _) in std::env::vars() {
        if key.starts_with("DRIFTWATCH_") && key.contains("__") {
            command.env_remove(key);
        }
    }
    let child = command
        .args(["ingest", "--config"])
        .arg(&config)
        .env("DRIFTWATCH_HTTP__LISTEN", format!("\"{listen}\""))
        .env("DRIFTWATCH_SHUTDOWN_DEADLINE", "120s")
        .env("DRIFTWATCH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting driftwatch ingest")?;
    let mut child = Reaper(child);
    let pid = child.0.id().to_string();

    let deadline = Instant::now() + CONSUME_TIMEOUT;
    let mut peak_rss = 0u64;
    let mut rss_sums = [(0u64, 0u64); 4];
    let mut first: Option<Instant> = None;
    let mut last_scrape: Option<Instant> = None;
    let done = loop {
        let sample = support::sample(&pid)?;
        peak_rss = peak_rss.max(sample.peak_rss_bytes);
        if let Some(status) = child.0.try_wait()? {
            bail!("driftwatch ingest exited early with {status}; log in {}", log.display());
        }
        if last_scrape.is_some_and(|at| at.elapsed() < SCRAPE_EVERY) {
            std::thread::sleep(POLL);
            continue;
        }
        last_scrape = Some(Instant::now());
        let consumed =
            http_get(&listen, "/metrics").map(|body| metric_sum(&body, "driftwatch_messages_total")).unwrap_or(0.0);
        let now = Instant::now();
        if consumed > 0.0 && first.is_none() {
            // Half a scrape period before this sample is the best estimate of the first message.
            first = Some(now.checked_sub(SCRAPE_EVERY / 2).unwrap_or(now));
        }
        if consumed > 0.0 && sample.rss_bytes > 0 {
            let quarter = ((consumed * 4.0 / expected.max(1) as f64) as usize).min(3);
            rss_sums[quarter].0 += sample.rss_bytes;
            rss_sums[quarter].1 += 1;
        }
        if consumed >= expected as f64 {
            break now;
        }
        if now >= deadline {
            bail!(
                "driftwatch consumed {consumed} of {expected} messages within {CONSUME_TIMEOUT:?}; log in {}",
                log.display()
            );
        }
        std::thread::sleep(POLL);
    };
    let status = Command::new("kill").args(["-TERM", &pid]).status()?;
    if !status.success() {
        bail!("kill -TERM {pid} failed");
    }
    let final_sample = wait_for_exit(&mut child.0, &pid, &mut peak_rss)?;
    let status = child.0.wait()?;
    if !status.success() {
        bail!("driftwatch ingest exited with {status} after SIGTERM; log in {}", log.display());
    }
    let busy = done.duration_since(first.unwrap_or(done));
    Ok(Measured {
        busy,
        cpu_seconds: final_sample.cpu_seconds,
        peak_rss_bytes: peak_rss,
        rss_by_quarter: Some(rss_sums.map(|(sum, samples)| sum.checked_div(samples).unwrap_or(0))),
    })
}

/// (b) This binary again, as a plain consumer; measured from here like the daemon.
fn run_plain_consumer(brokers: &str, topics: &LoadTopics, expected: u64) -> anyhow::Result<Measured> {
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .env(PLAIN_CONSUMER_ENV, "1")
        .env("DRIFTWATCH_BENCH_BROKERS", brokers)
        .env("DRIFTWATCH_BENCH_TOPICS", topics.all().join(","))
        .env("DRIFTWATCH_BENCH_EXPECTED", expected.to_string())
        .env("DRIFTWATCH_BENCH_GROUP", unique("bench-plain"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the plain consumer")?;
    let mut child = Reaper(child);
    let pid = child.0.id().to_string();
    let mut peak_rss = 0u64;
    let final_sample = wait_for_exit(&mut child.0, &pid, &mut peak_rss)?;
    let mut stdout = String::new();
    if let Some(mut out) = child.0.stdout.take() {
        out.read_to_string(&mut stdout)?;
    }
    let status = child.0.wait()?;
    if !status.success() {
        bail!("the plain consumer exited with {status}");
    }
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).context("plain consumer printed no report")?;
    let busy = report["busy_secs"].as_f64().context("no busy_secs in the plain consumer report")?;
    Ok(Measured {
        busy: Duration::from_secs_f64(busy),
        cpu_seconds: final_sample.cpu_seconds,
        peak_rss_bytes: peak_rss,
        rss_by_quarter: None,
    })
}

/// Sample `/proc/<pid>` until the process is a zombie: its CPU counters are then final. The
/// caller reaps it afterwards.
fn wait_for_exit(child: &mut Child, pid: &str, peak_rss: &mut u64) -> anyhow::Result<support::ProcSample> {
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    loop {
        let sample = support::sample(pid)?;
        *peak_rss = (*peak_rss).max(sample.peak_rss_bytes);
        if sample.zombie {
            return Ok(sample);
        }
        if Instant::now() >= deadline {
            child.kill()?;
            bail!("process {pid} did not exit within {CONSUME_TIMEOUT:?}");
        }
        std::thread::sleep(POLL / 5);
    }
}

/// The plain consumer: a fresh group over the topics, reading until every partition's high
/// watermark (taken before reading) is reached, touching each payload and nothing else.
fn plain_consumer_child() -> anyhow::Result<()> {
    let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
    let brokers = var("DRIFTWATCH_BENCH_BROKERS")?;
    let topics = var("DRIFTWATCH_BENCH_TOPICS")?;
    let expected: u64 = var("DRIFTWATCH_BENCH_EXPECTED")?.parse()?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", var("DRIFTWATCH_BENCH_GROUP")?)
        .set("group.protocol", "classic")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("queued.max.messages.kbytes", QUEUED_MAX_MESSAGES_KBYTES)
        .create()?;
    let timeout = Duration::from_secs(10);
    let topics: Vec<&str> = topics.split(',').collect();
    // (topic, partition) -> high watermark; the consumer is done when it has read up to each.
    let mut remaining = std::collections::HashMap::new();
    let mut watermark_total = 0u64;
    for topic in &topics {
        let metadata = consumer.fetch_metadata(Some(topic), timeout).with_context(|| format!("metadata of {topic}"))?;
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (low, high) = consumer
                .fetch_watermarks(topic, partition.id(), timeout)
                .with_context(|| format!("watermarks of {topic}/{}", partition.id()))?;
            watermark_total += u64::try_from(high - low).unwrap_or(0);
            if high > low {
                remaining.insert(((*topic).to_owned(), partition.id()), high);
            }
        }
    }
    if watermark_total != expected {
        bail!("the topics hold {watermark_total} messages, the producer acknowledged {expected}");
    }
    consumer.subscribe(&topics)?;
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    let mut first: Option<Instant> = None;
    let (mut messages, mut bytes) = (0u64, 0u64);
    while !remaining.is_empty() {
        if Instant::now() >= deadline {
            bail!("read {messages} of {expected} messages within {CONSUME_TIMEOUT:?}");
        }
        let Some(result) = consumer.poll(Duration::from_millis(100)) else { continue };
        let message = result?;
        first.get_or_insert_with(Instant::now);
        messages += 1;
        bytes += message.payload().map_or(0, |p| std::hint::black_box(p).len() as u64);
        let key = (message.topic().to_owned(), message.partition());
        if remaining.get(&key).is_some_and(|high| message.offset() + 1 >= *high) {
            remaining.remove(&key);
        }
    }
    let busy = first.map_or(Duration::ZERO, |first| first.elapsed());
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{}",
        serde_json::json!({ "messages": messages, "bytes": bytes, "busy_secs": busy.as_secs_f64() })
    )?;
    Ok(())
}

/// Kills and reaps the child if the bench bails out while it runs.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A comma-separated list from the environment, or `default`.
fn list_env(name: &str, default: &str) -> anyhow::Result<Vec<String>> {
    let value = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let items: Vec<String> = value.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    if items.is_empty() {
        bail!("{name} is empty");
    }
    Ok(items)
}

/// A name unique to this run, for topics and groups.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Plain HTTP/1.1 GET on loopback; the body (chunked encoding undone).
fn http_get(address: &str, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").context("no HTTP header end")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    if !head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return Ok(body.to_owned());
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size_line, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size_line.trim(), 16).context("bad chunk size")?;
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    Ok(out)
}

/// Sum of every sample of one metric family in a Prometheus exposition.
fn metric_sum(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .filter_map(|line| line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}
