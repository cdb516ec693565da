//! Namespace discovery through the C API against the embedded relay: `moq_subscribe_announces`
//! (seed callback), `moq_subscribe_announces_ex` (prefix filter, withdrawals) and
//! `moq_unsubscribe_announces` (replacement, idempotence, re-entrancy).
//!
//! Catalog discovery (`moq_subscribe_catalog*`, `moq_publish_catalog`) is in `discovery.rs` and
//! `catalog_e2e.rs`.
//! Every test has its own relay on a loopback port chosen by the kernel, so the tests run in
//! parallel; every wait is bounded.

mod common;
use common::*;
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bound for anything that should arrive.
const WAIT: Duration = Duration::from_secs(10);
/// How long to watch for something that must not arrive.
const SETTLE: Duration = Duration::from_millis(500);

/// One announcement callback: the namespace, whether it is active, and (seed callback only) the
/// `track_name` it came with.
#[derive(Clone, Debug, PartialEq)]
struct Announcement {
    namespace: String,
    active: bool,
    track_name: Option<String>,
}

type Announcements = Recorder<Announcement>;

fn c_string(ptr: *const c_char) -> String {
    assert!(!ptr.is_null(), "the library passed a NULL string to a callback");
    // SAFETY: non-NULL and NUL-terminated per the callback contract, valid during the call.
    unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

/// `MoqTrackCallback` recording into the `Announcements` behind `user_data`.
unsafe extern "C" fn on_announce_seed(user_data: *mut c_void, namespace_str: *const c_char, track_name: *const c_char) {
    // SAFETY: `user_data` is a kept `Announcements` (see `kept`), alive for the process.
    let recorder = unsafe { &*(user_data as *const Announcements) };
    recorder.push(Announcement {
        namespace: c_string(namespace_str),
        active: true,
        track_name: Some(c_string(track_name)),
    });
}

/// `MoqAnnounceCallback` recording into the `Announcements` behind `user_data`.
unsafe extern "C" fn on_announce(user_data: *mut c_void, namespace_str: *const c_char, active: bool) {
    // SAFETY: `user_data` is a kept `Announcements` (see `kept`), alive for the process.
    let recorder = unsafe { &*(user_data as *const Announcements) };
    recorder.push(Announcement {
        namespace: c_string(namespace_str),
        active,
        track_name: None,
    });
}

fn user_data<T>(value: &Arc<T>) -> *mut c_void {
    Arc::as_ptr(value) as *mut c_void
}

fn watch_seed(client: *mut MoqClient, recorder: &Arc<Announcements>) {
    assert_ok(moq_subscribe_announces(
        client,
        Some(on_announce_seed),
        user_data(recorder),
    ));
}

fn watch_prefix(client: *mut MoqClient, prefix: Option<&str>, recorder: &Arc<Announcements>) {
    let prefix = prefix.map(cstr);
    let prefix_ptr = prefix.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
    // SAFETY: `prefix_ptr` is NULL or a live NUL-terminated string; the callback matches its
    // type and `recorder` is kept alive for the process.
    assert_ok(unsafe { moq_subscribe_announces_ex(client, prefix_ptr, Some(on_announce), user_data(recorder)) });
}

fn has(items: &[Announcement], namespace: &str, active: bool) -> bool {
    items.iter().any(|a| a.namespace == namespace && a.active == active)
}

/// Waits for `(namespace, active)`; fails the test with what did arrive otherwise.
#[track_caller]
fn expect(recorder: &Announcements, namespace: &str, active: bool) {
    let arrived = recorder.wait_until(WAIT, |items| has(items, namespace, active));
    assert!(
        arrived,
        "no announcement ({namespace:?}, active={active}) within {WAIT:?}; got {:?}",
        recorder.snapshot()
    );
}

/// A client with the relay's fingerprint pinned, not yet connected.
fn unconnected_client(relay: &TestRelay) -> *mut MoqClient {
    let fingerprint = cstr(&relay.fingerprint);
    let config = config_pinned(&fingerprint, 5000);
    // SAFETY: `config` is a fully initialised MoqClientConfig with `struct_size` set.
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "client: {}", last_error());
    client
}

// ── Seed callback: before and after connect ─────────────────────────────────────────────────

#[test]
fn announces_registered_before_connect_report_a_later_publisher() {
    let relay = TestRelay::start();
    let seen = kept(Announcements::new());
    let watcher_client = unconnected_client(&relay);
    watch_seed(watcher_client, &seen);
    // SAFETY: the URL is a live NUL-terminated string; no state callback.
    assert_ok(unsafe { moq_connect(watcher_client, cstr(&relay.url).as_ptr(), None, std::ptr::null_mut()) });

    let publisher_client = connected_client(&relay);
    let publisher = publisher(publisher_client, "disc/a", "objects");
    expect(&seen, "disc/a", true);

    let seen_now = seen.snapshot();
    for announcement in &seen_now {
        assert_eq!(
            announcement.track_name.as_deref(),
            Some(""),
            "moq_subscribe_announces must pass track_name \"\": {announcement:?}"
        );
    }
    assert!(
        seen_now.iter().all(|a| a.namespace == "disc/a"),
        "only disc/a was announced: {seen_now:?}"
    );

    moq_publisher_destroy(publisher);
    moq_client_destroy(publisher_client);
    moq_client_destroy(watcher_client);
}

#[test]
fn announces_registered_after_connect_report_earlier_and_later_namespaces() {
    let relay = TestRelay::start();
    let publisher_client = connected_client(&relay);
    let early = publisher(publisher_client, "disc/early", "objects");
    let watcher_client = connected_client(&relay);
    // moq_subscribe returns once the relay routes "disc/early" to this client: the namespace
    // is announced before the watcher exists.
    let inbox = Inbox::new();
    let probe = subscribe(watcher_client, "disc/early", "objects", &inbox);

    let seen = kept(Announcements::new());
    watch_seed(watcher_client, &seen);
    expect(&seen, "disc/early", true);
    let late = publisher(publisher_client, "disc/late", "objects");
    expect(&seen, "disc/late", true);
    assert!(
        seen.snapshot().iter().all(|a| a.track_name.as_deref() == Some("")),
        "track_name must be \"\": {:?}",
        seen.snapshot()
    );

    moq_subscriber_destroy(probe);
    moq_publisher_destroy(early);
    moq_publisher_destroy(late);
    moq_client_destroy(watcher_client);
    moq_client_destroy(publisher_client);
}

// ── Prefix filter and withdrawals ───────────────────────────────────────────────────────────

#[test]
fn announces_ex_prefix_filters_and_client_destroy_withdraws() {
    let relay = TestRelay::start();
    let watcher_client = connected_client(&relay);
    let seen = kept(Announcements::new());
    watch_prefix(watcher_client, Some("room1"), &seen);

    let publisher_client = connected_client(&relay);
    let in_room1 = publisher(publisher_client, "room1/x", "objects");
    let in_room2 = publisher(publisher_client, "room2/y", "objects");
    // "room10" starts with the text "room1" but is not below the namespace "room1".
    let in_room10 = publisher(publisher_client, "room10/z", "objects");
    expect(&seen, "room1/x", true);
    std::thread::sleep(SETTLE);
    assert_eq!(
        seen.snapshot(),
        vec![Announcement {
            namespace: "room1/x".into(),
            active: true,
            track_name: None
        }],
        "only room1/x is at or below the prefix \"room1\""
    );

    let destroyed_at = Instant::now();
    moq_client_destroy(publisher_client);
    expect(&seen, "room1/x", false);
    let withdrawal = destroyed_at.elapsed();
    eprintln!("announce withdrawal: room1/x reported inactive {withdrawal:?} after moq_client_destroy");
    std::thread::sleep(SETTLE);
    let all = seen.snapshot();
    assert_eq!(all.len(), 2, "one announce and one withdrawal expected: {all:?}");
    assert!(all.iter().all(|a| a.namespace == "room1/x"), "{all:?}");

    for publisher in [in_room1, in_room2, in_room10] {
        moq_publisher_destroy(publisher);
    }
    moq_client_destroy(watcher_client);
}

/// Namespaces are announced per client broadcast: this records whether destroying the last
/// publisher of a namespace (its client staying connected) withdraws it, and checks that
/// destroying the client then does.
#[test]
fn announces_ex_withdrawal_after_publisher_destroy_then_client_destroy() {
    let relay = TestRelay::start();
    let watcher_client = connected_client(&relay);
    let seen = kept(Announcements::new());
    watch_prefix(watcher_client, None, &seen);

    let publisher_client = connected_client(&relay);
    let solo = publisher(publisher_client, "solo/ns", "objects");
    expect(&seen, "solo/ns", true);

    let destroyed_at = Instant::now();
    moq_publisher_destroy(solo);
    let by_publisher = seen.wait_until(Duration::from_secs(2), |items| has(items, "solo/ns", false));
    if by_publisher {
        eprintln!(
            "announce withdrawal: moq_publisher_destroy withdrew solo/ns after {:?}",
            destroyed_at.elapsed()
        );
    } else {
        eprintln!("announce withdrawal: moq_publisher_destroy did not withdraw solo/ns within 2 s (client still holds the broadcast)");
        let destroyed_at = Instant::now();
        moq_client_destroy(publisher_client);
        expect(&seen, "solo/ns", false);
        eprintln!(
            "announce withdrawal: moq_client_destroy withdrew solo/ns after {:?}",
            destroyed_at.elapsed()
        );
    }
    std::thread::sleep(SETTLE);
    let withdrawals = seen.snapshot().iter().filter(|a| !a.active).count();
    assert_eq!(withdrawals, 1, "exactly one withdrawal: {:?}", seen.snapshot());

    if by_publisher {
        moq_client_destroy(publisher_client);
    }
    moq_client_destroy(watcher_client);
}

// ── Replacement, unsubscribe, re-entrancy ───────────────────────────────────────────────────

#[test]
fn a_second_registration_replaces_the_first_watcher() {
    let relay = TestRelay::start();
    let watcher_client = connected_client(&relay);
    let publisher_client = connected_client(&relay);
    let first = kept(Announcements::new());
    let second = kept(Announcements::new());

    watch_prefix(watcher_client, None, &first);
    let one = publisher(publisher_client, "swap/one", "objects");
    expect(&first, "swap/one", true);

    watch_seed(watcher_client, &second);
    let first_count = first.snapshot().len();
    // The replacement reports what is already announced, then what comes later.
    expect(&second, "swap/one", true);
    let two = publisher(publisher_client, "swap/two", "objects");
    expect(&second, "swap/two", true);
    std::thread::sleep(SETTLE);
    assert_eq!(
        first.snapshot().len(),
        first_count,
        "the replaced watcher was called after the replacement: {:?}",
        first.snapshot()
    );

    moq_publisher_destroy(one);
    moq_publisher_destroy(two);
    moq_client_destroy(publisher_client);
    moq_client_destroy(watcher_client);
}

#[test]
fn unsubscribe_announces_stops_callbacks_is_idempotent_and_checks_handles() {
    let relay = TestRelay::start();
    let watcher_client = connected_client(&relay);
    let publisher_client = connected_client(&relay);
    let seen = kept(Announcements::new());
    watch_prefix(watcher_client, Some("stop"), &seen);
    let before = publisher(publisher_client, "stop/before", "objects");
    expect(&seen, "stop/before", true);

    assert_ok(moq_unsubscribe_announces(watcher_client));
    assert_ok(moq_unsubscribe_announces(watcher_client));
    let count = seen.snapshot().len();
    let after = publisher(publisher_client, "stop/after", "objects");
    moq_publisher_destroy(before);
    std::thread::sleep(SETTLE);
    assert_eq!(
        seen.snapshot().len(),
        count,
        "callback after moq_unsubscribe_announces: {:?}",
        seen.snapshot()
    );

    let made_up = 0x5eed_0001usize as *mut MoqClient;
    for (what, client) in [("NULL", std::ptr::null_mut()), ("made-up", made_up)] {
        let (code, message) = take(moq_unsubscribe_announces(client));
        assert_eq!(code, MoqResultCode::MOQ_ERROR_INVALID_HANDLE, "{what}: {message}");
        let (code, message) = take(moq_subscribe_announces(
            client,
            Some(on_announce_seed),
            user_data(&seen),
        ));
        assert_eq!(code, MoqResultCode::MOQ_ERROR_INVALID_HANDLE, "{what}: {message}");
    }
    for bad_prefix in ["a//b", "/"] {
        let prefix = cstr(bad_prefix);
        // SAFETY: live NUL-terminated prefix; matching callback; `seen` is kept alive.
        let (code, message) = take(unsafe {
            moq_subscribe_announces_ex(watcher_client, prefix.as_ptr(), Some(on_announce), user_data(&seen))
        });
        assert_eq!(
            code,
            MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT,
            "prefix {bad_prefix:?}: {message}"
        );
    }

    moq_publisher_destroy(after);
    moq_client_destroy(publisher_client);
    moq_client_destroy(watcher_client);
    let (code, message) = take(moq_unsubscribe_announces(watcher_client));
    assert_eq!(
        code,
        MoqResultCode::MOQ_ERROR_INVALID_HANDLE,
        "destroyed client: {message}"
    );
}

/// State of a callback that stops its own watcher.
struct SelfStopping {
    client: AtomicPtr<MoqClient>,
    calls: AtomicU32,
    unsubscribe_code: AtomicU32,
    returned: AtomicBool,
}

unsafe extern "C" fn on_announce_stop_self(user_data: *mut c_void, _namespace: *const c_char, _active: bool) {
    // SAFETY: `user_data` is a kept `SelfStopping`, alive for the process.
    let state = unsafe { &*(user_data as *const SelfStopping) };
    state.calls.fetch_add(1, Ordering::SeqCst);
    let (code, _) = take(moq_unsubscribe_announces(state.client.load(Ordering::SeqCst)));
    state.unsubscribe_code.store(code as u32, Ordering::SeqCst);
    state.returned.store(true, Ordering::SeqCst);
}

#[test]
fn unsubscribe_announces_from_inside_its_callback_returns_and_nothing_follows() {
    let relay = TestRelay::start();
    let watcher_client = connected_client(&relay);
    let publisher_client = connected_client(&relay);
    let state = kept(Arc::new(SelfStopping {
        client: AtomicPtr::new(watcher_client),
        calls: AtomicU32::new(0),
        unsubscribe_code: AtomicU32::new(u32::MAX),
        returned: AtomicBool::new(false),
    }));
    let first = publisher(publisher_client, "reentrant/one", "objects");
    let second = publisher(publisher_client, "reentrant/two", "objects");
    // SAFETY: NULL prefix; matching callback; `state` is kept alive for the process.
    assert_ok(unsafe {
        moq_subscribe_announces_ex(
            watcher_client,
            std::ptr::null(),
            Some(on_announce_stop_self),
            user_data(&state),
        )
    });

    let returned = wait_until(WAIT, || state.returned.load(Ordering::SeqCst));
    assert!(
        returned,
        "moq_unsubscribe_announces called from its own callback did not return within {WAIT:?} (calls: {})",
        state.calls.load(Ordering::SeqCst)
    );
    assert_eq!(
        state.unsubscribe_code.load(Ordering::SeqCst),
        MoqResultCode::MOQ_OK as u32
    );
    let third = publisher(publisher_client, "reentrant/three", "objects");
    std::thread::sleep(SETTLE);
    assert_eq!(
        state.calls.load(Ordering::SeqCst),
        1,
        "a callback ran after the watcher stopped itself"
    );

    // The client is still usable: a new watcher reports all three namespaces.
    let seen = kept(Announcements::new());
    watch_prefix(watcher_client, Some("reentrant"), &seen);
    for namespace in ["reentrant/one", "reentrant/two", "reentrant/three"] {
        expect(&seen, namespace, true);
    }

    for publisher in [first, second, third] {
        moq_publisher_destroy(publisher);
    }
    moq_client_destroy(publisher_client);
    moq_client_destroy(watcher_client);
}

// ── A flood the callback cannot keep up with ────────────────────────────────────────────────

/// An announcement callback that holds the callback thread on its first call until released,
/// then records every call.
struct Flood {
    recorder: Arc<Announcements>,
    entered: std::sync::Mutex<bool>,
    released: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
}

unsafe extern "C" fn on_announce_held(user_data: *mut c_void, namespace_str: *const c_char, active: bool) {
    // SAFETY: `user_data` is a kept `Flood`, alive for the process.
    let flood = unsafe { &*(user_data as *const Flood) };
    let first = {
        let mut entered = flood.entered.lock().unwrap();
        !std::mem::replace(&mut *entered, true)
    };
    if first {
        flood.changed.notify_all();
        // Bounded: a failing test must not hold every other test's callbacks for long.
        let deadline = Instant::now() + WAIT * 6 * time_scale();
        let mut released = flood.released.lock().unwrap();
        while !*released && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            released = flood.changed.wait_timeout(released, left).unwrap().0;
        }
    }
    // SAFETY: forwarded from this callback's contract.
    unsafe { on_announce(Arc::as_ptr(&flood.recorder) as *mut c_void, namespace_str, active) };
}

/// A log callback recording the messages (into a kept `Recorder<String>`).
unsafe extern "C" fn on_log(
    user_data: *mut c_void,
    _level: MoqLogLevel,
    _target: *const c_char,
    message: *const c_char,
) {
    // SAFETY: `user_data` is a kept `Recorder<String>`, alive for the process.
    let recorder = unsafe { &*(user_data as *const Recorder<String>) };
    recorder.push(c_string(message));
}

/// A publisher announcing thousands of namespaces to a watcher whose callback is stuck: the
/// callback queue stops at its cap (1024 waiting), every announcement past it is dropped and
/// counted in the client's `events_dropped` (exactly: the stuck call, 1024 waiting, the rest
/// dropped) and reported at WARN level, the library stays responsive meanwhile, and once the
/// callback returns the admitted announcements arrive and new ones get through again.
#[test]
fn an_announcement_flood_to_a_stuck_callback_stays_bounded_and_counts_its_drops() {
    const COUNT: usize = 20_000;
    const CAP: usize = 1024; // moq_ffi::dispatch::MAX_QUEUED_EVENTS
    assert_eq!(CAP, moq_ffi::dispatch::MAX_QUEUED_EVENTS);
    let logs = kept(Recorder::<String>::new());
    // SAFETY: `logs` is kept alive for the process.
    assert_ok(unsafe { moq_set_log_callback(MOQ_LOG_WARN, Some(on_log), user_data(&logs)) });
    let relay = TestRelay::start();
    let watcher_client = connected_client(&relay);
    let publisher_client = connected_client(&relay);
    let flood = kept(Arc::new(Flood {
        recorder: kept(Announcements::new()),
        entered: std::sync::Mutex::new(false),
        released: std::sync::Mutex::new(false),
        changed: std::sync::Condvar::new(),
    }));
    let prefix = cstr("flood");
    // SAFETY: `prefix` is NUL-terminated; `flood` is kept alive for the process.
    assert_ok(unsafe {
        moq_subscribe_announces_ex(
            watcher_client,
            prefix.as_ptr(),
            Some(on_announce_held),
            Arc::as_ptr(&flood) as *mut c_void,
        )
    });

    // The first announcement's callback holds the callback thread.
    let name = |i: usize| format!("flood/{i:05}");
    let announce = |i: usize| {
        let namespace = cstr(&name(i));
        // SAFETY: a live NUL-terminated string.
        assert_ok(unsafe { moq_announce_namespace(publisher_client, namespace.as_ptr()) });
    };
    announce(0);
    {
        let deadline = Instant::now() + WAIT * time_scale();
        let mut entered = flood.entered.lock().unwrap();
        while !*entered && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            entered = flood.changed.wait_timeout(entered, left).unwrap().0;
        }
        assert!(*entered, "the first announcement never reached the callback");
    }

    let started = Instant::now();
    let mut slowest_call = Duration::ZERO;
    for i in 1..COUNT {
        let call = Instant::now();
        announce(i);
        let _ = client_stats(watcher_client);
        slowest_call = slowest_call.max(call.elapsed());
    }
    let expected_drops = (COUNT - 1 - CAP) as u64;
    let arrived = wait_until(WAIT * 6 * time_scale(), || {
        client_stats(watcher_client).events_dropped >= expected_drops
    });
    let dropped = client_stats(watcher_client).events_dropped;
    assert!(
        arrived,
        "{dropped} of the {expected_drops} expected drops after {:?}",
        started.elapsed()
    );
    eprintln!(
        "{COUNT} announcements reached the stuck watcher in {:?}; slowest announce + stats call {slowest_call:?}",
        started.elapsed()
    );
    assert_eq!(dropped, expected_drops, "the queue held more than its cap");
    assert!(
        slowest_call < Duration::from_secs(2) * time_scale(),
        "an API call took {slowest_call:?} during the flood"
    );
    assert!(flood.recorder.snapshot().is_empty(), "the callback is still held");

    *flood.released.lock().unwrap() = true;
    flood.changed.notify_all();
    // The held call and the 1024 admitted.
    let delivered = flood
        .recorder
        .wait_until(WAIT * time_scale(), |items| items.len() > CAP);
    let items = flood.recorder.snapshot();
    assert!(delivered, "{} of {} delivered", items.len(), CAP + 1);
    assert_eq!(items[0].namespace, name(0), "the held call comes first");
    let distinct: std::collections::HashSet<&str> = items.iter().map(|a| a.namespace.as_str()).collect();
    assert_eq!(distinct.len(), CAP + 1, "an announcement was delivered twice");
    assert!(items.iter().all(|a| a.active && a.namespace.starts_with("flood/")));

    // There is room again: a new announcement arrives, nothing more was dropped.
    announce(COUNT);
    expect(&flood.recorder, &name(COUNT), true);
    assert_eq!(client_stats(watcher_client).events_dropped, expected_drops);
    assert_eq!(flood.recorder.snapshot().len(), CAP + 2);
    // Reported like the log callback's own drops: when they start, and how many once there
    // was room again.
    let reported = format!("{expected_drops} announcement events were dropped");
    let logged = logs.wait_until(WAIT * time_scale(), |messages| {
        messages
            .iter()
            .any(|m| m.contains("announcement callback fell 1024 events behind"))
            && messages.iter().any(|m| m.contains(&reported))
    });
    assert!(logged, "drops not reported in the log: {:?}", logs.snapshot());
    // SAFETY: clearing takes no pointers.
    assert_ok(unsafe { moq_set_log_callback(MOQ_LOG_OFF, None, std::ptr::null_mut()) });

    moq_client_destroy(publisher_client);
    moq_client_destroy(watcher_client);
}
