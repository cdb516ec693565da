//! The WebSocket fallback: a relay whose QUIC port is unreachable at the URL's port but whose
//! WebSocket listener answers there. Clients connect over WebSocket by themselves, say so
//! (`moq_client_transport`), round-trip 1,000 objects, and refuse datagrams loudly.

mod common;

use common::*;
use moq_ffi::core::relay::Relay;
use moq_ffi::ffi::*;
use std::ffi::c_char;
use std::time::{Duration, Instant};

/// A client for `url` with no TLS setting (an `http://` URL pins the relay's self-signed
/// certificate by itself), WebSocket on or off.
fn client_for(url: &str, websocket: bool) -> (*mut MoqClient, MoqResult, Duration) {
    let mut config = config_plain(3000);
    config.websocket_disabled = !websocket;
    // SAFETY: a valid config.
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "{}", last_error());
    let started = Instant::now();
    // SAFETY: a valid URL string.
    let result = unsafe { moq_connect(client, cstr(url).as_ptr(), None, std::ptr::null_mut()) };
    (client, result, started.elapsed())
}

fn transport(client: *mut MoqClient) -> String {
    let mut buf = [0 as c_char; 16];
    // SAFETY: `buf` is writable for its length.
    assert_ok(unsafe { moq_client_transport(client, buf.as_mut_ptr(), buf.len()) });
    text(buf.as_ptr())
}

#[test]
fn clients_fall_back_to_websocket_and_round_trip_1000_objects() {
    let relay = Relay::start_with_web("127.0.0.1:0", Some("127.0.0.1:0")).expect("relay");
    let url = relay.http_url().expect("the relay serves HTTP");
    // The URL's port is the web (TCP) listener: QUIC there finds no one, WebSocket answers.
    let (pub_client, result, connect_time) = client_for(&url, true);
    assert_ok(result);
    assert_eq!(transport(pub_client), "websocket");
    println!("WebSocket fallback connect time: {connect_time:?} (QUIC head start 200 ms)");
    let (sub_client, result, _) = client_for(&url, true);
    assert_ok(result);
    assert_eq!(transport(sub_client), "websocket");

    let publisher = publisher(pub_client, "ws", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "ws", "t", &inbox);
    std::thread::sleep(Duration::from_millis(200));
    let payload_of = |i: u32| {
        let mut payload = vec![(i % 251) as u8; 1024];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        payload
    };
    let started = Instant::now();
    for i in 0..1000u32 {
        assert_eq!(
            publish(publisher, &payload_of(i), MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
    }
    assert_eq!(inbox.wait_for(1000, Duration::from_secs(30)), 1000);
    let elapsed = started.elapsed();
    let objects = inbox.objects.lock().unwrap().clone();
    for (i, object) in objects.iter().enumerate() {
        assert_eq!(*object, payload_of(i as u32), "object {i} intact and in order");
    }
    println!(
        "1000 x 1 KiB over WebSocket in {elapsed:?}: {:.1} MiB/s",
        1000.0 * 1024.0 / (1024.0 * 1024.0) / elapsed.as_secs_f64()
    );

    // Datagrams cannot travel over WebSocket: refused, never silently lost.
    let (code, message) = publish(publisher, b"dgram", MOQ_DELIVERY_DATAGRAM);
    assert_eq!(code, MoqResultCode::MOQ_ERROR_UNSUPPORTED, "{message}");
    assert!(message.contains("WebSocket"), "{message}");

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn without_the_fallback_a_blocked_quic_port_fails_and_quic_is_reported_when_it_works() {
    let relay = Relay::start_with_web("127.0.0.1:0", Some("127.0.0.1:0")).expect("relay");
    let url = relay.http_url().expect("the relay serves HTTP");
    let (client, result, elapsed) = client_for(&url, false);
    let (code, message) = take(result);
    assert_ne!(code, MoqResultCode::MOQ_OK, "no QUIC listener at {url}: {message}");
    assert!(elapsed < Duration::from_secs(5), "bounded: {elapsed:?}");
    let mut buf = [0 as c_char; 16];
    // SAFETY: `buf` is writable.
    let (code, _) = take(unsafe { moq_client_transport(client, buf.as_mut_ptr(), buf.len()) });
    assert_eq!(code, MoqResultCode::MOQ_ERROR_NOT_CONNECTED);
    moq_client_destroy(client);

    // The QUIC URL of the same relay: QUIC wins even with the fallback on.
    let fingerprint = cstr(relay.fingerprint());
    let config = config_pinned(&fingerprint, 3000);
    // SAFETY: a valid config and URL.
    let client = unsafe { moq_client_create_ex(&config) };
    assert_ok(unsafe { moq_connect(client, cstr(relay.url()).as_ptr(), None, std::ptr::null_mut()) });
    assert_eq!(transport(client), "quic");
    let mut small = [0 as c_char; 4];
    // SAFETY: `small` is writable for its length.
    let (code, _) = take(unsafe { moq_client_transport(client, small.as_mut_ptr(), small.len()) });
    assert_eq!(code, MoqResultCode::MOQ_ERROR_BUFFER_TOO_SMALL);
    moq_client_destroy(client);
}
