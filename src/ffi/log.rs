//! Logging into the host: `moq_set_log_callback`.

use super::boundary::{enter, ok, UserData};
use super::types::MoqResult;
use crate::core::log::{self, LogSink};
use crate::error::Error;
use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

/// How much the library logs: `MOQ_LOG_OFF` (nothing) up to `MOQ_LOG_TRACE` (everything).
/// Each level includes the ones before it.
///
/// An integer type (not a C enum) so that any value a caller passes is well-defined; values
/// other than the constants below are rejected with `MOQ_ERROR_INVALID_ARGUMENT`.
pub type MoqLogLevel = u32;
/// No events.
pub const MOQ_LOG_OFF: MoqLogLevel = 0;
/// Failures.
pub const MOQ_LOG_ERROR: MoqLogLevel = 1;
/// Problems the library works around (e.g. disabled certificate checks, lost sessions).
pub const MOQ_LOG_WARN: MoqLogLevel = 2;
/// Lifecycle: connecting, connected, relay listening, subscription ended.
pub const MOQ_LOG_INFO: MoqLogLevel = 3;
/// Protocol detail: dropped groups and datagrams, session close reasons.
pub const MOQ_LOG_DEBUG: MoqLogLevel = 4;
/// Everything the protocol stack reports (very verbose).
pub const MOQ_LOG_TRACE: MoqLogLevel = 5;

/// Called on the library's callback thread with one log event: its `level` (`MOQ_LOG_ERROR` to
/// `MOQ_LOG_TRACE`), `target` (the emitting module, e.g. `"moq_ffi::core::client"` or
/// `"moq_net::session"`) and `message` (the text and its fields, `key=value`, with URL
/// credentials and tokens removed, at most 16 KiB). Both strings are NUL-terminated UTF-8,
/// owned by the library and valid only during the call (copy what you keep).
pub type MoqLogCallback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, level: MoqLogLevel, target: *const c_char, message: *const c_char),
>;

fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default()
}

/// Routes the log events of the library and its protocol stack (moq-net, moq-tokio, moq-relay,
/// QUIC, ...) to `callback`, for those at `max_level` or more severe.
///
/// Call it again at any time to change the level (the same `callback` and `user_data` keep
/// their queued events) or the callback; the change applies to events emitted after it
/// returns. A NULL `callback` restores the default: silent unless the `MOQ_LOG` environment
/// variable is set, in which case events go to stderr filtered by its value (e.g. `debug`,
/// `moq_net=trace,info`). Process-wide: one callback for the whole library.
///
/// Threading: `callback` runs on the library's callback thread (the same one as every other
/// callback), one event at a time in order, never on the thread that logged and never under a
/// library lock. It may call any function, including `moq_set_log_callback`; events logged by
/// those calls on the callback thread while the log callback runs are not forwarded. At most
/// 4096 events wait for the callback; more are dropped, and a WARN event with target
/// `moq_ffi::log` reports how many once there is room again.
///
/// Ownership: `user_data` is passed back untouched and must stay valid until the callback is
/// replaced or cleared. After a call that replaces or clears it returns, the old callback is
/// not running and will not run again, so its `user_data` may be freed (called from inside the
/// log callback it returns at once and no further call of the old callback follows).
///
/// Blocking: waits only for a running call of a replaced callback to return. Never blocks on
/// the network.
///
/// Errors: INVALID_ARGUMENT when `max_level` is not a `MoqLogLevel` value; INVALID_STATE when
/// another `tracing` subscriber was already installed process-wide (by a Rust host or another
/// library), so the events cannot be routed.
///
/// # Safety
/// `callback`, if not NULL, is safe to call with `user_data` from another thread until it is
/// replaced or cleared.
#[no_mangle]
pub unsafe extern "C" fn moq_set_log_callback(
    max_level: MoqLogLevel,
    callback: MoqLogCallback,
    user_data: *mut c_void,
) -> MoqResult {
    enter("moq_set_log_callback", || {
        let max = log::level_filter(max_level).ok_or_else(|| {
            Error::invalid_argument(format!(
                "max_level is {max_level}; expected MOQ_LOG_OFF (0), MOQ_LOG_ERROR (1), MOQ_LOG_WARN (2), \
                 MOQ_LOG_INFO (3), MOQ_LOG_DEBUG (4) or MOQ_LOG_TRACE (5)"
            ))
        })?;
        let sink = callback.map(|function| {
            let user_data = UserData(user_data);
            LogSink {
                key: (function as usize, user_data.0 as usize),
                callback: Arc::new(move |level: tracing::Level, target: &str, message: &str| {
                    let user_data = user_data;
                    let target = c_text(target);
                    let message = c_text(message);
                    let level = MoqLogLevel::from(log::level_number(level));
                    // SAFETY: the caller registered `function` and `user_data` for exactly this
                    // use; the strings live until the call returns.
                    unsafe { function(user_data.0, level, target.as_ptr(), message.as_ptr()) }
                }),
            }
        });
        log::set_sink(max, sink)?;
        Ok(ok())
    })
}
