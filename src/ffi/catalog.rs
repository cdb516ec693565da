//! Catalog functions: subscribe to a catalog track (seed or hang JSON) and publish one.

use super::boundary::{
    self, enter, lookup, ok, opt_str_arg, read_options, str_arg, UserData, CLIENTS, PUBLISHERS, SUBSCRIBERS,
};
use super::subscriber::{c_text, default_options, start_subscription, status_callback};
use super::types::*;
use crate::core::catalog::{self, Catalog, CatalogFormat, TrackEntry, MAX_CATALOG_TRACKS};
use crate::core::config::DeliveryMode;
use crate::core::subscribe::{CatalogCallback, Content, Sink};
use crate::error::{Error, ErrorKind};
use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

/// A catalog's tracks as C structs, with the strings they point into.
pub(crate) struct CTracks {
    _strings: Vec<CString>,
    pub tracks: Vec<MoqTrackInfo>,
    pub json: CString,
}

// SAFETY: the raw pointers point into `_strings`, heap data owned by (and moving with) this
// value and never mutated; nothing else aliases them.
unsafe impl Send for CTracks {}

impl CTracks {
    pub fn new(catalog: &Catalog) -> Self {
        let mut strings = Vec::new();
        let mut keep = |text: Option<&str>| -> *const c_char {
            match text {
                Some(text) => {
                    let owned = c_text(text);
                    let ptr = owned.as_ptr();
                    strings.push(owned);
                    ptr
                }
                None => std::ptr::null(),
            }
        };
        let tracks = catalog
            .tracks
            .iter()
            .map(|track| MoqTrackInfo {
                name: keep(Some(&track.name)),
                codec: keep(track.codec.as_deref()),
                mime_type: keep(track.mime_type.as_deref()),
                width: track.width,
                height: track.height,
                bitrate: track.bitrate,
                sample_rate: track.sample_rate,
                language: keep(track.language.as_deref()),
            })
            .collect();
        let json = c_text(&String::from_utf8_lossy(&catalog.raw));
        Self {
            _strings: strings,
            tracks,
            json,
        }
    }
}

/// Subscribes to the catalog track `catalog_track_name` (e.g. `"catalog.json"`) in
/// `namespace_str` and calls `callback` with its track list each time the publisher updates it,
/// starting with the current one. Both the seed format (`{"version":1,"tracks":[...]}`) and
/// moq-dev's hang `catalog.json` are understood. Same as `moq_subscribe_catalog_ex` with the
/// default options (start at the latest group), no status callback.
///
/// `tracks` and every string in it are valid only during the call. Returns a subscriber handle
/// (`moq_unsubscribe`, `moq_subscriber_destroy`, `moq_catalog_json` apply), or NULL with
/// `moq_last_error`. Never blocks on the network.
///
/// # Safety
/// As for `moq_subscribe_catalog_ex`.
#[no_mangle]
pub unsafe extern "C" fn moq_subscribe_catalog(
    client: *mut MoqClient,
    namespace_str: *const c_char,
    catalog_track_name: *const c_char,
    callback: MoqCatalogCallback,
    user_data: *mut c_void,
) -> *mut MoqSubscriber {
    enter("moq_subscribe_catalog", || {
        // SAFETY: same contract as this function's.
        unsafe {
            subscribe_catalog(
                client,
                namespace_str,
                catalog_track_name,
                std::ptr::null(),
                callback,
                None,
                user_data,
            )
        }
    })
}

/// Subscribes to a catalog track with `options` (NULL = the defaults but starting at
/// `MOQ_START_LATEST_GROUP`, so the current catalog arrives first). Each catalog
/// object is parsed and delivered to `on_catalog` (callback mode) or as `MOQ_EVENT_CATALOG`
/// (poll mode; both callbacks NULL). Malformed, oversized (over `MOQ_MAX_CATALOG_SIZE`) or
/// hostile JSON ends the subscription with `MOQ_SUBSCRIPTION_ERROR` naming the problem; it
/// never crashes or hangs. `on_status` (may be NULL) works as for `moq_subscribe_ex`. When
/// 1024 events of the subscription wait for the callback thread, a new catalog replaces the
/// newest one waiting (counted in `MoqStats.events_dropped`): the latest catalog always arrives.
///
/// # Safety
/// `namespace_str` and `catalog_track_name` are NULL or NUL-terminated; `options` is NULL or a
/// readable `MoqSubscribeOptions` of its `struct_size`; the callbacks are safe to call with
/// `user_data` from another thread until the subscription is stopped.
#[no_mangle]
pub unsafe extern "C" fn moq_subscribe_catalog_ex(
    client: *mut MoqClient,
    namespace_str: *const c_char,
    catalog_track_name: *const c_char,
    options: *const MoqSubscribeOptions,
    on_catalog: MoqCatalogCallback,
    on_status: MoqStatusCallback,
    user_data: *mut c_void,
) -> *mut MoqSubscriber {
    enter("moq_subscribe_catalog_ex", || {
        // SAFETY: same contract as this function's.
        unsafe {
            subscribe_catalog(
                client,
                namespace_str,
                catalog_track_name,
                options,
                on_catalog,
                on_status,
                user_data,
            )
        }
    })
}

/// The body of both catalog subscriptions.
///
/// # Safety
/// As for `moq_subscribe_catalog_ex`.
unsafe fn subscribe_catalog(
    client: *mut MoqClient,
    namespace_str: *const c_char,
    catalog_track_name: *const c_char,
    options: *const MoqSubscribeOptions,
    on_catalog: MoqCatalogCallback,
    on_status: MoqStatusCallback,
    user_data: *mut c_void,
) -> crate::error::Result<*mut MoqSubscriber> {
    let client = lookup(&CLIENTS, client)?;
    // SAFETY: NULL or NUL-terminated per the caller's contract.
    let namespace = unsafe { str_arg("namespace_str", namespace_str, MOQ_MAX_NAME_LEN) }?;
    // SAFETY: as above.
    let track = unsafe { str_arg("catalog_track_name", catalog_track_name, MOQ_MAX_NAME_LEN) }?;
    let defaults = MoqSubscribeOptions {
        start: MOQ_START_LATEST_GROUP,
        ..default_options()
    };
    // SAFETY: NULL or a readable options struct per the caller's contract.
    let options = unsafe { read_options("options", options, defaults) }?;
    if options.delivery == MOQ_DELIVER_POLL && (on_catalog.is_some() || on_status.is_some()) {
        return Err(Error::invalid_argument(
            "options->delivery is MOQ_DELIVER_POLL: pass NULL callbacks and read events with moq_poll",
        ));
    }
    let user_data = UserData(user_data);
    start_subscription(&client, namespace, track, &options, Content::Catalog, || {
        let function = on_catalog.ok_or_else(|| Error::invalid_argument("callback is NULL"))?;
        let on_catalog: CatalogCallback = Arc::new(move |catalog: &Arc<Catalog>| {
            let user_data = user_data;
            let tracks = CTracks::new(catalog);
            // SAFETY: the caller registered `function` and `user_data` for exactly this use;
            // `tracks` outlives the call.
            unsafe { function(user_data.0, tracks.tracks.as_ptr(), tracks.tracks.len()) }
        });
        Ok(Sink::Callbacks {
            on_object: None,
            on_catalog: Some(on_catalog),
            on_status: status_callback(on_status, user_data),
        })
    })
}

/// The raw JSON of the newest catalog a catalog subscription received, as a NUL-terminated
/// string the caller frees with `moq_free_str`; NULL with `moq_last_error` when none arrived
/// yet (NOT_FOUND) or the handle is invalid. Callable from any thread, including the catalog
/// callback. Never blocks.
///
/// # Safety
/// None beyond passing a pointer value.
#[no_mangle]
pub extern "C" fn moq_catalog_json(subscriber: *mut MoqSubscriber) -> *const c_char {
    enter("moq_catalog_json", || {
        let subscriber = lookup(&SUBSCRIBERS, subscriber)?;
        let catalog = subscriber
            .latest_catalog()
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "no catalog has arrived on this subscription yet"))?;
        Ok(boundary::issue_string(&String::from_utf8_lossy(&catalog.raw)))
    })
}

/// Publishes `track_count` tracks as a catalog in `format` (`MOQ_CATALOG_FORMAT_SEED` or
/// `MOQ_CATALOG_FORMAT_HANG`) on `publisher`, a stream-mode publisher of the catalog track
/// (e.g. `"catalog.json"`). Each call publishes the complete list as a new group; call it again
/// whenever tracks come or go, and subscribers receive the new list. The tracks are copied.
///
/// Errors: INVALID_ARGUMENT (NULL tracks with a non-zero count, more than
/// `MOQ_MAX_CATALOG_TRACKS`, a NULL/empty/duplicate name, strings that are not UTF-8 or too
/// long, a video/audio track without a codec in the hang format, an unknown format),
/// INVALID_STATE (datagram publisher or an open group), NOT_CONNECTED, CLOSED, INVALID_HANDLE.
///
/// # Safety
/// `tracks` is NULL (only with `track_count` 0) or points to `track_count` readable
/// `MoqTrackInfo` whose strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn moq_publish_catalog(
    publisher: *mut MoqPublisher,
    tracks: *const MoqTrackInfo,
    track_count: usize,
    format: MoqCatalogFormat,
) -> MoqResult {
    enter("moq_publish_catalog", || {
        let publisher = lookup(&PUBLISHERS, publisher)?;
        let format = match format {
            MOQ_CATALOG_FORMAT_SEED => CatalogFormat::Seed,
            MOQ_CATALOG_FORMAT_HANG => CatalogFormat::Hang,
            other => {
                return Err(Error::invalid_argument(format!(
                    "format {other} is not MOQ_CATALOG_FORMAT_SEED (0) or MOQ_CATALOG_FORMAT_HANG (1)"
                )))
            }
        };
        if track_count > MAX_CATALOG_TRACKS {
            return Err(Error::invalid_argument(format!(
                "track_count {track_count} is above the maximum of {MAX_CATALOG_TRACKS}"
            )));
        }
        if tracks.is_null() && track_count > 0 {
            return Err(Error::invalid_argument(format!(
                "tracks is NULL but track_count is {track_count}"
            )));
        }
        if publisher.default_mode() != DeliveryMode::Stream {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "a catalog needs a stream-mode publisher (catalogs must arrive reliably)",
            ));
        }
        let mut entries = Vec::with_capacity(track_count);
        for index in 0..track_count {
            // SAFETY: `tracks` points to `track_count` readable entries per the contract.
            let track = unsafe { tracks.add(index).read_unaligned() };
            let field = |name: &str| format!("tracks[{index}].{name}");
            // SAFETY: the string fields are NULL or NUL-terminated per the contract.
            let name = unsafe { str_arg(&field("name"), track.name, MOQ_MAX_NAME_LEN) }?;
            // SAFETY: as above.
            let codec = unsafe { opt_str_arg(&field("codec"), track.codec, MOQ_MAX_NAME_LEN) }?;
            // SAFETY: as above.
            let mime = unsafe { opt_str_arg(&field("mime_type"), track.mime_type, MOQ_MAX_NAME_LEN) }?;
            // SAFETY: as above.
            let language = unsafe { opt_str_arg(&field("language"), track.language, MOQ_MAX_NAME_LEN) }?;
            entries.push(TrackEntry {
                name: name.to_string(),
                codec: codec.map(str::to_string),
                mime_type: mime.map(str::to_string),
                width: track.width,
                height: track.height,
                bitrate: track.bitrate,
                sample_rate: track.sample_rate,
                language: language.map(str::to_string),
            });
        }
        let json = catalog::serialize(&entries, format)?;
        publisher.publish(json.as_bytes(), DeliveryMode::Stream)?;
        Ok(ok())
    })
}
