//! The C API stack: every step goes through the exported `moq_*` functions, called as a C
//! program would (handles, NUL-terminated strings, `MoqResult`, C-ABI callbacks with a
//! `user_data` pointer).

use super::receiver::{Receiver, Sink};
use super::stack::{Link, Mode, Stack};
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::Arc;

/// This thread's `moq_last_error()` text.
pub fn last_error() -> String {
    let ptr = moq_last_error();
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: a non-NULL `moq_last_error()` is a NUL-terminated string valid until the next
    // failing call on this thread; it is copied at once.
    unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

/// `Ok` for `MOQ_OK`, else the message (freed with `moq_free_str`).
pub fn check(result: MoqResult) -> Result<(), String> {
    if result.code == MoqResultCode::MOQ_OK {
        return Ok(());
    }
    let message = match result.message.is_null() {
        true => String::new(),
        // SAFETY: a non-NULL message is a NUL-terminated string the caller owns until freed.
        false => unsafe { CStr::from_ptr(result.message) }.to_string_lossy().into_owned(),
    };
    moq_free_str(result.message);
    Err(format!("{:?}: {message}", result.code))
}

fn c_string(text: &str) -> CString {
    CString::new(text).unwrap_or_default()
}

/// An embedded relay started with `moq_relay_start`.
pub struct Relay {
    handle: *mut MoqRelay,
    pub url: CString,
    pub fingerprint: CString,
}

// SAFETY: a handle is an opaque number the library looks up; every function is thread-safe.
unsafe impl Send for Relay {}
// SAFETY: as above.
unsafe impl Sync for Relay {}

impl Relay {
    /// Starts a relay on a free loopback port.
    pub fn start() -> Result<Self, String> {
        let bind = c_string("127.0.0.1:0");
        // SAFETY: `bind` is a NUL-terminated string that outlives the call.
        let handle = unsafe { moq_relay_start(bind.as_ptr()) };
        if handle.is_null() {
            return Err(format!("moq_relay_start: {}", last_error()));
        }
        let copy = |ptr: *const c_char| match ptr.is_null() {
            true => CString::default(),
            // SAFETY: the relay owns these strings until `moq_relay_stop`; copied at once.
            false => unsafe { CStr::from_ptr(ptr) }.to_owned(),
        };
        Ok(Self {
            url: copy(moq_relay_url(handle)),
            fingerprint: copy(moq_relay_fingerprint(handle)),
            handle,
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        moq_relay_stop(self.handle);
    }
}

/// A client connected to a relay with its fingerprint pinned.
pub struct Client {
    pub handle: *mut MoqClient,
}

// SAFETY: a handle is an opaque number the library looks up; every function is thread-safe.
unsafe impl Send for Client {}
// SAFETY: as above.
unsafe impl Sync for Client {}

impl Client {
    /// `moq_client_create_ex` with the relay's fingerprint pinned, then a blocking `moq_connect`.
    pub fn connect(relay: &Relay) -> Result<Self, String> {
        // SAFETY: every field of `MoqClientConfig` is an integer, a bool or a raw pointer, for
        // which all-zero bytes are valid (the header documents zero-initialising it).
        let mut config: MoqClientConfig = unsafe { std::mem::zeroed() };
        config.struct_size = std::mem::size_of::<MoqClientConfig>() as u32;
        config.tls_fingerprint_sha256 = relay.fingerprint.as_ptr();
        // SAFETY: `config` is a complete struct whose strings outlive the call.
        let handle = unsafe { moq_client_create_ex(&config) };
        if handle.is_null() {
            return Err(format!("moq_client_create_ex: {}", last_error()));
        }
        let client = Self { handle };
        // SAFETY: the URL is NUL-terminated and outlives the call; no callback is registered.
        check(unsafe { moq_connect(handle, relay.url.as_ptr(), None, std::ptr::null_mut()) })
            .map_err(|err| format!("moq_connect: {err}"))?;
        Ok(client)
    }

    /// The negotiated protocol version.
    pub fn protocol(&self) -> String {
        let mut buf = [0 as c_char; 64];
        // SAFETY: `buf` has `buf.len()` writable bytes.
        match check(unsafe { moq_client_protocol_version(self.handle, buf.as_mut_ptr(), buf.len()) }) {
            // SAFETY: on success the library wrote a NUL-terminated string into `buf`.
            Ok(()) => unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned(),
            Err(err) => err,
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        moq_client_destroy(self.handle);
    }
}

/// A publisher made with `moq_create_publisher_opts`.
pub struct Publisher {
    pub handle: *mut MoqPublisher,
    delivery: MoqDeliveryMode,
}

// SAFETY: a handle is an opaque number the library looks up; every function is thread-safe.
unsafe impl Send for Publisher {}

impl Publisher {
    /// A publisher of `namespace/track` in `mode` with the default retention (30 s).
    pub fn create(client: &Client, namespace: &str, track: &str, mode: Mode) -> Result<Self, String> {
        Self::create_with(client, namespace, track, mode, 0)
    }

    /// A publisher of `namespace/track` in `mode` keeping groups `retention_ms` (0: 30 s).
    pub fn create_with(
        client: &Client,
        namespace: &str,
        track: &str,
        mode: Mode,
        retention_ms: u32,
    ) -> Result<Self, String> {
        let delivery = match mode {
            Mode::Stream => MOQ_DELIVERY_STREAM,
            Mode::Datagram => MOQ_DELIVERY_DATAGRAM,
        };
        let options = MoqPublisherOptions {
            delivery_mode: delivery,
            retention_ms,
            ..moq_publisher_options_default()
        };
        let (namespace, track) = (c_string(namespace), c_string(track));
        // SAFETY: the strings are NUL-terminated and `options` is a complete struct; all outlive
        // the call.
        let handle = unsafe { moq_create_publisher_opts(client.handle, namespace.as_ptr(), track.as_ptr(), &options) };
        if handle.is_null() {
            return Err(format!("moq_create_publisher_opts: {}", last_error()));
        }
        Ok(Self { handle, delivery })
    }

    /// `moq_publish_data` in the publisher's mode.
    pub fn publish(&self, payload: &[u8]) -> Result<(), String> {
        // SAFETY: `payload` is `payload.len()` readable bytes for the duration of the call.
        check(unsafe { moq_publish_data(self.handle, payload.as_ptr(), payload.len(), self.delivery) })
    }
}

impl Publisher {
    /// `moq_publisher_begin_group`: ends the open group (if any) and opens the next.
    pub fn begin_group(&self) -> Result<u64, String> {
        let mut group = 0u64;
        // SAFETY: `group` is a writable u64 for the duration of the call.
        check(unsafe { moq_publisher_begin_group(self.handle, &mut group) })?;
        Ok(group)
    }

    /// `moq_publish_object`: appends an object to the open group, stamped now.
    pub fn publish_object(&self, payload: &[u8]) -> Result<(), String> {
        // SAFETY: `payload` is `payload.len()` readable bytes for the duration of the call.
        check(unsafe { moq_publish_object(self.handle, payload.as_ptr(), payload.len(), 0) })
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        moq_publisher_destroy(self.handle);
    }
}

/// A subscription made with `moq_subscribe_ex`, delivering to a [`Sink`] through C-ABI
/// callbacks.
pub struct Subscriber {
    handle: *mut MoqSubscriber,
    /// Referenced by the callbacks' `user_data`; released only after the handle is destroyed.
    _sink: Arc<dyn Sink>,
}

// SAFETY: a handle is an opaque number the library looks up; every function is thread-safe.
unsafe impl Send for Subscriber {}

/// The object callback: hands the payload to the sink behind `user_data`.
unsafe extern "C" fn on_object<S: Sink>(user_data: *mut c_void, _: *const MoqObjectInfo, data: *const u8, len: usize) {
    // SAFETY: `user_data` is the `Arc<S>` pointer of a live `Subscriber`, which keeps it alive
    // until `moq_subscriber_destroy` returned (no callback runs after that).
    let sink = unsafe { &*user_data.cast::<S>() };
    let bytes = match len {
        0 => &[][..],
        // SAFETY: the library passes `len` readable bytes at `data`, valid during this call.
        _ => unsafe { std::slice::from_raw_parts(data, len) },
    };
    sink.on_object(bytes);
}

/// The status callback: reports SUBSCRIBED.
unsafe extern "C" fn on_status<S: Sink>(
    user_data: *mut c_void,
    status: MoqSubscriptionStatus,
    _: u32,
    _: *const c_char,
) {
    // SAFETY: as in `on_object`.
    let sink = unsafe { &*user_data.cast::<S>() };
    if status == MOQ_SUBSCRIPTION_SUBSCRIBED {
        sink.on_subscribed();
    }
}

impl Subscriber {
    /// Subscribes to `namespace/track` (default options: the next group on, reliable).
    pub fn subscribe<S: Sink>(client: &Client, namespace: &str, track: &str, sink: &Arc<S>) -> Result<Self, String> {
        let (namespace, track) = (c_string(namespace), c_string(track));
        let user_data = Arc::as_ptr(sink).cast_mut().cast::<c_void>();
        // SAFETY: the strings are NUL-terminated and outlive the call; NULL options are the
        // defaults; the callbacks only read the sink, which outlives the subscription.
        let handle = unsafe {
            moq_subscribe_ex(
                client.handle,
                namespace.as_ptr(),
                track.as_ptr(),
                std::ptr::null(),
                Some(on_object::<S>),
                Some(on_status::<S>),
                user_data,
            )
        };
        if handle.is_null() {
            return Err(format!("moq_subscribe_ex: {}", last_error()));
        }
        Ok(Self {
            handle,
            _sink: sink.clone(),
        })
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        moq_subscriber_destroy(self.handle);
    }
}

/// The C API stack: a relay, a publishing client and a subscribing client.
pub struct CapiStack {
    namespace: String,
    publisher_client: Client,
    subscriber_client: Client,
    _relay: Relay,
}

impl CapiStack {
    /// Starts the relay and connects both clients.
    pub fn start(namespace: &str) -> Result<Self, String> {
        let relay = Relay::start()?;
        Ok(Self {
            namespace: namespace.to_string(),
            publisher_client: Client::connect(&relay)?,
            subscriber_client: Client::connect(&relay)?,
            _relay: relay,
        })
    }
}

/// A publisher and a subscriber on one track; fields drop in order, so the subscriber goes
/// first.
struct CapiLink {
    subscriber: Subscriber,
    publisher: Publisher,
}

impl Link for CapiLink {
    fn publish(&mut self, payload: &[u8]) -> Result<(), String> {
        self.publisher.publish(payload)
    }
}

impl Stack for CapiStack {
    fn label(&self) -> &'static str {
        "capi"
    }

    fn protocol(&self) -> String {
        format!(
            "{} / {}",
            self.publisher_client.protocol(),
            self.subscriber_client.protocol()
        )
    }

    fn open(&self, track: &str, mode: Mode, receiver: &Arc<Receiver>) -> Result<Box<dyn Link>, String> {
        let publisher = Publisher::create(&self.publisher_client, &self.namespace, track, mode)?;
        let subscriber = Subscriber::subscribe(&self.subscriber_client, &self.namespace, track, receiver)?;
        Ok(Box::new(CapiLink { subscriber, publisher }))
    }
}
