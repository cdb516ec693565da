//! Round trips through the embedded relay, driven through the exported C functions.

mod common;
use common::*;
use moq_ffi::ffi::*;
use std::time::Duration;

#[test]
fn stream_round_trip_small() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "demo", "objects");
    let inbox = Inbox::new();
    let subscriber = subscribe(sub_client, "demo", "objects", &inbox);
    for i in 0..100u32 {
        assert_eq!(
            publish(publisher, &i.to_be_bytes(), MOQ_DELIVERY_STREAM).0,
            MoqResultCode::MOQ_OK
        );
    }
    assert_eq!(inbox.wait_for(100, Duration::from_secs(10)), 100);
    let got = inbox.objects.lock().unwrap().clone();
    let want: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(got, want);
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn stream_round_trip_10000_in_order_with_empty_and_large_objects() {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "bulk", "objects");
    let inbox = Inbox::new();
    let subscriber = subscribe(sub_client, "bulk", "objects", &inbox);
    let large: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    let mut sent = Vec::new();
    for i in 0..10_000u32 {
        let object = match i {
            5 => Vec::new(),
            7 => large.clone(),
            _ => i.to_be_bytes().to_vec(),
        };
        let (code, message) = publish(publisher, &object, MOQ_DELIVERY_STREAM);
        assert_eq!(code, MoqResultCode::MOQ_OK, "{message}");
        sent.push(object);
    }
    assert_eq!(inbox.wait_for(10_000, Duration::from_secs(60)), 10_000);
    std::thread::sleep(Duration::from_millis(200));
    let got = inbox.objects.lock().unwrap().clone();
    assert_eq!(got.len(), sent.len(), "duplicates delivered");
    for (i, (got, sent)) in got.iter().zip(&sent).enumerate() {
        assert_eq!(got, sent, "object {i} differs");
    }
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}
