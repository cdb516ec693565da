//! Shared pieces of the benchmarks (`e2e`, `calls`, `scale`): payloads that verify themselves,
//! the receive-side bookkeeping, the C-API and raw moq-net stacks, process metrics and the
//! report format (a human table, then `BENCH ...` lines).
//!
//! Each benchmark uses a subset of these helpers, so unused ones are not an error here.
#![allow(dead_code)]

pub mod capi;
pub mod clock;
pub mod fleet;
pub mod payload;
pub mod plain;
pub mod process;
pub mod raw;
pub mod receiver;
pub mod report;
pub mod stack;
pub mod stats;

/// Whether `MOQ_BENCH_QUICK=1` asks for the short run (about a minute) instead of the full one.
pub fn quick() -> bool {
    std::env::var("MOQ_BENCH_QUICK").is_ok_and(|value| !value.is_empty() && value != "0")
}

/// `full` in a full run, `quick` with `MOQ_BENCH_QUICK=1`.
pub fn pick<T>(full: T, quick_value: T) -> T {
    match quick() {
        true => quick_value,
        false => full,
    }
}

/// The machine line printed above every report: cores, kernel, date.
pub fn machine_line() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split(':').nth(1))
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".to_string());
    let date = std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%dT%H:%M:%SZ")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .unwrap_or_default();
    format!(
        "machine: {cores} cores ({model}), Linux {}, {}, mode {}",
        kernel.trim(),
        date.trim(),
        if quick() { "quick" } else { "full" }
    )
}
