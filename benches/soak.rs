//! Soak benchmark (issue 7): `cargo bench --bench soak`. A publisher and subscribers on an
//! embedded relay (loopback, port 0) for 10 minutes (`MOQ_SOAK_SECS` shortens it) at 1 kHz of
//! 1 KiB objects, with a relay restart on the same port every 60 s (first at 45 s; the clients
//! have `reconnect` on and resume by themselves) and subscriber churn (a second subscriber is
//! destroyed and recreated every 10 s). Prints RSS and the live Rust heap every 30 s (the heap
//! tells a leak from what the allocator keeps) and exits non-zero when RSS grows by more than 5%
//! after the first minute, or when an object of the reliable stream is corrupted, duplicated,
//! reordered or lost within a live subscription.
//!
//! "Lost", precisely. Every publish attempt gets the next sequence number (in the payload, with
//! a checksum). Only objects the publisher was told were accepted (`MOQ_OK`) are owed; those
//! rejected with NOT_CONNECTED while its client is reconnecting are counted, never owed. Each
//! subscriber must deliver sequences in increasing order without duplicates, always (also
//! across a resume: it continues after the last object it delivered). Between two consecutive
//! deliveries `a < b` of one subscriber, every accepted sequence in between is:
//! - a LOSS (failure) when no relay restart happened between them, or when it was accepted
//!   after the restart had healed (publisher CONNECTED again and the first subscriber
//!   SUBSCRIBED again);
//! - otherwise "lost in a reconnect window": accepted while the session was going down or
//!   coming back (counted and reported, not a failure: an object handed to a dying session).
//!
//! At the end the publisher stops and the first subscriber must deliver every accepted object
//! up to the last one within 15 s (the same rule applies to the tail). The churned subscriber is
//! checked the same way within each of its lifetimes (from its first object to its last).
//!
//! The restarted relay has a new self-signed certificate, so the clients skip certificate
//! verification (loopback only).

#[path = "../tests/support/heap.rs"]
mod heap;

use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

const OBJECT_SIZE: usize = 1024;
const HEADER: usize = 20;
const ACCEPTED: u8 = 1;
const REJECTED: u8 = 2;
const FAILED: u8 = 3;

struct Shared {
    start: Instant,
    /// Per sequence: 0 not yet published, ACCEPTED, REJECTED (NOT_CONNECTED) or FAILED.
    status: Vec<AtomicU8>,
    /// Sequences attempted so far.
    next: AtomicU64,
    /// Relay restarts begun.
    epoch: AtomicU32,
    /// Per epoch: the first sequence published after it healed (u64::MAX until then).
    healed_at: Mutex<Vec<u64>>,
    pub_connected_epoch: AtomicU32,
    sub_subscribed_epoch: AtomicU32,
    delivered: AtomicU64,
    window_lost: AtomicU64,
    rejected: AtomicU64,
    failures: Mutex<Vec<String>>,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED.get().expect("shared state")
}

fn fail(message: String) {
    let mut failures = shared().failures.lock().unwrap_or_else(PoisonError::into_inner);
    if failures.len() < 50 {
        eprintln!(
            "SOAK FAILURE at {:.1} s: {message}",
            shared().start.elapsed().as_secs_f64()
        );
        failures.push(message);
    }
}

fn checksum(seq: u64, body: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in seq.to_le_bytes().iter().chain(body) {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
    }
    hash
}

/// `OBJECT_SIZE` bytes: magic, sequence, checksum of the sequence and the body, body.
fn payload(seq: u64) -> Vec<u8> {
    let mut out = vec![0u8; OBJECT_SIZE];
    let mut x = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for byte in &mut out[HEADER..] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    let sum = checksum(seq, &out[HEADER..]);
    out[..4].copy_from_slice(b"SOAK");
    out[4..12].copy_from_slice(&seq.to_le_bytes());
    out[12..20].copy_from_slice(&sum.to_le_bytes());
    out
}

fn verify(data: &[u8]) -> Result<u64, String> {
    if data.len() != OBJECT_SIZE || &data[..4] != b"SOAK" {
        return Err(format!("{} bytes without the header", data.len()));
    }
    let seq = u64::from_le_bytes(data[4..12].try_into().unwrap());
    if checksum(seq, &data[HEADER..]) != u64::from_le_bytes(data[12..20].try_into().unwrap()) {
        return Err(format!("sequence {seq}: checksum mismatch"));
    }
    Ok(seq)
}

/// One subscriber's view: checks order and classifies gaps (see the file's doc).
struct Tracker {
    name: String,
    last: Mutex<Option<(u64, u32)>>,
    count: AtomicU64,
}

impl Tracker {
    fn new(name: String) -> Arc<Self> {
        Arc::new(Self {
            name,
            last: Mutex::new(None),
            count: AtomicU64::new(0),
        })
    }

    /// Records delivery of `seq` (or, with `tail`, checks everything accepted before `seq`).
    fn deliver(&self, seq: u64, tail: bool) {
        let s = shared();
        let epoch = s.epoch.load(Relaxed);
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((previous, previous_epoch)) = *last {
            if seq <= previous && !tail {
                fail(format!(
                    "{}: sequence {seq} after {previous} (duplicate or reordered)",
                    self.name
                ));
                return;
            }
            let healed = s.healed_at.lock().unwrap_or_else(PoisonError::into_inner)[epoch as usize];
            let (mut lost, mut window) = (Vec::new(), 0u64);
            for gap in previous + 1..seq {
                if s.status[gap as usize].load(Relaxed) != ACCEPTED {
                    continue;
                }
                if previous_epoch == epoch || gap >= healed {
                    lost.push(gap);
                } else {
                    window += 1;
                }
            }
            s.window_lost.fetch_add(window, Relaxed);
            if !lost.is_empty() {
                let (first, n) = (lost[0], lost.len());
                fail(format!(
                    "{}: {n} accepted objects lost between {previous} and {seq} (first {first}; epochs {previous_epoch}..{epoch}, healed at {healed})",
                    self.name
                ));
            }
        }
        if !tail {
            *last = Some((seq, epoch));
            self.count.fetch_add(1, Relaxed);
            s.delivered.fetch_add(1, Relaxed);
        }
    }
}

unsafe extern "C" fn on_object(user_data: *mut c_void, _: *const MoqObjectInfo, data: *const u8, len: usize) {
    // SAFETY: `user_data` is the subscriber's `Tracker`, alive until its destroy returned.
    let tracker = unsafe { &*(user_data as *const Tracker) };
    let data = match len {
        0 => &[][..],
        // SAFETY: the library passes `len` readable bytes.
        _ => unsafe { std::slice::from_raw_parts(data, len) },
    };
    match verify(data) {
        Ok(seq) => tracker.deliver(seq, false),
        Err(err) => fail(format!("{}: corrupt object: {err}", tracker.name)),
    }
}

unsafe extern "C" fn on_status(user_data: *mut c_void, status: MoqSubscriptionStatus, _: u32, message: *const c_char) {
    // SAFETY: as in `on_object`.
    let tracker = unsafe { &*(user_data as *const Tracker) };
    if status == MOQ_SUBSCRIPTION_SUBSCRIBED {
        if tracker.name == "subscriber 1" {
            shared()
                .sub_subscribed_epoch
                .store(shared().epoch.load(Relaxed), Relaxed);
            heal_check();
        }
    } else {
        // SAFETY: `message` is a NUL-terminated string valid during the call.
        let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
        fail(format!(
            "{}: subscription ended with status {status}: {text}",
            tracker.name
        ));
    }
}

unsafe extern "C" fn on_pub_state(_: *mut c_void, state: MoqConnectionState) {
    if state == MoqConnectionState::MOQ_STATE_CONNECTED {
        shared()
            .pub_connected_epoch
            .store(shared().epoch.load(Relaxed), Relaxed);
        heal_check();
    }
}

/// Marks the current epoch healed once the publisher is connected and subscriber 1 subscribed.
fn heal_check() {
    let s = shared();
    let epoch = s.epoch.load(Relaxed);
    if s.pub_connected_epoch.load(Relaxed) == epoch && s.sub_subscribed_epoch.load(Relaxed) == epoch {
        let mut healed = s.healed_at.lock().unwrap_or_else(PoisonError::into_inner);
        if healed[epoch as usize] == u64::MAX {
            healed[epoch as usize] = s.next.load(Relaxed);
            eprintln!(
                "soak: {:.1} s: epoch {epoch} healed at sequence {}",
                s.start.elapsed().as_secs_f64(),
                healed[epoch as usize]
            );
        }
    }
}

/// Publishes one object per millisecond (catching up after a stall) until `stop`.
fn publish_loop(publisher: usize, stop: &AtomicBool) {
    let s = shared();
    let mut due = Instant::now();
    while !stop.load(Relaxed) {
        let seq = s.next.load(Relaxed);
        if seq as usize >= s.status.len() {
            break;
        }
        let data = payload(seq);
        // SAFETY: `data` is valid for its length.
        let result = unsafe {
            moq_publish_data(
                publisher as *mut MoqPublisher,
                data.as_ptr(),
                data.len(),
                MOQ_DELIVERY_STREAM,
            )
        };
        let code = result.code;
        moq_free_str(result.message);
        let status = match code {
            MoqResultCode::MOQ_OK => ACCEPTED,
            MoqResultCode::MOQ_ERROR_NOT_CONNECTED => REJECTED,
            other => {
                fail(format!("publish {seq}: {other:?}"));
                FAILED
            }
        };
        if status == REJECTED {
            s.rejected.fetch_add(1, Relaxed);
        }
        s.status[seq as usize].store(status, Relaxed);
        s.next.store(seq + 1, Relaxed);
        due += Duration::from_millis(1);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > Duration::from_secs(1) {
            due = now; // do not burst more than a second's worth after a stall
        }
    }
}

fn cstr(text: &str) -> CString {
    CString::new(text).unwrap()
}

fn last_error() -> String {
    let ptr = moq_last_error();
    match ptr.is_null() {
        true => String::new(),
        // SAFETY: a NUL-terminated string owned by the library, valid until the next failure.
        false => unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned(),
    }
}

fn rss_mib() -> f64 {
    heap::resident_bytes() as f64 / 1048576.0
}

fn start_relay(bind: &str) -> *mut MoqRelay {
    let bind = cstr(bind);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // SAFETY: a valid NUL-terminated string.
        let relay = unsafe { moq_relay_start(bind.as_ptr()) };
        if !relay.is_null() {
            return relay;
        }
        if Instant::now() > deadline {
            eprintln!("soak: relay start on {bind:?} failed: {}", last_error());
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn client(url: &CString, callback: MoqConnectionCallback) -> *mut MoqClient {
    // SAFETY: all-zero is the documented default of every field.
    let mut config: MoqClientConfig = unsafe { std::mem::zeroed() };
    config.struct_size = std::mem::size_of::<MoqClientConfig>() as u32;
    config.connect_timeout_ms = 5000;
    config.tls_insecure_skip_verify = true;
    config.reconnect = true;
    config.reconnect_initial_ms = 100;
    config.reconnect_max_ms = 1000;
    // SAFETY: a valid config; the URL is a valid string; the callback ignores its user_data.
    let client = unsafe { moq_client_create_ex(&config) };
    let result = unsafe { moq_connect(client, url.as_ptr(), callback, std::ptr::null_mut()) };
    if client.is_null() || result.code != MoqResultCode::MOQ_OK {
        eprintln!("soak: client: {}", last_error());
        std::process::exit(1);
    }
    client
}

fn subscribe(client: *mut MoqClient, tracker: &Arc<Tracker>) -> *mut MoqSubscriber {
    let options = moq_subscribe_options_default();
    let ud = Arc::as_ptr(tracker) as *mut c_void;
    // SAFETY: valid strings and options; the tracker outlives the subscription.
    let sub = unsafe {
        moq_subscribe_ex(
            client,
            cstr("soak").as_ptr(),
            cstr("t").as_ptr(),
            &options,
            Some(on_object),
            Some(on_status),
            ud,
        )
    };
    if sub.is_null() {
        fail(format!("{}: subscribe failed: {}", tracker.name, last_error()));
    }
    sub
}

fn client_stats(client: *mut MoqClient) -> MoqStats {
    let mut stats = MoqStats {
        struct_size: std::mem::size_of::<MoqStats>() as u32,
        ..Default::default()
    };
    // SAFETY: `stats` is writable and sized.
    let result = unsafe { moq_client_stats(client, &mut stats) };
    moq_free_str(result.message);
    stats
}

fn main() {
    let secs = std::env::var("MOQ_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600u64);
    let interval = (secs / 10).clamp(1, 30);
    let baseline_at = (secs / 5).clamp(1, 60);
    let capacity = (secs as usize + 30) * 1100;
    let _ = SHARED.set(Shared {
        start: Instant::now(),
        status: (0..capacity).map(|_| AtomicU8::new(0)).collect(),
        next: AtomicU64::new(0),
        epoch: AtomicU32::new(0),
        // Epoch 0 (the first session) is healed from the start.
        healed_at: Mutex::new(
            std::iter::once(0)
                .chain(std::iter::repeat_n(u64::MAX, secs as usize / 60 + 2))
                .collect(),
        ),
        pub_connected_epoch: AtomicU32::new(0),
        sub_subscribed_epoch: AtomicU32::new(0),
        delivered: AtomicU64::new(0),
        window_lost: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        failures: Mutex::default(),
    });
    let s = shared();
    println!(
        "soak: {secs} s at 1 kHz x {OBJECT_SIZE} B, relay restart every 60 s (from 45 s), subscriber churn every 10 s"
    );

    let mut relay = start_relay("127.0.0.1:0");
    // SAFETY: the relay is live; its URL is a NUL-terminated string it owns.
    let url = unsafe { CStr::from_ptr(moq_relay_url(relay)) }.to_owned();
    let port = url
        .to_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let pub_client = client(&url, Some(on_pub_state));
    let sub_client = client(&url, None);
    // SAFETY: valid strings.
    let publisher = unsafe { moq_create_publisher(pub_client, cstr("soak").as_ptr(), cstr("t").as_ptr()) };
    assert!(!publisher.is_null(), "publisher: {}", last_error());
    let first = Tracker::new("subscriber 1".into());
    let sub1 = subscribe(sub_client, &first);
    std::thread::sleep(Duration::from_millis(300));

    let stop = Arc::new(AtomicBool::new(false));
    let publishing = {
        let (stop, publisher) = (stop.clone(), publisher as usize);
        std::thread::spawn(move || publish_loop(publisher, &stop))
    };
    let began = Instant::now();
    let mut second: Option<(*mut MoqSubscriber, Arc<Tracker>)> = None;
    let (mut incarnations, mut rss, mut heap) = (0u32, Vec::<(u64, f64)>::new(), Vec::<(u64, f64)>::new());
    let mut tick = 0u64;
    while tick < secs * 10 {
        tick += 1;
        let due = began + Duration::from_millis(tick * 100);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let (t, whole) = (tick / 10, tick.is_multiple_of(10));
        if whole && t % 10 == 5 {
            if let Some((sub, tracker)) = second.take() {
                moq_subscriber_destroy(sub);
                drop(tracker); // no callback runs after the destroy returned
            }
            incarnations += 1;
            let tracker = Tracker::new(format!("subscriber 2 #{incarnations}"));
            second = Some((subscribe(sub_client, &tracker), tracker));
        }
        if whole && t % 60 == 45 && t + 15 <= secs {
            let epoch = s.epoch.fetch_add(1, Relaxed) + 1;
            moq_relay_stop(relay);
            relay = start_relay(&format!("127.0.0.1:{port}"));
            println!("soak: {t} s: relay restarted on port {port} (epoch {epoch})");
        }
        if whole && (t.is_multiple_of(interval) || t == baseline_at) {
            let mib = rss_mib();
            rss.push((t, mib));
            let heap_mib = heap::live_bytes() as f64 / 1048576.0;
            heap.push((t, heap_mib));
            let (p, c) = (client_stats(pub_client), client_stats(sub_client));
            println!(
                "soak: {t:>4} s  RSS {mib:7.1} MiB  live heap {heap_mib:7.1} MiB  published {} (rejected {})  subscriber 1 got {}  delivered {}  window-lost {}  \
                 reconnects pub {} sub {}  pub sent {} buffered {} B  sub received {} too-late {} queue-full {}",
                s.next.load(Relaxed),
                s.rejected.load(Relaxed),
                first.count.load(Relaxed),
                s.delivered.load(Relaxed),
                s.window_lost.load(Relaxed),
                p.reconnects,
                c.reconnects,
                p.objects_sent,
                p.publish_buffered_bytes,
                c.objects_received,
                c.objects_dropped_too_late,
                c.objects_dropped_queue_full,
            );
        }
    }
    stop.store(true, Relaxed);
    publishing.join().expect("publisher thread");
    let last_accepted = (0..s.next.load(Relaxed))
        .rev()
        .find(|seq| s.status[*seq as usize].load(Relaxed) == ACCEPTED);
    if let Some(last) = last_accepted {
        let deadline = Instant::now() + Duration::from_secs(15);
        while first.last.lock().unwrap().is_none_or(|(seq, _)| seq < last) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        first.deliver(last + 1, true);
    }
    if let Some((sub, tracker)) = second.take() {
        moq_subscriber_destroy(sub);
        drop(tracker);
    }
    moq_subscriber_destroy(sub1);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
    moq_relay_stop(relay);

    let baseline = rss.iter().find(|(t, _)| *t >= baseline_at).map_or(0.0, |r| r.1);
    let last = rss.last().map_or(0.0, |r| r.1);
    let peak = rss
        .iter()
        .filter(|(t, _)| *t >= baseline_at)
        .map(|r| r.1)
        .fold(0.0, f64::max);
    let growth = if baseline > 0.0 {
        (last / baseline - 1.0) * 100.0
    } else {
        0.0
    };
    let series = |samples: &[(u64, f64)]| {
        let points: Vec<String> = samples.iter().map(|(t, m)| format!("{t}s={m:.1}")).collect();
        points.join(" ")
    };
    println!("soak: RSS series (MiB): {}", series(&rss));
    println!("soak: live Rust heap series (MiB): {}", series(&heap));
    println!(
        "soak: published {} (accepted {}, rejected NOT_CONNECTED {}), delivered {} (subscriber 1: {}), lost in reconnect windows {}, restarts {}, churned subscribers {incarnations}",
        s.next.load(Relaxed),
        s.status.iter().filter(|st| st.load(Relaxed) == ACCEPTED).count(),
        s.rejected.load(Relaxed),
        s.delivered.load(Relaxed),
        first.count.load(Relaxed),
        s.window_lost.load(Relaxed),
        s.epoch.load(Relaxed)
    );
    println!("BENCH soak rss_baseline_mib={baseline:.1} rss_final_mib={last:.1} rss_peak_mib={peak:.1} growth_pct={growth:.2}");
    if growth > 5.0 {
        fail(format!(
            "RSS grew {growth:.1}% after {baseline_at} s ({baseline:.1} -> {last:.1} MiB)"
        ));
    }
    let failures = s.failures.lock().unwrap().len();
    if failures > 0 {
        println!("soak: FAILED ({failures} failures)");
        std::process::exit(1);
    }
    println!("soak: passed");
}
