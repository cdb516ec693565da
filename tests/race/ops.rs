//! The race test's callbacks and operations: each picks handles from the shared tables.

use crate::common::*;
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use MoqResultCode::*;

use crate::callbacks::*;
use crate::world::*;

// ── Operations ──────────────────────────────────────────────────────────────────────────────

pub(crate) fn op_create_client() {
    if lock(&world().clients).len() >= MAX_CLIENTS {
        return op_destroy_client();
    }
    create_client(false);
}

/// Creates a client, puts it in the table (other threads may destroy it while it connects,
/// unless it is `sticky`: kept until the teardown so publishers and subscribers get time to
/// live) and connects it (blocking or async; a sticky one always blocking).
pub(crate) fn create_client(sticky: bool) {
    let w = world();
    let mut config = config_pinned(&w.fingerprint, 2000 * w.scale);
    config.poll_events = rand(2) == 0;
    let client = record_ptr("moq_client_create_ex", unsafe { moq_client_create_ex(&config) });
    if client.is_null() {
        return;
    }
    w.created[Kind::Client as usize].fetch_add(1, Relaxed);
    let entry = ClientEntry {
        handle: client as usize,
        id: next_id(),
        ctx: Arc::new(0),
        poll: Arc::default(),
        sticky,
    };
    lock(&w.clients).push(entry.clone());
    connect(&entry, sticky);
}

pub(crate) fn connect(entry: &ClientEntry, blocking: bool) {
    let callback: MoqConnectionCallback = if rand(2) == 0 { Some(on_state) } else { None };
    let ud = Arc::as_ptr(&entry.ctx) as *mut c_void;
    let client = entry.handle as *mut MoqClient;
    // SAFETY: valid URL string; `ud` lives until the client is destroyed (the table's Arc).
    let result = if !blocking && rand(3) == 0 {
        unsafe { moq_connect_async(client, world().url.as_ptr(), callback, ud) }
    } else {
        unsafe { moq_connect(client, world().url.as_ptr(), callback, ud) }
    };
    record_result("moq_connect", result);
}

/// Destroys a random client that is not sticky.
pub(crate) fn op_destroy_client() {
    let entry = {
        let mut clients = lock(&world().clients);
        let candidates: Vec<usize> = (0..clients.len()).filter(|i| !clients[*i].sticky).collect();
        if candidates.is_empty() {
            return;
        }
        let at = candidates[rand(candidates.len())];
        clients.swap_remove(at)
    };
    let _reading = lock(&entry.poll);
    moq_client_destroy(entry.handle as *mut MoqClient);
    retire(Kind::Client, entry.handle);
}

pub(crate) fn op_reconnect_client() {
    let Some(entry) = pick(&world().clients) else { return };
    record_result("moq_disconnect", moq_disconnect(entry.handle as *mut MoqClient));
    connect(&entry, false);
}

pub(crate) fn op_create_publisher() {
    let w = world();
    if lock(&w.pubs).len() >= MAX_PUBLISHERS {
        return op_destroy_publisher();
    }
    let Some(client) = pick(&w.clients) else { return };
    let id = next_id();
    let mode = [
        Mode::Data,
        Mode::Data,
        Mode::Groups,
        Mode::Groups,
        Mode::Datagram,
        Mode::Catalog,
    ][rand(6)];
    let ns = cstr(&format!("race/c{}", client.id));
    let track = cstr(&if mode == Mode::Catalog {
        format!("cat{id}.json")
    } else {
        format!("t{id}")
    });
    let c = client.handle as *mut MoqClient;
    // SAFETY: valid strings and options.
    let publisher = unsafe {
        match (mode, rand(2)) {
            (Mode::Datagram, _) => moq_create_publisher_ex(c, ns.as_ptr(), track.as_ptr(), MOQ_DELIVERY_DATAGRAM),
            (_, 0) => moq_create_publisher(c, ns.as_ptr(), track.as_ptr()),
            _ => moq_create_publisher_opts(c, ns.as_ptr(), track.as_ptr(), &moq_publisher_options_default()),
        }
    };
    if record_ptr("moq_create_publisher", publisher).is_null() {
        return;
    }
    w.created[Kind::Publisher as usize].fetch_add(1, Relaxed);
    let entry = PubEntry {
        handle: publisher as usize,
        id,
        ns,
        track,
        mode,
        seq: Arc::default(),
    };
    lock(&w.pubs).push(entry);
}

pub(crate) fn op_destroy_publisher() {
    let entry = {
        let mut pubs = lock(&world().pubs);
        if pubs.is_empty() {
            return;
        }
        let at = rand(pubs.len());
        pubs.swap_remove(at)
    };
    moq_publisher_destroy(entry.handle as *mut MoqPublisher);
    retire(Kind::Publisher, entry.handle);
}

pub(crate) fn op_publish() {
    let Some(entry) = pick(&world().pubs) else { return };
    let Ok(mut seq) = entry.seq.try_lock() else { return };
    let p = entry.handle as *mut MoqPublisher;
    let mut next = |len: usize| {
        *seq += 1;
        world().n.published.fetch_add(1, Relaxed);
        payload(entry.id, *seq - 1, len)
    };
    let count = 1 + rand(16);
    // SAFETY (every call below): the data pointers are valid for their lengths.
    match entry.mode {
        Mode::Data | Mode::Datagram => {
            let (mode, max) = match entry.mode {
                Mode::Data => (MOQ_DELIVERY_STREAM, 1500),
                _ => (MOQ_DELIVERY_DATAGRAM, MOQ_MAX_DATAGRAM_SIZE - HEADER),
            };
            for _ in 0..count {
                let data = next(rand(max + 1));
                let r = unsafe { moq_publish_data(p, data.as_ptr(), data.len(), mode) };
                if record_result("moq_publish_data", r) == MOQ_ERROR_INVALID_HANDLE {
                    break;
                }
            }
        }
        Mode::Groups => {
            let mut group = 0u64;
            if record_result("moq_publisher_begin_group", unsafe {
                moq_publisher_begin_group(p, &mut group)
            }) != MOQ_OK
            {
                return;
            }
            for _ in 0..count {
                let data = next(rand(3000));
                let r = unsafe { moq_publish_object(p, data.as_ptr(), data.len(), 0) };
                if record_result("moq_publish_object", r) != MOQ_OK {
                    return;
                }
            }
            record_result("moq_publisher_end_group", moq_publisher_end_group(p));
        }
        Mode::Catalog => {
            *seq += 1;
            let names = catalog_tracks(entry.id, *seq);
            let tracks: Vec<MoqTrackInfo> = names
                .iter()
                .map(|name| MoqTrackInfo {
                    name: name.as_ptr(),
                    codec: std::ptr::null(),
                    mime_type: std::ptr::null(),
                    width: 0,
                    height: 0,
                    bitrate: 0,
                    sample_rate: 0,
                    language: std::ptr::null(),
                })
                .collect();
            let r = unsafe { moq_publish_catalog(p, tracks.as_ptr(), tracks.len(), MOQ_CATALOG_FORMAT_SEED) };
            record_result("moq_publish_catalog", r);
        }
    }
    if rand(400) == 0 {
        record_result("moq_publisher_finish", moq_publisher_finish(p));
    }
}

/// A random publisher and client to subscribe with: `(publisher, client, want_catalog)`.
pub(crate) fn subscription_target(catalog: bool) -> Option<(PubEntry, ClientEntry)> {
    let publisher = {
        let pubs = lock(&world().pubs);
        let fitting: Vec<&PubEntry> = pubs.iter().filter(|p| (p.mode == Mode::Catalog) == catalog).collect();
        (!fitting.is_empty()).then(|| fitting[rand(fitting.len())].clone())?
    };
    Some((publisher, pick(&world().clients)?))
}

pub(crate) fn add_subscriber(handle: *mut MoqSubscriber, ctx: Option<Arc<SubCtx>>, poll_of: Option<u32>) {
    if handle.is_null() {
        return;
    }
    let w = world();
    w.created[Kind::Subscriber as usize].fetch_add(1, Relaxed);
    if let Some(ctx) = &ctx {
        ctx.handle.store(handle as usize, Relaxed);
    }
    if let Some(publisher) = poll_of {
        lock(&w.poll_order).insert(handle as usize, (publisher, NONE));
    }
    let mut subs = lock(&w.subs);
    subs.push(SubEntry {
        handle: handle as usize,
        ctx,
    });
    let over = subs.len() > MAX_SUBSCRIBERS;
    drop(subs);
    if over {
        destroy_subscriber(None);
    }
}

pub(crate) fn sub_ctx(publisher: &PubEntry) -> Arc<SubCtx> {
    Arc::new(SubCtx {
        publisher: publisher.id,
        ordered: publisher.mode != Mode::Datagram,
        handle: AtomicUsize::new(0),
        last: AtomicU64::new(NONE),
    })
}

pub(crate) fn op_subscribe_blocking() {
    let Some((p, c)) = subscription_target(false) else {
        return;
    };
    let ctx = sub_ctx(&p);
    let ud = Arc::as_ptr(&ctx) as *mut c_void;
    // SAFETY: valid strings; `ctx` outlives the subscription (the table or the graveyard holds it).
    let s = unsafe {
        moq_subscribe(
            c.handle as *mut MoqClient,
            p.ns.as_ptr(),
            p.track.as_ptr(),
            Some(on_data),
            ud,
        )
    };
    add_subscriber(record_ptr("moq_subscribe", s), Some(ctx), None);
}

pub(crate) fn op_subscribe_ex(poll: bool) {
    let Some((p, c)) = subscription_target(false) else {
        return;
    };
    let mut options = moq_subscribe_options_default();
    options.wait_for_track = rand(2) as u8;
    let ctx = sub_ctx(&p);
    let (on_obj, on_st, ud): (MoqObjectCallback, MoqStatusCallback, *mut c_void) = if poll && p.mode != Mode::Datagram {
        options.delivery = MOQ_DELIVER_POLL;
        options.queue_capacity = [0, 8, 64][rand(3)];
        (None, None, std::ptr::null_mut())
    } else {
        let status: MoqStatusCallback = if rand(2) == 0 { Some(on_status) } else { None };
        (Some(on_object), status, Arc::as_ptr(&ctx) as *mut c_void)
    };
    let is_poll = on_obj.is_none();
    // SAFETY: valid strings and options; `ctx` outlives the subscription.
    let s = unsafe {
        moq_subscribe_ex(
            c.handle as *mut MoqClient,
            p.ns.as_ptr(),
            p.track.as_ptr(),
            &options,
            on_obj,
            on_st,
            ud,
        )
    };
    let s = record_ptr("moq_subscribe_ex", s);
    add_subscriber(s, (!is_poll).then_some(ctx), is_poll.then_some(p.id));
}

pub(crate) fn op_subscribe_catalog() {
    let Some((p, c)) = subscription_target(true) else {
        return;
    };
    let ctx = sub_ctx(&p);
    let client = c.handle as *mut MoqClient;
    if rand(2) == 0 {
        let ud = Arc::as_ptr(&ctx) as *mut c_void;
        // SAFETY: valid strings; `ctx` outlives the subscription.
        let s = unsafe { moq_subscribe_catalog(client, p.ns.as_ptr(), p.track.as_ptr(), Some(on_catalog), ud) };
        add_subscriber(record_ptr("moq_subscribe_catalog", s), Some(ctx), None);
    } else {
        let mut options = moq_subscribe_options_default();
        options.start = MOQ_START_LATEST_GROUP;
        options.delivery = MOQ_DELIVER_POLL;
        // SAFETY: valid strings and options; no callbacks.
        let s = unsafe {
            moq_subscribe_catalog_ex(
                client,
                p.ns.as_ptr(),
                p.track.as_ptr(),
                &options,
                None,
                None,
                std::ptr::null_mut(),
            )
        };
        add_subscriber(record_ptr("moq_subscribe_catalog_ex", s), None, Some(p.id));
    }
}

pub(crate) fn random_subscriber() -> Option<usize> {
    let subs = lock(&world().subs);
    (!subs.is_empty()).then(|| subs[rand(subs.len())].handle)
}

pub(crate) fn op_unsubscribe() {
    if let Some(handle) = random_subscriber() {
        record_result("moq_unsubscribe", moq_unsubscribe(handle as *mut MoqSubscriber));
    }
}

/// Destroys `own` (from its callback) or a random subscriber.
pub(crate) fn destroy_subscriber(own: Option<usize>) {
    let entry = {
        let mut subs = lock(&world().subs);
        let at = match own {
            Some(handle) => subs.iter().position(|s| s.handle == handle),
            None => (!subs.is_empty()).then(|| rand(subs.len())),
        };
        match at {
            Some(at) => subs.swap_remove(at),
            None => return,
        }
    };
    moq_subscriber_destroy(entry.handle as *mut MoqSubscriber);
    retire(Kind::Subscriber, entry.handle);
    if let (Some(_), Some(ctx)) = (own, entry.ctx) {
        lock(&world().graveyard).push(ctx); // still in use by the running callback
    }
}

pub(crate) fn op_poll() {
    let Some(client) = pick(&world().clients) else { return };
    let Ok(_reading) = client.poll.try_lock() else { return };
    // SAFETY: all-zero is a valid MoqEvent (integers, NULL pointers, state 0).
    let mut events = vec![unsafe { std::mem::zeroed::<MoqEvent>() }; 64];
    let timeout = if moq_ffi::dispatch::in_callback() {
        0
    } else {
        rand(20) as u32
    };
    // SAFETY: `events` has room for 64 events.
    let got = unsafe {
        moq_poll(
            client.handle as *mut MoqClient,
            events.as_mut_ptr(),
            events.len(),
            timeout,
        )
    };
    let w = world();
    w.n.polls.fetch_add(1, Relaxed);
    w.n.poll_events.fetch_add(got as u64, Relaxed);
    for event in &events[..got] {
        let source = event.subscriber as usize;
        match event.kind {
            MOQ_EVENT_OBJECT => {
                let mut order = lock(&w.poll_order);
                let (publisher, last) = order.entry(source).or_insert((u32::MAX, NONE));
                // SAFETY: the payload is valid until the next poll of this client (we hold its lock).
                let data = unsafe { bytes(event.data, event.data_len) };
                if *publisher == u32::MAX {
                    *publisher = verify(data).map(|v| v.0).unwrap_or(0);
                }
                check_object(data, *publisher, true, last, "poll");
            }
            MOQ_EVENT_CATALOG => {
                let mut order = lock(&w.poll_order);
                if let Some((publisher, last)) = order.get_mut(&source) {
                    // SAFETY: valid until the next poll of this client.
                    unsafe { check_catalog(*publisher, event.tracks, event.track_count, last) };
                }
            }
            MOQ_EVENT_STATUS if event.message.is_null() => fail("STATUS event without a message".into()),
            MOQ_EVENT_ANNOUNCE => drop(text(event.namespace_str)),
            MOQ_EVENT_STATUS | MOQ_EVENT_CONNECTION => {}
            other => fail(format!("unknown event kind {other}")),
        }
    }
}

pub(crate) fn op_announces() {
    let Some(c) = pick(&world().clients) else { return };
    let client = c.handle as *mut MoqClient;
    let ud = Arc::as_ptr(&c.ctx) as *mut c_void;
    let prefix = cstr("race");
    // SAFETY: valid strings; `ud` lives until the client is destroyed.
    let result = unsafe {
        match rand(5) {
            0 => moq_subscribe_announces_ex(client, prefix.as_ptr(), Some(on_announce), ud),
            1 => moq_subscribe_announces_ex(client, prefix.as_ptr(), None, ud),
            2 => moq_subscribe_announces(client, Some(on_track), ud),
            3 => moq_unsubscribe_announces(client),
            _ => moq_announce_namespace(client, cstr(&format!("race/c{}/x{}", c.id, rand(3))).as_ptr()),
        }
    };
    record_result("announces", result);
}

pub(crate) fn op_stale() {
    let picked = {
        let stale = lock(&world().stale);
        (!stale.is_empty()).then(|| stale[rand(stale.len())])
    };
    let Some((kind, handle)) = picked else { return };
    let code = match kind {
        Kind::Client => take(moq_disconnect(handle as *mut MoqClient)).0,
        Kind::Publisher => {
            take(unsafe { moq_publish_data(handle as *mut MoqPublisher, b"x".as_ptr(), 1, MOQ_DELIVERY_STREAM) }).0
        }
        Kind::Subscriber => take(moq_unsubscribe(handle as *mut MoqSubscriber)).0,
    };
    world().n.stale_checks.fetch_add(1, Relaxed);
    if code != MOQ_ERROR_INVALID_HANDLE {
        fail(format!("call on destroyed handle 0x{handle:x} returned {code:?}"));
    }
}

pub(crate) fn op_stats() {
    let mut stats = MoqStats {
        struct_size: std::mem::size_of::<MoqStats>() as u32,
        ..Default::default()
    };
    let mut buf = [0 as c_char; 64];
    // SAFETY: `stats` and `buf` are writable.
    unsafe {
        if let Some(c) = pick(&world().clients) {
            record_result(
                "moq_client_stats",
                moq_client_stats(c.handle as *const MoqClient, &mut stats),
            );
            take(moq_client_protocol_version(
                c.handle as *const MoqClient,
                buf.as_mut_ptr(),
                buf.len(),
            ));
            take(moq_client_last_error(
                c.handle as *const MoqClient,
                buf.as_mut_ptr(),
                buf.len(),
            ));
            moq_is_connected(c.handle as *const MoqClient);
        }
        if let Some(p) = pick(&world().pubs) {
            record_result(
                "moq_publisher_stats",
                moq_publisher_stats(p.handle as *const MoqPublisher, &mut stats),
            );
        }
    }
    if let Some(s) = random_subscriber() {
        // SAFETY: as above.
        record_result("moq_subscriber_stats", unsafe {
            moq_subscriber_stats(s as *const MoqSubscriber, &mut stats)
        });
        moq_is_subscribed(s as *const MoqSubscriber);
        moq_free_str(moq_catalog_json(s as *mut MoqSubscriber));
    }
}

pub(crate) fn op_log_level() {
    let level = [MOQ_LOG_WARN, MOQ_LOG_INFO, MOQ_LOG_ERROR][rand(3)];
    // SAFETY: `on_log` ignores its user_data.
    record_result("moq_set_log_callback", unsafe {
        moq_set_log_callback(level, Some(on_log), std::ptr::null_mut())
    });
}

pub(crate) type Op = (&'static str, usize, fn());
pub(crate) const OPS: &[Op] = &[
    ("create client", 3, op_create_client),
    ("destroy client", 2, op_destroy_client),
    ("reconnect client", 1, op_reconnect_client),
    ("create publisher", 6, op_create_publisher),
    ("destroy publisher", 3, op_destroy_publisher),
    ("publish", 30, op_publish),
    ("moq_subscribe", 3, op_subscribe_blocking),
    ("moq_subscribe_ex callback", 5, || op_subscribe_ex(false)),
    ("moq_subscribe_ex poll", 3, || op_subscribe_ex(true)),
    ("catalog subscribe", 3, op_subscribe_catalog),
    ("unsubscribe", 3, op_unsubscribe),
    ("destroy subscriber", 6, || destroy_subscriber(None)),
    ("poll", 10, op_poll),
    ("announces", 3, op_announces),
    ("stale handle", 6, op_stale),
    ("stats", 4, op_stats),
    ("log level", 1, op_log_level),
];
