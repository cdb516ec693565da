//! Client functions: create, connect, disconnect, destroy, announce.

use super::boundary::{self, enter, lookup, ok, opt_str_arg, str_arg, UserData, CLIENTS};
use super::types::*;
use crate::core::client::{Client, ConnectionState, StateCallback, StateSink};
use crate::core::config::{ClientConfig, Overflow};
use crate::error::{Error, Result};
use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

fn state_of(state: ConnectionState) -> MoqConnectionState {
    match state {
        ConnectionState::Disconnected => MoqConnectionState::MOQ_STATE_DISCONNECTED,
        ConnectionState::Connecting => MoqConnectionState::MOQ_STATE_CONNECTING,
        ConnectionState::Connected => MoqConnectionState::MOQ_STATE_CONNECTED,
        ConnectionState::Failed => MoqConnectionState::MOQ_STATE_FAILED,
        ConnectionState::Reconnecting => MoqConnectionState::MOQ_STATE_RECONNECTING,
    }
}

/// Wraps a C connection callback for the core; the function and `user_data` identify it.
fn state_callback(callback: MoqConnectionCallback, user_data: *mut std::ffi::c_void) -> Option<StateSink> {
    let user_data = UserData(user_data);
    callback.map(|function| StateSink {
        key: (function as usize, user_data.0 as usize),
        callback: Arc::new(move |state: ConnectionState| {
            let user_data = user_data;
            // SAFETY: the caller registered `function` and `user_data` for exactly this use.
            unsafe { function(user_data.0, state_of(state)) }
        }) as StateCallback,
    })
}

fn register(client: Arc<Client>) -> *mut MoqClient {
    boundary::ptr_of(CLIENTS.insert(client))
}

/// Creates a disconnected client with default settings (system roots, 10 s timeout).
///
/// Returns a handle the caller owns and releases with `moq_client_destroy`, or NULL with
/// `moq_last_error` set. Thread-safe; does not block.
///
/// # Safety
/// None: takes no pointers.
#[no_mangle]
pub extern "C" fn moq_client_create() -> *mut MoqClient {
    enter("moq_client_create", || {
        Ok(register(Client::new(ClientConfig::default())?))
    })
}

/// Creates a disconnected client with `config` (see `MoqClientConfig`). The config and its
/// strings are copied; the caller may free them after the call.
///
/// Returns a handle released with `moq_client_destroy`, or NULL with `moq_last_error` set:
/// NULL config, unknown `struct_size`, invalid PEM or fingerprint, conflicting TLS settings,
/// or a timeout above 300000 ms. Thread-safe; does not block.
///
/// # Safety
/// `config` is NULL or points to a readable `MoqClientConfig` of at least `struct_size`
/// bytes whose string fields are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn moq_client_create_ex(config: *const MoqClientConfig) -> *mut MoqClient {
    enter("moq_client_create_ex", || {
        // SAFETY: forwarded from this function's contract.
        let config = unsafe { read_config(config) }?;
        Ok(register(Client::new(config)?))
    })
}

/// Sizes of every released `MoqClientConfig` layout, oldest first.
const KNOWN_CONFIG_SIZES: [usize; 6] = [
    CLIENT_CONFIG_SIZE_V1,
    CLIENT_CONFIG_SIZE_V2,
    CLIENT_CONFIG_SIZE_V3,
    CLIENT_CONFIG_SIZE_V4,
    CLIENT_CONFIG_SIZE_V5,
    std::mem::size_of::<MoqClientConfig>(),
];

/// # Safety
/// As for [`moq_client_create_ex`].
unsafe fn read_config(config: *const MoqClientConfig) -> Result<ClientConfig> {
    if config.is_null() {
        return Err(Error::invalid_argument("config is NULL"));
    }
    // SAFETY: `config` is non-NULL and points to at least the leading `struct_size` field.
    let size = unsafe { std::ptr::read_unaligned(config.cast::<u32>()) } as usize;
    if !KNOWN_CONFIG_SIZES.contains(&size) {
        return Err(Error::invalid_argument(format!(
            "config->struct_size is {size}; expected sizeof(MoqClientConfig) = {} (set it from the header you compile with)",
            std::mem::size_of::<MoqClientConfig>()
        )));
    }
    let mut raw = std::mem::MaybeUninit::<RawClientConfig>::zeroed();
    // SAFETY: `size` is a known layout size no larger than `RawClientConfig`, the caller
    // guarantees `size` readable bytes, and an all-zero `RawClientConfig` is valid.
    let raw = unsafe {
        std::ptr::copy_nonoverlapping(config.cast::<u8>(), raw.as_mut_ptr().cast::<u8>(), size);
        raw.assume_init()
    };
    // SAFETY: the string fields are NULL or NUL-terminated per this function's contract.
    let pem = unsafe { opt_str_arg("config->tls_root_ca_pem", raw.tls_root_ca_pem, MOQ_MAX_PEM_LEN) }?;
    // SAFETY: as above.
    let fingerprint = unsafe { opt_str_arg("config->tls_fingerprint_sha256", raw.tls_fingerprint_sha256, 256) }?;
    // SAFETY: as above (zero, i.e. NULL, for an older, smaller struct).
    let versions = unsafe { opt_str_arg("config->versions", raw.versions, 4096) }?;
    // SAFETY: as above.
    let bind = unsafe { opt_str_arg("config->bind_addr", raw.bind_addr, 256) }?;
    let millis = |value: u32| Duration::from_millis(u64::from(value));
    Ok(ClientConfig {
        timeout: millis(raw.connect_timeout_ms),
        tls_root_ca_pem: pem.map(str::to_string),
        tls_fingerprint_sha256: fingerprint.map(str::to_string),
        tls_insecure_skip_verify: raw.tls_insecure_skip_verify != 0,
        versions: versions.map(str::to_string),
        reconnect: raw.reconnect != 0,
        reconnect_initial: millis(raw.reconnect_initial_ms),
        reconnect_max: millis(raw.reconnect_max_ms),
        bind: bind.map(str::to_string),
        keep_alive: millis(raw.keep_alive_ms),
        idle_timeout: millis(raw.idle_timeout_ms),
        poll_events: raw.poll_events != 0,
        publish_buffer_bytes: raw.publish_buffer_bytes,
        websocket: raw.websocket_disabled == 0,
        websocket_delay: millis(raw.websocket_delay_ms),
        max_streams: raw.max_streams,
        publish_overflow: match raw.publish_overflow {
            MOQ_OVERFLOW_DROP_OLDEST => Overflow::DropOldest,
            MOQ_OVERFLOW_ERROR => Overflow::Error,
            other => {
                return Err(Error::invalid_argument(format!(
                    "config->publish_overflow {other} is not MOQ_OVERFLOW_DROP_OLDEST (0) or MOQ_OVERFLOW_ERROR (1)"
                )))
            }
        },
    })
}

/// Destroys a client: disconnects, stops its subscribers' callbacks and ends its broadcasts.
///
/// After it returns no callback of this client or its subscribers is running or will run, so
/// their `user_data` may be freed (called from inside one of their callbacks it returns at
/// once and no further callback follows). Publisher and subscriber handles of the client stay
/// valid until destroyed, but fail or report not-subscribed. NULL, stale and foreign handles
/// are ignored (recorded in `moq_last_error`). Blocks at most ~2 s to close the session.
///
/// # Safety
/// None beyond passing a pointer value: the handle is looked up, never dereferenced.
#[no_mangle]
pub extern "C" fn moq_client_destroy(client: *mut MoqClient) {
    enter("moq_client_destroy", || {
        CLIENTS.remove(boundary::handle_of(client))?.destroy();
        super::poll::forget(boundary::handle_of(client));
        Ok(())
    })
}

/// Connects to a relay and blocks until connected or failed, at most the configured timeout
/// (10 s by default). Safe to call from any thread, including from inside a callback. See
/// `moq_connect_async` for the non-blocking variant (same events).
///
/// `url`: `https://host:port/path` (WebTransport), `moqt://` or `moql://` (raw QUIC), or
/// `http://` (development: fetches and pins the relay's self-signed fingerprint). `callback`
/// (may be NULL) receives CONNECTING, then CONNECTED or FAILED, and later DISCONNECTED (on
/// `moq_disconnect`, or when the relay goes away: at once when it closes the session, within
/// `idle_timeout_ms` (~10 s by default) when it goes silent), on the library's callback
/// thread; `user_data` is passed back untouched. At most 1024 states wait for the callback:
/// past that a new state replaces the newest one waiting (counted in `MoqStats.events_dropped`),
/// so the latest state always arrives.
///
/// Callback lifetime: each connect call registers its `callback` and `user_data` (NULL: none)
/// in place of the previous call's. Once a connect call that replaced another callback or
/// `user_data` returns, the old callback is not running and will not run again (its events
/// not delivered yet are discarded), so the old `user_data` may be freed right away; called
/// from inside the old callback itself, the call returns at once and no further call of the
/// old callback follows. Connecting again with the same callback and `user_data` keeps the
/// events still queued for them. A call that fails at once (INVALID_ARGUMENT, INVALID_STATE,
/// INVALID_HANDLE) registers nothing: the previous callback stays. `moq_disconnect` keeps the
/// callback (it receives DISCONNECTED); after `moq_client_destroy` returns it is not running
/// and will not run again. So `user_data` must stay valid until the client is destroyed or a
/// connect call with another callback or `user_data` has returned.
///
/// Errors: INVALID_ARGUMENT (url), CONNECTION_FAILED (refused, TLS: the message names the
/// failed check), TIMEOUT, INVALID_STATE (already connected/connecting), INVALID_HANDLE.
/// A failed client can connect again.
///
/// # Safety
/// `url` is NULL or a NUL-terminated string. `callback`, if not NULL, is safe to call with
/// `user_data` from another thread until the client is destroyed or a connect call with
/// another callback or `user_data` has returned.
#[no_mangle]
pub unsafe extern "C" fn moq_connect(
    client: *mut MoqClient,
    url: *const c_char,
    callback: MoqConnectionCallback,
    user_data: *mut std::ffi::c_void,
) -> MoqResult {
    enter("moq_connect", || {
        let client = lookup(&CLIENTS, client)?;
        // SAFETY: `url` is NULL or NUL-terminated per this function's contract.
        let url = unsafe { str_arg("url", url, MOQ_MAX_URL_LEN) }?;
        client.connect(url, state_callback(callback, user_data))?;
        Ok(ok())
    })
}

/// Starts connecting to a relay and returns at once (never blocks on the network); progress
/// arrives through `callback` on the library's callback thread: CONNECTING, then CONNECTED or
/// FAILED (after at most the configured timeout), later DISCONNECTED or RECONNECTING.
///
/// Arguments, callback and `user_data` rules as for `moq_connect`: in particular, once this
/// call returns, a callback it replaced (another function or `user_data`) is not running and
/// will not run again, even with events it had queued (e.g. the FAILED of an earlier attempt),
/// so its `user_data` may be freed. Errors returned here are only the immediate ones:
/// INVALID_ARGUMENT (url), INVALID_STATE, INVALID_HANDLE; dial failures are reported as FAILED,
/// with the reason in `moq_client_last_error`.
///
/// # Safety
/// As for `moq_connect`.
#[no_mangle]
pub unsafe extern "C" fn moq_connect_async(
    client: *mut MoqClient,
    url: *const c_char,
    callback: MoqConnectionCallback,
    user_data: *mut std::ffi::c_void,
) -> MoqResult {
    enter("moq_connect_async", || {
        let client = lookup(&CLIENTS, client)?;
        // SAFETY: `url` is NULL or NUL-terminated per this function's contract.
        let url = unsafe { str_arg("url", url, MOQ_MAX_URL_LEN) }?;
        client.connect_async(url, state_callback(callback, user_data))?;
        Ok(ok())
    })
}

/// Copies why the client's last state change happened (the connect failure, or why the
/// session was lost) into `buf` as a NUL-terminated string; an empty string if nothing went
/// wrong. MOQ_ERROR_BUFFER_TOO_SMALL (nothing written but a terminator, when `len` > 0) if it
/// does not fit, with the needed size in the message. Never blocks.
///
/// # Safety
/// `buf` is NULL (only with `len` 0) or points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn moq_client_last_error(client: *const MoqClient, buf: *mut c_char, len: usize) -> MoqResult {
    enter("moq_client_last_error", || {
        let client = lookup(&CLIENTS, client)?;
        let reason = client
            .last_error()
            .map(|err| err.message().to_string())
            .unwrap_or_default();
        // SAFETY: forwarded from this function's contract.
        unsafe { boundary::copy_out("buf", buf, len, &reason) }?;
        Ok(ok())
    })
}

/// Copies the negotiated protocol version (e.g. `"moq-lite-05"`) into `buf` as a
/// NUL-terminated string. MOQ_ERROR_NOT_CONNECTED when no session is live;
/// MOQ_ERROR_BUFFER_TOO_SMALL if it does not fit. Never blocks.
///
/// # Safety
/// `buf` is NULL (only with `len` 0) or points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn moq_client_protocol_version(
    client: *const MoqClient,
    buf: *mut c_char,
    len: usize,
) -> MoqResult {
    enter("moq_client_protocol_version", || {
        let client = lookup(&CLIENTS, client)?;
        let version = client
            .protocol_version()
            .ok_or_else(|| Error::not_connected("moq_client_protocol_version"))?;
        // SAFETY: forwarded from this function's contract.
        unsafe { boundary::copy_out("buf", buf, len, &version) }?;
        Ok(ok())
    })
}

/// Closes the connection. Idempotent: succeeds when not connected. Reports DISCONNECTED to the
/// connection callback if a session or connect was live. Blocks at most ~2 s for the relay to
/// acknowledge the close. Publishers and subscribers stay valid; subscriptions end.
///
/// # Safety
/// None beyond passing a pointer value: the handle is looked up, never dereferenced.
#[no_mangle]
pub extern "C" fn moq_disconnect(client: *mut MoqClient) -> MoqResult {
    enter("moq_disconnect", || {
        lookup(&CLIENTS, client)?.disconnect();
        Ok(ok())
    })
}

/// Whether the client is connected now. False for invalid handles and after the relay went
/// away; then `moq_last_error` says why. Never blocks.
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_is_connected(client: *const MoqClient) -> bool {
    enter("moq_is_connected", || {
        let client = lookup(&CLIENTS, client)?;
        if client.state() == ConnectionState::Connected {
            return Ok(true);
        }
        if let Some(reason) = client.last_error() {
            boundary::set_last_error(&reason);
        }
        Ok(false)
    })
}

/// Announces `namespace_str` on the relay (and again on every later connection of this
/// client). Idempotent per namespace; creating a publisher announces its namespace too. Never
/// blocks on the network.
///
/// Errors: NOT_CONNECTED, INVALID_ARGUMENT (name, or a path the protocol rejects).
///
/// # Safety
/// `namespace_str` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn moq_announce_namespace(client: *mut MoqClient, namespace_str: *const c_char) -> MoqResult {
    enter("moq_announce_namespace", || {
        let client = lookup(&CLIENTS, client)?;
        // SAFETY: NULL or NUL-terminated per this function's contract.
        let namespace = unsafe { str_arg("namespace_str", namespace_str, MOQ_MAX_NAME_LEN) }?;
        client.broadcast(namespace)?;
        Ok(ok())
    })
}

/// Copies what carries the live session into `buf` as a NUL-terminated string: `"quic"`, or
/// `"websocket"` when the client fell back to WebSocket (UDP blocked; streams only, datagrams
/// are refused with MOQ_ERROR_UNSUPPORTED). MOQ_ERROR_NOT_CONNECTED without a session;
/// MOQ_ERROR_BUFFER_TOO_SMALL if it does not fit (10 bytes always do). Never blocks.
///
/// # Safety
/// `buf` is NULL (only with `len` 0) or points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn moq_client_transport(client: *const MoqClient, buf: *mut c_char, len: usize) -> MoqResult {
    enter("moq_client_transport", || {
        let transport = lookup(&CLIENTS, client)?
            .transport()
            .ok_or_else(|| Error::not_connected("moq_client_transport"))?;
        // SAFETY: `buf` has `len` writable bytes per this function's contract.
        unsafe { boundary::copy_out("buf", buf, len, transport.name()) }?;
        Ok(ok())
    })
}
