//! Process accounting from `/proc`: CPU time, resident memory, and the cores a process may use.

use std::path::PathBuf;

/// Kernel clock ticks per second for `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Which process to read: this one, or another by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    /// The generator itself.
    SelfProcess,
    /// Another process, e.g. the server under test.
    Other(u32),
}

impl Pid {
    fn dir(self) -> PathBuf {
        match self {
            Pid::SelfProcess => PathBuf::from("/proc/self"),
            Pid::Other(pid) => PathBuf::from(format!("/proc/{pid}")),
        }
    }
}

/// User plus system CPU seconds the process (all its threads) has used so far, or `None` where
/// `/proc` is unavailable.
pub fn cpu_seconds(pid: Pid) -> Option<f64> {
    let stat = std::fs::read_to_string(pid.dir().join("stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after it are space-separated.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, i.e. 11 and 12 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// Resident set size in bytes, or `None` where `/proc` is unavailable.
pub fn rss_bytes(pid: Pid) -> Option<u64> {
    let status = std::fs::read_to_string(pid.dir().join("status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Busy and total jiffies summed over all cores, from `/proc/stat`, or `None` where `/proc` is
/// unavailable. The difference of two readings gives the machine's CPU use in between.
pub fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...; idle and iowait are not busy.
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// CPU seconds per jiffy in `/proc/stat`.
pub fn seconds_per_jiffy() -> f64 {
    1.0 / TICKS_PER_SECOND
}

/// How many cores this process may run on (its affinity mask, so `taskset` is respected).
pub fn usable_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_and_memory() {
        let before = cpu_seconds(Pid::SelfProcess).expect("linux /proc");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = cpu_seconds(Pid::SelfProcess).expect("linux /proc");
        assert!(after >= before);
        assert!(rss_bytes(Pid::SelfProcess).expect("linux /proc") > 1024 * 1024);
        assert!(usable_cores() >= 1);
    }
}
