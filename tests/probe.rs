mod common;
use common::*;
use moq_ffi::ffi::*;
use std::time::Duration;

#[test]
fn probe() {
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_env("PROBE_LOG")).with_test_writer().try_init();
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "bulk", "objects");
    let inbox = Inbox::new();
    let subscriber = subscribe(sub_client, "bulk", "objects", &inbox);
    let n: u32 = std::env::var("N").unwrap().parse().unwrap();
    let size: usize = std::env::var("SIZE").unwrap().parse().unwrap();
    for i in 0..n {
        let mut object = vec![0u8; size.max(4)];
        object[..4].copy_from_slice(&i.to_be_bytes());
        publish(publisher, &object, MOQ_DELIVERY_STREAM);
        if let Ok(p) = std::env::var("PACE") { if i % p.parse::<u32>().unwrap() == 0 { std::thread::sleep(Duration::from_millis(1)); } }
    }
    let got = inbox.wait_for(n as usize, Duration::from_secs(10));
    let objs = inbox.objects.lock().unwrap();
    let firsts: Vec<u32> = objs.iter().take(20).map(|o| u32::from_be_bytes(o[..4].try_into().unwrap())).collect();
    eprintln!("N={n} SIZE={size} got={got} first={firsts:?}");
    drop(objs);
    moq_subscriber_destroy(subscriber);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}
