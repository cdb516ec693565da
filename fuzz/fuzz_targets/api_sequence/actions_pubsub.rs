//! Publisher and subscriber actions that are more than one call: creation (every variant of
//! `moq_create_publisher*` and of the subscribe functions), catalogs.

use crate::action::*;
use crate::args::*;
use crate::callbacks::*;
use crate::common::*;
use crate::exec::*;
use crate::inputs::*;
use crate::slots::{kill, SlotKind};
use crate::world::*;
use moq_ffi::ffi::*;

/// `moq_create_publisher`, `_ex` (delivery mode) or `_opts` (NULL or fuzzed options).
pub fn create_publisher(client: Sel, ns: &Str, track: &Str, how: &PubHow) {
    if !creation_allowed(1, MAX_PUBLISHERS) {
        return;
    }
    let (ns, track) = (arg(ns), arg(track));
    let opts = match how {
        PubHow::Opts(opts) => opts.as_ref().map(pub_opts_block),
        _ => None,
    };
    let opts = opt_ptr::<MoqPublisherOptions>(&opts);
    let func = match how {
        PubHow::Plain => "moq_create_publisher",
        PubHow::Ex(_) => "moq_create_publisher_ex",
        PubHow::Opts(_) => "moq_create_publisher_opts",
    };
    // SAFETY: strings NUL-terminated or NULL; options NULL or `struct_size` readable bytes.
    let (_, publisher) = create(func, client, |client| unsafe {
        match how {
            PubHow::Plain => moq_create_publisher(client, ns.ptr(), track.ptr()),
            PubHow::Ex(mode) => moq_create_publisher_ex(client, ns.ptr(), track.ptr(), *mode),
            PubHow::Opts(_) => moq_create_publisher_opts(client, ns.ptr(), track.ptr(), opts),
        }
    });
    if !publisher.is_null() {
        with_world(|world| world.publishers.push(publisher as usize));
    }
}

/// `moq_publish_catalog` with the decoded tracks, or NULL with a fuzzed count.
pub fn publish_catalog(publisher: Sel, tracks: &[Track], null_count: Option<usize>, format: u32) {
    let (block, _strings) = track_infos(tracks);
    let (ptr, count) = match null_count {
        Some(count) => (std::ptr::null(), count),
        None if tracks.is_empty() => (std::ptr::null(), 0),
        None => (block.ptr().cast_const().cast::<MoqTrackInfo>(), tracks.len()),
    };
    // SAFETY: NULL or `count` readable entries whose strings are ours.
    call("moq_publish_catalog", publisher, |publisher| unsafe {
        moq_publish_catalog(publisher, ptr, count, format)
    });
}

/// Every subscribe function: `moq_subscribe`, `_ex`, `moq_subscribe_catalog`, `_ex` and
/// `moq_fetch_group`, with the callbacks the input asked for (one registration for all of them).
pub fn subscribe(client: Sel, ns: &Str, track: &Str, how: &SubHow) {
    if !creation_allowed(2, MAX_SUBSCRIBERS) {
        return;
    }
    let (ns, track) = (arg(ns), arg(track));
    let wants_callbacks = how.first || how.status;
    let ud = register_if(wants_callbacks, SlotKind::Subscription);
    if wants_callbacks && ud.is_none() {
        return;
    }
    let user_data = ud_ptr(ud);
    let opts = how.opts.as_ref().map(sub_opts_block);
    let opts = opt_ptr::<MoqSubscribeOptions>(&opts);
    let first = how.first && ud.is_some();
    let status: MoqStatusCallback = (how.status && ud.is_some()).then_some(on_status as _);
    let func = match how.api {
        SubApi::Plain => "moq_subscribe",
        SubApi::Ex => "moq_subscribe_ex",
        SubApi::Catalog => "moq_subscribe_catalog",
        SubApi::CatalogEx => "moq_subscribe_catalog_ex",
        SubApi::Fetch(_) => "moq_fetch_group",
    };
    let (ns, track) = (ns.ptr(), track.ptr());
    // SAFETY: strings ours; options NULL or `struct_size` readable bytes; the callbacks are safe
    // from any thread and never dereference user_data.
    let (handle, subscriber) = create(func, client, |client| unsafe {
        match how.api {
            SubApi::Plain => moq_subscribe(client, ns, track, first.then_some(on_data as _), user_data),
            SubApi::Ex => moq_subscribe_ex(
                client,
                ns,
                track,
                opts,
                first.then_some(on_object as _),
                status,
                user_data,
            ),
            SubApi::Catalog => moq_subscribe_catalog(client, ns, track, first.then_some(on_catalog as _), user_data),
            SubApi::CatalogEx => moq_subscribe_catalog_ex(
                client,
                ns,
                track,
                opts,
                first.then_some(on_catalog as _),
                status,
                user_data,
            ),
            SubApi::Fetch(group) => moq_fetch_group(
                client,
                ns,
                track,
                group,
                opts,
                first.then_some(on_object as _),
                status,
                user_data,
            ),
        }
    });
    if subscriber.is_null() {
        // No subscription: its callbacks must never run.
        kill(ud);
    } else {
        with_world(|world| {
            world.subscribers.push(SubRec {
                handle: subscriber as usize,
                client: handle,
                ud,
            })
        });
    }
}

/// `moq_catalog_json`: the string is readable, and ours to free.
pub fn catalog_json(subscriber: Sel) {
    let (_, json) = create("moq_catalog_json", subscriber, |s: *mut MoqSubscriber| {
        moq_catalog_json(s)
    });
    if !json.is_null() {
        // SAFETY: issued to us; freed once below.
        std::hint::black_box(unsafe { read_c("moq_catalog_json", json) });
        moq_free_str(json);
    }
}
