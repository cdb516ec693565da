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
