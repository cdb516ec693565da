//! Performing actions: the generic call-and-check helpers every action goes through, and the
//! dispatch from `Action` to them (simple calls inline, the rest in `actions_*`).

use crate::action::Action;
use crate::actions_client as client;
use crate::actions_library as library;
use crate::actions_pubsub as pubsub;
use crate::args::*;
use crate::callbacks::defer;
use crate::common::*;
use crate::inputs::*;
use crate::world::*;
use moq_ffi::ffi::*;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Call and check.
// ---------------------------------------------------------------------------------------------

/// `check_result` that also looks for leaked secrets in the message.
#[track_caller]
pub fn result(func: &str, value: MoqResult, expect: Expect) -> MoqResultCode {
    if !value.message.is_null() {
        // SAFETY: issued by the library.
        check_no_secret(func, &unsafe { read_c("message", value.message) });
    }
    check_result(func, value, expect)
}

/// The shape of every `MoqResult` call on a handle: resolves the selector, primes the last error,
/// calls `f` and checks the result (a certainly invalid handle must give INVALID_HANDLE).
/// Returns the handle passed and the code.
#[track_caller]
pub fn call<T: Handle>(func: &str, sel: Sel, f: impl FnOnce(*mut T) -> MoqResult) -> (usize, MoqResultCode) {
    call_on(func, handle::<T>(sel), f)
}

/// `call` with a handle already resolved.
#[track_caller]
pub fn call_on<T>(
    func: &str,
    (handle, expect): (*mut T, Expect),
    f: impl FnOnce(*mut T) -> MoqResult,
) -> (usize, MoqResultCode) {
    prime();
    let code = result(func, f(handle), expect);
    (handle as usize, code)
}

/// A bool query on a handle (`moq_is_connected`, `moq_is_subscribed`).
#[track_caller]
pub fn query<T: Handle>(func: &str, sel: Sel, f: impl FnOnce(*mut T) -> bool) {
    let (handle, expect) = handle::<T>(sel);
    prime();
    check_bool(func, f(handle), expect);
}

/// A pointer-returning call on a handle (creations, `moq_catalog_json`, relay strings): NULL
/// must come with a fresh error, a certainly invalid handle must give NULL and INVALID_HANDLE.
/// Returns the handle passed and the pointer.
#[track_caller]
pub fn create<T: Handle, R>(func: &str, sel: Sel, f: impl FnOnce(*mut T) -> *const R) -> (usize, *const R) {
    create_on(func, handle::<T>(sel), f)
}

/// `create` with a handle already resolved.
#[track_caller]
pub fn create_on<T, R>(
    func: &str,
    (handle, expect): (*mut T, Expect),
    f: impl FnOnce(*mut T) -> *const R,
) -> (usize, *const R) {
    prime();
    let made = f(handle);
    check_ptr(func, made, expect);
    (handle as usize, made)
}

/// A void destroy: primes, calls, checks the last error (invalid handle: INVALID_HANDLE; a live
/// one: any error fresh). True if it took (a live handle and no error).
#[track_caller]
pub fn destroy_checked<T>(func: &str, handle: *mut T, expect: Expect, f: impl FnOnce(*mut T)) -> bool {
    prime();
    f(handle);
    check_void(func, expect);
    expect == Expect::Any && still_primed()
}

/// `destroy_checked`, then `gone` updates the records if the destroy took.
#[track_caller]
pub fn destroy<T>(
    func: &str,
    (handle, expect): (*mut T, Expect),
    f: impl FnOnce(*mut T),
    gone: impl FnOnce(&mut World, usize),
) {
    if destroy_checked(func, handle, expect, f) {
        with_world(|world| gone(world, handle as usize));
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch.
// ---------------------------------------------------------------------------------------------

/// Performs one action (`in_callback`: from a callback, on the library's callback thread).
pub fn exec(action: &Action, in_callback: bool) {
    prime();
    match action {
        Action::ClientCreate => client::create_client(None),
        Action::ClientCreateEx(cfg) => client::create_client(Some(cfg)),
        Action::ClientDestroy(c) => destroy(
            "moq_client_destroy",
            handle::<MoqClient>(*c),
            |c| moq_client_destroy(c),
            World::client_gone,
        ),
        Action::Connect {
            client,
            url,
            callback,
            asynchronous,
        } => client::connect(*client, url, *callback, *asynchronous),
        Action::Disconnect(c) => {
            call("moq_disconnect", *c, |c: *mut MoqClient| moq_disconnect(c));
        }
        Action::IsConnected(c) => query("moq_is_connected", *c, |c: *mut MoqClient| moq_is_connected(c)),
        Action::QueryTrack {
            client,
            ns,
            track,
            size,
        } => client::query_track(*client, ns, track, *size),
        Action::ClientText { client, buf, which } => client::client_text(handle(*client), *buf, *which),
        Action::Announce(c, ns) => {
            let ns = arg(ns);
            // SAFETY: NUL-terminated or NULL.
            call("moq_announce_namespace", *c, |c| unsafe {
                moq_announce_namespace(c, ns.ptr())
            });
        }
        Action::CreatePublisher { client, ns, track, how } => pubsub::create_publisher(*client, ns, track, how),
        Action::PublisherDestroy(p) => destroy(
            "moq_publisher_destroy",
            handle::<MoqPublisher>(*p),
            |p| moq_publisher_destroy(p),
            World::publisher_gone,
        ),
        Action::PublishData(p, payload, mode) => {
            let (_block, ptr, len) = data_arg(payload);
            // SAFETY: `ptr` is NULL or has `len` readable bytes.
            call("moq_publish_data", *p, |p| unsafe {
                moq_publish_data(p, ptr, len, *mode)
            });
        }
        Action::BeginGroup(p, out) => {
            let mut group = u64::MAX;
            let ptr: *mut u64 = if *out { &mut group } else { std::ptr::null_mut() };
            // SAFETY: NULL or a writable u64.
            call("moq_publisher_begin_group", *p, |p| unsafe {
                moq_publisher_begin_group(p, ptr)
            });
        }
        Action::PublishObject(p, payload, timestamp) => {
            let (_block, ptr, len) = data_arg(payload);
            // SAFETY: as for moq_publish_data.
            call("moq_publish_object", *p, |p| unsafe {
                moq_publish_object(p, ptr, len, *timestamp)
            });
        }
        Action::EndGroup(p) => {
            call("moq_publisher_end_group", *p, |p: *mut MoqPublisher| {
                moq_publisher_end_group(p)
            });
        }
        Action::Finish(p) => {
            call("moq_publisher_finish", *p, |p: *mut MoqPublisher| {
                moq_publisher_finish(p)
            });
        }
        Action::Abort(p, code) => {
            call("moq_publisher_abort", *p, |p| moq_publisher_abort(p, *code));
        }
        Action::PublishCatalog {
            publisher,
            tracks,
            null_count,
            format,
        } => pubsub::publish_catalog(*publisher, tracks, *null_count, *format),
        Action::Subscribe { client, ns, track, how } => pubsub::subscribe(*client, ns, track, how),
        Action::Unsubscribe(s) => {
            let (handle, code) = call("moq_unsubscribe", *s, |s: *mut MoqSubscriber| moq_unsubscribe(s));
            if code == MoqResultCode::MOQ_OK {
                with_world(|world| world.subscriber_gone(handle, false));
            }
        }
        Action::IsSubscribed(s) => query("moq_is_subscribed", *s, |s: *mut MoqSubscriber| moq_is_subscribed(s)),
        Action::SubscriberDestroy(s) => destroy(
            "moq_subscriber_destroy",
            handle::<MoqSubscriber>(*s),
            |s| moq_subscriber_destroy(s),
            |world, handle| world.subscriber_gone(handle, true),
        ),
        Action::CatalogJson(s) => pubsub::catalog_json(*s),
        Action::Poll {
            client,
            max,
            null_events,
            timeout,
        } => client::poll(*client, *max, *null_events, *timeout),
        Action::SubscribeAnnounces {
            client,
            prefix,
            callback,
        } => client::subscribe_announces(*client, prefix.as_ref(), *callback, in_callback),
        Action::UnsubscribeAnnounces(c) => client::unsubscribe_announces(*c, in_callback),
        Action::Stats { which, handle, size } => library::stats(*which, *handle, *size),
        Action::SetLog { level, mode } => library::set_log(*level, *mode, in_callback),
        Action::FreeStr(which, raw) => library::free_str(*which, *raw),
        Action::Misc(which) => library::misc(*which),
        Action::Relay { op, handle, addr } => library::relay_op(*op, *handle, addr, in_callback),
        Action::Shutdown(timeout) => library::shutdown(*timeout, in_callback),
        Action::Sleep(ms) => std::thread::sleep(Duration::from_millis(u64::from(
            *ms % if in_callback { 10 } else { 60 },
        ))),
        Action::Defer(next) => defer(next),
    }
}
