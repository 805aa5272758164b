//! Helpers shared by the end-to-end tests: the driftwatch binary, the dev stack's services,
//! lake inspection through the analyze crate, and small HTTP/process utilities.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use driftwatch_analyze::LakeSession;

/// The binary under test.
pub fn driftwatch() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_driftwatch"));
    command.env("DRIFTWATCH_LOG", "warn,driftwatch_ingest=info");
    // Config overrides from the developer's shell must not leak into tests.
    for (key, _) in std::env::vars() {
        if key.starts_with("DRIFTWATCH_") && key.contains("__") {
            command.env_remove(key);
        }
    }
    command
}

/// A service address exported by `scripts/dev-stack env`; tests fail loudly without it.
pub fn stack_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test (it starts the dev stack and exports it)")
    })
}

/// A name unique to this test run, for topics and groups: `prefix` and 8 hex digits. Short,
/// because topic and group names end up in lake object keys, and s3s-fs, the test S3 server,
/// keeps each object's metadata in a file named after the base64 of its key.
pub fn unique(prefix: &str) -> String {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mixed = BuildHasherDefault::<DefaultHasher>::default().hash_one((std::process::id(), nanos));
    format!("{prefix}{:08x}", mixed & 0xffff_ffff)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// Run `promtool` (from the dev stack's Debian `prometheus` package) with `args` in `dir`,
/// `stdin` as its input; its output, or an error holding it when it fails.
pub fn promtool(args: &[&str], dir: &Path, stdin: &str) -> anyhow::Result<String> {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("promtool not found: scripts/dev-stack up installs Debian's prometheus package, which has it")?;
    child.stdin.take().context("promtool's stdin")?.write_all(stdin.as_bytes())?;
    let output = child.wait_with_output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    anyhow::ensure!(output.status.success(), "promtool {args:?} failed:\n{text}");
    Ok(text)
}

/// Plain HTTP/1.1 GET on loopback; returns (status, body).
pub fn http_get(address: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status =
        response.split_whitespace().nth(1).and_then(|code| code.parse().ok()).context("no HTTP status line")?;
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    Ok((status, decode_chunked(&body)))
}

fn decode_chunked(body: &str) -> String {
    // axum answers with chunked encoding when the length is unknown; undo it when present.
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size_line, after)) = rest.split_once("\r\n") else { return body.to_owned() };
        let Ok(size) = usize::from_str_radix(size_line.trim(), 16) else { return body.to_owned() };
        if size == 0 {
            return out;
        }
        if after.len() < size {
            return body.to_owned();
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
}

/// Poll `check` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Send SIGTERM to a child.
pub fn terminate(child: &Child) -> anyhow::Result<()> {
    signal(child, "TERM")
}

/// Send a signal by name (`TERM`, `STOP`, `CONT`, ...) to a child, without waiting.
pub fn signal(child: &Child, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status()?;
    if !status.success() {
        bail!("kill -{name} {} failed", child.id());
    }
    Ok(())
}

/// Credentials of the S3 servers the tests run (s3s-fs; `scripts/dev-stack` uses the same).
pub const S3_ACCESS_KEY: &str = "driftwatch";
pub const S3_SECRET_KEY: &str = "driftwatch-secret";

/// The environment a driftwatch process needs to reach the S3 server at `endpoint` through
/// object_store.
pub fn s3_client_env(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect()
}

/// Wait for a child with a timeout; kills it when the timeout passes.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("process {} did not exit within {:?}", child.id(), timeout);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Counts read back from a lake with DataFusion.
#[derive(Debug, Clone, PartialEq)]
pub struct LakeCounts {
    pub event_rows: i64,
    pub distinct_events: i64,
    pub feedback_rows: i64,
    pub dead_letters: i64,
    pub per_app: BTreeMap<String, AppCounts>,
}

/// Per-app sums from the events table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppCounts {
    pub rows: i64,
    pub distinct_events: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
}

/// Read the lake's counts (events counted per row and per distinct event id).
pub async fn lake_counts(lake: &Path) -> anyhow::Result<LakeCounts> {
    let session = LakeSession::open(&lake.display().to_string(), None).await?;
    let totals = driftwatch_analyze::lake_totals(&session).await?;
    let batches = session
        .sql_to_batches(
            "SELECT app, count(*) AS rows, count(DISTINCT event_id) AS distinct_events, \
             sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, \
             sum(coalesce(input_tokens, 0)) AS input_tokens, sum(coalesce(output_tokens, 0)) AS output_tokens, \
             sum(coalesce(cost_usd, 0)) AS cost_usd FROM events GROUP BY app ORDER BY app",
        )
        .await?;
    let mut per_app = BTreeMap::new();
    for batch in &batches {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::{Float64Type, Int64Type};
        let app = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::Utf8)?;
        let app = app.as_string::<i32>();
        let int = |i: usize| -> anyhow::Result<arrow::array::Int64Array> {
            Ok(arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Int64)?
                .as_primitive::<Int64Type>()
                .clone())
        };
        let (rows, distinct, errors, input, output) = (int(1)?, int(2)?, int(3)?, int(4)?, int(5)?);
        let cost = arrow::compute::cast(batch.column(6), &arrow::datatypes::DataType::Float64)?;
        let cost = cost.as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            if app.is_null(row) {
                continue;
            }
            per_app.insert(
                app.value(row).to_owned(),
                AppCounts {
                    rows: rows.value(row),
                    distinct_events: distinct.value(row),
                    errors: errors.value(row),
                    input_tokens: input.value(row),
                    output_tokens: output.value(row),
                    cost_usd: cost.value(row),
                },
            );
        }
    }
    Ok(LakeCounts {
        event_rows: totals.events,
        distinct_events: totals.distinct_events,
        feedback_rows: totals.feedback,
        dead_letters: totals.dead_letters,
        per_app,
    })
}

/// Feedback and rollup sums for one app, read back from a lake.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppFeedbackCounts {
    /// Rows of the `feedback` table.
    pub feedback: i64,
    /// Distinct feedback ids among them.
    pub distinct_ids: i64,
    /// Rows with a numeric score.
    pub scored: i64,
    /// Feedback rows named `hallucination` (any case).
    pub hallucination_evals: i64,
    /// Of those, the ones that flag the answer, by the lake model's own rule
    /// ([`FeedbackEvent::is_flagged`](driftwatch_lake::model::FeedbackEvent::is_flagged)), as
    /// the truth judges them.
    pub hallucination_flagged: i64,
    /// Sums over every `rollups` row of the app.
    pub rollups: RollupSums,
}

/// Sums over rollup rows (partial aggregates: readers add them up).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollupSums {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Feedback tallies of every name.
    pub feedback: i64,
    /// Results with a numeric score, of every name.
    pub scored: i64,
    /// Tallies named `hallucination` (any case).
    pub hallucination_evals: i64,
    /// Flagged results among those.
    pub hallucination_flagged: i64,
}

impl AppFeedbackCounts {
    /// Assert that the feedback rows, hallucination counts and rollup sums read back for `app`
    /// equal the generator's truth.
    pub fn assert_matches(&self, truth: &driftwatch_ingest::fleet::AppTruth, app: &str, context: &str) {
        let read = |n: i64| u64::try_from(n).unwrap_or(u64::MAX);
        assert_eq!(
            [self.feedback, self.distinct_ids, self.hallucination_evals, self.hallucination_flagged].map(read),
            [truth.feedback, truth.feedback, truth.hallucination_evals, truth.hallucination_flagged],
            "{app}: feedback rows, distinct feedback ids, hallucination evaluations, flagged ones {context}"
        );
        let rollups = &self.rollups;
        assert_eq!(
            [
                rollups.requests,
                rollups.errors,
                rollups.input_tokens,
                rollups.output_tokens,
                rollups.feedback,
                rollups.hallucination_evals,
                rollups.hallucination_flagged
            ]
            .map(read),
            [
                truth.requests,
                truth.errors,
                truth.input_tokens,
                truth.output_tokens,
                truth.feedback,
                truth.hallucination_evals,
                truth.hallucination_flagged
            ],
            "{app}: rollup requests, errors, input and output tokens, feedback, hallucination evaluations, \
             flagged ones {context}"
        );
        assert_eq!(
            rollups.scored, self.scored,
            "{app}: scored results in the rollups and the feedback table {context}"
        );
    }
}

/// Read feedback rows and rollup sums per app. The rollup rows are decoded by the lake crate,
/// so their feedback tallies (a list of structs) are read whole.
pub async fn lake_feedback_and_rollups(lake: &Path) -> anyhow::Result<BTreeMap<String, AppFeedbackCounts>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Int64Type};
    use driftwatch_lake::model::{FeedbackEvent, HALLUCINATION_EVALUATION};
    let session = LakeSession::open(&lake.display().to_string(), None).await?;
    let mut per_app: BTreeMap<String, AppFeedbackCounts> = BTreeMap::new();
    let int = |batch: &arrow::array::RecordBatch, i: usize| -> anyhow::Result<arrow::array::Int64Array> {
        Ok(arrow::compute::cast(batch.column(i), &DataType::Int64)?.as_primitive::<Int64Type>().clone())
    };
    let text = |batch: &arrow::array::RecordBatch, i: usize| -> anyhow::Result<Vec<Option<String>>> {
        let column = arrow::compute::cast(batch.column(i), &DataType::Utf8)?;
        let column = column.as_string::<i32>();
        Ok((0..column.len()).map(|row| column.is_valid(row).then(|| column.value(row).to_owned())).collect())
    };
    let sql = "SELECT app, count(*) AS rows, count(DISTINCT feedback_id) AS distinct_ids, count(score_value) AS scored \
               FROM feedback GROUP BY app";
    for batch in &session.sql_to_batches(sql).await? {
        let (apps, rows, ids, scored) = (text(batch, 0)?, int(batch, 1)?, int(batch, 2)?, int(batch, 3)?);
        for (row, app) in apps.into_iter().enumerate() {
            let counts = per_app.entry(app.unwrap_or_default()).or_default();
            (counts.feedback, counts.distinct_ids, counts.scored) =
                (rows.value(row), ids.value(row), scored.value(row));
        }
    }
    // Grouped by everything `is_flagged` looks at (the score only as far as its threshold), so
    // each group is judged once by the model's own rule.
    let sql = "SELECT app, name, score_label, high, count(*) AS rows FROM \
               (SELECT app, name, score_label, score_value >= 0.5 AS high FROM feedback) \
               GROUP BY app, name, score_label, high";
    for batch in &session.sql_to_batches(sql).await? {
        let (apps, names, labels, rows) = (text(batch, 0)?, text(batch, 1)?, text(batch, 2)?, int(batch, 4)?);
        let high = arrow::compute::cast(batch.column(3), &DataType::Boolean)?;
        let high = high.as_boolean();
        for row in 0..batch.num_rows() {
            let name = names[row].clone().unwrap_or_default();
            if !name.eq_ignore_ascii_case(HALLUCINATION_EVALUATION) {
                continue;
            }
            let score_value = high.is_valid(row).then(|| if high.value(row) { 1.0 } else { 0.0 });
            let judged = FeedbackEvent { name, score_value, score_label: labels[row].clone(), ..Default::default() };
            let counts = per_app.entry(apps[row].clone().unwrap_or_default()).or_default();
            counts.hallucination_evals += rows.value(row);
            counts.hallucination_flagged += if judged.is_flagged() { rows.value(row) } else { 0 };
        }
    }
    for batch in &session.sql_to_batches("SELECT * FROM rollups").await? {
        for row in driftwatch_lake::decode::decode_rollups(batch)? {
            let sums = &mut per_app.entry(row.key.app.clone()).or_default().rollups;
            sums.requests += row.requests;
            sums.errors += row.errors;
            sums.input_tokens += row.input_tokens;
            sums.output_tokens += row.output_tokens;
            for tally in &row.feedback {
                sums.feedback += tally.count;
                sums.scored += tally.scored.unwrap_or(0);
                if tally.name.eq_ignore_ascii_case(HALLUCINATION_EVALUATION) {
                    sums.hallucination_evals += tally.count;
                    sums.hallucination_flagged += tally.flagged;
                }
            }
        }
    }
    Ok(per_app)
}

/// Run `sql` on the lake and return its rows with every value as text (`None` for null).
pub async fn sql_rows(session: &LakeSession, sql: &str) -> anyhow::Result<Vec<Vec<Option<String>>>> {
    use arrow::array::{Array, AsArray};
    let mut rows = Vec::new();
    for batch in session.sql_to_batches(sql).await? {
        let columns = batch
            .columns()
            .iter()
            .map(|column| arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(
                columns
                    .iter()
                    .map(|column| {
                        let column = column.as_string::<i32>();
                        (!column.is_null(row)).then(|| column.value(row).to_owned())
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// Run `driftwatch ingest` over the file or folder `input` into `lake`, with the configuration
/// file `config` if given, and return what it printed.
pub fn ingest_files(input: &Path, lake: &Path, config: Option<&Path>) -> anyhow::Result<String> {
    let mut command = driftwatch();
    command.arg("ingest");
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.arg("--source").arg(format!("file:{}", input.display())).arg("--lake").arg(lake);
    run_ok(&mut command)
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Run a command to completion, failing with its output when it fails.
pub fn run_ok(command: &mut Command) -> anyhow::Result<String> {
    let output = command.stdin(Stdio::null()).output()?;
    if !output.status.success() {
        bail!(
            "{:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            command,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A server process of the test's own on a loopback port, that the test can stop and start
/// again (a broker or object store outage). Its stderr is appended to a log beside the test's.
pub struct PrivateServer {
    pub address: String,
    command: Box<dyn Fn() -> Command + Send>,
    child: Option<Child>,
    log: PathBuf,
}

impl PrivateServer {
    /// Start `command(address)` and wait until it listens on `address`.
    pub fn start(
        name: &str,
        log_dir: &Path,
        command: impl Fn(&str) -> Command + Send + 'static,
    ) -> anyhow::Result<Self> {
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let for_command = address.clone();
        let mut server = Self {
            address,
            command: Box::new(move || command(&for_command)),
            child: None,
            log: log_dir.join(format!("{name}-{port}.log")),
        };
        server.restart()?;
        Ok(server)
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::options().create(true).append(true).open(&self.log)?;
        let child = (self.command)().stdin(Stdio::null()).stdout(Stdio::null()).stderr(log).spawn()?;
        self.child = Some(child);
        let address = self.address.clone();
        if wait_for(Duration::from_secs(30), || std::net::TcpStream::connect(&address).ok()).is_none() {
            bail!("private server did not listen on {address}; log in {}", self.log.display());
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An S3 server (s3s-fs) of the test's own, keeping objects as files under
/// `root/<bucket>/<key>`, that the test can stop and start again to cut the lake off.
pub struct PrivateS3 {
    pub server: PrivateServer,
    pub root: PathBuf,
}

impl PrivateS3 {
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let root = dir.join("s3");
        std::fs::create_dir_all(&root)?;
        let served = root.clone();
        let server = PrivateServer::start("s3s-fs", dir, move |address| {
            let (host, port) = address.split_once(':').unwrap_or((address, ""));
            let mut command = Command::new(stack_var("DRIFTWATCH_TEST_S3S_FS"));
            command.args(["--host", host, "--port", port]);
            command.args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY]);
            command.arg(&served).env("RUST_LOG", "warn");
            command
        })?;
        Ok(Self { server, root })
    }

    /// The environment a daemon needs to reach this server through object_store.
    pub fn client_env(&self) -> Vec<(String, String)> {
        s3_client_env(&format!("http://{}", self.server.address))
    }
}
