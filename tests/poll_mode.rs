//! Poll-mode delivery through the C API (`moq_poll`, `MOQ_DELIVER_POLL`), called as C would,
//! against the embedded relay on loopback.
//!
//! Covered: a poll-mode subscription end to end (SUBSCRIBED, 1,000 objects intact and in order,
//! ENDED once and last); argument validation of `moq_subscribe_ex` and `moq_poll`; the three
//! queue policies (DROP_OLDEST, DROP_NEWEST, LATEST_ONLY) and their drop counts; bounded memory
//! for a consumer that never polls while 100,000 objects of 1 KiB arrive; connection events
//! (`MoqClientConfig.poll_events`); announcements with a NULL callback; the payload lifetime
//! contract (valid until the next poll); one poller per client, `moq_client_destroy` ending a
//! blocked poll, `moq_subscriber_destroy` discarding queued events; and timeout accuracy.
//!
//! Every wait has an explicit deadline; every test starts its own relay and clients, so the tests
//! run in parallel. The memory test measures this process's RSS, so it runs alone (the other tests
//! hold [`shared_process`], it holds [`whole_process`]) and puts the relay and the publisher in a
//! child process (this test binary again), so that only the consumer's memory is measured. Run
//! with `--nocapture` to see the figures the tests print (RSS series, drop counts, timings).

mod common;
use common::*;
use moq_ffi::ffi::*;
use std::ffi::c_void;
use std::sync::mpsc;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// Bound for anything that should happen within a few milliseconds on loopback.
const WAIT: Duration = Duration::from_secs(10);
/// Pause after SUBSCRIBED before publishing: on moq-lite-01..05 a subscription is live a few
/// milliseconds after it is confirmed (README, Delivery); tests that count objects exactly wait
/// this long so the count does not depend on the negotiated version.
const SETTLE: Duration = Duration::from_millis(200);
/// Room for events in one `moq_poll` call in the helpers.
const BATCH: usize = 256;

// ── Process-wide exclusion for the RSS measurement ──────────────────────────────────────────

static PROCESS: RwLock<()> = RwLock::new(());

/// Held by every test that may run alongside others.
fn shared_process() -> RwLockReadGuard<'static, ()> {
    PROCESS.read().unwrap_or_else(PoisonError::into_inner)
}

/// Held by the test that measures the process's memory: no other test of this binary runs then.
fn whole_process() -> RwLockWriteGuard<'static, ()> {
    PROCESS.write().unwrap_or_else(PoisonError::into_inner)
}

// ── Events ──────────────────────────────────────────────────────────────────────────────────

/// One `moq_poll` event, copied out of the library's batch (whose pointers expire at the next
/// poll). Subscriber handles are kept as numbers so events can cross threads.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Object {
        subscriber: usize,
        group_id: u64,
        object_id: u64,
        delivery_mode: MoqDeliveryMode,
        payload: Vec<u8>,
    },
    Status {
        subscriber: usize,
        status: MoqSubscriptionStatus,
        code: u32,
        message: String,
    },
    Connection(MoqConnectionState),
    Announce {
        namespace: String,
        active: bool,
    },
    Catalog {
        subscriber: usize,
    },
}

impl Seen {
    /// The subscription the event belongs to, if any.
    fn subscriber(&self) -> Option<usize> {
        match self {
            Seen::Object { subscriber, .. } | Seen::Status { subscriber, .. } | Seen::Catalog { subscriber } => {
                Some(*subscriber)
            }
            Seen::Connection(_) | Seen::Announce { .. } => None,
        }
    }

    /// The payload of an OBJECT event of `subscriber`.
    fn object_of(&self, subscriber: *mut MoqSubscriber) -> Option<&[u8]> {
        match self {
            Seen::Object {
                subscriber: source,
                payload,
                ..
            } if *source == subscriber as usize => Some(payload),
            _ => None,
        }
    }

    /// Whether this is a STATUS event of `subscriber` with `status`.
    fn is_status(&self, subscriber: *mut MoqSubscriber, wanted: MoqSubscriptionStatus) -> bool {
        matches!(self, Seen::Status { subscriber: source, status, .. } if *source == subscriber as usize && *status == wanted)
    }
}

/// `count` zeroed events for `moq_poll` to fill.
fn blank_events(count: usize) -> Vec<MoqEvent> {
    // SAFETY: `MoqEvent` holds integers, a bool, raw pointers and `MoqConnectionState`, a C enum
    // whose value 0 is MOQ_STATE_DISCONNECTED: all-zero is a valid value of every field.
    vec![unsafe { std::mem::zeroed::<MoqEvent>() }; count]
}

/// Calls `moq_poll` with all of `events` as room; returns how many it wrote.
fn poll_into(client: *mut MoqClient, events: &mut [MoqEvent], timeout_ms: u32) -> usize {
    // SAFETY: `events` points to `events.len()` writable `MoqEvent`s.
    unsafe { moq_poll(client, events.as_mut_ptr(), events.len(), timeout_ms) }
}

/// The payload of an OBJECT event, read from the library's batch.
///
/// # Safety
/// The batch `event` came from is still valid: no `moq_poll` on its client and no
/// `moq_client_destroy` since.
unsafe fn payload_of(event: &MoqEvent) -> &[u8] {
    if event.data_len == 0 {
        return &[];
    }
    assert!(
        !event.data.is_null(),
        "OBJECT event with {} bytes and NULL data",
        event.data_len
    );
    // SAFETY: non-NULL, `data_len` bytes, valid until the next poll per the caller's contract.
    unsafe { std::slice::from_raw_parts(event.data, event.data_len) }
}

/// Copies one event out of the library's batch, checking the fields its kind leaves NULL.
fn copy_event(event: &MoqEvent) -> Seen {
    let subscriber = event.subscriber as usize;
    match event.kind {
        MOQ_EVENT_OBJECT => Seen::Object {
            subscriber,
            group_id: event.object.group_id,
            object_id: event.object.object_id,
            delivery_mode: event.object.delivery_mode,
            // SAFETY: called right after the poll that wrote `event`.
            payload: unsafe { payload_of(event) }.to_vec(),
        },
        MOQ_EVENT_STATUS => Seen::Status {
            subscriber,
            status: event.status,
            code: event.code,
            message: text(event.message),
        },
        MOQ_EVENT_CONNECTION => {
            assert!(event.subscriber.is_null(), "CONNECTION event with a subscriber");
            Seen::Connection(event.connection_state)
        }
        MOQ_EVENT_ANNOUNCE => {
            assert!(event.subscriber.is_null(), "ANNOUNCE event with a subscriber");
            Seen::Announce {
                namespace: text(event.namespace_str),
                active: event.active,
            }
        }
        MOQ_EVENT_CATALOG => Seen::Catalog { subscriber },
        other => panic!("moq_poll returned an event of unknown kind {other}"),
    }
}

/// One `moq_poll` of up to [`BATCH`] events, copied.
fn poll(client: *mut MoqClient, timeout_ms: u32) -> Vec<Seen> {
    let mut events = blank_events(BATCH);
    let count = poll_into(client, &mut events, timeout_ms);
    assert!(count <= BATCH, "moq_poll wrote {count} events into room for {BATCH}");
    events[..count].iter().map(copy_event).collect()
}

/// Polls until `done(all events so far)` holds or `timeout` passes; returns every event seen.
fn poll_until(client: *mut MoqClient, timeout: Duration, mut done: impl FnMut(&[Seen]) -> bool) -> Vec<Seen> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while !done(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        seen.extend(poll(client, left.as_millis().min(50) as u32));
    }
    seen
}

/// Polls for `duration` and returns everything that arrived.
fn poll_for(client: *mut MoqClient, duration: Duration) -> Vec<Seen> {
    poll_until(client, duration, |_| false)
}

/// Takes every queued event without waiting for more.
fn drain(client: *mut MoqClient) -> Vec<Seen> {
    let mut seen = Vec::new();
    loop {
        let batch = poll(client, 0);
        if batch.is_empty() {
            return seen;
        }
        seen.extend(batch);
    }
}

/// The payloads of `subscriber`'s OBJECT events, in order.
fn objects_of(events: &[Seen], subscriber: *mut MoqSubscriber) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|event| event.object_of(subscriber))
        .map(<[u8]>::to_vec)
        .collect()
}

/// The STATUS values of `subscriber`'s events, in order.
fn statuses_of(events: &[Seen], subscriber: *mut MoqSubscriber) -> Vec<MoqSubscriptionStatus> {
    events
        .iter()
        .filter_map(|event| match event {
            Seen::Status {
                subscriber: source,
                status,
                ..
            } if *source == subscriber as usize => Some(*status),
            _ => None,
        })
        .collect()
}

fn connection_states(events: &[Seen]) -> Vec<MoqConnectionState> {
    events
        .iter()
        .filter_map(|event| match event {
            Seen::Connection(state) => Some(*state),
            _ => None,
        })
        .collect()
}

// ── Subscriptions, payloads, stats ──────────────────────────────────────────────────────────

/// The default options with poll delivery, `capacity` (0 = default) and `policy`.
fn poll_options(capacity: u32, policy: MoqQueuePolicy) -> MoqSubscribeOptions {
    let mut options = moq_subscribe_options_default();
    options.delivery = MOQ_DELIVER_POLL;
    options.queue_capacity = capacity;
    options.queue_policy = policy;
    options
}

/// `moq_subscribe_ex` as C calls it; NULL on failure (see `last_error`).
fn subscribe_ex(
    client: *mut MoqClient,
    namespace: &str,
    track: &str,
    options: &MoqSubscribeOptions,
    on_object: MoqObjectCallback,
    on_status: MoqStatusCallback,
) -> *mut MoqSubscriber {
    let (namespace, track) = (cstr(namespace), cstr(track));
    // SAFETY: both names are NUL-terminated and outlive the call; `options` is a whole struct;
    // the callbacks (if any) ignore their arguments and `user_data` is NULL.
    unsafe {
        moq_subscribe_ex(
            client,
            namespace.as_ptr(),
            track.as_ptr(),
            options,
            on_object,
            on_status,
            std::ptr::null_mut(),
        )
    }
}

/// A poll-mode subscription; fails the test if `moq_subscribe_ex` refuses it.
fn subscribe_poll(
    client: *mut MoqClient,
    namespace: &str,
    track: &str,
    capacity: u32,
    policy: MoqQueuePolicy,
) -> *mut MoqSubscriber {
    let options = poll_options(capacity, policy);
    let subscriber = subscribe_ex(client, namespace, track, &options, None, None);
    assert!(!subscriber.is_null(), "moq_subscribe_ex (poll): {}", last_error());
    subscriber
}

/// Polls until `subscriber` reports SUBSCRIBED; returns the events seen meanwhile.
#[track_caller]
fn wait_subscribed(client: *mut MoqClient, subscriber: *mut MoqSubscriber) -> Vec<Seen> {
    let events = poll_until(client, WAIT, |seen| {
        seen.iter()
            .any(|event| event.is_status(subscriber, MOQ_SUBSCRIPTION_SUBSCRIBED))
    });
    assert!(
        events
            .iter()
            .any(|event| event.is_status(subscriber, MOQ_SUBSCRIPTION_SUBSCRIBED)),
        "no STATUS SUBSCRIBED for {subscriber:?} within {WAIT:?}; events: {events:?}"
    );
    events
}

/// Object `index`'s payload: its index (big-endian), then `index % 61` bytes derived from it.
fn payload_for(index: u32) -> Vec<u8> {
    let mut payload = index.to_be_bytes().to_vec();
    payload.extend((0..index % 61).map(|j| (index.wrapping_mul(7) ^ j) as u8));
    payload
}

/// The index a [`payload_for`] payload starts with.
fn index_of(payload: &[u8]) -> u32 {
    let bytes: [u8; 4] = payload[..4].try_into().expect("a payload of at least 4 bytes");
    u32::from_be_bytes(bytes)
}

/// Publishes objects `range` (one group each, stream delivery), failing the test on an error.
fn publish_range(publisher: *mut MoqPublisher, range: std::ops::Range<u32>) {
    for index in range {
        let (code, message) = publish(publisher, &payload_for(index), MOQ_DELIVERY_STREAM);
        assert_eq!(code, MoqResultCode::MOQ_OK, "publishing object {index}: {message}");
    }
}

/// Waits until `subscriber` has taken in at least `count` objects (queued or dropped).
#[track_caller]
fn wait_received(subscriber: *mut MoqSubscriber, count: u64, timeout: Duration) -> MoqStats {
    wait_until(timeout, || subscriber_stats(subscriber).objects_received >= count);
    let stats = subscriber_stats(subscriber);
    assert!(
        stats.objects_received >= count,
        "subscriber received {} of {count} objects within {timeout:?}",
        stats.objects_received
    );
    stats
}

/// The protocol version `client` negotiated.
fn protocol_version(client: *mut MoqClient) -> String {
    let mut buf = [0 as std::ffi::c_char; 64];
    // SAFETY: `buf` has `buf.len()` writable bytes.
    assert_ok(unsafe { moq_client_protocol_version(client, buf.as_mut_ptr(), buf.len()) });
    text(buf.as_ptr())
}

/// A client with `poll_events` on, connected to `relay` (no connection callback).
fn connected_client_polling_events(relay: &TestRelay) -> *mut MoqClient {
    let fingerprint = cstr(&relay.fingerprint);
    let mut config = config_pinned(&fingerprint, 5000);
    config.poll_events = true;
    // SAFETY: `config` is a whole `MoqClientConfig`; its strings outlive the call.
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "client: {}", last_error());
    // SAFETY: the URL is NUL-terminated and outlives the call; no callback.
    assert_ok(unsafe { moq_connect(client, cstr(&relay.url).as_ptr(), None, std::ptr::null_mut()) });
    client
}

/// The process's resident set size in KiB (`VmRSS` in /proc/self/status).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line in /proc/self/status")
}

// ── 1. Basic delivery ───────────────────────────────────────────────────────────────────────

#[test]
fn poll_subscription_delivers_every_object_in_order_then_ended_once_and_last() {
    let _shared = shared_process();
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "poll-basic", "objects");
    let subscriber = subscribe_poll(sub_client, "poll-basic", "objects", 0, MOQ_QUEUE_DROP_OLDEST);

    let before = wait_subscribed(sub_client, subscriber);
    assert!(
        objects_of(&before, subscriber).is_empty(),
        "objects arrived before SUBSCRIBED"
    );
    println!("basic: negotiated {}", protocol_version(sub_client));
    std::thread::sleep(SETTLE);

    const COUNT: u32 = 1000;
    publish_range(publisher, 0..COUNT);
    let started = Instant::now();
    let events = poll_until(sub_client, WAIT, |seen| {
        objects_of(seen, subscriber).len() >= COUNT as usize
    });
    println!(
        "basic: {COUNT} objects polled {:?} after the last publish",
        started.elapsed()
    );

    let objects: Vec<&Seen> = events
        .iter()
        .filter(|event| event.object_of(subscriber).is_some())
        .collect();
    assert_eq!(objects.len(), COUNT as usize, "objects polled of {COUNT}");
    let mut last_group = None;
    for (index, event) in objects.iter().enumerate() {
        let Seen::Object {
            group_id,
            object_id,
            delivery_mode,
            payload,
            ..
        } = event
        else {
            unreachable!()
        };
        assert_eq!(
            payload,
            &payload_for(index as u32),
            "object {index}: payload or order wrong"
        );
        assert_eq!(*delivery_mode, MOQ_DELIVERY_STREAM, "object {index}: delivery mode");
        assert_eq!(
            *object_id, 0,
            "object {index}: moq_publish_data makes one group per object"
        );
        if let Some(last) = last_group {
            assert!(*group_id > last, "object {index}: group {group_id} after group {last}");
        }
        last_group = Some(*group_id);
    }
    assert!(
        statuses_of(&events, subscriber).is_empty(),
        "unexpected status events among the objects: {:?}",
        statuses_of(&events, subscriber)
    );

    assert_ok(moq_publisher_finish(publisher));
    let mut tail = poll_until(sub_client, WAIT, |seen| {
        seen.iter()
            .any(|event| event.is_status(subscriber, MOQ_SUBSCRIPTION_ENDED))
    });
    tail.extend(poll_for(sub_client, Duration::from_millis(500)));
    let mine: Vec<&Seen> = tail
        .iter()
        .filter(|event| event.subscriber() == Some(subscriber as usize))
        .collect();
    let ended = mine
        .iter()
        .filter(|event| event.is_status(subscriber, MOQ_SUBSCRIPTION_ENDED))
        .count();
    assert_eq!(ended, 1, "ENDED events after moq_publisher_finish: {mine:?}");
    assert!(
        mine.last()
            .is_some_and(|event| event.is_status(subscriber, MOQ_SUBSCRIPTION_ENDED)),
        "ENDED is not the subscriber's last event: {mine:?}"
    );
    assert_eq!(
        mine.len(),
        1,
        "events besides ENDED after all objects were polled: {mine:?}"
    );
    if let Some(Seen::Status { code, .. }) = mine.last() {
        assert_eq!(*code, 0, "ENDED carries code 0");
    }

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

// ── 2. Argument validation ──────────────────────────────────────────────────────────────────

unsafe extern "C" fn ignore_object(_: *mut c_void, _: *const MoqObjectInfo, _: *const u8, _: usize) {}

unsafe extern "C" fn ignore_status(_: *mut c_void, _: MoqSubscriptionStatus, _: u32, _: *const std::ffi::c_char) {}

#[test]
fn poll_mode_rejects_callbacks_bad_queue_options_and_bad_poll_arguments() {
    let _shared = shared_process();
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let default = poll_options(0, MOQ_QUEUE_DROP_OLDEST);

    // Callbacks with poll delivery.
    for (what, on_object, on_status) in [
        ("on_object", Some(ignore_object as _), None),
        ("on_status", None, Some(ignore_status as _)),
        ("both callbacks", Some(ignore_object as _), Some(ignore_status as _)),
    ] {
        let subscriber = subscribe_ex(client, "poll-args", "objects", &default, on_object, on_status);
        assert!(subscriber.is_null(), "poll delivery with {what} was accepted");
        let error = last_error();
        assert!(
            error.contains("MOQ_DELIVER_POLL") && error.contains("NULL callbacks"),
            "poll delivery with {what}: {error}"
        );
    }

    // Queue policy and capacity out of range.
    for policy in [3, 7, u32::MAX] {
        let subscriber = subscribe_ex(client, "poll-args", "objects", &poll_options(0, policy), None, None);
        assert!(subscriber.is_null(), "queue_policy {policy} was accepted");
        let error = last_error();
        assert!(
            error.contains("queue_policy") && error.contains(&policy.to_string()),
            "queue_policy {policy}: {error}"
        );
    }
    for capacity in [1_048_577, u32::MAX] {
        let options = poll_options(capacity, MOQ_QUEUE_DROP_OLDEST);
        let subscriber = subscribe_ex(client, "poll-args", "objects", &options, None, None);
        assert!(subscriber.is_null(), "queue_capacity {capacity} was accepted");
        let error = last_error();
        assert!(
            error.contains("queue_capacity") && error.contains(&capacity.to_string()),
            "queue_capacity {capacity}: {error}"
        );
    }
    let mut bad_delivery = default;
    bad_delivery.delivery = 2;
    assert!(subscribe_ex(client, "poll-args", "objects", &bad_delivery, None, None).is_null());
    assert!(last_error().contains("delivery"), "delivery 2: {}", last_error());
    // The largest capacity is accepted.
    let largest = poll_options(1_048_576, MOQ_QUEUE_DROP_NEWEST);
    let subscriber = subscribe_ex(client, "poll-args", "objects", &largest, None, None);
    assert!(
        !subscriber.is_null(),
        "queue_capacity 1048576 refused: {}",
        last_error()
    );
    moq_subscriber_destroy(subscriber);

    // moq_poll: NULL events with room asked for.
    // SAFETY: NULL `events` is what is being tested; the library must not write through it.
    let count = unsafe { moq_poll(client, std::ptr::null_mut(), 4, 0) };
    assert_eq!(count, 0);
    let error = last_error();
    assert!(error.contains("events is NULL"), "NULL events, max 4: {error}");

    // max_events 0: nothing written, no wait, with or without a buffer.
    for with_buffer in [false, true] {
        let mut events = blank_events(1);
        let pointer = if with_buffer {
            events.as_mut_ptr()
        } else {
            std::ptr::null_mut()
        };
        let started = Instant::now();
        // SAFETY: `max_events` is 0, so `events` (NULL or a live buffer) is never written.
        let count = unsafe { moq_poll(client, pointer, 0, 2000) };
        let took = started.elapsed();
        assert_eq!(count, 0, "max_events 0 (buffer: {with_buffer})");
        assert!(took < Duration::from_secs(1), "max_events 0 waited {took:?}");
        assert_eq!(events[0].kind, 0, "max_events 0 wrote an event");
    }

    // Invalid client handles: NULL, made up, destroyed.
    let mut events = blank_events(4);
    assert_eq!(poll_into(std::ptr::null_mut(), &mut events, 0), 0);
    let error = last_error();
    assert!(
        error.contains("handle") && error.contains("NULL"),
        "NULL client: {error}"
    );

    let made_up = 0xdead_bee0usize as *mut MoqClient;
    assert_eq!(poll_into(made_up, &mut events, 0), 0);
    let error = last_error();
    assert!(
        error.contains("handle") && error.contains("deadbee0"),
        "made-up client: {error}"
    );

    let config = config_plain(0);
    // SAFETY: `config` is a whole `MoqClientConfig`.
    let destroyed = unsafe { moq_client_create_ex(&config) };
    assert!(!destroyed.is_null(), "client: {}", last_error());
    moq_client_destroy(destroyed);
    let started = Instant::now();
    assert_eq!(poll_into(destroyed, &mut events, 1000), 0);
    let took = started.elapsed();
    let error = last_error();
    assert!(
        error.contains("handle") && error.contains(&format!("{:x}", destroyed as usize)),
        "destroyed client: {error}"
    );
    assert!(
        took < Duration::from_millis(500),
        "a poll on a destroyed client waited {took:?}"
    );
    assert!(events.iter().all(|event| event.kind == 0), "a failed poll wrote events");

    moq_client_destroy(client);
}

// ── 3. Queue policies ───────────────────────────────────────────────────────────────────────

/// Publishes 100 objects to a poll subscription of capacity 8 that is not polled, waits until
/// all arrived, then polls: returns the indices delivered and the subscriber's stats.
fn run_policy(policy: MoqQueuePolicy, tag: &str) -> (Vec<u32>, MoqStats) {
    const COUNT: u32 = 100;
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let namespace = format!("poll-policy-{tag}");
    let publisher = publisher(pub_client, &namespace, "objects");
    let subscriber = subscribe_poll(sub_client, &namespace, "objects", 8, policy);
    wait_subscribed(sub_client, subscriber);
    std::thread::sleep(SETTLE);

    publish_range(publisher, 0..COUNT);
    wait_received(subscriber, u64::from(COUNT), WAIT);
    let events = drain(sub_client);
    let indices: Vec<u32> = objects_of(&events, subscriber)
        .iter()
        .map(|payload| index_of(payload))
        .collect();
    for event in events.iter().filter(|event| event.object_of(subscriber).is_some()) {
        let Seen::Object { payload, .. } = event else {
            unreachable!()
        };
        assert_eq!(payload, &payload_for(index_of(payload)), "payload corrupted");
    }
    let stats = subscriber_stats(subscriber);
    println!(
        "policy {tag}: delivered {:?}, received {}, dropped_queue_full {}",
        indices, stats.objects_received, stats.objects_dropped_queue_full
    );
    assert_eq!(stats.objects_received, u64::from(COUNT), "objects taken in");
    assert_eq!(
        stats.objects_dropped_queue_full + indices.len() as u64,
        stats.objects_received,
        "dropped + delivered != received"
    );

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
    (indices, stats)
}

#[test]
fn drop_oldest_queue_of_8_keeps_the_newest_8_of_100() {
    let _shared = shared_process();
    let (indices, stats) = run_policy(MOQ_QUEUE_DROP_OLDEST, "drop-oldest");
    assert_eq!(indices, (92..100).collect::<Vec<u32>>());
    assert_eq!(stats.objects_dropped_queue_full, 92);
}

#[test]
fn drop_newest_queue_of_8_keeps_the_first_8_of_100() {
    let _shared = shared_process();
    let (indices, stats) = run_policy(MOQ_QUEUE_DROP_NEWEST, "drop-newest");
    assert_eq!(indices, (0..8).collect::<Vec<u32>>());
    assert_eq!(stats.objects_dropped_queue_full, 92);
}

#[test]
fn latest_only_queue_keeps_only_the_last_of_100() {
    let _shared = shared_process();
    let (indices, stats) = run_policy(MOQ_QUEUE_LATEST_ONLY, "latest-only");
    assert_eq!(indices, vec![99]);
    assert_eq!(stats.objects_dropped_queue_full, 99);
}

// ── 4. Bounded memory ───────────────────────────────────────────────────────────────────────

/// Objects the memory test publishes, their size, and how they are paced.
const MEMORY_TOTAL: u32 = 100_000;
const MEMORY_OBJECT_SIZE: usize = 1024;
const MEMORY_SECONDS: u32 = 10;
const MEMORY_PER_GROUP: u32 = 100;
/// Set in the environment of the child process that runs the relay and the publisher.
const MEMORY_CHILD_ENV: &str = "MOQ_POLL_MODE_MEMORY_CHILD";
const MEMORY_CHILD_TEST: &str = "a_consumer_that_never_polls_keeps_memory_bounded";
const KIB_PER_MIB: u64 = 1024;

/// The other half of [`a_consumer_that_never_polls_keeps_memory_bounded`], run in a child
/// process (this test binary again, running that test with [`MEMORY_CHILD_ENV`] set) so that the
/// publisher's and the relay's caches do not count in the consumer's RSS.
///
/// Protocol on stdin/stdout, one line each: prints `CHILD READY <url> <fingerprint>`, waits for
/// `GO`, publishes [`MEMORY_TOTAL`] objects over [`MEMORY_SECONDS`] s, prints `CHILD PUBLISHED
/// <count> <ms>`, then exits when stdin closes or says `EXIT`.
fn relay_and_publisher_process_for_the_memory_test() {
    use std::io::{BufRead, Write};
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let publisher = publisher(client, "poll-memory", "objects");
    let mut stdout = std::io::stdout();
    writeln!(stdout, "CHILD READY {} {}", relay.url, relay.fingerprint).expect("write to the parent");
    stdout.flush().expect("flush to the parent");
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    if stdin.read_line(&mut line).unwrap_or(0) == 0 || line.trim() != "GO" {
        return;
    }

    let started = Instant::now();
    let mut payload = vec![0u8; MEMORY_OBJECT_SIZE];
    let per_second = MEMORY_TOTAL / MEMORY_SECONDS;
    let mut index = 0u32;
    for second in 1..=MEMORY_SECONDS {
        while index < second * per_second {
            // SAFETY: a NULL `out_group_id` is allowed (the id is not needed).
            assert_ok(unsafe { moq_publisher_begin_group(publisher, std::ptr::null_mut()) });
            for _ in 0..MEMORY_PER_GROUP {
                payload[..4].copy_from_slice(&index.to_be_bytes());
                // SAFETY: `payload` has `payload.len()` readable bytes.
                let result = unsafe { moq_publish_object(publisher, payload.as_ptr(), payload.len(), 0) };
                let (code, message) = take(result);
                assert_eq!(code, MoqResultCode::MOQ_OK, "object {index}: {message}");
                index += 1;
            }
            assert_ok(moq_publisher_end_group(publisher));
        }
        let next = started + Duration::from_secs(u64::from(second));
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    writeln!(stdout, "CHILD PUBLISHED {index} {}", started.elapsed().as_millis()).expect("write to the parent");
    stdout.flush().expect("flush to the parent");
    line.clear();
    let _ = stdin.read_line(&mut line);

    moq_publisher_destroy(publisher);
    moq_client_destroy(client);
    drop(relay);
}

/// The relay-and-publisher child process; killed when dropped (also while a test unwinds).
struct MemoryChild {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl MemoryChild {
    fn start() -> Self {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args([MEMORY_CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(MEMORY_CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the relay-and-publisher child process");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("the child's stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest may print "test … " on the same line first.
                if let Some(start) = line.find("CHILD ") {
                    if tx.send(line[start + "CHILD ".len()..].to_string()).is_err() {
                        return;
                    }
                }
            }
        });
        Self { child, stdin, lines }
    }

    /// The next `CHILD …` line (without the prefix), waiting at most `timeout`.
    fn expect_line(&self, timeout: Duration) -> String {
        self.lines
            .recv_timeout(timeout)
            .unwrap_or_else(|err| panic!("no line from the child process within {timeout:?}: {err}"))
    }

    /// The next line if one is ready.
    fn try_line(&self) -> Option<String> {
        self.lines.try_recv().ok()
    }

    fn send(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("the child's stdin");
        writeln!(stdin, "{line}").expect("write to the child");
        stdin.flush().expect("flush to the child");
    }
}

impl Drop for MemoryChild {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            use std::io::Write;
            let _ = writeln!(stdin, "EXIT");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_consumer_that_never_polls_keeps_memory_bounded() {
    if std::env::var_os(MEMORY_CHILD_ENV).is_some() {
        return relay_and_publisher_process_for_the_memory_test();
    }
    let _alone = whole_process();
    let mut child = MemoryChild::start();
    let ready = child.expect_line(Duration::from_secs(30));
    let mut words = ready.split_whitespace();
    let (Some("READY"), Some(url), Some(fingerprint)) = (words.next(), words.next(), words.next()) else {
        panic!("unexpected first line from the child: {ready:?}")
    };

    let fingerprint = cstr(fingerprint);
    let config = config_pinned(&fingerprint, 5000);
    // SAFETY: `config` is a whole `MoqClientConfig`; its strings outlive the call.
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "client: {}", last_error());
    // SAFETY: the URL is NUL-terminated and outlives the call; no callback.
    assert_ok(unsafe { moq_connect(client, cstr(url).as_ptr(), None, std::ptr::null_mut()) });
    let subscriber = subscribe_poll(client, "poll-memory", "objects", 0, MOQ_QUEUE_DROP_OLDEST);
    wait_subscribed(client, subscriber);
    std::thread::sleep(SETTLE);

    // Never poll while the child publishes; sample RSS and the subscriber's counters each second.
    let before = rss_kib();
    let started = Instant::now();
    child.send("GO");
    let mut series = vec![(0.0, before, 0u64, 0u64)];
    let mut published = None;
    let deadline = started + Duration::from_secs(u64::from(MEMORY_SECONDS) + 4);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let stats = subscriber_stats(subscriber);
        series.push((
            started.elapsed().as_secs_f64(),
            rss_kib(),
            stats.objects_received,
            stats.objects_dropped_queue_full,
        ));
        if published.is_none() {
            published = child.try_line();
        }
        if published.is_some() && stats.objects_received >= u64::from(MEMORY_TOTAL) {
            break;
        }
    }
    let after = rss_kib();
    let stats = subscriber_stats(subscriber);
    let peak = series.iter().map(|sample| sample.1).max().unwrap_or(before).max(after);
    let growth = peak.saturating_sub(before);

    println!(
        "memory: the child published {MEMORY_TOTAL} objects of {MEMORY_OBJECT_SIZE} B ({MEMORY_PER_GROUP} per group) \
         over {MEMORY_SECONDS} s: {published:?}"
    );
    println!("memory: consumer RSS before {} MiB", before / KIB_PER_MIB);
    for (at, rss, received, dropped) in &series {
        println!(
            "memory:   t={at:5.1}s RSS {:4} MiB (+{:4} MiB) received {received:6} dropped_queue_full {dropped:6}",
            rss / KIB_PER_MIB,
            rss.saturating_sub(before) / KIB_PER_MIB
        );
    }
    println!(
        "memory: consumer RSS after {} MiB, peak growth {} MiB; received {}, dropped_queue_full {}",
        after / KIB_PER_MIB,
        growth / KIB_PER_MIB,
        stats.objects_received,
        stats.objects_dropped_queue_full
    );

    // One poll: at most the default capacity of objects; the counters add up.
    let mut events = blank_events(4096);
    let first = poll_into(client, &mut events, 0);
    let first_objects = events[..first]
        .iter()
        .filter(|event| event.kind == MOQ_EVENT_OBJECT)
        .count();
    let mut polled: Vec<Seen> = events[..first].iter().map(copy_event).collect();
    polled.extend(drain(client));
    let delivered = objects_of(&polled, subscriber);
    let stats = subscriber_stats(subscriber);
    println!(
        "memory: first poll {first} events ({first_objects} objects); {} objects delivered in all, newest {:?}; \
         received {}, dropped_queue_full {}",
        delivered.len(),
        delivered.last().map(|payload| index_of(payload)),
        stats.objects_received,
        stats.objects_dropped_queue_full
    );
    assert!(
        first_objects <= 1024,
        "one poll returned {first_objects} objects (capacity 1024)"
    );
    assert!(
        delivered.len() <= 1024,
        "{} objects delivered (capacity 1024)",
        delivered.len()
    );
    assert_eq!(
        stats.objects_dropped_queue_full + delivered.len() as u64,
        stats.objects_received,
        "dropped_queue_full + delivered != received"
    );
    assert_eq!(
        stats.objects_received,
        u64::from(MEMORY_TOTAL),
        "objects that reached the subscriber"
    );
    assert_eq!(delivered.len(), 1024, "a full queue holds its capacity");
    assert_eq!(
        delivered.last().map(|payload| index_of(payload)),
        Some(MEMORY_TOTAL - 1),
        "DROP_OLDEST keeps the newest object"
    );

    moq_subscriber_destroy(subscriber);
    moq_client_destroy(client);
    drop(child);

    assert!(
        growth < 64 * KIB_PER_MIB,
        "the consumer's RSS grew by {} MiB while {} MiB were published to it and it never polled \
         (its poll queue holds at most 1024 objects = 1 MiB)",
        growth / KIB_PER_MIB,
        u64::from(MEMORY_TOTAL) * MEMORY_OBJECT_SIZE as u64 / (1024 * 1024)
    );
}

// ── 5. Connection events ────────────────────────────────────────────────────────────────────

#[test]
fn poll_events_client_reports_connecting_connected_then_disconnected() {
    let _shared = shared_process();
    let relay = TestRelay::start();
    let client = connected_client_polling_events(&relay);
    let events = poll_until(client, WAIT, |seen| {
        connection_states(seen).contains(&MoqConnectionState::MOQ_STATE_CONNECTED)
    });
    assert_eq!(
        connection_states(&events),
        [
            MoqConnectionState::MOQ_STATE_CONNECTING,
            MoqConnectionState::MOQ_STATE_CONNECTED
        ],
        "events after moq_connect: {events:?}"
    );

    assert_ok(moq_disconnect(client));
    let events = poll_until(client, WAIT, |seen| {
        connection_states(seen).contains(&MoqConnectionState::MOQ_STATE_DISCONNECTED)
    });
    let mut events = events;
    events.extend(poll_for(client, Duration::from_millis(200)));
    assert_eq!(
        connection_states(&events),
        [MoqConnectionState::MOQ_STATE_DISCONNECTED],
        "events after moq_disconnect: {events:?}"
    );

    // Without `poll_events`, connection changes are not queued.
    let quiet = connected_client(&relay);
    assert_ok(moq_disconnect(quiet));
    let events = poll_for(quiet, Duration::from_millis(300));
    assert!(events.is_empty(), "client without poll_events queued {events:?}");

    moq_client_destroy(quiet);
    moq_client_destroy(client);
}

// ── 6. Announcements ────────────────────────────────────────────────────────────────────────

fn watch_announces(client: *mut MoqClient, prefix: Option<&str>) {
    let prefix = prefix.map(cstr);
    let pointer = prefix.as_ref().map_or(std::ptr::null(), |prefix| prefix.as_ptr());
    // SAFETY: `prefix` is NULL or NUL-terminated and outlives the call; NULL callback.
    assert_ok(unsafe { moq_subscribe_announces_ex(client, pointer, None, std::ptr::null_mut()) });
}

fn has_announce(events: &[Seen], namespace: &str, active: bool) -> bool {
    events.contains(&Seen::Announce {
        namespace: namespace.to_string(),
        active,
    })
}

#[test]
fn announcements_arrive_through_poll_and_withdrawals_follow_the_publisher() {
    let _shared = shared_process();
    let relay = TestRelay::start();
    let everything = connected_client(&relay);
    let prefixed = connected_client(&relay);
    watch_announces(everything, None);
    watch_announces(prefixed, Some("poll-ann"));

    let pub_client = connected_client(&relay);
    let inside = publisher(pub_client, "poll-ann/room1", "objects");
    let outside = publisher(pub_client, "elsewhere/room2", "objects");

    let seen_all = poll_until(everything, WAIT, |seen| {
        has_announce(seen, "poll-ann/room1", true) && has_announce(seen, "elsewhere/room2", true)
    });
    assert!(
        has_announce(&seen_all, "poll-ann/room1", true),
        "NULL prefix: {seen_all:?}"
    );
    assert!(
        has_announce(&seen_all, "elsewhere/room2", true),
        "NULL prefix: {seen_all:?}"
    );
    let mut seen_prefixed = poll_until(prefixed, WAIT, |seen| has_announce(seen, "poll-ann/room1", true));
    assert!(
        has_announce(&seen_prefixed, "poll-ann/room1", true),
        "prefix poll-ann: {seen_prefixed:?}"
    );

    let started = Instant::now();
    moq_publisher_destroy(inside);
    moq_publisher_destroy(outside);
    moq_client_destroy(pub_client);
    seen_prefixed.extend(poll_until(prefixed, WAIT, |seen| {
        has_announce(seen, "poll-ann/room1", false)
    }));
    println!(
        "announce: withdrawal polled {:?} after the publisher's client was destroyed",
        started.elapsed()
    );
    assert!(
        has_announce(&seen_prefixed, "poll-ann/room1", false),
        "no withdrawal of poll-ann/room1 within {WAIT:?}: {seen_prefixed:?}"
    );
    let seen_all = poll_until(everything, WAIT, |seen| {
        has_announce(seen, "poll-ann/room1", false) && has_announce(seen, "elsewhere/room2", false)
    });
    assert!(
        has_announce(&seen_all, "poll-ann/room1", false),
        "NULL prefix: {seen_all:?}"
    );
    assert!(
        has_announce(&seen_all, "elsewhere/room2", false),
        "NULL prefix: {seen_all:?}"
    );

    seen_prefixed.extend(poll_for(prefixed, Duration::from_millis(200)));
    for event in &seen_prefixed {
        let Seen::Announce { namespace, .. } = event else {
            panic!("unexpected event on the announce-only client: {event:?}")
        };
        assert!(
            namespace.starts_with("poll-ann"),
            "prefix poll-ann reported {namespace}"
        );
    }

    moq_client_destroy(prefixed);
    moq_client_destroy(everything);
}

// ── 7. Payload lifetime ─────────────────────────────────────────────────────────────────────

#[test]
fn payloads_stay_readable_until_the_next_poll() {
    let _shared = shared_process();
    const FIRST: u32 = 20;
    const SECOND: u32 = 20;
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "poll-lifetime", "objects");
    let subscriber = subscribe_poll(sub_client, "poll-lifetime", "objects", 0, MOQ_QUEUE_DROP_OLDEST);
    wait_subscribed(sub_client, subscriber);
    std::thread::sleep(SETTLE);

    publish_range(publisher, 0..FIRST);
    wait_received(subscriber, u64::from(FIRST), WAIT);
    let mut held = blank_events(64);
    let count = poll_into(sub_client, &mut held, 1000);
    assert_eq!(count, FIRST as usize, "one poll of {FIRST} queued objects");

    // Other API calls on the same client and publisher before reading the payloads: more
    // objects arrive in the queue, a second poll subscription reports its status, stats.
    publish_range(publisher, FIRST..FIRST + SECOND);
    let second = subscribe_poll(sub_client, "poll-lifetime", "objects", 4, MOQ_QUEUE_LATEST_ONLY);
    wait_received(subscriber, u64::from(FIRST + SECOND), WAIT);
    let _ = subscriber_stats(second);
    let mut client_stats = MoqStats {
        struct_size: std::mem::size_of::<MoqStats>() as u32,
        ..Default::default()
    };
    // SAFETY: `client_stats` is a writable `MoqStats` with `struct_size` set.
    assert_ok(unsafe { moq_client_stats(sub_client, &mut client_stats) });
    std::thread::sleep(Duration::from_millis(100));

    for (index, event) in held[..count].iter().enumerate() {
        assert_eq!(event.kind, MOQ_EVENT_OBJECT, "event {index}");
        assert_eq!(event.subscriber, subscriber, "event {index}");
        // SAFETY: no moq_poll on `sub_client` since `held` was filled.
        let payload = unsafe { payload_of(event) };
        assert_eq!(
            payload,
            payload_for(index as u32),
            "payload {index} changed before the next poll"
        );
    }

    // The next poll returns new events: the second batch and the new subscription's status.
    let events = poll_until(sub_client, WAIT, |seen| {
        objects_of(seen, subscriber).len() >= SECOND as usize
    });
    let indices: Vec<u32> = objects_of(&events, subscriber).iter().map(|p| index_of(p)).collect();
    assert_eq!(
        indices,
        (FIRST..FIRST + SECOND).collect::<Vec<u32>>(),
        "the next poll's objects"
    );
    for payload in objects_of(&events, subscriber) {
        assert_eq!(payload, payload_for(index_of(&payload)));
    }

    moq_subscriber_destroy(second);
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

// ── 8. Concurrency ──────────────────────────────────────────────────────────────────────────

#[test]
fn a_second_poller_is_refused_and_client_destroy_ends_a_blocked_poll() {
    let _shared = shared_process();
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let client_id = client as usize;

    let (done_tx, done_rx) = mpsc::channel();
    let poller = std::thread::spawn(move || {
        let client = client_id as *mut MoqClient;
        let mut events = blank_events(16);
        let count = poll_into(client, &mut events, 5000);
        let error = last_error();
        let _ = done_tx.send((count, Instant::now(), error));
    });

    // Thread B: refused while A waits (retry briefly in case A has not entered moq_poll yet).
    std::thread::sleep(Duration::from_millis(200));
    let mut events = blank_events(4);
    let mut refused = false;
    let deadline = Instant::now() + Duration::from_secs(2);
    while !refused && Instant::now() < deadline {
        let started = Instant::now();
        let count = poll_into(client, &mut events, 100);
        let took = started.elapsed();
        assert_eq!(count, 0, "the second poller got events");
        refused = last_error().contains("another thread is in moq_poll");
        if refused {
            println!("concurrency: the second poller was refused in {took:?}");
            assert!(took < Duration::from_millis(100), "the refused poll waited {took:?}");
        }
    }
    assert!(refused, "a second poller was not refused: {}", last_error());

    let destroy_started = Instant::now();
    moq_client_destroy(client);
    let destroy_took = destroy_started.elapsed();
    let (count, returned_at, error) = done_rx
        .recv_timeout(Duration::from_secs(6))
        .expect("the blocked poll did not return after moq_client_destroy");
    let _ = poller.join();
    let poll_ended_after = returned_at.saturating_duration_since(destroy_started);
    println!(
        "concurrency: moq_client_destroy took {destroy_took:?}; the blocked poll returned {poll_ended_after:?} after it started (result {count}, last error {error:?})"
    );
    assert_eq!(count, 0, "the blocked poll returned events after destroy");
    assert!(
        poll_ended_after < Duration::from_secs(1),
        "the blocked poll returned {poll_ended_after:?} after moq_client_destroy started"
    );
}

#[test]
fn destroying_a_poll_subscriber_discards_its_queued_events() {
    let _shared = shared_process();
    const COUNT: u32 = 50;
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "poll-discard", "objects");
    let doomed = subscribe_poll(sub_client, "poll-discard", "objects", 0, MOQ_QUEUE_DROP_OLDEST);
    let kept = subscribe_poll(sub_client, "poll-discard", "objects", 0, MOQ_QUEUE_DROP_OLDEST);
    let events = poll_until(sub_client, WAIT, |seen| {
        seen.iter()
            .any(|event| event.is_status(doomed, MOQ_SUBSCRIPTION_SUBSCRIBED))
            && seen
                .iter()
                .any(|event| event.is_status(kept, MOQ_SUBSCRIPTION_SUBSCRIBED))
    });
    assert_eq!(
        statuses_of(&events, doomed),
        [MOQ_SUBSCRIPTION_SUBSCRIBED],
        "{events:?}"
    );
    assert_eq!(statuses_of(&events, kept), [MOQ_SUBSCRIPTION_SUBSCRIBED], "{events:?}");
    std::thread::sleep(SETTLE);

    publish_range(publisher, 0..COUNT);
    wait_received(doomed, u64::from(COUNT), WAIT);
    wait_received(kept, u64::from(COUNT), WAIT);
    moq_subscriber_destroy(doomed);
    // More objects after the destroy must not reach the destroyed subscription either.
    publish_range(publisher, COUNT..COUNT * 2);
    wait_received(kept, u64::from(COUNT * 2), WAIT);

    let mut events = drain(sub_client);
    events.extend(poll_for(sub_client, Duration::from_millis(300)));
    let leftovers: Vec<&Seen> = events
        .iter()
        .filter(|event| event.subscriber() == Some(doomed as usize))
        .collect();
    assert!(
        leftovers.is_empty(),
        "{} events of the destroyed subscriber were polled, e.g. {:?}",
        leftovers.len(),
        leftovers.first()
    );
    let indices: Vec<u32> = objects_of(&events, kept).iter().map(|p| index_of(p)).collect();
    assert_eq!(
        indices,
        (0..COUNT * 2).collect::<Vec<u32>>(),
        "the other subscriber's objects"
    );

    moq_subscriber_destroy(kept);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

// ── 9. Timeout accuracy ─────────────────────────────────────────────────────────────────────

#[test]
fn an_empty_poll_waits_its_timeout() {
    let _shared = shared_process();
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let mut events = blank_events(8);

    let mut waits = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let count = poll_into(client, &mut events, 100);
        let took = started.elapsed();
        assert_eq!(count, 0, "events on a client without subscriptions");
        waits.push(took);
        assert!(
            took >= Duration::from_millis(80) && took < Duration::from_secs(1),
            "moq_poll with a 100 ms timeout returned after {took:?}"
        );
    }
    let started = Instant::now();
    assert_eq!(poll_into(client, &mut events, 0), 0);
    let immediate = started.elapsed();
    println!("timeout: 100 ms polls took {waits:?}; a 0 ms poll took {immediate:?}");
    assert!(immediate < Duration::from_millis(50), "a 0 ms poll took {immediate:?}");

    moq_client_destroy(client);
}
