//! Process and per-input state: the embedded relay (started once per process, again after a
//! fuzzed `moq_shutdown`), what the current input created (`World`), and the URL secrets that
//! must never reach a log line or message.

use crate::common::*;
use crate::slots::{kill, kill_all, mark, new_slot, SlotKind, DEAD};
use moq_ffi::ffi::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

pub const MAX_CLIENTS: usize = 4;
pub const MAX_PUBLISHERS: usize = 12;
pub const MAX_SUBSCRIBERS: usize = 12;
const MAX_REGISTRATIONS: usize = 200;

pub const K_CLIENT: u64 = 1;
pub const K_PUBLISHER: u64 = 2;
pub const K_SUBSCRIBER: u64 = 3;
pub const K_RELAY: u64 = 4;

/// A C handle type and the harness's kind number for it (the tag of its handle values).
pub trait Handle {
    const KIND: u64;
}
impl Handle for MoqClient {
    const KIND: u64 = K_CLIENT;
}
impl Handle for MoqPublisher {
    const KIND: u64 = K_PUBLISHER;
}
impl Handle for MoqSubscriber {
    const KIND: u64 = K_SUBSCRIBER;
}
impl Handle for MoqRelay {
    const KIND: u64 = K_RELAY;
}

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// The relay.
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
pub struct RelayInfo {
    pub handle: usize,
    pub port: u16,
    pub fingerprint: Vec<u8>,
}

pub static RELAY: Mutex<Option<RelayInfo>> = Mutex::new(None);

pub fn relay() -> RelayInfo {
    let mut guard = lock(&RELAY);
    if let Some(info) = guard.as_ref() {
        return info.clone();
    }
    let addr = CArg::new(Some(b"127.0.0.1:0"));
    // SAFETY: NUL-terminated.
    let handle = unsafe { moq_relay_start(addr.ptr()) };
    assert!(!handle.is_null(), "setup: moq_relay_start failed: {:?}", last_error());
    // SAFETY: owned by the live relay.
    let url = unsafe { read_c("moq_relay_url", moq_relay_url(handle)) };
    // SAFETY: as above.
    let fingerprint = unsafe { read_c("moq_relay_fingerprint", moq_relay_fingerprint(handle)) };
    let port = url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("relay port");
    let info = RelayInfo {
        handle: handle as usize,
        port,
        fingerprint: fingerprint.into_bytes(),
    };
    *guard = Some(info.clone());
    info
}

pub fn main_relay_handle() -> usize {
    lock(&RELAY).as_ref().map_or(0, |info| info.handle)
}

/// Protocol versions the library speaks, from `moq_version()`.
pub fn known_versions() -> &'static [String] {
    static VERSIONS: OnceLock<Vec<String>> = OnceLock::new();
    VERSIONS.get_or_init(|| {
        // SAFETY: static string.
        let text = unsafe { read_c("moq_version", moq_version()) };
        let inside = text
            .split_once('(')
            .and_then(|(_, rest)| rest.strip_suffix(')'))
            .unwrap_or("");
        inside
            .split(',')
            .filter(|v| v.starts_with("moq-"))
            .map(str::to_string)
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// What the current input created.
// ---------------------------------------------------------------------------------------------

pub struct ClientRec {
    pub handle: usize,
    pub connection_uds: Vec<usize>,
    /// The current announcement watcher, and every one registered (killed with the client).
    pub announce_ud: Option<usize>,
    pub announce_uds: Vec<usize>,
}

impl ClientRec {
    /// The client is gone: none of its connection or announcement callbacks may run again.
    pub fn kill_callbacks(&self) {
        kill_all(&self.connection_uds);
        kill_all(&self.announce_uds);
    }
}

pub struct SubRec {
    pub handle: usize,
    pub client: usize,
    pub ud: Option<usize>,
}

#[derive(Default)]
pub struct World {
    pub clients: Vec<ClientRec>,
    pub publishers: Vec<usize>,
    pub subscribers: Vec<SubRec>,
    pub relays: Vec<usize>,
    pub stale: HashMap<u64, Vec<usize>>,
    pub log_ud: Option<usize>,
    pub log_uds: Vec<usize>,
    /// Set once a callback replaced a log callback or announcement watcher: calls from two
    /// threads may then be ordered differently inside the library than in our records, so
    /// replaced registrations are only judged once the owner is destroyed / the log cleared.
    pub lenient: bool,
    registrations: usize,
    pub poll_terminal: HashMap<usize, bool>,
    created: [usize; 3],
}

impl World {
    pub fn live(&self, kind: u64) -> Vec<usize> {
        match kind {
            K_CLIENT => self.clients.iter().map(|c| c.handle).collect(),
            K_PUBLISHER => self.publishers.clone(),
            K_SUBSCRIBER => self.subscribers.iter().map(|s| s.handle).collect(),
            _ => {
                let mut relays = self.relays.clone();
                relays.push(main_relay_handle());
                relays
            }
        }
    }
    pub fn retire(&mut self, kind: u64, handle: usize) {
        self.stale.entry(kind).or_default().push(handle);
    }
    pub fn client_mut(&mut self, handle: usize) -> Option<&mut ClientRec> {
        self.clients.iter_mut().find(|c| c.handle == handle)
    }
    /// A client was destroyed: its callbacks and its subscribers' callbacks are over.
    pub fn client_gone(&mut self, handle: usize) {
        if let Some(pos) = self.clients.iter().position(|c| c.handle == handle) {
            self.clients.remove(pos).kill_callbacks();
            self.retire(K_CLIENT, handle);
        }
        for sub in self.subscribers.iter().filter(|s| s.client == handle) {
            kill(sub.ud);
        }
    }
    pub fn publisher_gone(&mut self, handle: usize) {
        self.publishers.retain(|p| *p != handle);
        self.retire(K_PUBLISHER, handle);
    }
    pub fn subscriber_gone(&mut self, handle: usize, destroyed: bool) {
        if let Some(pos) = self.subscribers.iter().position(|s| s.handle == handle) {
            kill(self.subscribers[pos].ud);
            if destroyed {
                self.subscribers.remove(pos);
                self.retire(K_SUBSCRIBER, handle);
            }
        }
    }
    pub fn relay_gone(&mut self, handle: usize) {
        self.relays.retain(|r| *r != handle);
        self.retire(K_RELAY, handle);
    }
    /// After a successful `moq_shutdown`: every handle is stale, every registration over.
    pub fn forget_all(&mut self, main_relay: Option<usize>) {
        for client in std::mem::take(&mut self.clients) {
            client.kill_callbacks();
            self.retire(K_CLIENT, client.handle);
        }
        for sub in std::mem::take(&mut self.subscribers) {
            kill(sub.ud);
            self.retire(K_SUBSCRIBER, sub.handle);
        }
        for publisher in std::mem::take(&mut self.publishers) {
            self.retire(K_PUBLISHER, publisher);
        }
        for relay in std::mem::take(&mut self.relays) {
            self.retire(K_RELAY, relay);
        }
        if let Some(relay) = main_relay {
            self.retire(K_RELAY, relay);
        }
        self.log_ud = None;
        self.log_uds.drain(..).for_each(|ud| mark(ud, DEAD));
    }
    /// A new registration of `kind` (None once the per-input cap is reached).
    pub fn register(&mut self, kind: SlotKind) -> Option<usize> {
        if self.registrations >= MAX_REGISTRATIONS {
            return None;
        }
        self.registrations += 1;
        Some(new_slot(kind))
    }
}

static WORLD: Mutex<Option<World>> = Mutex::new(None);

pub fn with_world<R>(f: impl FnOnce(&mut World) -> R) -> R {
    let mut guard = lock(&WORLD);
    f(guard.get_or_insert_with(World::default))
}

/// Takes the world away (the input is over).
pub fn take_world() -> World {
    lock(&WORLD).take().unwrap_or_default()
}

/// An action running in a callback replaces registrations concurrently with the input's thread:
/// from now on replaced ones are judged only when their owner goes (see `World::lenient`).
pub fn lenient_if(in_callback: bool) {
    if in_callback {
        with_world(|world| world.lenient = true);
    }
}

/// A registration of `kind` if the action asked for a callback.
pub fn register_if(callback: bool, kind: SlotKind) -> Option<usize> {
    if callback {
        with_world(|world| world.register(kind))
    } else {
        None
    }
}

/// Counts a creation of kind `which` (0 clients, 1 publishers, 2 subscribers) against its cap.
pub fn creation_allowed(which: usize, cap: usize) -> bool {
    with_world(|world| {
        if world.created[which] >= cap {
            false
        } else {
            world.created[which] += 1;
            true
        }
    })
}

/// Records a new client (NULL: nothing was created).
pub fn adopt_client(client: *mut MoqClient) {
    if client.is_null() {
        return;
    }
    with_world(|world| {
        world.clients.push(ClientRec {
            handle: client as usize,
            connection_uds: Vec::new(),
            announce_ud: None,
            announce_uds: Vec::new(),
        })
    });
}

/// A new announcement watcher replaces the client's previous one (`ud` None: the watcher has
/// no callback; a failed call replaces nothing and its registration must never run).
pub fn watcher_replaced(client: usize, code: MoqResultCode, ud: Option<usize>) {
    if code != MoqResultCode::MOQ_OK {
        kill(ud);
        return;
    }
    with_world(|world| {
        let lenient = world.lenient;
        // A raw handle that hit a client we do not track: never judge its watcher.
        if let Some(rec) = world.client_mut(client) {
            let old = std::mem::replace(&mut rec.announce_ud, ud);
            if !lenient {
                kill(old);
            }
            rec.announce_uds.extend(ud);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Secrets: a URL password and token per iteration that must never reach a log line or message.
// ---------------------------------------------------------------------------------------------

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static ITERATION: AtomicU64 = AtomicU64::new(0);

pub fn secret(which: &str) -> String {
    let n = ITERATION.load(SeqCst);
    format!("{which}{:x}q", n.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 8)
}

/// A new input: new secrets (the last three inputs' stay checked).
pub fn next_iteration() {
    ITERATION.fetch_add(1, SeqCst);
    let mut secrets = lock(&SECRETS);
    secrets.push(secret("pw"));
    secrets.push(secret("tok"));
    let excess = secrets.len().saturating_sub(6);
    secrets.drain(..excess);
}

pub fn check_no_secret(what: &str, text: &str) {
    for secret in lock(&SECRETS).iter() {
        assert!(
            !text.contains(secret.as_str()),
            "FINDING: {what} leaks the URL secret {secret:?}: {text}"
        );
    }
}
