//! Publisher functions.

use super::boundary::{self, enter, lookup, ok, read_options, str_arg, CLIENTS, PUBLISHERS};
use super::types::*;
use crate::core::config::DeliveryMode;
use crate::core::publish::{Publisher, PublisherOptions, DEFAULT_PRIORITY, RETENTION};
use crate::error::{Error, ErrorKind, Result};
use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

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
        unsafe { create_publisher(client, namespace_str, track_name, &default_options()) }
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
        unsafe {
            create_publisher(
                client,
                namespace_str,
                track_name,
                &MoqPublisherOptions {
                    delivery_mode,
                    ..default_options()
                },
            )
        }
    })
}

/// The body of every publisher constructor.
///
/// # Safety
/// As for `moq_create_publisher_ex`.
unsafe fn create_publisher(
    client: *mut MoqClient,
    namespace_str: *const c_char,
    track_name: *const c_char,
    options: *const MoqPublisherOptions,
) -> Result<*mut MoqPublisher> {
    let client = lookup(&CLIENTS, client)?;
    // SAFETY: NULL or NUL-terminated per the caller's contract.
    let namespace = unsafe { str_arg("namespace_str", namespace_str, MOQ_MAX_NAME_LEN) }?;
    // SAFETY: as above.
    let track = unsafe { str_arg("track_name", track_name, MOQ_MAX_NAME_LEN) }?;
    // SAFETY: NULL or a readable options struct per the caller's contract.
    let options = options_of(unsafe { read_options("options", options, default_options()) }?)?;
    let publisher = Publisher::new(&client, namespace, track, options)?;
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

fn default_options() -> MoqPublisherOptions {
    MoqPublisherOptions {
        struct_size: std::mem::size_of::<MoqPublisherOptions>() as u32,
        delivery_mode: MOQ_DELIVERY_STREAM,
        priority: DEFAULT_PRIORITY,
        group_order: MOQ_GROUP_ORDER_ASCENDING,
        retention_ms: RETENTION.as_millis() as u32,
    }
}

fn options_of(options: MoqPublisherOptions) -> Result<PublisherOptions> {
    match options.group_order {
        MOQ_GROUP_ORDER_ASCENDING => {}
        MOQ_GROUP_ORDER_DESCENDING => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "options->group_order MOQ_GROUP_ORDER_DESCENDING is not carried by the protocol stack (moq-net 0.3); use MOQ_GROUP_ORDER_ASCENDING",
            ))
        }
        other => {
            return Err(Error::invalid_argument(format!(
                "options->group_order {other} is not a MOQ_GROUP_ORDER_* value"
            )))
        }
    }
    Ok(PublisherOptions {
        mode: mode_of(options.delivery_mode)?,
        priority: options.priority,
        retention: match options.retention_ms {
            0 => RETENTION,
            ms => Duration::from_millis(u64::from(ms)),
        },
    })
}

/// The default publisher options: stream mode, priority 127, ascending groups, 30 s retention,
/// `struct_size` set. Never fails.
///
/// # Safety
/// None.
#[no_mangle]
pub extern "C" fn moq_publisher_options_default() -> MoqPublisherOptions {
    enter("moq_publisher_options_default", || Ok(default_options()))
}

/// Creates a publisher for track `track_name` in `namespace_str` with `options` (NULL = the
/// defaults), announcing the namespace if needed. Never blocks on the network.
///
/// Returns a handle released with `moq_publisher_destroy`, or NULL with `moq_last_error`:
/// NOT_CONNECTED, INVALID_ARGUMENT (names, unknown `struct_size`, mode, retention out of range,
/// a second publisher for the same track), UNSUPPORTED (descending group order),
/// INVALID_HANDLE. Thread-safe.
///
/// # Safety
/// `namespace_str` and `track_name` are NULL or NUL-terminated strings; `options` is NULL or
/// points to a readable `MoqPublisherOptions` of at least its `struct_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn moq_create_publisher_opts(
    client: *mut MoqClient,
    namespace_str: *const c_char,
    track_name: *const c_char,
    options: *const MoqPublisherOptions,
) -> *mut MoqPublisher {
    enter("moq_create_publisher_opts", || {
        // SAFETY: same contract as this function's.
        unsafe { create_publisher(client, namespace_str, track_name, options) }
    })
}

/// Starts a new group on a stream-mode publisher, ending the open group first if there is one.
/// Writes the new group's id to `out_group_id` (may be NULL). Never blocks.
///
/// Errors: INVALID_STATE (datagram publisher), CLOSED (after finish/abort), INVALID_HANDLE.
/// Thread-safe, but a group is one sequence: build each group from one thread.
///
/// # Safety
/// `out_group_id` is NULL or points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn moq_publisher_begin_group(publisher: *mut MoqPublisher, out_group_id: *mut u64) -> MoqResult {
    enter("moq_publisher_begin_group", || {
        let id = lookup(&PUBLISHERS, publisher)?.begin_group()?;
        if !out_group_id.is_null() {
            // SAFETY: non-NULL and writable per this function's contract.
            unsafe { out_group_id.write_unaligned(id) };
        }
        Ok(ok())
    })
}

/// Appends an object of `data_len` bytes (copied before returning) to the open group, stamped
/// with `timestamp_us` (the caller's presentation time in µs; 0 = now, µs since the Unix epoch).
/// Objects get ids 0, 1, 2... within their group. Never blocks on the network.
///
/// Errors: INVALID_STATE (no open group, or a datagram publisher), INVALID_ARGUMENT (NULL data
/// with non-zero length, more than `MOQ_MAX_OBJECT_SIZE` bytes, the group already holds
/// `MOQ_MAX_GROUP_OBJECTS` objects, timestamp beyond 2^62-1), NOT_CONNECTED, CLOSED,
/// INVALID_HANDLE.
///
/// # Safety
/// `data` is NULL (only with `data_len` 0) or points to `data_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn moq_publish_object(
    publisher: *mut MoqPublisher,
    data: *const u8,
    data_len: usize,
    timestamp_us: u64,
) -> MoqResult {
    enter("moq_publish_object", || {
        let publisher = lookup(&PUBLISHERS, publisher)?;
        // SAFETY: `data_len` readable bytes at `data` per this function's contract.
        let data = unsafe { boundary::bytes_arg("data", data, data_len) }?;
        publisher.publish_object(data, timestamp_us)?;
        Ok(ok())
    })
}

/// Ends the open group: subscribers learn it is complete. Errors: INVALID_STATE (no open
/// group), CLOSED, INVALID_HANDLE. Never blocks.
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_publisher_end_group(publisher: *mut MoqPublisher) -> MoqResult {
    enter("moq_publisher_end_group", || {
        lookup(&PUBLISHERS, publisher)?.end_group()?;
        Ok(ok())
    })
}

/// Ends the track after its last group (ending an open group first): subscribers get
/// `MOQ_SUBSCRIPTION_ENDED` once they have every object. Later publishes fail with CLOSED.
/// Idempotent; the handle stays valid until `moq_publisher_destroy`. Never blocks.
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_publisher_finish(publisher: *mut MoqPublisher) -> MoqResult {
    enter("moq_publisher_finish", || {
        lookup(&PUBLISHERS, publisher)?.finish();
        Ok(ok())
    })
}

/// Aborts the track with application error `code` (0..65535): subscribers get
/// `MOQ_SUBSCRIPTION_ERROR` carrying it. Later publishes fail with CLOSED. Errors:
/// INVALID_ARGUMENT (code above 65535), CLOSED (already finished or aborted), INVALID_HANDLE.
/// Never blocks.
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_publisher_abort(publisher: *mut MoqPublisher, code: u32) -> MoqResult {
    enter("moq_publisher_abort", || {
        let publisher = lookup(&PUBLISHERS, publisher)?;
        let code = u16::try_from(code)
            .map_err(|_| Error::invalid_argument(format!("code {code} is above the maximum of 65535")))?;
        publisher.abort(code)?;
        Ok(ok())
    })
}

impl boundary::Failure for MoqPublisherOptions {
    /// Building the defaults cannot fail; should it ever, the caller still gets usable defaults.
    fn failure(_: &Error) -> Self {
        default_options()
    }
}
