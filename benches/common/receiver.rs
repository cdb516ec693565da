//! The receive side every stack shares: verifies each object, counts it once, and records its
//! one-way latency. The C API calls it from its object callback, the raw stack from its reader
//! task, so both pay exactly the same for it.

use super::clock;
use super::payload::{self, WARM_UP};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Where a subscription's objects go, whichever stack delivers them.
pub trait Sink: Send + Sync + 'static {
    /// Takes one received object.
    fn on_object(&self, bytes: &[u8]);
    /// Takes one received object as moq-net hands it over (the raw readers call this).
    fn on_bytes(&self, bytes: bytes::Bytes) {
        self.on_object(&bytes);
    }
    /// The subscription reported itself live.
    fn on_subscribed(&self) {}
}

impl Sink for Receiver {
    fn on_object(&self, bytes: &[u8]) {
        Receiver::on_object(self, bytes);
    }

    fn on_subscribed(&self) {
        self.mark_subscribed();
    }
}

/// Receives the objects of one measured run.
pub struct Receiver {
    expected: u64,
    delivered: AtomicU64,
    /// How many leading sequence numbers (0, 1, 2, ...) all arrived.
    contiguous: AtomicU64,
    warmed: AtomicBool,
    /// The newest warm-up sequence number received (0: none).
    last_warm_up: AtomicU64,
    subscribed: AtomicBool,
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    /// One bit per measured sequence number.
    seen: Vec<u64>,
    duplicates: u64,
    corrupt: u64,
    out_of_range: u64,
    bytes: u64,
    first_ns: Option<u64>,
    last_ns: u64,
    latencies_ns: Vec<u64>,
}

/// What a run delivered.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub expected: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub corrupt: u64,
    pub out_of_range: u64,
    pub bytes: u64,
    pub first_ns: Option<u64>,
    /// When the last measured object arrived (clock nanoseconds).
    pub last_ns: u64,
    pub latencies_ns: Vec<u64>,
}

impl Summary {
    /// Measured objects that never arrived.
    pub fn missing(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }

    /// Whether every object arrived once and intact.
    pub fn complete(&self) -> bool {
        self.missing() == 0 && self.duplicates == 0 && self.corrupt == 0 && self.out_of_range == 0
    }
}

impl Receiver {
    /// A receiver for sequence numbers `0..expected`.
    pub fn new(expected: u64) -> Arc<Self> {
        let log = Log {
            seen: vec![0; expected.div_ceil(64) as usize],
            latencies_ns: Vec::with_capacity(expected as usize),
            ..Log::default()
        };
        Arc::new(Self {
            expected,
            delivered: AtomicU64::new(0),
            contiguous: AtomicU64::new(0),
            warmed: AtomicBool::new(false),
            last_warm_up: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
            log: Mutex::new(log),
        })
    }

    /// Takes one received object.
    pub fn on_object(&self, bytes: &[u8]) {
        let now = clock::now_ns();
        let stamp = match payload::verify(bytes) {
            Ok(stamp) => stamp,
            Err(_) => {
                self.lock().corrupt += 1;
                return;
            }
        };
        if stamp.seq & WARM_UP != 0 {
            self.last_warm_up.fetch_max(stamp.seq, Ordering::AcqRel);
            self.warmed.store(true, Ordering::Release);
            return;
        }
        let mut log = self.lock();
        if stamp.seq >= self.expected {
            log.out_of_range += 1;
            return;
        }
        let (word, bit) = ((stamp.seq / 64) as usize, 1u64 << (stamp.seq % 64));
        if log.seen[word] & bit != 0 {
            log.duplicates += 1;
            return;
        }
        log.seen[word] |= bit;
        log.bytes += bytes.len() as u64;
        log.first_ns.get_or_insert(now);
        log.last_ns = now;
        log.latencies_ns.push(now.saturating_sub(stamp.sent_ns));
        let mut prefix = self.contiguous.load(Ordering::Relaxed);
        while prefix < self.expected && log.seen[(prefix / 64) as usize] & (1 << (prefix % 64)) != 0 {
            prefix += 1;
        }
        self.contiguous.store(prefix, Ordering::Release);
        drop(log);
        self.delivered.fetch_add(1, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the subscription reported itself live.
    pub fn mark_subscribed(&self) {
        self.subscribed.store(true, Ordering::Release);
    }

    /// Whether the subscription reported itself live.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// Whether a warm-up object arrived (the whole path is live).
    pub fn is_warm(&self) -> bool {
        self.warmed.load(Ordering::Acquire)
    }

    /// The newest warm-up sequence number received (0: none yet).
    pub fn last_warm_up(&self) -> u64 {
        self.last_warm_up.load(Ordering::Acquire)
    }

    /// Measured objects delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Acquire)
    }

    /// How many leading sequence numbers all arrived (what an in-order reader has consumed).
    pub fn contiguous(&self) -> u64 {
        self.contiguous.load(Ordering::Acquire)
    }

    /// Waits until `count` measured objects arrived or `timeout` passed; whether they did.
    pub fn wait_delivered(&self, count: u64, timeout: Duration) -> bool {
        wait_until(timeout, || self.delivered() >= count)
    }

    /// A copy of what arrived so far.
    pub fn summary(&self) -> Summary {
        let log = self.lock();
        Summary {
            expected: self.expected,
            delivered: self.delivered(),
            duplicates: log.duplicates,
            corrupt: log.corrupt,
            out_of_range: log.out_of_range,
            bytes: log.bytes,
            first_ns: log.first_ns,
            last_ns: log.last_ns,
            latencies_ns: log.latencies_ns.clone(),
        }
    }
}

/// Polls `done` every 200 µs until it holds or `timeout` passed; whether it held.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}
