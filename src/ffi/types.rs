//! The C-visible types. Layouts and values are part of the ABI: enum values may only be
//! appended, struct fields only appended (versioned by `struct_size`).

use std::ffi::{c_char, c_void};

/// Outcome of a call. Values are stable; new ones are only appended.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum MoqResultCode {
    /// Success.
    MOQ_OK = 0,
    /// A parameter was NULL, malformed, too long or out of range; the message names it.
    MOQ_ERROR_INVALID_ARGUMENT = 1,
    /// The connection or TLS handshake failed; the message says which check failed.
    MOQ_ERROR_CONNECTION_FAILED = 2,
    /// The operation needs a connected client.
    MOQ_ERROR_NOT_CONNECTED = 3,
    /// A bounded wait ran out (see `MoqClientConfig.connect_timeout_ms`).
    MOQ_ERROR_TIMEOUT = 4,
    /// An unexpected failure inside the library or the protocol stack.
    MOQ_ERROR_INTERNAL = 5,
    /// The negotiated protocol or transport cannot do this (e.g. datagrams on moq-lite-04).
    MOQ_ERROR_UNSUPPORTED = 6,
    /// A caller-provided buffer is too small.
    MOQ_ERROR_BUFFER_TOO_SMALL = 7,
    /// The handle is NULL, destroyed, of another type, or was never issued by this library.
    MOQ_ERROR_INVALID_HANDLE = 8,
    /// A panic was caught inside the library (a bug; the process is unaffected).
    MOQ_ERROR_PANIC = 9,
    /// The relay or peer refused the request (e.g. an announce it did not confirm).
    MOQ_ERROR_REFUSED = 10,
    /// The namespace or track does not exist.
    MOQ_ERROR_NOT_FOUND = 11,
    /// The object was closed or ended (unsubscribed, track ended, client destroyed).
    MOQ_ERROR_CLOSED = 12,
    /// The call conflicts with the object's state (e.g. connecting a connected client).
    MOQ_ERROR_INVALID_STATE = 13,
}

/// Result of a call. `message` is NULL on success; on failure it is a copy of the error text,
/// owned by the caller and released with `moq_free_str`.
#[repr(C)]
#[derive(Debug)]
pub struct MoqResult {
    /// What happened.
    pub code: MoqResultCode,
    /// NULL on success; otherwise an error message the caller frees with `moq_free_str`.
    pub message: *const c_char,
}

/// Connection state, as reported to `MoqConnectionCallback`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum MoqConnectionState {
    /// Not connected: initially, after `moq_disconnect`, or after the relay went away.
    MOQ_STATE_DISCONNECTED = 0,
    /// A connect is in progress.
    MOQ_STATE_CONNECTING = 1,
    /// Connected to the relay.
    MOQ_STATE_CONNECTED = 2,
    /// The connect failed; `moq_last_error` / the connect result says why.
    MOQ_STATE_FAILED = 3,
    /// The session was lost and the client is redialing (`MoqClientConfig.reconnect`);
    /// CONNECTED follows when it is back, with announces, publishers and subscribers restored.
    MOQ_STATE_RECONNECTING = 4,
}

/// How an object travels: `MOQ_DELIVERY_DATAGRAM` or `MOQ_DELIVERY_STREAM`.
///
/// An integer type (not a C enum) so that any value a caller passes is well-defined; values
/// other than the constants below are rejected with `MOQ_ERROR_INVALID_ARGUMENT`.
pub type MoqDeliveryMode = u32;
/// Lossy, latest-value: one QUIC datagram per object, at most `MOQ_MAX_DATAGRAM_SIZE` bytes.
pub const MOQ_DELIVERY_DATAGRAM: MoqDeliveryMode = 0;
/// Reliable and ordered: every object reaches every live subscriber exactly once, in order.
pub const MOQ_DELIVERY_STREAM: MoqDeliveryMode = 1;

/// Longest namespace or track name, in bytes (UTF-8, no control characters, not empty; a
/// namespace's '/'-separated segments must not be empty: no leading, trailing or doubled '/').
pub const MOQ_MAX_NAME_LEN: usize = 1024;
/// Longest URL, in bytes.
pub const MOQ_MAX_URL_LEN: usize = 8192;
/// Largest `tls_root_ca_pem`, in bytes.
pub const MOQ_MAX_PEM_LEN: usize = 1048576;
/// Largest object in stream mode, in bytes (16 MiB).
pub const MOQ_MAX_OBJECT_SIZE: usize = 16777216;
/// Largest object in datagram mode, in bytes.
pub const MOQ_MAX_DATAGRAM_SIZE: usize = 1024;

/// Called on the library's callback thread when the connection state changes.
pub type MoqConnectionCallback = Option<unsafe extern "C" fn(user_data: *mut c_void, state: MoqConnectionState)>;

/// Called on the library's callback thread with one object. `data` is valid only during the
/// call (copy what you keep); it may be non-NULL when `data_len` is 0.
pub type MoqDataCallback = Option<unsafe extern "C" fn(user_data: *mut c_void, data: *const u8, data_len: usize)>;

/// Client settings for `moq_client_create_ex`. Zero-initialise it, set `struct_size` to
/// `sizeof(MoqClientConfig)`, then set what you need.
#[repr(C)]
pub struct MoqClientConfig {
    /// Must be `sizeof(MoqClientConfig)` of the caller's header; fields are only ever appended,
    /// so a smaller size from an older header is accepted with defaults for the rest.
    pub struct_size: u32,
    /// Bound for `moq_connect`, `moq_subscribe` and announce confirmation; 0 = 10000 ms; at
    /// most 300000.
    pub connect_timeout_ms: u32,
    /// PEM text (in memory) of CA certificates trusted instead of the system roots; NULL =
    /// system roots. Copied; may be freed after the call.
    pub tls_root_ca_pem: *const c_char,
    /// Hex SHA-256 of the relay's certificate (64 hex digits, ':' separators allowed) pinned
    /// instead of chain verification; NULL = no pin. Copied.
    pub tls_fingerprint_sha256: *const c_char,
    /// Disable certificate verification (development only; logged as a warning). At most one
    /// of the three TLS settings may be set.
    pub tls_insecure_skip_verify: bool,
    /// Comma-separated protocol versions to offer, e.g. `"moq-lite-05,moq-transport-14"`;
    /// NULL = every version the library speaks (see `moq_version`). Unknown names are
    /// MOQ_ERROR_INVALID_ARGUMENT. Copied.
    pub versions: *const c_char,
    /// Redial with exponential backoff and jitter when an established session is lost
    /// (RECONNECTING, then CONNECTED again); announces, publishers and subscribers are restored.
    pub reconnect: bool,
    /// First reconnect delay; 0 = 500 ms.
    pub reconnect_initial_ms: u32,
    /// Longest reconnect delay; 0 = 10000 ms.
    pub reconnect_max_ms: u32,
    /// Local UDP address (`IP:port`) to send from; NULL = automatic. Copied.
    pub bind_addr: *const c_char,
    /// QUIC keep-alive interval; 0 = 1000 ms. At most half of `idle_timeout_ms`.
    pub keep_alive_ms: u32,
    /// A relay silent this long is declared gone (DISCONNECTED or RECONNECTING); 0 = 5000 ms.
    pub idle_timeout_ms: u32,
}

/// The same layout as [`MoqClientConfig`] with the bool read as a byte: C may store any value
/// in it, and only 0 and 1 are valid Rust `bool`s.
#[repr(C)]
pub(crate) struct RawClientConfig {
    pub struct_size: u32,
    pub connect_timeout_ms: u32,
    pub tls_root_ca_pem: *const c_char,
    pub tls_fingerprint_sha256: *const c_char,
    pub tls_insecure_skip_verify: u8,
    pub versions: *const c_char,
    pub reconnect: u8,
    pub reconnect_initial_ms: u32,
    pub reconnect_max_ms: u32,
    pub bind_addr: *const c_char,
    pub keep_alive_ms: u32,
    pub idle_timeout_ms: u32,
}

const _: () = assert!(std::mem::size_of::<RawClientConfig>() == std::mem::size_of::<MoqClientConfig>());
const _: () = assert!(std::mem::align_of::<RawClientConfig>() == std::mem::align_of::<MoqClientConfig>());
const _: () = assert!(
    std::mem::offset_of!(RawClientConfig, idle_timeout_ms) == std::mem::offset_of!(MoqClientConfig, idle_timeout_ms)
);

/// `sizeof(MoqClientConfig)` of the first release (fields up to `tls_insecure_skip_verify`).
pub(crate) const CLIENT_CONFIG_SIZE_V1: usize = std::mem::offset_of!(MoqClientConfig, versions);

/// A client connection to a relay (opaque; used through pointers only).
pub struct MoqClient {
    _private: [u8; 0],
}

/// A publisher of one track (opaque).
pub struct MoqPublisher {
    _private: [u8; 0],
}

/// A subscription to one track (opaque).
pub struct MoqSubscriber {
    _private: [u8; 0],
}

/// An embedded relay (opaque).
pub struct MoqRelay {
    _private: [u8; 0],
}
