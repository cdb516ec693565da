//! The C callbacks the harness registers, what they check, and the queue of deferred actions
//! they perform on the library's callback thread. `check_events` validates `moq_poll` events
//! with the same checks.

use crate::action::Action;
use crate::common::*;
use crate::exec::exec;
use crate::slots::{check_slot, mark, SlotKind, TERMINAL};
use crate::world::*;
use moq_ffi::ffi::*;
use std::collections::VecDeque;
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_QUEUED: usize = 16;

/// Set while an input is being torn down: callbacks then only validate.
pub static STOP: AtomicBool = AtomicBool::new(false);
/// Callbacks currently performing a queued action.
static IN_ACTION: AtomicUsize = AtomicUsize::new(0);
static QUEUE: Mutex<VecDeque<Action>> = Mutex::new(VecDeque::new());

/// Queues an action for the next callback (`Defer`).
pub fn defer(next: &Action) {
    let mut queue = lock(&QUEUE);
    if queue.len() < MAX_QUEUED {
        queue.push_back(next.clone());
    }
}

pub fn clear_queue() {
    lock(&QUEUE).clear();
}

fn run_queued() {
    if STOP.load(SeqCst) {
        return;
    }
    IN_ACTION.fetch_add(1, SeqCst);
    if !STOP.load(SeqCst) {
        let next = lock(&QUEUE).pop_front();
        if let Some(next) = next {
            exec(&next, true);
        }
    }
    IN_ACTION.fetch_sub(1, SeqCst);
}

/// Stops callbacks from starting queued actions and waits for running ones to return.
pub fn quiesce() {
    STOP.store(true, SeqCst);
    clear_queue();
    let start = Instant::now();
    while IN_ACTION.load(SeqCst) != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "FINDING: a library call made from a callback has not returned for 30 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---------------------------------------------------------------------------------------------
// Argument checks shared by callbacks and poll events.
// ---------------------------------------------------------------------------------------------

/// Reads a library string argument of a callback (ASan checks it is readable).
unsafe fn cb_str(what: &str, ptr: *const c_char) -> String {
    // SAFETY: forwarded.
    unsafe { read_c(what, ptr) }
}

fn touch(data: *const u8, len: usize, what: &str) {
    if len > 0 {
        assert!(!data.is_null(), "INVARIANT: {what}: NULL data with length {len}");
        // SAFETY: the library says `len` bytes are readable during the call.
        let bytes = unsafe { std::slice::from_raw_parts(data, len) };
        std::hint::black_box(bytes.iter().fold(0u8, |a, b| a ^ b));
    }
}

/// Checks an announced namespace: readable and not empty.
///
/// # Safety
/// `ptr` is NULL (reported) or a string the library passed.
unsafe fn check_namespace(ptr: *const c_char, what: &str) {
    // SAFETY: forwarded.
    let ns = unsafe { cb_str(what, ptr) };
    assert!(!ns.is_empty(), "INVARIANT: empty {what}");
}

/// Checks a subscription status; true if it is terminal.
fn check_status(status: u32, code: u32, message: &str, what: &str) -> bool {
    assert!(
        (MOQ_SUBSCRIPTION_SUBSCRIBED..=MOQ_SUBSCRIPTION_ERROR).contains(&status),
        "INVARIANT: {what}: status {status}"
    );
    if status != MOQ_SUBSCRIPTION_ERROR {
        assert_eq!(code, 0, "INVARIANT: {what}: code {code} with status {status}");
    }
    if status == MOQ_SUBSCRIPTION_SUBSCRIBED {
        assert!(
            message.is_empty(),
            "INVARIANT: {what}: SUBSCRIBED with message {message:?}"
        );
    }
    check_no_secret(what, message);
    status != MOQ_SUBSCRIPTION_SUBSCRIBED
}

fn check_tracks(tracks: *const MoqTrackInfo, count: usize, what: &str) {
    assert!(count <= MOQ_MAX_CATALOG_TRACKS, "INVARIANT: {what}: {count} tracks");
    if count == 0 {
        return;
    }
    assert!(!tracks.is_null(), "INVARIANT: {what}: NULL tracks with count {count}");
    for i in 0..count {
        // SAFETY: `count` entries valid during the call.
        let track = unsafe { std::ptr::read(tracks.add(i)) };
        // SAFETY: as above.
        let name = unsafe { cb_str("track name", track.name) };
        assert!(!name.is_empty(), "INVARIANT: {what}: empty track name");
        for ptr in [track.codec, track.mime_type, track.language] {
            if !ptr.is_null() {
                // SAFETY: as above.
                let text = unsafe { cb_str("track string", ptr) };
                assert!(
                    !text.is_empty(),
                    "INVARIANT: {what}: empty optional string (should be NULL)"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The callbacks.
// ---------------------------------------------------------------------------------------------

pub unsafe extern "C" fn on_connection(ud: *mut c_void, state: MoqConnectionState) {
    check_slot(ud, SlotKind::Connection, "connection callback");
    std::hint::black_box(state as u32);
    run_queued();
}

pub unsafe extern "C" fn on_data(ud: *mut c_void, data: *const u8, len: usize) {
    check_slot(ud, SlotKind::Subscription, "data callback");
    touch(data, len, "data callback");
    run_queued();
}

pub unsafe extern "C" fn on_object(ud: *mut c_void, info: *const MoqObjectInfo, data: *const u8, len: usize) {
    check_slot(ud, SlotKind::Subscription, "object callback");
    assert!(!info.is_null(), "INVARIANT: object callback with NULL info");
    // SAFETY: valid during the call.
    let info = unsafe { std::ptr::read(info) };
    assert!(
        info.delivery_mode == MOQ_DELIVERY_STREAM || info.delivery_mode == MOQ_DELIVERY_DATAGRAM,
        "INVARIANT: object delivery_mode {}",
        info.delivery_mode
    );
    touch(data, len, "object callback");
    run_queued();
}

pub unsafe extern "C" fn on_status(ud: *mut c_void, status: u32, code: u32, message: *const c_char) {
    let ud = check_slot(ud, SlotKind::Subscription, "status callback");
    // SAFETY: valid during the call.
    let message = unsafe { cb_str("status message", message) };
    if check_status(status, code, &message, "status callback") {
        mark(ud, TERMINAL);
    }
    run_queued();
}

pub unsafe extern "C" fn on_catalog(ud: *mut c_void, tracks: *const MoqTrackInfo, count: usize) {
    check_slot(ud, SlotKind::Subscription, "catalog callback");
    check_tracks(tracks, count, "catalog callback");
    run_queued();
}

pub unsafe extern "C" fn on_track(ud: *mut c_void, ns: *const c_char, track: *const c_char) {
    check_slot(ud, SlotKind::Announce, "announce (track) callback");
    // SAFETY: valid during the call.
    unsafe { check_namespace(ns, "announced namespace") };
    // SAFETY: as above.
    let track = unsafe { cb_str("announce track_name", track) };
    assert!(
        track.is_empty(),
        "INVARIANT: moq_subscribe_announces track_name is {track:?}, documented as \"\""
    );
    run_queued();
}

pub unsafe extern "C" fn on_announce(ud: *mut c_void, ns: *const c_char, active: bool) {
    check_slot(ud, SlotKind::Announce, "announce callback");
    // SAFETY: valid during the call.
    unsafe { check_namespace(ns, "announced namespace") };
    std::hint::black_box(active);
    run_queued();
}

pub unsafe extern "C" fn on_log(ud: *mut c_void, level: MoqLogLevel, target: *const c_char, message: *const c_char) {
    check_slot(ud, SlotKind::Log, "log callback");
    assert!(
        (MOQ_LOG_ERROR..=MOQ_LOG_TRACE).contains(&level),
        "INVARIANT: log level {level}"
    );
    // SAFETY: valid during the call.
    let target = unsafe { cb_str("log target", target) };
    // SAFETY: as above.
    let message = unsafe { cb_str("log message", message) };
    assert!(!target.is_empty(), "INVARIANT: empty log target");
    assert!(
        message.len() <= 16 * 1024 + 8,
        "INVARIANT: log message of {} bytes",
        message.len()
    );
    check_no_secret("log message", &message);
    run_queued();
}

// ---------------------------------------------------------------------------------------------
// Poll events.
// ---------------------------------------------------------------------------------------------

/// Validates the `count` events `moq_poll` wrote into `events` (room for `max`).
pub fn check_events(client: usize, events: &Block, count: usize, max: usize) {
    assert!(
        count <= max,
        "INVARIANT: moq_poll returned {count} events for room {max}"
    );
    for i in 0..count {
        // SAFETY: the library wrote `count` events into our block.
        let event = unsafe { std::ptr::read_unaligned(events.ptr().cast::<MoqEvent>().add(i)) };
        let sub = event.subscriber as usize;
        match event.kind {
            MOQ_EVENT_OBJECT => {
                assert!(sub != 0, "INVARIANT: OBJECT event without a subscriber");
                touch(event.data, event.data_len, "poll OBJECT");
            }
            MOQ_EVENT_STATUS => {
                assert!(sub != 0, "INVARIANT: STATUS event without a subscriber");
                // SAFETY: valid until the next poll.
                let message = unsafe { read_c("STATUS message", event.message) };
                if check_status(event.status, event.code, &message, "poll STATUS") {
                    let before = with_world(|world| world.poll_terminal.insert(sub, true));
                    assert!(
                        before.is_none(),
                        "FINDING: a second terminal status for poll subscriber {sub:#x}"
                    );
                    continue;
                }
            }
            MOQ_EVENT_CONNECTION => {
                std::hint::black_box(event.connection_state as u32);
            }
            MOQ_EVENT_ANNOUNCE => {
                // SAFETY: valid until the next poll.
                unsafe { check_namespace(event.namespace_str, "announced namespace (poll)") };
            }
            MOQ_EVENT_CATALOG => {
                assert!(sub != 0, "INVARIANT: CATALOG event without a subscriber");
                check_tracks(event.tracks, event.track_count, "poll CATALOG");
                // SAFETY: valid until the next poll.
                std::hint::black_box(unsafe { read_c("CATALOG json", event.catalog_json) });
            }
            other => panic!("INVARIANT: moq_poll event kind {other} on client {client:#x}"),
        }
        if sub != 0 {
            let after_terminal = with_world(|world| world.poll_terminal.get(&sub).copied().unwrap_or(false));
            assert!(
                !after_terminal,
                "FINDING: poll event {} for subscriber {sub:#x} after its terminal status",
                event.kind
            );
        }
    }
}
