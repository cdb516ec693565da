//! `moq_poll`: events on the caller's thread.
//!
//! Each client keeps the batch it returned last: the payloads, strings and track arrays the
//! `MoqEvent`s point into live there until the next `moq_poll` on that client replaces them, or
//! the client is destroyed.

use super::boundary::{self, enter, lookup, CLIENTS};
use super::catalog::CTracks;
use super::subscriber::{c_text, info_of, status_of};
use super::types::*;
use crate::core::connection::ConnectionState;
use crate::core::events::Event;
use crate::error::{Error, ErrorKind};
use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What a batch of events points into.
#[derive(Default)]
struct Batch {
    _events: Vec<Event>,
    _strings: Vec<CString>,
    _catalogs: Vec<CTracks>,
}

/// Per client: the last batch, and whether a poll is running.
#[derive(Default)]
struct ClientPoll {
    batch: Batch,
    polling: bool,
}

static CLIENT_POLLS: Mutex<Option<HashMap<u64, ClientPoll>>> = Mutex::new(None);

fn client_polls() -> MutexGuard<'static, Option<HashMap<u64, ClientPoll>>> {
    CLIENT_POLLS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Releases a destroyed client's last batch (called by `moq_client_destroy`/`moq_shutdown`).
pub(crate) fn forget(client: u64) {
    let released = client_polls().as_mut().and_then(|map| map.remove(&client));
    drop(released);
}

/// Releases every batch (library shutdown).
pub(crate) fn forget_all() {
    let released = client_polls().take();
    drop(released);
}

/// Clears the running flag of a client's poll however the poll ends.
struct Polling(u64);

impl Drop for Polling {
    fn drop(&mut self) {
        if let Some(poll) = client_polls().as_mut().and_then(|map| map.get_mut(&self.0)) {
            poll.polling = false;
        }
    }
}

fn state_of(state: ConnectionState) -> MoqConnectionState {
    match state {
        ConnectionState::Disconnected => MoqConnectionState::MOQ_STATE_DISCONNECTED,
        ConnectionState::Connecting => MoqConnectionState::MOQ_STATE_CONNECTING,
        ConnectionState::Connected => MoqConnectionState::MOQ_STATE_CONNECTED,
        ConnectionState::Failed => MoqConnectionState::MOQ_STATE_FAILED,
        ConnectionState::Reconnecting => MoqConnectionState::MOQ_STATE_RECONNECTING,
    }
}

fn empty_event() -> MoqEvent {
    MoqEvent {
        kind: 0,
        subscriber: std::ptr::null_mut(),
        object: MoqObjectInfo::default(),
        data: std::ptr::null(),
        data_len: 0,
        status: 0,
        code: 0,
        message: std::ptr::null(),
        connection_state: MoqConnectionState::MOQ_STATE_DISCONNECTED,
        namespace_str: std::ptr::null(),
        active: false,
        tracks: std::ptr::null(),
        track_count: 0,
        catalog_json: std::ptr::null(),
    }
}

/// Takes up to `max_events` queued events of `client` into `events`, waiting up to `timeout_ms`
/// for the first (0 = do not wait). Returns how many were written; 0 when none arrived in time
/// or on error (`moq_last_error` says which: INVALID_HANDLE, INVALID_ARGUMENT for NULL `events`
/// with non-zero `max_events`, INVALID_STATE when another thread is polling this client).
///
/// Events come from poll-mode subscriptions (objects, status, catalogs: each subscription's own
/// bounded queue, drained round-robin so none starves), announcement watchers registered with a
/// NULL callback, and connection states (`MoqClientConfig.poll_events`). Within a subscription
/// events keep their order; a terminal status is its last event.
///
/// Ownership: every pointer in the returned events stays valid until the next `moq_poll` on
/// this client (from any thread) or `moq_client_destroy`. Blocks at most `timeout_ms`;
/// `moq_client_destroy` from another thread ends the wait early. One thread polls a client at
/// a time.
///
/// # Safety
/// `events` is NULL (only with `max_events` 0) or points to `max_events` writable `MoqEvent`s.
#[no_mangle]
pub unsafe extern "C" fn moq_poll(
    client: *mut MoqClient,
    events: *mut MoqEvent,
    max_events: usize,
    timeout_ms: u32,
) -> usize {
    enter("moq_poll", || {
        let handle = boundary::handle_of(client);
        let client = lookup(&CLIENTS, client)?;
        if events.is_null() && max_events > 0 {
            return Err(Error::invalid_argument(format!(
                "events is NULL but max_events is {max_events}"
            )));
        }
        let guard = {
            let mut polls = client_polls();
            let poll = polls.get_or_insert_with(HashMap::new).entry(handle).or_default();
            if poll.polling {
                return Err(Error::new(
                    ErrorKind::InvalidState,
                    "another thread is in moq_poll on this client; poll a client from one thread at a time",
                ));
            }
            poll.polling = true;
            // The previous batch's pointers expire now, as documented.
            std::mem::take(&mut poll.batch)
        };
        drop(guard);
        let _polling = Polling(handle);
        if max_events == 0 {
            return Ok(0);
        }
        let taken = client
            .hub()
            .poll(max_events, Duration::from_millis(u64::from(timeout_ms)));
        let mut batch = Batch::default();
        let mut out = Vec::with_capacity(taken.len());
        for (source, event) in &taken {
            let mut c = empty_event();
            c.subscriber = boundary::ptr_of(*source);
            match event {
                Event::Object { info, payload } => {
                    c.kind = MOQ_EVENT_OBJECT;
                    c.object = info_of(info);
                    c.data = payload.as_ptr();
                    c.data_len = payload.len();
                }
                Event::Status(report) => {
                    let message = c_text(&report.message);
                    c.kind = MOQ_EVENT_STATUS;
                    c.status = status_of(report.status);
                    c.code = report.code;
                    c.message = message.as_ptr();
                    batch._strings.push(message);
                }
                Event::Connection(state) => {
                    c.kind = MOQ_EVENT_CONNECTION;
                    c.subscriber = std::ptr::null_mut();
                    c.connection_state = state_of(*state);
                }
                Event::Announce { namespace, active } => {
                    let namespace = c_text(namespace);
                    c.kind = MOQ_EVENT_ANNOUNCE;
                    c.subscriber = std::ptr::null_mut();
                    c.namespace_str = namespace.as_ptr();
                    c.active = *active;
                    batch._strings.push(namespace);
                }
                Event::Catalog(catalog) => {
                    let tracks = CTracks::new(catalog);
                    c.kind = MOQ_EVENT_CATALOG;
                    c.tracks = tracks.tracks.as_ptr();
                    c.track_count = tracks.tracks.len();
                    c.catalog_json = tracks.json.as_ptr();
                    batch._catalogs.push(tracks);
                }
            }
            out.push(c);
        }
        batch._events = taken.into_iter().map(|(_, event)| event).collect();
        if CLIENTS.get(handle).is_err() {
            // Destroyed while we waited: leave nothing behind for it.
            forget(handle);
            return Ok(0);
        }
        let mut polls = client_polls();
        let Some(poll) = polls.as_mut().and_then(|map| map.get_mut(&handle)) else {
            // The client was destroyed while we waited: its memory is gone, report nothing.
            return Ok(0);
        };
        // SAFETY: `events` has room for `max_events >= out.len()` entries per the contract
        // (the hub returns at most `max_events`).
        unsafe { std::ptr::copy_nonoverlapping(out.as_ptr(), events, out.len()) };
        poll.batch = batch;
        Ok(out.len())
    })
}

impl boundary::Failure for usize {
    fn failure(_: &Error) -> Self {
        0
    }
}
