//! Announcement functions: learn which namespaces publishers announce on the relay.

use super::boundary::{enter, lookup, ok, opt_str_arg, UserData, CLIENTS};
use super::subscriber::c_text;
use super::types::*;
use crate::core::announce::{self, AnnounceCallback, AnnounceSink};
use std::ffi::{c_char, c_void};
use std::sync::Arc;

/// Reports every namespace the relay announces to this client: `callback(user_data,
/// namespace_str, "")` on the library's callback thread (`track_name` is always the empty
/// string: announcements name namespaces, not tracks). Withdrawals are not reported here; use
/// `moq_subscribe_announces_ex` for them. A NULL `callback` queues `MOQ_EVENT_ANNOUNCE` events
/// for `moq_poll` instead.
///
/// Works before and after `moq_connect` and across reconnects (namespaces already announced are
/// reported first). A client has one announcement watcher: registering again replaces it;
/// `moq_unsubscribe_announces` stops it. Strings are valid only during the call; `user_data`
/// must stay valid until the watcher is replaced or stopped, or the client destroyed. At most
/// 1024 announcements wait for the callback; while it is that far behind, newer ones are
/// dropped, counted in the client's `MoqStats.events_dropped` and logged at WARN.
///
/// Errors: CLOSED (client being destroyed), INVALID_HANDLE. Never blocks on the network.
///
/// # Safety
/// `callback` is safe to call with `user_data` from another thread until the watcher stops.
#[no_mangle]
pub extern "C" fn moq_subscribe_announces(
    client: *mut MoqClient,
    callback: MoqTrackCallback,
    user_data: *mut c_void,
) -> MoqResult {
    enter("moq_subscribe_announces", || {
        let client = lookup(&CLIENTS, client)?;
        let user_data = UserData(user_data);
        let sink = match callback {
            None => AnnounceSink::Poll,
            Some(function) => {
                let callback: AnnounceCallback = Arc::new(move |namespace: &str, active: bool| {
                    let user_data = user_data;
                    if !active {
                        return;
                    }
                    let namespace = c_text(namespace);
                    // SAFETY: the caller registered `function` and `user_data` for exactly this
                    // use; both strings outlive the call.
                    unsafe { function(user_data.0, namespace.as_ptr(), c"".as_ptr()) }
                });
                AnnounceSink::Callback(callback)
            }
        };
        announce::watch(&client, None, sink)?;
        Ok(ok())
    })
}

/// Reports announcements of namespaces equal to `prefix` or below it (`prefix` NULL or "" =
/// all): `callback(user_data, namespace_str, true)` when a namespace is announced and
/// `(…, false)` when it is withdrawn: its publishing client disconnected or was destroyed, or
/// this client's own session to the relay ended (a client keeps its namespaces announced while
/// it lives, even when its last publisher is destroyed). A NULL `callback` queues `MOQ_EVENT_ANNOUNCE` events for `moq_poll` instead.
/// Otherwise as `moq_subscribe_announces` (one watcher per client, replaced by a new one).
///
/// Errors: INVALID_ARGUMENT (`prefix` not a valid namespace), CLOSED, INVALID_HANDLE.
///
/// # Safety
/// `prefix` is NULL or NUL-terminated; `callback` is safe to call with `user_data` from another
/// thread until the watcher stops.
#[no_mangle]
pub unsafe extern "C" fn moq_subscribe_announces_ex(
    client: *mut MoqClient,
    prefix: *const c_char,
    callback: MoqAnnounceCallback,
    user_data: *mut c_void,
) -> MoqResult {
    enter("moq_subscribe_announces_ex", || {
        let client = lookup(&CLIENTS, client)?;
        // SAFETY: NULL or NUL-terminated per this function's contract.
        let prefix = unsafe { opt_str_arg("prefix", prefix, MOQ_MAX_NAME_LEN) }?;
        let user_data = UserData(user_data);
        let sink = match callback {
            None => AnnounceSink::Poll,
            Some(function) => {
                let callback: AnnounceCallback = Arc::new(move |namespace: &str, active: bool| {
                    let user_data = user_data;
                    let namespace = c_text(namespace);
                    // SAFETY: the caller registered `function` and `user_data` for exactly this
                    // use; the string outlives the call.
                    unsafe { function(user_data.0, namespace.as_ptr(), active) }
                });
                AnnounceSink::Callback(callback)
            }
        };
        announce::watch(&client, prefix.map(str::to_string), sink)?;
        Ok(ok())
    })
}

/// Stops the client's announcement watcher. After it returns no announcement callback runs or
/// is running (from inside one: returns at once, none follows). Idempotent.
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_unsubscribe_announces(client: *mut MoqClient) -> MoqResult {
    enter("moq_unsubscribe_announces", || {
        lookup(&CLIENTS, client)?.unwatch_announces();
        Ok(ok())
    })
}
