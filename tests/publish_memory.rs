//! Bounded publisher memory: `MoqClientConfig.publish_buffer_bytes` caps what a client's
//! publishers keep buffered, and `publish_overflow` says what happens at the cap (evict the oldest
//! groups, or refuse with `MOQ_ERROR_WOULD_BLOCK`, counted). Each RSS figure is measured in a
//! child process of its own (this test binary again, running one scenario), so scenarios do not
//! see each other's memory.

mod common;

use common::*;
use moq_ffi::ffi::*;
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SCENARIO_ENV: &str = "MOQ_PUBLISH_MEMORY_SCENARIO";
const OBJECTS: usize = 500;
const OBJECT_SIZE: usize = 1 << 20;
const CAP: u64 = 32 << 20;
const MIB: u64 = 1 << 20;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

fn client_with(relay: &TestRelay, cap: u64, overflow: MoqOverflowPolicy) -> *mut MoqClient {
    let fingerprint = cstr(&relay.fingerprint);
    let mut config = config_pinned(&fingerprint, 5000);
    config.publish_buffer_bytes = cap;
    config.publish_overflow = overflow;
    // SAFETY: a valid config.
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "{}", last_error());
    // SAFETY: a valid URL string.
    assert_ok(unsafe { moq_connect(client, cstr(&relay.url).as_ptr(), None, std::ptr::null_mut()) });
    client
}

/// What one scenario measured.
struct Outcome {
    accepted: usize,
    would_block: usize,
    buffered_max: u64,
    stats: MoqStats,
    rss_growth: u64,
    delivered: u64,
}

static DELIVERED: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" fn slow_consumer(_: *mut c_void, _: *const MoqObjectInfo, data: *const u8, len: usize) {
    // SAFETY: `len` readable bytes during the call.
    let object = unsafe { std::slice::from_raw_parts(data, len) };
    assert_eq!(len, OBJECT_SIZE);
    assert!(object[8..64].iter().all(|b| *b == object[0]), "payload intact");
    DELIVERED.fetch_add(1, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(20));
}

/// Publishes `OBJECTS` × 1 MiB in a burst from a client with `cap` and `overflow`, optionally
/// with a slow subscriber on another client.
fn burst(cap: u64, overflow: MoqOverflowPolicy, slow_subscriber: bool) -> Outcome {
    let relay = TestRelay::start();
    let client = client_with(&relay, cap, overflow);
    let publisher = publisher(client, "pubmem", "video");
    let mut subscriber_client = std::ptr::null_mut();
    let mut subscriber = std::ptr::null_mut();
    if slow_subscriber {
        subscriber_client = connected_client(&relay);
        // SAFETY: valid strings; the callback ignores user_data.
        subscriber = unsafe {
            moq_subscribe_ex(
                subscriber_client,
                cstr("pubmem").as_ptr(),
                cstr("video").as_ptr(),
                std::ptr::null(),
                Some(slow_consumer),
                None,
                std::ptr::null_mut(),
            )
        };
        assert!(!subscriber.is_null(), "{}", last_error());
        std::thread::sleep(Duration::from_millis(500));
    }
    let before = rss_bytes();
    let mut payload = vec![0u8; OBJECT_SIZE];
    let (mut accepted, mut would_block, mut buffered_max, mut peak) = (0, 0, 0, before);
    for i in 0..OBJECTS {
        payload.fill(i as u8);
        let (code, message) = publish(publisher, &payload, MOQ_DELIVERY_STREAM);
        match code {
            MoqResultCode::MOQ_OK => accepted += 1,
            MoqResultCode::MOQ_ERROR_WOULD_BLOCK => {
                assert!(message.contains("publish_buffer_bytes"), "{message}");
                would_block += 1;
            }
            other => panic!("object {i}: {other:?}: {message}"),
        }
        // SAFETY: a live client.
        let stats = stats_of(|out| unsafe { moq_client_stats(client, out) });
        buffered_max = buffered_max.max(stats.publish_buffered_bytes);
        peak = peak.max(rss_bytes());
    }
    std::thread::sleep(Duration::from_millis(500));
    if slow_subscriber {
        wait_until(Duration::from_secs(10), || DELIVERED.load(Ordering::Relaxed) >= 10);
    }
    peak = peak.max(rss_bytes());
    // SAFETY: a live publisher.
    let stats = stats_of(|out| unsafe { moq_publisher_stats(publisher, out) });
    let delivered = DELIVERED.load(Ordering::Relaxed);
    if !subscriber.is_null() {
        moq_subscriber_destroy(subscriber);
        moq_client_destroy(subscriber_client);
    }
    moq_publisher_destroy(publisher);
    moq_client_destroy(client);
    Outcome {
        accepted,
        would_block,
        buffered_max,
        stats,
        rss_growth: peak.saturating_sub(before),
        delivered,
    }
}

/// Runs one scenario in a child process (this binary running `test` alone) and returns the line
/// it printed.
fn in_child(test: &str, scenario: &str) -> String {
    let exe = std::env::current_exe().expect("the test binary");
    let output = std::process::Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(SCENARIO_ENV, scenario)
        .output()
        .expect("run the scenario child");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "scenario {scenario} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| line.find("RESULT ").map(|at| line[at..].to_string()))
        .unwrap_or_else(|| panic!("scenario {scenario} printed no RESULT:\n{stdout}"))
}

fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

/// In a child process (the environment names a scenario): runs it, prints one RESULT line and
/// returns true, so the calling test does nothing else.
fn ran_as_child() -> bool {
    let Ok(scenario) = std::env::var(SCENARIO_ENV) else {
        return false;
    };
    let outcome = match scenario.as_str() {
        "error-no-subscriber" => burst(CAP, MOQ_OVERFLOW_ERROR, false),
        "error-slow-subscriber" => burst(CAP, MOQ_OVERFLOW_ERROR, true),
        "drop-oldest-no-subscriber" => burst(CAP, MOQ_OVERFLOW_DROP_OLDEST, false),
        "uncapped-no-subscriber" => burst(64 << 30, MOQ_OVERFLOW_DROP_OLDEST, false),
        other => panic!("unknown scenario {other}"),
    };
    println!(
        "RESULT accepted={} would_block={} backpressure={} buffered_max={} rss_growth={} delivered={}",
        outcome.accepted,
        outcome.would_block,
        outcome.stats.objects_dropped_backpressure,
        outcome.buffered_max,
        outcome.rss_growth,
        outcome.delivered
    );
    true
}

#[test]
fn the_error_policy_refuses_what_does_not_fit_and_counts_it() {
    if ran_as_child() {
        return;
    }
    for scenario in ["error-no-subscriber", "error-slow-subscriber"] {
        let line = in_child("the_error_policy_refuses_what_does_not_fit_and_counts_it", scenario);
        println!("{scenario}: {line}");
        let (accepted, would_block) = (field(&line, "accepted"), field(&line, "would_block"));
        assert_eq!(accepted + would_block, OBJECTS as u64);
        assert!(would_block > 0, "the cap was hit: {line}");
        assert!(
            (16..=CAP / MIB).contains(&accepted),
            "about the cap's worth was accepted: {line}"
        );
        assert_eq!(field(&line, "backpressure"), would_block, "every refusal is counted");
        assert!(field(&line, "buffered_max") <= CAP, "{line}");
        if scenario == "error-slow-subscriber" {
            // The same process also holds the embedded relay's cache, the subscribing client's
            // receive cache (32 MiB) and its callback window (64 MiB): all bounded.
            assert!(field(&line, "rss_growth") < 256 * MIB, "{line}");
            assert!(
                field(&line, "delivered") >= 10,
                "the slow subscriber got intact objects: {line}"
            );
        } else {
            assert!(
                field(&line, "rss_growth") < CAP + 48 * MIB,
                "RSS stays near the cap: {line}"
            );
        }
    }
}

#[test]
fn the_drop_oldest_policy_keeps_memory_at_the_cap() {
    if ran_as_child() {
        return;
    }
    let capped = in_child(
        "the_drop_oldest_policy_keeps_memory_at_the_cap",
        "drop-oldest-no-subscriber",
    );
    let uncapped = in_child(
        "the_drop_oldest_policy_keeps_memory_at_the_cap",
        "uncapped-no-subscriber",
    );
    println!("capped at 32 MiB: {capped}\nuncapped: {uncapped}");
    assert_eq!(
        field(&capped, "accepted"),
        OBJECTS as u64,
        "nothing is refused: {capped}"
    );
    assert!(field(&capped, "buffered_max") <= CAP + MIB, "{capped}");
    assert!(field(&capped, "rss_growth") < CAP + 48 * MIB, "{capped}");
    assert!(
        field(&uncapped, "rss_growth") > 4 * field(&capped, "rss_growth"),
        "without the cap the burst stays buffered: {uncapped} vs {capped}"
    );
}

#[test]
fn publish_buffer_settings_are_checked() {
    for (cap, overflow, ok) in [
        (0, MOQ_OVERFLOW_DROP_OLDEST, true),
        (MIB, MOQ_OVERFLOW_ERROR, true),
        (MIB - 1, MOQ_OVERFLOW_ERROR, false),
        ((64 << 30) + 1, MOQ_OVERFLOW_ERROR, false),
        (CAP, 2, false),
    ] {
        let mut config = config_plain(1000);
        config.publish_buffer_bytes = cap;
        config.publish_overflow = overflow;
        // SAFETY: a valid config.
        let client = unsafe { moq_client_create_ex(&config) };
        assert_eq!(!client.is_null(), ok, "cap {cap} overflow {overflow}: {}", last_error());
        if client.is_null() {
            assert_eq!(moq_last_error_code(), MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT);
        }
        moq_client_destroy(client);
    }
}
