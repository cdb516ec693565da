//! Embedded relay functions.

use super::boundary::{self, enter, lookup, str_arg, RelayStrings, RELAYS};
use super::types::*;
use crate::core::relay::Relay;
use crate::error::Error;
use std::ffi::{c_char, CString};
use std::sync::Arc;

/// Starts an embedded MoQ relay (the `moq-relay` crate) on `bind_addr`, e.g. `"127.0.0.1:0"`
/// (port 0 picks a free port), with a self-signed certificate generated in memory and anonymous
/// publish/subscribe. Blocks until it listens: normally well under a second, bounded by 10 s to
/// bind and 10 s to become ready, after waiting (at most 10 s) for a relay stopped earlier on the
/// same port that is still closing (see `moq_relay_stop`).
///
/// Returns a handle released with `moq_relay_stop`, or NULL with `moq_last_error`
/// (INVALID_ARGUMENT for a malformed address, CONNECTION_FAILED if it cannot bind).
///
/// # Safety
/// `bind_addr` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn moq_relay_start(bind_addr: *const c_char) -> *mut MoqRelay {
    enter("moq_relay_start", || {
        // SAFETY: NULL or NUL-terminated per this function's contract.
        let bind = unsafe { str_arg("bind_addr", bind_addr, 256) }?;
        let relay = Relay::start(bind)?;
        let strings = RelayStrings {
            url: CString::new(relay.url()).map_err(|_| Error::internal("relay URL contains NUL"))?,
            fingerprint: CString::new(relay.fingerprint()).map_err(|_| Error::internal("fingerprint contains NUL"))?,
            relay,
        };
        Ok(boundary::ptr_of(RELAYS.insert(Arc::new(strings))))
    })
}

/// The URL clients connect to, `https://localhost:PORT`. Owned by the relay: valid until
/// `moq_relay_stop`; do not free. NULL for invalid handles. Never blocks.
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_relay_url(relay: *const MoqRelay) -> *const c_char {
    enter("moq_relay_url", || Ok(lookup(&RELAYS, relay)?.url.as_ptr()))
}

/// Hex SHA-256 of the relay's certificate, for `MoqClientConfig.tls_fingerprint_sha256`.
/// Owned by the relay: valid until `moq_relay_stop`; do not free. NULL for invalid handles.
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_relay_fingerprint(relay: *const MoqRelay) -> *const c_char {
    enter("moq_relay_fingerprint", || {
        Ok(lookup(&RELAYS, relay)?.fingerprint.as_ptr())
    })
}

/// Stops the relay, closes its sessions (clients see DISCONNECTED) and releases the handle.
/// Blocks at most ~5 s: a relay that has not closed by then (a starved process) finishes closing
/// in the background (aborted after 30 s more), and `moq_relay_start` on its port waits for it.
/// NULL, stale and foreign handles are ignored (recorded in `moq_last_error`).
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_relay_stop(relay: *mut MoqRelay) {
    enter("moq_relay_stop", || {
        RELAYS.remove(boundary::handle_of(relay))?.relay.stop();
        Ok(())
    })
}
