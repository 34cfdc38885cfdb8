//! What Linux's `/proc` says of a process: its resident memory and CPU
//! time. For the load generator and the tests that watch a server from
//! outside.

/// RSS of a process, in KiB.
pub fn process_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (user + system) of a process, in clock ticks (1/100 s).
pub fn process_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// RSS of the processes, in KiB; `None` if there are none.
pub fn rss_kib(pids: &[u32]) -> Option<u64> {
    let _ = pids.first()?;
    pids.iter().map(|&pid| process_rss_kib(pid)).sum()
}

/// CPU time (user + system) of the processes, in clock ticks; `None` if
/// there are none.
pub fn cpu_ticks(pids: &[u32]) -> Option<u64> {
    let _ = pids.first()?;
    pids.iter().map(|&pid| process_cpu_ticks(pid)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_cpu_time_and_no_process_has_none() {
        let me = std::process::id();
        assert!(process_rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(process_cpu_ticks(me).is_some());
        assert_eq!(rss_kib(&[]), None);
        assert_eq!(cpu_ticks(&[]), None);
        assert_eq!(process_rss_kib(u32::MAX), None);
    }
}
