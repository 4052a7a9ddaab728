//! The process's own resource use, read from Linux's /proc (the standard `process_*` metrics
//! and `/api/metrics`-style figures). On other systems every figure is `None` and simply not
//! reported: nothing is made up.

/// A snapshot of this process's resource use.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    pub resident_memory_bytes: Option<u64>,
    pub virtual_memory_bytes: Option<u64>,
    /// User plus system CPU time since the process started.
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub threads: Option<u64>,
    /// Unix time the process started.
    pub start_time_seconds: Option<f64>,
}

pub fn read() -> ProcessStats {
    let mut s = ProcessStats::default();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        s.resident_memory_bytes = kib_field(&status, "VmRSS:");
        s.virtual_memory_bytes = kib_field(&status, "VmSize:");
        s.threads = field(&status, "Threads:").and_then(|v| v.parse().ok());
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        let ticks = clock_ticks();
        if let Some(f) = stat_fields(&stat) {
            // Fields after the command name, numbered as in proc(5) minus 3: utime is
            // field 14, stime 15, starttime 22.
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            if let (Some(u), Some(sys), Some(t)) = (num(11), num(12), ticks) {
                s.cpu_seconds = Some((u + sys) / t);
            }
            if let (Some(start), Some(t), Some(boot)) = (num(19), ticks, boot_time()) {
                s.start_time_seconds = Some(boot + start / t);
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        // The directory handle itself is one of the entries; it is not the process's.
        s.open_fds = Some((dir.count() as u64).saturating_sub(1));
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        s.max_fds = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok());
    }
    s
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.split_whitespace().next().unwrap_or(""))
}

fn kib_field(text: &str, name: &str) -> Option<u64> {
    field(text, name)?.parse::<u64>().ok().map(|k| k * 1024)
}

/// The fields of /proc/self/stat after `(comm)`, which may itself hold spaces and parentheses.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let after = stat.rfind(')')?;
    Some(stat[after + 1..].split_whitespace().collect())
}

fn clock_ticks() -> Option<f64> {
    // SAFETY: sysconf only reads a constant of the C library; no memory is passed.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (t > 0).then_some(t as f64)
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let s = read();
        if !std::path::Path::new("/proc/self/stat").exists() {
            return; // not Linux: nothing is reported, which is the point
        }
        assert!(s.resident_memory_bytes.unwrap() > 1024 * 1024);
        assert!(s.cpu_seconds.unwrap() >= 0.0);
        // Other tests open and close files meanwhile, so only the lower bound is certain:
        // stdin, stdout, stderr.
        assert!(s.open_fds.unwrap() >= 3);
        assert!(s.max_fds.unwrap() >= 64);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = s.start_time_seconds.unwrap();
        assert!(start <= now + 1.0 && start > now - 86_400.0 * 365.0);
    }

    #[test]
    fn command_names_with_spaces_and_parens_do_not_shift_fields() {
        let f = stat_fields("42 (a b) c) S 1 2 3").unwrap();
        assert_eq!(f, vec!["S", "1", "2", "3"]);
    }
}
