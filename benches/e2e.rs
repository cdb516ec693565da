//! End-to-end benchmark (issue 5): publisher → embedded relay → subscriber on loopback, once
//! through the C API (the exported `moq_*` functions, C-ABI callbacks) and once through raw
//! moq-net/moq-tokio doing the same work through the same kind of relay. The two run in the
//! same process, interleaved run by run (C API, raw, C API, raw, ...), so their ratio is
//! immune to machine noise. Each run starts its stack afresh and stops it afterwards.
//!
//! Cases: stream throughput with 1 KiB, 64 KiB and 1 MiB objects (every object verified:
//! sequence number and checksum), the same sizes as bursts published all at once (the
//! subscriber falls behind; timed from the first publish to the last arrival), 1 KiB datagrams
//! (delivered fraction and rate), and one-way latency of 1 KiB objects at 1 kHz (p50, p99,
//! p99.9, max). Run with
//! `cargo bench --bench e2e`; `MOQ_BENCH_QUICK=1` shortens every case (about a minute).

mod common;

use common::capi::CapiStack;
use common::clock;
use common::payload::Template;
use common::raw::RawStack;
use common::receiver::{Receiver, Summary};
use common::report::{number, Report};
use common::stack::{warm_up, Mode, Stack};
use common::stats::{median, Latency};
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;
/// Bytes a throughput publisher keeps in flight (published, not yet delivered), at most
/// [`IN_FLIGHT_OBJECTS`] objects and at least 4 (`MOQ_BENCH_WINDOW` sets the object count).
/// moq-net's per-event cost grows with the groups in flight (1 KiB objects on this machine:
/// ~15k objects/s with 64 in flight, ~5.5k/s with 1024, raw and C API alike), so a sender that
/// keeps a modest window is both realistic and fastest.
const IN_FLIGHT_BYTES: usize = 8 << 20;
const IN_FLIGHT_OBJECTS: usize = 64;
/// A run ends when nothing arrived for this long (lost objects cannot hang it).
const STALL: Duration = Duration::from_secs(5);

/// One stream-throughput case.
struct StreamCase {
    name: &'static str,
    size: usize,
    count: u64,
    /// Published all at once rather than within a window (see [`stream_run`]).
    burst: bool,
}

/// A burst run ends when nothing arrived for this long: a subscriber far behind a burst waits
/// while the relay works through its queue.
const BURST_STALL: Duration = Duration::from_secs(15);

/// What one measured run produced.
struct Run {
    summary: Summary,
    /// From the first measured publish to the last measured arrival.
    seconds: f64,
}

impl Run {
    fn delivered_fraction(&self) -> f64 {
        self.summary.delivered as f64 / self.summary.expected.max(1) as f64
    }

    fn objects_per_second(&self) -> f64 {
        self.summary.delivered as f64 / self.seconds.max(1e-9)
    }

    fn mib_per_second(&self) -> f64 {
        self.summary.bytes as f64 / MIB / self.seconds.max(1e-9)
    }
}

/// Waits until `receiver` has `count` objects, or nothing arrived for [`STALL`].
fn wait_for_all(receiver: &Receiver, count: u64, stall: Duration) {
    let (mut seen, mut since) = (receiver.delivered(), Instant::now());
    while receiver.delivered() < count && since.elapsed() < stall {
        std::thread::sleep(Duration::from_micros(200));
        let now = receiver.delivered();
        if now != seen {
            (seen, since) = (now, Instant::now());
        }
    }
}

fn finish(receiver: &Receiver, start_ns: u64) -> Run {
    let summary = receiver.summary();
    let seconds = summary.last_ns.saturating_sub(start_ns) as f64 / 1e9;
    Run { summary, seconds }
}

/// Publishes `count` objects of `size` as fast as the in-flight window allows. The window
/// counts from the first object not yet received (the contiguous prefix), so the sender
/// behaves the same whether the subscriber gets objects in order (C API) or as they come
/// (raw reader). A `burst` has no window: every object at once, as fast as the publisher
/// accepts them, so the subscriber falls behind and catches up from what the relay and its own
/// cache hold (issue 14's bursts).
fn stream_run(stack: &dyn Stack, track: &str, size: usize, count: u64, burst: bool) -> Result<Run, String> {
    let receiver = Receiver::new(count);
    let mut link = stack.open(track, Mode::Stream, &receiver)?;
    let mut template = Template::new(size);
    warm_up(link.as_mut(), &receiver, &mut template)?;
    let window = match burst {
        true => u64::MAX,
        false => std::env::var("MOQ_BENCH_WINDOW")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or((IN_FLIGHT_BYTES / size).clamp(4, IN_FLIGHT_OBJECTS) as u64),
    };
    let start = clock::now_ns();
    for seq in 0..count {
        while seq >= receiver.contiguous().saturating_add(window) {
            std::thread::sleep(Duration::from_micros(50));
        }
        link.publish(template.stamp(seq))?;
    }
    wait_for_all(&receiver, count, if burst { BURST_STALL } else { STALL });
    Ok(finish(&receiver, start))
}

/// Publishes `count` datagrams of `size`, `per_ms` every millisecond.
fn datagram_run(stack: &dyn Stack, track: &str, size: usize, count: u64, per_ms: u64) -> Result<Run, String> {
    let receiver = Receiver::new(count);
    let mut link = stack.open(track, Mode::Datagram, &receiver)?;
    let mut template = Template::new(size);
    warm_up(link.as_mut(), &receiver, &mut template)?;
    let started = Instant::now();
    let start = clock::now_ns();
    for seq in 0..count {
        if seq % per_ms == 0 {
            sleep_until(started + Duration::from_millis(seq / per_ms));
        }
        link.publish(template.stamp(seq))?;
    }
    wait_for_all(&receiver, count, Duration::from_millis(500));
    Ok(finish(&receiver, start))
}

/// Publishes `count` objects of `size` at `hz`, each stamped with its send time.
fn paced_run(stack: &dyn Stack, track: &str, size: usize, count: u64, hz: u64) -> Result<Run, String> {
    let receiver = Receiver::new(count);
    let mut link = stack.open(track, Mode::Stream, &receiver)?;
    let mut template = Template::new(size);
    warm_up(link.as_mut(), &receiver, &mut template)?;
    let started = Instant::now();
    let start = clock::now_ns();
    for seq in 0..count {
        sleep_until(started + Duration::from_nanos(seq * 1_000_000_000 / hz));
        link.publish(template.stamp(seq))?;
    }
    wait_for_all(&receiver, count, STALL);
    Ok(finish(&receiver, start))
}

fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

/// One of the stacks a case compares. Every run starts its stack afresh (relay and clients,
/// in this process) and stops it afterwards, so no run inherits the caches, retained groups or
/// memory of an earlier one: without that the process held ~15 GiB by the end of the 1 MiB
/// case (every publisher keeps 30 s of groups) and later runs measured the allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Capi,
    Raw,
    /// Raw plus a thread hop to one callback thread (std `mpsc`): separates what the C API's
    /// callback thread costs from the rest of the library.
    RawHop,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Capi => "capi",
            Kind::Raw => "raw",
            Kind::RawHop => "rawhop",
        }
    }

    fn start(self) -> Result<Box<dyn Stack>, String> {
        let namespace = format!("bench/{}", self.label());
        Ok(match self {
            Kind::Capi => Box::new(CapiStack::start(&namespace)?),
            Kind::Raw => Box::new(RawStack::start(&namespace)?),
            Kind::RawHop => Box::new(RawStack::start_with_hop(&namespace)?),
        })
    }
}

fn labels(kinds: &[Kind]) -> Vec<&'static str> {
    kinds.iter().map(|kind| kind.label()).collect()
}

/// Runs `run` on a fresh stack of each kind `reps` times, interleaved (A, B, A, B, ...), and
/// returns the runs per kind in the order of `kinds`.
fn interleaved(
    kinds: &[Kind],
    case: &str,
    reps: usize,
    mut run: impl FnMut(&dyn Stack, &str) -> Result<Run, String>,
) -> Vec<Vec<Run>> {
    let mut runs: Vec<Vec<Run>> = kinds.iter().map(|_| Vec::new()).collect();
    for rep in 0..reps {
        for (index, kind) in kinds.iter().enumerate() {
            let track = format!("{case}-{rep}");
            match kind.start().and_then(|stack| run(stack.as_ref(), &track)) {
                Ok(result) => {
                    log_run(kind.label(), case, rep, &result);
                    runs[index].push(result);
                }
                Err(err) => println!("  {case} #{rep} {:<4} FAILED: {err}", kind.label()),
            }
        }
    }
    runs
}

fn log_run(label: &str, case: &str, rep: usize, run: &Run) {
    let s = &run.summary;
    let latency = Latency::of(&s.latencies_ns);
    println!(
        "  {case} #{rep} {label:<4} {:>7}/{:<7} delivered{} {:>9} MiB/s {:>9} obj/s  p50 {:>7} us  p99 {:>7} us{}",
        s.delivered,
        s.expected,
        if s.complete() { " ok" } else { " INCOMPLETE" },
        number(run.mib_per_second()),
        number(run.objects_per_second()),
        number(latency.p50_us),
        number(latency.p99_us),
        match s.duplicates + s.corrupt + s.out_of_range {
            0 => String::new(),
            bad => format!("  ({bad} duplicate/corrupt)"),
        }
    );
}

fn medians(runs: &[Run], metric: impl Fn(&Run) -> f64) -> f64 {
    median(&runs.iter().map(metric).collect::<Vec<_>>())
}

fn complete_note(labels: &[&str], runs: &[Vec<Run>]) -> String {
    let counts: Vec<String> = labels
        .iter()
        .zip(runs)
        .map(|(label, runs)| {
            let complete = runs.iter().filter(|run| run.summary.complete()).count();
            format!("{label} {complete}/{}", runs.len())
        })
        .collect();
    format!("median of runs; complete+verified runs: {}", counts.join(", "))
}

/// Adds `metric` for the C API (stack 0) against raw (stack 1), and against every further
/// stack as `<metric>_vs_<label>`.
fn add(report: &mut Report, labels: &[&str], metric: &str, unit: &str, values: &[f64], note: &str) {
    for (index, label) in labels.iter().enumerate().skip(1) {
        let name = match index {
            1 => metric.to_string(),
            _ => format!("{metric}_vs_{label}"),
        };
        report.pair(&name, unit, values[0], values[index], note);
    }
}

fn per_stack(runs: &[Vec<Run>], metric: impl Fn(&Run) -> f64) -> Vec<f64> {
    runs.iter().map(|runs| medians(runs, &metric)).collect()
}

fn stream_cases(report: &mut Report, kinds: &[Kind], reps: usize) {
    let labels = labels(kinds);
    let scale = common::pick(1, 4);
    let cases = [
        StreamCase {
            name: "stream_1k",
            size: 1024,
            count: 20_000 / scale,
            burst: false,
        },
        StreamCase {
            name: "stream_64k",
            size: 64 << 10,
            count: 3_000 / scale,
            burst: false,
        },
        StreamCase {
            name: "stream_1m",
            size: 1 << 20,
            count: 300 / scale,
            burst: false,
        },
        // Bursts within the clients' default 128 MiB publish buffer.
        StreamCase {
            name: "burst_1k",
            size: 1024,
            count: 50_000 / scale,
            burst: true,
        },
        StreamCase {
            name: "burst_64k",
            size: 64 << 10,
            count: 1_500 / scale,
            burst: true,
        },
        StreamCase {
            name: "burst_1m",
            size: 1 << 20,
            count: 100 / scale,
            burst: true,
        },
    ];
    for case in cases {
        println!(
            "{} ({} objects of {} B, one per group{}):",
            case.name,
            case.count,
            case.size,
            if case.burst { ", all at once" } else { "" }
        );
        let runs = interleaved(kinds, case.name, reps, |stack, track| {
            stream_run(stack, track, case.size, case.count, case.burst)
        });
        let metric = |what: &str| format!("e2e.{}.{what}", case.name);
        let note = complete_note(&labels, &runs);
        // A throughput over a run that lost, duplicated or corrupted anything is not a figure.
        for (label, runs) in labels.iter().zip(&runs) {
            let incomplete = runs.iter().filter(|run| !run.summary.complete()).count();
            if incomplete > 0 || runs.is_empty() {
                println!(
                    "BENCH_FAILED {}: {label}: {incomplete} of {} runs did not deliver every object once, in order, intact",
                    case.name,
                    runs.len()
                );
                FAILED.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        add(
            report,
            &labels,
            &metric("mib_per_s"),
            "MiB/s",
            &per_stack(&runs, Run::mib_per_second),
            &note,
        );
        add(
            report,
            &labels,
            &metric("objects_per_s"),
            "obj/s",
            &per_stack(&runs, Run::objects_per_second),
            "",
        );
        if case.burst {
            let seconds = per_stack(&runs, |run| run.seconds);
            add(
                report,
                &labels,
                &metric("seconds"),
                "s",
                &seconds,
                "first publish to last arrival",
            );
        }
        let delivered = per_stack(&runs, Run::delivered_fraction);
        add(
            report,
            &labels,
            &metric("delivered_fraction"),
            "fraction",
            &delivered,
            "",
        );
    }
}

fn datagram_case(report: &mut Report, kinds: &[Kind], reps: usize) {
    let labels = labels(kinds);
    let (count, per_ms) = (common::pick(20_000, 5_000), 20);
    println!("datagram_1k ({count} datagrams of 1024 B, offered at {per_ms}/ms):");
    let runs = interleaved(kinds, "datagram_1k", reps, |stack, track| {
        datagram_run(stack, track, 1024, count, per_ms)
    });
    let delivered = per_stack(&runs, Run::delivered_fraction);
    let note = "median of runs (lossy by design)";
    add(
        report,
        &labels,
        "e2e.datagram_1k.delivered_fraction",
        "fraction",
        &delivered,
        note,
    );
    let rate = per_stack(&runs, Run::objects_per_second);
    let note = format!("offered {} obj/s", per_ms * 1000);
    add(report, &labels, "e2e.datagram_1k.objects_per_s", "obj/s", &rate, &note);
}

fn latency_case(report: &mut Report, kinds: &[Kind], reps: usize) {
    let labels = labels(kinds);
    let seconds = common::pick(10, 3);
    let count = seconds * 1000;
    println!("latency_1k_1khz ({count} objects of 1024 B at 1 kHz = {seconds} s per run):");
    let runs = interleaved(kinds, "latency_1k", reps, |stack, track| {
        paced_run(stack, track, 1024, count, 1000)
    });
    let latency = |run: &Run| Latency::of(&run.summary.latencies_ns);
    let note = format!(
        "median over runs of each run's percentile; {}",
        complete_note(&labels, &runs)
    );
    let p50 = per_stack(&runs, |run| latency(run).p50_us);
    add(report, &labels, "e2e.latency_1k_1khz.p50_us", "us", &p50, &note);
    let p99 = per_stack(&runs, |run| latency(run).p99_us);
    add(report, &labels, "e2e.latency_1k_1khz.p99_us", "us", &p99, "");
    let p999 = per_stack(&runs, |run| latency(run).p999_us);
    add(report, &labels, "e2e.latency_1k_1khz.p999_us", "us", &p999, "");
    let worst: Vec<f64> = runs
        .iter()
        .map(|runs| runs.iter().map(|run| latency(run).max_us).fold(0.0, f64::max))
        .collect();
    add(
        report,
        &labels,
        "e2e.latency_1k_1khz.max_us",
        "us",
        &worst,
        "max over all runs",
    );
}

/// `MOQ_BENCH_PROFILE=<capi|raw|rawhop>,<size>,<count>`: one stream run through one stack and
/// nothing else, to profile that path alone (`valgrind --tool=callgrind`, `perf record`).
fn profile(spec: &str) {
    let mut parts = spec.split(',');
    let stack = parts.next().unwrap_or("capi");
    let size = parts.next().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let count = parts.next().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let kind = match stack {
        "raw" => Kind::Raw,
        "rawhop" => Kind::RawHop,
        _ => Kind::Capi,
    };
    let stack = kind
        .start()
        .unwrap_or_else(|err| panic!("{} stack: {err}", kind.label()));
    match stream_run(stack.as_ref(), "profile", size, count, false) {
        Ok(run) => log_run(stack.label(), "profile", 0, &run),
        Err(err) => println!("profile run failed: {err}"),
    }
}

/// Set when a stream case had a run that did not deliver every object: the bench then exits
/// non-zero after its report.
static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn main() {
    if let Ok(spec) = std::env::var("MOQ_BENCH_PROFILE") {
        return profile(&spec);
    }
    println!("{}", common::machine_line());
    let started = Instant::now();
    let mut kinds = vec![Kind::Capi, Kind::Raw];
    // `rawhop` runs in the latency case (`<metric>_vs_rawhop`), and in every case with
    // `MOQ_BENCH_HOP=1`.
    if std::env::var("MOQ_BENCH_HOP").is_ok_and(|value| value == "1") {
        kinds.push(Kind::RawHop);
    }
    let with_hop = [Kind::Capi, Kind::Raw, Kind::RawHop];
    for kind in with_hop {
        let protocol = kind
            .start()
            .map_or_else(|err| format!("FAILED: {err}"), |stack| stack.protocol());
        println!("{} protocol (publisher / subscriber): {protocol}", kind.label());
    }
    let reps = common::pick(7, 2);
    let mut report = Report::new("e2e: publisher -> embedded relay -> subscriber (loopback)");
    stream_cases(&mut report, &kinds, reps);
    datagram_case(&mut report, &kinds, reps);
    latency_case(&mut report, &with_hop, common::pick(5, 1));
    report.value(
        "e2e.run_seconds",
        "s",
        started.elapsed().as_secs_f64().round(),
        "wall time of this benchmark",
    );
    report.print();
    if FAILED.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("e2e: FAILED: a stream case lost, duplicated or corrupted objects (BENCH_FAILED lines above)");
        std::process::exit(1);
    }
}
