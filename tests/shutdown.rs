//! moq_shutdown: every handle becomes invalid, every library thread is joined, and the library
//! starts fresh afterwards; a callback that does not return makes it report TIMEOUT, and never
//! leads to a second callback thread. Shutdown ends the library for the whole process, so the
//! tests take turns ([`SERIAL`]).

mod common;
use common::*;
use moq_ffi::ffi::*;
use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Held by each test for its whole run.
static SERIAL: Mutex<()> = Mutex::new(());

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

/// Threads named like the callback thread (`/proc` shows the first 15 bytes of a name).
fn callback_threads() -> usize {
    library_threads()
        .iter()
        .filter(|name| name.starts_with("moq-ffi-callbac"))
        .count()
}

#[test]
fn shutdown_joins_every_thread_and_the_library_restarts() {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
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

/// A connection callback that holds the callback thread on CONNECTING until released.
#[derive(Default)]
struct Hold {
    entered: Mutex<bool>,
    released: Mutex<bool>,
    changed: Condvar,
}

unsafe extern "C" fn hold_callback(user_data: *mut c_void, state: MoqConnectionState) {
    // SAFETY: `user_data` is a kept `Hold`.
    let hold = unsafe { &*(user_data as *const Hold) };
    if state != MoqConnectionState::MOQ_STATE_CONNECTING {
        return;
    }
    *hold.entered.lock().unwrap() = true;
    hold.changed.notify_all();
    // Bounded, so a failing test cannot hang the binary.
    let deadline = Instant::now() + Duration::from_secs(60) * time_scale();
    let mut released = hold.released.lock().unwrap();
    while !*released && Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        released = hold.changed.wait_timeout(released, left).unwrap().0;
    }
}

impl Hold {
    /// A client whose connection callback now holds the callback thread.
    fn start() -> Arc<Self> {
        let hold = kept(Arc::new(Hold::default()));
        let client = moq_client_create();
        assert!(!client.is_null(), "{}", last_error());
        let url = cstr(&format!("https://localhost:{}", free_udp_port()));
        // SAFETY: `url` is NUL-terminated; `hold` is kept alive for the process.
        assert_ok(unsafe {
            moq_connect_async(
                client,
                url.as_ptr(),
                Some(hold_callback),
                Arc::as_ptr(&hold) as *mut c_void,
            )
        });
        let deadline = Instant::now() + Duration::from_secs(10) * time_scale();
        let mut entered = hold.entered.lock().unwrap();
        while !*entered && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            entered = hold.changed.wait_timeout(entered, left).unwrap().0;
        }
        assert!(*entered, "the holding callback never ran");
        drop(entered);
        hold
    }

    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.changed.notify_all();
    }
}

/// A client (not connected) whose connection callback records into `states`: its CONNECTING
/// is a callback the library must run.
fn connecting_client(states: &Arc<States>) -> *mut MoqClient {
    let client = moq_client_create();
    assert!(!client.is_null(), "{}", last_error());
    let url = cstr(&format!("https://localhost:{}", free_udp_port()));
    // SAFETY: `url` is NUL-terminated; `states` is kept alive for the process.
    assert_ok(unsafe {
        moq_connect_async(
            client,
            url.as_ptr(),
            Some(states_callback),
            Arc::as_ptr(states) as *mut c_void,
        )
    });
    client
}

/// `moq_shutdown` with a short timeout while a callback does not return.
fn shutdown_times_out() -> String {
    let started = Instant::now();
    let (code, message) = take(moq_shutdown(300));
    let took = started.elapsed();
    assert_eq!(code, MoqResultCode::MOQ_ERROR_TIMEOUT, "{message}");
    assert!(
        message.contains("moq-ffi-callbacks"),
        "the message names the thread: {message}"
    );
    assert!(
        took < Duration::from_secs(3) * time_scale(),
        "moq_shutdown(300) took {took:?} with a callback that does not return"
    );
    message
}

/// While a callback does not return, `moq_shutdown` reports TIMEOUT naming the callback thread
/// (within its timeout, even though it destroys the client whose callback it is); calls made
/// meanwhile keep using that one thread (never a second one), and their callbacks run once it
/// returns. A callback thread that finishes after a timed-out shutdown exits on its own and the
/// next call starts exactly one new thread. Then a shutdown joins everything.
#[test]
fn shutdown_times_out_while_a_callback_runs_and_never_starts_a_second_callback_thread() {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let wait = Duration::from_secs(10) * time_scale();

    // A call made while the stuck callback still runs: the same thread carries on.
    let hold = Hold::start();
    assert_eq!(callback_threads(), 1);
    let message = shutdown_times_out();
    eprintln!("moq_shutdown with a stuck callback: {message}");
    assert_eq!(callback_threads(), 1, "the stuck callback thread is still there");
    // Asking again waits for the same thread again.
    shutdown_times_out();
    let states = kept(Arc::new(States::default()));
    let client = connecting_client(&states);
    assert_eq!(
        callback_threads(),
        1,
        "a call after the timed-out shutdown started a second callback thread"
    );
    hold.release();
    assert!(
        states.wait_for(MoqConnectionState::MOQ_STATE_CONNECTING, wait),
        "the callback queued after the timed-out shutdown never ran"
    );
    assert_eq!(callback_threads(), 1);
    moq_client_destroy(client);
    assert_ok(moq_shutdown(5000));
    let left = library_threads();
    assert!(left.is_empty(), "threads left after moq_shutdown: {left:?}");

    // The stuck callback returns after the timed-out shutdown: its thread exits by itself.
    let hold = Hold::start();
    shutdown_times_out();
    hold.release();
    assert!(
        wait_until(wait, || callback_threads() == 0),
        "the callback thread did not exit after its callback returned: {:?}",
        library_threads()
    );
    let states = kept(Arc::new(States::default()));
    let client = connecting_client(&states);
    assert!(states.wait_for(MoqConnectionState::MOQ_STATE_CONNECTING, wait));
    assert_eq!(callback_threads(), 1);
    moq_client_destroy(client);
    assert_ok(moq_shutdown(5000));
    let left = library_threads();
    assert!(left.is_empty(), "threads left after moq_shutdown: {left:?}");
}
