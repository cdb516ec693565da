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
    /// A bounded buffer is full: retry later or skip (publishing with
    /// `MoqClientConfig.publish_overflow = MOQ_OVERFLOW_ERROR`).
    MOQ_ERROR_WOULD_BLOCK = 14,
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
/// Most objects in one group (`moq_publish_object`): moq-net's cap.
pub const MOQ_MAX_GROUP_OBJECTS: u64 = 8192;

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
    /// A relay silent this long is declared gone (DISCONNECTED or RECONNECTING); 0 = 10000 ms.
    /// Lower it (e.g. 3000) to notice a dead relay sooner; a process starved of CPU for longer
    /// than this (a long hitch, a debugger, a sanitizer) loses its session.
    pub idle_timeout_ms: u32,
    /// Also queue connection state changes for `moq_poll` (as `MOQ_EVENT_CONNECTION`), besides
    /// the connection callback if one is given.
    pub poll_events: bool,
    /// Cap on the bytes this client's publishers keep buffered for subscribers (groups are kept
    /// for their retention, and reclaimed once idle for 30 s); 0 = 134217728 (128 MiB), at least
    /// 1048576, at most 64 GiB.
    pub publish_buffer_bytes: u64,
    /// At the cap: `MOQ_OVERFLOW_DROP_OLDEST` (0, default: the oldest buffered groups are
    /// evicted; a subscriber that far behind loses them) or `MOQ_OVERFLOW_ERROR` (publishing a
    /// stream object returns `MOQ_ERROR_WOULD_BLOCK`, counted in `objects_dropped_backpressure`).
    pub publish_overflow: MoqOverflowPolicy,
    /// Do not race a WebSocket connection against QUIC. By default (false) `https://` and
    /// `http://` URLs also try WebSocket (`wss://`/`ws://` on the same host and port) after QUIC's
    /// head start, so a client behind a UDP-blocking firewall still connects;
    /// `moq_client_transport` says which won. `moqt://`/`moql://` never use WebSocket.
    pub websocket_disabled: bool,
    /// QUIC's head start before the WebSocket attempt joins the race; 0 = 200 ms. Clamped to
    /// `connect_timeout_ms`.
    pub websocket_delay_ms: u32,
    /// How many streams the relay may have open toward this client at once (QUIC's stream
    /// limit, unidirectional and bidirectional alike); 0 = 1024, 16..100000. Every group is a
    /// stream, so this caps the groups in flight to this client and the relay queues the rest.
    /// Raise it for many busy tracks over a long path (about `max_streams` groups per round
    /// trip); a much higher cap lets a burst of thousands of groups put that many streams in
    /// flight at once, which costs the sending side CPU for each new group, enough to stall a
    /// slowed process for seconds.
    pub max_streams: u64,
}

/// What publishing does when the client's publish buffer is at its cap.
pub type MoqOverflowPolicy = u32;
/// Evict the oldest buffered groups (the default).
pub const MOQ_OVERFLOW_DROP_OLDEST: MoqOverflowPolicy = 0;
/// Refuse the object with `MOQ_ERROR_WOULD_BLOCK`.
pub const MOQ_OVERFLOW_ERROR: MoqOverflowPolicy = 1;

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
    pub poll_events: u8,
    pub publish_buffer_bytes: u64,
    pub publish_overflow: u32,
    pub websocket_disabled: u8,
    pub websocket_delay_ms: u32,
    pub max_streams: u64,
}

const _: () = assert!(std::mem::size_of::<RawClientConfig>() == std::mem::size_of::<MoqClientConfig>());
const _: () = assert!(std::mem::align_of::<RawClientConfig>() == std::mem::align_of::<MoqClientConfig>());
const _: () =
    assert!(std::mem::offset_of!(RawClientConfig, poll_events) == std::mem::offset_of!(MoqClientConfig, poll_events));

/// `sizeof(MoqClientConfig)` of the first release (fields up to `tls_insecure_skip_verify`).
pub(crate) const CLIENT_CONFIG_SIZE_V1: usize = std::mem::offset_of!(MoqClientConfig, versions);
/// `sizeof(MoqClientConfig)` of the second layout (fields up to `idle_timeout_ms`).
pub(crate) const CLIENT_CONFIG_SIZE_V2: usize = std::mem::offset_of!(MoqClientConfig, poll_events);
/// `sizeof(MoqClientConfig)` with fields up to `poll_events`.
pub(crate) const CLIENT_CONFIG_SIZE_V3: usize = std::mem::offset_of!(MoqClientConfig, publish_buffer_bytes);
/// `sizeof(MoqClientConfig)` with fields up to `publish_overflow` (8-byte aligned).
pub(crate) const CLIENT_CONFIG_SIZE_V4: usize =
    std::mem::offset_of!(MoqClientConfig, websocket_disabled).next_multiple_of(8);
/// `sizeof(MoqClientConfig)` with fields up to `websocket_delay_ms`.
pub(crate) const CLIENT_CONFIG_SIZE_V5: usize = std::mem::offset_of!(MoqClientConfig, max_streams);

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

// ---- Object model, subscription options and status (0.2) ----

/// Group order of a track: `MOQ_GROUP_ORDER_ASCENDING` (the default) or
/// `MOQ_GROUP_ORDER_DESCENDING`.
pub type MoqGroupOrder = u32;
/// Older groups before newer ones.
pub const MOQ_GROUP_ORDER_ASCENDING: MoqGroupOrder = 0;
/// Newer groups first. Not carried by the protocol stack (moq-net 0.3 pads the field on the
/// wire): rejected with `MOQ_ERROR_UNSUPPORTED` rather than silently ignored.
pub const MOQ_GROUP_ORDER_DESCENDING: MoqGroupOrder = 1;

/// Publisher settings for `moq_create_publisher_opts`. Start from
/// `moq_publisher_options_default()`, then change what you need.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MoqPublisherOptions {
    /// `sizeof(MoqPublisherOptions)` of the caller's header (set by the default function).
    pub struct_size: u32,
    /// `MOQ_DELIVERY_STREAM` (default) or `MOQ_DELIVERY_DATAGRAM`. Groups
    /// (`moq_publisher_begin_group`) need stream mode.
    pub delivery_mode: MoqDeliveryMode,
    /// Track priority 0..255, higher is more urgent (relays favour it when bandwidth is short);
    /// default 127.
    pub priority: u8,
    /// `MOQ_GROUP_ORDER_ASCENDING` (default); DESCENDING is MOQ_ERROR_UNSUPPORTED.
    pub group_order: MoqGroupOrder,
    /// How long this publisher and relays keep a group for late or slow subscribers, in ms;
    /// 0 = 30000, at most 3600000.
    pub retention_ms: u32,
}

/// Where a subscription starts: see the `MOQ_START_*` constants.
pub type MoqStartPosition = u32;
/// Objects published after the subscription is live (the default). When the relay did not
/// know the track yet (no other subscriber), the publisher's newest group, published just
/// before, may arrive too.
pub const MOQ_START_NEXT_GROUP: MoqStartPosition = 0;
/// The newest group the relay still holds (e.g. the current keyframe or game state), then on.
/// SUBSCRIBED follows once the subscription knows that group, at most 250 ms after the relay
/// confirmed it; on a track without groups yet, the first group to arrive is the start.
pub const MOQ_START_LATEST_GROUP: MoqStartPosition = 1;
/// The group `MoqSubscribeOptions.start_group` (if the relay or publisher still holds it), then on.
pub const MOQ_START_ABSOLUTE_GROUP: MoqStartPosition = 2;
/// `MoqSubscribeOptions.start_group` groups before the newest one the relay holds (those still
/// held), then on: a late joiner gets the last few groups (a keyframe, recent game state). The
/// newest group is the newest one the subscription sees within its first second; on a link
/// slower than that it may start earlier (more groups, never fewer).
pub const MOQ_START_GROUPS_BACK: MoqStartPosition = 3;

/// How a subscription delivers: to callbacks or to `moq_poll`.
pub type MoqDeliveryTarget = u32;
/// Callbacks on the library's callback thread (the default).
pub const MOQ_DELIVER_CALLBACK: MoqDeliveryTarget = 0;
/// Events queued on the client for `moq_poll`, on the caller's thread.
pub const MOQ_DELIVER_POLL: MoqDeliveryTarget = 1;

/// What a full poll queue does with the next object.
pub type MoqQueuePolicy = u32;
/// Drop the oldest queued object to make room (default: the consumer sees the newest data).
pub const MOQ_QUEUE_DROP_OLDEST: MoqQueuePolicy = 0;
/// Keep only the newest object (a capacity of one; game state, sensor values).
pub const MOQ_QUEUE_LATEST_ONLY: MoqQueuePolicy = 1;
/// Drop the arriving object (the consumer sees a contiguous prefix).
pub const MOQ_QUEUE_DROP_NEWEST: MoqQueuePolicy = 2;

/// Subscription settings for `moq_subscribe_ex`. Start from `moq_subscribe_options_default()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MoqSubscribeOptions {
    /// `sizeof(MoqSubscribeOptions)` of the caller's header (set by the default function).
    pub struct_size: u32,
    /// `MOQ_START_NEXT_GROUP` (default), `MOQ_START_LATEST_GROUP`, `MOQ_START_ABSOLUTE_GROUP` or
    /// `MOQ_START_GROUPS_BACK`.
    pub start: MoqStartPosition,
    /// The first group for `MOQ_START_ABSOLUTE_GROUP`; how many groups back for
    /// `MOQ_START_GROUPS_BACK`.
    pub start_group: u64,
    /// Objects older than this (ms since they arrived) when their turn comes are skipped and
    /// counted in `dropped_too_late`, and gaps are given up after it; 0 = no limit (reliable).
    pub max_latency_ms: u32,
    /// Subscriber priority 0..255, higher is more urgent; default 127.
    pub priority: u8,
    /// Nonzero: wait for the namespace and track to appear (status SUBSCRIBED when they do)
    /// instead of reporting NOT_FOUND after the client's timeout.
    pub wait_for_track: u8,
    /// `MOQ_DELIVER_CALLBACK` (default) or `MOQ_DELIVER_POLL`.
    pub delivery: MoqDeliveryTarget,
    /// Poll mode: the most objects queued for this subscription; 0 = 1024, at most 1048576.
    pub queue_capacity: u32,
    /// Poll mode: what a full queue does (`MOQ_QUEUE_*`); default DROP_OLDEST.
    pub queue_policy: MoqQueuePolicy,
}

/// A subscription's state as reported by `MoqStatusCallback` / `MOQ_EVENT_STATUS`.
pub type MoqSubscriptionStatus = u32;
/// The subscription is live; objects follow. Reported again after it resumes on a new session.
pub const MOQ_SUBSCRIPTION_SUBSCRIBED: MoqSubscriptionStatus = 1;
/// Terminal: the namespace or track does not exist.
pub const MOQ_SUBSCRIPTION_NOT_FOUND: MoqSubscriptionStatus = 2;
/// Terminal: the publisher ended the track (`moq_publisher_finish`).
pub const MOQ_SUBSCRIPTION_ENDED: MoqSubscriptionStatus = 3;
/// Terminal: the subscription failed; `code` is the publisher's abort code if it gave one.
pub const MOQ_SUBSCRIPTION_ERROR: MoqSubscriptionStatus = 4;

/// Where an object sits in its track and how it travelled.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MoqObjectInfo {
    /// The group's id (a datagram's sequence for datagrams).
    pub group_id: u64,
    /// The object's index in its group (0 for datagrams).
    pub object_id: u64,
    /// The publisher's timestamp in µs (`moq_publish_object`; the Unix-epoch publish time for
    /// `moq_publish_data`), or 0 when the negotiated protocol does not carry timestamps
    /// (moq-lite-01..04, moq-transport-14..16).
    pub timestamp_us: u64,
    /// `MOQ_DELIVERY_STREAM` or `MOQ_DELIVERY_DATAGRAM`.
    pub delivery_mode: MoqDeliveryMode,
    /// The track priority the publisher declared.
    pub priority: u8,
}

/// Called on the library's callback thread with one object. `info` and `data` are valid only
/// during the call; `data` may be non-NULL when `data_len` is 0.
pub type MoqObjectCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, info: *const MoqObjectInfo, data: *const u8, data_len: usize)>;

/// Called on the library's callback thread when a subscription's status changes. `code` is the
/// publisher's abort code for ERROR (else 0); `message` (never NULL, "" for SUBSCRIBED) is valid
/// only during the call. After a terminal status nothing more is called for the subscription.
pub type MoqStatusCallback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, status: MoqSubscriptionStatus, code: u32, message: *const c_char),
>;

// SAFETY: repr(C), integer fields only, leading `u32 struct_size`.
unsafe impl super::boundary::PlainOptions for MoqPublisherOptions {
    const KNOWN_SIZES: &'static [usize] = &[std::mem::size_of::<MoqPublisherOptions>()];
}

// SAFETY: repr(C), integer fields only, leading `u32 struct_size`.
unsafe impl super::boundary::PlainOptions for MoqSubscribeOptions {
    const KNOWN_SIZES: &'static [usize] = &[std::mem::size_of::<MoqSubscribeOptions>()];
}

const _: () = assert!(MOQ_MAX_GROUP_OBJECTS == crate::core::publish::MAX_GROUP_OBJECTS);

// ---- Catalogs ----

/// One track of a catalog. Strings are NUL-terminated UTF-8; `name` is never NULL, the others
/// are NULL when the catalog does not give them. Numbers are 0 when unknown.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MoqTrackInfo {
    /// The track name in the broadcast.
    pub name: *const c_char,
    /// Codec string, e.g. `"avc1.64001f"` or `"opus"`.
    pub codec: *const c_char,
    /// Media type, e.g. `"video/mp4"` or `"application/json"`.
    pub mime_type: *const c_char,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bits per second.
    pub bitrate: u32,
    /// Audio samples per second.
    pub sample_rate: u32,
    /// Language tag, e.g. `"en"`.
    pub language: *const c_char,
}

/// Called on the library's callback thread with a catalog's tracks; the array and its strings
/// are valid only during the call.
pub type MoqCatalogCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, tracks: *const MoqTrackInfo, track_count: usize)>;

/// A catalog JSON format for `moq_publish_catalog`.
pub type MoqCatalogFormat = u32;
/// `{"version":1,"tracks":[{"name":..,"selectionParams":{..}}]}`, the earlier moq-ffi format.
pub const MOQ_CATALOG_FORMAT_SEED: MoqCatalogFormat = 0;
/// moq-dev's hang `catalog.json` (video/audio renditions, json and binary tracks).
pub const MOQ_CATALOG_FORMAT_HANG: MoqCatalogFormat = 1;
/// Largest catalog JSON, in bytes.
pub const MOQ_MAX_CATALOG_SIZE: usize = 1048576;
/// Most tracks in one catalog.
pub const MOQ_MAX_CATALOG_TRACKS: usize = 1024;

const _: () = assert!(MOQ_MAX_CATALOG_SIZE == crate::core::catalog::MAX_CATALOG_SIZE);
const _: () = assert!(MOQ_MAX_CATALOG_TRACKS == crate::core::catalog::MAX_CATALOG_TRACKS);

// ---- Announcements ----

/// Called on the library's callback thread with an announced namespace (the earlier API;
/// `track_name` is always ""). Strings are valid only during the call.
pub type MoqTrackCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, namespace_str: *const c_char, track_name: *const c_char)>;

/// Called on the library's callback thread when a namespace is announced (`active` true) or
/// withdrawn (false). The string is valid only during the call.
pub type MoqAnnounceCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, namespace_str: *const c_char, active: bool)>;

// ---- Poll mode ----

/// What a `MoqEvent` reports.
pub type MoqEventType = u32;
/// An object of a poll-mode subscription: `subscriber`, `object`, `data`, `data_len`.
pub const MOQ_EVENT_OBJECT: MoqEventType = 1;
/// A poll-mode subscription's status: `subscriber`, `status`, `code`, `message`.
pub const MOQ_EVENT_STATUS: MoqEventType = 2;
/// The client's connection state (`MoqClientConfig.poll_events`): `connection_state`.
pub const MOQ_EVENT_CONNECTION: MoqEventType = 3;
/// A namespace announced or withdrawn (`moq_subscribe_announces*` with a NULL callback):
/// `namespace_str`, `active`.
pub const MOQ_EVENT_ANNOUNCE: MoqEventType = 4;
/// A new catalog on a poll-mode catalog subscription: `subscriber`, `tracks`, `track_count`,
/// `catalog_json`.
pub const MOQ_EVENT_CATALOG: MoqEventType = 5;

/// One event from `moq_poll`. Fields not listed for its `kind` are zero/NULL. Every pointer in
/// it is owned by the library and stays valid until the next `moq_poll` call on the same client
/// (from any thread) or `moq_client_destroy`, whichever comes first: copy what you keep longer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MoqEvent {
    /// One of the `MOQ_EVENT_*` values.
    pub kind: MoqEventType,
    /// The subscription the event belongs to (OBJECT, STATUS, CATALOG), else NULL. It may have
    /// been destroyed since: compare it, do not assume it is live.
    pub subscriber: *mut MoqSubscriber,
    /// OBJECT: where the object sits and how it travelled.
    pub object: MoqObjectInfo,
    /// OBJECT: the payload (may be non-NULL when `data_len` is 0).
    pub data: *const u8,
    /// OBJECT: payload length in bytes.
    pub data_len: usize,
    /// STATUS: the `MOQ_SUBSCRIPTION_*` value.
    pub status: MoqSubscriptionStatus,
    /// STATUS: the publisher's abort code for ERROR, else 0.
    pub code: u32,
    /// STATUS: why (never NULL for STATUS; "" for SUBSCRIBED).
    pub message: *const c_char,
    /// CONNECTION: the new state.
    pub connection_state: MoqConnectionState,
    /// ANNOUNCE: the namespace.
    pub namespace_str: *const c_char,
    /// ANNOUNCE: true when announced, false when withdrawn.
    pub active: bool,
    /// CATALOG: the tracks.
    pub tracks: *const MoqTrackInfo,
    /// CATALOG: how many tracks.
    pub track_count: usize,
    /// CATALOG: the catalog's JSON text, NUL-terminated.
    pub catalog_json: *const c_char,
}

// ---- Fetch and track query ----

/// What a publisher declared about a track (`moq_query_track`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MoqTrackProperties {
    /// Must be `sizeof(MoqTrackProperties)` of the caller's header.
    pub struct_size: u32,
    /// The track's priority (higher is more urgent).
    pub priority: u8,
    /// How long the publisher keeps groups, in ms (its retention / max age).
    pub retention_ms: u64,
    /// Timestamp units per second of the track.
    pub timescale: u64,
    /// Nonzero when `latest_group` is known: while this client subscribes to the track (a query
    /// alone does not learn it).
    pub has_latest_group: u8,
    /// The newest group this client has seen on the track.
    pub latest_group: u64,
}
