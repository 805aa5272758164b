//! The standard Prometheus process metrics (`process_resident_memory_bytes`,
//! `process_cpu_seconds_total`, ...), read from `/proc/self` at scrape time.
//!
//! Prometheus client libraries are expected to export these, and SREs alert on them; the Go and
//! Java clients do it by default, `prometheus-client` does not. They matter here because the
//! daemon's memory is bounded by configuration (`flush.max_buffered_bytes` plus fixed costs, see
//! the README): `process_resident_memory_bytes` next to `driftwatch_buffered_bytes` shows how
//! much of the resident set the buffers are, and a container limit can be alerted on before the
//! kernel's OOM killer acts.
//!
//! Each scrape reads `/proc/self/stat` (CPU, threads, memory), counts `/proc/self/fd` and asks
//! `getrlimit` for the descriptor limit; the boot time, the clock tick and the page size are read
//! once. A value that cannot be read (a restricted `/proc`) is left out of that scrape rather
//! than reported as 0. Only Linux has `/proc`; elsewhere the collector is not registered.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::genai::counter_name;
use super::names::{
    PROCESS_CPU_SECONDS_TOTAL, PROCESS_MAX_FDS, PROCESS_OPEN_FDS, PROCESS_RESIDENT_MEMORY_BYTES,
    PROCESS_START_TIME_SECONDS, PROCESS_THREADS, PROCESS_VIRTUAL_MEMORY_BYTES,
};

/// Reads this process's figures from `/proc` on every scrape.
#[derive(Debug)]
pub(crate) struct ProcessCollector {
    ticks_per_second: f64,
    page_size: f64,
    /// Process start as Unix seconds: it never changes, so it is computed once.
    start_time_seconds: Option<f64>,
}

/// The fields of a `/proc/<pid>/stat` line that this collector reports (and that the load
/// harnesses in `benches/` read of the daemon they measure).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Process state (proc(5) field 3): `R`, `S`, `Z` for a zombie, ...
    pub state: char,
    /// `utime + stime` of every thread, in clock ticks ([`clock_ticks_per_second`]).
    pub cpu_ticks: u64,
    /// Threads in the process.
    pub threads: u64,
    /// Start time since boot, clock ticks.
    pub start_ticks: u64,
    /// Virtual memory size, bytes.
    pub virtual_bytes: u64,
    /// Resident set size, pages ([`rustix::param::page_size`]).
    pub resident_pages: u64,
}

/// The unit of every time in `/proc/<pid>/stat` (USER_HZ), not the kernel's internal tick.
pub fn clock_ticks_per_second() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

impl ProcessCollector {
    pub(crate) fn new() -> Self {
        // Both are constant for the life of the process.
        let ticks_per_second = clock_ticks_per_second();
        let page_size = rustix::param::page_size() as f64;
        let start_time_seconds = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|text| boot_time_seconds(&text))
            .zip(read_stat())
            .map(|(boot, stat)| boot as f64 + stat.start_ticks as f64 / ticks_per_second);
        Self { ticks_per_second, page_size, start_time_seconds }
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let gauge = |encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: f64| {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(metric)
        };
        if let Some(stat) = read_stat() {
            let metric = encoder.encode_descriptor(
                counter_name(PROCESS_CPU_SECONDS_TOTAL),
                "Total user and system CPU time spent in seconds.",
                None,
                MetricType::Counter,
            )?;
            ConstCounter::new(stat.cpu_ticks as f64 / self.ticks_per_second).encode(metric)?;
            let resident = stat.resident_pages as f64 * self.page_size;
            gauge(&mut encoder, PROCESS_RESIDENT_MEMORY_BYTES, "Resident memory size in bytes.", resident)?;
            let virtual_bytes = stat.virtual_bytes as f64;
            gauge(&mut encoder, PROCESS_VIRTUAL_MEMORY_BYTES, "Virtual memory size in bytes.", virtual_bytes)?;
            gauge(&mut encoder, PROCESS_THREADS, "Number of OS threads in the process.", stat.threads as f64)?;
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            // The directory handle read_dir holds is one of the entries; it is not the
            // process's own, so it is not counted.
            let open = entries.count().saturating_sub(1);
            gauge(&mut encoder, PROCESS_OPEN_FDS, "Number of open file descriptors.", open as f64)?;
        }
        if let Some(limit) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
            gauge(&mut encoder, PROCESS_MAX_FDS, "Maximum number of open file descriptors.", limit as f64)?;
        }
        if let Some(start) = self.start_time_seconds {
            let help = "Start time of the process since unix epoch in seconds.";
            gauge(&mut encoder, PROCESS_START_TIME_SECONDS, help, start)?;
        }
        Ok(())
    }
}

fn read_stat() -> Option<Stat> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// The fields of one `/proc/<pid>/stat` line (proc(5)): the command name is in parentheses and
/// may itself hold spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let (_, rest) = line.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is proc(5)'s field 3 (state), so field n is `fields[n - 3]`.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let mut state = fields.first()?.chars();
    Some(Stat {
        state: state.next().filter(|_| state.next().is_none())?,
        cpu_ticks: field(14)?.checked_add(field(15)?)?,
        threads: field(20)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
        resident_pages: field(24)?,
    })
}

/// `btime` of `/proc/stat`: boot time as Unix seconds.
fn boot_time_seconds(proc_stat: &str) -> Option<u64> {
    proc_stat.lines().find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
