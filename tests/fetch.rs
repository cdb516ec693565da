//! Reaching back: fetching a past group (`moq_fetch_group`), joining N groups back
//! (`MOQ_START_GROUPS_BACK`), and the track query (`moq_query_track`), including the versions that
//! cannot do them.

mod common;

use common::*;
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void, CStr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What one fetch or subscription received.
#[derive(Default)]
struct Got {
    objects: Mutex<Vec<(u64, u64, Vec<u8>)>>,
    statuses: Mutex<Vec<(MoqSubscriptionStatus, String)>>,
}

impl Got {
    fn terminal(&self) -> Option<(MoqSubscriptionStatus, String)> {
        self.statuses
            .lock()
            .unwrap()
            .iter()
            .find(|(status, _)| *status != MOQ_SUBSCRIPTION_SUBSCRIBED)
            .cloned()
    }
}

unsafe extern "C" fn on_object(user_data: *mut c_void, info: *const MoqObjectInfo, data: *const u8, len: usize) {
    // SAFETY: `user_data` is a kept `Got`; `info` and `data` are valid during the call.
    let got = unsafe { &*(user_data as *const Got) };
    let info = unsafe { *info };
    let data = match len {
        0 => Vec::new(),
        _ => unsafe { std::slice::from_raw_parts(data, len) }.to_vec(),
    };
    got.objects.lock().unwrap().push((info.group_id, info.object_id, data));
}

unsafe extern "C" fn on_status(user_data: *mut c_void, status: MoqSubscriptionStatus, _: u32, message: *const c_char) {
    // SAFETY: `user_data` is a kept `Got`; `message` is valid during the call.
    let got = unsafe { &*(user_data as *const Got) };
    let message = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    got.statuses.lock().unwrap().push((status, message));
}

fn client_speaking(relay: &TestRelay, versions: Option<&str>) -> *mut MoqClient {
    let fingerprint = cstr(&relay.fingerprint);
    let versions = versions.map(cstr);
    let mut config = config_pinned(&fingerprint, 3000);
    if let Some(versions) = &versions {
        config.versions = versions.as_ptr();
    }
    // SAFETY: a valid config.
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "{}", last_error());
    // SAFETY: a valid URL.
    assert_ok(unsafe { moq_connect(client, cstr(&relay.url).as_ptr(), None, std::ptr::null_mut()) });
    client
}

/// A publisher of `groups` groups of three objects each ("g<group>o<object>").
fn publish_groups(client: *mut MoqClient, ns: &str, groups: u64) -> *mut MoqPublisher {
    let mut options = moq_publisher_options_default();
    options.priority = 200;
    options.retention_ms = 20_000;
    // SAFETY: valid strings and options.
    let publisher = unsafe { moq_create_publisher_opts(client, cstr(ns).as_ptr(), cstr("t").as_ptr(), &options) };
    assert!(!publisher.is_null(), "{}", last_error());
    for g in 0..groups {
        // SAFETY: NULL out pointer allowed.
        assert_ok(unsafe { moq_publisher_begin_group(publisher, std::ptr::null_mut()) });
        for o in 0..3 {
            let payload = format!("g{g}o{o}");
            // SAFETY: `payload` is readable.
            assert_ok(unsafe { moq_publish_object(publisher, payload.as_ptr(), payload.len(), 0) });
        }
        assert_ok(moq_publisher_end_group(publisher));
    }
    publisher
}

fn fetch(client: *mut MoqClient, ns: &str, group: u64, got: &Arc<Got>) -> *mut MoqSubscriber {
    // SAFETY: valid strings, default options, callbacks with a kept user_data.
    unsafe {
        moq_fetch_group(
            client,
            cstr(ns).as_ptr(),
            cstr("t").as_ptr(),
            group,
            std::ptr::null(),
            Some(on_object),
            Some(on_status),
            Arc::as_ptr(got) as *mut c_void,
        )
    }
}

#[test]
fn a_past_group_is_fetched_whole_then_ended() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let publisher = publish_groups(pub_client, "fetch/a", 10);
    let sub_client = connected_client(&relay);

    let mut latencies = Vec::new();
    for group in [3u64, 0, 9] {
        let got = kept(Arc::new(Got::default()));
        let started = Instant::now();
        let fetcher = fetch(sub_client, "fetch/a", group, &got);
        assert!(!fetcher.is_null(), "{}", last_error());
        assert!(
            wait_until(Duration::from_secs(10), || got.terminal().is_some()),
            "no end"
        );
        latencies.push(started.elapsed());
        let (status, message) = got.terminal().unwrap();
        assert_eq!(status, MOQ_SUBSCRIPTION_ENDED, "{message}");
        let objects = got.objects.lock().unwrap().clone();
        let expected: Vec<(u64, u64, Vec<u8>)> = (0..3)
            .map(|o| (group, o, format!("g{group}o{o}").into_bytes()))
            .collect();
        assert_eq!(objects, expected);
        std::thread::sleep(Duration::from_millis(100));
        let statuses = got.statuses.lock().unwrap().clone();
        assert_eq!(statuses.len(), 2, "SUBSCRIBED then one terminal status: {statuses:?}");
        moq_subscriber_destroy(fetcher);
    }
    println!("fetch latency for a past group (3 objects), loopback via the relay: {latencies:?}");

    // A group that was never published.
    let got = kept(Arc::new(Got::default()));
    let fetcher = fetch(sub_client, "fetch/a", 1000, &got);
    assert!(!fetcher.is_null(), "{}", last_error());
    assert!(
        wait_until(Duration::from_secs(15), || got.terminal().is_some()),
        "no end"
    );
    let (status, message) = got.terminal().unwrap();
    assert_eq!(status, MOQ_SUBSCRIPTION_NOT_FOUND, "{message}");
    assert!(got.objects.lock().unwrap().is_empty());
    println!("fetching a group never published: status {status}: {message}");
    moq_subscriber_destroy(fetcher);

    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn a_fetch_in_poll_mode_and_argument_errors() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let publisher = publish_groups(pub_client, "fetch/poll", 4);
    let sub_client = connected_client(&relay);
    let mut options = moq_subscribe_options_default();
    options.delivery = MOQ_DELIVER_POLL;
    // SAFETY: valid strings and options, no callbacks.
    let fetcher = unsafe {
        moq_fetch_group(
            sub_client,
            cstr("fetch/poll").as_ptr(),
            cstr("t").as_ptr(),
            2,
            &options,
            None,
            None,
            std::ptr::null_mut(),
        )
    };
    assert!(!fetcher.is_null(), "{}", last_error());
    let mut events: Vec<MoqEvent> = Vec::with_capacity(16);
    let (mut payloads, mut ended) = (Vec::new(), false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ended && Instant::now() < deadline {
        // SAFETY: room for 16 events.
        let count = unsafe { moq_poll(sub_client, events.as_mut_ptr(), 16, 100) };
        unsafe { events.set_len(count) };
        for event in &events {
            assert_eq!(event.subscriber, fetcher);
            match event.kind {
                MOQ_EVENT_OBJECT => {
                    payloads.push(unsafe { std::slice::from_raw_parts(event.data, event.data_len) }.to_vec())
                }
                MOQ_EVENT_STATUS => ended |= event.status == MOQ_SUBSCRIPTION_ENDED,
                _ => {}
            }
        }
    }
    assert!(ended);
    assert_eq!(payloads, vec![b"g2o0".to_vec(), b"g2o1".to_vec(), b"g2o2".to_vec()]);
    moq_subscriber_destroy(fetcher);

    // Callbacks with poll delivery, a NULL on_object, bad handles.
    // SAFETY: the arguments are checked before anything is read.
    let refused = unsafe {
        moq_fetch_group(
            sub_client,
            cstr("fetch/poll").as_ptr(),
            cstr("t").as_ptr(),
            0,
            &options,
            Some(on_object),
            None,
            std::ptr::null_mut(),
        )
    };
    assert!(refused.is_null());
    assert_eq!(moq_last_error_code(), MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT);
    let refused = unsafe {
        moq_fetch_group(
            sub_client,
            cstr("fetch/poll").as_ptr(),
            cstr("t").as_ptr(),
            0,
            std::ptr::null(),
            None,
            None,
            std::ptr::null_mut(),
        )
    };
    assert!(refused.is_null());
    assert!(last_error().contains("on_object"), "{}", last_error());
    let refused = unsafe {
        moq_fetch_group(
            0x99 as *mut MoqClient,
            cstr("fetch/poll").as_ptr(),
            cstr("t").as_ptr(),
            0,
            std::ptr::null(),
            Some(on_object),
            None,
            std::ptr::null_mut(),
        )
    };
    assert!(refused.is_null());
    assert_eq!(moq_last_error_code(), MoqResultCode::MOQ_ERROR_INVALID_HANDLE);

    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn versions_without_fetch_say_unsupported_and_name_themselves() {
    let relay = TestRelay::start();
    for version in ["moq-lite-03", "moq-lite-04"] {
        let client = client_speaking(&relay, Some(version));
        let got = kept(Arc::new(Got::default()));
        let fetcher = fetch(client, "fetch/old", 0, &got);
        assert!(fetcher.is_null());
        assert_eq!(moq_last_error_code(), MoqResultCode::MOQ_ERROR_UNSUPPORTED);
        assert!(last_error().contains(version), "{}", last_error());
        let mut properties = MoqTrackProperties {
            struct_size: std::mem::size_of::<MoqTrackProperties>() as u32,
            ..Default::default()
        };
        // SAFETY: valid strings and a writable struct.
        let (code, message) =
            take(unsafe { moq_query_track(client, cstr("fetch/old").as_ptr(), cstr("t").as_ptr(), &mut properties) });
        assert_eq!(code, MoqResultCode::MOQ_ERROR_UNSUPPORTED, "{message}");
        assert!(message.contains(version), "{message}");
        moq_client_destroy(client);
    }
}

#[test]
fn the_track_query_returns_what_the_publisher_declared() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let publisher = publish_groups(pub_client, "fetch/query", 5);
    for version in [None, Some("moq-lite-05"), Some("moq-transport-14")] {
        let client = client_speaking(&relay, version);
        let mut properties = MoqTrackProperties {
            struct_size: std::mem::size_of::<MoqTrackProperties>() as u32,
            ..Default::default()
        };
        let started = Instant::now();
        // SAFETY: valid strings and a writable struct.
        assert_ok(unsafe {
            moq_query_track(
                client,
                cstr("fetch/query").as_ptr(),
                cstr("t").as_ptr(),
                &mut properties,
            )
        });
        println!("{version:?}: {properties:?} in {:?}", started.elapsed());
        if version != Some("moq-transport-14") {
            // moq-lite-05+ carries the publisher's declaration; moq-transport has no such property.
            assert_eq!(properties.priority, 200);
            assert_eq!(properties.retention_ms, 20_000);
            assert_eq!(properties.timescale, 1_000_000);
        }
        let mut wrong = MoqTrackProperties {
            struct_size: 4,
            ..Default::default()
        };
        let (code, _) =
            take(unsafe { moq_query_track(client, cstr("fetch/query").as_ptr(), cstr("t").as_ptr(), &mut wrong) });
        assert_eq!(code, MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT);
        let (code, _) = take(unsafe {
            moq_query_track(
                client,
                cstr("fetch/query").as_ptr(),
                cstr("t").as_ptr(),
                std::ptr::null_mut(),
            )
        });
        assert_eq!(code, MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT);
        moq_client_destroy(client);
    }
    moq_publisher_destroy(publisher);
    moq_client_destroy(pub_client);
}

#[test]
fn a_late_joiner_starts_n_groups_back() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let publisher = publish_groups(pub_client, "fetch/join", 10);
    let sub_client = connected_client(&relay);
    let got = kept(Arc::new(Got::default()));
    let options = start_options(MOQ_START_GROUPS_BACK, 3);
    // SAFETY: the user data outlives the subscriber.
    let subscriber = unsafe {
        subscribe_with(
            sub_client,
            "fetch/join",
            "t",
            &options,
            Some(on_object),
            Some(on_status),
            Arc::as_ptr(&got) as *mut c_void,
        )
    };
    assert!(wait_until(Duration::from_secs(10), || got
        .objects
        .lock()
        .unwrap()
        .len()
        >= 12));
    std::thread::sleep(Duration::from_millis(200));
    let groups: Vec<u64> = got.objects.lock().unwrap().iter().map(|o| o.0).collect();
    assert_eq!(
        groups,
        vec![6, 6, 6, 7, 7, 7, 8, 8, 8, 9, 9, 9],
        "the newest group and the 3 before it"
    );
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}
