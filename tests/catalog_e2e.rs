//! Malformed catalogs arriving over the wire, through the C API against the embedded relay: raw
//! bytes published with `moq_publish_data` on a track read with `moq_subscribe_catalog_ex` —
//! hand-written hostile cases (truncated, not JSON, 2 MiB, NUL in a name, ...) and 100
//! randomized mutations of valid catalogs. Each subscription ends with exactly one
//! `MOQ_SUBSCRIPTION_ERROR` naming the problem, or (a mutation that stayed valid) one catalog.
//!
//! Well-formed catalogs are in `discovery.rs`; 1,000 malformed catalogs at the parser level in
//! `catalog_parse.rs`. Every test has its own relay on a loopback port chosen by the kernel, so
//! the tests run in parallel; every wait is bounded.

mod common;
use common::*;
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void, CStr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bound for anything that should arrive.
const WAIT: Duration = Duration::from_secs(10);
/// How long to watch for something that must not arrive.
const SETTLE: Duration = Duration::from_millis(300);
/// Bound for all randomized cases together.
const RANDOMIZED_BOUND: Duration = Duration::from_secs(20);

/// A subscription status report.
#[derive(Clone, Debug)]
struct Status {
    status: MoqSubscriptionStatus,
    message: String,
}

/// What a catalog subscription's callbacks received: the track count of each catalog, and the
/// statuses.
struct CatalogWatch {
    catalogs: Arc<Recorder<usize>>,
    statuses: Arc<Recorder<Status>>,
}

impl CatalogWatch {
    fn new() -> Arc<Self> {
        kept(Arc::new(Self {
            catalogs: Recorder::new(),
            statuses: Recorder::new(),
        }))
    }

    fn errors(&self) -> Vec<Status> {
        let statuses = self.statuses.snapshot();
        statuses
            .into_iter()
            .filter(|s| s.status == MOQ_SUBSCRIPTION_ERROR)
            .collect()
    }

    /// Whether the subscription reached an outcome: a catalog or an ERROR.
    fn settled(&self) -> bool {
        !self.catalogs.snapshot().is_empty() || !self.errors().is_empty()
    }
}

unsafe extern "C" fn on_catalog(user_data: *mut c_void, _tracks: *const MoqTrackInfo, track_count: usize) {
    // SAFETY: `user_data` is a kept `CatalogWatch`, alive for the process.
    let watch = unsafe { &*(user_data as *const CatalogWatch) };
    watch.catalogs.push(track_count);
}

unsafe extern "C" fn on_status(
    user_data: *mut c_void,
    status: MoqSubscriptionStatus,
    _code: u32,
    message: *const c_char,
) {
    // SAFETY: `user_data` is a kept `CatalogWatch`, alive for the process.
    let watch = unsafe { &*(user_data as *const CatalogWatch) };
    assert!(!message.is_null(), "a status message is never NULL");
    // SAFETY: non-NULL and NUL-terminated per the callback contract, valid during the call.
    let message = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    watch.statuses.push(Status { status, message });
}

/// `moq_subscribe_catalog_ex` with the default options and both callbacks.
fn subscribe_catalog_ex(
    client: *mut MoqClient,
    namespace: &str,
    track: &str,
    watch: &Arc<CatalogWatch>,
) -> *mut MoqSubscriber {
    let (namespace, track) = (cstr(namespace), cstr(track));
    // SAFETY: live NUL-terminated names; NULL options; matching callbacks; `watch` is kept alive.
    let subscriber = unsafe {
        moq_subscribe_catalog_ex(
            client,
            namespace.as_ptr(),
            track.as_ptr(),
            std::ptr::null(),
            Some(on_catalog),
            Some(on_status),
            Arc::as_ptr(watch) as *mut c_void,
        )
    };
    assert!(!subscriber.is_null(), "moq_subscribe_catalog_ex: {}", last_error());
    subscriber
}

/// `moq_catalog_json`, freed with `moq_free_str`; `None` for NULL.
fn catalog_json(subscriber: *mut MoqSubscriber) -> Option<String> {
    let json = moq_catalog_json(subscriber);
    if json.is_null() {
        return None;
    }
    let copy = text(json);
    moq_free_str(json);
    Some(copy)
}

// ── Malformed catalogs over the wire ────────────────────────────────────────────────────────

/// Publishes `payload` as one stream object on a new track `track` of `namespace` (the
/// publisher stays alive until the test ends) and subscribes to it as a catalog.
fn publish_raw_and_subscribe(
    publisher_client: *mut MoqClient,
    subscriber_client: *mut MoqClient,
    namespace: &str,
    track: &str,
    payload: &[u8],
) -> (*mut MoqPublisher, *mut MoqSubscriber, Arc<CatalogWatch>) {
    let raw_publisher = publisher(publisher_client, namespace, track);
    let (code, message) = publish(raw_publisher, payload, MOQ_DELIVERY_STREAM);
    assert_eq!(code, MoqResultCode::MOQ_OK, "{track}: {message}");
    let watch = CatalogWatch::new();
    let subscriber = subscribe_catalog_ex(subscriber_client, namespace, track, &watch);
    (raw_publisher, subscriber, watch)
}

#[test]
fn malformed_catalogs_end_the_subscription_with_one_error_naming_the_problem() {
    let relay = TestRelay::start();
    let publisher_client = connected_client(&relay);
    let subscriber_client = connected_client(&relay);
    let oversized = format!("{{\"version\":1,\"tracks\":[],\"pad\":\"{}\"}}", "x".repeat(2 << 20));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            br#"{"version":1,"tracks":[{"name":"vid"#.to_vec(),
            "not valid JSON",
        ),
        ("not-json", b"this is not JSON".to_vec(), "not valid JSON"),
        ("oversized", oversized.into_bytes(), "the maximum is 1048576 bytes"),
        (
            "nul-escape-in-name",
            br#"{"version":1,"tracks":[{"name":"a\u0000b"}]}"#.to_vec(),
            "name contains a NUL byte",
        ),
        (
            "raw-nul-in-name",
            b"{\"version\":1,\"tracks\":[{\"name\":\"a\0b\"}]}".to_vec(),
            "not valid JSON",
        ),
        (
            "not-utf8",
            b"{\"version\":1,\"tracks\":[{\"name\":\"\xff\"}]}".to_vec(),
            "not valid UTF-8",
        ),
        ("top-level-array", b"[]".to_vec(), "expected a catalog"),
        (
            "seed-version-2",
            br#"{"version":2,"tracks":[]}"#.to_vec(),
            "only version 1",
        ),
    ];
    let running: Vec<_> = cases
        .iter()
        .map(|(track, payload, _)| {
            publish_raw_and_subscribe(publisher_client, subscriber_client, "cat/bad", track, payload)
        })
        .collect();
    for ((track, payload, expected), (_, subscriber, watch)) in cases.iter().zip(&running) {
        let ended = watch
            .statuses
            .wait_until(WAIT, |s| s.iter().any(|s| s.status != MOQ_SUBSCRIPTION_SUBSCRIBED));
        assert!(ended, "{track}: no terminal status within {WAIT:?}");
        std::thread::sleep(SETTLE);
        let statuses = watch.statuses.snapshot();
        let terminal: Vec<_> = statuses
            .iter()
            .filter(|s| s.status != MOQ_SUBSCRIPTION_SUBSCRIBED)
            .collect();
        assert_eq!(terminal.len(), 1, "{track}: exactly one terminal status: {statuses:?}");
        assert_eq!(terminal[0].status, MOQ_SUBSCRIPTION_ERROR, "{track}: {statuses:?}");
        assert!(
            terminal[0].message.contains(expected),
            "{track} ({} bytes): message {:?} lacks {expected:?}",
            payload.len(),
            terminal[0].message
        );
        assert!(watch.catalogs.snapshot().is_empty(), "{track}: a catalog callback ran");
        assert!(!moq_is_subscribed(*subscriber), "{track}: still subscribed after ERROR");
        assert!(
            catalog_json(*subscriber).is_none(),
            "{track}: moq_catalog_json returned a catalog"
        );
        eprintln!("malformed catalog {track}: {}", terminal[0].message);
    }

    for (raw_publisher, subscriber, _) in running {
        moq_subscriber_destroy(subscriber);
        moq_publisher_destroy(raw_publisher);
    }
    moq_client_destroy(subscriber_client);
    moq_client_destroy(publisher_client);
}

/// xorshift64: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const VALID_SEED: &str = r#"{"version":1,"tracks":[{"name":"video","selectionParams":{"codec":"avc1.64001f","mimeType":"video/mp4","width":1920,"height":1080,"bitrate":5000000}},{"name":"audio","selectionParams":{"codec":"opus","samplerate":48000,"lang":"en"}},{"name":"data"}]}"#;
const VALID_HANG: &str = r#"{"video":{"renditions":{"hd":{"codec":"avc1.64001f","codedWidth":1280,"codedHeight":720,"bitrate":6000000}}},"audio":{"renditions":{"main":{"codec":"opus","sampleRate":48000,"numberOfChannels":2}}},"json":{"tracks":{"chat":{"mode":"stream"}}}}"#;

/// One random corruption of `bytes`.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let at = |rng: &mut Rng, bytes: &Vec<u8>| rng.below(bytes.len().max(1)).min(bytes.len());
    let positions_of = |bytes: &Vec<u8>, byte: u8| -> Vec<usize> {
        bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == byte)
            .map(|(i, _)| i + 1)
            .collect()
    };
    match rng.below(7) {
        0 => bytes.truncate(at(rng, bytes)),
        1 => {
            for _ in 0..1 + rng.below(3) {
                let i = at(rng, bytes).min(bytes.len().saturating_sub(1));
                bytes[i] ^= 1 + rng.below(255) as u8;
            }
        }
        2 => {
            let i = at(rng, bytes);
            let junk: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
            bytes.splice(i..i, junk);
        }
        3 => {
            let start = at(rng, bytes);
            let end = (start + 1 + rng.below(16)).min(bytes.len());
            bytes.drain(start..end);
        }
        4 => {
            let opens = positions_of(bytes, b'{');
            let i = opens[rng.below(opens.len())];
            let key = ["name", "codec", "version", "tracks", "video", "width"][rng.below(6)];
            bytes.splice(i..i, format!("\"{key}\":1,\"{key}\":2,").into_bytes());
        }
        5 => {
            let quotes = positions_of(bytes, b'"');
            let i = quotes[rng.below(quotes.len())];
            bytes.splice(i..i, br"\u0000".to_vec());
        }
        _ => {
            let colons = positions_of(bytes, b':');
            let i = colons[rng.below(colons.len())];
            let value = ["1e400", "-1", "4294967296", "\"x\"", "null", "[]", "{}", "1.5"][rng.below(8)];
            bytes.splice(i..i, format!("{value},\"pad\":").into_bytes());
        }
    }
}

#[test]
fn hundred_randomized_malformed_catalogs_each_end_in_a_catalog_or_an_error() {
    const CASES: usize = 100;
    let relay = TestRelay::start();
    let publisher_client = connected_client(&relay);
    let subscriber_client = connected_client(&relay);
    let mut rng = Rng(0x5eed_ca7a_1093_0001);
    let payloads: Vec<Vec<u8>> = (0..CASES)
        .map(|i| {
            let mut bytes = if i % 2 == 0 { VALID_SEED } else { VALID_HANG }.as_bytes().to_vec();
            for _ in 0..1 + rng.below(2) {
                mutate(&mut rng, &mut bytes);
            }
            bytes
        })
        .collect();
    // The parser is the oracle: the wire must neither lose nor change what it decides.
    let verdicts: Vec<Option<usize>> = payloads
        .iter()
        .map(|p| moq_ffi::core::catalog::parse(p).ok().map(|c| c.tracks.len()))
        .collect();

    let started = Instant::now();
    let running: Vec<_> = payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| {
            let track = format!("fuzz-{i}");
            publish_raw_and_subscribe(publisher_client, subscriber_client, "cat/fuzz", &track, payload)
        })
        .collect();
    let all_settled = wait_until(RANDOMIZED_BOUND, || running.iter().all(|(_, _, watch)| watch.settled()));
    if !all_settled {
        let (i, (_, _, watch)) = running.iter().enumerate().find(|(_, (_, _, w))| !w.settled()).unwrap();
        panic!(
            "case {i} ({:?}): neither a catalog nor an ERROR within {RANDOMIZED_BOUND:?}; statuses {:?}",
            String::from_utf8_lossy(&payloads[i]),
            watch.statuses.snapshot()
        );
    }
    let elapsed = started.elapsed();
    std::thread::sleep(SETTLE);

    let (mut valid, mut errors) = (0, 0);
    for (i, (_, _, watch)) in running.iter().enumerate() {
        let payload = String::from_utf8_lossy(&payloads[i]);
        let catalogs = watch.catalogs.snapshot();
        let failures = watch.errors();
        match verdicts[i] {
            Some(track_count) => {
                valid += 1;
                assert!(
                    failures.is_empty(),
                    "case {i} is valid but failed: {failures:?}; {payload:?}"
                );
                assert_eq!(catalogs.len(), 1, "case {i}: {payload:?}");
                assert_eq!(catalogs[0], track_count, "case {i}: {payload:?}");
            }
            None => {
                errors += 1;
                assert!(catalogs.is_empty(), "case {i} is invalid but delivered: {payload:?}");
                assert_eq!(failures.len(), 1, "case {i}: exactly one ERROR: {failures:?}");
                assert!(
                    failures[0].message.contains("catalog"),
                    "case {i}: {:?}",
                    failures[0].message
                );
            }
        }
    }
    eprintln!(
        "randomized catalogs over the wire: {CASES} cases, {valid} still valid (catalog delivered), {errors} rejected (ERROR), all settled in {elapsed:?}"
    );
    assert!(errors >= CASES / 2, "the mutations should mostly break the catalog");

    for (raw_publisher, subscriber, _) in running {
        moq_subscriber_destroy(subscriber);
        moq_publisher_destroy(raw_publisher);
    }
    moq_client_destroy(subscriber_client);
    moq_client_destroy(publisher_client);
}
