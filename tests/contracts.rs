//! Contracts of the C API, exercised against real relays through the exported functions.
//!
//! Every wait is bounded; every test uses its own relay, clients and track names, so the tests
//! run in parallel. Callbacks all share the library's single callback thread, so timeouts are
//! generous (a slow callback in one test delays the others).

mod common;
use common::*;
use moq_ffi::ffi::*;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn client_with(config: &MoqClientConfig) -> *mut MoqClient {
    let client = unsafe { moq_client_create_ex(config) };
    assert!(!client.is_null(), "client: {}", last_error());
    client
}

/// Connects `client` to `url` without a state callback.
fn connect(client: *mut MoqClient, url: &str) -> (MoqResultCode, String) {
    take(unsafe { moq_connect(client, cstr(url).as_ptr(), None, std::ptr::null_mut()) })
}

/// Runs `body` on its own thread and fails the test if it does not finish within `limit`
/// (a deadlock then fails instead of hanging the test binary).
fn bounded<T: Send + 'static>(what: &str, limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(body());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what} did not finish within {limit:?} (deadlock?)"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what} panicked"),
    }
}

/// Payload of datagram `i`: its index, then a pattern derived from it; 4..=1024 bytes.
fn datagram_payload(i: u32) -> Vec<u8> {
    let len = match i % 4 {
        0 => 1024,
        1 => 4,
        2 => 517,
        _ => 100 + i as usize,
    };
    let mut payload: Vec<u8> = (0..len)
        .map(|j| (j as u32).wrapping_mul(31).wrapping_add(i) as u8)
        .collect();
    payload[..4].copy_from_slice(&i.to_be_bytes());
    payload
}

// ── Datagrams ───────────────────────────────────────────────────────────────────────────────

#[test]
fn datagram_round_trip_mostly_arrives_intact() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "dgram", "objects");
    let inbox = Inbox::new();
    let subscriber = subscribe(sub_client, "dgram", "objects", &inbox);

    const COUNT: u32 = 100;
    for i in 0..COUNT {
        let (code, message) = publish(publisher, &datagram_payload(i), MOQ_DELIVERY_DATAGRAM);
        assert_eq!(code, MoqResultCode::MOQ_OK, "datagram {i}: {message}");
        std::thread::sleep(Duration::from_millis(2));
    }
    inbox.wait_for(COUNT as usize, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    let got = inbox.objects.lock().unwrap().clone();
    let mut seen = std::collections::HashSet::new();
    for payload in &got {
        assert!(payload.len() >= 4, "datagram of {} bytes received", payload.len());
        let i = u32::from_be_bytes(payload[..4].try_into().unwrap());
        assert!(i < COUNT, "unknown datagram index {i}");
        assert_eq!(payload, &datagram_payload(i), "datagram {i} corrupted");
        assert!(seen.insert(i), "datagram {i} delivered twice");
    }
    eprintln!("datagrams: {} of {COUNT} arrived", got.len());
    assert!(
        got.len() >= (COUNT as usize) * 8 / 10,
        "only {} of {COUNT} datagrams arrived on loopback",
        got.len()
    );

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn datagram_over_1024_bytes_is_rejected_not_dropped() {
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let publisher = publisher(client, "dgram-size", "objects");

    let (code, message) = publish(publisher, &[7u8; MOQ_MAX_DATAGRAM_SIZE + 1], MOQ_DELIVERY_DATAGRAM);
    assert_eq!(code, MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT, "{message}");
    assert!(message.contains("1025"), "message should give the size: {message}");
    assert_eq!(last_error(), message, "moq_last_error should match the result message");

    // The limit itself is accepted.
    let (code, message) = publish(publisher, &[7u8; MOQ_MAX_DATAGRAM_SIZE], MOQ_DELIVERY_DATAGRAM);
    assert_eq!(code, MoqResultCode::MOQ_OK, "{message}");

    moq_publisher_destroy(publisher);
    moq_client_destroy(client);
}

// ── Subscribers ─────────────────────────────────────────────────────────────────────────────

#[test]
fn two_subscribers_same_and_other_client_each_get_all_objects_in_order() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let other_client = connected_client(&relay);
    let publisher = publisher(pub_client, "fanout", "objects");
    let first = Inbox::new();
    let second = Inbox::new();
    let third = Inbox::new();
    let sub_first = subscribe(sub_client, "fanout", "objects", &first);
    let sub_second = subscribe(sub_client, "fanout", "objects", &second);
    let sub_third = subscribe(other_client, "fanout", "objects", &third);

    const COUNT: u32 = 200;
    for i in 0..COUNT {
        let (code, message) = publish(publisher, &i.to_be_bytes(), MOQ_DELIVERY_STREAM);
        assert_eq!(code, MoqResultCode::MOQ_OK, "object {i}: {message}");
    }
    let want: Vec<Vec<u8>> = (0..COUNT).map(|i| i.to_be_bytes().to_vec()).collect();
    for (name, inbox) in [
        ("first (same client)", &first),
        ("second (same client)", &second),
        ("third (other client)", &third),
    ] {
        let count = inbox.wait_for(COUNT as usize, WAIT);
        assert_eq!(count, COUNT as usize, "subscriber {name} received {count} of {COUNT}");
    }
    std::thread::sleep(Duration::from_millis(200));
    for (name, inbox) in [
        ("first (same client)", &first),
        ("second (same client)", &second),
        ("third (other client)", &third),
    ] {
        assert_eq!(
            *inbox.objects.lock().unwrap(),
            want,
            "subscriber {name}: objects missing, duplicated or out of order"
        );
    }

    moq_subscriber_destroy(sub_first);
    moq_subscriber_destroy(sub_second);
    moq_subscriber_destroy(sub_third);
    moq_publisher_destroy(publisher);
    moq_client_destroy(other_client);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn unsubscribe_stops_delivery_and_is_subscribed_turns_false() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "unsub", "objects");
    let inbox = Inbox::new();
    let control = Inbox::new();
    let subscriber = subscribe(sub_client, "unsub", "objects", &inbox);
    let witness = subscribe(sub_client, "unsub", "objects", &control);
    assert!(moq_is_subscribed(subscriber));

    for i in 0..20u32 {
        assert_eq!(
            publish(publisher, &i.to_be_bytes(), MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
    }
    assert_eq!(inbox.wait_for(20, WAIT), 20);

    assert_ok(moq_unsubscribe(subscriber));
    assert!(
        !moq_is_subscribed(subscriber),
        "moq_is_subscribed is still true after moq_unsubscribe"
    );
    let stopped_at = inbox.len();
    assert_eq!(stopped_at, 20);

    for i in 20..60u32 {
        assert_eq!(
            publish(publisher, &i.to_be_bytes(), MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
    }
    // The other subscriber proves the objects were really delivered meanwhile.
    assert_eq!(control.wait_for(60, WAIT), 60);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        inbox.len(),
        stopped_at,
        "objects delivered after moq_unsubscribe returned"
    );

    // Idempotent, and the handle stays valid until destroyed.
    assert_ok(moq_unsubscribe(subscriber));
    assert!(!moq_is_subscribed(subscriber));
    moq_subscriber_destroy(subscriber);
    let (code, _) = take(moq_unsubscribe(subscriber));
    assert_eq!(
        code,
        MoqResultCode::MOQ_ERROR_INVALID_HANDLE,
        "a destroyed subscriber handle must be rejected"
    );

    moq_subscriber_destroy(witness);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

/// State of a data callback that destroys its own subscriber on the first object.
struct SelfDestroy {
    subscriber: AtomicPtr<MoqSubscriber>,
    calls: AtomicUsize,
    calls_after_destroy: AtomicUsize,
    destroyed: AtomicBool,
    destroy_took: Mutex<Option<Duration>>,
}

unsafe extern "C" fn self_destroying_callback(user_data: *mut c_void, _data: *const u8, _len: usize) {
    let state = unsafe { &*(user_data as *const SelfDestroy) };
    state.calls.fetch_add(1, Ordering::SeqCst);
    if state.destroyed.load(Ordering::SeqCst) {
        state.calls_after_destroy.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let subscriber = state.subscriber.load(Ordering::SeqCst);
    if subscriber.is_null() {
        return;
    }
    let started = Instant::now();
    moq_subscriber_destroy(subscriber);
    *state.destroy_took.lock().unwrap() = Some(started.elapsed());
    state.destroyed.store(true, Ordering::SeqCst);
}

#[test]
fn destroy_from_own_data_callback_returns_and_stops_callbacks() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "selfdestroy", "objects");
    let control = Inbox::new();
    let witness = subscribe(sub_client, "selfdestroy", "objects", &control);
    let state = Arc::new(SelfDestroy {
        subscriber: AtomicPtr::new(std::ptr::null_mut()),
        calls: AtomicUsize::new(0),
        calls_after_destroy: AtomicUsize::new(0),
        destroyed: AtomicBool::new(false),
        destroy_took: Mutex::new(None),
    });
    let subscriber = unsafe {
        moq_subscribe(
            sub_client,
            cstr("selfdestroy").as_ptr(),
            cstr("objects").as_ptr(),
            Some(self_destroying_callback),
            Arc::as_ptr(&state) as *mut c_void,
        )
    };
    assert!(!subscriber.is_null(), "subscribe: {}", last_error());
    state.subscriber.store(subscriber, Ordering::SeqCst);

    for i in 0..50u32 {
        assert_eq!(
            publish(publisher, &i.to_be_bytes(), MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
    }
    assert!(
        wait_until(WAIT, || state.destroyed.load(Ordering::SeqCst)),
        "the callback never ran or never returned from destroy"
    );
    let took = state.destroy_took.lock().unwrap().unwrap();
    assert!(
        took < Duration::from_millis(500),
        "destroy from inside the callback took {took:?}; it must return at once"
    );

    for i in 50..100u32 {
        assert_eq!(
            publish(publisher, &i.to_be_bytes(), MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
    }
    assert_eq!(control.wait_for(100, WAIT), 100);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        state.calls.load(Ordering::SeqCst),
        1,
        "callbacks ran after the subscriber destroyed itself"
    );
    assert_eq!(state.calls_after_destroy.load(Ordering::SeqCst), 0);
    assert!(
        !moq_is_subscribed(subscriber),
        "the destroyed handle must not report subscribed"
    );

    moq_subscriber_destroy(witness);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

const ALIVE: u64 = 0x600d_600d_600d_600d;
const POISON: u64 = 0xdead_dead_dead_dead;

/// user_data of the slow callback; freed by the test right after destroy returns.
struct Slow {
    magic: AtomicU64,
    in_callback: AtomicBool,
    calls: AtomicUsize,
}

/// Calls of `slow_callback` that found their user_data poisoned or freed (never by address).
static SLOW_VIOLATIONS: AtomicUsize = AtomicUsize::new(0);
/// Calls of `slow_callback` that started, counted outside user_data.
static SLOW_STARTED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn slow_callback(user_data: *mut c_void, _data: *const u8, _len: usize) {
    SLOW_STARTED.fetch_add(1, Ordering::SeqCst);
    let state = unsafe { &*(user_data as *const Slow) };
    if state.magic.load(Ordering::SeqCst) != ALIVE {
        SLOW_VIOLATIONS.fetch_add(1, Ordering::SeqCst);
        return;
    }
    state.in_callback.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    state.calls.fetch_add(1, Ordering::SeqCst);
    if state.magic.load(Ordering::SeqCst) != ALIVE {
        SLOW_VIOLATIONS.fetch_add(1, Ordering::SeqCst);
    }
    state.in_callback.store(false, Ordering::SeqCst);
}

#[test]
fn destroy_waits_for_a_running_callback_then_user_data_can_be_freed() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "slow", "objects");
    let state = Box::into_raw(Box::new(Slow {
        magic: AtomicU64::new(ALIVE),
        in_callback: AtomicBool::new(false),
        calls: AtomicUsize::new(0),
    }));
    let subscriber = unsafe {
        moq_subscribe(
            sub_client,
            cstr("slow").as_ptr(),
            cstr("objects").as_ptr(),
            Some(slow_callback),
            state as *mut c_void,
        )
    };
    assert!(!subscriber.is_null(), "subscribe: {}", last_error());

    for i in 0..5u32 {
        assert_eq!(
            publish(publisher, &i.to_be_bytes(), MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
    }
    // SAFETY: `state` is alive until freed below.
    let in_callback = || unsafe { &*state }.in_callback.load(Ordering::SeqCst);
    assert!(wait_until(WAIT, in_callback), "the slow callback never started");

    let started = Instant::now();
    moq_subscriber_destroy(subscriber);
    let took = started.elapsed();
    assert!(
        !in_callback(),
        "moq_subscriber_destroy returned while the callback was still running"
    );
    assert!(
        took < Duration::from_secs(2),
        "destroy waited {took:?} for a 200 ms callback"
    );
    let calls = unsafe { &*state }.calls.load(Ordering::SeqCst);
    assert!(calls >= 1);
    let started_before_free = SLOW_STARTED.load(Ordering::SeqCst);
    assert_eq!(
        started_before_free, calls,
        "a callback started but did not finish before destroy returned"
    );

    // Poison, then free: a later callback would see POISON (or freed memory) and count it.
    unsafe { &*state }.magic.store(POISON, Ordering::SeqCst);
    drop(unsafe { Box::from_raw(state) });

    for i in 5..10u32 {
        assert_eq!(
            publish(publisher, &i.to_be_bytes(), MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
    }
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        SLOW_STARTED.load(Ordering::SeqCst),
        started_before_free,
        "a callback ran after destroy returned"
    );
    assert_eq!(
        SLOW_VIOLATIONS.load(Ordering::SeqCst),
        0,
        "a callback touched user_data after destroy returned"
    );

    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

// ── Connection states ───────────────────────────────────────────────────────────────────────

#[test]
fn connection_callback_sees_connecting_connected_then_disconnected_on_disconnect() {
    let relay = TestRelay::start();
    let states = Arc::new(States::default());
    let client = connected_client_with(&relay, Some(states_callback), Arc::as_ptr(&states) as *mut c_void);
    assert!(moq_is_connected(client));
    assert!(states.wait_for(MoqConnectionState::MOQ_STATE_CONNECTED, WAIT));
    assert_eq!(
        states.snapshot(),
        vec![
            MoqConnectionState::MOQ_STATE_CONNECTING,
            MoqConnectionState::MOQ_STATE_CONNECTED
        ]
    );

    assert_ok(moq_disconnect(client));
    assert!(!moq_is_connected(client));
    assert!(
        states.wait_for(MoqConnectionState::MOQ_STATE_DISCONNECTED, WAIT),
        "no DISCONNECTED after moq_disconnect"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        states.snapshot(),
        vec![
            MoqConnectionState::MOQ_STATE_CONNECTING,
            MoqConnectionState::MOQ_STATE_CONNECTED,
            MoqConnectionState::MOQ_STATE_DISCONNECTED
        ]
    );
    // Idempotent: no second DISCONNECTED.
    assert_ok(moq_disconnect(client));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        states.snapshot().len(),
        3,
        "a second moq_disconnect reported again: {:?}",
        states.snapshot()
    );

    moq_client_destroy(client);
}

// ── Replacing the connection callback ──────────────────────────────────────────────────────

/// Holds the library's callback thread inside a connection callback (the first CONNECTING it
/// sees) until released, so the events posted meanwhile stay queued behind it.
#[derive(Default)]
struct Hold {
    entered: Mutex<bool>,
    released: Mutex<bool>,
    changed: std::sync::Condvar,
}

unsafe extern "C" fn hold_callback(user_data: *mut c_void, state: MoqConnectionState) {
    let hold = unsafe { &*(user_data as *const Hold) };
    if state != MoqConnectionState::MOQ_STATE_CONNECTING {
        return;
    }
    *hold.entered.lock().unwrap() = true;
    hold.changed.notify_all();
    // Bounded: a test that fails before releasing must not hold every other test's callbacks.
    let deadline = Instant::now() + WAIT * time_scale();
    let mut released = hold.released.lock().unwrap();
    while !*released && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        released = hold.changed.wait_timeout(released, left).unwrap().0;
    }
}

/// Releases the callback thread when dropped (also when a test fails while holding it).
struct Holding(Arc<Hold>);

impl Drop for Holding {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl Hold {
    /// Occupies the callback thread: a client connecting to `url` whose callback holds it
    /// until the returned guard is released or dropped.
    fn start(url: &str) -> (Holding, *mut MoqClient) {
        let hold = kept(Arc::new(Hold::default()));
        let client = client_with(&config_pinned(&cstr(&"ab".repeat(32)), 300));
        assert_ok(unsafe {
            moq_connect_async(
                client,
                cstr(url).as_ptr(),
                Some(hold_callback),
                Arc::as_ptr(&hold) as *mut c_void,
            )
        });
        let deadline = Instant::now() + WAIT * time_scale();
        let mut entered = hold.entered.lock().unwrap();
        while !*entered && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            entered = hold.changed.wait_timeout(entered, left).unwrap().0;
        }
        assert!(*entered, "the holding callback never ran");
        drop(entered);
        (Holding(hold), client)
    }

    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

/// The `user_data` of a connection callback that the test "frees" (marks dead) as soon as the
/// contract allows; a call after that is counted.
#[derive(Default)]
struct Owned {
    dead: AtomicBool,
    calls_after_free: AtomicUsize,
    states: States,
}

unsafe extern "C" fn owned_callback(user_data: *mut c_void, state: MoqConnectionState) {
    let owned = unsafe { &*(user_data as *const Owned) };
    if owned.dead.load(Ordering::SeqCst) {
        owned.calls_after_free.fetch_add(1, Ordering::SeqCst);
    }
    unsafe { states_callback(&owned.states as *const States as *mut c_void, state) };
}

fn connect_async_with(client: *mut MoqClient, url: &str, user_data: Option<&Arc<Owned>>) {
    let (callback, user_data) = match user_data {
        Some(owned) => (
            Some(owned_callback as unsafe extern "C" fn(*mut c_void, MoqConnectionState)),
            Arc::as_ptr(owned) as *mut c_void,
        ),
        None => (None, std::ptr::null_mut()),
    };
    assert_ok(unsafe { moq_connect_async(client, cstr(url).as_ptr(), callback, user_data) });
}

/// Waits until `client`'s connect failed (its FAILED event is queued by then).
fn wait_failed(client: *mut MoqClient) {
    let failed = wait_until(WAIT * time_scale(), || {
        let mut reason = [0 as std::ffi::c_char; 256];
        let (code, _) = take(unsafe { moq_client_last_error(client, reason.as_mut_ptr(), reason.len()) });
        code == MoqResultCode::MOQ_OK && reason[0] != 0
    });
    assert!(failed, "the connect to a closed port did not fail");
}

/// A connect call that replaces the connection callback (with another `user_data`, or with
/// none), and a destroy, discard the events queued for the old callback: after the call
/// returns, the old `user_data` may be freed and the old callback never runs again. The old
/// events are queued behind a callback that holds the callback thread (deterministically: the
/// CONNECTING is queued before `moq_connect_async` returns, the FAILED once the connect timed
/// out), and a later event (`marker`) proves they were processed before the checks.
#[test]
fn a_replaced_connection_callback_never_runs_after_the_replacing_call_returns() {
    let url = format!("https://localhost:{}", free_udp_port());
    let fingerprint = cstr(&"ab".repeat(32));
    let config = config_pinned(&fingerprint, 300);
    for ending in ["another user_data", "no callback", "destroy"] {
        let (hold, holder) = Hold::start(&url);
        let client = client_with(&config);
        let first = kept(Arc::new(Owned::default()));
        connect_async_with(client, &url, Some(&first));
        wait_failed(client);

        let marker = kept(Arc::new(Owned::default()));
        let marker_client = client_with(&config);
        match ending {
            "another user_data" => connect_async_with(client, &url, Some(&marker)),
            "no callback" => {
                connect_async_with(client, &url, None);
                connect_async_with(marker_client, &url, Some(&marker));
            }
            _ => {
                moq_client_destroy(client);
                connect_async_with(marker_client, &url, Some(&marker));
            }
        }
        // The contract allows freeing the old user_data now.
        first.dead.store(true, Ordering::SeqCst);
        drop(hold);

        // The marker's events were queued after the old callback's, on the same FIFO thread.
        assert!(
            marker
                .states
                .wait_for(MoqConnectionState::MOQ_STATE_FAILED, WAIT * time_scale()),
            "{ending}: the marker callback saw {:?}",
            marker.states.snapshot()
        );
        assert_eq!(
            first.calls_after_free.load(Ordering::SeqCst),
            0,
            "{ending}: the replaced callback ran after the replacing call returned: {:?}",
            first.states.snapshot()
        );
        assert_eq!(
            first.states.snapshot(),
            vec![],
            "{ending}: queued events reached the old callback"
        );
        assert_eq!(
            marker.states.snapshot(),
            vec![
                MoqConnectionState::MOQ_STATE_CONNECTING,
                MoqConnectionState::MOQ_STATE_FAILED
            ],
            "{ending}"
        );
        if ending != "destroy" {
            moq_client_destroy(client);
        }
        moq_client_destroy(marker_client);
        moq_client_destroy(holder);
    }
}

/// Connecting again with the same callback and `user_data` keeps the events queued for them:
/// the first attempt's FAILED is delivered before the second attempt's CONNECTING.
#[test]
fn reconnecting_with_the_same_callback_keeps_its_queued_events() {
    let url = format!("https://localhost:{}", free_udp_port());
    let (hold, holder) = Hold::start(&url);
    let client = client_with(&config_pinned(&cstr(&"ab".repeat(32)), 300));
    let owned = kept(Arc::new(Owned::default()));
    connect_async_with(client, &url, Some(&owned));
    wait_failed(client);
    connect_async_with(client, &url, Some(&owned));
    drop(hold);
    let states = &owned.states;
    let deadline = Instant::now() + WAIT * time_scale();
    let mut seen = states.seen.lock().unwrap();
    while seen.len() < 4 && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        seen = states.changed.wait_timeout(seen, left).unwrap().0;
    }
    drop(seen);
    use MoqConnectionState::*;
    assert_eq!(
        states.snapshot(),
        vec![
            MOQ_STATE_CONNECTING,
            MOQ_STATE_FAILED,
            MOQ_STATE_CONNECTING,
            MOQ_STATE_FAILED
        ]
    );
    moq_client_destroy(client);
    moq_client_destroy(holder);
}

#[test]
fn disconnect_ends_subscriptions_and_handles_stay_valid() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "disc", "objects");
    let inbox = Inbox::new();
    let subscriber = subscribe(sub_client, "disc", "objects", &inbox);
    assert_eq!(publish(publisher, b"one", MOQ_DELIVERY_STREAM).0, MoqResultCode::MOQ_OK);
    assert_eq!(inbox.wait_for(1, WAIT), 1);

    assert_ok(moq_disconnect(sub_client));
    assert!(
        wait_until(Duration::from_secs(2), || !moq_is_subscribed(subscriber)),
        "moq_is_subscribed still true 2 s after moq_disconnect (contract: subscriptions end)"
    );
    assert_eq!(publish(publisher, b"two", MOQ_DELIVERY_STREAM).0, MoqResultCode::MOQ_OK);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(inbox.len(), 1, "an object arrived after moq_disconnect");
    // The handle stays valid: unsubscribe succeeds.
    assert_ok(moq_unsubscribe(subscriber));

    assert_ok(moq_disconnect(pub_client));
    let (code, message) = publish(publisher, b"three", MOQ_DELIVERY_STREAM);
    assert_eq!(
        code,
        MoqResultCode::MOQ_ERROR_NOT_CONNECTED,
        "publishing on a disconnected client: {message}"
    );

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn relay_stop_disconnects_clients_and_ends_subscriptions() {
    let mut relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let states = Arc::new(States::default());
    let client = connected_client_with(&relay, Some(states_callback), Arc::as_ptr(&states) as *mut c_void);
    let publisher = publisher(pub_client, "stop", "objects");
    let inbox = Inbox::new();
    let subscriber = subscribe(client, "stop", "objects", &inbox);
    assert_eq!(
        publish(publisher, b"before", MOQ_DELIVERY_STREAM).0,
        MoqResultCode::MOQ_OK
    );
    assert_eq!(inbox.wait_for(1, WAIT), 1);
    assert!(moq_is_subscribed(subscriber));

    let started = Instant::now();
    relay.stop();
    let stop_took = started.elapsed();
    assert!(
        stop_took < Duration::from_secs(6),
        "moq_relay_stop took {stop_took:?} (contract: ~5 s at most)"
    );
    assert!(
        states.wait_for(MoqConnectionState::MOQ_STATE_DISCONNECTED, Duration::from_secs(8)),
        "no DISCONNECTED within 8 s of the relay stopping (states {:?})",
        states.snapshot()
    );
    let detected = started.elapsed();
    // Contract: "at once when it closes the session" (moq_relay_stop closes them).
    assert!(
        detected < Duration::from_secs(2),
        "DISCONNECTED came {detected:?} after moq_relay_stop began"
    );
    assert!(
        !moq_is_connected(client),
        "moq_is_connected still true after DISCONNECTED"
    );
    assert!(
        !last_error().is_empty(),
        "moq_is_connected false should say why in moq_last_error"
    );
    assert!(
        wait_until(Duration::from_secs(2), || !moq_is_subscribed(subscriber)),
        "moq_is_subscribed still true {:?} after the relay stopped",
        started.elapsed()
    );
    eprintln!("relay stop: moq_relay_stop took {stop_took:?}, DISCONNECTED after {detected:?}");

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(client);
    moq_client_destroy(pub_client);
}

// ── Connecting ──────────────────────────────────────────────────────────────────────────────

#[test]
fn connect_to_closed_port_fails_in_time_and_client_is_reusable() {
    let relay = TestRelay::start();
    let port = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let fingerprint = cstr(&relay.fingerprint);
    let config = config_pinned(&fingerprint, 1500);
    let client = client_with(&config);
    let states = Arc::new(States::default());

    let started = Instant::now();
    let (code, message) = take(unsafe {
        moq_connect(
            client,
            cstr(&format!("https://localhost:{port}")).as_ptr(),
            Some(states_callback),
            Arc::as_ptr(&states) as *mut c_void,
        )
    });
    let took = started.elapsed();
    assert!(
        matches!(
            code,
            MoqResultCode::MOQ_ERROR_CONNECTION_FAILED | MoqResultCode::MOQ_ERROR_TIMEOUT
        ),
        "connect to a closed port returned {code:?}: {message}"
    );
    assert!(!message.is_empty(), "the failure has no message");
    assert!(
        took < Duration::from_secs(3),
        "connect with a 1500 ms timeout took {took:?}"
    );
    assert!(!moq_is_connected(client));
    assert!(
        states.wait_for(MoqConnectionState::MOQ_STATE_FAILED, WAIT),
        "no FAILED state: {:?}",
        states.snapshot()
    );
    eprintln!("closed port: {code:?} after {took:?}: {message}");

    // The same client connects to a live relay afterwards.
    let (code, message) = connect(client, &relay.url);
    assert_eq!(code, MoqResultCode::MOQ_OK, "reconnect after a failure: {message}");
    assert!(moq_is_connected(client));
    let publisher = publisher(client, "reuse", "objects");
    assert_eq!(publish(publisher, b"x", MOQ_DELIVERY_STREAM).0, MoqResultCode::MOQ_OK);

    moq_publisher_destroy(publisher);
    moq_client_destroy(client);
}

/// A connect that runs out of `connect_timeout_ms` is a bounded wait running out: the contract's
/// MOQ_ERROR_TIMEOUT, every time (not sometimes CONNECTION_FAILED, depending on which of two
/// equal timers fires first).
#[test]
fn connect_timeout_is_always_reported_as_timeout() {
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        let port = {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.local_addr().unwrap().port()
        };
        let fingerprint = cstr(&"ab".repeat(32));
        let client = client_with(&config_pinned(&fingerprint, 300));
        let started = Instant::now();
        let (code, message) = connect(client, &format!("https://localhost:{port}"));
        let took = started.elapsed();
        moq_client_destroy(client);
        assert!(took < Duration::from_secs(2), "a 300 ms connect took {took:?}");
        outcomes.push((code, message));
    }
    for (code, message) in &outcomes {
        assert_eq!(
            *code,
            MoqResultCode::MOQ_ERROR_TIMEOUT,
            "a connect that ran out of connect_timeout_ms returned {code:?} ({message}); all outcomes: {outcomes:#?}"
        );
    }
}

/// user_data of a connection callback that connects another client once CONNECTED.
struct Chain {
    other: AtomicPtr<MoqClient>,
    url: String,
    done: Mutex<Option<(MoqResultCode, String)>>,
    finished: std::sync::Condvar,
}

unsafe extern "C" fn chain_callback(user_data: *mut c_void, state: MoqConnectionState) {
    let chain = unsafe { &*(user_data as *const Chain) };
    if state != MoqConnectionState::MOQ_STATE_CONNECTED {
        return;
    }
    let result = connect(chain.other.load(Ordering::SeqCst), &chain.url);
    *chain.done.lock().unwrap() = Some(result);
    chain.finished.notify_all();
}

#[test]
fn connect_from_inside_a_connection_callback_does_not_deadlock() {
    let relay = TestRelay::start();
    let fingerprint = cstr(&relay.fingerprint);
    let first = client_with(&config_pinned(&fingerprint, 5000));
    let second = client_with(&config_pinned(&fingerprint, 5000));
    let chain = Arc::new(Chain {
        other: AtomicPtr::new(second),
        url: relay.url.clone(),
        done: Mutex::new(None),
        finished: std::sync::Condvar::new(),
    });
    let (first_addr, chain_addr, url) = (first as usize, Arc::as_ptr(&chain) as usize, relay.url.clone());
    let (code, message) = bounded(
        "moq_connect with a connecting callback",
        Duration::from_secs(15),
        move || {
            take(unsafe {
                moq_connect(
                    first_addr as *mut MoqClient,
                    cstr(&url).as_ptr(),
                    Some(chain_callback),
                    chain_addr as *mut c_void,
                )
            })
        },
    );
    assert_eq!(code, MoqResultCode::MOQ_OK, "{message}");

    let result = {
        let mut done = chain.done.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while done.is_none() && Instant::now() < deadline {
            done = chain
                .finished
                .wait_timeout(done, deadline.saturating_duration_since(Instant::now()))
                .unwrap()
                .0;
        }
        done.clone()
    };
    let (code, message) = result.expect("moq_connect inside the callback did not return within 15 s (deadlock?)");
    assert_eq!(code, MoqResultCode::MOQ_OK, "moq_connect inside a callback: {message}");
    assert!(moq_is_connected(first));
    assert!(moq_is_connected(second));

    moq_client_destroy(second);
    moq_client_destroy(first);
}

#[test]
fn eight_threads_connect_at_once_without_deadlock() {
    let relay = TestRelay::start();
    let (url, fingerprint) = (relay.url.clone(), relay.fingerprint.clone());
    let results = bounded("8 concurrent connects", Duration::from_secs(30), move || {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (url, fingerprint) = (url.clone(), fingerprint.clone());
                std::thread::spawn(move || {
                    let fingerprint = cstr(&fingerprint);
                    let client = client_with(&config_pinned(&fingerprint, 10_000));
                    let result = connect(client, &url);
                    let connected = moq_is_connected(client);
                    moq_client_destroy(client);
                    (result, connected)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect::<Vec<_>>()
    });
    for (i, ((code, message), connected)) in results.into_iter().enumerate() {
        assert_eq!(code, MoqResultCode::MOQ_OK, "thread {i}: {message}");
        assert!(connected, "thread {i}: not connected after MOQ_OK");
    }
}

// ── TLS ─────────────────────────────────────────────────────────────────────────────────────

#[test]
fn self_signed_relay_is_rejected_without_a_pin() {
    let relay = TestRelay::start();
    let client = client_with(&config_plain(5000));
    let (code, message) = connect(client, &relay.url);
    assert_eq!(code, MoqResultCode::MOQ_ERROR_CONNECTION_FAILED, "{message}");
    eprintln!("no pin: {message}");
    assert!(
        message.to_ascii_lowercase().contains("certificate"),
        "the message should mention the certificate: {message}"
    );
    assert!(!moq_is_connected(client));
    moq_client_destroy(client);
}

#[test]
fn self_signed_relay_is_accepted_with_the_right_pin() {
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    assert!(moq_is_connected(client));
    moq_client_destroy(client);
}

#[test]
fn self_signed_relay_is_rejected_with_a_wrong_pin() {
    let relay = TestRelay::start();
    assert_eq!(relay.fingerprint.len(), 64);
    let mut wrong: Vec<u8> = relay.fingerprint.clone().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = cstr(std::str::from_utf8(&wrong).unwrap());
    let client = client_with(&config_pinned(&wrong, 5000));
    let (code, message) = connect(client, &relay.url);
    assert_eq!(code, MoqResultCode::MOQ_ERROR_CONNECTION_FAILED, "{message}");
    eprintln!("wrong pin: {message}");
    let lower = message.to_ascii_lowercase();
    assert!(
        lower.contains("certificate") || lower.contains("fingerprint"),
        "the message should name the failed check: {message}"
    );
    assert!(!moq_is_connected(client));
    moq_client_destroy(client);
}

/// A test CA ("moq-ffi test CA", valid 1975..4096), generated once with rcgen 0.14.
const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBeTCCASCgAwIBAgIUV9ZqQUQ0gk1UcwFfLW+8FGkPAAswCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPbW9xLWZmaSB0ZXN0IENBMCAXDTc1MDEwMTAwMDAwMFoYDzQw
OTYwMTAxMDAwMDAwWjAaMRgwFgYDVQQDDA9tb3EtZmZpIHRlc3QgQ0EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAATSsmSvoa/pN4uUC6y4C0xVNQbACCDfjKakwAll
wkD0UpBXan8IFO8uWOHBexWdiVkBgBE8USEDLbGQ8GZ7D2X/o0IwQDAOBgNVHQ8B
Af8EBAMCAYYwHQYDVR0OBBYEFDb1YUfo56mmROVpR2sToxyqE59+MA8GA1UdEwEB
/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgEKQX+t9+zA+WeOxEBWTaIRuCV1rY
ZAr+tIIMai8NfwcCICPIxaIhWcvcglChandDwA3qgr6sLbIZyN8HaVihiDst
-----END CERTIFICATE-----
";

/// A leaf for DNS name "localhost" signed by [`TEST_CA_PEM`] (serverAuth, valid 1975..4096).
const TEST_LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBcDCCARWgAwIBAgIUZMDWZaq7H5+YsPL/SLhirpm0kx4wCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPbW9xLWZmaSB0ZXN0IENBMCAXDTc1MDEwMTAwMDAwMFoYDzQw
OTYwMTAxMDAwMDAwWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAASIGBjgb8+1VL1TP6lXiTax4+fHMVIUvtwsLnaeiC3H/Lg3
Ct2AiUuIOmLc6z8C0OB68lG9dRhZ6nmpuFmvgwk7oz0wOzAUBgNVHREEDTALggls
b2NhbGhvc3QwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMAoG
CCqGSM49BAMCA0kAMEYCIQDjVUJlK3zSXbkj/c1Ptwdh0PocJVL8YhlUV+vRSov2
hQIhAOeJzrprexE/zwS/YXcrYJ4UlZVRmgeSaGytAuHa/GFZ
-----END CERTIFICATE-----
";

/// The leaf's private key (PKCS#8, P-256). Test-only: it protects nothing.
const TEST_LEAF_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgJzVUnFQ2hGxcIO3F
zmqhSkX03RHuGMEWX9jQ6oKXQaihRANCAASIGBjgb8+1VL1TP6lXiTax4+fHMVIU
vtwsLnaeiC3H/Lg3Ct2AiUuIOmLc6z8C0OB68lG9dRhZ6nmpuFmvgwk7
-----END PRIVATE KEY-----
";

/// A directory of its own under the temp dir, removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!("moq-ffi-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// CPU time (user + system, in clock ticks) of this process's threads whose name starts with
/// one of `prefixes`.
fn thread_cpu_ticks(prefixes: &[&str]) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        if !prefixes.iter().any(|prefix| name.starts_with(prefix)) {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // Fields after the name start at "state" (field 3); utime and stime are fields 14, 15.
        let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        total += utime + stime;
    }
    total
}

fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

/// Names of the threads running the CA-signed relay (its runtime and the file watcher).
const CA_RELAY_THREADS: [&str; 2] = ["ca-relay", "notify-rs"];

/// A moq-relay run by the test itself on its own runtime (threads named `thread_name`).
struct OwnRelay {
    runtime: Option<tokio::runtime::Runtime>,
    trigger: moq_relay::shutdown::Trigger,
    running: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    port: u16,
}

impl OwnRelay {
    fn start(thread_name: &str, tls: moq_tokio::tls::Listen) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(thread_name)
            .enable_all()
            .build()
            .unwrap();
        let mut config = moq_relay::Config::default();
        config.drain_timeout = Duration::ZERO;
        config.listen.bind = Some(moq_tokio::listen::Bind::Addr("127.0.0.1:0".parse().unwrap()));
        config.listen.tls = tls;
        config.auth.public = vec![moq_auth::Pattern::all()];
        let relay = runtime.block_on(async {
            tokio::time::timeout(WAIT, moq_relay::Relay::load(config))
                .await
                .expect("loading the relay timed out")
                .expect("loading the relay")
        });
        let port = relay.quic_addr().expect("the relay has a QUIC address").port();
        let relay = relay.with_signals(false);
        let trigger = relay.shutdown_trigger().clone();
        let ready = relay.ready();
        let running = runtime.spawn(relay.run());
        runtime
            .block_on(async { tokio::time::timeout(WAIT, ready.wait()).await })
            .expect("the relay did not become ready in time")
            .expect("the relay failed to start");
        Self {
            runtime: Some(runtime),
            trigger,
            running: Some(running),
            port,
        }
    }

    fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// Graceful stop: sessions are closed.
    fn stop(&mut self) {
        let (Some(runtime), Some(running)) = (self.runtime.take(), self.running.take()) else {
            return;
        };
        self.trigger.start();
        let stopped = runtime.block_on(async { tokio::time::timeout(WAIT, running).await });
        runtime.shutdown_timeout(Duration::from_secs(2));
        assert!(stopped.is_ok(), "the relay did not stop within {WAIT:?}");
    }

    /// The relay disappears without closing anything (as if its host lost power): its tasks
    /// and socket are dropped, no CONNECTION_CLOSE is sent.
    fn vanish(&mut self) {
        self.running.take();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for OwnRelay {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.stop();
        } else {
            self.vanish();
        }
    }
}

fn count_threads(prefix: &str) -> usize {
    thread_names().iter().filter(|name| name.starts_with(prefix)).count()
}

#[test]
fn ca_signed_relay_is_accepted_with_tls_root_ca_pem() {
    let dir = TempDir::new("ca-relay");
    let mut tls = moq_tokio::tls::Listen::default();
    tls.cert = vec![dir.0.join("cert.pem")];
    tls.key = vec![dir.0.join("key.pem")];
    std::fs::write(&tls.cert[0], TEST_LEAF_PEM).unwrap();
    std::fs::write(&tls.key[0], TEST_LEAF_KEY_PEM).unwrap();
    let watchers_before = count_threads("notify-rs");
    let mut relay = OwnRelay::start("ca-relay", tls);
    let url = relay.url();

    // The file-backed certificate must not keep the relay busy (reload loops).
    let idle_before = thread_cpu_ticks(&CA_RELAY_THREADS);
    std::thread::sleep(Duration::from_millis(1000));
    let idle_ticks = thread_cpu_ticks(&CA_RELAY_THREADS) - idle_before;

    let pem = cstr(TEST_CA_PEM);
    let mut ca_config = config_plain(5000);
    ca_config.tls_root_ca_pem = pem.as_ptr();
    let pub_client = client_with(&ca_config);
    let sub_client = client_with(&ca_config);
    drop(pem); // Copied by moq_client_create_ex.
    let (code, message) = connect(pub_client, &url);
    assert_eq!(code, MoqResultCode::MOQ_OK, "connect with tls_root_ca_pem: {message}");
    let (code, message) = connect(sub_client, &url);
    assert_eq!(code, MoqResultCode::MOQ_OK, "connect with tls_root_ca_pem: {message}");
    let watchers_connected = count_threads("notify-rs");

    // The same relay is refused without the CA.
    let plain = client_with(&config_plain(5000));
    let (code, message) = connect(plain, &url);
    assert_eq!(code, MoqResultCode::MOQ_ERROR_CONNECTION_FAILED, "{message}");
    moq_client_destroy(plain);

    let publisher = publisher(pub_client, "ca", "objects");
    let inbox = Inbox::new();
    let subscriber = subscribe(sub_client, "ca", "objects", &inbox);
    for i in 0..10u32 {
        assert_eq!(
            publish(publisher, &i.to_be_bytes(), MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
    }
    assert_eq!(inbox.wait_for(10, WAIT), 10);
    let want: Vec<Vec<u8>> = (0..10u32).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(*inbox.objects.lock().unwrap(), want);

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);

    let quiet_before = thread_cpu_ticks(&CA_RELAY_THREADS);
    std::thread::sleep(Duration::from_millis(1000));
    let quiet_ticks = thread_cpu_ticks(&CA_RELAY_THREADS) - quiet_before;
    let watchers_after = count_threads("notify-rs");
    eprintln!(
        "CA relay: {idle_ticks} CPU ticks in 1 s idle before clients, {quiet_ticks} after them; \
         file watcher threads: {watchers_before} before, {watchers_connected} with 2 clients, {watchers_after} after destroy"
    );
    // 100 ticks is one core for the whole second; a reload loop shows as tens of ticks.
    assert!(
        idle_ticks <= 10 && quiet_ticks <= 10,
        "the CA relay spins: {idle_ticks} and {quiet_ticks} ticks per idle second"
    );
    relay.stop();
}

#[test]
fn relay_vanishing_without_close_is_detected_within_a_few_seconds() {
    let identity = moq_tokio::tls::Identity::generate(["localhost"]).unwrap();
    let fingerprint = cstr(identity.fingerprint());
    let mut tls = moq_tokio::tls::Listen::default();
    tls.identity = Some(identity);
    let mut relay = OwnRelay::start("gone-relay", tls);
    let states = Arc::new(States::default());
    let client = client_with(&config_pinned(&fingerprint, 5000));
    assert_ok(unsafe {
        moq_connect(
            client,
            cstr(&relay.url()).as_ptr(),
            Some(states_callback),
            Arc::as_ptr(&states) as *mut c_void,
        )
    });

    let started = Instant::now();
    relay.vanish();
    // Contract (moq_connect): DISCONNECTED "when the relay goes away: ... within
    // `idle_timeout_ms` (~10 s by default) when it goes silent".
    let detected = states.wait_for(MoqConnectionState::MOQ_STATE_DISCONNECTED, Duration::from_secs(20));
    let took = started.elapsed();
    eprintln!(
        "vanished relay: DISCONNECTED {} after {took:?}",
        if detected { "reported" } else { "NOT reported" }
    );
    assert!(detected, "no DISCONNECTED within 20 s of the relay vanishing");
    assert!(!moq_is_connected(client));
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(13),
        "a vanished relay was detected after {took:?}; the contract says ~10 s (the default idle timeout)"
    );
    moq_client_destroy(client);
}

/// The relay does not send a session its own announcements back; a client subscribing to a
/// track it publishes itself is served from its own broadcast.
#[test]
fn a_client_can_subscribe_to_its_own_track() {
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let publisher = publisher(client, "self", "loop");
    let inbox = Inbox::new();
    let started = Instant::now();
    let subscriber = subscribe(client, "self", "loop", &inbox);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "subscribe waited {:?}",
        started.elapsed()
    );
    for i in 0..50u32 {
        assert_eq!(
            publish(publisher, &i.to_le_bytes(), MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
    }
    assert_eq!(inbox.wait_for(50, Duration::from_secs(10)), 50);
    let want: Vec<Vec<u8>> = (0..50u32).map(|i| i.to_le_bytes().to_vec()).collect();
    assert_eq!(*inbox.objects.lock().unwrap(), want);
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(client);
}
