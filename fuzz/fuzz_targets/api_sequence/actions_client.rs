//! Client actions: creation, connecting, the text getters, track queries, `moq_poll` and
//! announcement watchers.

use crate::args::*;
use crate::callbacks::*;
use crate::common::*;
use crate::exec::*;
use crate::inputs::*;
use crate::slots::{mark, SlotKind, DEAD};
use crate::world::*;
use moq_ffi::ffi::*;
use std::mem::size_of;

/// `moq_client_create`, or `moq_client_create_ex` with a fuzzed config.
pub fn create_client(cfg: Option<&Cfg>) {
    if !creation_allowed(0, MAX_CLIENTS) {
        return;
    }
    let (func, client) = match cfg {
        None => ("moq_client_create", moq_client_create()),
        Some(cfg) => {
            let (block, _args) = client_config(cfg);
            prime();
            // SAFETY: `block` holds `struct_size` bytes (or 4); strings are ours.
            ("moq_client_create_ex", unsafe {
                moq_client_create_ex(block.ptr().cast())
            })
        }
    };
    check_ptr(func, client, Expect::Any);
    adopt_client(client);
}

/// `moq_connect` / `moq_connect_async`, with or without a connection callback.
pub fn connect(client: Sel, url: &Url, callback: bool, asynchronous: bool) {
    let relay = relay();
    let text = url_bytes(url, relay.port);
    let url_arg = CArg::new(text.as_deref());
    let ud = register_if(callback, SlotKind::Connection);
    let function: MoqConnectionCallback = ud.map(|_| on_connection as _);
    let func = if asynchronous {
        "moq_connect_async"
    } else {
        "moq_connect"
    };
    // SAFETY: NUL-terminated URL (or NULL); the callback ignores user_data's pointee.
    let (handle, code) = call(func, client, |client| unsafe {
        if asynchronous {
            moq_connect_async(client, url_arg.ptr(), function, ud_ptr(ud))
        } else {
            moq_connect(client, url_arg.ptr(), function, ud_ptr(ud))
        }
    });
    if let Some(ud) = ud {
        use MoqResultCode::*;
        // Refused before the callback is stored: bad handle, wrong state, bad URL.
        let url_refused = code == MOQ_ERROR_INVALID_ARGUMENT && last_error().is_some_and(|e| e.contains("url"));
        let registered = !(matches!(code, MOQ_ERROR_INVALID_HANDLE | MOQ_ERROR_INVALID_STATE) || url_refused);
        if registered {
            // A client we do not track (a raw handle that hit): never judge its callbacks.
            with_world(|world| {
                if let Some(rec) = world.client_mut(handle) {
                    rec.connection_uds.push(ud);
                }
            });
        } else {
            mark(ud, DEAD);
        }
    }
    if matches!(url, Url::Secret) {
        // The client's own last error must not contain the URL's secrets either.
        client_text((handle as *mut MoqClient, Expect::Any), Buf::Owned(4096), 0);
    }
}

/// `moq_client_last_error` (`which` 0 or 3), `moq_client_protocol_version` (1) or
/// `moq_client_transport` (2) into a NULL or owned buffer: OK writes a terminated text without
/// secrets, BUFFER_TOO_SMALL an empty one.
pub fn client_text(client: (*mut MoqClient, Expect), buf: Buf, which: u8) {
    let (block, ptr, len) = text_buf(buf);
    let func = match which {
        1 => "moq_client_protocol_version",
        2 => "moq_client_transport",
        _ => "moq_client_last_error",
    };
    // SAFETY: `ptr` is NULL or points to `len` writable bytes.
    let (_, code) = call_on(func, client, |client| unsafe {
        match which {
            1 => moq_client_protocol_version(client, ptr, len),
            2 => moq_client_transport(client, ptr, len),
            _ => moq_client_last_error(client, ptr, len),
        }
    });
    let Some(block) = &block else { return };
    let bytes = block.as_slice();
    if code == MoqResultCode::MOQ_OK {
        let end = bytes
            .iter()
            .position(|b| *b == 0)
            .unwrap_or_else(|| panic!("INVARIANT: {func} OK without a NUL in {len} bytes"));
        check_no_secret(func, &String::from_utf8_lossy(&bytes[..end]));
    } else if code == MoqResultCode::MOQ_ERROR_BUFFER_TOO_SMALL && len > 0 {
        assert_eq!(
            bytes[0], 0,
            "INVARIANT: {func} BUFFER_TOO_SMALL did not write a terminator"
        );
    }
}

/// `moq_query_track` into a NULL or fuzzed-size `MoqTrackProperties`.
pub fn query_track(client: Sel, ns: &Str, track: &Str, size: Option<u8>) {
    let (ns, track) = (arg(ns), arg(track));
    let (size, _block, out) = out_struct::<MoqTrackProperties>(size, None);
    // SAFETY: strings ours; `out` NULL or `struct_size` writable bytes.
    let (_, code) = call("moq_query_track", client, |client| unsafe {
        moq_query_track(client, ns.ptr(), track.ptr(), out)
    });
    if let (MoqResultCode::MOQ_OK, Some(size)) = (code, size) {
        let full = size_of::<MoqTrackProperties>();
        assert_eq!(size, full, "INVARIANT: moq_query_track accepted struct_size {size}");
    }
}

/// `moq_poll` into NULL or room for `max` events, which are then validated.
pub fn poll(client: Sel, max: usize, null_events: bool, timeout: u32) {
    let (handle, expect) = handle::<MoqClient>(client);
    let events = Block::zeroed(max * size_of::<MoqEvent>());
    let ptr = if null_events {
        std::ptr::null_mut()
    } else {
        events.ptr().cast::<MoqEvent>()
    };
    prime();
    // SAFETY: NULL or `max` writable events.
    let count = unsafe { moq_poll(handle, ptr, max, timeout) };
    // Like a bool query: 0 may be a plain answer or a failure with a fresh error; an invalid
    // handle must give 0 and INVALID_HANDLE.
    check_bool("moq_poll", count != 0, expect);
    if !null_events {
        check_events(handle as usize, &events, count, max);
    }
}

/// `moq_subscribe_announces` (`prefix` None) or `moq_subscribe_announces_ex`: the new watcher
/// replaces the client's previous one.
pub fn subscribe_announces(client: Sel, prefix: Option<&Str>, callback: bool, in_callback: bool) {
    lenient_if(in_callback);
    let ud = register_if(callback, SlotKind::Announce);
    let (handle, code) = match prefix {
        None => {
            let cb: MoqTrackCallback = ud.map(|_| on_track as _);
            call("moq_subscribe_announces", client, |client| {
                moq_subscribe_announces(client, cb, ud_ptr(ud))
            })
        }
        Some(prefix) => {
            let cb: MoqAnnounceCallback = ud.map(|_| on_announce as _);
            let prefix = arg(prefix);
            // SAFETY: prefix NULL or NUL-terminated.
            call("moq_subscribe_announces_ex", client, |client| unsafe {
                moq_subscribe_announces_ex(client, prefix.ptr(), cb, ud_ptr(ud))
            })
        }
    };
    watcher_replaced(handle, code, ud);
}

/// `moq_unsubscribe_announces`: the client's watcher is replaced by none.
pub fn unsubscribe_announces(client: Sel, in_callback: bool) {
    lenient_if(in_callback);
    let (handle, code) = call("moq_unsubscribe_announces", client, |c: *mut MoqClient| {
        moq_unsubscribe_announces(c)
    });
    watcher_replaced(handle, code, None);
}
