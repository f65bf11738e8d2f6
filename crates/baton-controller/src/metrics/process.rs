//! The process's own metrics, read from /proc at scrape time under the names every Prometheus
//! client library uses (`process_cpu_seconds_total`, `process_resident_memory_bytes`, …).
//! prometheus-client has no process collector; off Linux there are none.
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What /proc says about this process.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: i64,
    pub virtual_bytes: i64,
    pub open_fds: i64,
    pub max_fds: i64,
    pub start_time_seconds: f64,
    pub threads: i64,
}

/// Fields of `/proc/<pid>/stat` after the command name (which may hold spaces), 0-based from
/// field 3 (`state`).
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// A `Name:   value [kB]` line of `/proc/self/status`, in bytes when it has the unit.
fn status_value(status: &str, key: &str) -> i64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| {
            let mut parts = v.split_whitespace();
            let n = parts.next().and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
            if parts.next() == Some("kB") {
                n * 1024
            } else {
                n
            }
        })
        .unwrap_or(0)
}

/// Parse `/proc/self/stat` (CPU times, start time, in `ticks` per second), `/proc/self/status`
/// (memory, threads), the `btime` line of `/proc/stat` and the soft open-files limit of
/// `/proc/self/limits`.
pub fn parse(stat: &str, status: &str, proc_stat: &str, limits: &str, ticks: f64) -> ProcessStats {
    let f = stat_fields(stat);
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Counting from `state` (field 3 of proc(5)): utime is 11, stime 12, starttime 19.
    let boot = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0);
    ProcessStats {
        cpu_seconds: (num(11) + num(12)) / ticks,
        start_time_seconds: boot + num(19) / ticks,
        resident_bytes: status_value(status, "VmRSS"),
        virtual_bytes: status_value(status, "VmSize"),
        threads: status_value(status, "Threads"),
        open_fds: 0,
        max_fds,
    }
}

#[cfg(target_os = "linux")]
fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let proc_stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    // Linux reports these times in USER_HZ, which is 100 on every architecture.
    let mut s = parse(&stat, &status, &proc_stat, &limits, 100.0);
    s.open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count() as i64)
        .unwrap_or(0);
    Some(s)
}

#[cfg(not(target_os = "linux"))]
fn read() -> Option<ProcessStats> {
    None
}

/// Encodes [`ProcessStats`] at each scrape.
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = read() else { return Ok(()) };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges: [(&str, &str, f64); 6] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                s.resident_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                s.virtual_bytes as f64,
            ),
            ("process_open_fds", "Number of open file descriptors", s.open_fds as f64),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                s.max_fds as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds",
                s.start_time_seconds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                s.threads as f64,
            ),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let stat = "4242 (baton (x)) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 50 0 0 20 0 7 0 123400 104857600 2560 18446744073709551615";
        let status = "Name:\tbaton\nVmSize:\t  102400 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n";
        let proc_stat = "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 1048576              files\n";
        assert_eq!(
            parse(stat, status, proc_stat, limits, 100.0),
            ProcessStats {
                cpu_seconds: 3.0,
                resident_bytes: 10240 * 1024,
                virtual_bytes: 102400 * 1024,
                open_fds: 0,
                max_fds: 1024,
                start_time_seconds: 1_700_001_234.0,
                threads: 7,
            }
        );
    }
}
