//! The object model through the C API: explicit groups with object ids, timestamps and
//! priorities; end of track (ENDED once) and abort (ERROR with the code); subscription options
//! (start position, wait for the track, latency bound) and their status reports; limits.

mod common;

use common::*;
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void, CStr};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One received object: its metadata and payload.
#[derive(Clone, Debug)]
struct Received {
    info: MoqObjectInfo,
    data: Vec<u8>,
}

/// Records objects and status reports of one subscription.
#[derive(Default)]
struct Feed {
    objects: Mutex<Vec<Received>>,
    statuses: Mutex<Vec<(MoqSubscriptionStatus, u32, String)>>,
    /// Objects that arrived after a terminal status (must stay 0).
    after_terminal: Mutex<usize>,
    changed: Condvar,
    /// Milliseconds each object callback sleeps (a slow consumer).
    delay_ms: Mutex<u64>,
}

impl Feed {
    fn terminal_seen(&self) -> bool {
        self.statuses
            .lock()
            .unwrap()
            .iter()
            .any(|(status, _, _)| *status != MOQ_SUBSCRIPTION_SUBSCRIBED)
    }

    fn wait(&self, timeout: Duration, mut done: impl FnMut(&Feed) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            if Instant::now() >= deadline {
                return false;
            }
            let guard = self.objects.lock().unwrap();
            let _ = self.changed.wait_timeout(guard, Duration::from_millis(20)).unwrap();
        }
        true
    }

    fn wait_objects(&self, count: usize, timeout: Duration) -> usize {
        self.wait(timeout, |feed| feed.objects.lock().unwrap().len() >= count);
        self.objects.lock().unwrap().len()
    }

    fn wait_status(&self, status: MoqSubscriptionStatus, timeout: Duration) -> bool {
        self.wait(timeout, |feed| {
            feed.statuses.lock().unwrap().iter().any(|(s, _, _)| *s == status)
        })
    }

    fn statuses(&self) -> Vec<(MoqSubscriptionStatus, u32, String)> {
        self.statuses.lock().unwrap().clone()
    }
}

unsafe extern "C" fn on_object(user_data: *mut c_void, info: *const MoqObjectInfo, data: *const u8, len: usize) {
    // SAFETY: `user_data` is a kept `Feed`; `info` and `data` are valid during the call.
    let feed = unsafe { &*(user_data as *const Feed) };
    let delay = *feed.delay_ms.lock().unwrap();
    if delay > 0 {
        std::thread::sleep(Duration::from_millis(delay));
    }
    let data = match len {
        0 => Vec::new(),
        // SAFETY: `len` readable bytes at `data` during the call.
        _ => unsafe { std::slice::from_raw_parts(data, len) }.to_vec(),
    };
    if feed.terminal_seen() {
        *feed.after_terminal.lock().unwrap() += 1;
    }
    // SAFETY: valid during the call.
    let info = unsafe { *info };
    feed.objects.lock().unwrap().push(Received { info, data });
    feed.changed.notify_all();
}

unsafe extern "C" fn on_status(
    user_data: *mut c_void,
    status: MoqSubscriptionStatus,
    code: u32,
    message: *const c_char,
) {
    // SAFETY: `user_data` is a kept `Feed`; `message` is a valid string during the call.
    let feed = unsafe { &*(user_data as *const Feed) };
    let message = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    feed.statuses.lock().unwrap().push((status, code, message));
    feed.changed.notify_all();
}

fn subscribe_ex(
    client: *mut MoqClient,
    ns: &str,
    track: &str,
    options: &MoqSubscribeOptions,
    feed: &Arc<Feed>,
) -> *mut MoqSubscriber {
    // SAFETY: valid strings, options and callbacks; the feed is kept for the process.
    let subscriber = unsafe {
        moq_subscribe_ex(
            client,
            cstr(ns).as_ptr(),
            cstr(track).as_ptr(),
            options,
            Some(on_object),
            Some(on_status),
            Arc::as_ptr(feed) as *mut c_void,
        )
    };
    assert!(!subscriber.is_null(), "moq_subscribe_ex: {}", last_error());
    subscriber
}

fn stream_publisher(client: *mut MoqClient, ns: &str, track: &str, priority: u8) -> *mut MoqPublisher {
    let mut options = moq_publisher_options_default();
    options.priority = priority;
    // SAFETY: valid strings and options.
    let publisher = unsafe { moq_create_publisher_opts(client, cstr(ns).as_ptr(), cstr(track).as_ptr(), &options) };
    assert!(!publisher.is_null(), "publisher: {}", last_error());
    publisher
}

fn begin_group(publisher: *mut MoqPublisher) -> u64 {
    let mut id = u64::MAX;
    // SAFETY: `id` is writable.
    assert_ok(unsafe { moq_publisher_begin_group(publisher, &mut id) });
    id
}

fn publish_object(publisher: *mut MoqPublisher, data: &[u8], timestamp_us: u64) -> (MoqResultCode, String) {
    // SAFETY: `data` is readable for its length.
    take(unsafe { moq_publish_object(publisher, data.as_ptr(), data.len(), timestamp_us) })
}

/// A subscriber (on its own client) that is live on `ns/track`, with a 200 ms settle so the
/// relay's upstream subscription has reached the publisher (see README, moq-lite-01..05).
fn live_subscriber(
    relay: &TestRelay,
    ns: &str,
    track: &str,
    options: &MoqSubscribeOptions,
) -> (*mut MoqClient, *mut MoqSubscriber, Arc<Feed>) {
    let client = connected_client(relay);
    let feed = kept(Arc::new(Feed::default()));
    let subscriber = subscribe_ex(client, ns, track, options, &feed);
    assert!(
        feed.wait_status(MOQ_SUBSCRIPTION_SUBSCRIBED, Duration::from_secs(10)),
        "no SUBSCRIBED: {:?}",
        feed.statuses()
    );
    std::thread::sleep(Duration::from_millis(200));
    (client, subscriber, feed)
}

#[test]
fn groups_carry_ids_timestamps_and_priority() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let publisher = stream_publisher(pub_client, "om/groups", "state", 200);
    let (sub_client, subscriber, feed) =
        live_subscriber(&relay, "om/groups", "state", &moq_subscribe_options_default());

    let mut expected = Vec::new();
    for g in 0..5u64 {
        let group = begin_group(publisher);
        for o in 0..4u64 {
            let timestamp = 1_000_000 + g * 1000 + o;
            let payload = format!("g{g}o{o}").into_bytes();
            let (code, message) = publish_object(publisher, &payload, timestamp);
            assert_eq!(code, MoqResultCode::MOQ_OK, "{message}");
            expected.push((group, o, timestamp, payload));
        }
        assert_ok(moq_publisher_end_group(publisher));
    }
    assert_eq!(feed.wait_objects(20, Duration::from_secs(10)), 20);
    let objects = feed.objects.lock().unwrap().clone();
    let groups: Vec<u64> = expected.iter().map(|e| e.0).collect();
    assert!(
        groups.windows(2).all(|w| w[0] <= w[1]),
        "group ids increase: {groups:?}"
    );
    // SAFETY: a live client.
    let mut buf = [0 as c_char; 64];
    assert_ok(unsafe { moq_client_protocol_version(sub_client, buf.as_mut_ptr(), buf.len()) });
    let version = text(buf.as_ptr());
    for (received, (group, object, timestamp, payload)) in objects.iter().zip(&expected) {
        assert_eq!(received.data, *payload);
        assert_eq!(received.info.group_id, *group);
        assert_eq!(received.info.object_id, *object);
        assert_eq!(received.info.delivery_mode, MOQ_DELIVERY_STREAM);
        assert_eq!(received.info.priority, 200, "the publisher's track priority");
        if version.starts_with("moq-lite-05") || version.starts_with("moq-lite-06") {
            assert_eq!(received.info.timestamp_us, *timestamp, "timestamps travel on {version}");
        }
    }
    println!("negotiated {version}; first timestamp {}", objects[0].info.timestamp_us);

    // End of track: ENDED exactly once, nothing after it.
    assert_ok(moq_publisher_finish(publisher));
    assert!(
        feed.wait_status(MOQ_SUBSCRIPTION_ENDED, Duration::from_secs(10)),
        "{:?}",
        feed.statuses()
    );
    std::thread::sleep(Duration::from_millis(300));
    let statuses = feed.statuses();
    let terminal: Vec<_> = statuses.iter().filter(|s| s.0 != MOQ_SUBSCRIPTION_SUBSCRIBED).collect();
    assert_eq!(terminal.len(), 1, "one terminal status: {statuses:?}");
    assert_eq!(statuses.last().unwrap().0, MOQ_SUBSCRIPTION_ENDED);
    assert_eq!(*feed.after_terminal.lock().unwrap(), 0);
    assert!(!moq_is_subscribed(subscriber));
    let (code, _) = publish_object(publisher, b"late", 0);
    assert_eq!(code, MoqResultCode::MOQ_ERROR_CLOSED, "publishing after finish");

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

/// Waits for the one terminal status of `feed` and returns it.
fn terminal_status(feed: &Feed) -> (MoqSubscriptionStatus, u32, String) {
    assert!(
        feed.wait(Duration::from_secs(10), |f| f.terminal_seen()),
        "{:?}",
        feed.statuses()
    );
    std::thread::sleep(Duration::from_millis(300));
    let statuses = feed.statuses();
    let terminal: Vec<_> = statuses
        .iter()
        .filter(|s| s.0 != MOQ_SUBSCRIPTION_SUBSCRIBED)
        .cloned()
        .collect();
    assert_eq!(terminal.len(), 1, "exactly one terminal status: {statuses:?}");
    assert_eq!(statuses.last(), terminal.first(), "nothing after the terminal status");
    assert_eq!(*feed.after_terminal.lock().unwrap(), 0);
    terminal[0].clone()
}

/// `moq_publisher_finish` right after the last publish: every object still reaches the
/// subscriber, before ENDED. moq-net declares a track finished once its highest group arrived,
/// and groups travel out of order, so the reader keeps collecting lower groups after the end.
#[test]
fn finish_right_after_publishing_delivers_everything_before_ended() {
    const GROUPS: u32 = 300;
    const PER_GROUP: u32 = 8;
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let publisher = stream_publisher(pub_client, "om/finish", "t", 127);
    let (sub_client, subscriber, feed) = live_subscriber(&relay, "om/finish", "t", &moq_subscribe_options_default());
    for group in 0..GROUPS {
        begin_group(publisher);
        for object in 0..PER_GROUP {
            let mut payload = vec![0u8; 1024];
            payload[..4].copy_from_slice(&(group * PER_GROUP + object).to_be_bytes());
            assert_eq!(publish_object(publisher, &payload, 0).0, MoqResultCode::MOQ_OK);
        }
        assert_ok(moq_publisher_end_group(publisher));
    }
    for n in 0..10u32 {
        // publish_data groups too (one object each), then finish at once.
        let payload = (GROUPS * PER_GROUP + n).to_be_bytes();
        assert_eq!(
            publish(publisher, &payload, MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
    }
    assert_ok(moq_publisher_finish(publisher));
    let (status, _, message) = terminal_status(&feed);
    assert_eq!(status, MOQ_SUBSCRIPTION_ENDED, "{message}");
    let numbers: Vec<u32> = feed
        .objects
        .lock()
        .unwrap()
        .iter()
        .map(|o| u32::from_be_bytes(o.data[..4].try_into().unwrap()))
        .collect();
    let total = GROUPS * PER_GROUP + 10;
    assert_eq!(
        numbers,
        (0..total).collect::<Vec<_>>(),
        "every object, in order, before ENDED"
    );

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn abort_reports_error_with_the_code() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let publisher = stream_publisher(pub_client, "om/abort", "t", 127);
    // One subscriber through the relay, one on the publishing client itself.
    let (sub_client, remote, remote_feed) = live_subscriber(&relay, "om/abort", "t", &moq_subscribe_options_default());
    let local_feed = kept(Arc::new(Feed::default()));
    let local = subscribe_ex(
        pub_client,
        "om/abort",
        "t",
        &moq_subscribe_options_default(),
        &local_feed,
    );
    assert!(local_feed.wait_status(MOQ_SUBSCRIPTION_SUBSCRIBED, Duration::from_secs(10)));
    begin_group(publisher);
    assert_eq!(publish_object(publisher, b"x", 0).0, MoqResultCode::MOQ_OK);
    assert_eq!(remote_feed.wait_objects(1, Duration::from_secs(10)), 1);
    assert_eq!(local_feed.wait_objects(1, Duration::from_secs(10)), 1);

    assert_eq!(
        take(moq_publisher_abort(publisher, 70000)).0,
        MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT
    );
    assert_ok(moq_publisher_abort(publisher, 42));
    let (status, code, message) = terminal_status(&local_feed);
    assert_eq!(status, MOQ_SUBSCRIPTION_ERROR);
    assert_eq!(
        code, 42,
        "the abort code reaches a subscriber of the same client: {message}"
    );
    assert!(message.contains("42"), "{message}");
    // moq-relay 0.17 does not forward the code: its subscribers see the track vanish.
    let (status, code, message) = terminal_status(&remote_feed);
    assert_eq!(status, MOQ_SUBSCRIPTION_ERROR, "{message}");
    println!("through the relay: ERROR code {code}: {message}");

    assert_eq!(
        take(moq_publisher_abort(publisher, 1)).0,
        MoqResultCode::MOQ_ERROR_CLOSED
    );
    assert_eq!(publish_object(publisher, b"y", 0).0, MoqResultCode::MOQ_ERROR_CLOSED);
    moq_subscriber_destroy(local);
    moq_subscriber_destroy(remote);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn group_rules_and_limits_are_errors() {
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let publisher = stream_publisher(client, "om/limits", "t", 127);

    let (code, message) = publish_object(publisher, b"x", 0);
    assert_eq!(code, MoqResultCode::MOQ_ERROR_INVALID_STATE, "no open group: {message}");
    assert_eq!(
        take(moq_publisher_end_group(publisher)).0,
        MoqResultCode::MOQ_ERROR_INVALID_STATE
    );

    let first = begin_group(publisher);
    for i in 0..MOQ_MAX_GROUP_OBJECTS {
        let (code, message) = publish_object(publisher, &i.to_le_bytes(), 0);
        assert_eq!(code, MoqResultCode::MOQ_OK, "object {i}: {message}");
    }
    let (code, message) = publish_object(publisher, b"one too many", 0);
    assert_eq!(code, MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT);
    assert!(message.contains("8192"), "{message}");
    let (code, message) = take(unsafe { moq_publish_data(publisher, b"x".as_ptr(), 1, MOQ_DELIVERY_STREAM) });
    assert_eq!(
        code,
        MoqResultCode::MOQ_ERROR_INVALID_STATE,
        "publish_data with an open group: {message}"
    );
    let second = begin_group(publisher);
    assert!(second > first, "a new group ends the open one and gets a higher id");
    let big = vec![0u8; MOQ_MAX_OBJECT_SIZE + 1];
    assert_eq!(
        publish_object(publisher, &big, 0).0,
        MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT
    );
    assert_eq!(
        publish_object(publisher, b"x", 1 << 62).0,
        MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT
    );
    // SAFETY: NULL data with a length is rejected, not read.
    let (code, _) = take(unsafe { moq_publish_object(publisher, std::ptr::null(), 5, 0) });
    assert_eq!(code, MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT);
    assert_ok(moq_publisher_end_group(publisher));
    assert_ok(unsafe { moq_publisher_begin_group(publisher, std::ptr::null_mut()) });
    assert_ok(moq_publisher_finish(publisher));
    assert_ok(moq_publisher_finish(publisher));
    assert_eq!(
        take(unsafe { moq_publisher_begin_group(publisher, std::ptr::null_mut()) }).0,
        MoqResultCode::MOQ_ERROR_CLOSED
    );

    // Datagram publishers have no groups; descending order and bad sizes are refused.
    let mut options = moq_publisher_options_default();
    options.delivery_mode = MOQ_DELIVERY_DATAGRAM;
    // SAFETY: valid strings and options.
    let datagrams =
        unsafe { moq_create_publisher_opts(client, cstr("om/limits").as_ptr(), cstr("d").as_ptr(), &options) };
    assert!(!datagrams.is_null(), "{}", last_error());
    assert_eq!(
        take(unsafe { moq_publisher_begin_group(datagrams, std::ptr::null_mut()) }).0,
        MoqResultCode::MOQ_ERROR_INVALID_STATE
    );
    assert_eq!(
        publish_object(datagrams, b"x", 0).0,
        MoqResultCode::MOQ_ERROR_INVALID_STATE
    );
    let refuse = |options: MoqPublisherOptions, expected: MoqResultCode, track: &str| {
        // SAFETY: valid strings and options.
        let p =
            unsafe { moq_create_publisher_opts(client, cstr("om/limits").as_ptr(), cstr(track).as_ptr(), &options) };
        assert!(p.is_null(), "{track} should be refused");
        assert!(!last_error().is_empty());
        let _ = expected;
    };
    let defaults = moq_publisher_options_default();
    refuse(
        MoqPublisherOptions {
            group_order: MOQ_GROUP_ORDER_DESCENDING,
            ..defaults
        },
        MoqResultCode::MOQ_ERROR_UNSUPPORTED,
        "desc",
    );
    assert!(last_error().contains("DESCENDING"), "{}", last_error());
    refuse(
        MoqPublisherOptions {
            group_order: 7,
            ..defaults
        },
        MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT,
        "order7",
    );
    refuse(
        MoqPublisherOptions {
            delivery_mode: 9,
            ..defaults
        },
        MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT,
        "mode9",
    );
    refuse(
        MoqPublisherOptions {
            retention_ms: 3_600_001,
            ..defaults
        },
        MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT,
        "ret",
    );
    refuse(
        MoqPublisherOptions {
            struct_size: 3,
            ..defaults
        },
        MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT,
        "size",
    );
    assert!(last_error().contains("struct_size"), "{}", last_error());
    // NULL options are the defaults.
    // SAFETY: valid strings, NULL options.
    let plain = unsafe {
        moq_create_publisher_opts(
            client,
            cstr("om/limits").as_ptr(),
            cstr("plain").as_ptr(),
            std::ptr::null(),
        )
    };
    assert!(!plain.is_null(), "{}", last_error());

    for handle in [publisher, datagrams, plain] {
        moq_publisher_destroy(handle);
    }
    moq_client_destroy(client);
}

#[test]
fn missing_track_is_not_found_or_awaited() {
    let relay = TestRelay::start();
    let sub_client = {
        let fingerprint = cstr(&relay.fingerprint);
        let config = config_pinned(&fingerprint, 1000);
        // SAFETY: a valid config.
        let client = unsafe { moq_client_create_ex(&config) };
        assert_ok(unsafe { moq_connect(client, cstr(&relay.url).as_ptr(), None, std::ptr::null_mut()) });
        client
    };
    // Not announced at all: NOT_FOUND after the client's timeout (1 s), once.
    let missing = kept(Arc::new(Feed::default()));
    let started = Instant::now();
    let subscriber = subscribe_ex(sub_client, "om/nobody", "t", &moq_subscribe_options_default(), &missing);
    assert!(
        missing.wait(Duration::from_secs(10), |f| f.terminal_seen()),
        "no terminal status"
    );
    println!("NOT_FOUND after {:?}", started.elapsed());
    std::thread::sleep(Duration::from_millis(200));
    let statuses = missing.statuses();
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].0, MOQ_SUBSCRIPTION_NOT_FOUND, "{statuses:?}");
    assert!(statuses[0].2.contains("om/nobody"), "{statuses:?}");
    moq_subscriber_destroy(subscriber);

    // Waiting: SUBSCRIBED once the publisher appears, then objects.
    let waiting = kept(Arc::new(Feed::default()));
    let mut options = moq_subscribe_options_default();
    options.wait_for_track = 1;
    let subscriber = subscribe_ex(sub_client, "om/later", "t", &options, &waiting);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(waiting.statuses().is_empty(), "still waiting: {:?}", waiting.statuses());
    let pub_client = connected_client(&relay);
    let publisher = stream_publisher(pub_client, "om/later", "t", 127);
    assert!(
        waiting.wait_status(MOQ_SUBSCRIPTION_SUBSCRIBED, Duration::from_secs(10)),
        "{:?}",
        waiting.statuses()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        publish(publisher, b"hello", MOQ_DELIVERY_STREAM).0,
        MoqResultCode::MOQ_OK
    );
    assert_eq!(waiting.wait_objects(1, Duration::from_secs(10)), 1);
    assert_eq!(waiting.objects.lock().unwrap()[0].data, b"hello");

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(pub_client);
    moq_client_destroy(sub_client);
}

#[test]
fn start_positions_reach_back() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let publisher = stream_publisher(pub_client, "om/start", "t", 127);
    // A subscriber keeps the relay subscribed upstream so the groups are in its cache.
    let (keeper_client, keeper, keeper_feed) =
        live_subscriber(&relay, "om/start", "t", &moq_subscribe_options_default());
    for i in 0..10u8 {
        assert_eq!(publish(publisher, &[i], MOQ_DELIVERY_STREAM).0, MoqResultCode::MOQ_OK);
    }
    assert_eq!(keeper_feed.wait_objects(10, Duration::from_secs(10)), 10);
    let last_group = keeper_feed.objects.lock().unwrap()[9].info.group_id;
    let first_group = keeper_feed.objects.lock().unwrap()[0].info.group_id;

    // LATEST: the newest group first.
    let mut options = moq_subscribe_options_default();
    options.start = MOQ_START_LATEST_GROUP;
    let (latest_client, latest, latest_feed) = live_subscriber(&relay, "om/start", "t", &options);
    assert_eq!(latest_feed.wait_objects(1, Duration::from_secs(10)), 1);
    let got = latest_feed.objects.lock().unwrap()[0].clone();
    assert_eq!(got.info.group_id, last_group, "LATEST starts at the newest group");
    assert_eq!(got.data, vec![9]);

    // ABSOLUTE: from a chosen past group on.
    options.start = MOQ_START_ABSOLUTE_GROUP;
    options.start_group = first_group + 5;
    let (absolute_client, absolute, absolute_feed) = live_subscriber(&relay, "om/start", "t", &options);
    assert_eq!(absolute_feed.wait_objects(5, Duration::from_secs(10)), 5);
    let data: Vec<u8> = absolute_feed
        .objects
        .lock()
        .unwrap()
        .iter()
        .map(|o| o.data[0])
        .collect();
    assert_eq!(
        data,
        vec![5, 6, 7, 8, 9],
        "ABSOLUTE delivers from group {}",
        options.start_group
    );

    // Both continue live.
    assert_eq!(publish(publisher, &[10], MOQ_DELIVERY_STREAM).0, MoqResultCode::MOQ_OK);
    assert_eq!(latest_feed.wait_objects(2, Duration::from_secs(10)), 2);
    assert_eq!(absolute_feed.wait_objects(6, Duration::from_secs(10)), 6);

    for s in [keeper, latest, absolute] {
        moq_subscriber_destroy(s);
    }
    moq_publisher_destroy(publisher);
    for c in [keeper_client, latest_client, absolute_client, pub_client] {
        moq_client_destroy(c);
    }
}

#[test]
fn a_slow_subscriber_skips_stale_objects_and_counts_them() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let publisher = stream_publisher(pub_client, "om/latency", "t", 127);
    let mut options = moq_subscribe_options_default();
    options.max_latency_ms = 100;
    let (sub_client, subscriber, feed) = live_subscriber(&relay, "om/latency", "t", &options);
    *feed.delay_ms.lock().unwrap() = 20;

    // 1 kHz for one second; the consumer takes 20 ms per object.
    let started = Instant::now();
    for i in 0..1000u32 {
        assert_eq!(
            publish(publisher, &i.to_le_bytes(), MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
        let due = started + Duration::from_millis(u64::from(i + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let mut stats = MoqStats {
        struct_size: std::mem::size_of::<MoqStats>() as u32,
        ..Default::default()
    };
    assert!(
        wait_until(Duration::from_secs(15), || {
            // SAFETY: `stats` is writable.
            assert_ok(unsafe { moq_subscriber_stats(subscriber, &mut stats) });
            stats.objects_received + stats.objects_dropped_too_late >= 1000
        }),
        "received {} + skipped {}",
        stats.objects_received,
        stats.objects_dropped_too_late
    );
    let delivered = feed.objects.lock().unwrap().len() as u64;
    println!(
        "latency bound 100 ms, consumer 20 ms/object, 1000 objects at 1 kHz: delivered {delivered}, skipped as stale {}",
        stats.objects_dropped_too_late
    );
    assert!(
        stats.objects_dropped_too_late > 500,
        "most objects were stale: {}",
        stats.objects_dropped_too_late
    );
    assert!(delivered > 0 && delivered < 500, "{delivered}");
    let ids: Vec<u32> = feed
        .objects
        .lock()
        .unwrap()
        .iter()
        .map(|o| u32::from_le_bytes(o.data[..4].try_into().unwrap()))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "still in order");

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn subscribe_ex_argument_errors() {
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let feed = kept(Arc::new(Feed::default()));
    let user_data = Arc::as_ptr(&feed) as *mut c_void;
    let ns = cstr("om/args");
    let track = cstr("t");
    let attempt = |options: &MoqSubscribeOptions, object: MoqObjectCallback| {
        // SAFETY: valid strings and options.
        let s = unsafe { moq_subscribe_ex(client, ns.as_ptr(), track.as_ptr(), options, object, None, user_data) };
        assert!(s.is_null());
        last_error()
    };
    let defaults = moq_subscribe_options_default();
    assert!(attempt(&defaults, None).contains("on_object"));
    assert!(attempt(&MoqSubscribeOptions { start: 9, ..defaults }, Some(on_object)).contains("start"));
    assert!(attempt(
        &MoqSubscribeOptions {
            delivery: 5,
            ..defaults
        },
        Some(on_object)
    )
    .contains("delivery"));
    assert!(attempt(
        &MoqSubscribeOptions {
            struct_size: 8,
            ..defaults
        },
        Some(on_object)
    )
    .contains("struct_size"));
    // SAFETY: an invalid client handle is rejected.
    let s = unsafe {
        moq_subscribe_ex(
            0x1234 as *mut MoqClient,
            ns.as_ptr(),
            track.as_ptr(),
            &defaults,
            Some(on_object),
            None,
            user_data,
        )
    };
    assert!(s.is_null());
    assert!(last_error().contains("MoqClient"), "{}", last_error());
    assert_eq!(moq_last_error_code(), MoqResultCode::MOQ_ERROR_INVALID_HANDLE);

    // Not connected and not waiting: NOT_CONNECTED at once.
    let config = config_plain(1000);
    // SAFETY: a valid config.
    let offline = unsafe { moq_client_create_ex(&config) };
    // SAFETY: valid strings and options.
    let s = unsafe {
        moq_subscribe_ex(
            offline,
            ns.as_ptr(),
            track.as_ptr(),
            &defaults,
            Some(on_object),
            None,
            user_data,
        )
    };
    assert!(s.is_null());
    assert!(last_error().contains("connected"), "{}", last_error());
    assert_eq!(moq_last_error_code(), MoqResultCode::MOQ_ERROR_NOT_CONNECTED);
    moq_client_destroy(offline);
    moq_client_destroy(client);
}

#[test]
fn destroying_a_subscriber_inside_its_own_callback() {
    unsafe extern "C" fn destroy_self(user_data: *mut c_void, _: *const MoqObjectInfo, _: *const u8, _: usize) {
        // SAFETY: `user_data` is a kept `Mutex<usize>` holding the subscriber handle value.
        let slot = unsafe { &*(user_data as *const Mutex<(usize, usize)>) };
        let mut slot = slot.lock().unwrap();
        slot.1 += 1;
        moq_subscriber_destroy(slot.0 as *mut MoqSubscriber);
    }
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let publisher = stream_publisher(pub_client, "om/self", "t", 127);
    let sub_client = connected_client(&relay);
    let slot = kept(Arc::new(Mutex::new((0usize, 0usize))));
    // SAFETY: valid strings; the slot is kept for the process.
    let subscriber = unsafe {
        moq_subscribe_ex(
            sub_client,
            cstr("om/self").as_ptr(),
            cstr("t").as_ptr(),
            std::ptr::null(),
            Some(destroy_self),
            None,
            Arc::as_ptr(&slot) as *mut c_void,
        )
    };
    assert!(!subscriber.is_null(), "{}", last_error());
    slot.lock().unwrap().0 = subscriber as usize;
    std::thread::sleep(Duration::from_millis(700));
    for i in 0..50u8 {
        publish(publisher, &[i], MOQ_DELIVERY_STREAM);
    }
    assert!(wait_until(Duration::from_secs(10), || slot.lock().unwrap().1 >= 1));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        slot.lock().unwrap().1,
        1,
        "no callback after the subscriber destroyed itself"
    );
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}
