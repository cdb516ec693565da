//! Catalog discovery through the C API against the embedded relay: `moq_publish_catalog` in both
//! formats, `moq_subscribe_catalog` / `moq_subscribe_catalog_ex` in callback and poll mode,
//! `moq_catalog_json`, and the argument errors of these functions.
//!
//! Namespace discovery (`moq_subscribe_announces*`) is in `announce.rs`; malformed catalogs
//! arriving over the wire in `catalog_e2e.rs`; parser-level fuzzing in `catalog_parse.rs`.
//! Every test has its own relay on a loopback port chosen by the kernel, so the tests run in
//! parallel; every wait is bounded.

mod common;
use common::*;
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bound for anything that should arrive.
const WAIT: Duration = Duration::from_secs(10);
/// How long to watch for something that must not arrive.
const SETTLE: Duration = Duration::from_millis(300);
const CATALOG_TRACK: &str = "catalog.json";

/// An owned copy of a `MoqTrackInfo`: `None` for NULL strings.
#[derive(Clone, Debug, Default, PartialEq)]
struct Track {
    name: String,
    codec: Option<String>,
    mime_type: Option<String>,
    width: u32,
    height: u32,
    bitrate: u32,
    sample_rate: u32,
    language: Option<String>,
}

fn some(text: &str) -> Option<String> {
    Some(text.to_string())
}

fn named(name: &str) -> Track {
    Track {
        name: name.to_string(),
        ..Track::default()
    }
}

fn optional_text(ptr: *const c_char) -> Option<String> {
    // SAFETY: NULL or NUL-terminated per the MoqTrackInfo contract, valid during the callback.
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

/// Copies the tracks a callback or event points to.
///
/// # Safety
/// `tracks` points to `count` valid `MoqTrackInfo` (or `count` is 0).
unsafe fn copy_tracks(tracks: *const MoqTrackInfo, count: usize) -> Vec<Track> {
    if count == 0 {
        return Vec::new();
    }
    assert!(!tracks.is_null(), "NULL tracks with a count of {count}");
    // SAFETY: per this function's contract.
    let infos = unsafe { std::slice::from_raw_parts(tracks, count) };
    infos
        .iter()
        .map(|info| Track {
            name: optional_text(info.name).expect("MoqTrackInfo.name is never NULL"),
            codec: optional_text(info.codec),
            mime_type: optional_text(info.mime_type),
            width: info.width,
            height: info.height,
            bitrate: info.bitrate,
            sample_rate: info.sample_rate,
            language: optional_text(info.language),
        })
        .collect()
}

/// `tracks` as C structs, with the strings they point into.
struct CTrackList {
    _strings: Vec<CString>,
    infos: Vec<MoqTrackInfo>,
}

fn c_track_list(tracks: &[Track]) -> CTrackList {
    let mut strings = Vec::new();
    let mut keep = |text: &Option<String>| match text {
        Some(text) => {
            let owned = cstr(text);
            let ptr = owned.as_ptr();
            strings.push(owned);
            ptr
        }
        None => std::ptr::null(),
    };
    let infos = tracks
        .iter()
        .map(|track| MoqTrackInfo {
            name: keep(&Some(track.name.clone())),
            codec: keep(&track.codec),
            mime_type: keep(&track.mime_type),
            width: track.width,
            height: track.height,
            bitrate: track.bitrate,
            sample_rate: track.sample_rate,
            language: keep(&track.language),
        })
        .collect();
    CTrackList {
        _strings: strings,
        infos,
    }
}

fn publish_catalog(
    publisher: *mut MoqPublisher,
    tracks: &[Track],
    format: MoqCatalogFormat,
) -> (MoqResultCode, String) {
    let list = c_track_list(tracks);
    // SAFETY: `list.infos` holds `tracks.len()` entries whose strings live in `list`.
    take(unsafe { moq_publish_catalog(publisher, list.infos.as_ptr(), list.infos.len(), format) })
}

/// A subscription status report.
#[derive(Clone, Debug)]
struct Status {
    status: MoqSubscriptionStatus,
    message: String,
}

/// What a catalog subscription's callbacks received.
struct CatalogWatch {
    catalogs: Arc<Recorder<Vec<Track>>>,
    statuses: Arc<Recorder<Status>>,
}

impl CatalogWatch {
    fn new() -> Arc<Self> {
        kept(Arc::new(Self {
            catalogs: Recorder::new(),
            statuses: Recorder::new(),
        }))
    }

    /// Waits for the `n`th catalog (1-based) and returns it.
    #[track_caller]
    fn expect_catalog(&self, n: usize) -> Vec<Track> {
        let arrived = self.catalogs.wait_until(WAIT, |catalogs| catalogs.len() >= n);
        assert!(
            arrived,
            "catalog #{n} did not arrive within {WAIT:?}; statuses: {:?}",
            self.statuses.snapshot()
        );
        self.catalogs.snapshot()[n - 1].clone()
    }
}

unsafe extern "C" fn on_catalog(user_data: *mut c_void, tracks: *const MoqTrackInfo, track_count: usize) {
    // SAFETY: `user_data` is a kept `CatalogWatch`; `tracks` holds `track_count` entries.
    let watch = unsafe { &*(user_data as *const CatalogWatch) };
    watch.catalogs.push(unsafe { copy_tracks(tracks, track_count) });
}

unsafe extern "C" fn on_status(
    user_data: *mut c_void,
    status: MoqSubscriptionStatus,
    _code: u32,
    message: *const c_char,
) {
    // SAFETY: `user_data` is a kept `CatalogWatch`.
    let watch = unsafe { &*(user_data as *const CatalogWatch) };
    let message = optional_text(message).expect("a status message is never NULL");
    watch.statuses.push(Status { status, message });
}

fn watch_ptr(watch: &Arc<CatalogWatch>) -> *mut c_void {
    Arc::as_ptr(watch) as *mut c_void
}

/// `moq_subscribe_catalog` (no status callback).
fn subscribe_catalog(
    client: *mut MoqClient,
    namespace: &str,
    track: &str,
    watch: &Arc<CatalogWatch>,
) -> *mut MoqSubscriber {
    let (namespace, track) = (cstr(namespace), cstr(track));
    // SAFETY: live NUL-terminated names; matching callback; `watch` is kept alive.
    let subscriber = unsafe {
        moq_subscribe_catalog(
            client,
            namespace.as_ptr(),
            track.as_ptr(),
            Some(on_catalog),
            watch_ptr(watch),
        )
    };
    assert!(!subscriber.is_null(), "moq_subscribe_catalog: {}", last_error());
    subscriber
}

/// `moq_subscribe_catalog_ex` with the default options and both callbacks.
fn subscribe_catalog_ex(
    client: *mut MoqClient,
    namespace: &str,
    track: &str,
    watch: &Arc<CatalogWatch>,
) -> *mut MoqSubscriber {
    let (namespace, track) = (cstr(namespace), cstr(track));
    // SAFETY: live NUL-terminated names; NULL options; matching callbacks; `watch` is kept alive.
    let subscriber = unsafe {
        moq_subscribe_catalog_ex(
            client,
            namespace.as_ptr(),
            track.as_ptr(),
            std::ptr::null(),
            Some(on_catalog),
            Some(on_status),
            watch_ptr(watch),
        )
    };
    assert!(!subscriber.is_null(), "moq_subscribe_catalog_ex: {}", last_error());
    subscriber
}

/// `moq_catalog_json`, freed with `moq_free_str`; `None` for NULL.
fn catalog_json(subscriber: *mut MoqSubscriber) -> Option<String> {
    let json = moq_catalog_json(subscriber);
    if json.is_null() {
        return None;
    }
    let copy = text(json);
    moq_free_str(json);
    Some(copy)
}

fn seed_tracks() -> Vec<Track> {
    vec![
        Track {
            codec: some("avc1.64001f"),
            mime_type: some("video/mp4"),
            width: 1920,
            height: 1080,
            bitrate: 5_000_000,
            ..named("video")
        },
        Track {
            codec: some("opus"),
            mime_type: some("audio/ogg"),
            sample_rate: 48_000,
            bitrate: 128_000,
            language: some("en"),
            ..named("audio")
        },
        named("telemetry"),
    ]
}

// ── Round trips ─────────────────────────────────────────────────────────────────────────────

#[test]
fn seed_catalog_round_trip_and_update() {
    let relay = TestRelay::start();
    let publisher_client = connected_client(&relay);
    let subscriber_client = connected_client(&relay);
    let catalog_publisher = publisher(publisher_client, "cat/seed", CATALOG_TRACK);
    let first = seed_tracks();
    let (code, message) = publish_catalog(catalog_publisher, &first, MOQ_CATALOG_FORMAT_SEED);
    assert_eq!(code, MoqResultCode::MOQ_OK, "{message}");

    let watch = CatalogWatch::new();
    let subscriber = subscribe_catalog(subscriber_client, "cat/seed", CATALOG_TRACK, &watch);
    assert_eq!(
        watch.expect_catalog(1),
        first,
        "the seed format keeps every field and the order"
    );
    let json = catalog_json(subscriber).expect("moq_catalog_json after a catalog arrived");
    assert!(json.contains("\"version\":1"), "{json}");

    let mut second = first.clone();
    second.remove(1);
    second.push(Track {
        mime_type: some("text/vtt"),
        language: some("de"),
        ..named("subtitles")
    });
    let (code, message) = publish_catalog(catalog_publisher, &second, MOQ_CATALOG_FORMAT_SEED);
    assert_eq!(code, MoqResultCode::MOQ_OK, "{message}");
    assert_eq!(watch.expect_catalog(2), second);
    let json = catalog_json(subscriber).expect("moq_catalog_json after the update");
    assert!(json.contains("subtitles") && !json.contains("\"audio\""), "{json}");
    std::thread::sleep(SETTLE);
    assert_eq!(watch.catalogs.snapshot().len(), 2, "one callback per published catalog");

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(catalog_publisher);
    moq_client_destroy(subscriber_client);
    moq_client_destroy(publisher_client);
}

#[test]
fn hang_catalog_round_trip_keeps_what_hang_carries() {
    let relay = TestRelay::start();
    let publisher_client = connected_client(&relay);
    let subscriber_client = connected_client(&relay);
    let catalog_publisher = publisher(publisher_client, "cat/hang", CATALOG_TRACK);
    let video_hd = Track {
        codec: some("avc1.64001f"),
        mime_type: some("video/mp4"),
        width: 1280,
        height: 720,
        bitrate: 6_000_000,
        language: some("en"),
        ..named("video/hd")
    };
    let video_sd = Track {
        codec: some("avc1.42c01e"),
        width: 640,
        height: 360,
        ..named("video/sd")
    };
    let audio = Track {
        codec: some("opus"),
        sample_rate: 48_000,
        bitrate: 128_000,
        language: some("de"),
        ..named("audio/main")
    };
    let subtitles = Track {
        mime_type: some("text/vtt"),
        language: some("en"),
        ..named("subs.en")
    };
    let chat = Track {
        mime_type: some("application/json"),
        bitrate: 1000,
        ..named("chat")
    };
    let thumbnails = Track {
        mime_type: some("image/jpeg"),
        bitrate: 8000,
        language: some("fr"),
        ..named("thumbs")
    };
    // Deliberately not in hang's order.
    let published = [&thumbnails, &chat, &video_sd, &subtitles, &audio, &video_hd].map(Track::clone);
    let (code, message) = publish_catalog(catalog_publisher, &published, MOQ_CATALOG_FORMAT_HANG);
    assert_eq!(code, MoqResultCode::MOQ_OK, "{message}");

    let watch = CatalogWatch::new();
    let subscriber = subscribe_catalog(subscriber_client, "cat/hang", CATALOG_TRACK, &watch);
    // Documented mapping: video, audio, text, json, binary, each sorted by name; media mime
    // derived from the codec family; language only on text; numbers of the track's kind.
    let expected = vec![
        Track {
            mime_type: some("video/h264"),
            language: None,
            ..video_hd
        },
        Track {
            mime_type: some("video/h264"),
            ..video_sd
        },
        Track {
            mime_type: some("audio/opus"),
            language: None,
            ..audio
        },
        subtitles,
        chat,
        Track {
            language: None,
            ..thumbnails
        },
    ];
    assert_eq!(watch.expect_catalog(1), expected);
    let json = catalog_json(subscriber).expect("moq_catalog_json after a catalog arrived");
    assert!(
        json.contains("\"renditions\"") && !json.contains("\"version\""),
        "{json}"
    );

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(catalog_publisher);
    moq_client_destroy(subscriber_client);
    moq_client_destroy(publisher_client);
}

// ── Poll mode ───────────────────────────────────────────────────────────────────────────────

/// Polls `client` until a CATALOG event of `subscriber` arrives; returns its tracks and JSON.
fn poll_catalog(client: *mut MoqClient, subscriber: *mut MoqSubscriber) -> Option<(Vec<Track>, String)> {
    // SAFETY: MoqEvent holds integers, bools, raw pointers and a C enum whose 0 is a valid
    // value; all-zero is a valid (empty) event.
    let mut events: Vec<MoqEvent> = (0..16).map(|_| unsafe { std::mem::zeroed() }).collect();
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        // SAFETY: `events` has room for `events.len()` events.
        let count = unsafe { moq_poll(client, events.as_mut_ptr(), events.len(), 200) };
        for event in &events[..count] {
            if event.kind == MOQ_EVENT_CATALOG && event.subscriber == subscriber {
                // SAFETY: the event's pointers are valid until the next moq_poll on `client`.
                let tracks = unsafe { copy_tracks(event.tracks, event.track_count) };
                return Some((tracks, text(event.catalog_json)));
            }
            if event.kind == MOQ_EVENT_STATUS {
                assert_eq!(
                    event.status,
                    MOQ_SUBSCRIPTION_SUBSCRIBED,
                    "unexpected status: {}",
                    text(event.message)
                );
            }
        }
    }
    None
}

#[test]
fn catalog_subscription_in_poll_mode_delivers_catalog_events() {
    let relay = TestRelay::start();
    let publisher_client = connected_client(&relay);
    let subscriber_client = connected_client(&relay);
    let catalog_publisher = publisher(publisher_client, "cat/poll", CATALOG_TRACK);
    let first = seed_tracks();
    assert_eq!(
        publish_catalog(catalog_publisher, &first, MOQ_CATALOG_FORMAT_SEED).0,
        MoqResultCode::MOQ_OK
    );

    let mut options = moq_subscribe_options_default();
    options.delivery = MOQ_DELIVER_POLL;
    options.start = MOQ_START_LATEST_GROUP;
    let (namespace, track) = (cstr("cat/poll"), cstr(CATALOG_TRACK));
    // SAFETY: live names and options; NULL callbacks as poll mode requires.
    let subscriber = unsafe {
        moq_subscribe_catalog_ex(
            subscriber_client,
            namespace.as_ptr(),
            track.as_ptr(),
            &options,
            None,
            None,
            std::ptr::null_mut(),
        )
    };
    assert!(
        !subscriber.is_null(),
        "poll-mode catalog subscription: {}",
        last_error()
    );

    let (tracks, json) = poll_catalog(subscriber_client, subscriber).expect("no MOQ_EVENT_CATALOG within 10 s");
    assert_eq!(tracks, first);
    assert!(json.contains("\"version\":1"), "{json}");

    let second = vec![named("only")];
    assert_eq!(
        publish_catalog(catalog_publisher, &second, MOQ_CATALOG_FORMAT_SEED).0,
        MoqResultCode::MOQ_OK
    );
    let (tracks, json) = poll_catalog(subscriber_client, subscriber).expect("no second MOQ_EVENT_CATALOG");
    assert_eq!(tracks, second);
    assert!(json.contains("\"only\""), "{json}");

    moq_subscriber_destroy(subscriber);
    moq_publisher_destroy(catalog_publisher);
    moq_client_destroy(subscriber_client);
    moq_client_destroy(publisher_client);
}

// ── Argument errors ─────────────────────────────────────────────────────────────────────────

#[test]
fn catalog_argument_errors_have_the_right_codes() {
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let catalog_publisher = publisher(client, "cat/args", CATALOG_TRACK);
    let (namespace, track) = (cstr("cat/args"), cstr(CATALOG_TRACK));

    // SAFETY: live names; a NULL callback is what is being checked.
    let subscriber =
        unsafe { moq_subscribe_catalog(client, namespace.as_ptr(), track.as_ptr(), None, std::ptr::null_mut()) };
    assert!(subscriber.is_null());
    assert!(last_error().contains("callback is NULL"), "{}", last_error());
    let mut poll_options = moq_subscribe_options_default();
    poll_options.delivery = MOQ_DELIVER_POLL;
    // SAFETY: live names and options; poll mode with a callback is what is being checked.
    let subscriber = unsafe {
        moq_subscribe_catalog_ex(
            client,
            namespace.as_ptr(),
            track.as_ptr(),
            &poll_options,
            Some(on_catalog),
            None,
            std::ptr::null_mut(),
        )
    };
    assert!(subscriber.is_null());
    assert!(last_error().contains("MOQ_DELIVER_POLL"), "{}", last_error());

    use MoqResultCode::*;
    let check = |what: &str, (code, message): (MoqResultCode, String), want: MoqResultCode, mention: &str| {
        assert_eq!(code, want, "{what}: {message}");
        assert!(message.contains(mention), "{what}: {message:?} lacks {mention:?}");
    };
    // SAFETY: NULL tracks with a non-zero count is rejected before anything is read.
    let null_tracks =
        take(unsafe { moq_publish_catalog(catalog_publisher, std::ptr::null(), 2, MOQ_CATALOG_FORMAT_SEED) });
    check("NULL tracks", null_tracks, MOQ_ERROR_INVALID_ARGUMENT, "tracks is NULL");
    let too_many: Vec<Track> = (0..=MOQ_MAX_CATALOG_TRACKS).map(|i| named(&format!("t{i}"))).collect();
    let result = publish_catalog(catalog_publisher, &too_many, MOQ_CATALOG_FORMAT_SEED);
    check("1025 tracks", result, MOQ_ERROR_INVALID_ARGUMENT, "1025");
    let mut list = c_track_list(&[named("a"), named("b")]);
    list.infos[1].name = std::ptr::null();
    // SAFETY: two entries whose strings live in `list` (one name NULL, which is checked).
    let null_name =
        take(unsafe { moq_publish_catalog(catalog_publisher, list.infos.as_ptr(), 2, MOQ_CATALOG_FORMAT_SEED) });
    check("NULL name", null_name, MOQ_ERROR_INVALID_ARGUMENT, "tracks[1].name");
    let result = publish_catalog(catalog_publisher, &[named("")], MOQ_CATALOG_FORMAT_SEED);
    check("empty name", result, MOQ_ERROR_INVALID_ARGUMENT, "name is empty");
    let result = publish_catalog(
        catalog_publisher,
        &[named("a"), named("b"), named("a")],
        MOQ_CATALOG_FORMAT_SEED,
    );
    check("duplicate names", result, MOQ_ERROR_INVALID_ARGUMENT, "already used");
    let result = publish_catalog(catalog_publisher, &[named("a")], 7);
    check("unknown format", result, MOQ_ERROR_INVALID_ARGUMENT, "format 7");
    let codeless_video = Track {
        width: 640,
        ..named("v")
    };
    let result = publish_catalog(catalog_publisher, &[codeless_video], MOQ_CATALOG_FORMAT_HANG);
    check(
        "hang video without codec",
        result,
        MOQ_ERROR_INVALID_ARGUMENT,
        "requires one",
    );
    let bad_utf8 = CString::new(vec![b'a', 0xff]).unwrap();
    let mut list = c_track_list(&[named("a")]);
    list.infos[0].codec = bad_utf8.as_ptr();
    // SAFETY: one entry whose strings are live (the codec is not UTF-8, which is checked).
    let not_utf8 =
        take(unsafe { moq_publish_catalog(catalog_publisher, list.infos.as_ptr(), 1, MOQ_CATALOG_FORMAT_SEED) });
    check(
        "non-UTF-8 codec",
        not_utf8,
        MOQ_ERROR_INVALID_ARGUMENT,
        "tracks[0].codec",
    );
    let result = publish_catalog(std::ptr::null_mut(), &[named("a")], MOQ_CATALOG_FORMAT_SEED);
    check("NULL publisher", result, MOQ_ERROR_INVALID_HANDLE, "");

    // SAFETY: live publisher; NULL out-pointer is allowed.
    assert_ok(unsafe { moq_publisher_begin_group(catalog_publisher, std::ptr::null_mut()) });
    let result = publish_catalog(catalog_publisher, &[named("a")], MOQ_CATALOG_FORMAT_SEED);
    check("open group", result, MOQ_ERROR_INVALID_STATE, "");
    assert_ok(moq_publisher_end_group(catalog_publisher));
    let datagram_track = cstr("catalog-datagram.json");
    // SAFETY: live NUL-terminated names.
    let datagram_publisher = unsafe {
        moq_create_publisher_ex(
            client,
            namespace.as_ptr(),
            datagram_track.as_ptr(),
            MOQ_DELIVERY_DATAGRAM,
        )
    };
    assert!(!datagram_publisher.is_null(), "datagram publisher: {}", last_error());
    let result = publish_catalog(datagram_publisher, &[named("a")], MOQ_CATALOG_FORMAT_SEED);
    check("datagram publisher", result, MOQ_ERROR_INVALID_STATE, "stream-mode");
    // An empty catalog is valid.
    // SAFETY: NULL tracks with a count of 0 is allowed.
    assert_ok(unsafe { moq_publish_catalog(catalog_publisher, std::ptr::null(), 0, MOQ_CATALOG_FORMAT_SEED) });

    // moq_catalog_json before any catalog arrived: NULL, NOT_FOUND's message.
    let silent_publisher = publisher(client, "cat/args", "silent.json");
    let watch = CatalogWatch::new();
    let silent = subscribe_catalog_ex(client, "cat/args", "silent.json", &watch);
    assert!(catalog_json(silent).is_none());
    assert!(last_error().contains("no catalog has arrived"), "{}", last_error());
    let live = watch.statuses.wait_until(WAIT, |s| !s.is_empty());
    assert!(live, "no status for the silent catalog subscription");
    let first_status = watch.statuses.snapshot()[0].clone();
    assert_eq!(
        (first_status.status, first_status.message.as_str()),
        (MOQ_SUBSCRIPTION_SUBSCRIBED, ""),
        "{first_status:?}"
    );
    assert!(catalog_json(silent).is_none());
    assert!(catalog_json(std::ptr::null_mut()).is_none());

    moq_subscriber_destroy(silent);
    moq_publisher_destroy(silent_publisher);
    moq_publisher_destroy(datagram_publisher);
    moq_publisher_destroy(catalog_publisher);
    moq_client_destroy(client);
}
