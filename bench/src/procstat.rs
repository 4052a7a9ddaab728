//! CPU time and memory of a set of processes (and their descendants) from /proc: utime+stime
//! ticks, RSS from `status`, PSS from `smaps_rollup`.

// Shared by every section; not every section uses every helper.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// One reading of a set of processes.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    /// utime + stime of every process in the set, in clock ticks.
    pub ticks: u64,
    /// Sum of VmRSS, KiB.
    pub rss_kib: u64,
    /// Sum of Pss from smaps_rollup, KiB (0 where it cannot be read).
    pub pss_kib: u64,
    /// How many processes were read.
    pub processes: usize,
}

impl Sample {
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
    pub fn pss_mib(&self) -> f64 {
        self.pss_kib as f64 / 1024.0
    }
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn clk_tck() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// The fields of /proc/PID/stat after the command name: (ppid, utime + stime).
fn read_stat(pid: u32) -> Option<(u32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// A `Key:   123 kB` line's number from a /proc file.
fn read_kib(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `roots` and every process descending from them, read from /proc now.
pub fn with_descendants(roots: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some((ppid, _)) = read_stat(pid) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut stack: Vec<u32> = roots.to_vec();
    while let Some(pid) = stack.pop() {
        if seen.insert(pid)
            && let Some(c) = children.get(&pid)
        {
            stack.extend(c);
        }
    }
    seen.into_iter().collect()
}

/// Reads CPU ticks, RSS and PSS of `roots` and their descendants. Processes that have
/// exited are skipped.
pub fn sample(roots: &[u32]) -> Sample {
    let pids = with_descendants(roots);
    let at = Instant::now();
    let mut s = Sample {
        at,
        ticks: 0,
        rss_kib: 0,
        pss_kib: 0,
        processes: 0,
    };
    for pid in pids {
        let Some((_, ticks)) = read_stat(pid) else {
            continue;
        };
        s.ticks += ticks;
        s.processes += 1;
        s.rss_kib += read_kib(&format!("/proc/{pid}/status"), "VmRSS:").unwrap_or(0);
        s.pss_kib += read_kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:").unwrap_or(0);
    }
    s
}

/// CPU used between two samples of the same set, in percent of one core (100 = one core).
pub fn cpu_percent(before: &Sample, after: &Sample) -> f64 {
    let secs = after.at.duration_since(before.at).as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    let ticks = after.ticks.saturating_sub(before.ticks) as f64;
    ticks / clk_tck() as f64 / secs * 100.0
}

/// `MemAvailable` from /proc/meminfo, in MiB.
pub fn mem_available_mib() -> u64 {
    read_kib("/proc/meminfo", "MemAvailable:").unwrap_or(0) / 1024
}

/// `MemTotal` from /proc/meminfo, in MiB.
pub fn mem_total_mib() -> u64 {
    read_kib("/proc/meminfo", "MemTotal:").unwrap_or(0) / 1024
}

/// This process's CPU time (user + system), seconds: the load generator's cost.
pub fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct passed by pointer.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let s = sample(&[me]);
        assert!(s.processes >= 1);
        assert!(s.rss_kib > 0);
    }

    #[test]
    fn finds_a_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let pids = with_descendants(&[std::process::id()]);
        let found = pids.contains(&child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(found, "{pids:?} lacks {}", child.id());
    }

    #[test]
    fn cpu_percent_of_a_busy_loop_is_positive() {
        let me = std::process::id();
        let before = sample(&[me]);
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 300 {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = sample(&[me]);
        assert!(cpu_percent(&before, &after) > 0.0);
    }
}
