//! Publisher functions.

use super::boundary::{self, enter, lookup, ok, str_arg, CLIENTS, PUBLISHERS};
use super::types::*;
use crate::core::publish::{DeliveryMode, Publisher};
use crate::error::{Error, Result};
use std::ffi::c_char;
use std::sync::Arc;

fn mode_of(mode: MoqDeliveryMode) -> Result<DeliveryMode> {
    match mode {
        MOQ_DELIVERY_DATAGRAM => Ok(DeliveryMode::Datagram),
        MOQ_DELIVERY_STREAM => Ok(DeliveryMode::Stream),
        other => Err(Error::invalid_argument(format!(
            "delivery_mode {other} is not MOQ_DELIVERY_DATAGRAM (0) or MOQ_DELIVERY_STREAM (1)"
        ))),
    }
}

/// Creates a stream-mode publisher; see `moq_create_publisher_ex`.
///
/// # Safety
/// As for `moq_create_publisher_ex`.
#[no_mangle]
pub unsafe extern "C" fn moq_create_publisher(
    client: *mut MoqClient,
    namespace_str: *const c_char,
    track_name: *const c_char,
) -> *mut MoqPublisher {
    enter("moq_create_publisher", || {
        // SAFETY: same contract as this function's.
        unsafe { create_publisher(client, namespace_str, track_name, MOQ_DELIVERY_STREAM) }
    })
}

/// Creates a publisher for track `track_name` in `namespace_str`, announcing the namespace if
/// needed. Never blocks on the network. `delivery_mode` is the
/// publisher's default; `moq_publish_data` takes the mode per call.
///
/// Returns a handle released with `moq_publisher_destroy`, or NULL with `moq_last_error`:
/// NOT_CONNECTED, INVALID_ARGUMENT (names, mode, a second publisher for the same track),
/// INVALID_HANDLE.
///
/// # Safety
/// `namespace_str` and `track_name` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn moq_create_publisher_ex(
    client: *mut MoqClient,
    namespace_str: *const c_char,
    track_name: *const c_char,
    delivery_mode: MoqDeliveryMode,
) -> *mut MoqPublisher {
    enter("moq_create_publisher_ex", || {
        // SAFETY: same contract as this function's.
        unsafe { create_publisher(client, namespace_str, track_name, delivery_mode) }
    })
}

/// The body of both publisher constructors.
///
/// # Safety
/// As for `moq_create_publisher_ex`.
unsafe fn create_publisher(
    client: *mut MoqClient,
    namespace_str: *const c_char,
    track_name: *const c_char,
    delivery_mode: MoqDeliveryMode,
) -> Result<*mut MoqPublisher> {
    let client = lookup(&CLIENTS, client)?;
    // SAFETY: NULL or NUL-terminated per the caller's contract.
    let namespace = unsafe { str_arg("namespace_str", namespace_str, MOQ_MAX_NAME_LEN) }?;
    // SAFETY: as above.
    let track = unsafe { str_arg("track_name", track_name, MOQ_MAX_NAME_LEN) }?;
    let mode = mode_of(delivery_mode)?;
    let publisher = Publisher::new(&client, namespace, track, mode)?;
    Ok(boundary::ptr_of(PUBLISHERS.insert(Arc::new(publisher))))
}

/// Destroys a publisher and ends its track (subscribers see the end). NULL, stale and foreign
/// handles are ignored (recorded in `moq_last_error`). Never blocks.
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_publisher_destroy(publisher: *mut MoqPublisher) {
    enter("moq_publisher_destroy", || {
        PUBLISHERS.remove(boundary::handle_of(publisher))?.finish();
        Ok(())
    })
}

/// Publishes one object of `data_len` bytes, copied before returning. Never blocks on the
/// network.
///
/// `MOQ_DELIVERY_STREAM`: reliable and ordered, up to `MOQ_MAX_OBJECT_SIZE` bytes, zero-length
/// allowed. `MOQ_DELIVERY_DATAGRAM`: lossy, up to `MOQ_MAX_DATAGRAM_SIZE` bytes (larger is
/// INVALID_ARGUMENT, never a silent drop), UNSUPPORTED on moq-lite-01..04.
/// Errors: INVALID_ARGUMENT (NULL data with non-zero length, size, mode), NOT_CONNECTED,
/// INVALID_HANDLE. Thread-safe.
///
/// # Safety
/// `data` is NULL (only with `data_len` 0) or points to `data_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn moq_publish_data(
    publisher: *mut MoqPublisher,
    data: *const u8,
    data_len: usize,
    delivery_mode: MoqDeliveryMode,
) -> MoqResult {
    enter("moq_publish_data", || {
        let publisher = lookup(&PUBLISHERS, publisher)?;
        let mode = mode_of(delivery_mode)?;
        // SAFETY: `data_len` readable bytes at `data` per this function's contract.
        let data = unsafe { boundary::bytes_arg("data", data, data_len) }?;
        publisher.publish(data, mode)?;
        Ok(ok())
    })
}
