//! Helpers shared by the non-criterion harnesses (`file_pipeline`, `kafka_load`): process CPU
//! time and peak RSS read from `/proc`, and number formatting for the printed tables.
//!
//! CPU comes from `/proc/<pid>/stat` (`utime` + `stime`, all threads, in clock ticks), peak
//! RSS from `VmHWM` and current RSS from `VmRSS` in `/proc/<pid>/status`, so the in-process
//! run, the daemon and the plain consumer are all measured by the same counters without extra
//! dependencies.
#![allow(dead_code)]

use std::time::Duration;

/// The allocator the `driftwatch` binary uses, so in-process figures match the daemon's.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::{Context, bail};
use driftwatch_ingest::fleet::FleetConfig;

/// The fleet both load harnesses generate: `inferences` calls at about 1 000 calls/s of event
/// time (at least a minute), so per-app OTLP batches fill up as a busy Collector's would.
pub fn busy_fleet(inferences: usize, capture_content: bool) -> FleetConfig {
    let duration_secs = i64::try_from(inferences / 1_000).unwrap_or(i64::MAX).max(60);
    FleetConfig { inferences, duration_secs, capture_content, ..FleetConfig::default() }
}

/// CPU time and peak resident memory of one process at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// User + system CPU seconds of every thread so far.
    pub cpu_seconds: f64,
    /// Peak resident set size so far (`VmHWM`), bytes; 0 once the process is a zombie.
    pub peak_rss_bytes: u64,
    /// Resident set size now (`VmRSS`), bytes; 0 once the process is a zombie.
    pub rss_bytes: u64,
    /// True when the process has exited but is not reaped yet (its CPU counters are final).
    pub zombie: bool,
}

/// Clock ticks per second of the `/proc/<pid>/stat` CPU fields (`getconf CLK_TCK`).
pub fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        // USER_HZ is 100 on every mainstream Linux architecture.
        .unwrap_or(100.0)
}

/// Sample `/proc/<pid>` (`"self"` for this process).
pub fn sample(pid: &str, ticks_per_second: f64) -> anyhow::Result<ProcSample> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name is in parentheses and may contain spaces; the fields after it are fixed.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).context("no ')' in /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the man page, utime 14 and stime 15 (1-based overall).
    if fields.len() < 13 {
        bail!("/proc/{pid}/stat has only {} fields after the name", fields.len());
    }
    let zombie = fields[0] == "Z";
    let utime: f64 = fields[11].parse().context("utime")?;
    let stime: f64 = fields[12].parse().context("stime")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let status_bytes = |field: &str| {
        status
            .lines()
            .find_map(|line| {
                let kib = line.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim();
                kib.parse::<u64>().ok()
            })
            .map_or(0, |kib| kib * 1024)
    };
    Ok(ProcSample {
        cpu_seconds: (utime + stime) / ticks_per_second,
        peak_rss_bytes: status_bytes("VmHWM"),
        rss_bytes: status_bytes("VmRSS"),
        zombie,
    })
}

/// `1234567.8` as `1.23 M`, for rates in tables.
pub fn si(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} k", value / 1e3)
    } else {
        format!("{value:.1}")
    }
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Seconds with three decimals.
pub fn secs(duration: Duration) -> String {
    format!("{:.3} s", duration.as_secs_f64())
}

/// An unsigned integer from the environment, or `default` when unset; a bad value is an error.
pub fn env_usize(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(value) => value.trim().replace('_', "").parse().with_context(|| format!("{name}={value:?} is not a count")),
        Err(_) => Ok(default),
    }
}
