//! The race test's callbacks: they check what they receive and call back into the API.

use crate::common::*;
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::Ordering::Relaxed;

use crate::ops::*;
use crate::world::*;

// ── Callbacks ───────────────────────────────────────────────────────────────────────────────

/// Checks one delivered object against the subscription's publisher and last sequence.
pub(crate) fn check_object(data: &[u8], publisher: u32, ordered: bool, last: &mut u64, what: &str) {
    let n = &world().n;
    n.delivered.fetch_add(1, Relaxed);
    match verify(data) {
        Err(err) => fail(format!("{what}: corrupt object: {err}")),
        Ok((from, _)) if from != publisher => {
            fail(format!("{what}: object of publisher {from} on {publisher}'s track"))
        }
        Ok((_, seq)) => {
            n.verified.fetch_add(1, Relaxed);
            if ordered && *last != NONE && seq <= *last {
                fail(format!(
                    "{what} (publisher {publisher}): sequence {seq} after {}",
                    *last
                ));
            } else if ordered && *last != NONE && seq > *last + 1 {
                n.gaps.fetch_add(1, Relaxed);
            }
            *last = seq;
        }
    }
}

pub(crate) unsafe extern "C" fn on_data(user_data: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: `user_data` is the `SubCtx` registered with this callback; it outlives the
    // subscription (freed only after the destroy returned, or kept in the graveyard).
    let ctx = unsafe { &*(user_data as *const SubCtx) };
    // SAFETY: the library passes `len` readable bytes.
    on_payload(ctx, unsafe { bytes(data, len) });
}

pub(crate) unsafe extern "C" fn on_object(
    user_data: *mut c_void,
    info: *const MoqObjectInfo,
    data: *const u8,
    len: usize,
) {
    // SAFETY: as in `on_data`.
    let ctx = unsafe { &*(user_data as *const SubCtx) };
    // SAFETY: `info` is valid during the call.
    let mode = unsafe { info.as_ref() }.map(|info| info.delivery_mode);
    if mode.is_none() || (ctx.ordered && mode != Some(MOQ_DELIVERY_STREAM)) {
        fail(format!("on_object: info {mode:?} on a stream track"));
    }
    // SAFETY: the library passes `len` readable bytes.
    on_payload(ctx, unsafe { bytes(data, len) });
}

pub(crate) fn on_payload(ctx: &SubCtx, data: &[u8]) {
    world().n.callbacks.fetch_add(1, Relaxed);
    let mut last = ctx.last.load(Relaxed);
    check_object(data, ctx.publisher, ctx.ordered, &mut last, "callback");
    ctx.last.store(last, Relaxed);
    if rand(40) == 0 {
        act_from_callback(ctx);
    }
}

pub(crate) unsafe extern "C" fn on_status(
    _: *mut c_void,
    status: MoqSubscriptionStatus,
    _: u32,
    message: *const c_char,
) {
    let n = &world().n;
    n.callbacks.fetch_add(1, Relaxed);
    n.statuses.fetch_add(1, Relaxed);
    if message.is_null() || !(MOQ_SUBSCRIPTION_SUBSCRIBED..=MOQ_SUBSCRIPTION_ERROR).contains(&status) {
        fail(format!("on_status: status {status}, message {message:p}"));
    }
}

/// Catalog `version` of publisher `p` lists `version % 4 + 1` tracks named `p{p}v{version}i{i}`.
pub(crate) fn catalog_tracks(publisher: u32, version: u64) -> Vec<CString> {
    (0..version % 4 + 1)
        .map(|i| cstr(&format!("p{publisher}v{version}i{i}")))
        .collect()
}

/// Checks a delivered catalog; returns its version.
///
/// # Safety
/// `tracks` points to `count` valid `MoqTrackInfo`s when `count` > 0.
pub(crate) unsafe fn check_catalog(publisher: u32, tracks: *const MoqTrackInfo, count: usize, last: &mut u64) {
    world().n.catalogs.fetch_add(1, Relaxed);
    // SAFETY: forwarded from the caller.
    let tracks = if count == 0 {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(tracks, count) }
    };
    // SAFETY: `name` is never NULL and NUL-terminated (header contract).
    let names: Vec<String> = tracks.iter().map(|t| text(t.name)).collect();
    let version = names
        .first()
        .and_then(|n| n.split(['v', 'i']).nth(1))
        .and_then(|v| v.parse::<u64>().ok());
    let expected = version.map(|v| catalog_tracks(publisher, v));
    let ok = expected.as_ref().is_some_and(|e| {
        e.iter()
            .map(|c| c.to_str().unwrap())
            .eq(names.iter().map(String::as_str))
    });
    match version {
        Some(v) if ok && (*last == NONE || v > *last) => *last = v,
        _ => fail(format!(
            "catalog of publisher {publisher} after version {last}: {names:?}"
        )),
    }
}

pub(crate) unsafe extern "C" fn on_catalog(user_data: *mut c_void, tracks: *const MoqTrackInfo, count: usize) {
    // SAFETY: as in `on_data`.
    let ctx = unsafe { &*(user_data as *const SubCtx) };
    world().n.callbacks.fetch_add(1, Relaxed);
    let mut last = ctx.last.load(Relaxed);
    // SAFETY: the library passes `count` valid tracks.
    unsafe { check_catalog(ctx.publisher, tracks, count, &mut last) };
    ctx.last.store(last, Relaxed);
    if rand(8) == 0 {
        act_from_callback(ctx);
    }
}

pub(crate) unsafe extern "C" fn on_state(_: *mut c_void, state: MoqConnectionState) {
    let n = &world().n;
    n.callbacks.fetch_add(1, Relaxed);
    n.states.fetch_add(1, Relaxed);
    if rand(4) == 0 && state == MoqConnectionState::MOQ_STATE_CONNECTED {
        op_poll(); // poll from a connection callback
    }
}

pub(crate) unsafe extern "C" fn on_announce(_: *mut c_void, namespace: *const c_char, _: bool) {
    world().n.callbacks.fetch_add(1, Relaxed);
    world().n.announces.fetch_add(1, Relaxed);
    if !text(namespace).starts_with("race") {
        fail(format!("announcement outside the prefix: {}", text(namespace)));
    }
}

pub(crate) unsafe extern "C" fn on_track(_: *mut c_void, namespace: *const c_char, track: *const c_char) {
    world().n.callbacks.fetch_add(1, Relaxed);
    world().n.announces.fetch_add(1, Relaxed);
    let _ = (text(namespace), text(track));
}

pub(crate) unsafe extern "C" fn on_log(_: *mut c_void, _: MoqLogLevel, target: *const c_char, message: *const c_char) {
    world().n.logs.fetch_add(1, Relaxed);
    let _ = (text(target), text(message));
}

/// What a callback does with the API now and then.
pub(crate) fn act_from_callback(ctx: &SubCtx) {
    world().n.callback_actions.fetch_add(1, Relaxed);
    let own = ctx.handle.load(Relaxed);
    let w = world();
    let choice = rand(12);
    let began = now_ms(w);
    w.n.callback_call.store(choice as u64 + 1, Relaxed);
    w.n.callback_call_at.store(began, Relaxed);
    act(choice, own);
    let took = now_ms(w) - began;
    w.n.callback_call.store(0, Relaxed);
    if took > w.n.callback_call_max.fetch_max(took, Relaxed) {
        w.n.callback_call_max_kind.store(choice as u64, Relaxed);
    }
}

/// What `act_from_callback`'s choice `choice` means, for messages.
pub(crate) const CALLBACK_CALLS: [&str; 12] = [
    "publish",
    "publish",
    "publish",
    "unsubscribe own",
    "destroy own subscriber",
    "poll",
    "moq_subscribe_ex",
    "stats",
    "blocking moq_subscribe",
    "destroy client",
    "destroy publisher",
    "stale handle",
];

fn act(choice: usize, own: usize) {
    match choice {
        0..=2 => op_publish(),
        3 if own != 0 => record_result("cb unsubscribe own", moq_unsubscribe(own as *mut MoqSubscriber)).ignore(),
        4 if own != 0 => destroy_subscriber(Some(own)),
        5 => op_poll(),
        6 => op_subscribe_ex(rand(2) == 0),
        7 => op_stats(),
        8 => op_subscribe_blocking(),
        9 if rand(4) == 0 => op_destroy_client(),
        10 => op_destroy_publisher(),
        _ => op_stale(),
    }
}

pub(crate) trait Ignore {
    fn ignore(self);
}
impl Ignore for MoqResultCode {
    fn ignore(self) {}
}
