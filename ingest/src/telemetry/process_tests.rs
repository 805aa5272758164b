//! Unit tests of [`super::ProcessCollector`]: the `/proc` parsing on fixed text, and the live
//! values against sources the collector does not read (`/proc/self/status`, `/proc/self/limits`,
//! the thread CPU clock).

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::registry::Registry;

use super::*;

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

#[test]
fn stat_fields_are_counted_from_the_last_parenthesis() -> TestResult {
    // A real line with a command name holding a space and a parenthesis.
    let line = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 1734 0 0 0 250 75 0 0 20 0 9 0 \
                123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
    let stat = parse_stat(line).ok_or("no stat parsed")?;
    assert_eq!(
        stat,
        Stat {
            state: 'S',
            cpu_ticks: 325,
            threads: 9,
            start_ticks: 123_456,
            virtual_bytes: 987_654_321,
            resident_pages: 2048
        }
    );
    let zombie = line.replace(") S 1", ") Z 1");
    assert_eq!(parse_stat(&zombie).map(|stat| stat.state), Some('Z'));
    assert_eq!(parse_stat("4242 (cut) S 1 2"), None, "a short line is not read as zeros");
    assert_eq!(parse_stat("no parenthesis here"), None);
    Ok(())
}

#[test]
fn boot_time_is_read_from_its_line() {
    let text = "cpu  1 2 3 4\nintr 5 6\nctxt 7\nbtime 1764460800\nprocesses 8\n";
    assert_eq!(boot_time_seconds(text), Some(1_764_460_800));
    assert_eq!(boot_time_seconds("cpu 1 2 3\n"), None);
}

/// Every sample of the exposition by metric name (these metrics have no labels).
fn scrape(collector: ProcessCollector) -> Result<HashMap<String, f64>, Box<dyn std::error::Error>> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    let mut values = HashMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (name, value) = line.split_once(' ').ok_or_else(|| format!("no value in {line:?}"))?;
        values.insert(name.to_owned(), value.parse::<f64>()?);
    }
    Ok(values)
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB"))
        .ok_or_else(|| format!("no {field} in /proc/self/status"))?;
    Ok(kib.trim().parse::<f64>()? * 1024.0)
}

fn within(value: f64, reference: f64, factor: f64) -> bool {
    value >= reference / factor && value <= reference * factor
}

#[test]
fn live_values_agree_with_sources_the_collector_does_not_read() -> TestResult {
    // Give this thread a known amount of CPU time, by its own clock, before the scrape.
    let thread_cpu = || {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
    };
    let mut spin = 0u64;
    while thread_cpu() < 0.3 {
        spin = std::hint::black_box(spin.wrapping_add(1));
    }
    let spent_by_this_thread = thread_cpu();
    // A parked thread, so the process has at least two while it is scraped.
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    let parked = std::thread::spawn(move || rx.recv().ok());

    let before = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
    let values = scrape(ProcessCollector::new())?;
    let resident_reference = status_bytes("VmRSS")?;
    let virtual_reference = status_bytes("VmSize")?;
    drop(tx);
    parked.join().map_err(|_| "parked thread panicked")?;
    let value = |name: &str| values.get(name).copied().ok_or_else(|| format!("{name} missing from {values:?}"));

    // Resident and virtual size: the same quantities as /proc/self/status reports in kB, read a
    // moment apart while other tests allocate, so within a factor; a wrong field or unit is off
    // by thousands.
    let resident = value(PROCESS_RESIDENT_MEMORY_BYTES)?;
    assert!(within(resident, resident_reference, 1.5), "RSS {resident} against VmRSS {resident_reference}");
    let virtual_bytes = value(PROCESS_VIRTUAL_MEMORY_BYTES)?;
    assert!(within(virtual_bytes, virtual_reference, 1.5), "VSZ {virtual_bytes} against VmSize {virtual_reference}");

    // CPU of all threads is at least this thread's (less a tick of rounding), and no more than
    // every core busy since the process started.
    let cpu = value(PROCESS_CPU_SECONDS_TOTAL)?;
    assert!(cpu >= spent_by_this_thread - 0.05, "process CPU {cpu} s below this thread's {spent_by_this_thread} s");
    let start = value(PROCESS_START_TIME_SECONDS)?;
    let cores = std::thread::available_parallelism()?.get() as f64;
    assert!(start <= before && start > before - 3600.0, "start {start} against now {before}");
    assert!(cpu <= (before - start + 1.0) * cores, "process CPU {cpu} s in {} s on {cores} cores", before - start);

    assert!(value(PROCESS_THREADS)? >= 2.0);
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let soft_limit = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files")?.split_whitespace().next()?.parse::<f64>().ok())
        .ok_or("no open-files limit in /proc/self/limits")?;
    assert_eq!(value(PROCESS_MAX_FDS)?, soft_limit);
    let open = value(PROCESS_OPEN_FDS)?;
    assert!(open >= 1.0 && open <= soft_limit, "{open} open descriptors");
    Ok(())
}
