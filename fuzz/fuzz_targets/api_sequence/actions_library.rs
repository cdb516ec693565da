//! Library-wide actions (stats of any handle, the log callback, `moq_free_str`, init/version/
//! defaults, relays, `moq_shutdown`) and the per-input teardown.

use crate::args::*;
use crate::callbacks::*;
use crate::common::*;
use crate::exec::*;
use crate::inputs::*;
use crate::slots::{kill, kill_all, SlotKind};
use crate::world::*;
use moq_ffi::ffi::*;
use std::ffi::c_char;
use std::mem::{offset_of, size_of};
use std::sync::atomic::Ordering::SeqCst;

/// `moq_client_stats`, `moq_publisher_stats` or `moq_subscriber_stats` into a NULL or
/// fuzzed-size `MoqStats` (sizes include the version before `objects_dropped_backpressure`).
pub fn stats(which: u8, handle: Sel, size: Option<u8>) {
    let (size, block, out) = out_struct::<MoqStats>(size, Some(offset_of!(MoqStats, rtt_us) + 8));
    let func = ["moq_client_stats", "moq_publisher_stats", "moq_subscriber_stats"][which as usize % 3];
    // SAFETY (each call): `out` is NULL or `struct_size` writable bytes.
    let (_, code) = match which % 3 {
        0 => call(func, handle, |c: *mut MoqClient| unsafe { moq_client_stats(c, out) }),
        1 => call(func, handle, |p: *mut MoqPublisher| unsafe {
            moq_publisher_stats(p, out)
        }),
        _ => call(func, handle, |s: *mut MoqSubscriber| unsafe {
            moq_subscriber_stats(s, out)
        }),
    };
    if let (MoqResultCode::MOQ_OK, Some(block), Some(size)) = (code, &block, size) {
        let written = u32::from_le_bytes(block.as_slice()[..4].try_into().unwrap());
        assert_eq!(written as usize, size, "INVARIANT: {func} changed struct_size");
    }
}

/// `moq_set_log_callback`: a level change (same registration), a new callback (replacing the
/// current one) or clearing it; levels past TRACE must be INVALID_ARGUMENT.
pub fn set_log(level: u32, mode: u8, in_callback: bool) {
    lenient_if(in_callback);
    let current = with_world(|world| world.log_ud);
    let (ud, cb): (Option<usize>, MoqLogCallback) = match mode % 4 {
        // Same callback and user_data: a level change.
        0 if current.is_some() => (current, Some(on_log)),
        0..=2 => match with_world(|world| world.register(SlotKind::Log)) {
            Some(ud) => (Some(ud), Some(on_log)),
            None => return,
        },
        _ => (None, None),
    };
    prime();
    // SAFETY: the callback is safe from any thread; user_data never dereferenced.
    let code = result(
        "moq_set_log_callback",
        unsafe { moq_set_log_callback(level, cb, ud_ptr(ud)) },
        Expect::Any,
    );
    if code == MoqResultCode::MOQ_OK {
        with_world(|world| {
            if world.log_ud != ud && !world.lenient {
                kill(world.log_ud);
            }
            world.log_ud = ud;
            world.log_uds.extend(ud);
        });
    } else if ud != current {
        kill(ud);
    }
    if level > MOQ_LOG_TRACE {
        assert_eq!(
            code,
            MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT,
            "INVARIANT: log level {level} accepted"
        );
    }
}

/// `moq_free_str` on NULL, library-owned strings it did not issue to us, and foreign pointers:
/// the library frees only what it issued.
pub fn free_str(which: u8, raw: u64) {
    let ptr: *const c_char = match which % 6 {
        0 => std::ptr::null(),
        1 => moq_last_error(),
        2 => moq_version(),
        3 => moq_relay_url(main_relay_handle() as *const MoqRelay),
        4 => (raw as usize | 1) as *const c_char,
        _ => {
            let ours = Block::from_bytes(b"not the library's\0");
            moq_free_str(ours.ptr().cast_const().cast::<c_char>());
            std::hint::black_box(ours.as_slice());
            return;
        }
    };
    moq_free_str(ptr);
    // Still readable.
    if which % 6 == 1 && !ptr.is_null() {
        std::hint::black_box(last_error());
    }
    if which % 6 == 2 {
        // SAFETY: static.
        std::hint::black_box(unsafe { read_c("moq_version", moq_version()) });
    }
}

/// `moq_init`, `moq_version`, the options defaults, the last-error getters.
pub fn misc(which: u8) {
    match which % 5 {
        0 => assert!(moq_init(), "INVARIANT: moq_init failed: {:?}", last_error()),
        1 => {
            let (a, b) = (moq_version(), moq_version());
            assert!(!a.is_null() && a == b, "INVARIANT: moq_version not one static string");
        }
        2 => assert_eq!(
            moq_publisher_options_default().struct_size as usize,
            size_of::<MoqPublisherOptions>(),
            "INVARIANT: publisher defaults struct_size"
        ),
        3 => assert_eq!(
            moq_subscribe_options_default().struct_size as usize,
            size_of::<MoqSubscribeOptions>(),
            "INVARIANT: subscribe defaults struct_size"
        ),
        _ => {
            std::hint::black_box((last_error(), moq_last_error_code()));
        }
    }
}

/// Relay functions: url, fingerprint, stop (never the main relay), start (one extra at most).
pub fn relay_op(op: u8, relay: Sel, addr: &Str, in_callback: bool) {
    let target = handle::<MoqRelay>(relay);
    let main = main_relay_handle();
    match op % 4 {
        0 => {
            let (_, url) = create_on("moq_relay_url", target, |r| moq_relay_url(r));
            if !url.is_null() {
                // SAFETY: owned by the relay.
                std::hint::black_box(unsafe { read_c("moq_relay_url", url) });
            }
        }
        1 => {
            let (_, fingerprint) = create_on("moq_relay_fingerprint", target, |r| moq_relay_fingerprint(r));
            if !fingerprint.is_null() {
                // SAFETY: owned by the relay.
                let text = unsafe { read_c("moq_relay_fingerprint", fingerprint) };
                assert!(
                    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()),
                    "INVARIANT: fingerprint {text:?}"
                );
            }
        }
        2 => {
            if target.0 as usize == main && main != 0 {
                return;
            }
            destroy("moq_relay_stop", target, |r| moq_relay_stop(r), World::relay_gone);
        }
        _ => {
            if in_callback || with_world(|world| world.relays.len()) >= 1 {
                return;
            }
            let addr = arg(addr);
            prime();
            // SAFETY: NUL-terminated or NULL.
            let relay = unsafe { moq_relay_start(addr.ptr()) };
            check_ptr("moq_relay_start", relay, Expect::Any);
            if !relay.is_null() {
                with_world(|world| world.relays.push(relay as usize));
            }
        }
    }
}

/// `moq_shutdown`: INVALID_STATE from a callback; otherwise (no callback running) it must
/// succeed, every handle is then stale and the relay is restarted by the next `relay()`.
pub fn shutdown(timeout: u32, in_callback: bool) {
    if in_callback {
        let code = result("moq_shutdown", moq_shutdown(timeout), Expect::Any);
        assert_eq!(
            code,
            MoqResultCode::MOQ_ERROR_INVALID_STATE,
            "INVARIANT: moq_shutdown inside a callback"
        );
        return;
    }
    quiesce();
    let mut code = result("moq_shutdown", moq_shutdown(timeout), Expect::Any);
    if code == MoqResultCode::MOQ_ERROR_TIMEOUT {
        // A bounded shutdown may run out of its budget on a loaded machine (stopping the relay
        // and the runtime can take seconds). It must say so truthfully — no callback is running
        // here, so the message may not blame one — and a second call finishes the job.
        let message = last_error().unwrap_or_default();
        assert!(
            message.contains("used up the timeout") || message.contains("may still be running"),
            "FINDING: moq_shutdown({timeout}) timed out with an unexpected message: {message:?}"
        );
        assert!(
            !message.contains("is still running"),
            "FINDING: moq_shutdown({timeout}) blames a callback though none runs: {message:?}"
        );
        code = result("moq_shutdown", moq_shutdown(10_000), Expect::Any);
    }
    assert_eq!(
        code,
        MoqResultCode::MOQ_OK,
        "FINDING: moq_shutdown({timeout}) with no callback running: {:?}",
        last_error()
    );
    let relay = lock(&RELAY).take();
    with_world(|world| world.forget_all(relay.map(|relay| relay.handle)));
    STOP.store(false, SeqCst);
}

/// Destroys everything the input created (clients first or last, as the input chose).
pub fn cleanup(clients_first: bool) {
    quiesce();
    let world = take_world();
    let destroy_clients = |world: &World| {
        for client in &world.clients {
            let handle = client.handle as *mut MoqClient;
            destroy_checked("moq_client_destroy", handle, Expect::Any, |c| moq_client_destroy(c));
            client.kill_callbacks();
        }
        for sub in &world.subscribers {
            kill(sub.ud);
        }
    };
    if clients_first {
        destroy_clients(&world);
    }
    for sub in &world.subscribers {
        let handle = sub.handle as *mut MoqSubscriber;
        destroy_checked("moq_subscriber_destroy", handle, Expect::Any, |s| {
            moq_subscriber_destroy(s)
        });
        kill(sub.ud);
    }
    for publisher in &world.publishers {
        let handle = *publisher as *mut MoqPublisher;
        destroy_checked("moq_publisher_destroy", handle, Expect::Any, |p| {
            moq_publisher_destroy(p)
        });
    }
    if !clients_first {
        destroy_clients(&world);
    }
    for relay in &world.relays {
        moq_relay_stop(*relay as *mut MoqRelay);
    }
    if !world.log_uds.is_empty() {
        // SAFETY: clearing takes no pointers.
        let code = result(
            "moq_set_log_callback",
            unsafe { moq_set_log_callback(MOQ_LOG_OFF, None, std::ptr::null_mut()) },
            Expect::Any,
        );
        assert_eq!(
            code,
            MoqResultCode::MOQ_OK,
            "INVARIANT: clearing the log callback failed"
        );
        kill_all(&world.log_uds);
    }
    clear_queue();
    STOP.store(false, SeqCst);
}
