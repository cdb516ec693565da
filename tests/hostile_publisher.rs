//! A hostile publisher on the same relay must not hurt other tracks or the process (issue 14,
//! "A hostile publisher freezes other tracks", and its chaos list).
//!
//! Every case runs the same scene on the embedded relay: a well-behaved track published at
//! 100 Hz by one C-API client, and a second C-API client subscribed (`moq_subscribe_ex`) both to
//! it (reliable, default options) and to a hostile track (`max_latency_ms` 1000). The hostile
//! publisher is a plain moq-net/moq-tokio session built here, doing what the C API never does:
//!
//! - a: a sequence jump from group 3 to 2^62−1 (and 2^62, which no varint can carry);
//! - b: a group that never completes, with later groups appended at 10 Hz;
//! - c: a datagram-only track whose sequence numbers skip (by 2 up to 2^40, and to 2^61);
//! - d: an announcement flood (100,000 namespaces) to a callback that sleeps 1 ms;
//! - e: 80 groups left open, the track finished, then the session closed (the publisher vanishes).
//!
//! Each case checks that the well-behaved track keeps delivering (share of its objects that
//! arrive in the measured window, longest pause between arrivals, nothing lost or reordered),
//! that memory stays bounded (peak RSS growth) and, where it applies, that the process goes back
//! to idle (process CPU time from /proc/self/stat over 2 s), and prints the figures.
//!
//! The cases run one at a time: they measure the whole process's RSS and CPU.
//! `MOQ_LOG=moq_ffi=debug` shows what the subscriptions decide.

mod common;

use common::*;
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One case at a time: they measure the process's RSS and CPU.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `max_latency_ms` of the hostile subscription.
const HOSTILE_LATENCY_MS: u32 = 1000;
/// Share of the well-behaved track's objects that must arrive within a measured window.
const MIN_SHARE: f64 = 0.9;
/// The longest the well-behaved track may go without an arrival, and the longest any of its
/// objects may take from `moq_publish_data` to its callback (a hostile announcement flood may
/// hold the shared callback thread for up to 1024 of its 1 ms callbacks).
const MAX_DELAY: Duration = Duration::from_secs(2);
/// The flood case's bound on the well-behaved track's longest pause: a hang detector, not a
/// figure (the pause is printed: applying the announcements shares the runtime; 1.4 s unloaded,
/// 5.3 s seen with two test binaries beside `stress-ng --cpu 2`). The track must go on, and
/// deliver everything in order.
const FLOOD_MAX_PAUSE: Duration = Duration::from_secs(30);
/// The flood case's memory bound per announced broadcast, for the scene's two clients (measured
/// ~8,100 bytes: moq-net's route per broadcast in each client's origin).
const FLOOD_MAX_BYTES_PER_ANNOUNCEMENT: u64 = 16 << 10;
/// Process CPU (seconds per second) that counts as idle.
const IDLE_CPU: f64 = 0.3;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ── Process figures ─────────────────────────────────────────────────────────────────────────

/// The process's resident set and its peak since the last reset, in bytes.
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak RSS (VmHWM) to the current RSS.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

extern "C" {
    fn sysconf(name: std::ffi::c_int) -> std::ffi::c_long;
}

/// CPU time (user + system, every thread) the process used so far, in seconds.
fn cpu_seconds() -> f64 {
    const SC_CLK_TCK: std::ffi::c_int = 2; // Linux
                                           // SAFETY: sysconf takes an integer and touches no memory.
    let ticks_per_second = unsafe { sysconf(SC_CLK_TCK) }.max(1) as f64;
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // The command name (field 2) may hold spaces: fields are counted after its ')'.
    let rest = &stat[stat.rfind(')').expect("a /proc/self/stat line") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields[11].parse().expect("utime");
    let stime: u64 = fields[12].parse().expect("stime");
    (utime + stime) as f64 / ticks_per_second
}

/// Ticks (user + system) each thread of the process used so far, by thread id, with its name.
fn thread_ticks() -> std::collections::HashMap<u64, (String, u64)> {
    let mut threads = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return threads;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        let id = task.file_name().to_string_lossy().parse().unwrap_or(0);
        threads.insert(id, (name, ticks));
    }
    threads
}

/// CPU seconds per second the process uses over `window`; prints the busiest threads (by
/// name) when it is above idle.
fn cpu_rate(window: Duration) -> f64 {
    let (cpu, threads, at) = (cpu_seconds(), thread_ticks(), Instant::now());
    std::thread::sleep(window);
    let rate = (cpu_seconds() - cpu) / at.elapsed().as_secs_f64();
    if rate >= IDLE_CPU {
        let mut by_name: std::collections::BTreeMap<String, u64> = Default::default();
        for (id, (name, ticks)) in thread_ticks() {
            let before = threads.get(&id).map_or(0, |(_, ticks)| *ticks);
            *by_name.entry(name).or_default() += ticks.saturating_sub(before);
        }
        let mut busiest: Vec<(String, u64)> = by_name.into_iter().filter(|(_, t)| *t > 0).collect();
        busiest.sort_by_key(|(_, ticks)| std::cmp::Reverse(*ticks));
        busiest.truncate(6);
        eprintln!("  busiest threads over {window:?} (ticks): {busiest:?}");
    }
    rate
}

// ── What a subscription receives ────────────────────────────────────────────────────────────

#[derive(Clone, Debug)]
struct Got {
    group: u64,
    object: u64,
    mode: MoqDeliveryMode,
    payload: Vec<u8>,
    at: Instant,
}

#[derive(Default)]
struct Received {
    got: Vec<Got>,
    statuses: Vec<(MoqSubscriptionStatus, u32, String)>,
}

/// Records one subscription's objects (with their arrival time) and statuses.
#[derive(Default)]
struct Feed {
    inner: Mutex<Received>,
    changed: Condvar,
}

impl Feed {
    /// Waits until `done` holds for what arrived, or `timeout` passed; returns whether it held.
    fn wait(&self, timeout: Duration, mut done: impl FnMut(&Received) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = lock(&self.inner);
        while !done(&inner) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            inner = self
                .changed
                .wait_timeout(inner, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    fn got(&self) -> Vec<Got> {
        lock(&self.inner).got.clone()
    }

    fn statuses(&self) -> Vec<(MoqSubscriptionStatus, u32, String)> {
        lock(&self.inner).statuses.clone()
    }

    fn terminal(&self) -> Option<(MoqSubscriptionStatus, u32, String)> {
        lock(&self.inner)
            .statuses
            .iter()
            .find(|(status, _, _)| *status != MOQ_SUBSCRIPTION_SUBSCRIBED)
            .cloned()
    }
}

unsafe extern "C" fn on_object(user_data: *mut c_void, info: *const MoqObjectInfo, data: *const u8, len: usize) {
    // SAFETY: `user_data` is a kept `Feed`; `info` and `data` are valid during the call.
    let feed = unsafe { &*(user_data as *const Feed) };
    let info = unsafe { *info };
    let payload = match len {
        0 => Vec::new(),
        // SAFETY: `len` readable bytes at `data` during the call.
        _ => unsafe { std::slice::from_raw_parts(data, len) }.to_vec(),
    };
    lock(&feed.inner).got.push(Got {
        group: info.group_id,
        object: info.object_id,
        mode: info.delivery_mode,
        payload,
        at: Instant::now(),
    });
    feed.changed.notify_all();
}

unsafe extern "C" fn on_status(
    user_data: *mut c_void,
    status: MoqSubscriptionStatus,
    code: u32,
    message: *const c_char,
) {
    // SAFETY: `user_data` is a kept `Feed`; `message` is a valid string during the call.
    let feed = unsafe { &*(user_data as *const Feed) };
    let message = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    lock(&feed.inner).statuses.push((status, code, message));
    feed.changed.notify_all();
}

fn subscribe(client: *mut MoqClient, ns: &str, track: &str, max_latency_ms: u32) -> (*mut MoqSubscriber, Arc<Feed>) {
    let feed = kept(Arc::new(Feed::default()));
    let mut options = moq_subscribe_options_default();
    options.max_latency_ms = max_latency_ms;
    // SAFETY: valid strings, options and callbacks; the feed is kept for the process.
    let subscriber = unsafe {
        moq_subscribe_ex(
            client,
            cstr(ns).as_ptr(),
            cstr(track).as_ptr(),
            &options,
            Some(on_object),
            Some(on_status),
            Arc::as_ptr(&feed) as *mut c_void,
        )
    };
    assert!(!subscriber.is_null(), "moq_subscribe_ex {ns}/{track}: {}", last_error());
    let wait = Duration::from_secs(10) * time_scale();
    assert!(
        feed.wait(wait, |r| !r.statuses.is_empty()),
        "no status for {ns}/{track}"
    );
    assert_eq!(
        feed.statuses()[0].0,
        MOQ_SUBSCRIPTION_SUBSCRIBED,
        "{ns}/{track}: {:?}",
        feed.statuses()
    );
    (subscriber, feed)
}

fn show_stats(stats: &MoqStats) -> String {
    format!(
        "received {}, too late {}, queue full {}, groups lost {}, repaired {}, events dropped {}",
        stats.objects_received,
        stats.objects_dropped_too_late,
        stats.objects_dropped_queue_full,
        stats.groups_lost,
        stats.groups_repaired,
        stats.events_dropped
    )
}

// ── The well-behaved track ──────────────────────────────────────────────────────────────────

/// Publishes object `i` (its payload: `i`, 8 bytes) every 10 ms through the C API, on its own
/// thread, and records when each went out and the slowest publish call.
struct Steady {
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<Vec<Instant>>>,
    failed: Arc<AtomicU64>,
    slowest_us: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Steady {
    fn start(publisher: *mut MoqPublisher) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let failed = Arc::new(AtomicU64::new(0));
        let slowest_us = Arc::new(AtomicU64::new(0));
        let handle = publisher as usize;
        let thread = {
            let (stop, sent, failed, slowest_us) = (stop.clone(), sent.clone(), failed.clone(), slowest_us.clone());
            std::thread::Builder::new()
                .name("steady-100hz".into())
                .spawn(move || {
                    let start = Instant::now();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        // Pacing, not synchronisation: one object every 10 ms.
                        let due = start + Duration::from_millis(10 * i);
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        let payload = i.to_le_bytes();
                        let call = Instant::now();
                        // SAFETY: `payload` is readable for its length; a stale handle is
                        // rejected, not dereferenced.
                        let (code, _) = take(unsafe {
                            moq_publish_data(
                                handle as *mut MoqPublisher,
                                payload.as_ptr(),
                                payload.len(),
                                MOQ_DELIVERY_STREAM,
                            )
                        });
                        slowest_us.fetch_max(call.elapsed().as_micros() as u64, Ordering::Relaxed);
                        if code != MoqResultCode::MOQ_OK {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        lock(&sent).push(call);
                        i += 1;
                    }
                })
                .expect("spawn the steady publisher")
        };
        Self {
            stop,
            sent,
            failed,
            slowest_us,
            thread: Some(thread),
        }
    }

    fn published(&self) -> usize {
        lock(&self.sent).len()
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Steady {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How the well-behaved track did over a window.
#[derive(Debug)]
struct Window {
    published: usize,
    arrived: usize,
    /// Longest time without an arrival inside the window (edges included).
    longest_pause: Duration,
    /// Publish-to-callback latency of the objects that arrived in the window.
    median_latency: Duration,
    worst_latency: Duration,
    /// The worst latency of each second of the window, in ms.
    per_second_ms: Vec<u128>,
}

impl Window {
    fn share(&self) -> f64 {
        self.arrived as f64 / self.published.max(1) as f64
    }

    fn show(&self) -> String {
        format!(
            "{}/{} objects ({:.1}%), longest pause {} ms, latency median {:.1?} worst {} ms (worst per second, ms: {:?})",
            self.arrived,
            self.published,
            self.share() * 100.0,
            self.longest_pause.as_millis(),
            self.median_latency,
            self.worst_latency.as_millis(),
            self.per_second_ms
        )
    }
}

fn window(feed: &Feed, steady: &Steady, from: Instant, to: Instant) -> Window {
    let sent = lock(&steady.sent).clone();
    let got = feed.got();
    let published = sent.iter().filter(|at| **at >= from && **at < to).count();
    let inside: Vec<&Got> = got.iter().filter(|g| g.at >= from && g.at < to).collect();
    let mut pauses = Vec::with_capacity(inside.len() + 1);
    let mut last = from;
    for g in &inside {
        pauses.push(g.at - last);
        last = g.at;
    }
    pauses.push(to.saturating_duration_since(last));
    let timed: Vec<(Instant, Duration)> = inside
        .iter()
        .filter_map(|g| {
            let seq = u64::from_le_bytes(g.payload.get(..8)?.try_into().ok()?);
            sent.get(seq as usize)
                .map(|at| (g.at, g.at.saturating_duration_since(*at)))
        })
        .collect();
    let seconds = (to - from).as_secs_f64().ceil() as usize;
    let mut per_second_ms = vec![0u128; seconds];
    for (at, latency) in &timed {
        let second = ((*at - from).as_secs() as usize).min(seconds.saturating_sub(1));
        per_second_ms[second] = per_second_ms[second].max(latency.as_millis());
    }
    let mut latencies: Vec<Duration> = timed.into_iter().map(|(_, latency)| latency).collect();
    latencies.sort();
    Window {
        published,
        arrived: inside.len(),
        longest_pause: pauses.into_iter().max().unwrap_or_default(),
        median_latency: latencies.get(latencies.len() / 2).copied().unwrap_or_default(),
        worst_latency: latencies.last().copied().unwrap_or_default(),
        per_second_ms,
    }
}

/// The checks of one case that failed: every one is reported, not only the first.
#[derive(Default)]
struct Verdict(Vec<String>);

impl Verdict {
    fn check(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            let message = message();
            eprintln!("FAILED: {message}");
            self.0.push(message);
        }
    }

    #[track_caller]
    fn assert(self) {
        assert!(
            self.0.is_empty(),
            "{} checks failed:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// Checks the well-behaved track did well over the window: most of its objects arrived, it
/// never paused, and none was held back for long.
fn check_steady(verdict: &mut Verdict, what: &str, w: &Window) {
    eprintln!("well-behaved track {what}: {}", w.show());
    verdict.check(w.share() >= MIN_SHARE, || {
        format!(
            "well-behaved track {what}: only {} (at least {:.0}% expected)",
            w.show(),
            MIN_SHARE * 100.0
        )
    });
    let bound = MAX_DELAY * time_scale();
    verdict.check(w.longest_pause < bound && w.worst_latency < bound, || {
        format!(
            "well-behaved track {what}: frozen or held back ({}; at most {} ms allowed)",
            w.show(),
            bound.as_millis()
        )
    });
}

/// Checks the well-behaved (reliable) track delivered every object once, in order, from its
/// first, and that its publisher never failed or blocked.
fn check_intact(verdict: &mut Verdict, feed: &Feed, steady: &Steady, subscriber: *mut MoqSubscriber) {
    let seqs: Vec<u64> = feed
        .got()
        .iter()
        .map(|g| u64::from_le_bytes(g.payload[..8].try_into().unwrap()))
        .collect();
    let first = seqs.first().copied().unwrap_or(0);
    let broken = seqs
        .iter()
        .enumerate()
        .find(|(i, seq)| **seq != first + *i as u64)
        .map(|(i, seq)| format!("object #{i} carries {seq}, expected {}", first + i as u64));
    let stats = subscriber_stats(subscriber);
    let failed = steady.failed.load(Ordering::Relaxed);
    let slowest = Duration::from_micros(steady.slowest_us.load(Ordering::Relaxed));
    eprintln!(
        "well-behaved track overall: {} objects from #{first}, slowest moq_publish_data {slowest:.1?}; {}",
        seqs.len(),
        show_stats(&stats)
    );
    verdict.check(broken.is_none(), || {
        format!(
            "the well-behaved track lost or reordered an object: {}",
            broken.unwrap()
        )
    });
    verdict.check(stats.groups_lost == 0, || {
        format!("well-behaved track lost groups: {}", show_stats(&stats))
    });
    verdict.check(failed == 0, || format!("{failed} steady publishes failed"));
    verdict.check(slowest < Duration::from_millis(500) * time_scale(), || {
        format!("moq_publish_data took {slowest:?}")
    });
}

// ── The hostile publisher: a plain moq-net session ──────────────────────────────────────────

/// A moq-tokio client session to the relay (fingerprint pinned), publishing the broadcasts of
/// its own origin, on a runtime of its own.
struct Hostile {
    origin: moq_net::origin::Producer,
    session: Option<(moq_tokio::Connection, moq_tokio::Client)>,
    runtime: tokio::runtime::Runtime,
}

impl Hostile {
    fn connect(relay: &TestRelay) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hostile-io")
            .enable_all()
            .build()
            .expect("a runtime for the hostile publisher");
        let url: url::Url = relay.url.parse().expect("the relay's URL");
        let fingerprint = relay.fingerprint.clone();
        let timeout = Duration::from_secs(10) * time_scale();
        let (origin, session) = runtime.block_on(async move {
            let _ = moq_tokio::crypto::install_default();
            let origin = moq_tokio::origin::spawn();
            let mut connect = moq_tokio::connect::Config::default();
            connect.once = Some(true);
            connect.tls.fingerprint = vec![fingerprint];
            let endpoint = connect
                .init(moq_tokio::quic::Config::default())
                .expect("hostile client setup")
                .with_publisher(origin.consume())
                .with_reconnect(false);
            let connection = tokio::time::timeout(timeout, endpoint.connect(url).established())
                .await
                .expect("the hostile publisher connects in time")
                .expect("the hostile publisher connects");
            (origin, (connection, endpoint))
        });
        let version = session.0.version().map(|v| v.to_string()).unwrap_or_default();
        eprintln!("hostile publisher connected ({version})");
        Self {
            origin,
            session: Some(session),
            runtime,
        }
    }

    /// Creates and announces a broadcast.
    fn broadcast(&self, ns: &str) -> moq_net::broadcast::Producer {
        let _runtime = self.runtime.enter();
        let broadcast = self.origin.create_broadcast(ns).expect("create_broadcast");
        broadcast.announce(Default::default()).expect("announce");
        broadcast
    }

    /// A track with the C API publisher's settings (30 s retention, µs timescale).
    fn track(&self, broadcast: &moq_net::broadcast::Producer, name: &str) -> moq_net::track::Producer {
        let _runtime = self.runtime.enter();
        let info = moq_net::track::Info::default()
            .with_max_age(Duration::from_secs(30))
            .with_priority(127)
            .with_timescale(moq_net::Timescale::MICRO);
        broadcast.create_track(name, info).expect("create_track")
    }

    /// Runs `f` inside the hostile runtime's context (moq-net producers may spawn work).
    fn enter<T>(&self, f: impl FnOnce() -> T) -> T {
        let _runtime = self.runtime.enter();
        f()
    }
}

impl Hostile {
    /// Closes the session (bounded); the runtime stays for the producers still held.
    fn close(&mut self) {
        if let Some((connection, endpoint)) = self.session.take() {
            self.runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    let _ = connection.close().await;
                    endpoint.close().await;
                })
                .await;
            });
        }
    }
}

/// Closes the session (bounded), then the runtime.
impl Drop for Hostile {
    fn drop(&mut self) {
        self.close();
    }
}

fn now_timestamp() -> moq_net::Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    moq_net::Timestamp::from_micros(micros).unwrap_or_else(|_| moq_net::Timestamp::now())
}

/// Writes group `sequence` with one frame and, when `finish`, completes it.
fn write_group(
    track: &moq_net::track::Producer,
    sequence: u64,
    payload: &[u8],
    finish: bool,
) -> moq_net::Result<moq_net::group::Producer> {
    let mut group = track.create_group(moq_net::group::Info { sequence })?;
    group.write_frame(now_timestamp(), payload.to_vec())?;
    if finish {
        group.finish()?;
    }
    Ok(group)
}

/// Waits until the relay subscribed to `track` upstream (a subscriber reached the publisher).
fn wait_used(track: &moq_net::track::Producer) {
    assert!(
        wait_until(Duration::from_secs(10) * time_scale(), || track.is_used()),
        "the relay never subscribed to the hostile track"
    );
}

// ── The scene ───────────────────────────────────────────────────────────────────────────────

/// The relay, the hostile publisher, the well-behaved track running at 100 Hz, and the
/// subscribing client with its subscription to the well-behaved track.
struct Scene {
    steady: Steady,
    good: *mut MoqSubscriber,
    good_feed: Arc<Feed>,
    good_publisher: *mut MoqPublisher,
    pub_client: *mut MoqClient,
    sub_client: *mut MoqClient,
    /// Subscriptions of the case, destroyed with the scene.
    adopted: Vec<*mut MoqSubscriber>,
    hostile: Option<Hostile>,
    /// Stopped when the scene drops, after every handle (a helper process's relay: nothing here).
    _relay: TestRelay,
}

impl Scene {
    /// The scene on an embedded relay of this process, with the hostile publisher connected.
    fn start(case: &str) -> Self {
        let relay = TestRelay::start();
        let hostile = Hostile::connect(&relay);
        Self::on(relay, Some(hostile), case)
    }

    /// The scene on `relay` (possibly another process's), with `hostile` if any.
    fn on(relay: TestRelay, hostile: Option<Hostile>, case: &str) -> Self {
        let pub_client = connected_client(&relay);
        let sub_client = connected_client(&relay);
        let ns = format!("good/{case}");
        let good_publisher = publisher(pub_client, &ns, "state");
        let (good, good_feed) = subscribe(sub_client, &ns, "state", 0);
        let steady = Steady::start(good_publisher);
        // Live: the first objects arrive.
        assert!(
            good_feed.wait(Duration::from_secs(10) * time_scale(), |r| r.got.len() >= 20),
            "the well-behaved track does not deliver: {:?}",
            good_feed.statuses()
        );
        Self {
            steady,
            good,
            good_feed,
            good_publisher,
            pub_client,
            sub_client,
            adopted: Vec::new(),
            hostile,
            _relay: relay,
        }
    }

    fn hostile(&self) -> &Hostile {
        self.hostile.as_ref().expect("the hostile publisher")
    }

    fn window(&self, from: Instant, to: Instant) -> Window {
        window(&self.good_feed, &self.steady, from, to)
    }

    /// Stops the well-behaved track and checks it delivered everything it published, in order.
    fn finish_steady(&mut self, verdict: &mut Verdict) {
        self.steady.stop();
        let published = self.steady.published();
        let feed = self.good_feed.clone();
        let first = feed
            .got()
            .first()
            .map_or(0, |g| u64::from_le_bytes(g.payload[..8].try_into().unwrap()) as usize);
        // A completion wait, not a figure: after a flood the track may have a backlog to drain
        // (seen on a loaded machine: 511 of 1,004 ten seconds after it stopped).
        let all = feed.wait(Duration::from_secs(60) * time_scale(), |r| {
            r.got.len() + first >= published
        });
        verdict.check(all, || {
            format!(
                "the well-behaved track delivered {} of {} after it stopped",
                feed.got().len(),
                published - first
            )
        });
        check_intact(verdict, &self.good_feed, &self.steady, self.good);
    }

    /// A subscription to destroy with the scene (also when a failing test unwinds).
    fn adopt(&mut self, subscriber: *mut MoqSubscriber) {
        self.adopted.push(subscriber);
    }
}

/// Destroys every handle, then (fields) closes the hostile publisher and stops the relay: also
/// when a test fails, so the next case measures a quiet process.
impl Drop for Scene {
    fn drop(&mut self) {
        self.steady.stop();
        for subscriber in self.adopted.drain(..) {
            moq_subscriber_destroy(subscriber);
        }
        moq_subscriber_destroy(self.good);
        moq_publisher_destroy(self.good_publisher);
        moq_client_destroy(self.sub_client);
        moq_client_destroy(self.pub_client);
    }
}

// ── a: sequence jump ────────────────────────────────────────────────────────────────────────

/// Groups 0–3, then 2^62−1 and 2^62: the subscription skips the range with arithmetic (counted
/// in `groups_lost`), the other track does not notice, and the process goes back to idle.
#[test]
fn sequence_jump_is_counted_and_hurts_nothing() {
    let _serial = serial();
    let mut scene = Scene::start("jump");
    let broadcast = scene.hostile().broadcast("hostile/jump");
    let track = scene.hostile().track(&broadcast, "t");
    let (hostile, feed) = subscribe(scene.sub_client, "hostile/jump", "t", HOSTILE_LATENCY_MS);
    scene.adopt(hostile);
    wait_used(&track);

    let baseline_cpu = cpu_rate(Duration::from_secs(2));
    eprintln!("CPU before the jump (well-behaved track, idle hostile subscription): {baseline_cpu:.3} s/s");

    scene.hostile().enter(|| {
        for sequence in 0..4u64 {
            write_group(&track, sequence, format!("group {sequence}").as_bytes(), true).expect("group 0-3");
        }
    });
    let wait = Duration::from_secs(10) * time_scale();
    assert!(
        feed.wait(wait, |r| r.got.len() >= 4),
        "groups 0-3 did not arrive: {:?}, {:?}",
        feed.got(),
        feed.statuses()
    );
    let jump = Instant::now();
    const TOP: u64 = (1 << 62) - 1;
    let (top, beyond) = scene.hostile().enter(|| {
        (
            write_group(&track, TOP, b"group 2^62-1", true).map(drop),
            write_group(&track, TOP + 1, b"group 2^62", true).map(drop),
        )
    });
    eprintln!("hostile publisher: group 2^62-1 written: {top:?}; group 2^62 written: {beyond:?}");

    // The other track over the 5 s after the jump (a measuring window, not a wait).
    let mut verdict = Verdict::default();
    std::thread::sleep(Duration::from_secs(5));
    let after = scene.window(jump, jump + Duration::from_secs(5));
    check_steady(&mut verdict, "over the 5 s after the jump", &after);

    // The skipped range is counted: 4 ..= 2^62-2 at least.
    let settled = wait_until(Duration::from_secs(30) * time_scale(), || {
        subscriber_stats(hostile).groups_lost >= TOP - 4 || feed.terminal().is_some()
    });
    let stats = subscriber_stats(hostile);
    let got: Vec<(u64, u64)> = feed.got().iter().map(|g| (g.group, g.object)).collect();
    eprintln!(
        "hostile subscription after the jump ({:.1?}): delivered {got:?}; {}; statuses {:?}",
        jump.elapsed(),
        show_stats(&stats),
        feed.statuses()
    );
    verdict.check(settled, || {
        "the subscription neither counted the jump within 30 s nor ended".to_string()
    });
    verdict.check(got.get(..4) == Some(&[(0, 0), (1, 0), (2, 0), (3, 0)][..]), || {
        format!("groups 0-3 first, in order: {got:?}")
    });
    verdict.check(got.windows(2).all(|w| w[0] < w[1]), || {
        format!("hostile groups delivered in order, once: {got:?}")
    });
    verdict.check(stats.groups_lost >= TOP - 4, || {
        format!(
            "groups_lost {} does not count the skipped range 4..=2^62-2 ({} groups)",
            stats.groups_lost,
            TOP - 4
        )
    });
    // Group 2^62-1 reached the subscription: delivered, or (it waited for the hole to be given
    // up, longer than the 1 s latency bound) dropped as too late. 2^62 fits no varint: the
    // hostile session resets its stream, nothing of it crosses the wire.
    verdict.check(stats.objects_received + stats.objects_dropped_too_late >= 5, || {
        format!("group 2^62-1 never reached the subscription: {}", show_stats(&stats))
    });

    // Back to idle.
    let idle = cpu_rate(Duration::from_secs(2));
    eprintln!("CPU after the jump settled: {idle:.3} s/s (before: {baseline_cpu:.3} s/s)");
    verdict.check(idle < IDLE_CPU * f64::from(time_scale()), || {
        format!("the process uses {idle:.3} s of CPU per second after the jump (idle: < {IDLE_CPU})")
    });
    let now = Instant::now();
    let still = scene.window(now - Duration::from_secs(2), now);
    check_steady(&mut verdict, "while the CPU was measured", &still);

    scene.finish_steady(&mut verdict);
    drop((track, broadcast));
    drop(scene);
    verdict.assert();
}

// ── b: a group that never completes ─────────────────────────────────────────────────────────

/// Group 3 gets one frame and is never finished; groups 4, 5, … follow at 10 Hz. The other track
/// keeps delivering, memory stays bounded, and the hostile subscription moves on to the later
/// groups within a few seconds (its latency bound is 1 s), in order, and stays live.
#[test]
fn group_that_never_completes_stalls_only_its_track() {
    let _serial = serial();
    let mut scene = Scene::start("stall");
    let broadcast = scene.hostile().broadcast("hostile/stall");
    let track = scene.hostile().track(&broadcast, "t");
    let (hostile, feed) = subscribe(scene.sub_client, "hostile/stall", "t", HOSTILE_LATENCY_MS);
    scene.adopt(hostile);
    wait_used(&track);
    reset_peak_rss();
    let (rss_before, _) = rss();
    let run_start = Instant::now();

    // The hostile writer: 0-2 complete, 3 left open, then 4, 5, … at 10 Hz.
    let stop = Arc::new(AtomicBool::new(false));
    let written: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let writer = {
        let (stop, written, track) = (stop.clone(), written.clone(), track.clone());
        let runtime = scene.hostile().runtime.handle().clone();
        std::thread::spawn(move || {
            let _runtime = runtime.enter();
            let start = Instant::now();
            let mut open = None;
            let mut sequence = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Pacing, not synchronisation: 10 groups per second.
                let due = start + Duration::from_millis(100 * sequence);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                let finish = sequence != 3;
                let group = write_group(&track, sequence, &sequence.to_le_bytes(), finish).expect("hostile group");
                if !finish {
                    open = Some(group); // kept open, never finished
                }
                lock(&written).push((sequence, Instant::now()));
                sequence += 1;
            }
            drop(open);
        })
    };

    // Group 3's one frame arrives, then the track stalls; later groups come after the stall is
    // given up or repaired.
    let wait = Duration::from_secs(60) * time_scale();
    let recovered = feed.wait(wait, |r| r.got.iter().any(|g| g.group >= 4) || r.statuses.len() > 1);
    let written_at = |sequence: u64| lock(&written).iter().find(|(s, _)| *s == sequence).map(|(_, at)| *at);
    let stall_from = written_at(4).unwrap_or(run_start);
    let first_later = feed.got().into_iter().find(|g| g.group >= 4);
    let stall = first_later.as_ref().map(|g| g.at - stall_from);
    eprintln!(
        "hostile subscription: first group after the open one: {:?}, {:?} after group 4 was written; {}; statuses {:?}",
        first_later.as_ref().map(|g| g.group),
        stall,
        show_stats(&subscriber_stats(hostile)),
        feed.statuses()
    );
    assert!(
        recovered && first_later.is_some(),
        "no group after the open one within {wait:?}: {:?}; statuses {:?}",
        feed.got().iter().map(|g| (g.group, g.object)).collect::<Vec<_>>(),
        feed.statuses()
    );
    // After that, the track is live again: a group written 2 s later (and at least 10 s into
    // the run) arrives too.
    let later = (Instant::now() + Duration::from_secs(2)).max(run_start + Duration::from_secs(10));
    let live = wait_until(Duration::from_secs(30) * time_scale(), || {
        let late = lock(&written).iter().find(|(_, at)| *at >= later).map(|(s, _)| *s);
        late.is_some_and(|late| feed.got().iter().any(|g| g.group >= late))
    });
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the hostile writer");
    let run = run_start.elapsed();
    let (_, peak) = rss();
    let got: Vec<(u64, u64)> = feed.got().iter().map(|g| (g.group, g.object)).collect();
    let stats = subscriber_stats(hostile);
    eprintln!(
        "hostile subscription over {run:.1?}: {} groups written, delivered {} objects, groups {:?}..{:?}; {}; statuses {:?}",
        lock(&written).len(),
        got.len(),
        got.first(),
        got.last(),
        show_stats(&stats),
        feed.statuses()
    );
    let mut verdict = Verdict::default();
    verdict.check(live, || {
        format!("the hostile track did not stay live after it recovered: {got:?}")
    });
    verdict.check(got.windows(2).all(|w| w[0] < w[1]), || {
        format!("in order, once: {got:?}")
    });
    verdict.check(got.get(..4) == Some(&[(0, 0), (1, 0), (2, 0), (3, 0)][..]), || {
        format!("groups 0-2 and the open group's one frame come first: {got:?}")
    });
    // The open group held the track back about as long as the latency bound, not the 30 s gap
    // timeout. How it ended varies: the relay ends its stream (moq-net logs "finished group
    // sequence=3": the subscription sees a complete group of one object, nothing counted), or
    // the stall timeout fires first and a fetch of the rest returns nothing more (counted in
    // `groups_repaired`).
    let stall = stall.unwrap_or_default();
    eprintln!(
        "the open group held the track for {stall:.2?}; counted: groups lost {}, repaired {}",
        stats.groups_lost, stats.groups_repaired
    );
    verdict.check(stall < Duration::from_secs(5) * time_scale(), || {
        format!("the open group held later groups back for {stall:?}")
    });

    // The other track over the whole run.
    let whole = scene.window(run_start, run_start + run);
    check_steady(&mut verdict, "over the whole run", &whole);
    let grown = peak.saturating_sub(rss_before);
    eprintln!("peak RSS growth over the run: {} MiB", grown >> 20);
    verdict.check(grown < 64 << 20, || {
        format!("RSS grew by {} MiB (bound 64 MiB)", grown >> 20)
    });

    scene.finish_steady(&mut verdict);
    drop((track, broadcast));
    drop(scene);
    verdict.assert();
}

// ── c: a datagram-only track with gaps ──────────────────────────────────────────────────────

/// Datagrams at 100 Hz whose sequence numbers skip (every 10th by 2, 7, 100, 5,000, 2^20 or
/// 2^40, and once to 2^61): later datagrams keep arriving, memory stays bounded, the other
/// track is unaffected and the process goes back to idle.
#[test]
fn datagram_track_with_gaps_keeps_delivering() {
    const COUNT: u64 = 800; // 8 s at 100 Hz
    const GAPS: [u64; 6] = [2, 7, 100, 5_000, 1 << 20, 1 << 40];
    let _serial = serial();
    let mut scene = Scene::start("datagrams");
    let broadcast = scene.hostile().broadcast("hostile/datagrams");
    let track = scene.hostile().track(&broadcast, "d");
    let (hostile, feed) = subscribe(scene.sub_client, "hostile/datagrams", "d", HOSTILE_LATENCY_MS);
    scene.adopt(hostile);
    wait_used(&track);
    reset_peak_rss();
    let (rss_before, _) = rss();
    let run_start = Instant::now();

    let mut sent = Vec::with_capacity(COUNT as usize);
    {
        let _runtime = scene.hostile().runtime.enter();
        let mut track = track.clone();
        let mut sequence = 0u64;
        for i in 0..COUNT {
            // Pacing, not synchronisation: 100 datagrams per second.
            let due = run_start + Duration::from_millis(10 * i);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if i == COUNT / 2 {
                sequence = 1 << 61;
            } else if i > 0 && i % 10 == 0 {
                sequence += GAPS[(i / 10) as usize % GAPS.len()];
            } else if i > 0 {
                sequence += 1;
            }
            let mut payload = sequence.to_le_bytes().to_vec();
            payload.extend_from_slice(&i.to_le_bytes());
            track
                .insert_datagram(sequence, now_timestamp(), payload)
                .expect("insert_datagram");
            sent.push((i, sequence, Instant::now()));
        }
    }
    let published = run_start.elapsed();
    // The last datagram (or, datagrams being lossy, a time bound) ends the wait.
    let last = sent.last().map(|s| s.1).unwrap();
    feed.wait(Duration::from_secs(5) * time_scale(), |r| {
        r.got.iter().any(|g| g.group == last)
    });
    let got = feed.got();
    let wrong: Vec<&Got> = got
        .iter()
        .filter(|g| {
            g.mode != MOQ_DELIVERY_DATAGRAM
                || g.object != 0
                || g.payload.len() != 16
                || u64::from_le_bytes(g.payload[..8].try_into().unwrap()) != g.group
        })
        .collect();
    let delivered: std::collections::HashSet<u64> = got
        .iter()
        .filter(|g| g.payload.len() == 16)
        .map(|g| u64::from_le_bytes(g.payload[8..].try_into().unwrap()))
        .collect();
    let recent_from = published.saturating_sub(Duration::from_secs(2));
    let recent: Vec<u64> = sent
        .iter()
        .filter(|(_, _, at)| *at - run_start >= recent_from)
        .map(|(i, _, _)| *i)
        .collect();
    let recent_arrived = recent.iter().filter(|i| delivered.contains(i)).count();
    let after_big_jump = (COUNT / 2..COUNT).filter(|i| delivered.contains(i)).count();
    let stats = subscriber_stats(hostile);
    eprintln!(
        "datagram track: {} of {COUNT} delivered ({} after the jump to 2^61, {recent_arrived}/{} of the last 2 s); {}; statuses {:?}",
        delivered.len(),
        after_big_jump,
        recent.len(),
        show_stats(&stats),
        feed.statuses()
    );
    let mut verdict = Verdict::default();
    verdict.check(wrong.is_empty(), || {
        format!("datagrams delivered wrong: {:?}", &wrong[..wrong.len().min(5)])
    });
    verdict.check(feed.terminal().is_none(), || {
        format!("the subscription ended: {:?}", feed.statuses())
    });
    verdict.check(recent_arrived as f64 >= 0.8 * recent.len() as f64, || {
        format!(
            "only {recent_arrived} of the {} datagrams of the last 2 s arrived",
            recent.len()
        )
    });
    verdict.check(after_big_jump as f64 >= 0.8 * (COUNT / 2) as f64, || {
        format!("only {after_big_jump} datagrams after the jump to 2^61 arrived")
    });

    let (_, peak) = rss();
    let grown = peak.saturating_sub(rss_before);
    eprintln!("peak RSS growth over the run: {} MiB", grown >> 20);
    verdict.check(grown < 64 << 20, || {
        format!("RSS grew by {} MiB (bound 64 MiB)", grown >> 20)
    });
    let whole = scene.window(run_start, run_start + published);
    check_steady(&mut verdict, "while the datagrams flowed", &whole);

    let idle = cpu_rate(Duration::from_secs(2));
    eprintln!(
        "CPU after the datagrams: {idle:.3} s/s; hostile subscription then: {}",
        show_stats(&subscriber_stats(hostile))
    );
    verdict.check(idle < IDLE_CPU * f64::from(time_scale()), || {
        format!("the process uses {idle:.3} s of CPU per second after the datagrams (idle: < {IDLE_CPU})")
    });

    scene.finish_steady(&mut verdict);
    drop((track, broadcast));
    drop(scene);
    verdict.assert();
}

// ── d: an announcement flood ────────────────────────────────────────────────────────────────

/// Counts announcements and sleeps 1 ms in each.
#[derive(Default)]
struct Announcements {
    count: AtomicU64,
}

unsafe extern "C" fn on_announce(user_data: *mut c_void, _namespace: *const c_char, active: bool) {
    // SAFETY: `user_data` is a kept `Announcements`.
    let seen = unsafe { &*(user_data as *const Announcements) };
    if active {
        seen.count.fetch_add(1, Ordering::Relaxed);
    }
    std::thread::sleep(Duration::from_millis(1));
}

/// Calls the API in a loop on its own thread and records the slowest call.
struct Prober {
    stop: Arc<AtomicBool>,
    slowest_us: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Prober {
    fn start(client: *mut MoqClient, subscriber: *mut MoqSubscriber) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let slowest_us = Arc::new(AtomicU64::new(0));
        let calls = Arc::new(AtomicU64::new(0));
        let (client, subscriber) = (client as usize, subscriber as usize);
        let thread = {
            let (stop, slowest_us, calls) = (stop.clone(), slowest_us.clone(), calls.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let call = Instant::now();
                    let mut stats = MoqStats {
                        struct_size: std::mem::size_of::<MoqStats>() as u32,
                        ..Default::default()
                    };
                    // SAFETY: `stats` is writable; stale handles are rejected, not dereferenced.
                    let _ = take(unsafe { moq_client_stats(client as *mut MoqClient, &mut stats) });
                    let _ = take(unsafe { moq_subscriber_stats(subscriber as *mut MoqSubscriber, &mut stats) });
                    let _ = moq_is_connected(client as *mut MoqClient);
                    let _ = moq_is_subscribed(subscriber as *mut MoqSubscriber);
                    slowest_us.fetch_max(call.elapsed().as_micros() as u64, Ordering::Relaxed);
                    calls.fetch_add(1, Ordering::Relaxed);
                    // Pacing: 100 probes per second.
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        Self {
            stop,
            slowest_us,
            calls,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) -> (u64, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        (
            self.calls.load(Ordering::Relaxed),
            Duration::from_micros(self.slowest_us.load(Ordering::Relaxed)),
        )
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The embedded relay and the hostile publisher of the flood, in a process of their own (this
/// test binary run again with `MOQ_FLOOD_HELPER` set), so the flood case measures the RSS of the
/// C-API clients alone: moq-net keeps every announced broadcast in the publisher's origin and the
/// relay's, ~8 KiB each (measured: +815 MiB for 100,000 namespaces with no client connected).
struct FloodHelper {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl FloodHelper {
    fn start(count: u64) -> (Self, TestRelay) {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut command = Command::new(std::env::current_exe().expect("this test binary"));
        command
            .args(["--exact", "flood_helper_process", "--nocapture", "--test-threads", "1"])
            .env("MOQ_FLOOD_HELPER", count.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            extern "C" {
                fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
            }
            const PR_SET_PDEATHSIG: std::ffi::c_int = 1;
            const SIGKILL: std::ffi::c_ulong = 9;
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(|| {
                    prctl(PR_SET_PDEATHSIG, SIGKILL);
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().expect("spawn the flood helper");
        let stdin = child.stdin.take().expect("its stdin");
        let stdout = child.stdout.take().expect("its stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut helper = Self { child, stdin, lines };
        let relay = helper.expect("RELAY ", Duration::from_secs(30) * time_scale());
        let (url, fingerprint) = relay.split_once(' ').expect("RELAY url fingerprint");
        let relay = TestRelay {
            // Not this process's relay: nothing to stop here (moq_relay_stop ignores NULL).
            relay: std::ptr::null_mut(),
            url: url.to_string(),
            fingerprint: fingerprint.to_string(),
        };
        (helper, relay)
    }

    /// Waits for the helper's line holding `prefix`; returns the rest of it.
    fn expect(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    // libtest's "test flood_helper_process ... " may precede it on the line.
                    if let Some(at) = line.find(prefix) {
                        return line[at + prefix.len()..].to_string();
                    }
                }
                Err(err) => panic!("the flood helper said no {prefix:?} within {timeout:?}: {err}"),
            }
        }
    }

    fn say(&mut self, line: &str) {
        use std::io::Write;
        writeln!(self.stdin, "{line}").expect("write to the flood helper");
    }
}

impl Drop for FloodHelper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The flood helper's side (see [`FloodHelper`]): a no-op unless `MOQ_FLOOD_HELPER` is set.
/// Starts an embedded relay and the hostile publisher, prints `RELAY url fingerprint`, announces
/// `MOQ_FLOOD_HELPER` namespaces on `GO` (then prints `ANNOUNCED ms`), and ends on `STOP`.
#[test]
fn flood_helper_process() {
    use std::io::BufRead;
    let Some(count) = std::env::var("MOQ_FLOOD_HELPER")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return;
    };
    let relay = TestRelay::start();
    let hostile = Hostile::connect(&relay);
    println!("RELAY {} {}", relay.url, relay.fingerprint);
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    let mut broadcasts = Vec::with_capacity(count as usize);
    while stdin.read_line(&mut line).is_ok_and(|n| n > 0) {
        match line.trim() {
            "GO" => {
                let started = Instant::now();
                for i in 0..count {
                    broadcasts.push(hostile.broadcast(&format!("flood/{i:06}")));
                }
                println!("ANNOUNCED {}", started.elapsed().as_millis());
            }
            "STOP" => break,
            _ => {}
        }
        line.clear();
    }
    drop(broadcasts);
    drop(hostile);
    drop(relay);
}

/// 100,000 namespaces announced by a plain moq-net publisher to a client whose announcement
/// callback sleeps 1 ms: every announcement is delivered or dropped and counted in
/// `events_dropped` (the callback queue is bounded), API calls stay fast, and the other track
/// keeps delivering every object once, in order. The relay and the hostile publisher run in a
/// helper process ([`FloodHelper`]): this process's RSS is the C-API clients' alone.
///
/// Known gap (README "Known gaps"), checked here as a bound per announcement rather than a flat
/// one: moq-net keeps one route per announced broadcast in each client's origin (measured
/// ~4 KiB per broadcast per client, +775 MiB for 100,000 over the scene's two clients), and
/// applying 100,000 announcements costs CPU on the runtime the tracks share (the well-behaved
/// track paused up to 1.4 s on 2 cores in the debug build).
#[test]
fn announcement_flood_is_bounded_and_counted() {
    const COUNT: u64 = 100_000;
    let _serial = serial();
    let (mut helper, relay) = FloodHelper::start(COUNT);
    let mut scene = Scene::on(relay, None, "flood");
    let seen = kept(Arc::new(Announcements::default()));
    let prefix = cstr("flood");
    // SAFETY: `prefix` is NUL-terminated; `seen` is kept for the process.
    assert_ok(unsafe {
        moq_subscribe_announces_ex(
            scene.sub_client,
            prefix.as_ptr(),
            Some(on_announce),
            Arc::as_ptr(&seen) as *mut c_void,
        )
    });
    let mut prober = Prober::start(scene.sub_client, scene.good);
    reset_peak_rss();
    let (rss_before, _) = rss();
    let run_start = Instant::now();

    helper.say("GO");
    let announced = helper.expect("ANNOUNCED ", Duration::from_secs(120) * time_scale());
    eprintln!("hostile publisher (helper process) announced {COUNT} namespaces in {announced} ms");

    // Every announcement is either delivered to the callback or dropped and counted.
    let accounted =
        |seen: &Announcements| seen.count.load(Ordering::Relaxed) + client_stats(scene.sub_client).events_dropped;
    let done = wait_until(Duration::from_secs(180) * time_scale(), || accounted(&seen) >= COUNT);
    let flood = run_start.elapsed();
    let (calls, slowest) = prober.stop();
    let (rss_after, peak) = rss();
    let delivered = seen.count.load(Ordering::Relaxed);
    let dropped = client_stats(scene.sub_client).events_dropped;
    eprintln!(
        "announcement flood: {delivered} delivered to the 1 ms callback + {dropped} dropped (events_dropped) of {COUNT} in {flood:.1?}; \
         {calls} probe rounds, slowest {slowest:.1?}; RSS of the clients' process +{} MiB at peak, +{} MiB after",
        peak.saturating_sub(rss_before) >> 20,
        rss_after.saturating_sub(rss_before) >> 20
    );
    let mut verdict = Verdict::default();
    verdict.check(done, || {
        format!("only {} of {COUNT} announcements accounted for", accounted(&seen))
    });
    verdict.check(dropped > 0, || {
        "a flood to a 1 ms callback must drop, and count it".to_string()
    });
    verdict.check(delivered + dropped == COUNT, || {
        format!("each announcement delivered or dropped, once: {delivered} + {dropped} != {COUNT}")
    });
    verdict.check(slowest < Duration::from_secs(1) * time_scale(), || {
        format!("an API call took {slowest:?} during the flood")
    });
    let whole = scene.window(run_start, run_start + flood);
    eprintln!("well-behaved track during the flood: {}", whole.show());
    verdict.check(whole.longest_pause < FLOOD_MAX_PAUSE * time_scale(), || {
        format!(
            "well-behaved track frozen during the flood: {} (longest pause allowed {FLOOD_MAX_PAUSE:?})",
            whole.show()
        )
    });
    let grown = peak.saturating_sub(rss_before);
    verdict.check(grown / COUNT < FLOOD_MAX_BYTES_PER_ANNOUNCEMENT, || {
        format!(
            "the clients' process grew by {} MiB during the flood, {} bytes per announcement (bound {FLOOD_MAX_BYTES_PER_ANNOUNCEMENT})",
            grown >> 20,
            grown / COUNT
        )
    });

    assert_ok(moq_unsubscribe_announces(scene.sub_client));
    scene.finish_steady(&mut verdict);
    drop(scene);
    helper.say("STOP");
    verdict.assert();
}

// ── e: a publisher that vanishes with its groups open ───────────────────────────────────────

/// The hostile publisher opens 80 groups with one frame each, finishes the track and closes its
/// session: the relay resets every group's stream and its broadcast is gone, so no group can be
/// fetched again. The reliable subscription ends promptly (ENDED with every group delivered or
/// counted in `groups_lost`; NOT_FOUND when the track's end had not reached it), nothing comes
/// after its end, and the other track does not notice. Before the fetch session remembered that
/// the broadcast was gone, every repair waited the client's 5 s timeout for it to be announced
/// again, 8 at a time: 50 s for these 80 groups, and a burst of 5,000 (tests/c/test_chaos.c,
/// the publishing client destroyed right after its finish) did not end within 60 s.
///
/// ENDED comes 5.0 s after the publisher vanished (the client's timeout for the broadcast to be
/// announced again). Once in a CI simulation (449f0c0, a quiet machine; 21 runs before and after
/// it each took 5.0 s), nothing was delivered past group 0 and nothing counted for 20 s, then
/// delivery went on: most likely group 0's stream was not reset, and an open group at the front
/// of a finished track is not probed, so it holds delivery until the gap timeout (30 s) gives it
/// up. The bound covers that path (a hang detector; the time is printed).
#[test]
fn publisher_vanishing_with_open_groups_ends_the_subscription() {
    const GROUPS: u64 = 80;
    let _serial = serial();
    let mut scene = Scene::start("vanish");
    let broadcast = scene.hostile().broadcast("hostile/vanish");
    let track = scene.hostile().track(&broadcast, "t");
    let (hostile, feed) = subscribe(scene.sub_client, "hostile/vanish", "t", 0);
    scene.adopt(hostile);
    wait_used(&track);
    let run_start = Instant::now();

    let open = scene.hostile().enter(|| {
        let open: Vec<_> = (0..GROUPS)
            .map(|sequence| write_group(&track, sequence, &sequence.to_le_bytes(), false).expect("an open group"))
            .collect();
        track.finish().expect("finishing the hostile track");
        open
    });
    // Group 0's frame arrived: the groups are on their way.
    let wait = Duration::from_secs(10) * time_scale();
    assert!(
        feed.wait(wait, |r| !r.got.is_empty()),
        "group 0's frame did not arrive: {:?}",
        feed.statuses()
    );
    let vanished = Instant::now();
    scene.hostile.as_mut().expect("the hostile publisher").close();

    let bound = Duration::from_secs(45) * time_scale();
    let ended = feed.wait(bound, |r| r.statuses.len() > 1);
    let took = vanished.elapsed();
    let stats = subscriber_stats(hostile);
    let got: Vec<(u64, u64)> = feed.got().iter().map(|g| (g.group, g.object)).collect();
    let statuses = feed.statuses();
    eprintln!(
        "after the publisher vanished: {} objects delivered (groups {:?}..{:?}), {}; statuses {:?} ({took:.1?} after it vanished)",
        got.len(),
        got.first(),
        got.last(),
        show_stats(&stats),
        statuses
    );
    let mut verdict = Verdict::default();
    verdict.check(ended, || {
        format!(
            "no terminal status within {bound:?} of the publisher vanishing: {statuses:?}, {}",
            show_stats(&stats)
        )
    });
    let terminal = statuses.get(1).map(|(status, _, _)| *status);
    verdict.check(
        matches!(
            terminal,
            None | Some(MOQ_SUBSCRIPTION_ENDED) | Some(MOQ_SUBSCRIPTION_NOT_FOUND)
        ),
        || format!("ENDED or NOT_FOUND expected: {statuses:?}"),
    );
    if terminal == Some(MOQ_SUBSCRIPTION_ENDED) {
        // Every group delivered its one frame or was counted lost (a group whose stream was
        // reset after its frame arrived is both: the rest of it could not be fetched).
        let delivered_groups = got.len() as u64;
        verdict.check(
            delivered_groups + stats.groups_lost >= GROUPS && stats.groups_lost <= GROUPS,
            || {
                format!(
                    "{GROUPS} groups: {delivered_groups} delivered, {} counted lost",
                    stats.groups_lost
                )
            },
        );
    }
    verdict.check(
        got.windows(2).all(|w| w[0] < w[1]) && got.iter().all(|(_, object)| *object == 0),
        || format!("in order, once: {got:?}"),
    );
    let whole = scene.window(run_start, Instant::now());
    check_steady(&mut verdict, "while the publisher vanished", &whole);

    scene.finish_steady(&mut verdict);
    // Nothing after the end (looked at again once the other track drained): one terminal
    // status, no object delivered after it.
    verdict.check(
        feed.statuses().len() == statuses.len().min(2) && feed.got().len() == got.len(),
        || {
            format!(
                "something after the end: {:?}, {} objects",
                feed.statuses(),
                feed.got().len()
            )
        },
    );
    drop((open, track, broadcast));
    drop(scene);
    verdict.assert();
}
