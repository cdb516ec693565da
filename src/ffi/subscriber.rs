//! Subscriber functions.

use super::boundary::{self, enter, lookup, ok, read_options, str_arg, UserData, CLIENTS, SUBSCRIBERS};
use super::types::*;
use crate::core::client::Client;
use crate::core::config::DeliveryMode;
use crate::core::events::{ObjectInfo, StatusReport, SubscriptionStatus};
use crate::core::poll::{self, Policy};
use crate::core::publish::DEFAULT_PRIORITY;
use crate::core::subscribe::{
    CatalogCallback, Content, DataCallback, ObjectCallback, Sink, Start, StatusCallback, SubscribeOptions, Subscriber,
};
use crate::error::{Error, Result};
use std::ffi::{c_char, CString};
use std::sync::Arc;
use std::time::Duration;

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
            boundary::set_last_error(&reason);
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

pub(crate) fn default_options() -> MoqSubscribeOptions {
    MoqSubscribeOptions {
        struct_size: std::mem::size_of::<MoqSubscribeOptions>() as u32,
        start: MOQ_START_NEXT_GROUP,
        start_group: 0,
        max_latency_ms: 0,
        priority: DEFAULT_PRIORITY,
        wait_for_track: 0,
        delivery: MOQ_DELIVER_CALLBACK,
        queue_capacity: poll::DEFAULT_CAPACITY as u32,
        queue_policy: MOQ_QUEUE_DROP_OLDEST,
    }
}

impl boundary::Failure for MoqSubscribeOptions {
    /// Building the defaults cannot fail; should it ever, the caller still gets usable defaults.
    fn failure(_: &Error) -> Self {
        default_options()
    }
}

/// How a subscription delivers, as the options asked.
pub(crate) enum Delivery {
    Callback,
    Poll { capacity: usize, policy: Policy },
}

/// Checks the caller's options and splits them into the core's options and the delivery.
pub(crate) fn options_of(options: &MoqSubscribeOptions) -> Result<(SubscribeOptions, Delivery)> {
    let start = match options.start {
        MOQ_START_NEXT_GROUP => Start::Next,
        MOQ_START_LATEST_GROUP => Start::Latest,
        MOQ_START_ABSOLUTE_GROUP => Start::Group(options.start_group),
        MOQ_START_GROUPS_BACK => Start::GroupsBack(options.start_group),
        other => {
            return Err(Error::invalid_argument(format!(
                "options->start {other} is not a MOQ_START_* value"
            )))
        }
    };
    let delivery = match options.delivery {
        MOQ_DELIVER_CALLBACK => Delivery::Callback,
        MOQ_DELIVER_POLL => {
            let capacity = match options.queue_capacity as usize {
                0 => poll::DEFAULT_CAPACITY,
                n if n > poll::MAX_CAPACITY => {
                    return Err(Error::invalid_argument(format!(
                        "options->queue_capacity {n} is above the maximum of {}",
                        poll::MAX_CAPACITY
                    )))
                }
                n => n,
            };
            let policy = match options.queue_policy {
                MOQ_QUEUE_DROP_OLDEST => Policy::DropOldest,
                MOQ_QUEUE_LATEST_ONLY => Policy::LatestOnly,
                MOQ_QUEUE_DROP_NEWEST => Policy::DropNewest,
                other => {
                    return Err(Error::invalid_argument(format!(
                        "options->queue_policy {other} is not a MOQ_QUEUE_* value"
                    )))
                }
            };
            Delivery::Poll { capacity, policy }
        }
        other => {
            return Err(Error::invalid_argument(format!(
                "options->delivery {other} is not MOQ_DELIVER_CALLBACK (0) or MOQ_DELIVER_POLL (1)"
            )))
        }
    };
    let core = SubscribeOptions {
        start,
        max_latency: (options.max_latency_ms > 0).then(|| Duration::from_millis(u64::from(options.max_latency_ms))),
        priority: options.priority,
        wait_for_track: options.wait_for_track != 0,
    };
    Ok((core, delivery))
}

/// The C view of an object's metadata.
pub(crate) fn info_of(info: &ObjectInfo) -> MoqObjectInfo {
    MoqObjectInfo {
        group_id: info.group_id,
        object_id: info.object_id,
        timestamp_us: info.timestamp_us,
        delivery_mode: match info.delivery_mode {
            DeliveryMode::Datagram => MOQ_DELIVERY_DATAGRAM,
            DeliveryMode::Stream => MOQ_DELIVERY_STREAM,
        },
        priority: info.priority,
    }
}

/// The C value of a status.
pub(crate) fn status_of(status: SubscriptionStatus) -> MoqSubscriptionStatus {
    match status {
        SubscriptionStatus::Subscribed => MOQ_SUBSCRIPTION_SUBSCRIBED,
        SubscriptionStatus::NotFound => MOQ_SUBSCRIPTION_NOT_FOUND,
        SubscriptionStatus::Ended => MOQ_SUBSCRIPTION_ENDED,
        SubscriptionStatus::Error => MOQ_SUBSCRIPTION_ERROR,
    }
}

/// A C string of `text` with any NUL bytes removed (messages come from many sources).
pub(crate) fn c_text(text: &str) -> CString {
    CString::new(text.replace('\0', "")).unwrap_or_default()
}

/// Bridges a C status callback.
pub(crate) fn status_callback(function: MoqStatusCallback, user_data: UserData) -> Option<StatusCallback> {
    let function = function?;
    Some(Arc::new(move |report: &StatusReport| {
        let user_data = user_data;
        let message = c_text(&report.message);
        // SAFETY: the caller registered `function` and `user_data` for exactly this use;
        // `message` outlives the call.
        unsafe { function(user_data.0, status_of(report.status), report.code, message.as_ptr()) }
    }))
}

/// Starts a subscription for the C API: reserves its handle (its poll queue is named by it),
/// builds the sink and registers the subscriber.
pub(crate) fn start_subscription(
    client: &Arc<Client>,
    namespace: &str,
    track: &str,
    options: &MoqSubscribeOptions,
    content: Content,
    callbacks: impl FnOnce() -> Result<Sink>,
) -> Result<*mut MoqSubscriber> {
    register(client, options, callbacks, |core, sink| {
        Subscriber::start(client, namespace, track, core, sink, content)
    })
}

/// Reserves a subscriber handle, builds the sink the options ask for, starts the subscriber with
/// `start` and makes the handle live.
fn register(
    client: &Arc<Client>,
    options: &MoqSubscribeOptions,
    callbacks: impl FnOnce() -> Result<Sink>,
    start: impl FnOnce(SubscribeOptions, Sink) -> Result<Arc<Subscriber>>,
) -> Result<*mut MoqSubscriber> {
    let (core, delivery) = options_of(options)?;
    let handle = SUBSCRIBERS.reserve();
    let (sink, queue) = match delivery {
        Delivery::Callback => (callbacks()?, None),
        Delivery::Poll { capacity, policy } => {
            let queue = client.hub().open(handle, capacity, policy);
            (Sink::Poll(queue.clone()), Some(queue))
        }
    };
    let subscriber = start(core, sink).inspect_err(|_| {
        // A subscription that never started leaves no queue behind in the hub.
        if let Some(queue) = &queue {
            queue.close();
        }
    })?;
    SUBSCRIBERS.insert_at(handle, subscriber);
    Ok(boundary::ptr_of(handle))
}

/// The callback sink of `moq_subscribe_ex` and `moq_fetch_group`.
fn object_sink(on_object: MoqObjectCallback, on_status: MoqStatusCallback, user_data: UserData) -> Result<Sink> {
    let function = on_object.ok_or_else(|| Error::invalid_argument("on_object is NULL"))?;
    let on_object: ObjectCallback = Arc::new(move |info: &ObjectInfo, data: &[u8]| {
        let user_data = user_data;
        let info = info_of(info);
        // SAFETY: the caller registered `function` and `user_data` for exactly this use;
        // `info` and `data` are valid for the duration of the call.
        unsafe { function(user_data.0, &info, data.as_ptr(), data.len()) }
    });
    Ok(Sink::Callbacks {
        on_object: Some(on_object),
        on_catalog: None::<CatalogCallback>,
        on_status: status_callback(on_status, user_data),
    })
}

/// Poll delivery takes no callbacks.
fn check_poll_callbacks(options: &MoqSubscribeOptions, any_callback: bool) -> Result<()> {
    if options.delivery == MOQ_DELIVER_POLL && any_callback {
        return Err(Error::invalid_argument(
            "options->delivery is MOQ_DELIVER_POLL: pass NULL callbacks and read events with moq_poll",
        ));
    }
    Ok(())
}

/// The default subscription options: start at the next group, no latency bound, priority 127,
/// fail with NOT_FOUND instead of waiting, callback delivery, poll queue of 1024 dropping the
/// oldest, `struct_size` set. Never fails.
///
/// # Safety
/// None.
#[no_mangle]
pub extern "C" fn moq_subscribe_options_default() -> MoqSubscribeOptions {
    enter("moq_subscribe_options_default", || Ok(default_options()))
}

/// Subscribes to `track_name` in `namespace_str` with `options` (NULL = the defaults). Never
/// blocks on the network: the subscription is established in the background and `on_status`
/// reports SUBSCRIBED when it is live (again after each resume), then exactly one terminal
/// status — NOT_FOUND (no such namespace or track within the client's timeout, unless
/// `options->wait_for_track`), ENDED (`moq_publisher_finish`) or ERROR (with the publisher's
/// abort code, or why it failed) — after which no callback of this subscription runs. The
/// terminal status is never dropped; a SUBSCRIBED that finds 1024 events of this subscription
/// still waiting for the callback thread is (counted in `MoqStats.events_dropped`).
///
/// Callback delivery: `on_object` (required) receives each object with its `MoqObjectInfo`,
/// on the library's callback thread, in order; `on_status` may be NULL. Poll delivery
/// (`options->delivery = MOQ_DELIVER_POLL`): both callbacks must be NULL; objects and status
/// arrive through `moq_poll` on the client, through a queue of `options->queue_capacity`
/// objects that drops per `options->queue_policy` (drops are counted in
/// `dropped_queue_full`). `user_data` must stay valid until `moq_unsubscribe`,
/// `moq_subscriber_destroy` or `moq_client_destroy` returns.
///
/// Returns a handle released with `moq_subscriber_destroy`, or NULL with `moq_last_error`:
/// INVALID_ARGUMENT (names, options, callbacks), NOT_CONNECTED (no session and not
/// `wait_for_track`), INVALID_HANDLE. Thread-safe.
///
/// # Safety
/// `namespace_str` and `track_name` are NULL or NUL-terminated strings; `options` is NULL or
/// points to a readable `MoqSubscribeOptions` of at least its `struct_size` bytes; the callbacks
/// are safe to call with `user_data` from another thread until the subscription is stopped.
#[no_mangle]
pub unsafe extern "C" fn moq_subscribe_ex(
    client: *mut MoqClient,
    namespace_str: *const c_char,
    track_name: *const c_char,
    options: *const MoqSubscribeOptions,
    on_object: MoqObjectCallback,
    on_status: MoqStatusCallback,
    user_data: *mut std::ffi::c_void,
) -> *mut MoqSubscriber {
    enter("moq_subscribe_ex", || {
        let client = lookup(&CLIENTS, client)?;
        // SAFETY: NULL or NUL-terminated per this function's contract.
        let namespace = unsafe { str_arg("namespace_str", namespace_str, MOQ_MAX_NAME_LEN) }?;
        // SAFETY: as above.
        let track = unsafe { str_arg("track_name", track_name, MOQ_MAX_NAME_LEN) }?;
        // SAFETY: NULL or a readable options struct per this function's contract.
        let options = unsafe { read_options("options", options, default_options()) }?;
        let user_data = UserData(user_data);
        check_poll_callbacks(&options, on_object.is_some() || on_status.is_some())?;
        start_subscription(&client, namespace, track, &options, Content::Objects, || {
            object_sink(on_object, on_status, user_data)
        })
    })
}

/// Fetches one past group, `group_id` of `track_name` in `namespace_str`, from the relay (or the
/// publisher behind it). Never blocks on the network: the objects arrive in order through
/// `on_object` (or `moq_poll` with `options->delivery = MOQ_DELIVER_POLL`; NULL options = the
/// defaults, of which only `priority`, `delivery` and the queue settings apply), with their
/// `MoqObjectInfo` (its `priority` is the track's declared priority when the relay answered the
/// track-info lookup within 200 ms, else 0); `on_status` reports SUBSCRIBED when the fetch is
/// answered, then ENDED once the group is complete, NOT_FOUND when it is no longer held (older
/// than the publisher's retention, or evicted), or ERROR. The returned handle is a subscriber: destroy it with
/// `moq_subscriber_destroy` (also to cancel).
///
/// Returns NULL with `moq_last_error`: UNSUPPORTED where the negotiated protocol cannot fetch
/// (moq-lite-01..04; the message names the version), NOT_CONNECTED, INVALID_ARGUMENT,
/// INVALID_HANDLE. Thread-safe.
///
/// # Safety
/// As for `moq_subscribe_ex`.
#[no_mangle]
pub unsafe extern "C" fn moq_fetch_group(
    client: *mut MoqClient,
    namespace_str: *const c_char,
    track_name: *const c_char,
    group_id: u64,
    options: *const MoqSubscribeOptions,
    on_object: MoqObjectCallback,
    on_status: MoqStatusCallback,
    user_data: *mut std::ffi::c_void,
) -> *mut MoqSubscriber {
    enter("moq_fetch_group", || {
        let client = lookup(&CLIENTS, client)?;
        // SAFETY: NULL or NUL-terminated per this function's contract.
        let namespace = unsafe { str_arg("namespace_str", namespace_str, MOQ_MAX_NAME_LEN) }?;
        // SAFETY: as above.
        let track = unsafe { str_arg("track_name", track_name, MOQ_MAX_NAME_LEN) }?;
        // SAFETY: NULL or a readable options struct per this function's contract.
        let options = unsafe { read_options("options", options, default_options()) }?;
        let user_data = UserData(user_data);
        check_poll_callbacks(&options, on_object.is_some() || on_status.is_some())?;
        register(
            &client,
            &options,
            || object_sink(on_object, on_status, user_data),
            |core, sink| Subscriber::fetch(&client, namespace, track, group_id, core, sink),
        )
    })
}

/// Asks the relay what the publisher of `track_name` in `namespace_str` declared — priority,
/// retention, timescale (and the newest group, when this client subscribes to the track) —
/// without subscribing.
/// Blocks up to twice the client's timeout. Track status beyond that (whether the publisher is
/// live, the exact largest object) is not available: moq-net 0.3 does not implement
/// TRACK_STATUS.
///
/// Errors: UNSUPPORTED (moq-lite-01..04), NOT_FOUND, TIMEOUT, NOT_CONNECTED, INVALID_ARGUMENT
/// (names, NULL `out` or unknown `struct_size`), INVALID_HANDLE.
///
/// # Safety
/// Strings NULL or NUL-terminated; `out` NULL or a writable `MoqTrackProperties` whose
/// `struct_size` is set.
#[no_mangle]
pub unsafe extern "C" fn moq_query_track(
    client: *mut MoqClient,
    namespace_str: *const c_char,
    track_name: *const c_char,
    out: *mut MoqTrackProperties,
) -> MoqResult {
    enter("moq_query_track", || {
        let client = lookup(&CLIENTS, client)?;
        // SAFETY: NULL or NUL-terminated per this function's contract.
        let namespace = unsafe { str_arg("namespace_str", namespace_str, MOQ_MAX_NAME_LEN) }?;
        // SAFETY: as above.
        let track = unsafe { str_arg("track_name", track_name, MOQ_MAX_NAME_LEN) }?;
        if out.is_null() {
            return Err(Error::invalid_argument("out is NULL"));
        }
        // SAFETY: non-NULL and starts with a readable `struct_size` per the contract.
        let size = unsafe { std::ptr::read_unaligned(out.cast::<u32>()) } as usize;
        if size != std::mem::size_of::<MoqTrackProperties>() {
            return Err(Error::invalid_argument(format!(
                "out->struct_size is {size}; expected sizeof(MoqTrackProperties) = {}",
                std::mem::size_of::<MoqTrackProperties>()
            )));
        }
        let properties = crate::core::subscribe::fetch::query_track(&client, namespace, track)?;
        let value = MoqTrackProperties {
            struct_size: size as u32,
            priority: properties.priority,
            retention_ms: u64::try_from(properties.retention.as_millis()).unwrap_or(u64::MAX),
            timescale: properties.timescale,
            has_latest_group: u8::from(properties.latest_group.is_some()),
            latest_group: properties.latest_group.unwrap_or(0),
        };
        // SAFETY: `out` is a writable `MoqTrackProperties` (its size was just checked).
        unsafe { out.write_unaligned(value) };
        Ok(ok())
    })
}
