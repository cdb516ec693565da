//! Hostile inputs for every exported function, called as C would call them: NULL pointers, stale,
//! destroyed, foreign and made-up handles, malformed and over-long strings, impossible lengths,
//! invalid enum values and broken configurations. Every call must fail with the documented code,
//! a message naming the culprit, and `moq_last_error()` set — never crash, never touch memory it
//! does not own, never affect another live object.

mod common;
use common::*;
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void, CString};
use std::mem::{offset_of, size_of, MaybeUninit};
use std::ptr::{null, null_mut};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use MoqResultCode::*;

// ---------------------------------------------------------------------------------------------
// Helpers local to this file.
// ---------------------------------------------------------------------------------------------

/// Every test holds this for reading; the double-free test holds it for writing so that no
/// other thread can be handed a recycled message address between its two frees.
static LIBRARY: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    LIBRARY.read().unwrap_or_else(PoisonError::into_inner)
}

/// A subscriber-tagged handle value that is never issued; used to put a recognisable message in
/// `moq_last_error()` before each checked call, so the check proves the call set a new one.
const PRIME: usize = 0x7ff3;

fn prime() {
    moq_subscriber_destroy(PRIME as *mut MoqSubscriber);
    assert!(last_error().contains("0x7ff3"), "priming failed: {}", last_error());
}

/// Asserts that the last error was freshly set by `func` and mentions `needle`.
#[track_caller]
fn assert_last_error(func: &str, needle: &str) -> String {
    let message = last_error();
    assert!(!message.is_empty(), "{func}: moq_last_error() is NULL after a failure");
    assert!(
        !message.contains("0x7ff3"),
        "{func}: moq_last_error() was not updated; still: {message}"
    );
    assert!(
        message.starts_with(func),
        "{func}: last error does not name the function: {message}"
    );
    assert!(
        message.contains(needle),
        "{func}: last error lacks {needle:?}: {message}"
    );
    message
}

/// Calls a `MoqResult` function that must fail with `code`; checks the message and last error.
#[track_caller]
fn fails(func: &str, code: MoqResultCode, needle: &str, call: impl FnOnce() -> MoqResult) -> String {
    prime();
    let result = call();
    let raw = result.message;
    let (got, message) = take(result);
    assert_eq!(
        got, code,
        "{func}: expected {code:?} ({needle}), got {got:?}: {message}"
    );
    assert!(!raw.is_null(), "{func}: failure without a message");
    assert!(message.contains(needle), "{func}: message lacks {needle:?}: {message}");
    // The message was freed above; the last error is the library's own copy and still readable.
    let last = assert_last_error(func, needle);
    assert_eq!(last, message, "{func}: MoqResult.message and moq_last_error() differ");
    assert_ne!(
        raw,
        moq_last_error(),
        "{func}: the caller-owned message is the last-error buffer"
    );
    message
}

/// Calls a pointer-returning function that must return NULL; checks the last error.
#[track_caller]
fn null_with<T>(func: &str, needle: &str, call: impl FnOnce() -> *mut T) -> String {
    prime();
    let ptr = call();
    assert!(ptr.is_null(), "{func}: expected NULL ({needle}), got {ptr:p}");
    assert_last_error(func, needle)
}

#[track_caller]
fn null_const_with<T>(func: &str, needle: &str, call: impl FnOnce() -> *const T) -> String {
    null_with(func, needle, || call() as *mut T)
}

/// Calls a bool function that must return false; checks the last error.
#[track_caller]
fn false_with(func: &str, needle: &str, call: impl FnOnce() -> bool) -> String {
    prime();
    assert!(!call(), "{func}: expected false ({needle})");
    assert_last_error(func, needle)
}

/// Calls a void function that must ignore its argument; checks the last error.
#[track_caller]
fn ignored_with(func: &str, needle: &str, call: impl FnOnce()) -> String {
    prime();
    call();
    assert_last_error(func, needle)
}

fn bytes_cstring(bytes: &[u8]) -> CString {
    CString::new(bytes.to_vec()).expect("test string contains NUL")
}

/// Strings that are not acceptable for any string parameter of at most `max` bytes, with the
/// text the error must contain.
fn malformed_strings(max: usize) -> Vec<(&'static str, CString, &'static str)> {
    vec![
        ("invalid UTF-8", bytes_cstring(b"\xff\xfe\xfd"), "not valid UTF-8"),
        (
            "embedded invalid byte",
            bytes_cstring(b"abc\xc3(def"),
            "not valid UTF-8",
        ),
        ("truncated sequence", bytes_cstring(b"abc\xe2\x82"), "not valid UTF-8"),
        ("overlong encoding", bytes_cstring(b"\xc0\xaf"), "not valid UTF-8"),
        ("UTF-16 surrogate", bytes_cstring(b"a\xed\xa0\x80b"), "not valid UTF-8"),
        (
            "one byte too long",
            CString::new(vec![b'a'; max + 1]).unwrap(),
            "longer than the maximum",
        ),
        (
            "far too long",
            CString::new(vec![b'a'; max * 4 + 7]).unwrap(),
            "longer than the maximum",
        ),
    ]
}

/// Names that are well-formed C strings but not valid namespace or track names.
fn invalid_names() -> Vec<(&'static str, CString, &'static str)> {
    let mut names = malformed_strings(MOQ_MAX_NAME_LEN);
    names.extend([
        ("empty", cstr(""), "empty"),
        ("control character", cstr("a\u{1}b"), "control character"),
        ("newline", cstr("line\nbreak"), "control character"),
        ("DEL", cstr("\u{7f}"), "control character"),
        ("C1 control", cstr("a\u{85}b"), "control character"),
    ]);
    names
}

/// `len` non-NUL bytes with no terminator: the library must stop scanning at `max + 1`.
fn unterminated(len: usize) -> Vec<u8> {
    vec![b'x'; len]
}

/// Handle values never issued by the library, of every tag and none.
const MADE_UP: [usize; 10] = [
    0x1,
    0x2,
    0x3,
    0x4,
    0x8,
    0xdeadbeef,
    0xdead_beef_0000_0001,
    usize::MAX,
    usize::MAX - 14,
    isize::MIN as usize,
];

fn pinned_config(fingerprint: &CString, timeout_ms: u32) -> MoqClientConfig {
    config_pinned(fingerprint, timeout_ms)
}

/// PEM that decodes as base64 but whose certificate is rubbish: accepted by the PEM check, used
/// to exercise the TLS-exclusivity rule.
const DECODABLE_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";

unsafe extern "C" fn ignore_data(_: *mut c_void, _: *const u8, _: usize) {}

fn disconnected_client() -> *mut MoqClient {
    let client = moq_client_create();
    assert!(!client.is_null(), "client: {}", last_error());
    client
}

// ---------------------------------------------------------------------------------------------
// Every function of a handle type, given a handle that is not a live object of that type.
// ---------------------------------------------------------------------------------------------

/// Runs every client function with `handle`, which is not a live client: each must fail with
/// INVALID_HANDLE (or NULL/false/ignored) naming the client handle. Other arguments are valid.
fn assert_not_a_client(handle: usize, url: &str) {
    let client = handle as *mut MoqClient;
    let what = "MoqClient handle";
    let url = cstr(url);
    let (ns, track) = (cstr("ns"), cstr("track"));
    fails("moq_connect", MOQ_ERROR_INVALID_HANDLE, what, || unsafe {
        moq_connect(client, url.as_ptr(), None, null_mut())
    });
    fails("moq_disconnect", MOQ_ERROR_INVALID_HANDLE, what, || {
        moq_disconnect(client)
    });
    false_with("moq_is_connected", what, || moq_is_connected(client));
    fails("moq_announce_namespace", MOQ_ERROR_INVALID_HANDLE, what, || unsafe {
        moq_announce_namespace(client, ns.as_ptr())
    });
    null_with("moq_create_publisher", what, || unsafe {
        moq_create_publisher(client, ns.as_ptr(), track.as_ptr())
    });
    for mode in [MOQ_DELIVERY_STREAM, MOQ_DELIVERY_DATAGRAM] {
        null_with("moq_create_publisher_ex", what, || unsafe {
            moq_create_publisher_ex(client, ns.as_ptr(), track.as_ptr(), mode)
        });
    }
    null_with("moq_subscribe", what, || unsafe {
        moq_subscribe(client, ns.as_ptr(), track.as_ptr(), Some(ignore_data), null_mut())
    });
    // Hostile arguments everywhere: the handle is still what is reported first.
    fails("moq_connect", MOQ_ERROR_INVALID_HANDLE, what, || unsafe {
        moq_connect(client, null(), None, null_mut())
    });
    null_with("moq_subscribe", what, || unsafe {
        moq_subscribe(client, null(), null(), None, null_mut())
    });
    ignored_with("moq_client_destroy", what, || moq_client_destroy(client));
    ignored_with("moq_client_destroy", what, || moq_client_destroy(client));
}

fn assert_not_a_publisher(handle: usize) {
    let publisher = handle as *mut MoqPublisher;
    let what = "MoqPublisher handle";
    let data = [1u8, 2, 3];
    for mode in [MOQ_DELIVERY_STREAM, MOQ_DELIVERY_DATAGRAM] {
        fails("moq_publish_data", MOQ_ERROR_INVALID_HANDLE, what, || unsafe {
            moq_publish_data(publisher, data.as_ptr(), data.len(), mode)
        });
        fails("moq_publish_data", MOQ_ERROR_INVALID_HANDLE, what, || unsafe {
            moq_publish_data(publisher, null(), 0, mode)
        });
    }
    // Every other argument hostile too: the handle is reported, nothing is read.
    fails("moq_publish_data", MOQ_ERROR_INVALID_HANDLE, what, || unsafe {
        moq_publish_data(publisher, null(), usize::MAX, u32::MAX)
    });
    ignored_with("moq_publisher_destroy", what, || moq_publisher_destroy(publisher));
    ignored_with("moq_publisher_destroy", what, || moq_publisher_destroy(publisher));
}

fn assert_not_a_subscriber(handle: usize) {
    let subscriber = handle as *mut MoqSubscriber;
    let what = "MoqSubscriber handle";
    fails("moq_unsubscribe", MOQ_ERROR_INVALID_HANDLE, what, || {
        moq_unsubscribe(subscriber)
    });
    false_with("moq_is_subscribed", what, || moq_is_subscribed(subscriber));
    ignored_with("moq_subscriber_destroy", what, || moq_subscriber_destroy(subscriber));
    ignored_with("moq_subscriber_destroy", what, || moq_subscriber_destroy(subscriber));
}

fn assert_not_a_relay(handle: usize) {
    let relay = handle as *mut MoqRelay;
    let what = "MoqRelay handle";
    null_const_with("moq_relay_url", what, || moq_relay_url(relay));
    null_const_with("moq_relay_fingerprint", what, || moq_relay_fingerprint(relay));
    ignored_with("moq_relay_stop", what, || moq_relay_stop(relay));
    ignored_with("moq_relay_stop", what, || moq_relay_stop(relay));
}

// ---------------------------------------------------------------------------------------------
// Library-wide functions.
// ---------------------------------------------------------------------------------------------

#[test]
fn init_and_version_are_idempotent_and_static() {
    let _guard = shared();
    assert!(moq_init());
    assert!(moq_init());
    let version = moq_version();
    assert!(!version.is_null());
    let text_version = text(version);
    assert!(text_version.starts_with("moq-ffi "), "{text_version}");
    assert_eq!(moq_version(), version, "the version string must be static");
    // Freeing the static version string must be ignored: it stays valid and unchanged.
    moq_free_str(version);
    moq_free_str(version);
    assert_eq!(text(moq_version()), text_version);
    // From other threads too.
    let handles: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| (moq_init(), moq_version() as usize)))
        .collect();
    for handle in handles {
        let (ok, ptr) = handle.join().unwrap();
        assert!(ok);
        assert_eq!(ptr, version as usize);
    }
}

#[test]
fn last_error_is_per_thread_and_starts_null() {
    let _guard = shared();
    // A thread that never failed sees NULL.
    let fresh = std::thread::spawn(|| moq_last_error().is_null()).join().unwrap();
    assert!(fresh, "moq_last_error() must be NULL before any failure on the thread");
    // A failure on another thread does not touch this thread's last error.
    prime();
    std::thread::spawn(|| {
        let (code, _) = take(moq_disconnect(null_mut()));
        assert_eq!(code, MOQ_ERROR_INVALID_HANDLE);
        assert!(last_error().starts_with("moq_disconnect"));
    })
    .join()
    .unwrap();
    assert!(
        last_error().contains("0x7ff3"),
        "another thread's failure leaked: {}",
        last_error()
    );
    // Success does not clear it; the pointer stays valid until the next failure.
    let before = moq_last_error();
    assert!(moq_init());
    let client = disconnected_client();
    assert_ok(moq_disconnect(client));
    assert_eq!(moq_last_error(), before);
    assert!(text(before).contains("0x7ff3"));
    moq_client_destroy(client);
    // Freeing the last-error pointer is ignored: it is still readable and unchanged.
    moq_free_str(moq_last_error());
    assert!(last_error().contains("0x7ff3"), "{}", last_error());
}

#[test]
fn free_str_ignores_what_it_did_not_issue() {
    let _guard = shared();
    moq_free_str(null());
    for value in MADE_UP {
        moq_free_str(value as *const c_char);
    }
    // A caller-owned string stays intact.
    let own = cstr("caller owned");
    moq_free_str(own.as_ptr());
    assert_eq!(own.to_str().unwrap(), "caller owned");
    // A pointer into the middle of an issued message is not the message.
    let result = moq_disconnect(null_mut());
    assert_eq!(result.code, MOQ_ERROR_INVALID_HANDLE);
    assert!(!result.message.is_null());
    let message = result.message;
    let original = text(message);
    moq_free_str(unsafe { message.add(1) });
    assert_eq!(text(message), original, "a pointer into an issued message freed it");
    moq_free_str(message);
    // Strings a relay owns are not the caller's to free.
    let relay = TestRelay::start();
    moq_free_str(moq_relay_url(relay.relay));
    moq_free_str(moq_relay_fingerprint(relay.relay));
    assert_eq!(text(moq_relay_url(relay.relay)), relay.url);
    assert_eq!(text(moq_relay_fingerprint(relay.relay)), relay.fingerprint);
}

#[test]
fn free_str_ignores_a_double_free() {
    // Exclusive: no other test may be handed this message's address between the two frees.
    let _guard = LIBRARY.write().unwrap_or_else(PoisonError::into_inner);
    for _ in 0..100 {
        let result = moq_disconnect(null_mut());
        assert_eq!(result.code, MOQ_ERROR_INVALID_HANDLE);
        assert!(!result.message.is_null());
        moq_free_str(result.message);
        moq_free_str(result.message);
        moq_free_str(result.message);
    }
    // The allocator and the library are still healthy.
    let messages: Vec<MoqResult> = (0..100).map(|_| moq_unsubscribe(null_mut())).collect();
    for result in messages {
        let (code, message) = take(result);
        assert_eq!(code, MOQ_ERROR_INVALID_HANDLE);
        assert!(message.contains("MoqSubscriber handle is NULL"), "{message}");
    }
}

#[test]
fn success_results_carry_no_message() {
    let _guard = shared();
    let client = disconnected_client();
    let result = moq_disconnect(client);
    assert_eq!(result.code, MOQ_OK);
    assert!(result.message.is_null());
    moq_free_str(result.message);
    moq_client_destroy(client);
}

// ---------------------------------------------------------------------------------------------
// Handles: NULL, made up, stale, destroyed twice, of the wrong type.
// ---------------------------------------------------------------------------------------------

#[test]
fn null_handles_are_rejected_everywhere() {
    let _guard = shared();
    assert_not_a_client(0, "https://localhost:1");
    assert_not_a_publisher(0);
    assert_not_a_subscriber(0);
    assert_not_a_relay(0);
    // The NULL case says so.
    let message = fails("moq_disconnect", MOQ_ERROR_INVALID_HANDLE, "is NULL", || {
        moq_disconnect(null_mut())
    });
    assert!(message.contains("MoqClient"), "{message}");
}

#[test]
fn made_up_handles_are_rejected_everywhere() {
    let _guard = shared();
    let local = 0u64;
    let stack = &local as *const u64 as usize;
    let heap = Box::into_raw(Box::new([0u8; 64]));
    for value in MADE_UP.iter().copied().chain([stack, heap as usize]) {
        assert_not_a_client(value, "https://localhost:1");
        assert_not_a_publisher(value);
        assert_not_a_subscriber(value);
        assert_not_a_relay(value);
    }
    // The library never wrote through the pointers it was given.
    assert_eq!(local, 0);
    let heap = unsafe { Box::from_raw(heap) };
    assert!(heap.iter().all(|b| *b == 0));
}

#[test]
fn wrong_type_handles_are_rejected_and_leave_the_real_object_alone() {
    let _guard = shared();
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "wrongtype", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "wrongtype", "t", &inbox);

    let (c, p, s, r) = (
        pub_client as usize,
        publisher as usize,
        subscriber as usize,
        relay.relay as usize,
    );
    for other in [p, s, r] {
        assert_not_a_client(other, &relay.url);
    }
    for other in [c, s, r] {
        assert_not_a_publisher(other);
    }
    for other in [c, p, r] {
        assert_not_a_subscriber(other);
    }
    for other in [c, p, s] {
        assert_not_a_relay(other);
    }
    // Messages for a live handle of another type say "not a ... handle".
    let message = fails(
        "moq_disconnect",
        MOQ_ERROR_INVALID_HANDLE,
        "is not a MoqClient handle",
        || moq_disconnect(publisher as *mut MoqClient),
    );
    assert!(
        message.contains(&format!("{p:x}")),
        "the message should show the value: {message}"
    );

    // Every real object survived the wrong-type destroys aimed at it.
    assert!(moq_is_connected(pub_client), "{}", last_error());
    assert!(moq_is_connected(sub_client), "{}", last_error());
    assert!(moq_is_subscribed(subscriber), "{}", last_error());
    assert_eq!(text(moq_relay_url(relay.relay)), relay.url);
    let (code, message) = publish(publisher, b"still here", MOQ_DELIVERY_STREAM);
    assert_eq!(code, MOQ_OK, "{message}");
    assert_eq!(
        inbox.wait_for(1, Duration::from_secs(10)),
        1,
        "the publisher or subscriber was damaged"
    );
    assert_eq!(inbox.objects.lock().unwrap()[0], b"still here");

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn stale_handles_after_destroy_and_double_destroy() {
    let _guard = shared();
    let mut relay = TestRelay::start();
    let url = relay.url.clone();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "stale", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "stale", "t", &inbox);

    moq_subscriber_destroy(subscriber);
    assert_not_a_subscriber(subscriber as usize);
    let message = fails(
        "moq_unsubscribe",
        MOQ_ERROR_INVALID_HANDLE,
        "not a live MoqSubscriber",
        || moq_unsubscribe(subscriber),
    );
    assert!(message.contains("destroyed"), "{message}");

    moq_publisher_destroy(publisher);
    assert_not_a_publisher(publisher as usize);

    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
    assert_not_a_client(pub_client as usize, &url);
    assert_not_a_client(sub_client as usize, &url);

    let raw = relay.relay;
    relay.stop();
    assert_not_a_relay(raw as usize);

    // Handles are never reused: a new object never answers to an old handle.
    let fresh = disconnected_client();
    assert_ne!(fresh, pub_client);
    assert_ne!(fresh, sub_client);
    assert_not_a_client(pub_client as usize, &url);
    moq_client_destroy(fresh);
}

#[test]
fn destroyed_client_leaves_its_publisher_and_subscriber_valid_but_failing() {
    let _guard = shared();
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "orphans", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "orphans", "t", &inbox);

    moq_client_destroy(sub_client);
    assert!(!moq_is_subscribed(subscriber));
    assert_ok(moq_unsubscribe(subscriber));
    assert_ok(moq_unsubscribe(subscriber));
    assert!(!moq_is_subscribed(subscriber));

    moq_client_destroy(pub_client);
    prime();
    let (code, message) = publish(publisher, b"orphan", MOQ_DELIVERY_STREAM);
    assert!(
        matches!(code, MOQ_ERROR_NOT_CONNECTED | MOQ_ERROR_CLOSED),
        "publishing through a destroyed client: {code:?}: {message}"
    );
    assert_last_error("moq_publish_data", "");

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    assert_not_a_subscriber(subscriber as usize);
    assert_not_a_publisher(publisher as usize);
    assert_eq!(inbox.len(), 0);
}

// ---------------------------------------------------------------------------------------------
// moq_client_create_ex and MoqClientConfig.
// ---------------------------------------------------------------------------------------------

#[test]
fn client_create_ex_rejects_null_and_unknown_struct_sizes() {
    let _guard = shared();
    null_with("moq_client_create_ex", "config is NULL", || unsafe {
        moq_client_create_ex(null())
    });

    let sizeof = size_of::<MoqClientConfig>() as u32;
    for size in [0, 1, 4, sizeof - 1, sizeof + 1, sizeof + 8, u32::MAX] {
        // Enough readable memory behind the config for every size we accept reading.
        #[repr(C)]
        struct Padded {
            config: MoqClientConfig,
            extra: [u8; 8],
        }
        let mut padded = Padded {
            config: config_plain(0),
            extra: [0xAA; 8],
        };
        padded.config.struct_size = size;
        let message = null_with("moq_client_create_ex", "config->struct_size", || unsafe {
            moq_client_create_ex(&padded.config)
        });
        assert!(message.contains(&size.to_string()), "{message}");
        assert!(
            padded.extra.iter().all(|b| *b == 0xAA),
            "the library wrote into the config"
        );
    }

    // The exact size is accepted.
    let config = config_plain(0);
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "{}", last_error());
    moq_client_destroy(client);
}

#[test]
fn client_create_ex_rejects_bad_fingerprints() {
    let _guard = shared();
    let hex64 = "ab".repeat(32);
    let bad: Vec<(&str, CString, &str)> = vec![
        ("empty", cstr(""), "tls_fingerprint_sha256"),
        ("short", cstr("abc"), "tls_fingerprint_sha256"),
        ("63 digits", cstr(&hex64[..63]), "tls_fingerprint_sha256"),
        ("65 digits", cstr(&format!("{hex64}a")), "tls_fingerprint_sha256"),
        ("128 digits", cstr(&hex64.repeat(2)), "tls_fingerprint_sha256"),
        ("non-hex", cstr(&"zz".repeat(32)), "tls_fingerprint_sha256"),
        (
            "spaces",
            cstr(&format!("{} {}", &hex64[..32], &hex64[32..63])),
            "tls_fingerprint_sha256",
        ),
        (
            "0x prefix",
            cstr(&format!("0x{}", &hex64[..62])),
            "tls_fingerprint_sha256",
        ),
        ("only colons", cstr(&":".repeat(64)), "tls_fingerprint_sha256"),
        ("unicode digits", cstr(&"٣".repeat(64)), "tls_fingerprint_sha256"),
        ("invalid UTF-8", bytes_cstring(&[0xff; 64]), "tls_fingerprint_sha256"),
        ("over-long", cstr(&"a".repeat(10_000)), "tls_fingerprint_sha256"),
    ];
    for (label, fingerprint, needle) in &bad {
        let config = pinned_config(fingerprint, 1000);
        let message = null_with("moq_client_create_ex", needle, || unsafe {
            moq_client_create_ex(&config)
        });
        assert!(!message.is_empty(), "{label}");
    }
    // Accepted forms: plain, upper case and colon-separated.
    let colons: Vec<String> = (0..32).map(|_| "AB".to_string()).collect();
    for good in [hex64.clone(), hex64.to_uppercase(), colons.join(":")] {
        let fingerprint = cstr(&good);
        let config = pinned_config(&fingerprint, 1000);
        let client = unsafe { moq_client_create_ex(&config) };
        assert!(!client.is_null(), "{good}: {}", last_error());
        moq_client_destroy(client);
    }
}

#[test]
fn client_create_ex_rejects_bad_pem() {
    let _guard = shared();
    let huge = CString::new(vec![b'A'; MOQ_MAX_PEM_LEN + 1]).unwrap();
    let bad: Vec<(&str, CString, &str)> = vec![
        ("empty", cstr(""), "tls_root_ca_pem"),
        ("garbage", cstr("garbage, not PEM at all"), "tls_root_ca_pem"),
        (
            "private key only",
            cstr("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"),
            "tls_root_ca_pem",
        ),
        (
            "bad base64",
            cstr("-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n"),
            "tls_root_ca_pem",
        ),
        (
            "no end marker",
            cstr("-----BEGIN CERTIFICATE-----\nMIIBAAAA\n"),
            "tls_root_ca_pem",
        ),
        (
            "invalid UTF-8",
            bytes_cstring(b"-----BEGIN CERTIFICATE-----\n\xff\xfe\n"),
            "tls_root_ca_pem",
        ),
        ("over MOQ_MAX_PEM_LEN", huge, "tls_root_ca_pem"),
    ];
    for (label, pem, needle) in &bad {
        let mut config = config_plain(0);
        config.tls_root_ca_pem = pem.as_ptr();
        let message = null_with("moq_client_create_ex", needle, || unsafe {
            moq_client_create_ex(&config)
        });
        assert!(!message.is_empty(), "{label}");
    }
}

#[test]
fn client_create_ex_rejects_conflicting_tls_settings() {
    let _guard = shared();
    let fingerprint = cstr(&"ab".repeat(32));
    let pem = cstr(DECODABLE_PEM);
    let combos = [
        (true, true, false),
        (true, false, true),
        (false, true, true),
        (true, true, true),
    ];
    for (with_pem, with_pin, insecure) in combos {
        let mut config = config_plain(0);
        if with_pem {
            config.tls_root_ca_pem = pem.as_ptr();
        }
        if with_pin {
            config.tls_fingerprint_sha256 = fingerprint.as_ptr();
        }
        config.tls_insecure_skip_verify = insecure;
        null_with("moq_client_create_ex", "exclusive", || unsafe {
            moq_client_create_ex(&config)
        });
    }
    // Each alone is fine.
    for (with_pem, with_pin, insecure) in [(true, false, false), (false, true, false), (false, false, true)] {
        let mut config = config_plain(0);
        if with_pem {
            config.tls_root_ca_pem = pem.as_ptr();
        }
        if with_pin {
            config.tls_fingerprint_sha256 = fingerprint.as_ptr();
        }
        config.tls_insecure_skip_verify = insecure;
        let client = unsafe { moq_client_create_ex(&config) };
        assert!(!client.is_null(), "{}", last_error());
        moq_client_destroy(client);
    }
}

#[test]
fn client_create_ex_bounds_the_timeout() {
    let _guard = shared();
    for timeout in [300_001, 1_000_000, u32::MAX] {
        let mut config = config_plain(0);
        config.connect_timeout_ms = timeout;
        let message = null_with("moq_client_create_ex", "connect_timeout_ms", || unsafe {
            moq_client_create_ex(&config)
        });
        assert!(message.contains("300000"), "{message}");
    }
    for timeout in [0, 1, 300_000] {
        let mut config = config_plain(0);
        config.connect_timeout_ms = timeout;
        let client = unsafe { moq_client_create_ex(&config) };
        assert!(!client.is_null(), "timeout {timeout}: {}", last_error());
        moq_client_destroy(client);
    }
}

/// A config whose `tls_insecure_skip_verify` byte holds `value`, written as raw bytes as C may
/// store it; never read back as a Rust `bool`.
fn config_with_raw_insecure(value: u8, fingerprint: Option<&CString>) -> MaybeUninit<MoqClientConfig> {
    let mut config = config_plain(0);
    config.connect_timeout_ms = 5000;
    if let Some(fingerprint) = fingerprint {
        config.tls_fingerprint_sha256 = fingerprint.as_ptr();
    }
    let mut raw = MaybeUninit::new(config);
    let offset = offset_of!(MoqClientConfig, tls_insecure_skip_verify);
    // SAFETY: writes one byte inside the struct; the value is never read as a Rust bool.
    unsafe { raw.as_mut_ptr().cast::<u8>().add(offset).write(value) };
    raw
}

#[test]
fn insecure_flag_stored_as_any_nonzero_byte_means_true() {
    let _guard = shared();
    let relay = TestRelay::start();
    let fingerprint = cstr(&relay.fingerprint);
    for value in [2u8, 0x7f, 0xff] {
        // Read as true: it conflicts with a pin.
        let raw = config_with_raw_insecure(value, Some(&fingerprint));
        null_with("moq_client_create_ex", "exclusive", || unsafe {
            moq_client_create_ex(raw.as_ptr())
        });
        // Read as true: a self-signed relay is accepted without any other trust setting.
        let raw = config_with_raw_insecure(value, None);
        let client = unsafe { moq_client_create_ex(raw.as_ptr()) };
        assert!(!client.is_null(), "byte {value}: {}", last_error());
        assert_ok(unsafe { moq_connect(client, cstr(&relay.url).as_ptr(), None, null_mut()) });
        assert!(moq_is_connected(client));
        moq_client_destroy(client);
    }
    // And 0 is false: the self-signed relay is rejected.
    let raw = config_with_raw_insecure(0, None);
    let client = unsafe { moq_client_create_ex(raw.as_ptr()) };
    assert!(!client.is_null(), "{}", last_error());
    prime();
    let (code, message) = take(unsafe { moq_connect(client, cstr(&relay.url).as_ptr(), None, null_mut()) });
    assert_eq!(code, MOQ_ERROR_CONNECTION_FAILED, "{message}");
    moq_client_destroy(client);
}

#[test]
fn client_create_ex_with_unterminated_strings_stops_at_the_limit() {
    let _guard = shared();
    // A fingerprint buffer with no terminator, one byte longer than any fingerprint can be.
    let buffer = unterminated(257);
    let mut config = config_plain(0);
    config.tls_fingerprint_sha256 = buffer.as_ptr().cast();
    null_with("moq_client_create_ex", "tls_fingerprint_sha256", || unsafe {
        moq_client_create_ex(&config)
    });
}

// ---------------------------------------------------------------------------------------------
// moq_connect, moq_disconnect, moq_is_connected.
// ---------------------------------------------------------------------------------------------

#[test]
fn connect_rejects_bad_urls_and_stays_usable() {
    let _guard = shared();
    let relay = TestRelay::start();
    let fingerprint = cstr(&relay.fingerprint);
    let config = pinned_config(&fingerprint, 5000);
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "{}", last_error());

    fails("moq_connect", MOQ_ERROR_INVALID_ARGUMENT, "url is NULL", || unsafe {
        moq_connect(client, null(), None, null_mut())
    });
    let mut bad: Vec<(&str, CString, &str)> = vec![
        ("empty", cstr(""), "url"),
        ("not a url", cstr("not a url"), "url"),
        ("ftp", cstr("ftp://x"), "scheme"),
        ("file", cstr("file:///etc/passwd"), "scheme"),
        ("javascript", cstr("javascript:alert(1)"), "url"),
        ("https without host", cstr("https://"), "url"),
        ("https with only a port", cstr("https://:443/"), "url"),
        ("moqt without host", cstr("moqt://"), "url"),
        ("moqt path only", cstr("moqt:/path"), "url"),
        ("unclosed IPv6", cstr("https://[::1"), "url"),
        ("bad port", cstr("https://localhost:99999"), "url"),
        ("space in host", cstr("https://local host/"), "url"),
        ("scheme only", cstr("https:"), "url"),
    ];
    bad.extend(malformed_strings(MOQ_MAX_URL_LEN));
    let long_valid_shape = cstr(&format!("https://localhost/{}", "a".repeat(MOQ_MAX_URL_LEN)));
    bad.push(("valid shape, over-long", long_valid_shape, "maximum"));
    for (label, url, needle) in &bad {
        let message = fails("moq_connect", MOQ_ERROR_INVALID_ARGUMENT, needle, || unsafe {
            moq_connect(client, url.as_ptr(), None, null_mut())
        });
        assert!(
            message.contains("url"),
            "{label}: the message must name the url: {message}"
        );
        assert!(!moq_is_connected(client), "{label}");
    }
    // Unterminated: one byte over the limit with no NUL at all.
    let buffer = unterminated(MOQ_MAX_URL_LEN + 1);
    fails(
        "moq_connect",
        MOQ_ERROR_INVALID_ARGUMENT,
        "longer than the maximum",
        || unsafe { moq_connect(client, buffer.as_ptr().cast(), None, null_mut()) },
    );

    // None of that hurt the client: it connects, and then a second connect is INVALID_STATE.
    assert_ok(unsafe { moq_connect(client, cstr(&relay.url).as_ptr(), None, null_mut()) });
    assert!(moq_is_connected(client));
    fails("moq_connect", MOQ_ERROR_INVALID_STATE, "already connected", || unsafe {
        moq_connect(client, cstr(&relay.url).as_ptr(), None, null_mut())
    });
    // A bad URL on a connected client is still INVALID_ARGUMENT and leaves it connected.
    fails("moq_connect", MOQ_ERROR_INVALID_ARGUMENT, "url", || unsafe {
        moq_connect(client, cstr("ftp://x").as_ptr(), None, null_mut())
    });
    assert!(moq_is_connected(client));
    moq_client_destroy(client);
}

#[test]
fn connect_to_nothing_fails_within_the_timeout_and_the_client_can_retry() {
    let _guard = shared();
    let relay = TestRelay::start();
    let fingerprint = cstr(&relay.fingerprint);
    let config = pinned_config(&fingerprint, 1000);
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "{}", last_error());

    // A port nobody listens on (the relay's own port on another loopback address family is
    // not guaranteed free, so use a port we just closed).
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    drop(socket);
    let url = cstr(&format!("https://127.0.0.1:{port}"));
    let started = Instant::now();
    prime();
    let (code, message) = take(unsafe { moq_connect(client, url.as_ptr(), None, null_mut()) });
    assert!(
        matches!(code, MOQ_ERROR_CONNECTION_FAILED | MOQ_ERROR_TIMEOUT),
        "{code:?}: {message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_last_error("moq_connect", "");
    assert!(!moq_is_connected(client));

    // The development http:// scheme against a TCP port nobody listens on fails fast too.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    drop(tcp);
    let started = Instant::now();
    prime();
    let (code, message) = take(unsafe {
        moq_connect(
            client,
            cstr(&format!("http://127.0.0.1:{tcp_port}")).as_ptr(),
            None,
            null_mut(),
        )
    });
    assert_ne!(code, MOQ_OK, "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_last_error("moq_connect", "");
    assert!(!moq_is_connected(client));

    // A failed client can connect again.
    assert_ok(unsafe { moq_connect(client, cstr(&relay.url).as_ptr(), None, null_mut()) });
    assert!(moq_is_connected(client));
    moq_client_destroy(client);
}

#[test]
fn disconnect_and_is_connected_on_disconnected_clients() {
    let _guard = shared();
    let client = disconnected_client();
    assert!(!moq_is_connected(client));
    assert_ok(moq_disconnect(client));
    assert_ok(moq_disconnect(client));
    assert!(!moq_is_connected(client));
    moq_client_destroy(client);

    let relay = TestRelay::start();
    let client = connected_client(&relay);
    assert!(moq_is_connected(client));
    assert_ok(moq_disconnect(client));
    assert!(!moq_is_connected(client));
    assert_ok(moq_disconnect(client));
    moq_client_destroy(client);
}

// ---------------------------------------------------------------------------------------------
// Operations that need a connection.
// ---------------------------------------------------------------------------------------------

#[test]
fn operations_on_a_disconnected_client_are_not_connected() {
    let _guard = shared();
    let relay = TestRelay::start();
    let never = disconnected_client();
    let dropped = connected_client(&relay);
    let publisher = publisher(dropped, "was-connected", "t");
    assert_ok(moq_disconnect(dropped));

    let (ns, track) = (cstr("ns"), cstr("track"));
    for client in [never, dropped] {
        let message = fails(
            "moq_announce_namespace",
            MOQ_ERROR_NOT_CONNECTED,
            "connected client",
            || unsafe { moq_announce_namespace(client, ns.as_ptr()) },
        );
        assert!(message.contains("moq_connect"), "{message}");
        null_with("moq_create_publisher", "connected client", || unsafe {
            moq_create_publisher(client, ns.as_ptr(), track.as_ptr())
        });
        null_with("moq_create_publisher_ex", "connected client", || unsafe {
            moq_create_publisher_ex(client, ns.as_ptr(), track.as_ptr(), MOQ_DELIVERY_DATAGRAM)
        });
        null_with("moq_subscribe", "connected client", || unsafe {
            moq_subscribe(client, ns.as_ptr(), track.as_ptr(), Some(ignore_data), null_mut())
        });
    }
    for mode in [MOQ_DELIVERY_STREAM, MOQ_DELIVERY_DATAGRAM] {
        fails(
            "moq_publish_data",
            MOQ_ERROR_NOT_CONNECTED,
            "connected client",
            || unsafe { moq_publish_data(publisher, b"x".as_ptr(), 1, mode) },
        );
        fails(
            "moq_publish_data",
            MOQ_ERROR_NOT_CONNECTED,
            "connected client",
            || unsafe { moq_publish_data(publisher, null(), 0, mode) },
        );
    }
    moq_publisher_destroy(publisher);
    moq_client_destroy(dropped);
    moq_client_destroy(never);
}

#[test]
fn operations_after_the_relay_went_away_are_not_connected() {
    let _guard = shared();
    let mut relay = TestRelay::start();
    let client = connected_client(&relay);
    let publisher = publisher(client, "gone", "t");
    relay.stop();
    assert!(
        wait_until(Duration::from_secs(15), || !moq_is_connected(client)),
        "the client never noticed the relay stopped"
    );
    // is_connected explains why.
    assert!(!last_error().is_empty());
    fails(
        "moq_publish_data",
        MOQ_ERROR_NOT_CONNECTED,
        "connected client",
        || unsafe { moq_publish_data(publisher, b"x".as_ptr(), 1, MOQ_DELIVERY_STREAM) },
    );
    fails(
        "moq_announce_namespace",
        MOQ_ERROR_NOT_CONNECTED,
        "connected client",
        || unsafe { moq_announce_namespace(client, cstr("later").as_ptr()) },
    );
    moq_publisher_destroy(publisher);
    moq_client_destroy(client);
}

// ---------------------------------------------------------------------------------------------
// Names: moq_announce_namespace, moq_create_publisher(_ex), moq_subscribe.
// ---------------------------------------------------------------------------------------------

#[test]
fn announce_rejects_bad_namespaces() {
    let _guard = shared();
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    fails(
        "moq_announce_namespace",
        MOQ_ERROR_INVALID_ARGUMENT,
        "namespace_str is NULL",
        || unsafe { moq_announce_namespace(client, null()) },
    );
    for (label, name, needle) in invalid_names() {
        let message = fails(
            "moq_announce_namespace",
            MOQ_ERROR_INVALID_ARGUMENT,
            needle,
            || unsafe { moq_announce_namespace(client, name.as_ptr()) },
        );
        assert!(message.contains("namespace_str"), "{label}: {message}");
    }
    let buffer = unterminated(MOQ_MAX_NAME_LEN + 1);
    fails(
        "moq_announce_namespace",
        MOQ_ERROR_INVALID_ARGUMENT,
        "namespace_str",
        || unsafe { moq_announce_namespace(client, buffer.as_ptr().cast()) },
    );
    // The longest legal name and repeats are fine.
    let longest = cstr(&"n".repeat(MOQ_MAX_NAME_LEN));
    assert_ok(unsafe { moq_announce_namespace(client, longest.as_ptr()) });
    assert_ok(unsafe { moq_announce_namespace(client, longest.as_ptr()) });
    assert_ok(unsafe { moq_announce_namespace(client, cstr("ünïcødé").as_ptr()) });
    assert!(moq_is_connected(client));
    moq_client_destroy(client);
}

#[test]
fn create_publisher_rejects_bad_names_and_modes() {
    let _guard = shared();
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let (ns, track) = (cstr("pubns"), cstr("track"));

    null_with("moq_create_publisher", "namespace_str is NULL", || unsafe {
        moq_create_publisher(client, null(), track.as_ptr())
    });
    null_with("moq_create_publisher", "track_name is NULL", || unsafe {
        moq_create_publisher(client, ns.as_ptr(), null())
    });
    null_with("moq_create_publisher_ex", "namespace_str is NULL", || unsafe {
        moq_create_publisher_ex(client, null(), null(), MOQ_DELIVERY_STREAM)
    });
    for (label, name, needle) in invalid_names() {
        let message = null_with("moq_create_publisher", needle, || unsafe {
            moq_create_publisher(client, name.as_ptr(), track.as_ptr())
        });
        assert!(message.contains("namespace_str"), "{label}: {message}");
        let message = null_with("moq_create_publisher_ex", needle, || unsafe {
            moq_create_publisher_ex(client, ns.as_ptr(), name.as_ptr(), MOQ_DELIVERY_DATAGRAM)
        });
        assert!(message.contains("track_name"), "{label}: {message}");
    }
    let buffer = unterminated(MOQ_MAX_NAME_LEN + 1);
    null_with("moq_create_publisher", "track_name", || unsafe {
        moq_create_publisher(client, ns.as_ptr(), buffer.as_ptr().cast())
    });
    for mode in [2, 7, 0x100, i32::MAX as u32, u32::MAX] {
        let message = null_with("moq_create_publisher_ex", "delivery_mode", || unsafe {
            moq_create_publisher_ex(client, ns.as_ptr(), track.as_ptr(), mode)
        });
        assert!(message.contains(&mode.to_string()), "{message}");
    }

    // After all that, a real publisher can be created, and a second one for the track cannot.
    let first = unsafe { moq_create_publisher_ex(client, ns.as_ptr(), track.as_ptr(), MOQ_DELIVERY_DATAGRAM) };
    assert!(!first.is_null(), "{}", last_error());
    null_with("moq_create_publisher", "already has a publisher", || unsafe {
        moq_create_publisher(client, ns.as_ptr(), track.as_ptr())
    });
    // Once destroyed, the track can be published again.
    moq_publisher_destroy(first);
    let second = unsafe { moq_create_publisher(client, ns.as_ptr(), track.as_ptr()) };
    assert!(!second.is_null(), "{}", last_error());
    // The longest legal names work.
    let longest = cstr(&"x".repeat(MOQ_MAX_NAME_LEN));
    let third = unsafe { moq_create_publisher(client, longest.as_ptr(), longest.as_ptr()) };
    assert!(!third.is_null(), "{}", last_error());
    moq_publisher_destroy(third);
    moq_publisher_destroy(second);
    moq_client_destroy(client);
}

#[test]
fn subscribe_rejects_bad_names_and_callbacks() {
    let _guard = shared();
    let relay = TestRelay::start();
    let fingerprint = cstr(&relay.fingerprint);
    let config = pinned_config(&fingerprint, 1000);
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null());
    assert_ok(unsafe { moq_connect(client, cstr(&relay.url).as_ptr(), None, null_mut()) });
    let (ns, track) = (cstr("subns"), cstr("track"));

    null_with("moq_subscribe", "namespace_str is NULL", || unsafe {
        moq_subscribe(client, null(), track.as_ptr(), Some(ignore_data), null_mut())
    });
    null_with("moq_subscribe", "track_name is NULL", || unsafe {
        moq_subscribe(client, ns.as_ptr(), null(), Some(ignore_data), null_mut())
    });
    null_with("moq_subscribe", "callback is NULL", || unsafe {
        moq_subscribe(client, ns.as_ptr(), track.as_ptr(), None, null_mut())
    });
    for (label, name, needle) in invalid_names() {
        let message = null_with("moq_subscribe", needle, || unsafe {
            moq_subscribe(client, name.as_ptr(), track.as_ptr(), Some(ignore_data), null_mut())
        });
        assert!(message.contains("namespace_str"), "{label}: {message}");
        let message = null_with("moq_subscribe", needle, || unsafe {
            moq_subscribe(client, ns.as_ptr(), name.as_ptr(), Some(ignore_data), null_mut())
        });
        assert!(message.contains("track_name"), "{label}: {message}");
    }
    let buffer = unterminated(MOQ_MAX_NAME_LEN + 1);
    null_with("moq_subscribe", "namespace_str", || unsafe {
        moq_subscribe(
            client,
            buffer.as_ptr().cast(),
            track.as_ptr(),
            Some(ignore_data),
            null_mut(),
        )
    });

    // A namespace nobody announces: NOT_FOUND within the configured timeout (+1 s margin).
    let started = Instant::now();
    null_with("moq_subscribe", "no publisher announced", || unsafe {
        moq_subscribe(
            client,
            cstr("nobody-here").as_ptr(),
            track.as_ptr(),
            Some(ignore_data),
            null_mut(),
        )
    });
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(moq_is_connected(client));
    moq_client_destroy(client);
}

// ---------------------------------------------------------------------------------------------
// moq_publish_data payloads and modes.
// ---------------------------------------------------------------------------------------------

#[test]
fn publish_rejects_bad_payloads_and_modes_and_sends_nothing_for_them() {
    let _guard = shared();
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "payloads", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "payloads", "t", &inbox);
    let data = [7u8; 16];

    for mode in [MOQ_DELIVERY_STREAM, MOQ_DELIVERY_DATAGRAM] {
        for len in [1, 5, 4096, usize::MAX] {
            fails(
                "moq_publish_data",
                MOQ_ERROR_INVALID_ARGUMENT,
                "data is NULL",
                || unsafe { moq_publish_data(publisher, null(), len, mode) },
            );
        }
        // Impossible lengths with a real pointer are rejected before anything is read.
        for len in [usize::MAX, isize::MAX as usize + 1] {
            fails("moq_publish_data", MOQ_ERROR_INVALID_ARGUMENT, "data", || unsafe {
                moq_publish_data(publisher, data.as_ptr(), len, mode)
            });
        }
    }
    for mode in [2, 7, 0x8000_0000, u32::MAX] {
        let message = fails(
            "moq_publish_data",
            MOQ_ERROR_INVALID_ARGUMENT,
            "delivery_mode",
            || unsafe { moq_publish_data(publisher, data.as_ptr(), data.len(), mode) },
        );
        assert!(message.contains(&mode.to_string()), "{message}");
        fails(
            "moq_publish_data",
            MOQ_ERROR_INVALID_ARGUMENT,
            "delivery_mode",
            || unsafe { moq_publish_data(publisher, null(), 0, mode) },
        );
    }

    // Oversize: one buffer, allocated once, sliced for both limits.
    let big = vec![0x5au8; MOQ_MAX_OBJECT_SIZE + 1];
    let message = fails("moq_publish_data", MOQ_ERROR_INVALID_ARGUMENT, "data_len", || unsafe {
        moq_publish_data(
            publisher,
            big.as_ptr(),
            MOQ_MAX_DATAGRAM_SIZE + 1,
            MOQ_DELIVERY_DATAGRAM,
        )
    });
    assert!(message.contains(&MOQ_MAX_DATAGRAM_SIZE.to_string()), "{message}");
    fails("moq_publish_data", MOQ_ERROR_INVALID_ARGUMENT, "data_len", || unsafe {
        moq_publish_data(publisher, big.as_ptr(), big.len(), MOQ_DELIVERY_DATAGRAM)
    });
    let message = fails("moq_publish_data", MOQ_ERROR_INVALID_ARGUMENT, "data_len", || unsafe {
        moq_publish_data(publisher, big.as_ptr(), MOQ_MAX_OBJECT_SIZE + 1, MOQ_DELIVERY_STREAM)
    });
    assert!(message.contains(&MOQ_MAX_OBJECT_SIZE.to_string()), "{message}");

    // None of the rejected calls produced an object; the valid ones below each produce one.
    // NULL with length 0 is a legal empty object.
    assert_ok(unsafe { moq_publish_data(publisher, null(), 0, MOQ_DELIVERY_STREAM) });
    assert_ok(unsafe { moq_publish_data(publisher, big.as_ptr(), 3, MOQ_DELIVERY_STREAM) });
    assert_eq!(inbox.wait_for(2, Duration::from_secs(10)), 2);
    // The largest datagram is accepted (or the protocol cannot do datagrams at all).
    let (code, message) =
        take(unsafe { moq_publish_data(publisher, big.as_ptr(), MOQ_MAX_DATAGRAM_SIZE, MOQ_DELIVERY_DATAGRAM) });
    assert!(matches!(code, MOQ_OK | MOQ_ERROR_UNSUPPORTED), "{code:?}: {message}");
    std::thread::sleep(Duration::from_millis(300));
    let objects = inbox.objects.lock().unwrap().clone();
    assert_eq!(objects[0], Vec::<u8>::new());
    assert_eq!(objects[1], vec![0x5a; 3]);
    assert!(
        objects.len() <= 3,
        "rejected calls delivered objects: {}",
        objects.len()
    );
    if objects.len() == 3 {
        assert_eq!(objects[2].len(), MOQ_MAX_DATAGRAM_SIZE);
    }
    assert!(moq_is_subscribed(subscriber), "{}", last_error());
    drop(big);

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

#[test]
fn largest_stream_object_is_accepted() {
    let _guard = shared();
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let publisher = publisher(client, "largest", "t");
    let big = vec![1u8; MOQ_MAX_OBJECT_SIZE];
    let (code, message) = publish(publisher, &big, MOQ_DELIVERY_STREAM);
    assert_eq!(code, MOQ_OK, "{message}");
    moq_publisher_destroy(publisher);
    moq_client_destroy(client);
}

// ---------------------------------------------------------------------------------------------
// Subscriber lifecycle.
// ---------------------------------------------------------------------------------------------

#[test]
fn unsubscribe_is_idempotent_and_destroy_after_it_is_fine() {
    let _guard = shared();
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "unsub", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "unsub", "t", &inbox);
    assert!(moq_is_subscribed(subscriber));
    assert_ok(moq_unsubscribe(subscriber));
    assert!(!moq_is_subscribed(subscriber));
    assert_ok(moq_unsubscribe(subscriber));
    let (code, message) = publish(publisher, b"after unsubscribe", MOQ_DELIVERY_STREAM);
    assert_eq!(code, MOQ_OK, "{message}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(inbox.len(), 0, "a callback ran after moq_unsubscribe returned");
    moq_subscriber_destroy(subscriber);
    assert_not_a_subscriber(subscriber as usize);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

// ---------------------------------------------------------------------------------------------
// Embedded relay.
// ---------------------------------------------------------------------------------------------

#[test]
fn relay_start_rejects_bad_bind_addresses() {
    let _guard = shared();
    null_with("moq_relay_start", "bind_addr is NULL", || unsafe {
        moq_relay_start(null())
    });
    let mut bad: Vec<(&str, CString, &str)> = vec![
        ("empty", cstr(""), "bind_addr"),
        ("words", cstr("not an address"), "bind_addr"),
        ("host name", cstr("localhost:0"), "bind_addr"),
        ("no port", cstr("127.0.0.1"), "bind_addr"),
        ("port only", cstr(":0"), "bind_addr"),
        ("port too big", cstr("127.0.0.1:65536"), "bind_addr"),
        ("negative port", cstr("127.0.0.1:-1"), "bind_addr"),
        ("octet too big", cstr("256.0.0.1:0"), "bind_addr"),
        ("unbracketed IPv6", cstr("::1:0"), "bind_addr"),
        ("unclosed IPv6", cstr("[::1:0"), "bind_addr"),
        ("URL", cstr("https://127.0.0.1:0"), "bind_addr"),
        ("trailing junk", cstr("127.0.0.1:0 junk"), "bind_addr"),
    ];
    bad.extend(malformed_strings(256));
    for (label, addr, needle) in &bad {
        let message = null_with("moq_relay_start", needle, || unsafe { moq_relay_start(addr.as_ptr()) });
        assert!(message.contains("bind_addr"), "{label}: {message}");
    }
    let buffer = unterminated(257);
    null_with("moq_relay_start", "bind_addr", || unsafe {
        moq_relay_start(buffer.as_ptr().cast())
    });
}

#[test]
fn relay_start_reports_addresses_it_cannot_bind() {
    let _guard = shared();
    // TEST-NET-1: a well-formed address that is not ours.
    let started = Instant::now();
    null_with("moq_relay_start", "", || unsafe {
        moq_relay_start(cstr("192.0.2.1:0").as_ptr())
    });
    assert!(started.elapsed() < Duration::from_secs(11));
    // A UDP port someone else holds.
    let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let addr = cstr(&format!("127.0.0.1:{port}"));
    let relay = unsafe { moq_relay_start(addr.as_ptr()) };
    if !relay.is_null() {
        moq_relay_stop(relay);
        panic!("the relay started on UDP port {port}, which another socket holds");
    }
    assert!(last_error().starts_with("moq_relay_start"), "{}", last_error());
    drop(holder);
}

#[test]
fn relay_stop_closes_clients_and_invalidates_its_strings_handle() {
    let _guard = shared();
    let mut relay = TestRelay::start();
    let raw = relay.relay;
    let states = kept(std::sync::Arc::new(States::default()));
    let client = connected_client_with(
        &relay,
        Some(states_callback),
        std::sync::Arc::as_ptr(&states) as *mut c_void,
    );
    relay.stop();
    assert_not_a_relay(raw as usize);
    assert!(
        states.wait_for(MoqConnectionState::MOQ_STATE_DISCONNECTED, Duration::from_secs(15)),
        "no DISCONNECTED after the relay stopped: {:?}",
        states.snapshot()
    );
    assert!(!moq_is_connected(client));
    moq_client_destroy(client);
}

// ---------------------------------------------------------------------------------------------
// Many threads at once.
// ---------------------------------------------------------------------------------------------

#[test]
fn hostile_calls_from_many_threads() {
    let _guard = shared();
    let threads: Vec<_> = (0..8usize)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..200usize {
                    let client = moq_client_create();
                    assert!(!client.is_null(), "{}", last_error());
                    let value = MADE_UP[(t + i) % MADE_UP.len()];
                    let (code, _) = take(moq_disconnect(value as *mut MoqClient));
                    assert_eq!(code, MOQ_ERROR_INVALID_HANDLE);
                    assert!(last_error().starts_with("moq_disconnect"));
                    let (code, _) = take(unsafe { moq_publish_data(client as *mut MoqPublisher, null(), 0, 1) });
                    assert_eq!(code, MOQ_ERROR_INVALID_HANDLE);
                    assert!(!moq_is_subscribed(client as *mut MoqSubscriber));
                    assert!(moq_relay_url(client as *mut MoqRelay).is_null());
                    let (code, _) = take(unsafe { moq_announce_namespace(client, cstr("x").as_ptr()) });
                    assert_eq!(code, MOQ_ERROR_NOT_CONNECTED);
                    moq_client_destroy(client);
                    moq_client_destroy(client);
                    assert!(last_error().contains("MoqClient handle"), "{}", last_error());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a hostile thread panicked");
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrent and re-entrant misuse of one client.
// ---------------------------------------------------------------------------------------------

/// A loopback UDP port nobody listens on (bound, then released).
fn dead_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().port()
}

#[test]
fn second_connect_while_connecting_is_invalid_state() {
    let _guard = shared();
    let relay = TestRelay::start();
    let fingerprint = cstr(&relay.fingerprint);
    let config = pinned_config(&fingerprint, 2000);
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "{}", last_error());
    let handle = client as usize;
    let url = format!("https://127.0.0.1:{}", dead_port());
    let connecting = std::thread::spawn(move || {
        let started = Instant::now();
        let url = cstr(&url);
        let result = take(unsafe { moq_connect(handle as *mut MoqClient, url.as_ptr(), None, null_mut()) });
        (result, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    fails("moq_connect", MOQ_ERROR_INVALID_STATE, "in progress", || unsafe {
        moq_connect(client, cstr(&relay.url).as_ptr(), None, null_mut())
    });
    assert!(!moq_is_connected(client));
    // Disconnect cancels the connect in progress (or it times out by itself).
    assert_ok(moq_disconnect(client));
    let ((code, message), took) = connecting.join().unwrap();
    assert_ne!(code, MOQ_OK, "a connect to a dead port succeeded: {message}");
    assert!(took < Duration::from_secs(5), "the connect took {took:?}");
    // Afterwards the client connects normally.
    assert_ok(unsafe { moq_connect(client, cstr(&relay.url).as_ptr(), None, null_mut()) });
    assert!(moq_is_connected(client));
    moq_client_destroy(client);
}

#[test]
fn destroy_while_another_thread_is_connecting() {
    let _guard = shared();
    let relay = TestRelay::start();
    let fingerprint = cstr(&relay.fingerprint);
    let config = pinned_config(&fingerprint, 2000);
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "{}", last_error());
    let handle = client as usize;
    let url = format!("https://127.0.0.1:{}", dead_port());
    let connecting = std::thread::spawn(move || {
        let url = cstr(&url);
        take(unsafe { moq_connect(handle as *mut MoqClient, url.as_ptr(), None, null_mut()) })
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    moq_client_destroy(client);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "destroy took {:?}",
        started.elapsed()
    );
    let (code, message) = connecting.join().unwrap();
    assert_ne!(code, MOQ_OK, "{message}");
    assert_not_a_client(handle, &relay.url);
}

static SEEN_USER_DATA: std::sync::Mutex<Vec<(usize, MoqConnectionState)>> = std::sync::Mutex::new(Vec::new());

unsafe extern "C" fn record_user_data(user_data: *mut c_void, state: MoqConnectionState) {
    SEEN_USER_DATA
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((user_data as usize, state));
}

#[test]
fn user_data_is_passed_back_untouched_even_when_it_is_garbage() {
    let _guard = shared();
    let relay = TestRelay::start();
    let fingerprint = cstr(&relay.fingerprint);
    let config = pinned_config(&fingerprint, 5000);
    let garbage = 0xdead_beef_0000_0010usize;
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null());
    assert_ok(unsafe {
        moq_connect(
            client,
            cstr(&relay.url).as_ptr(),
            Some(record_user_data),
            garbage as *mut c_void,
        )
    });
    let connected = wait_until(Duration::from_secs(5), || {
        SEEN_USER_DATA
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&(garbage, MoqConnectionState::MOQ_STATE_CONNECTED))
    });
    assert!(connected, "CONNECTED never reported with the caller's user_data");
    moq_client_destroy(client);
}

// ---------------------------------------------------------------------------------------------
// Namespace spellings that moq-net treats as the same path.
// ---------------------------------------------------------------------------------------------

/// "ns", "ns/", "/ns" and "//ns//" are one path on the wire (moq-net normalises slashes). A
/// second spelling must not become a second publisher of the same track (the docs: "a second
/// publisher for the same track" is INVALID_ARGUMENT), and it must not silently take over the
/// original's subscribers.
#[test]
fn namespace_aliases_do_not_make_a_second_publisher_of_a_track() {
    let _guard = shared();
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let original = publisher(pub_client, "alias", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "alias", "t", &inbox);
    assert_eq!(publish(original, b"one", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    assert_eq!(inbox.wait_for(1, Duration::from_secs(10)), 1);

    let mut accepted = Vec::new();
    for spelling in ["alias/", "/alias", "//alias//"] {
        let alias = unsafe { moq_create_publisher(pub_client, cstr(spelling).as_ptr(), cstr("t").as_ptr()) };
        if !alias.is_null() {
            accepted.push((spelling, alias));
        }
    }
    // Let the relay see whatever the aliases announced.
    std::thread::sleep(Duration::from_millis(500));
    let (code, message) = publish(original, b"two", MOQ_DELIVERY_STREAM);
    assert_eq!(code, MOQ_OK, "{message}");
    let arrived = inbox.wait_for(2, Duration::from_secs(3));
    let spellings: Vec<&str> = accepted.iter().map(|(spelling, _)| *spelling).collect();
    for (_, alias) in accepted {
        moq_publisher_destroy(alias);
    }
    assert!(
        spellings.is_empty() && arrived == 2,
        "second publishers accepted for track \"alias\"/\"t\" under the spellings {spellings:?}; \
         afterwards the original publisher's object was {} (moq_publish_data returned MOQ_OK)",
        if arrived == 2 { "delivered" } else { "silently lost" }
    );
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(original);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

/// Announcing another spelling of a namespace that already has a publisher must not hide that
/// publisher's tracks from subscribers.
#[test]
fn announcing_a_namespace_alias_does_not_hide_published_tracks() {
    let _guard = shared();
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let original = publisher(pub_client, "shadow", "t");
    let (code, message) = take(unsafe { moq_announce_namespace(pub_client, cstr("shadow/").as_ptr()) });
    std::thread::sleep(Duration::from_millis(300));
    let inbox = kept(Inbox::new());
    let subscriber = unsafe {
        moq_subscribe(
            sub_client,
            cstr("shadow").as_ptr(),
            cstr("t").as_ptr(),
            Some(inbox_callback),
            std::sync::Arc::as_ptr(&inbox) as *mut c_void,
        )
    };
    let why = if subscriber.is_null() {
        last_error()
    } else {
        String::new()
    };
    assert!(
        !subscriber.is_null(),
        "after moq_announce_namespace(\"shadow/\") returned {code:?} {message:?}, subscribing to \
         \"shadow\"/\"t\" (which has a live publisher) failed: {why}"
    );
    assert_eq!(publish(original, b"x", MOQ_DELIVERY_STREAM).0, MOQ_OK);
    assert_eq!(inbox.wait_for(1, Duration::from_secs(10)), 1);
    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(original);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

// ---------------------------------------------------------------------------------------------
// Destroy racing with use from other threads.
// ---------------------------------------------------------------------------------------------

#[test]
fn destroy_races_with_use_from_other_threads() {
    let _guard = shared();
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = publisher(pub_client, "race", "t");
    let inbox = kept(Inbox::new());
    let subscriber = subscribe(sub_client, "race", "t", &inbox);
    let (p, s) = (publisher as usize, subscriber as usize);
    let users: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let mut after_destroy = 0;
                for i in 0..60u32 {
                    let (code, message) = publish(p as *mut MoqPublisher, &i.to_be_bytes(), MOQ_DELIVERY_STREAM);
                    match code {
                        MOQ_OK => assert_eq!(after_destroy, 0, "a destroyed publisher published"),
                        MOQ_ERROR_INVALID_HANDLE => after_destroy += 1,
                        other => panic!("unexpected {other:?}: {message}"),
                    }
                    let _ = moq_is_subscribed(s as *mut MoqSubscriber);
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    moq_subscriber_destroy(subscriber);
    let count_at_destroy = inbox.len();
    moq_publisher_destroy(publisher);
    for user in users {
        user.join().expect("a user thread failed");
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        inbox.len(),
        count_at_destroy,
        "callbacks ran after moq_subscriber_destroy returned"
    );
    assert_not_a_publisher(p);
    assert_not_a_subscriber(s);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}
