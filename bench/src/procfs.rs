//! What Linux reports about a process: CPU time and memory, from `/proc/<pid>`.

use std::io;
use std::sync::OnceLock;
use std::time::Duration;

/// Memory of a process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`).
    pub peak_kib: u64,
}

/// CPU time of a process: the time its threads ran, in nanoseconds from
/// `/proc/<pid>/task/*/schedstat`, or, where the kernel keeps no schedstat, `utime +
/// stime` of `/proc/<pid>/stat` in clock ticks (10 ms: too coarse to compare a few
/// thousand calls).
///
/// The nanosecond figure sums the threads living when it is read: the worker threads of
/// the processes measured here live as long as the process.
///
/// # Errors
///
/// If the process does not exist (any more) or the file cannot be read.
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    if let Some(ns) = schedstat_ns(pid) {
        return Ok(Duration::from_nanos(ns));
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
        .ok_or_else(|| io::Error::other(format!("cannot read /proc/{pid}/stat")))
}

/// The run time of every living thread of a process, in nanoseconds; `None` when any of
/// it cannot be read.
fn schedstat_ns(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    let mut threads = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        match std::fs::read_to_string(&path) {
            Ok(line) => total += parse_schedstat(&line)?,
            // A thread that ended while the directory was read: NotFound, or ESRCH from
            // a thread caught ending. A kernel without schedstat fails every thread, and
            // the count below tells.
            Err(_) => continue,
        }
        threads += 1;
    }
    (threads > 0).then_some(total)
}

/// The first field of a `schedstat` line: time spent on a CPU, in nanoseconds.
fn parse_schedstat(line: &str) -> Option<u64> {
    line.split_whitespace().next()?.parse().ok()
}

/// `utime + stime` in clock ticks; fields 14 and 15, counted after the command name,
/// which may hold spaces and parentheses.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Whether the process has exited but not been reaped yet (state `Z`), or is gone.
#[must_use]
pub fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

/// Resident and peak resident memory of a process.
///
/// # Errors
///
/// If the process does not exist or the file cannot be read.
pub fn memory(pid: u32) -> io::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_memory(&status)
        .ok_or_else(|| io::Error::other(format!("no VmRSS/VmHWM in /proc/{pid}/status")))
}

fn parse_memory(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 when it cannot be asked).
fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_past_odd_command_names() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_the_run_time_of_schedstat() {
        assert_eq!(
            parse_schedstat("193796373 12263630 393\n"),
            Some(193_796_373)
        );
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn cpu_time_grows_with_work_in_nanoseconds() {
        let pid = std::process::id();
        let before = cpu_time(pid).unwrap();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        let spent = loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            // Threads of other tests that ended meanwhile take their time out of the
            // sum: the difference may even be negative for a while.
            let spent = cpu_time(pid).unwrap().saturating_sub(before);
            if spent >= Duration::from_millis(20) {
                break spent;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "30 s of spinning read as {spent:?} of CPU time"
            );
        };
        if schedstat_ns(pid).is_some() {
            // Nanoseconds, not whole clock ticks.
            assert!(!spent.subsec_nanos().is_multiple_of(1_000_000), "{spent:?}");
        }
    }

    #[test]
    fn reads_memory_lines() {
        let status = "Name:\tx\nVmHWM:\t   12000 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(
            parse_memory(status),
            Some(Memory {
                rss_kib: 9000,
                peak_kib: 12000
            })
        );
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(memory(pid).unwrap().rss_kib > 0);
        assert!(cpu_time(pid).is_ok());
        assert!(!is_gone(pid));
    }
}
