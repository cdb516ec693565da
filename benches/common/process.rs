//! This process's resident memory and CPU time, read from `/proc/self`.

/// Resident set size in bytes (`VmRSS` of `/proc/self/status`); 0 if unreadable.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Resident set size in MiB.
pub fn rss_mib() -> f64 {
    rss_bytes() as f64 / (1024.0 * 1024.0)
}

/// User plus system CPU seconds this process used (`/proc/self/stat` fields 14 and 15, in
/// `USER_HZ` = 100 ticks per second on Linux); 0 if unreadable.
pub fn cpu_seconds() -> f64 {
    const USER_HZ: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is parenthesised and may contain spaces.
    let Some(rest) = stat.rfind(')').map(|end| &stat[end + 1..]) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (ticks(11) + ticks(12)) as f64 / USER_HZ
}

/// Threads of this process (`Threads:` of `/proc/self/status`).
pub fn threads() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or(0)
}
