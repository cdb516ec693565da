//! Forced panics inside exports, the publish path, background tasks and the callback dispatcher.
//! Every panic must be caught and turned into the documented failure value, with
//! `moq_last_error()` set, and the process and every other object must carry on normally.
//!
//! The armed points are global to the process, so every test holds `SERIAL` and starts and ends
//! with `disarm_all()`.

mod common;
use common::*;
use moq_ffi::ffi::*;
use moq_ffi::inject::{arm, disarm_all};
use std::ffi::c_void;
use std::ptr::{null, null_mut};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use MoqResultCode::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// Exclusive use of the injection points for one test; disarms everything on entry and exit.
struct Section {
    _serial: MutexGuard<'static, ()>,
}

fn section() -> Section {
    let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    disarm_all();
    Section { _serial: serial }
}

impl Drop for Section {
    fn drop(&mut self) {
        disarm_all();
    }
}

/// Puts a recognisable, non-panic message in `moq_last_error()`.
fn prime() {
    moq_subscriber_destroy(0x7ff3 as *mut MoqSubscriber);
    assert!(last_error().contains("0x7ff3"));
}

/// The last error was set by a caught panic in `func`.
#[track_caller]
fn assert_panic_recorded(func: &str) -> String {
    let message = last_error();
    assert!(
        !message.contains("0x7ff3"),
        "{func}: moq_last_error() not updated: {message}"
    );
    assert!(
        message.contains("panic"),
        "{func}: last error does not mention the panic: {message}"
    );
    assert!(
        message.contains(func),
        "{func}: last error does not name the function: {message}"
    );
    message
}

/// Arms `func`, calls a `MoqResult` export that passes it, and checks MOQ_ERROR_PANIC.
#[track_caller]
fn panics_to_result(func: &str, call: impl FnOnce() -> MoqResult) {
    prime();
    arm(func);
    let result = call();
    assert!(!result.message.is_null(), "{func}: MOQ_ERROR_PANIC without a message");
    let (code, message) = take(result);
    assert_eq!(code, MOQ_ERROR_PANIC, "{func}: {message}");
    assert!(message.contains("panic"), "{func}: {message}");
    assert_eq!(assert_panic_recorded(func), message);
}

#[track_caller]
fn panics_to_null<T>(func: &str, call: impl FnOnce() -> *const T) {
    prime();
    arm(func);
    let ptr = call();
    assert!(ptr.is_null(), "{func}: a panicking call returned {ptr:p}");
    assert_panic_recorded(func);
}

#[track_caller]
fn panics_to_false(func: &str, call: impl FnOnce() -> bool) {
    prime();
    arm(func);
    assert!(!call(), "{func}: a panicking call returned true");
    assert_panic_recorded(func);
}

#[track_caller]
fn panics_to_nothing(func: &str, call: impl FnOnce()) {
    prime();
    arm(func);
    call();
    assert_panic_recorded(func);
}

fn contents(inbox: &Inbox) -> Vec<Vec<u8>> {
    inbox.objects.lock().unwrap().clone()
}

// ---------------------------------------------------------------------------------------------
// Panics inside exported functions.
// ---------------------------------------------------------------------------------------------

#[test]
fn panics_in_result_exports_are_moq_error_panic_and_change_nothing() {
    let _section = section();
    let relay = TestRelay::start();
    let fingerprint = cstr(&relay.fingerprint);
    let config = config_pinned(&fingerprint, 5000);
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "{}", last_error());
    let url = cstr(&relay.url);

    panics_to_result("moq_disconnect", || moq_disconnect(client));
    assert_ok(moq_disconnect(client));

    panics_to_result("moq_connect", || unsafe {
        moq_connect(client, url.as_ptr(), None, null_mut())
    });
    assert!(!moq_is_connected(client), "a panicking moq_connect connected");
    assert_ok(unsafe { moq_connect(client, url.as_ptr(), None, null_mut()) });
    assert!(moq_is_connected(client));

    panics_to_result("moq_announce_namespace", || unsafe {
        moq_announce_namespace(client, cstr("announced").as_ptr())
    });
    assert_ok(unsafe { moq_announce_namespace(client, cstr("announced").as_ptr()) });

    let sub_client = connected_client(&relay);
    let publisher = publisher(client, "results", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "results", "t", &inbox);

    panics_to_result("moq_publish_data", || unsafe {
        moq_publish_data(publisher, b"lost".as_ptr(), 4, MOQ_DELIVERY_STREAM)
    });
    assert_eq!(publish(publisher, b"kept", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    assert_eq!(inbox.wait_for(1, Duration::from_secs(10)), 1);

    panics_to_result("moq_unsubscribe", || moq_unsubscribe(subscriber));
    assert!(
        moq_is_subscribed(subscriber),
        "a panicking moq_unsubscribe unsubscribed"
    );
    assert_eq!(publish(publisher, b"still", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    assert_eq!(inbox.wait_for(2, Duration::from_secs(10)), 2);
    assert_eq!(contents(&inbox), vec![b"kept".to_vec(), b"still".to_vec()]);
    assert_ok(moq_unsubscribe(subscriber));
    assert!(!moq_is_subscribed(subscriber));

    // A panic while the disconnect of a connected client is requested leaves it connected.
    panics_to_result("moq_disconnect", || moq_disconnect(client));
    assert!(moq_is_connected(client));

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(client);
}

#[test]
fn panics_in_pointer_and_bool_exports_are_null_or_false() {
    let _section = section();

    panics_to_false("moq_init", || moq_init());
    assert!(moq_init());

    panics_to_null("moq_version", || moq_version());
    assert!(text(moq_version()).starts_with("moq-ffi"));

    // moq_last_error itself: NULL now, and the panic is what it reports next.
    prime();
    arm("moq_last_error");
    assert!(moq_last_error().is_null());
    assert_panic_recorded("moq_last_error");

    panics_to_null("moq_client_create", || moq_client_create() as *const MoqClient);
    let plain = moq_client_create();
    assert!(!plain.is_null(), "{}", last_error());
    moq_client_destroy(plain);

    panics_to_null(
        "moq_relay_start",
        || unsafe { moq_relay_start(cstr("127.0.0.1:0").as_ptr()) } as *const MoqRelay,
    );
    let relay = TestRelay::start();

    panics_to_null("moq_relay_url", || moq_relay_url(relay.relay));
    assert_eq!(text(moq_relay_url(relay.relay)), relay.url);
    panics_to_null("moq_relay_fingerprint", || moq_relay_fingerprint(relay.relay));
    assert_eq!(text(moq_relay_fingerprint(relay.relay)), relay.fingerprint);

    let fingerprint = cstr(&relay.fingerprint);
    let config = config_pinned(&fingerprint, 5000);
    panics_to_null("moq_client_create_ex", || unsafe { moq_client_create_ex(&config) }
        as *const MoqClient);
    let client = connected_client(&relay);
    let sub_client = connected_client(&relay);

    panics_to_false("moq_is_connected", || moq_is_connected(client));
    assert!(moq_is_connected(client));

    let (ns, track) = (cstr("pointers"), cstr("t"));
    panics_to_null("moq_create_publisher_ex", || unsafe {
        moq_create_publisher_ex(client, ns.as_ptr(), track.as_ptr(), MOQ_DELIVERY_STREAM)
    } as *const MoqPublisher);
    // The panicking call left no half-made publisher behind: the track is still free.
    let publisher = publisher(client, "pointers", "t");

    let inbox = kept(Inbox::new());
    panics_to_null("moq_subscribe", || unsafe {
        moq_subscribe(
            sub_client,
            ns.as_ptr(),
            track.as_ptr(),
            Some(inbox_callback),
            Arc::as_ptr(&inbox) as *mut c_void,
        )
    } as *const MoqSubscriber);
    let subscriber = subscribe(sub_client, "pointers", "t", &inbox);

    panics_to_false("moq_is_subscribed", || moq_is_subscribed(subscriber));
    assert!(moq_is_subscribed(subscriber));

    assert_eq!(publish(publisher, b"after", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    assert_eq!(inbox.wait_for(1, Duration::from_secs(10)), 1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        contents(&inbox),
        vec![b"after".to_vec()],
        "the NULL subscription delivered"
    );

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(client);
}

/// `moq_create_publisher` is an exported function, so it is an injection point of its own, and
/// its failures name it (not the `_ex` variant the caller did not call).
#[test]
fn moq_create_publisher_is_its_own_injection_point() {
    let _section = section();
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    prime();
    arm("moq_create_publisher");
    let publisher = unsafe { moq_create_publisher(client, cstr("own").as_ptr(), cstr("t").as_ptr()) };
    let error = last_error();
    disarm_all();
    if !publisher.is_null() {
        moq_publisher_destroy(publisher);
    }
    assert!(
        publisher.is_null() && error.starts_with("moq_create_publisher:") && error.contains("panic"),
        "arming \"moq_create_publisher\" did not make moq_create_publisher panic: it returned {publisher:p}, \
         last error {error:?}"
    );
    moq_client_destroy(client);
}

#[test]
fn panics_in_void_exports_have_no_effect() {
    let _section = section();
    let mut relay = TestRelay::start();
    let client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(client, "voids", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "voids", "t", &inbox);

    panics_to_nothing("moq_subscriber_destroy", || moq_subscriber_destroy(subscriber));
    assert!(moq_is_subscribed(subscriber), "{}", last_error());
    panics_to_nothing("moq_publisher_destroy", || moq_publisher_destroy(publisher));
    panics_to_nothing("moq_client_destroy", || moq_client_destroy(client));
    assert!(moq_is_connected(client));
    panics_to_nothing("moq_relay_stop", || moq_relay_stop(relay.relay));
    assert_eq!(text(moq_relay_url(relay.relay)), relay.url);

    // Everything still works end to end.
    assert_eq!(publish(publisher, b"alive", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    assert_eq!(inbox.wait_for(1, Duration::from_secs(10)), 1);

    // moq_free_str: the message is not freed by the panicking call, and is freed by the next.
    let result = moq_disconnect(null_mut());
    let message = result.message;
    let before = text(message);
    panics_to_nothing("moq_free_str", || moq_free_str(message));
    assert_eq!(text(message), before, "a panicking moq_free_str freed the message");
    moq_free_str(message);

    // The real destroys then work, and the handles become stale.
    moq_subscriber_destroy(subscriber);
    assert!(!moq_is_subscribed(subscriber));
    assert!(last_error().contains("MoqSubscriber handle"), "{}", last_error());
    moq_publisher_destroy(publisher);
    let (code, _) = publish(publisher, b"x", MOQ_DELIVERY_STREAM);
    assert_eq!(code, MOQ_ERROR_INVALID_HANDLE);
    moq_client_destroy(sub_client);
    moq_client_destroy(client);
    assert!(!moq_is_connected(client));
    assert!(last_error().contains("MoqClient handle"), "{}", last_error());
    let raw = relay.relay;
    relay.stop();
    assert!(moq_relay_url(raw).is_null());
}

// ---------------------------------------------------------------------------------------------
// Panics deeper inside the library.
// ---------------------------------------------------------------------------------------------

#[test]
fn panic_in_the_publish_path() {
    let _section = section();
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(client, "publishpath", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "publishpath", "t", &inbox);

    assert_eq!(publish(publisher, b"0", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    prime();
    arm("publish");
    let (code, message) = publish(publisher, b"lost", MOQ_DELIVERY_STREAM);
    assert_eq!(code, MOQ_ERROR_PANIC, "{message}");
    assert!(message.contains("panic"), "{message}");
    assert_panic_recorded("moq_publish_data");
    for i in 1..=5u8 {
        let (code, message) = publish(publisher, &[b'0' + i], MOQ_DELIVERY_STREAM);
        assert_eq!(code, MOQ_OK, "publishing after the panic: {message}");
    }
    assert_eq!(inbox.wait_for(6, Duration::from_secs(10)), 6);
    std::thread::sleep(Duration::from_millis(200));
    let want: Vec<Vec<u8>> = (0..=5u8).map(|i| vec![b'0' + i]).collect();
    assert_eq!(contents(&inbox), want);

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(client);
}

#[test]
fn panic_in_a_subscriber_task_ends_only_that_subscription() {
    let _section = section();
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher_a = publisher(pub_client, "tasks", "a");
    let publisher_b = publisher(pub_client, "tasks", "b");
    // Subscriptions made before the panic: one on the same track, one on another.
    let (same_inbox, other_inbox, victim_inbox) = (kept(Inbox::new()), kept(Inbox::new()), kept(Inbox::new()));
    let same = subscribe(sub_client, "tasks", "a", &same_inbox);
    let other = subscribe(sub_client, "tasks", "b", &other_inbox);

    // The readers of the subscriptions above pass the injection point as they start; let them
    // start before arming it, so the armed panic hits the next subscription's reader.
    std::thread::sleep(Duration::from_millis(300));
    arm("task:subscriber");
    let victim = subscribe(sub_client, "tasks", "a", &victim_inbox);
    assert!(
        wait_until(Duration::from_secs(5), || !moq_is_subscribed(victim)),
        "the subscription whose reader panicked still reports subscribed (same: {}, other: {})",
        moq_is_subscribed(same),
        moq_is_subscribed(other)
    );
    let why = last_error();
    assert!(why.contains("panic"), "moq_last_error() after moq_is_subscribed: {why}");
    disarm_all();

    assert_eq!(publish(publisher_a, b"a1", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    assert_eq!(publish(publisher_b, b"b1", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    // Datagrams too, where the protocol carries them.
    let (datagram, message) = publish(publisher_a, b"a2", MOQ_DELIVERY_DATAGRAM);
    assert!(
        matches!(datagram, MOQ_OK | MOQ_ERROR_UNSUPPORTED),
        "{datagram:?}: {message}"
    );
    assert!(same_inbox.wait_for(1, Duration::from_secs(10)) >= 1);
    assert_eq!(other_inbox.wait_for(1, Duration::from_secs(10)), 1);
    if datagram == MOQ_OK {
        same_inbox.wait_for(2, Duration::from_secs(2));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        contents(&same_inbox).contains(&b"a1".to_vec()),
        "{:?}",
        contents(&same_inbox)
    );
    assert_eq!(contents(&other_inbox), vec![b"b1".to_vec()]);
    assert!(moq_is_subscribed(same), "{}", last_error());
    assert!(moq_is_subscribed(other), "{}", last_error());
    assert!(!moq_is_subscribed(victim));
    assert_eq!(
        contents(&victim_inbox),
        Vec::<Vec<u8>>::new(),
        "the ended subscription still delivered objects (datagram published: {datagram:?})"
    );

    // The ended subscription is still a valid handle and can be torn down normally.
    assert_ok(moq_unsubscribe(victim));
    moq_subscriber_destroy(victim);
    // And a new subscription to the same track works.
    let again_inbox = kept(Inbox::new());
    let again = subscribe(sub_client, "tasks", "a", &again_inbox);
    assert_eq!(publish(publisher_a, b"a3", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    assert!(again_inbox.wait_for(1, Duration::from_secs(10)) >= 1);
    assert!(
        contents(&again_inbox).contains(&b"a3".to_vec()),
        "{:?}",
        contents(&again_inbox)
    );

    moq_subscriber_destroy(again);
    moq_subscriber_destroy(same);
    moq_subscriber_destroy(other);
    moq_publisher_destroy(publisher_a);
    moq_publisher_destroy(publisher_b);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn panic_in_the_connection_monitor_reports_the_client_disconnected() {
    let _section = section();
    let relay = TestRelay::start();
    let other = connected_client(&relay);
    let states = kept(Arc::new(States::default()));
    // The other client's monitor passes the injection point as it starts; let it start first.
    std::thread::sleep(Duration::from_millis(300));
    arm("task:connection");
    let client = connected_client_with(&relay, Some(states_callback), Arc::as_ptr(&states) as *mut c_void);
    assert!(
        states.wait_for(MoqConnectionState::MOQ_STATE_DISCONNECTED, Duration::from_secs(5)),
        "no DISCONNECTED after the connection monitor panicked: {:?} (other client connected: {})",
        states.snapshot(),
        moq_is_connected(other)
    );
    assert!(!moq_is_connected(client));
    let why = last_error();
    assert!(why.contains("panic"), "moq_last_error() after moq_is_connected: {why}");
    disarm_all();
    // Operations now say NOT_CONNECTED, with the reason.
    let (code, message) = take(unsafe { moq_announce_namespace(client, cstr("monitor").as_ptr()) });
    assert_eq!(code, MOQ_ERROR_NOT_CONNECTED, "{message}");
    // Another client never noticed.
    assert!(moq_is_connected(other));
    // The client can connect again and works.
    assert_ok(unsafe {
        moq_connect(
            client,
            cstr(&relay.url).as_ptr(),
            Some(states_callback),
            Arc::as_ptr(&states) as *mut c_void,
        )
    });
    assert!(moq_is_connected(client));
    let publisher = publisher(client, "monitor", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(other, "monitor", "t", &inbox);
    assert_eq!(publish(publisher, b"back", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    assert_eq!(inbox.wait_for(1, Duration::from_secs(10)), 1);

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(client);
    moq_client_destroy(other);
}

#[test]
fn panic_in_the_dispatcher_drops_one_callback_only() {
    let _section = section();
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "dispatch", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "dispatch", "t", &inbox);
    assert_eq!(publish(publisher, b"first", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    assert_eq!(inbox.wait_for(1, Duration::from_secs(10)), 1);

    arm("dispatch");
    assert_eq!(publish(publisher, b"dropped", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    // The point is consumed by the next callback; wait for that before publishing more.
    std::thread::sleep(Duration::from_millis(500));
    for object in [&b"second"[..], b"third"] {
        assert_eq!(publish(publisher, object, MOQ_DELIVERY_STREAM).0, MOQ_OK);
    }
    assert_eq!(inbox.wait_for(3, Duration::from_secs(10)), 3);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        contents(&inbox),
        vec![b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]
    );
    assert!(moq_is_subscribed(subscriber), "{}", last_error());

    // Connection callbacks: the first (CONNECTING) is dropped, the rest arrive.
    let states = kept(Arc::new(States::default()));
    arm("dispatch");
    let client = connected_client_with(&relay, Some(states_callback), Arc::as_ptr(&states) as *mut c_void);
    assert!(states.wait_for(MoqConnectionState::MOQ_STATE_CONNECTED, Duration::from_secs(5)));
    assert_ok(moq_disconnect(client));
    assert!(states.wait_for(MoqConnectionState::MOQ_STATE_DISCONNECTED, Duration::from_secs(5)));
    assert_eq!(
        states.snapshot(),
        vec![
            MoqConnectionState::MOQ_STATE_CONNECTED,
            MoqConnectionState::MOQ_STATE_DISCONNECTED
        ]
    );

    moq_client_destroy(client);
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

/// Panics inside the object-model, poll, announcement and catalog exports, and inside a poll-mode
/// subscription's reader: each becomes the documented failure value and the objects carry on.
#[test]
fn panics_in_object_model_exports_and_poll_mode() {
    let _section = section();
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let options = moq_publisher_options_default();
    let publisher = unsafe { moq_create_publisher_opts(pub_client, cstr("om").as_ptr(), cstr("t").as_ptr(), &options) };
    assert!(!publisher.is_null(), "{}", last_error());

    panics_to_null("moq_create_publisher_opts", || unsafe {
        moq_create_publisher_opts(pub_client, cstr("om").as_ptr(), cstr("u").as_ptr(), &options)
    });
    panics_to_result("moq_publisher_begin_group", || unsafe {
        moq_publisher_begin_group(publisher, null_mut())
    });
    assert_ok(unsafe { moq_publisher_begin_group(publisher, null_mut()) });
    panics_to_result("moq_publish_object", || unsafe {
        moq_publish_object(publisher, b"x".as_ptr(), 1, 0)
    });
    assert_ok(unsafe { moq_publish_object(publisher, b"x".as_ptr(), 1, 0) });
    panics_to_result("moq_publisher_end_group", || moq_publisher_end_group(publisher));
    assert_ok(moq_publisher_end_group(publisher));
    panics_to_result("moq_publish_catalog", || unsafe {
        moq_publish_catalog(publisher, null(), 0, MOQ_CATALOG_FORMAT_SEED)
    });

    // Poll mode: a panic in moq_poll returns 0 and leaves the queue intact.
    let mut sub_options = moq_subscribe_options_default();
    sub_options.delivery = MOQ_DELIVER_POLL;
    panics_to_null("moq_subscribe_ex", || unsafe {
        moq_subscribe_ex(
            sub_client,
            cstr("om").as_ptr(),
            cstr("t").as_ptr(),
            &sub_options,
            None,
            None,
            null_mut(),
        )
    });
    let subscriber = unsafe {
        moq_subscribe_ex(
            sub_client,
            cstr("om").as_ptr(),
            cstr("t").as_ptr(),
            &sub_options,
            None,
            None,
            null_mut(),
        )
    };
    assert!(!subscriber.is_null(), "{}", last_error());
    let mut events: Vec<MoqEvent> = Vec::with_capacity(16);
    let mut poll = |timeout_ms: u32| -> Vec<MoqEvent> {
        let count = unsafe { moq_poll(sub_client, events.as_mut_ptr(), 16, timeout_ms) };
        unsafe { events.set_len(count) };
        events.clone()
    };
    assert!(wait_until(Duration::from_secs(10), || poll(100)
        .iter()
        .any(|e| e.kind == MOQ_EVENT_STATUS)));
    std::thread::sleep(Duration::from_millis(200));
    assert_ok(unsafe { moq_publish_data(publisher, b"p".as_ptr(), 1, MOQ_DELIVERY_STREAM) });
    std::thread::sleep(Duration::from_millis(300));
    prime();
    arm("moq_poll");
    assert_eq!(poll(0).len(), 0, "a panicking moq_poll returns no events");
    assert_panic_recorded("moq_poll");
    let mut objects: Vec<Vec<u8>> = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            for event in poll(100).into_iter().filter(|e| e.kind == MOQ_EVENT_OBJECT) {
                objects.push(unsafe { std::slice::from_raw_parts(event.data, event.data_len) }.to_vec());
            }
            objects.contains(&b"p".to_vec())
        }),
        "the queued object survived the panic: {objects:?}"
    );

    panics_to_result("moq_subscribe_announces", || {
        moq_subscribe_announces(sub_client, None, null_mut())
    });
    panics_to_result("moq_subscribe_announces_ex", || unsafe {
        moq_subscribe_announces_ex(sub_client, null(), None, null_mut())
    });
    panics_to_result("moq_unsubscribe_announces", || moq_unsubscribe_announces(sub_client));
    panics_to_null("moq_subscribe_catalog", || unsafe {
        moq_subscribe_catalog(sub_client, cstr("om").as_ptr(), cstr("c").as_ptr(), None, null_mut())
    });
    panics_to_null("moq_subscribe_catalog_ex", || unsafe {
        moq_subscribe_catalog_ex(
            sub_client,
            cstr("om").as_ptr(),
            cstr("c").as_ptr(),
            null(),
            None,
            None,
            null_mut(),
        )
    });
    panics_to_null("moq_catalog_json", || moq_catalog_json(subscriber));
    prime();
    arm("moq_last_error_code");
    assert_eq!(moq_last_error_code(), MOQ_ERROR_PANIC);
    prime();
    arm("moq_subscribe_options_default");
    assert_eq!(
        moq_subscribe_options_default().struct_size as usize,
        std::mem::size_of::<MoqSubscribeOptions>()
    );
    assert_panic_recorded("moq_subscribe_options_default");

    // A panic in a poll-mode subscription's reader ends it with an ERROR status event.
    std::thread::sleep(Duration::from_millis(300));
    arm("task:subscriber");
    let victim = unsafe {
        moq_subscribe_ex(
            sub_client,
            cstr("om").as_ptr(),
            cstr("t").as_ptr(),
            &sub_options,
            None,
            None,
            null_mut(),
        )
    };
    assert!(!victim.is_null(), "{}", last_error());
    let mut ended: Option<String> = None;
    assert!(wait_until(Duration::from_secs(5), || {
        if ended.is_none() {
            ended = poll(100)
                .into_iter()
                .find(|e| e.subscriber == victim && e.kind == MOQ_EVENT_STATUS && e.status == MOQ_SUBSCRIPTION_ERROR)
                .map(|e| text(e.message));
        }
        ended.is_some()
    }));
    let ended = ended.unwrap_or_default();
    assert!(ended.contains("panic"), "{ended}");
    disarm_all();
    assert!(
        moq_is_subscribed(subscriber),
        "the other poll-mode subscription carries on"
    );

    panics_to_result("moq_publisher_finish", || moq_publisher_finish(publisher));
    panics_to_result("moq_publisher_abort", || moq_publisher_abort(publisher, 1));
    assert_ok(moq_publisher_abort(publisher, 1));

    moq_subscriber_destroy(victim);
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

// ---------------------------------------------------------------------------------------------
// Many panics in a row, from many threads.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_process_survives_many_panics() {
    let _section = section();
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let handle = client as usize;
            std::thread::spawn(move || {
                for _ in 0..50 {
                    arm("moq_is_connected");
                    // Either this thread or another one consumes the armed point: false with a
                    // panic, or true.
                    if !moq_is_connected(handle as *mut MoqClient) {
                        assert!(last_error().contains("panic"), "{}", last_error());
                    }
                    arm("moq_disconnect");
                    let result = moq_disconnect(null_mut());
                    let (code, message) = take(result);
                    assert!(
                        matches!(code, MOQ_ERROR_PANIC | MOQ_ERROR_INVALID_HANDLE),
                        "{code:?}: {message}"
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a thread died");
    }
    disarm_all();
    assert!(moq_is_connected(client), "{}", last_error());
    let publisher = publisher(client, "survivor", "t");
    let sub_client = connected_client(&relay);
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "survivor", "t", &inbox);
    assert_eq!(publish(publisher, b"ok", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    assert_eq!(inbox.wait_for(1, Duration::from_secs(10)), 1);
    moq_free_str(null());
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(client);
}
