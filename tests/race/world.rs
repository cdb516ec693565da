//! The race test's shared state: handle tables, counters, failure recording, payloads.

use crate::common::*;
use moq_ffi::ffi::*;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;
use MoqResultCode::*;

pub(crate) const MAX_CLIENTS: usize = 8;
/// Clients the workers never destroy (the teardown does).
pub(crate) const STICKY_CLIENTS: usize = 3;
pub(crate) const MAX_PUBLISHERS: usize = 24;
pub(crate) const MAX_SUBSCRIBERS: usize = 64;
pub(crate) const NONE: u64 = u64::MAX;

pub(crate) fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! { static RNG: Cell<u64> = const { Cell::new(0) }; }

/// A uniform number below `n` from this thread's xorshift generator.
pub(crate) fn rand(n: usize) -> usize {
    RNG.with(|rng| {
        let mut x = rng.get();
        if x == 0 {
            x = (world().start.elapsed().as_nanos() as u64) ^ (&x as *const u64 as u64) | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rng.set(x);
        (x % n.max(1) as u64) as usize
    })
}

// ── Payloads ────────────────────────────────────────────────────────────────────────────────

pub(crate) const MAGIC: u32 = 0x5241_4345;
pub(crate) const HEADER: usize = 28;

pub(crate) fn fnv(bytes: &[u8], mut hash: u64) -> u64 {
    for byte in bytes {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
    }
    hash
}

pub(crate) fn checksum(publisher: u32, seq: u64, body: &[u8]) -> u64 {
    let hash = fnv(&publisher.to_le_bytes(), 0xcbf2_9ce4_8422_2325);
    let hash = fnv(&(body.len() as u32).to_le_bytes(), fnv(&seq.to_le_bytes(), hash));
    fnv(body, hash)
}

/// `magic, publisher id, sequence, body length, checksum` (little endian), then the body.
pub(crate) fn payload(publisher: u32, seq: u64, body_len: usize) -> Vec<u8> {
    let mut x = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(publisher) | 1;
    let body: Vec<u8> = (0..body_len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut out = Vec::with_capacity(HEADER + body_len);
    out.extend(MAGIC.to_le_bytes());
    out.extend(publisher.to_le_bytes());
    out.extend(seq.to_le_bytes());
    out.extend((body_len as u32).to_le_bytes());
    out.extend(checksum(publisher, seq, &body).to_le_bytes());
    out.extend(body);
    out
}

/// The publisher id and sequence of an intact payload.
pub(crate) fn verify(data: &[u8]) -> Result<(u32, u64), String> {
    let word = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
    let long = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().unwrap());
    if data.len() < HEADER || word(0) != MAGIC {
        return Err(format!("{} bytes without the header", data.len()));
    }
    let (publisher, seq, len) = (word(4), long(8), word(16) as usize);
    if HEADER + len != data.len() {
        return Err(format!(
            "publisher {publisher} seq {seq}: length {len} but {} bytes",
            data.len()
        ));
    }
    if checksum(publisher, seq, &data[HEADER..]) != long(20) {
        return Err(format!("publisher {publisher} seq {seq}: checksum mismatch"));
    }
    Ok((publisher, seq))
}

/// Borrowed bytes of a callback or event (`data` may be NULL or dangling when `len` is 0).
///
/// # Safety
/// `data` points to `len` readable bytes when `len` > 0.
pub(crate) unsafe fn bytes<'a>(data: *const u8, len: usize) -> &'a [u8] {
    if len == 0 || data.is_null() {
        return &[];
    }
    // SAFETY: forwarded from the caller.
    unsafe { std::slice::from_raw_parts(data, len) }
}

// ── Shared state ────────────────────────────────────────────────────────────────────────────

#[derive(Clone)]
pub(crate) struct ClientEntry {
    pub(crate) handle: usize,
    pub(crate) id: u32,
    pub(crate) ctx: Arc<u32>,
    /// Held while a poll batch is read (its pointers die at the next poll or the destroy).
    pub(crate) poll: Arc<Mutex<()>>,
    /// Never destroyed by the workers.
    pub(crate) sticky: bool,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Mode {
    Data,
    Groups,
    Datagram,
    Catalog,
}

#[derive(Clone)]
pub(crate) struct PubEntry {
    pub(crate) handle: usize,
    pub(crate) id: u32,
    pub(crate) ns: CString,
    pub(crate) track: CString,
    pub(crate) mode: Mode,
    /// Next sequence, held while one thread publishes (a group is built by one thread).
    pub(crate) seq: Arc<Mutex<u64>>,
}

/// A callback subscriber's `user_data`.
pub(crate) struct SubCtx {
    pub(crate) publisher: u32,
    pub(crate) ordered: bool,
    pub(crate) handle: AtomicUsize,
    pub(crate) last: AtomicU64,
}

pub(crate) struct SubEntry {
    pub(crate) handle: usize,
    pub(crate) ctx: Option<Arc<SubCtx>>,
}

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Client = 0,
    Publisher = 1,
    Subscriber = 2,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) delivered: AtomicU64,
    pub(crate) verified: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) catalogs: AtomicU64,
    pub(crate) statuses: AtomicU64,
    pub(crate) states: AtomicU64,
    pub(crate) announces: AtomicU64,
    pub(crate) logs: AtomicU64,
    pub(crate) callbacks: AtomicU64,
    pub(crate) callback_actions: AtomicU64,
    pub(crate) polls: AtomicU64,
    pub(crate) poll_events: AtomicU64,
    pub(crate) published: AtomicU64,
    pub(crate) stale_checks: AtomicU64,
    pub(crate) canary_sent: AtomicU64,
    pub(crate) canary_got: AtomicU64,
    pub(crate) canary_gaps: AtomicU64,
    /// ms since start of the canary's newest delivery.
    pub(crate) canary_at: AtomicU64,
    /// Set by the watchdog when it found a hang (it then dumps the threads and exits).
    pub(crate) hang: AtomicBool,
    /// The API call a callback is making now (`act_from_callback`'s choice + 1, 0 = none), and
    /// since when (ms since start): a blocking call there holds every callback back.
    pub(crate) callback_call: AtomicU64,
    pub(crate) callback_call_at: AtomicU64,
    /// The longest such call so far, in ms, and which it was.
    pub(crate) callback_call_max: AtomicU64,
    pub(crate) callback_call_max_kind: AtomicU64,
}

pub(crate) struct World {
    pub(crate) start: Instant,
    pub(crate) scale: u32,
    pub(crate) url: CString,
    pub(crate) fingerprint: CString,
    pub(crate) clients: Mutex<Vec<ClientEntry>>,
    pub(crate) pubs: Mutex<Vec<PubEntry>>,
    pub(crate) subs: Mutex<Vec<SubEntry>>,
    pub(crate) stale: Mutex<Vec<(Kind, usize)>>,
    /// Contexts of subscribers destroyed from their own callback: freed at the end.
    pub(crate) graveyard: Mutex<Vec<Arc<SubCtx>>>,
    /// Poll-mode subscriptions: handle -> (publisher id, last sequence).
    pub(crate) poll_order: Mutex<HashMap<usize, (u32, u64)>>,
    pub(crate) next_id: AtomicU32,
    pub(crate) stop: AtomicBool,
    pub(crate) created: [AtomicU64; 3],
    pub(crate) destroyed: [AtomicU64; 3],
    pub(crate) n: Counters,
    pub(crate) codes: Mutex<BTreeMap<String, u64>>,
    pub(crate) failures: Mutex<Vec<String>>,
    /// Per worker (and the main thread, last): ms since start when its current call began, 0 idle.
    pub(crate) busy: Vec<AtomicU64>,
    pub(crate) busy_op: Vec<AtomicUsize>,
    pub(crate) op_counts: Vec<AtomicU64>,
    /// Per operation: total and longest time in µs.
    pub(crate) op_micros: Vec<(AtomicU64, AtomicU64)>,
}

pub(crate) static WORLD: OnceLock<World> = OnceLock::new();

pub(crate) fn world() -> &'static World {
    WORLD.get().expect("world")
}

pub(crate) fn now_ms(w: &World) -> u64 {
    w.start.elapsed().as_millis() as u64 + 1
}

pub(crate) fn fail(message: String) {
    let mut failures = lock(&world().failures);
    if failures.len() < 40 {
        eprintln!("RACE FAILURE: {message}");
        failures.push(message);
    }
}

/// Counts `code` for `op`; codes a valid call can never return are failures, and the first
/// messages of INTERNAL errors are shown.
pub(crate) fn record(op: &str, code: MoqResultCode, message: &str) {
    if matches!(
        code,
        MOQ_ERROR_PANIC | MOQ_ERROR_INVALID_ARGUMENT | MOQ_ERROR_BUFFER_TOO_SMALL
    ) {
        fail(format!("{op} returned {code:?}: {message}"));
    }
    let mut codes = lock(&world().codes);
    let count = codes.entry(format!("{op} {code:?}")).or_default();
    *count += 1;
    if code == MOQ_ERROR_INTERNAL && *count <= 3 {
        eprintln!("race: note: {op} returned {code:?}: {message}");
    }
    drop(codes);
    // moq-net reports a relay's "not found" stream reset as `Error::Stream(StreamError::NotFound)`;
    // the contract's code for it is NOT_FOUND.
    if code == MOQ_ERROR_INTERNAL && message.ends_with("not found") {
        fail(format!(
            "{op} returned INTERNAL for a not-found error (expected NOT_FOUND): {message}"
        ));
    }
}

pub(crate) fn record_result(op: &str, result: MoqResult) -> MoqResultCode {
    let (code, message) = take(result);
    record(op, code, &message);
    code
}

/// The code behind a NULL/false return.
pub(crate) fn record_ptr<T>(op: &str, ptr: *mut T) -> *mut T {
    match ptr.is_null() {
        true => record(op, moq_last_error_code(), &last_error()),
        false => record(op, MOQ_OK, ""),
    }
    ptr
}

pub(crate) fn pick<T: Clone>(table: &Mutex<Vec<T>>) -> Option<T> {
    let table = lock(table);
    (!table.is_empty()).then(|| table[rand(table.len())].clone())
}

pub(crate) fn retire(kind: Kind, handle: usize) {
    world().destroyed[kind as usize].fetch_add(1, Relaxed);
    lock(&world().stale).push((kind, handle));
}

pub(crate) fn next_id() -> u32 {
    world().next_id.fetch_add(1, Relaxed)
}
