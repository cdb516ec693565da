//! Subscriber functions.

use super::boundary::{self, enter, lookup, ok, str_arg, UserData, CLIENTS, SUBSCRIBERS};
use super::types::*;
use crate::core::subscribe::{DataCallback, Subscriber};
use crate::error::Error;
use std::ffi::c_char;
use std::sync::Arc;

/// Subscribes to `track_name` in `namespace_str` and returns once the publisher confirmed the
/// subscription (blocks at most the client's timeout, waiting for the namespace to be
/// announced if it is not yet).
///
/// `callback` receives every object on the library's callback thread, one call at a time, in
/// order (stream objects reliably; datagrams best-effort). `data` is valid only during the
/// call. `user_data` is passed back untouched and must stay valid until
/// `moq_unsubscribe`/`moq_subscriber_destroy`/`moq_client_destroy` returns.
///
/// On moq-lite-01..05 a relay confirms the subscription before its own subscription reaches the
/// publisher, which then starts at its newest group: objects published in those first
/// milliseconds may not arrive. moq-lite-06 and moq-transport deliver everything published after
/// this returns. With `MoqClientConfig.reconnect`, the subscription resumes by itself after a
/// reconnect, continuing after the last object it delivered.
///
/// Returns a handle released with `moq_subscriber_destroy`, or NULL with `moq_last_error`:
/// NOT_CONNECTED, INVALID_ARGUMENT (names, NULL callback), NOT_FOUND (namespace or track),
/// TIMEOUT, INVALID_HANDLE.
///
/// # Safety
/// `namespace_str` and `track_name` are NULL or NUL-terminated strings. `callback` is safe to
/// call with `user_data` from another thread until the subscription is stopped.
#[no_mangle]
pub unsafe extern "C" fn moq_subscribe(
    client: *mut MoqClient,
    namespace_str: *const c_char,
    track_name: *const c_char,
    callback: MoqDataCallback,
    user_data: *mut std::ffi::c_void,
) -> *mut MoqSubscriber {
    enter("moq_subscribe", || {
        let client = lookup(&CLIENTS, client)?;
        // SAFETY: NULL or NUL-terminated per this function's contract.
        let namespace = unsafe { str_arg("namespace_str", namespace_str, MOQ_MAX_NAME_LEN) }?;
        // SAFETY: as above.
        let track = unsafe { str_arg("track_name", track_name, MOQ_MAX_NAME_LEN) }?;
        let function = callback.ok_or_else(|| Error::invalid_argument("callback is NULL"))?;
        let user_data = UserData(user_data);
        let callback: DataCallback = Arc::new(move |data: &[u8]| {
            let user_data = user_data;
            // SAFETY: the caller registered `function` and `user_data` for exactly this use;
            // `data` is valid for the duration of the call.
            unsafe { function(user_data.0, data.as_ptr(), data.len()) }
        });
        let subscriber = Subscriber::new(&client, namespace, track, callback)?;
        Ok(boundary::ptr_of(SUBSCRIBERS.insert(subscriber)))
    })
}

/// Stops delivery. After it returns no callback of this subscriber is running or will run (from
/// inside its own callback: returns at once, no further callback follows). Idempotent; the
/// handle stays valid until `moq_subscriber_destroy`. Blocks only while a callback of this
/// subscriber is running on another thread.
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_unsubscribe(subscriber: *mut MoqSubscriber) -> MoqResult {
    enter("moq_unsubscribe", || {
        lookup(&SUBSCRIBERS, subscriber)?.unsubscribe();
        Ok(ok())
    })
}

/// Whether objects are still being delivered: false after unsubscribe, end of track, error or
/// disconnect (then `moq_last_error` says why) and for invalid handles. Never blocks.
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_is_subscribed(subscriber: *const MoqSubscriber) -> bool {
    enter("moq_is_subscribed", || {
        let subscriber = lookup(&SUBSCRIBERS, subscriber)?;
        if subscriber.is_subscribed() {
            return Ok(true);
        }
        if let Some(reason) = subscriber.end_reason() {
            boundary::set_last_error(reason.message());
        }
        Ok(false)
    })
}

/// Unsubscribes (see `moq_unsubscribe`) and releases the handle. NULL, stale and foreign
/// handles are ignored (recorded in `moq_last_error`).
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_subscriber_destroy(subscriber: *mut MoqSubscriber) {
    enter("moq_subscriber_destroy", || {
        SUBSCRIBERS.remove(boundary::handle_of(subscriber))?.unsubscribe();
        Ok(())
    })
}
