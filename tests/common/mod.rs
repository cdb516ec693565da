//! Helpers shared by the integration tests: they call the exported C functions as C would.
#![allow(dead_code)]

use moq_ffi::ffi::*;
use std::ffi::{c_void, CStr, CString};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Text of a C string the library owns.
pub fn text(ptr: *const std::ffi::c_char) -> String {
    assert!(!ptr.is_null(), "expected a string, got NULL");
    unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

pub fn last_error() -> String {
    let ptr = moq_last_error();
    if ptr.is_null() {
        String::new()
    } else {
        text(ptr)
    }
}

/// Consumes a MoqResult: returns its code and message, freeing the message.
pub fn take(result: MoqResult) -> (MoqResultCode, String) {
    let message = if result.message.is_null() {
        String::new()
    } else {
        text(result.message)
    };
    moq_free_str(result.message);
    (result.code, message)
}

#[track_caller]
pub fn assert_ok(result: MoqResult) {
    let (code, message) = take(result);
    assert_eq!(code, MoqResultCode::MOQ_OK, "expected MOQ_OK, got {code:?}: {message}");
}

pub struct TestRelay {
    pub relay: *mut MoqRelay,
    pub url: String,
    pub fingerprint: String,
}

impl TestRelay {
    pub fn start() -> Self {
        let relay = unsafe { moq_relay_start(cstr("127.0.0.1:0").as_ptr()) };
        assert!(!relay.is_null(), "relay failed: {}", last_error());
        Self {
            relay,
            url: text(moq_relay_url(relay)),
            fingerprint: text(moq_relay_fingerprint(relay)),
        }
    }

    pub fn stop(&mut self) {
        moq_relay_stop(self.relay);
        self.relay = std::ptr::null_mut();
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if !self.relay.is_null() {
            moq_relay_stop(self.relay);
        }
    }
}

pub fn config_pinned(fingerprint: &CString, timeout_ms: u32) -> MoqClientConfig {
    MoqClientConfig {
        struct_size: std::mem::size_of::<MoqClientConfig>() as u32,
        connect_timeout_ms: timeout_ms,
        tls_root_ca_pem: std::ptr::null(),
        tls_fingerprint_sha256: fingerprint.as_ptr(),
        tls_insecure_skip_verify: false,
    }
}

/// A client connected to `relay` with the fingerprint pinned.
pub fn connected_client(relay: &TestRelay) -> *mut MoqClient {
    connected_client_with(relay, None, std::ptr::null_mut())
}

pub fn connected_client_with(
    relay: &TestRelay,
    callback: MoqConnectionCallback,
    user_data: *mut c_void,
) -> *mut MoqClient {
    let fingerprint = cstr(&relay.fingerprint);
    let config = config_pinned(&fingerprint, 5000);
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "client: {}", last_error());
    assert_ok(unsafe { moq_connect(client, cstr(&relay.url).as_ptr(), callback, user_data) });
    client
}

/// Collects what a data callback receives.
#[derive(Default)]
pub struct Inbox {
    pub objects: Mutex<Vec<Vec<u8>>>,
    pub arrived: Condvar,
}

impl Inbox {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Waits until at least `count` objects arrived or `timeout` passed; returns the count.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut objects = self.objects.lock().unwrap();
        while objects.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            objects = self.arrived.wait_timeout(objects, left).unwrap().0;
        }
        objects.len()
    }

    pub fn len(&self) -> usize {
        self.objects.lock().unwrap().len()
    }
}

pub unsafe extern "C" fn inbox_callback(user_data: *mut c_void, data: *const u8, len: usize) {
    let inbox = unsafe { &*(user_data as *const Inbox) };
    let bytes = if len == 0 {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(data, len) }.to_vec()
    };
    inbox.objects.lock().unwrap().push(bytes);
    inbox.arrived.notify_all();
}

pub fn subscribe(client: *mut MoqClient, ns: &str, track: &str, inbox: &Arc<Inbox>) -> *mut MoqSubscriber {
    let sub = unsafe {
        moq_subscribe(
            client,
            cstr(ns).as_ptr(),
            cstr(track).as_ptr(),
            Some(inbox_callback),
            Arc::as_ptr(inbox) as *mut c_void,
        )
    };
    assert!(!sub.is_null(), "subscribe: {}", last_error());
    sub
}

pub fn publisher(client: *mut MoqClient, ns: &str, track: &str) -> *mut MoqPublisher {
    let publisher = unsafe { moq_create_publisher(client, cstr(ns).as_ptr(), cstr(track).as_ptr()) };
    assert!(!publisher.is_null(), "publisher: {}", last_error());
    publisher
}

pub fn publish(publisher: *mut MoqPublisher, data: &[u8], mode: MoqDeliveryMode) -> (MoqResultCode, String) {
    take(unsafe { moq_publish_data(publisher, data.as_ptr(), data.len(), mode) })
}

/// Records connection states.
#[derive(Default)]
pub struct States {
    pub seen: Mutex<Vec<MoqConnectionState>>,
    pub changed: Condvar,
}

impl States {
    pub fn wait_for(&self, state: MoqConnectionState, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut seen = self.seen.lock().unwrap();
        while !seen.contains(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            seen = self.changed.wait_timeout(seen, left).unwrap().0;
        }
        true
    }

    pub fn snapshot(&self) -> Vec<MoqConnectionState> {
        self.seen.lock().unwrap().clone()
    }
}

pub unsafe extern "C" fn states_callback(user_data: *mut c_void, state: MoqConnectionState) {
    let states = unsafe { &*(user_data as *const States) };
    states.seen.lock().unwrap().push(state);
    states.changed.notify_all();
}

/// Keeps `value` alive for the rest of the process: its address is a callback's `user_data`, and
/// a failing assertion must not free it while the library may still call back with it.
pub fn kept<T>(value: Arc<T>) -> Arc<T> {
    std::mem::forget(value.clone());
    value
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A config with no TLS setting and the given timeout (0 = default).
pub fn config_plain(timeout_ms: u32) -> MoqClientConfig {
    MoqClientConfig {
        struct_size: std::mem::size_of::<MoqClientConfig>() as u32,
        connect_timeout_ms: timeout_ms,
        tls_root_ca_pem: std::ptr::null(),
        tls_fingerprint_sha256: std::ptr::null(),
        tls_insecure_skip_verify: false,
    }
}
