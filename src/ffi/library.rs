//! Library-wide functions: initialisation, version, errors and strings.

use super::boundary::{self, enter};
use super::types::MoqResult;
use std::ffi::{c_char, CString};
use std::sync::OnceLock;

/// Starts the library's runtime and callback thread. Optional and idempotent: every function
/// initialises lazily.
///
/// Returns true when the library is ready; false (with `moq_last_error`) if the runtime could
/// not start. Thread-safe; does not block beyond thread creation.
///
/// # Safety
/// None: takes no pointers.
#[no_mangle]
pub extern "C" fn moq_init() -> bool {
    enter("moq_init", || {
        crate::runtime::handle()?;
        Ok(true)
    })
}

/// The library version and the MoQ protocol versions it speaks, e.g.
/// `"moq-ffi 0.2.0 (moq-lite-01,...,moq-transport-14,...)"`.
///
/// The string is static: never free it. Thread-safe, never blocks, never NULL.
///
/// # Safety
/// None: takes no pointers.
#[no_mangle]
pub extern "C" fn moq_version() -> *const c_char {
    static VERSION: OnceLock<CString> = OnceLock::new();
    enter("moq_version", || {
        let version = VERSION.get_or_init(|| {
            let versions: Vec<String> = moq_net::Versions::all().iter().map(|v| v.to_string()).collect();
            let text = format!("moq-ffi {} ({})", env!("CARGO_PKG_VERSION"), versions.join(","));
            CString::new(text).unwrap_or_default()
        });
        Ok(version.as_ptr())
    })
}

/// The message of the last failing call on this thread, or NULL if none failed yet.
///
/// Owned by the library: do not free it. Valid until the next failing call on the same thread.
/// Never blocks.
///
/// # Safety
/// None: takes no pointers.
#[no_mangle]
pub extern "C" fn moq_last_error() -> *const c_char {
    enter("moq_last_error", || Ok(boundary::last_error()))
}

/// The code of the last failing call on this thread (the code `moq_last_error` describes), or
/// `MOQ_OK` if none failed yet. Lets callers of functions that return a pointer or bool tell
/// errors apart (e.g. NOT_FOUND from INVALID_HANDLE). Never blocks.
///
/// # Safety
/// None: takes no pointers.
#[no_mangle]
pub extern "C" fn moq_last_error_code() -> super::types::MoqResultCode {
    enter("moq_last_error_code", || Ok(boundary::last_error_code()))
}

/// Frees a string the library handed to the caller (a `MoqResult.message`).
///
/// NULL, strings the library did not hand out, and strings already freed are ignored (as with
/// `free`, a pointer freed twice is only recognised while its address has not been reused by a
/// newer message: free each message once).
/// Thread-safe, never blocks.
///
/// # Safety
/// None beyond passing a pointer value; the library never dereferences a pointer it did not
/// issue.
#[no_mangle]
pub extern "C" fn moq_free_str(s: *const c_char) {
    enter("moq_free_str", || {
        boundary::free_string(s);
        Ok(())
    })
}

/// Shuts the library down: destroys every client (sessions are aborted, not drained),
/// publisher, subscriber and embedded relay, stops the I/O runtime and the callback thread and
/// joins their threads, all within `timeout_ms` (0 = 5000). Afterwards every handle is invalid
/// (calls return MOQ_ERROR_INVALID_HANDLE). On MOQ_OK no library thread is left, so the shared
/// library can be unloaded with `dlclose`; `moq_init` (or any call) starts a fresh library.
///
/// Errors: INVALID_STATE when called from inside a callback (the callback thread cannot join
/// itself). TIMEOUT whenever a library thread is still alive at the deadline: the message names
/// it (`moq-ffi-callbacks`: a callback that has not returned; `moq-ffi-io`: a runtime task or
/// blocking call that has not finished). A callback that does not return does not hold this
/// call past its timeout; its `user_data` must then stay valid until it returns. Every handle
/// is invalid all the same, but do not unload the library then. Such a thread finishes on its
/// own, and the library stays usable meanwhile without ever running a second callback thread:
/// later calls keep using the one still running (their callbacks run once the stuck one
/// returns), and `moq_shutdown` may be called again to wait for it. Call it from one thread
/// while no other thread is using the library.
///
/// # Safety
/// None: takes no pointers.
#[no_mangle]
pub extern "C" fn moq_shutdown(timeout_ms: u32) -> MoqResult {
    enter("moq_shutdown", || {
        use crate::error::{Error, ErrorKind};
        use std::time::{Duration, Instant};
        if crate::dispatch::in_callback() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "moq_shutdown cannot be called from inside a callback",
            ));
        }
        let timeout = match timeout_ms {
            0 => Duration::from_millis(5000),
            ms => Duration::from_millis(u64::from(ms)),
        };
        let deadline = Instant::now() + timeout;
        // A callback that does not return holds none of these past the deadline (destroying its
        // object waits for it only until then); joining the callback thread reports it.
        crate::dispatch::closing_until(deadline, || {
            for subscriber in boundary::SUBSCRIBERS.drain() {
                subscriber.unsubscribe();
            }
            for client in boundary::CLIENTS.drain() {
                client.abort();
            }
            super::poll::forget_all();
            for publisher in boundary::PUBLISHERS.drain() {
                publisher.finish();
            }
            for relay in boundary::RELAYS.drain() {
                relay.relay.stop();
            }
            // No host log callback may fire once the callback thread is gone.
            crate::core::log::clear();
        });
        // Both steps run even when the first times out, so the error names every thread left.
        let runtime = crate::runtime::shutdown(deadline.saturating_duration_since(Instant::now()));
        let callbacks = crate::dispatch::stop(deadline.saturating_duration_since(Instant::now()));
        match (runtime, callbacks) {
            (Ok(()), Ok(())) => Ok(boundary::ok()),
            (Err(err), Ok(())) | (Ok(()), Err(err)) => Err(err),
            (Err(runtime), Err(callbacks)) => Err(Error::new(
                match callbacks.kind() {
                    ErrorKind::Timeout => ErrorKind::Timeout,
                    _ => runtime.kind(),
                },
                // The callback thread first: a callback that does not return is the usual cause.
                format!("{}; {}", callbacks.message(), runtime.message()),
            )),
        }
    })
}
