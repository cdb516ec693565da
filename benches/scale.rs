//! Scale benchmark (issue 5): one process holding 1,000 subscriptions (1,000 tracks, 10
//! objects/s each) and their publishers through the embedded relay. Reports resident memory
//! over time (it must stay flat), CPU seconds per second, delivery latency (p50/p99/max), and
//! the resident memory one idle client and one idle subscription cost.
//!
//! The C API and the raw moq-net baseline each run in a fresh child process (this executable,
//! re-run with `MOQ_SCALE_VARIANT`), so neither inherits the other's heap; the parent prints
//! both and their ratio. Relay, publishers and subscribers share the process, so every figure
//! includes the relay's side. `MOQ_BENCH_QUICK=1` shortens the run.

mod common;

use common::fleet;
use common::process;
use common::report::Report;
use std::collections::HashMap;

/// The environment variable that makes this executable a child running one variant.
const VARIANT: &str = "MOQ_SCALE_VARIANT";
/// Prefix of the result lines a child prints for its parent.
const RESULT: &str = "SCALE_RESULT";

/// Runs one variant in a child process and returns its results by name.
fn run_child(variant: &str) -> HashMap<String, f64> {
    let exe = std::env::current_exe().unwrap_or_else(|err| panic!("current_exe: {err}"));
    let output = std::process::Command::new(exe)
        .env(VARIANT, variant)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|err| panic!("running the {variant} child: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut results = HashMap::new();
    for line in stdout.lines() {
        match line.strip_prefix(RESULT) {
            Some(rest) => {
                let mut parts = rest.split_whitespace();
                if let (Some(key), Some(value)) = (parts.next(), parts.next().and_then(|v| v.parse().ok())) {
                    results.insert(key.to_string(), value);
                }
            }
            None => println!("[{variant}] {line}"),
        }
    }
    if !output.status.success() {
        println!("[{variant}] child exited with {}", output.status);
    }
    results
}

fn main() {
    if let Ok(variant) = std::env::var(VARIANT) {
        let results = fleet::run(&variant);
        for (key, value) in results {
            println!("{RESULT} {key} {value}");
        }
        return;
    }
    println!("{}", common::machine_line());
    let shape = fleet::Shape::from_env();
    println!("{}", shape.describe());
    let capi = run_child("capi");
    let raw = run_child("raw");
    let mut report = Report::new(&format!("scale: {}", shape.describe()));
    let rows = [
        (
            "idle_client_rss_kib",
            "KiB",
            "per connected idle client (client + relay side)",
        ),
        (
            "idle_subscription_rss_kib",
            "KiB",
            "per idle subscription (subscriber + relay side)",
        ),
        (
            "publisher_rss_kib",
            "KiB",
            "per idle publisher (track created, nothing sent)",
        ),
        ("load_rss_mib", "MiB", "whole process at the end of the load"),
        ("load_rss_growth_mib", "MiB", "end minus start of the steady window"),
        ("load_rss_growth_mib_per_min", "MiB/min", ""),
        ("load_cpu_s_per_s", "CPU s/s", "user+system, steady window"),
        ("load_latency_p50_us", "us", "steady window"),
        ("load_latency_p99_us", "us", ""),
        ("load_latency_max_us", "us", ""),
        (
            "load_delivered_fraction",
            "fraction",
            "delivered / published; < 1: the stack cannot keep up",
        ),
        ("load_corrupt", "objects", "failed sequence/checksum verification"),
        ("load_threads", "threads", "at the end of the load"),
    ];
    let prefix = shape.metric_prefix();
    for (name, unit, note) in rows {
        let key = format!("scale.{name}");
        let value = |results: &HashMap<String, f64>| results.get(&key).copied().unwrap_or(f64::NAN);
        report.pair(&format!("{prefix}.{name}"), unit, value(&capi), value(&raw), note);
    }
    report.print();
    println!(
        "RSS over time: the [capi]/[raw] lines above. Parent process RSS: {:.1} MiB",
        process::rss_mib()
    );
}
