//! moq_shutdown: every handle becomes invalid, every library thread is joined, and the library
//! starts fresh afterwards. One test only: shutdown ends the library for the whole process.

mod common;
use common::*;
use moq_ffi::ffi::*;
use std::time::Duration;

/// Threads of this process whose name the library gives its own threads.
fn library_threads() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(name) = std::fs::read_to_string(entry.path().join("comm")) {
            let name = name.trim().to_string();
            if name.starts_with("moq-ffi") || name.starts_with("tokio") {
                names.push(name);
            }
        }
    }
    names
}

#[test]
fn shutdown_joins_every_thread_and_the_library_restarts() {
    for round in 0..5 {
        assert!(moq_init());
        let relay = TestRelay::start();
        let pub_client = connected_client(&relay);
        let sub_client = connected_client(&relay);
        let publisher = publisher(pub_client, "down", "t");
        let inbox = kept(Inbox::new());
        let subscriber = subscribe(sub_client, "down", "t", &inbox);
        for i in 0..20u8 {
            assert_eq!(publish(publisher, &[i], MOQ_DELIVERY_STREAM).0, MoqResultCode::MOQ_OK);
        }
        assert_eq!(inbox.wait_for(20, Duration::from_secs(10)), 20, "round {round}");
        assert!(!library_threads().is_empty());

        assert_ok(moq_shutdown(5000));
        let left = library_threads();
        assert!(
            left.is_empty(),
            "round {round}: threads left after moq_shutdown: {left:?}"
        );
        // Every handle is now invalid.
        assert!(!moq_is_connected(pub_client));
        assert!(last_error().contains("not a live MoqClient"), "{}", last_error());
        assert!(!moq_is_subscribed(subscriber));
        let (code, _) = publish(publisher, b"x", MOQ_DELIVERY_STREAM);
        assert_eq!(code, MoqResultCode::MOQ_ERROR_INVALID_HANDLE);
        assert!(moq_relay_url(relay.relay).is_null());
        // Destroys of handles that shutdown already released are ignored.
        moq_subscriber_destroy(subscriber);
        moq_publisher_destroy(publisher);
        moq_client_destroy(sub_client);
        moq_client_destroy(pub_client);
        drop(relay);
        // Shutting down twice is fine.
        assert_ok(moq_shutdown(1000));
    }
}
