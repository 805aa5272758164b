//! Helpers shared by the non-criterion harnesses (`file_pipeline`, `kafka_load`): process CPU
//! time and peak RSS read from `/proc`, and number formatting for the printed tables.
//!
//! CPU comes from `/proc/<pid>/stat` (`utime` + `stime`, all threads, in clock ticks), peak
//! RSS from `VmHWM` and current RSS from `VmRSS` in `/proc/<pid>/status`, so the in-process
//! run, the daemon and the plain consumer are all measured by the same counters without extra
//! dependencies. The stat line is read by the daemon's own parser
//! (`driftwatch_ingest::telemetry::process`), the one behind its `process_cpu_seconds_total`.
#![allow(dead_code)]

use std::time::Duration;

/// The allocator the `driftwatch` binary uses, so in-process figures match the daemon's.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::Context;
use driftwatch_ingest::fleet::FleetConfig;
use driftwatch_ingest::telemetry::process;

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

/// Sample `/proc/<pid>` (`"self"` for this process).
pub fn sample(pid: &str) -> anyhow::Result<ProcSample> {
    let line =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The daemon's own parser, the one behind its `process_cpu_seconds_total`.
    let stat = process::parse_stat(&line).with_context(|| format!("unexpected /proc/{pid}/stat: {line:?}"))?;
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
        cpu_seconds: stat.cpu_ticks as f64 / process::clock_ticks_per_second(),
        peak_rss_bytes: status_bytes("VmHWM"),
        rss_bytes: status_bytes("VmRSS"),
        zombie: stat.state == 'Z',
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
