//! Call-cost micro-benchmarks (issue 5), with criterion: what the C boundary, the handle
//! registry and the callback dispatcher add to one call, next to doing the same thing directly.
//!
//! - `publish/*`: `moq_publish_data` (64 B, 1 KiB, stream mode) on a connected client against
//!   the direct moq-net write (`track::Producer::write_frame` of a `Bytes` copy, stamped with
//!   the same wall-clock timestamp) on a connected raw moq-tokio client.
//! - `lookup/*`: `moq_is_connected` (boundary + registry lookup + client state) against a plain
//!   `RwLock<HashMap>` lookup and a state check; `moq_ffi::handle::Registry::get` against the
//!   bare `RwLock<HashMap>` lookup.
//! - `dispatch/*`: posting a job to the callback dispatcher (`moq_ffi::dispatch::post`) and
//!   waiting for it, one at a time and 1000 in a row, against a std `mpsc` channel to a thread.
//!
//! Then, outside criterion: allocations per call (a counting allocator, calling thread only),
//! and the publish cost in an interleaved loop of our own, with one thread and with two
//! threads publishing on one client at once (lock contention).
//! Criterion's results are printed as it runs; the table and `BENCH` lines after them are read
//! back from criterion's own `estimates.json` (its headline "time" estimate).

mod common;

use common::capi;
use common::plain;
use common::raw::{timestamp_now, RawStack};
use common::report::Report;
use common::stack::Mode;
use criterion::Criterion;
use moq_ffi::ffi::moq_is_connected;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting allocations per thread.
struct Counting;

// SAFETY: forwards every request to `System` unchanged; the count is a thread-local `Cell`
// with a const initialiser and no destructor, so it never allocates or re-enters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations the calling thread made so far.
fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Unique track names, so every timed batch starts from an empty track.
fn fresh_track(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// What the publish benchmarks publish through.
struct Clients {
    capi: capi::Client,
    raw: RawStack,
    _relay: capi::Relay,
}

const NAMESPACE: &str = "bench/calls";

/// Times `iters` `moq_publish_data` calls of `size` bytes on a fresh publisher.
#[inline(never)]
fn capi_publish(client: &capi::Client, size: usize, iters: u64) -> Duration {
    let publisher = capi::Publisher::create(client, NAMESPACE, &fresh_track("capi"), Mode::Stream)
        .unwrap_or_else(|err| panic!("publisher: {err}"));
    let payload = vec![7u8; size];
    let start = Instant::now();
    for _ in 0..iters {
        let _ = black_box(publisher.publish(black_box(&payload)));
    }
    start.elapsed()
}

/// Times `iters` direct moq-net writes of `size` bytes on a fresh track.
#[inline(never)]
fn raw_publish(stack: &RawStack, size: usize, iters: u64) -> Duration {
    let mut track = stack
        .track(&fresh_track("raw"))
        .unwrap_or_else(|err| panic!("track: {err}"));
    let payload = vec![7u8; size];
    let start = Instant::now();
    for _ in 0..iters {
        let data = bytes::Bytes::copy_from_slice(black_box(&payload));
        let _ = black_box(track.write_frame(timestamp_now(), data));
    }
    start.elapsed()
}

fn bench_publish(criterion: &mut Criterion, clients: &Clients) {
    let mut group = criterion.benchmark_group("publish");
    for size in [64usize, 1024] {
        group.bench_function(format!("capi_{size}"), |b| {
            b.iter_custom(|iters| capi_publish(&clients.capi, size, iters))
        });
        group.bench_function(format!("raw_{size}"), |b| {
            b.iter_custom(|iters| raw_publish(&clients.raw, size, iters))
        });
    }
    group.finish();
}

fn bench_lookup(criterion: &mut Criterion, clients: &Clients) {
    let plain = plain::Registry::with_clients(16);
    let handle = plain.some_handle();
    let registry = plain::moq_registry(16);
    let mut group = criterion.benchmark_group("lookup");
    group.bench_function("capi_is_connected", |b| {
        b.iter(|| moq_is_connected(black_box(clients.capi.handle)))
    });
    group.bench_function("raw_is_connected", |b| b.iter(|| plain.is_connected(black_box(handle))));
    group.bench_function("capi_registry_get", |b| {
        b.iter(|| registry.0.get(black_box(registry.1)).is_ok())
    });
    group.bench_function("raw_registry_get", |b| {
        b.iter(|| plain.get(black_box(handle)).is_some())
    });
    group.finish();
}

fn bench_dispatch(criterion: &mut Criterion) {
    let plain = plain::Dispatcher::start();
    let gate = moq_ffi::dispatch::Gate::new();
    let mut group = criterion.benchmark_group("dispatch");
    group.bench_function("capi_roundtrip", |b| {
        b.iter(|| plain::round_trip(|job| moq_ffi::dispatch::post(&gate, job).is_ok(), 1))
    });
    group.bench_function("raw_roundtrip", |b| {
        b.iter(|| plain::round_trip(|job| plain.post(job), 1))
    });
    group.bench_function("capi_batch1000", |b| {
        b.iter(|| plain::round_trip(|job| moq_ffi::dispatch::post(&gate, job).is_ok(), 1000))
    });
    group.bench_function("raw_batch1000", |b| {
        b.iter(|| plain::round_trip(|job| plain.post(job), 1000))
    });
    group.finish();
    moq_ffi::dispatch::close(&gate);
}

/// Allocations per call on the calling thread, over `calls` calls.
fn allocations_per_call(calls: u64, mut call: impl FnMut()) -> f64 {
    let before = allocations();
    for _ in 0..calls {
        call();
    }
    (allocations() - before) as f64 / calls as f64
}

fn allocation_rows(report: &mut Report, clients: &Clients) {
    let calls = 10_000;
    for size in [64usize, 1024] {
        let payload = vec![7u8; size];
        let publisher = capi::Publisher::create(&clients.capi, NAMESPACE, &fresh_track("alloc"), Mode::Stream)
            .unwrap_or_else(|err| panic!("publisher: {err}"));
        let capi = allocations_per_call(calls, || {
            let _ = black_box(publisher.publish(&payload));
        });
        let mut track = clients
            .raw
            .track(&fresh_track("alloc"))
            .unwrap_or_else(|err| panic!("{err}"));
        let raw = allocations_per_call(calls, || {
            let data = bytes::Bytes::copy_from_slice(&payload);
            let _ = black_box(track.write_frame(timestamp_now(), data));
        });
        report.pair(
            &format!("calls.publish_data_{}.allocs_per_call", size_name(size)),
            "allocs",
            capi,
            raw,
            "calling thread; raw = Bytes copy + moq-net's own group allocations",
        );
    }
    let plain = plain::Registry::with_clients(16);
    let handle = plain.some_handle();
    let capi = allocations_per_call(calls, || {
        black_box(moq_is_connected(clients.capi.handle));
    });
    let raw = allocations_per_call(calls, || {
        black_box(plain.is_connected(handle));
    });
    report.pair("calls.is_connected.allocs_per_call", "allocs", capi, raw, "");
}

fn size_name(size: usize) -> String {
    match size {
        1024 => "1k".to_string(),
        size => format!("{size}b"),
    }
}

/// Nanoseconds per call with `threads` threads each publishing `calls` objects of `size` bytes
/// on its own fresh publisher at once, through the C API or directly.
fn publish_ns(clients: &Clients, threads: usize, size: usize, calls: u64, through_capi: bool) -> f64 {
    let barrier = std::sync::Barrier::new(threads);
    let elapsed: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || match through_capi {
                    true => {
                        let publisher =
                            capi::Publisher::create(&clients.capi, NAMESPACE, &fresh_track("mt"), Mode::Stream)
                                .unwrap_or_else(|err| panic!("publisher: {err}"));
                        let payload = vec![7u8; size];
                        barrier.wait();
                        let start = Instant::now();
                        for _ in 0..calls {
                            let _ = black_box(publisher.publish(&payload));
                        }
                        start.elapsed()
                    }
                    false => {
                        let mut track = clients
                            .raw
                            .track(&fresh_track("mt"))
                            .unwrap_or_else(|err| panic!("{err}"));
                        let payload = vec![7u8; size];
                        barrier.wait();
                        let start = Instant::now();
                        for _ in 0..calls {
                            let data = bytes::Bytes::copy_from_slice(&payload);
                            let _ = black_box(track.write_frame(timestamp_now(), data));
                        }
                        start.elapsed()
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or_default()).collect()
    });
    let slowest = elapsed.iter().max().copied().unwrap_or_default();
    slowest.as_nanos() as f64 / calls as f64
}

/// The publish cost in a loop of our own, C API and direct alternating round by round (so a
/// busy machine slows both alike): one thread, and two threads on one client at once (what
/// a lock shared on the publish path would show).
fn interleaved_rows(report: &mut Report, clients: &Clients) {
    let (rounds, calls) = common::pick((15, 20_000), (5, 10_000));
    for (threads, size) in [(1usize, 64usize), (1, 1024), (2, 64)] {
        let (mut capi, mut raw) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let capi_first = round % 2 == 0;
            for through_capi in [capi_first, !capi_first] {
                let ns = publish_ns(clients, threads, size, calls, through_capi);
                match through_capi {
                    true => capi.push(ns),
                    false => raw.push(ns),
                }
            }
        }
        report.pair(
            &format!("calls.publish_data_{}.{threads}thread_interleaved_ns", size_name(size)),
            "ns/call",
            common::stats::median(&capi),
            common::stats::median(&raw),
            &format!("own loop, {threads} thread(s) on one client, median of {rounds} alternating rounds"),
        );
    }
}

/// Criterion's output directory: `target/criterion` next to this executable's profile folder.
fn criterion_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .nth(3)
        .map_or_else(|| PathBuf::from("target/criterion"), |target| target.join("criterion"))
}

/// Criterion's headline time estimate (ns) for `group/id`, if it was measured in this run.
fn estimate_ns(dir: &Path, group: &str, id: &str, since: SystemTime) -> f64 {
    let path = dir.join(group).join(id).join("new").join("estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|meta| meta.modified())
        .is_ok_and(|modified| modified >= since);
    let json: serde_json::Value = match fresh {
        true => std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default(),
        false => serde_json::Value::Null,
    };
    let typical = match json["slope"].is_null() {
        true => &json["mean"],
        false => &json["slope"],
    };
    typical["point_estimate"].as_f64().unwrap_or(f64::NAN)
}

fn criterion_rows(report: &mut Report, dir: &Path, since: SystemTime) {
    let pairs = [
        (
            "calls.publish_data_64b_ns",
            "publish",
            "capi_64",
            "raw_64",
            "moq_publish_data vs write_frame+Bytes copy",
        ),
        ("calls.publish_data_1k_ns", "publish", "capi_1024", "raw_1024", ""),
        (
            "calls.is_connected_ns",
            "lookup",
            "capi_is_connected",
            "raw_is_connected",
            "export vs RwLock<HashMap> + state",
        ),
        (
            "calls.registry_get_ns",
            "lookup",
            "capi_registry_get",
            "raw_registry_get",
            "handle::Registry::get vs RwLock<HashMap>",
        ),
        (
            "calls.dispatch_roundtrip_ns",
            "dispatch",
            "capi_roundtrip",
            "raw_roundtrip",
            "post one job, wait for it",
        ),
        (
            "calls.dispatch_per_job_ns",
            "dispatch",
            "capi_batch1000",
            "raw_batch1000",
            "1000 jobs in a row, per job",
        ),
    ];
    for (metric, group, capi, raw, note) in pairs {
        let per_job = if group == "dispatch" && capi.contains("batch") {
            1000.0
        } else {
            1.0
        };
        report.pair(
            metric,
            "ns",
            estimate_ns(dir, group, capi, since) / per_job,
            estimate_ns(dir, group, raw, since) / per_job,
            note,
        );
    }
}

/// `MOQ_BENCH_PROFILE=<calls>`: only `calls` publishes of 64 B through the C API
/// ([`capi_publish`]) and then directly ([`raw_publish`]), and `calls` dispatcher jobs
/// ([`capi_dispatch`], [`raw_dispatch`]), for `valgrind --tool=callgrind`: each function's
/// inclusive instruction count divided by `calls` is the cost of one call.
fn profile(clients: &Clients, calls: u64) {
    capi_publish(&clients.capi, 64, calls);
    raw_publish(&clients.raw, 64, calls);
    capi_dispatch(calls);
    raw_dispatch(calls);
    println!("profiled {calls} calls of each");
}

/// Posts `jobs` jobs to moq-ffi's dispatcher, 1000 at a time.
#[inline(never)]
fn capi_dispatch(jobs: u64) {
    let gate = moq_ffi::dispatch::Gate::new();
    for _ in 0..jobs / 1000 {
        plain::round_trip(|job| moq_ffi::dispatch::post(&gate, job).is_ok(), 1000);
    }
    moq_ffi::dispatch::close(&gate);
}

/// Posts `jobs` jobs to a plain `mpsc` dispatcher thread, 1000 at a time.
#[inline(never)]
fn raw_dispatch(jobs: u64) {
    let plain = plain::Dispatcher::start();
    for _ in 0..jobs / 1000 {
        plain::round_trip(|job| plain.post(job), 1000);
    }
}

fn main() {
    let profile_calls = std::env::var("MOQ_BENCH_PROFILE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    println!("{}", common::machine_line());
    let started = SystemTime::now();
    let relay = capi::Relay::start().unwrap_or_else(|err| panic!("relay: {err}"));
    let clients = Clients {
        capi: capi::Client::connect(&relay).unwrap_or_else(|err| panic!("client: {err}")),
        raw: RawStack::start(NAMESPACE).unwrap_or_else(|err| panic!("raw stack: {err}")),
        _relay: relay,
    };
    if let Some(calls) = profile_calls {
        return profile(&clients, calls);
    }
    let dir = criterion_dir();
    let mut criterion = Criterion::default()
        .output_directory(&dir)
        .warm_up_time(Duration::from_millis(common::pick(1000, 300)))
        .measurement_time(Duration::from_millis(common::pick(3000, 1000)))
        .sample_size(common::pick(60, 20))
        .configure_from_args();
    bench_publish(&mut criterion, &clients);
    bench_lookup(&mut criterion, &clients);
    bench_dispatch(&mut criterion);
    criterion.final_summary();

    let mut report = Report::new("calls: cost of one call through the C API vs doing it directly");
    criterion_rows(&mut report, &dir, started);
    allocation_rows(&mut report, &clients);
    interleaved_rows(&mut report, &clients);
    report.print();
}
