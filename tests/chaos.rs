//! Faults a deployed game meets, against real relays: relay restarts (the standalone moq-relay
//! killed and restarted on its port, and the embedded relay stopped and started again), restarts
//! in quick succession, and a publisher that finishes its track right after a burst. A
//! publisher thread publishes at 1 kHz; every object `moq_publish_data` accepted (MOQ_OK) must
//! reach the subscriber exactly once and in order, and memory must not grow per restart.
//!
//! The restart cadence (every 2 s, or 300 ms apart) and the warm-up before it (caches reach their
//! steady state) are the scenario, not synchronisation margins: every check waits on what the
//! subscriber received, with generous bounds.

mod common;
#[path = "support/heap.rs"]
mod heap;

use common::*;
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The restart tests measure the process's RSS and heap: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Memory after a restart, in bytes: the process's RSS as seen, its RSS once the allocator has
/// returned its free pages (see [`RSS_PER_RESTART_GOAL`]), and its live Rust heap.
#[derive(Clone, Copy)]
struct Memory {
    rss: u64,
    rss_trimmed: u64,
    heap: i64,
    /// Whether the subscriber had caught up with the live edge (else the caches also hold its
    /// backlog, and the sample is not compared).
    caught_up: bool,
}

fn memory() -> Memory {
    Memory {
        rss: heap::resident_bytes(),
        rss_trimmed: heap::resident_bytes_trimmed(),
        heap: heap::live_bytes(),
        caught_up: true,
    }
}

/// Payloads carry their index (8 bytes) and a tail derived from it.
const OBJECT_SIZE: usize = 100;

fn payload(index: u64) -> Vec<u8> {
    let mut data = vec![(index as u8).wrapping_mul(7); OBJECT_SIZE];
    data[..8].copy_from_slice(&index.to_le_bytes());
    data
}

/// What the subscriber received, in order, and its status reports.
#[derive(Default)]
struct Received {
    indices: Mutex<Vec<u64>>,
    /// Payloads whose tail did not match their index.
    corrupt: Mutex<u64>,
    statuses: Mutex<Vec<MoqSubscriptionStatus>>,
    /// Objects delivered after a terminal status (must stay 0).
    after_terminal: Mutex<u64>,
    changed: Condvar,
    /// When a 1 kHz flow started (object `i` was due `i` ms after it), and the longest an
    /// object took from then to its delivery, in ms: how far behind the subscriber fell.
    flow_started: std::sync::OnceLock<Instant>,
    max_lag_ms: std::sync::atomic::AtomicU64,
}

impl Received {
    fn len(&self) -> usize {
        self.indices.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Waits until the subscription reported SUBSCRIBED: objects published from then on are
    /// the ones it promises (with `wait_for_track` it goes live once the relay announced the
    /// track, which on a loaded machine can take longer than a publisher's first objects).
    fn wait_live(&self, timeout: Duration) -> bool {
        self.wait(timeout, |_| {
            self.statuses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&MOQ_SUBSCRIPTION_SUBSCRIBED)
        })
    }

    /// How far behind the flow's live edge the last delivered object `got` is, in ms.
    fn behind_ms(&self, got: &[u64]) -> u64 {
        let published = self
            .flow_started
            .get()
            .map_or(0, |started| started.elapsed().as_millis() as u64);
        published.saturating_sub(got.last().map_or(0, |last| last + 1))
    }

    /// Waits until `done` holds for what was delivered, checking at each delivery and at least
    /// every 100 ms (`done` may also read what no delivery announces, such as a loss counter).
    fn wait(&self, timeout: Duration, mut done: impl FnMut(&[u64]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut indices = self.indices.lock().unwrap_or_else(PoisonError::into_inner);
        while !done(&indices) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            indices = self
                .changed
                .wait_timeout(indices, left.min(Duration::from_millis(100)))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

unsafe extern "C" fn on_object(user_data: *mut c_void, _info: *const MoqObjectInfo, data: *const u8, len: usize) {
    // SAFETY: `user_data` is a kept `Received`; `data` is valid for `len` bytes during the call.
    let received = unsafe { &*(user_data as *const Received) };
    let data = unsafe { std::slice::from_raw_parts(data, len) };
    let index = u64::from_le_bytes(data[..8].try_into().unwrap_or_default());
    if data != payload(index).as_slice() {
        *received.corrupt.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }
    let terminal = received
        .statuses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .any(|status| *status != MOQ_SUBSCRIPTION_SUBSCRIBED);
    if terminal {
        *received.after_terminal.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }
    if let Some(started) = received.flow_started.get() {
        let lag = (started.elapsed().as_millis() as u64).saturating_sub(index);
        received.max_lag_ms.fetch_max(lag, Ordering::Relaxed);
    }
    received
        .indices
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(index);
    received.changed.notify_all();
}

unsafe extern "C" fn on_status(user_data: *mut c_void, status: MoqSubscriptionStatus, _: u32, _: *const c_char) {
    // SAFETY: `user_data` is a kept `Received`.
    let received = unsafe { &*(user_data as *const Received) };
    received
        .statuses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(status);
    let _indices = received.indices.lock().unwrap_or_else(PoisonError::into_inner);
    received.changed.notify_all();
}

/// A client that reconnects by itself, notices a dead relay within ~1-5 s, and trusts the relay
/// by `fingerprint` (or, when `None`, skips verification: the embedded relay's certificate is
/// new at every start).
fn reconnecting_client(url: &str, fingerprint: Option<&str>) -> *mut MoqClient {
    let fingerprint = fingerprint.map(cstr);
    let mut config = config_plain(5000 * time_scale());
    match &fingerprint {
        Some(fingerprint) => config.tls_fingerprint_sha256 = fingerprint.as_ptr(),
        None => config.tls_insecure_skip_verify = true,
    }
    config.reconnect = true;
    config.reconnect_initial_ms = 100;
    config.reconnect_max_ms = 1000;
    // A restarted relay answers the client's next packet (the 1 kHz flow, or a keep-alive) with a
    // stateless reset, so a restart is noticed within about a keep-alive interval; the idle
    // timeout only covers a relay that stays silent. 5 s, not less: on a loaded machine
    // (`scripts/loaded-runs.sh`: stress-ng on both cores beside three test binaries) a 2 s idle
    // timeout expired on live sessions whose keep-alives were starved, and the clients flapped
    // between reconnects without delivering for 30 s.
    config.keep_alive_ms = 1000;
    config.idle_timeout_ms = 5000;
    // SAFETY: a valid config (its strings outlive the call).
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "client: {}", last_error());
    // SAFETY: a valid URL string.
    assert_ok(unsafe { moq_connect(client, cstr(url).as_ptr(), None, std::ptr::null_mut()) });
    client
}

fn subscribe_received(
    client: *mut MoqClient,
    ns: &str,
    track: &str,
    received: &Arc<Received>,
    wait_for_track: bool,
) -> *mut MoqSubscriber {
    let mut options = moq_subscribe_options_default();
    options.wait_for_track = u8::from(wait_for_track);
    // SAFETY: valid strings, options and callbacks; `received` is kept for the process.
    let subscriber = unsafe {
        moq_subscribe_ex(
            client,
            cstr(ns).as_ptr(),
            cstr(track).as_ptr(),
            &options,
            Some(on_object),
            Some(on_status),
            Arc::as_ptr(received) as *mut c_void,
        )
    };
    assert!(!subscriber.is_null(), "subscribe: {}", last_error());
    subscriber
}

/// A publisher thread: publishes at about 1 kHz until stopped; returns the accepted indices.
struct Flow {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(Vec<u64>, u64)>>,
}

impl Flow {
    /// Starts the flow; `received` learns when (to measure how far behind it falls).
    fn start(publisher: *mut MoqPublisher, received: &Received) -> Self {
        let started = Instant::now();
        let _ = received.flow_started.set(started);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = publisher as usize;
        let thread = std::thread::spawn(move || {
            let publisher = handle as *mut MoqPublisher;
            let (mut accepted, mut refused, mut index) = (Vec::new(), 0u64, 0u64);
            let start = started;
            while !flag.load(Ordering::Relaxed) {
                let data = payload(index);
                match publish(publisher, &data, MOQ_DELIVERY_STREAM).0 {
                    MoqResultCode::MOQ_OK => accepted.push(index),
                    MoqResultCode::MOQ_ERROR_NOT_CONNECTED => refused += 1,
                    other => panic!("publish {index}: {other:?}"),
                }
                index += 1;
                // 1 kHz: the next object is due at index ms.
                let due = start + Duration::from_millis(index);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            (accepted, refused)
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops publishing; the indices accepted and how many were refused (not connected).
    fn stop(mut self) -> (Vec<u64>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|thread| thread.join().expect("publisher thread"))
            .unwrap_or_default()
    }
}

/// Checks that every accepted object was delivered exactly once and in order, and prints the
/// figures (accepted, refused while disconnected, delivered, what the subscription counted lost
/// and repaired); a failure names them and the statuses too.
///
/// One exception, the library's contract rather than a margin: a subscriber that fell further
/// behind than the publisher's retention ([`RETENTION_MS`]; only seen with two test binaries
/// beside `stress-ng --cpu 2`, a machine that cannot keep up with the flow) may miss what the
/// publisher no longer holds, and then every object it misses must be counted in `groups_lost`
/// (each object is a group of its own here): delivered once or counted, never silently lost,
/// and still no duplicate and nothing out of order. `groups_lost` may be the larger: a group
/// whose stream was cut before its end (a restart) and could not be fetched again is counted
/// as delivered in part even when its one object had arrived (the library cannot know the rest
/// was empty; seen once: 8 more, one batch of repairs).
fn check_exactly_once(accepted: &[u64], refused: u64, received: &Received, subscriber: *mut MoqSubscriber, what: &str) {
    let settled = |got: &[u64]| {
        let lost = subscriber_stats(subscriber).groups_lost;
        got.last() >= accepted.last() && got.len() as u64 + lost >= accepted.len() as u64
    };
    let complete = received.wait(Duration::from_secs(60) * time_scale(), settled);
    let stats = subscriber_stats(subscriber);
    let lag_ms = received.max_lag_ms.load(Ordering::Relaxed);
    eprintln!(
        "{what}: {} accepted, {refused} refused while disconnected, {} delivered; groups lost {}, repaired {}; \
         the subscriber fell {} ms behind at most",
        accepted.len(),
        received.len(),
        stats.groups_lost,
        stats.groups_repaired,
        lag_ms
    );
    let got = received.indices.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let delivered: std::collections::BTreeSet<u64> = got.iter().copied().collect();
    let missing_all: Vec<u64> = accepted.iter().copied().filter(|i| !delivered.contains(i)).collect();
    let missing: Vec<u64> = missing_all.iter().copied().take(20).collect();
    let duplicates = got.len() - delivered.len();
    let out_of_order = got.windows(2).filter(|pair| pair[0] >= pair[1]).count();
    let beyond_retention = lag_ms >= u64::from(RETENTION_MS);
    let accounted = missing_all.is_empty() || (beyond_retention && missing_all.len() as u64 <= stats.groups_lost);
    if !missing_all.is_empty() && accounted {
        eprintln!(
            "{what}: {} objects not delivered, all counted in groups_lost ({}): the subscriber fell {lag_ms} ms \
             behind, beyond the publisher's {RETENTION_MS} ms retention",
            missing_all.len(),
            stats.groups_lost
        );
    }
    assert!(
        complete && accounted && duplicates == 0 && out_of_order == 0,
        "{what}: {} accepted, {} delivered ({} distinct); first missing {missing:?}; {duplicates} duplicates; \
         {out_of_order} out of order; the subscription counted {} groups lost, {} repaired; statuses {:?}",
        accepted.len(),
        got.len(),
        delivered.len(),
        stats.groups_lost,
        stats.groups_repaired,
        received.statuses.lock().unwrap_or_else(PoisonError::into_inner)
    );
    assert_eq!(
        *received.corrupt.lock().unwrap_or_else(PoisonError::into_inner),
        0,
        "{what}: corrupted payloads"
    );
}

/// Restarts the relay `restarts` times, `every` apart, while the flow runs; returns RSS after
/// each restart, once the subscriber received objects again.
fn restart_loop(restarts: usize, every: Duration, received: &Received, mut restart: impl FnMut()) -> Vec<Memory> {
    let mut samples = Vec::new();
    for round in 0..restarts {
        std::thread::sleep(every);
        restart();
        let restarted = Instant::now();
        let before = received.len();
        assert!(
            received.wait(STALL_BOUND * time_scale(), |got| got.len() > before + 10),
            "round {round}: delivery did not resume within {} s after the restart ({} objects \
             delivered, {before} before it; statuses {:?})",
            STALL_BOUND.as_secs() * u64::from(time_scale()),
            received.len(),
            received.statuses.lock().unwrap_or_else(PoisonError::into_inner)
        );
        eprintln!(
            "restart {}: delivery resumed {} ms after it; the subscriber fell {} ms behind at most so far",
            round + 1,
            restarted.elapsed().as_millis(),
            received.max_lag_ms.load(Ordering::Relaxed)
        );
        // RSS is compared between restarts in the same state, caught up with the live edge:
        // while the subscriber is behind, the caches hold its backlog (on a loaded machine
        // 30 s of it, tens of MiB), which is not what a restart leaves behind. A starved
        // process may not catch up at all (it has to go faster than the 1 kHz flow on the CPU
        // left to it: seen with two test binaries beside `stress-ng --cpu 2`); that is
        // capacity, not a fault, so such a sample is kept out of the comparison, and delivery
        // itself is checked at the end as always.
        let mut caught_up = true;
        if restarts > 3 {
            let catching_up = Instant::now();
            caught_up = received.wait(CATCH_UP_BOUND, |got| received.behind_ms(got) < CAUGHT_UP_MS);
            match caught_up {
                true => eprintln!(
                    "restart {}: caught up {} ms later",
                    round + 1,
                    catching_up.elapsed().as_millis()
                ),
                false => eprintln!(
                    "restart {}: still {} ms behind the live edge {} s later (this sample is not compared)",
                    round + 1,
                    received.behind_ms(&received.indices.lock().unwrap_or_else(PoisonError::into_inner)),
                    CATCH_UP_BOUND.as_secs()
                ),
            }
        }
        samples.push(Memory { caught_up, ..memory() });
    }
    samples
}

/// Behind the live edge by less than this, the subscriber has caught up.
const CAUGHT_UP_MS: u64 = 1000;

/// How long a restart waits for the subscriber to catch up before it samples memory anyway.
const CATCH_UP_BOUND: Duration = Duration::from_secs(60);

/// How long the flow runs before the first restart: until every cache in the process (the
/// publisher's buffer, the subscriber's receive cache, the embedded relay's cache) holds all it
/// will hold, so what memory still gains per restart is what a restart leaves behind, not a
/// cache filling up. Each cache expires a group 30 s after its last access, but moq-net dates
/// accesses and collects only on a sweep every 15 s, so a group stays up to 60 s: the live heap
/// of this test's process grows for the flow's first minute and then levels off (measured:
/// 20 MiB after 2 s, 175 MiB after 58 s, 149 MiB from 60 s on). With a 32 s warm-up that filling
/// showed as +2.1 MiB of live heap "per restart".
const WARM_UP: Duration = Duration::from_secs(65);

/// Lets the flow run until `WARM_UP` has passed since `started`, checking every 2 s that delivery
/// goes on. No wall-clock margin: a starved process may deliver nothing for seconds (seen with
/// three test processes beside `stress-ng --cpu 2`), so each check waits for the next object
/// with the generous bound the other waits use, and a stall past it fails.
fn warm_up(started: Instant, received: &Received, what: &str) {
    while started.elapsed() < WARM_UP {
        std::thread::sleep(Duration::from_secs(2).min(WARM_UP.saturating_sub(started.elapsed())));
        let before = received.len();
        assert!(
            received.wait(STALL_BOUND * time_scale(), |got| got.len() > before),
            "{what}: delivery stopped during the warm-up (nothing for {} s; {before} objects delivered)",
            STALL_BOUND.as_secs() * u64::from(time_scale())
        );
    }
}

/// How long a wait for the flow's next step (live, first objects, resumed after a restart) may
/// take before the test says it stalled. A hang detector, not a figure: each restart prints when
/// delivery resumed (5-10 s after a SIGKILLed standalone relay on an idle machine, up to 22 s
/// seen with two test binaries beside `stress-ng --cpu 2`).
const STALL_BOUND: Duration = Duration::from_secs(60);

/// The goal: RSS grows less than 1 MiB per restart after the second (issue 14), checked with the
/// embedded relay, whose whole life is in this process. Measured on the 2-core machine once the
/// caches have levelled off (see [`WARM_UP`]): -0.1 to +0.2 MiB per restart over 20 restarts
/// ([`EMBEDDED_RESTARTS`]). A standalone relay
/// is another process: there RSS is printed, and the live heap guards against a leak (a
/// session, origin or cache kept per restart is tens of MiB, while what a restart leaves until
/// the caches' expiry, the dead session's last groups, is a few MiB and goes within a minute:
/// the live heap bound is 8 MiB). Both are least-squares slopes over the samples after the
/// second restart: one sample lands anywhere in the caches' churn (+-5 MiB).
///
/// The goal is checked on the RSS read after the allocator returned its free pages
/// ([`heap::resident_bytes_trimmed`]): what the process holds, live data and fragmentation, so a
/// leak or a restart's retained state shows in it. The RSS as seen is printed beside it: it also
/// keeps the free pages of the highest peak so far, which on a loaded machine rises for a while
/// and then levels off (a loaded run at d95b76e: 319.9 to 346.4 MiB over the first 12 restarts,
/// level after, 1,257 KiB "per restart" while the live heap fell 262 KiB per restart): a
/// record of peaks, not growth per restart, and what the host's own allocations reuse.
const RSS_PER_RESTART_GOAL: f64 = 1048576.0;
const HEAP_PER_RESTART_BOUND: f64 = 8.0 * 1048576.0;

/// The least-squares slope of `values` per sample: growth per restart.
fn slope(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in values.iter().enumerate() {
        num += (x as f64 - mean_x) * (y - mean_y);
        den += (x as f64 - mean_x).powi(2);
    }
    num / den
}

/// Behind the live edge by more than this at any time, the subscriber's backlog went through the
/// caches, and RSS keeps what the allocator held for it after it was freed (a loaded run whose
/// subscriber fell 78 s behind ended 160 MiB above its start in RSS and 1 MiB below it in live
/// heap): the RSS goal is then printed, not checked. Restarts of the embedded relay on an idle
/// machine leave the subscriber 0.2-0.7 s behind.
const RSS_GOAL_MAX_LAG_MS: u64 = 2000;

/// Prints RSS and live heap after each restart and checks their growth per restart after the
/// second, when the subscriber had caught up with the live edge at every one of those samples
/// (else the caches also hold its backlog). `rss_goal` is the subscriber's largest lag where the
/// RSS goal applies (`None` where it does not).
fn report_rss(what: &str, samples: &[Memory], rss_goal: Option<u64>) {
    let mib = |bytes: f64| format!("{:.1}", bytes / 1048576.0);
    let rss: Vec<String> = samples.iter().map(|m| mib(m.rss as f64)).collect();
    let trimmed: Vec<String> = samples.iter().map(|m| mib(m.rss_trimmed as f64)).collect();
    let heap: Vec<String> = samples.iter().map(|m| mib(m.heap as f64)).collect();
    eprintln!("{what}: RSS after each restart (MiB): {}", rss.join(", "));
    eprintln!("{what}: RSS with the free pages returned (MiB): {}", trimmed.join(", "));
    eprintln!("{what}: live Rust heap after each restart (MiB): {}", heap.join(", "));
    if samples.len() <= 3 {
        return;
    }
    let compared = &samples[2..];
    if !compared.iter().all(|m| m.caught_up) {
        eprintln!("{what}: growth per restart not compared: the subscriber was behind the live edge when sampled");
        return;
    }
    let per_restart = |value: fn(&Memory) -> f64| slope(&compared.iter().map(value).collect::<Vec<_>>());
    let seen_per_restart = per_restart(|m| m.rss as f64);
    let rss_per_restart = per_restart(|m| m.rss_trimmed as f64);
    let heap_per_restart = per_restart(|m| m.heap as f64);
    eprintln!(
        "{what}: growth per restart after the second (least-squares slope): RSS {:.0} KiB as seen, {:.0} KiB with the free pages returned, live heap {:.0} KiB",
        seen_per_restart / 1024.0,
        rss_per_restart / 1024.0,
        heap_per_restart / 1024.0
    );
    assert!(
        heap_per_restart < HEAP_PER_RESTART_BOUND,
        "{what}: the live heap grows {:.0} KiB per restart after the second (samples {heap:?})",
        heap_per_restart / 1024.0
    );
    match rss_goal {
        Some(lag_ms) if lag_ms > RSS_GOAL_MAX_LAG_MS => eprintln!(
            "{what}: RSS goal not checked: the subscriber fell {lag_ms} ms behind (its backlog's memory stays in RSS)"
        ),
        Some(_) => assert!(
            rss_per_restart < RSS_PER_RESTART_GOAL,
            "{what}: RSS grows {:.0} KiB per restart after the second with the free pages returned (samples {trimmed:?}; as seen {rss:?})",
            rss_per_restart / 1024.0
        ),
        None => {}
    }
}

/// The test publisher's retention: how far behind the subscriber may fall and still get
/// everything (see [`publisher_with_retention`] and [`check_exactly_once`]).
const RETENTION_MS: u32 = 30_000;

fn publisher_with_retention(client: *mut MoqClient, ns: &str, track: &str) -> *mut MoqPublisher {
    let mut options = moq_publisher_options_default();
    // The library's default (30 s), stated because the scenario depends on it: what a restart
    // interrupted is served again from here, and a standalone relay killed with SIGKILL is
    // noticed only by the idle timeout (5 s: its successor's stateless resets carry another
    // key, which QUIC ignores), on the publisher's side and the subscriber's, then both
    // reconnect and the subscription is made again: delivery resumes 5-10 s after such a
    // restart on an idle machine (printed per restart), longer on a loaded one, and the
    // subscriber is that far behind. A retention shorter than that loses objects by design
    // (counted in `groups_lost`); 10 s did on a loaded machine. The buffer still plateaus
    // within the warm-up (1 kHz x 100 B x 30 s = 3 MB of payload).
    options.retention_ms = RETENTION_MS;
    // SAFETY: valid strings and options.
    let publisher = unsafe { moq_create_publisher_opts(client, cstr(ns).as_ptr(), cstr(track).as_ptr(), &options) };
    assert!(!publisher.is_null(), "publisher: {}", last_error());
    publisher
}

fn standalone_restarts(restarts: usize, every: Duration, what: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let mut relay = ExternalRelay::start_with_stable_cert();
    let url = relay.url("https");
    let pub_client = reconnecting_client(&url, Some(&relay.fingerprint));
    let sub_client = reconnecting_client(&url, Some(&relay.fingerprint));
    let publisher = publisher_with_retention(pub_client, "chaos", "objects");
    let received = kept(Arc::new(Received::default()));
    let subscriber = subscribe_received(sub_client, "chaos", "objects", &received, true);
    assert!(
        received.wait_live(STALL_BOUND * time_scale()),
        "{what}: the subscription did not go live"
    );
    let started = Instant::now();
    let flow = Flow::start(publisher, &received);
    assert!(
        received.wait(STALL_BOUND * time_scale(), |got| got.len() > 100),
        "{what}: no delivery before the first restart"
    );
    if restarts > 3 {
        warm_up(started, &received, what);
    }
    let samples = restart_loop(restarts, every, &received, || relay.restart());
    std::thread::sleep(Duration::from_millis(300));
    let (accepted, refused) = flow.stop();
    check_exactly_once(&accepted, refused, &received, subscriber, what);
    report_rss(what, &samples, None);
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn ten_standalone_relay_restarts_two_seconds_apart_lose_nothing() {
    standalone_restarts(10, Duration::from_secs(2), "standalone relay, 10 restarts 2 s apart");
}

#[test]
fn two_standalone_relay_restarts_300_ms_apart_lose_nothing() {
    standalone_restarts(
        2,
        Duration::from_millis(300),
        "standalone relay, 2 restarts 300 ms apart",
    );
}

/// The ten restarts, twice over: the RSS goal is checked on the slope over the samples
/// after the second restart, and the caches' churn moves single samples by +-3 MiB in cycles of
/// about 20 restarts (a 40-restart diagnostic run: RSS 224-233 MiB, no trend), so a slope over
/// 8 samples ranged from -0.7 to +0.8 MiB per restart and one over 18 from -0.1 to +0.2.
const EMBEDDED_RESTARTS: usize = 20;

#[test]
fn twenty_embedded_relay_restarts_two_seconds_apart_lose_nothing() {
    let what = "embedded relay, 20 restarts 2 s apart";
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let mut relay = TestRelay::start();
    let port: u16 = relay
        .url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let url = relay.url.clone();
    let pub_client = reconnecting_client(&url, None);
    let sub_client = reconnecting_client(&url, None);
    let publisher = publisher_with_retention(pub_client, "chaos", "embedded");
    let received = kept(Arc::new(Received::default()));
    let subscriber = subscribe_received(sub_client, "chaos", "embedded", &received, true);
    assert!(
        received.wait_live(STALL_BOUND * time_scale()),
        "{what}: the subscription did not go live"
    );
    let started = Instant::now();
    let flow = Flow::start(publisher, &received);
    assert!(
        received.wait(STALL_BOUND * time_scale(), |got| got.len() > 100),
        "{what}: no delivery before the first restart"
    );
    warm_up(started, &received, what);
    let bind = CString::new(format!("127.0.0.1:{port}")).unwrap();
    let samples = restart_loop(EMBEDDED_RESTARTS, Duration::from_secs(2), &received, || {
        relay.stop();
        // SAFETY: a valid bind string.
        relay.relay = unsafe { moq_relay_start(bind.as_ptr()) };
        assert!(!relay.relay.is_null(), "restart on port {port}: {}", last_error());
    });
    std::thread::sleep(Duration::from_millis(300));
    let (accepted, refused) = flow.stop();
    check_exactly_once(&accepted, refused, &received, subscriber, what);
    report_rss(what, &samples, Some(received.max_lag_ms.load(Ordering::Relaxed)));
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

/// A burst of `objects` (one group each), then `moq_publisher_finish` at once; the publishing
/// client is destroyed right after (`destroy`) or kept alive. ENDED must come after the last
/// object delivered, and nothing after it; with the publisher alive everything arrives (what
/// the relay cancelled on the way is fetched again); with it destroyed, every object not
/// delivered is counted in `groups_lost` (its group's).
fn burst_then_finish(objects: u64, destroy: bool) {
    let relay = ExternalRelay::start();
    let url = relay.url("https");
    let pub_client = reconnecting_client(&url, Some(&relay.fingerprint));
    let sub_client = reconnecting_client(&url, Some(&relay.fingerprint));
    let publisher = publisher(pub_client, "chaos", "finish");
    let received = kept(Arc::new(Received::default()));
    let subscriber = subscribe_received(sub_client, "chaos", "finish", &received, false);
    let statuses = &received.statuses;
    assert!(
        wait_until(Duration::from_secs(10) * time_scale(), || !statuses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()),
        "no SUBSCRIBED"
    );
    for index in 0..objects {
        assert_eq!(
            publish(publisher, &payload(index), MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
    }
    assert_ok(moq_publisher_finish(publisher));
    if destroy {
        moq_publisher_destroy(publisher);
        moq_client_destroy(pub_client);
    }
    let ended = received.wait(Duration::from_secs(60) * time_scale(), |_| {
        received_terminal(&received.statuses)
    });
    let got = received.indices.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let stats = subscriber_stats(subscriber);
    let what = format!(
        "burst of {objects} then finish, publishing client {}",
        if destroy { "destroyed right after" } else { "kept alive" }
    );
    eprintln!(
        "{what}: {} delivered, groups lost {}, repaired {}, statuses {:?}",
        got.len(),
        stats.groups_lost,
        stats.groups_repaired,
        received.statuses.lock().unwrap_or_else(PoisonError::into_inner)
    );
    assert!(ended, "{what}: no terminal status");
    let last = *received
        .statuses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .last()
        .unwrap();
    assert_eq!(
        *received.after_terminal.lock().unwrap_or_else(PoisonError::into_inner),
        0,
        "{what}: objects after the terminal status"
    );
    assert!(got.windows(2).all(|pair| pair[0] < pair[1]), "{what}: in order, once");
    if destroy {
        // The finish and the groups still on their way die with the publishing client's
        // connection when the relay did not get them first: then the track is gone without an
        // end, which the subscriber learns as NOT_FOUND once no publisher announces it.
        assert!(
            last == MOQ_SUBSCRIPTION_ENDED || last == MOQ_SUBSCRIPTION_NOT_FOUND,
            "{what}: ENDED, or NOT_FOUND when the finish never reached the relay; got {last:?}"
        );
    } else {
        assert_eq!(last, MOQ_SUBSCRIPTION_ENDED, "{what}: ENDED");
        assert_eq!(
            got.len() as u64,
            objects,
            "{what}: with the publisher alive everything arrives"
        );
    }
    if last == MOQ_SUBSCRIPTION_ENDED {
        // Each object is a group of its own. A group whose stream the relay reset after its one
        // object arrived is delivered and counted lost too (its end never came: nothing says it
        // had no more), so the count covers at least every object not delivered, and at most
        // every group.
        let delivered = got.len() as u64;
        assert!(
            delivered + stats.groups_lost >= objects && stats.groups_lost <= objects,
            "{what}: every object delivered or counted lost before ENDED: {delivered} delivered, {} lost, of {objects}",
            stats.groups_lost
        );
    }
    moq_subscriber_destroy(subscriber);
    moq_client_destroy(sub_client);
    if !destroy {
        moq_publisher_destroy(publisher);
        moq_client_destroy(pub_client);
    }
}

fn received_terminal(statuses: &Mutex<Vec<MoqSubscriptionStatus>>) -> bool {
    statuses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .any(|status| *status != MOQ_SUBSCRIPTION_SUBSCRIBED)
}

#[test]
fn burst_then_finish_with_the_publisher_kept_alive_delivers_everything_then_ended() {
    burst_then_finish(5_000, false);
}

#[test]
fn burst_then_finish_with_the_publisher_destroyed_ends_after_the_last_object() {
    burst_then_finish(5_000, true);
}
