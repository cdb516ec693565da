//! A client: one relay connection, the broadcasts it publishes and the subscriptions it holds.
//!
//! State changes are reported through the connection callback on the dispatcher thread. The
//! connection is watched by a background task, which turns the
//! client DISCONNECTED at once when the relay closes it, and within ~5 s when it goes silent
//! (QUIC keep-alive 1 s, idle timeout 5 s by default: short enough to notice, long enough that a
//! busy host does not drop healthy sessions). Dialing itself lives in [`crate::core::dial`].

use crate::core::config::{self, ClientConfig};
pub use crate::core::connection::ConnectionState;
use crate::core::connection::Machine;
use crate::core::dial::{dial, Session};
use crate::core::events::Event;
use crate::core::poll::Hub;
use crate::core::stats::{Counters, Snapshot, Tally};
use crate::dispatch::{self, Gate};
use crate::error::{self, Error, ErrorKind, Result};
use crate::runtime;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

/// Receives connection state changes on the dispatcher thread.
pub type StateCallback = Arc<dyn Fn(ConnectionState) + Send + Sync>;

/// A connection callback to register with a connect call: `key` identifies it (the C edge uses
/// the function and `user_data`), so connecting again with the same one keeps its queued events.
pub struct StateSink {
    /// Identity of the callback.
    pub key: (usize, usize),
    /// The function called with each state.
    pub callback: StateCallback,
}

/// The connection callback as one connect call registered it, with a gate of its own: when a
/// later connect replaces it, or the client is destroyed, its gate is closed, so its queued
/// events are discarded and (unless closed from inside a callback) none of them runs after the
/// replacing call returns.
struct Registration {
    key: (usize, usize),
    callback: StateCallback,
    gate: Arc<Gate>,
}

/// How long `disconnect` waits for the relay to acknowledge the close.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(2000);

struct Inner {
    /// Connection state, the current connect's epoch (background outcomes of older epochs are
    /// ignored), and whether the client is destroyed.
    state: Machine,
    /// Shared so the publish path can check the session without cloning it.
    session: Option<Arc<Session>>,
    /// Where the last connect went, for reconnecting.
    url: Option<url::Url>,
    /// The connection callback of the last connect call, if it passed one.
    callback: Option<Arc<Registration>>,
    /// Why the client is not connected, once something went wrong.
    last_error: Option<Error>,
    broadcasts: HashMap<String, moq_net::broadcast::Producer>,
    /// What `destroy` stops: the client's subscriptions (held weakly: a subscription destroyed
    /// by its own handle goes away on its own).
    children: Vec<Weak<dyn Child>>,
    /// The announcement watcher (`moq_subscribe_announces`), if one is registered.
    announcer: Option<Arc<dyn Child>>,
}

/// What a client owns and stops when it is destroyed: its subscriptions and its announcement
/// watcher. The children know their client (weakly); the client knows them only by this, so
/// `client.rs` depends on neither `subscribe` nor `announce`.
pub(crate) trait Child: Send + Sync {
    /// Stops the child: afterwards none of its callbacks runs (and, unless called from inside
    /// one, none is running). Idempotent.
    fn stop(&self);
}

/// A MoQ client.
pub struct Client {
    config: ClientConfig,
    /// Broadcasts this client publishes; served to every session.
    local: moq_net::origin::Producer,
    /// The byte budget of `local`'s cached groups (`publish_buffer_bytes`).
    publish_pool: moq_net::cache::Pool,
    /// Broadcasts the relay announces to us.
    remote: moq_net::origin::Producer,
    inner: Mutex<Inner>,
    /// Mirrors `Inner::state` for tasks that wait for a session (subscribers resuming).
    state_tx: tokio::sync::watch::Sender<ConnectionState>,
    /// Totals over the client's publishers and subscribers, plus reconnects.
    counters: Arc<Counters>,
    /// Events queued for `moq_poll`.
    hub: Arc<Hub>,
    /// What the publish path needs of the connected session, readable without `inner`'s lock
    /// (see [`Client::session_flags`]); kept in step with `Inner::state` and `Inner::session`
    /// under the lock.
    session_flags: AtomicU8,
}

/// [`Client::session_flags`]: CONNECTED with a session.
const CONNECTED: u8 = 1;
/// [`Client::session_flags`]: the session can carry datagrams (protocol and transport).
const DATAGRAMS: u8 = 2;
/// [`Client::session_flags`]: the session runs over the WebSocket fallback.
const WEBSOCKET: u8 = 4;

/// What the publish path needs to know of the connected session ([`Client::session_flags`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionFlags(u8);

impl SessionFlags {
    /// Whether the session can carry datagrams (moq-lite-05+ or moq-transport, over QUIC).
    pub(crate) fn datagrams(self) -> bool {
        self.0 & DATAGRAMS != 0
    }

    /// Whether the session runs over the WebSocket fallback.
    pub(crate) fn websocket(self) -> bool {
        self.0 & WEBSOCKET != 0
    }
}

impl Client {
    /// Creates a disconnected client.
    pub fn new(config: ClientConfig) -> Result<Arc<Self>> {
        let config = config.validated()?;
        if config.tls_insecure_skip_verify {
            tracing::warn!("TLS certificate verification is disabled for this client (tls_insecure_skip_verify); use it only for development");
        }
        let handle = runtime::handle()?;
        let _enter = handle.enter();
        let publish_pool = moq_net::cache::Pool::new(
            moq_net::cache::Config::default()
                .with_capacity(config.publish_buffer_bytes)
                .with_expiry(moq_net::cache::DEFAULT_EXPIRY),
        );
        Ok(Arc::new(Self {
            config,
            local: moq_tokio::origin::spawn_config(publish_origin(&publish_pool)),
            publish_pool,
            remote: moq_tokio::origin::spawn_config(receive_origin()),
            inner: Mutex::new(Inner {
                state: Machine::default(),
                session: None,
                url: None,
                callback: None,
                last_error: None,
                broadcasts: HashMap::new(),
                children: Vec::new(),
                announcer: None,
            }),
            state_tx: tokio::sync::watch::Sender::new(ConnectionState::Disconnected),
            counters: Arc::default(),
            hub: Hub::new(),
            session_flags: AtomicU8::new(0),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bound on blocking operations.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// The current connection state.
    pub fn state(&self) -> ConnectionState {
        self.lock().state.state()
    }

    /// Why the client is not connected, if something went wrong.
    pub fn last_error(&self) -> Option<Error> {
        self.lock().last_error.clone()
    }

    /// The live session, or `NotConnected` naming `what` needed it.
    pub(crate) fn session(&self, what: &str) -> Result<Arc<Session>> {
        let inner = self.lock();
        match (&inner.session, inner.state.state()) {
            (Some(session), ConnectionState::Connected) => Ok(session.clone()),
            _ => Err(match &inner.last_error {
                Some(reason) => Error::new(
                    ErrorKind::NotConnected,
                    format!("{what} needs a connected client; the connection ended: {reason}"),
                ),
                None => Error::not_connected(what),
            }),
        }
    }

    /// This client's own broadcast for `namespace`, if it publishes one: the relay does not send
    /// a session its own announcements back, so subscribing to it goes through the local origin.
    pub(crate) fn own_broadcast(&self, namespace: &str) -> Option<moq_net::broadcast::Consumer> {
        self.lock()
            .broadcasts
            .get(namespace)
            .map(|broadcast| broadcast.consume())
    }

    /// The origin the relay's broadcasts arrive in.
    pub(crate) fn remote(&self) -> &moq_net::origin::Producer {
        &self.remote
    }

    /// Whether `len` more bytes may be published now: always under the DROP_OLDEST policy (the
    /// buffer evicts its oldest groups), under ERROR only while they fit below the cap.
    pub(crate) fn publish_room(&self, len: usize) -> Result<()> {
        if self.config.publish_overflow == config::Overflow::DropOldest {
            return Ok(());
        }
        let used = self.publish_pool.used();
        let cap = self.config.publish_buffer_bytes;
        if used.saturating_add(len as u64) > cap {
            return Err(Error::new(
                ErrorKind::WouldBlock,
                format!(
                    "the publish buffer holds {used} of its {cap} bytes (publish_buffer_bytes); {len} more do not fit: retry later or skip the object"
                ),
            ));
        }
        Ok(())
    }

    /// Bytes the client's publishers keep buffered now.
    pub fn publish_buffered(&self) -> u64 {
        self.publish_pool.used()
    }

    /// The queue `moq_poll` drains.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    fn emit(&self, registration: Option<Arc<Registration>>, state: ConnectionState) {
        if self.config.poll_events {
            self.hub.push_control(Event::Connection(state));
        }
        if let Some(registration) = registration {
            let callback = registration.callback.clone();
            // At the cap the newest state replaces the newest waiting one: the last state is
            // always delivered.
            match dispatch::post_latest(
                &registration.gate,
                "connection state",
                Box::new(move || callback(state)),
            ) {
                Ok(posted) if posted.dropped_one() => self.counters.events_dropped(1),
                Ok(_) => {}
                Err(err) => tracing::error!("dropped connection event {state:?}: {err}"),
            }
        }
    }

    /// Publishes `inner`'s state (to waiters and the publish path) after a transition or a
    /// session change; called under the lock.
    fn state_changed(&self, inner: &Inner) {
        self.state_tx.send_replace(inner.state.state());
        // Mirrors the state and the session into `session_flags` for the publish path.
        let flags = match (&inner.session, inner.state.state()) {
            (Some(session), ConnectionState::Connected) => {
                let websocket = session.transport == crate::core::dial::Transport::WebSocket;
                let datagrams = !websocket && crate::core::capabilities::carries_datagrams(session.version);
                CONNECTED | if datagrams { DATAGRAMS } else { 0 } | if websocket { WEBSOCKET } else { 0 }
            }
            _ => 0,
        };
        self.session_flags.store(flags, Ordering::Release);
    }

    /// The connected session as the publish path needs it, without taking a lock (publishing
    /// from many threads, and callbacks, never contend here). `None` when not connected; the
    /// reason is [`Client::session`]'s error.
    pub(crate) fn session_flags(&self) -> Option<SessionFlags> {
        let flags = self.session_flags.load(Ordering::Acquire);
        (flags & CONNECTED != 0).then_some(SessionFlags(flags))
    }

    /// Connects to `url`, blocking until connected or failed (bounded by the timeout).
    pub fn connect(self: &Arc<Self>, url: &str, callback: Option<StateSink>) -> Result<()> {
        let (epoch, url) = self.begin_connect(url, callback)?;
        let what = format!("connect to {}", config::redact(&url));
        // The dial bounds itself; the outer bound only guards against one that never returns.
        let client = self.clone();
        let result = runtime::run_blocking(&what, self.config.timeout + Duration::from_secs(2), async move {
            client.establish(epoch, url).await
        });
        if let Err(err) = &result {
            self.connect_failed(epoch, err.clone());
        }
        result
    }

    /// Starts connecting to `url` and returns at once; the outcome arrives through `callback`.
    pub fn connect_async(self: &Arc<Self>, url: &str, callback: Option<StateSink>) -> Result<()> {
        let (epoch, url) = self.begin_connect(url, callback)?;
        let handle = runtime::handle()?;
        let client = self.clone();
        let weak = Arc::downgrade(self);
        runtime::spawn_supervised(
            &handle,
            "the connect task",
            async move {
                let _ = client.establish(epoch, url).await;
            },
            move |err| {
                if let Some(client) = weak.upgrade() {
                    client.connect_failed(epoch, err);
                }
            },
        );
        Ok(())
    }

    /// Validates `url`, registers `callback` (replacing the previous one), moves to CONNECTING
    /// and reports it; returns the new epoch.
    ///
    /// A replaced callback's gate is closed before this returns: its queued events are
    /// discarded and, unless this runs inside a callback, none of its calls is running any more.
    /// The same callback (same key) keeps its registration and its queued events. Nothing
    /// changes when this fails.
    fn begin_connect(&self, url: &str, callback: Option<StateSink>) -> Result<(u64, url::Url)> {
        let url = config::parse_url(url)?;
        let (epoch, registration, replaced) = {
            let mut inner = self.lock();
            let epoch = inner.state.connect()?;
            self.state_changed(&inner);
            let same = matches!((&inner.callback, &callback), (Some(old), Some(new)) if old.key == new.key);
            let replaced = match same {
                true => None,
                false => std::mem::replace(
                    &mut inner.callback,
                    callback.map(|sink| {
                        Arc::new(Registration {
                            key: sink.key,
                            callback: sink.callback,
                            gate: Gate::new(),
                        })
                    }),
                ),
            };
            inner.last_error = None;
            inner.url = Some(url.clone());
            (epoch, inner.callback.clone(), replaced)
        };
        // Outside the lock: closing waits for a running call of the old callback, which may
        // call into this client.
        if let Some(replaced) = replaced {
            dispatch::close(&replaced.gate);
        }
        self.emit(registration, ConnectionState::Connecting);
        tracing::info!(url = %config::redact(&url), "connecting");
        Ok((epoch, url))
    }

    /// Dials and, if this connect is still current, becomes CONNECTED.
    async fn establish(self: Arc<Self>, epoch: u64, url: url::Url) -> Result<()> {
        let shown = config::redact(&url);
        let session = match self.dial(url).await {
            Ok(session) => session,
            Err(err) => {
                self.connect_failed(epoch, err.clone());
                return Err(err);
            }
        };
        let mut inner = self.lock();
        if !inner.state.established(epoch) {
            drop(inner);
            session.connection.abort(moq_net::Error::Cancel);
            return Err(Error::new(
                ErrorKind::Closed,
                format!("connect to {shown} was cancelled by moq_disconnect"),
            ));
        }
        inner.session = Some(session.clone());
        self.state_changed(&inner);
        let callback = inner.callback.clone();
        drop(inner);
        tracing::info!(url = %shown, version = ?session.version, "connected");
        self.emit(callback, ConnectionState::Connected);
        self.watch(epoch, session);
        Ok(())
    }

    fn dial(&self, url: url::Url) -> impl std::future::Future<Output = Result<Arc<Session>>> + Send + 'static {
        dial(self.config.clone(), self.local.consume(), self.remote.clone(), url)
    }

    /// Dials a second session to the relay for fetching alone: its own receive origin (returned
    /// with it) and nothing published, so it shares no route or cache with the main session.
    /// A subscription uses it to fetch groups the main session can no longer fetch (the relay
    /// ended the live subscription while they were on their way; see `subscribe::session`);
    /// dropping both closes it. Fails without a connected main session.
    ///
    /// The session asks the relay only for the announcement of `broadcast` (its origin is
    /// scoped to that one path): a new session asking for every announcement would first
    /// receive all the relay announces (a hostile publisher's 100,000 broadcasts took it past
    /// the fetch's wait for the one it needs, on a loaded machine).
    pub(crate) fn dial_for_fetching(
        &self,
        broadcast: &str,
    ) -> impl std::future::Future<Output = Result<(Arc<Session>, moq_net::origin::Producer)>> + Send + 'static {
        let url = self.session("fetching").map(|_| self.lock().url.clone());
        let config = self.config.clone();
        let scope = moq_net::Pattern::literal(broadcast).map(moq_net::Patterns::from);
        async move {
            let url = url?.ok_or_else(|| Error::not_connected("fetching"))?;
            let remote = moq_tokio::origin::spawn_config(receive_origin());
            let remote = match scope {
                Ok(scope) => remote
                    .scope("", &scope)
                    .map_err(|err| Error::internal(format!("could not scope the fetch session: {err}")))?,
                // A path no pattern can name (wildcard characters): every announcement, as before.
                Err(_) => remote,
            };
            let nothing = moq_tokio::origin::spawn();
            let session = dial(config, nothing.consume(), remote.clone(), url).await?;
            Ok((session, remote))
        }
    }

    /// Records a failed connect (if it is still the current one) and reports FAILED.
    fn connect_failed(&self, epoch: u64, err: Error) {
        let mut inner = self.lock();
        if !inner.state.connect_failed(epoch) {
            return;
        }
        self.state_changed(&inner);
        inner.last_error = Some(err.clone());
        let callback = inner.callback.clone();
        drop(inner);
        tracing::warn!("{err}");
        self.emit(callback, ConnectionState::Failed);
    }

    /// The client's totals; `rtt_us` from the live session.
    pub fn stats(&self) -> Snapshot {
        let counters = self.counters.snapshot();
        Snapshot {
            rtt_us: self.rtt_us(),
            publish_buffered: self.publish_buffered(),
            events_dropped: counters.events_dropped + self.hub.control_dropped(),
            ..counters
        }
    }

    /// Counts control events (announcements) a full callback queue dropped.
    pub(crate) fn events_dropped(&self, count: u64) {
        self.counters.events_dropped(count);
    }

    /// The live session's smoothed RTT in microseconds, 0 without a session.
    pub fn rtt_us(&self) -> u64 {
        let session = self.lock().session.clone();
        session
            .and_then(|session| session.connection.monitor().stats()?.rtt)
            .map_or(0, |rtt| rtt.as_micros() as u64)
    }

    /// A tally for a publisher or subscriber of this client.
    pub(crate) fn tally(&self) -> Tally {
        Tally::new(self.counters.clone())
    }

    /// What carries the live session, if there is one.
    pub fn transport(&self) -> Option<crate::core::dial::Transport> {
        let inner = self.lock();
        match inner.state.state() {
            ConnectionState::Connected => inner.session.as_ref().map(|session| session.transport),
            _ => None,
        }
    }

    /// The negotiated protocol version of the live session.
    pub fn protocol_version(&self) -> Option<String> {
        let inner = self.lock();
        match inner.state.state() {
            ConnectionState::Connected => inner.session.as_ref()?.version.map(|v| v.to_string()),
            _ => None,
        }
    }

    /// Waits until the client is connected; fails once it is disconnected, failed or destroyed.
    /// A `patient` waiter also waits through DISCONNECTED and FAILED (a subscription waiting for
    /// its track); only the client's destruction ends its wait.
    pub(crate) async fn wait_connected(&self, patient: bool) -> Result<()> {
        let mut states = self.state_tx.subscribe();
        loop {
            let state = *states.borrow_and_update();
            match state {
                ConnectionState::Connected => return Ok(()),
                ConnectionState::Connecting | ConnectionState::Reconnecting => {}
                ConnectionState::Disconnected | ConnectionState::Failed if patient => {}
                ConnectionState::Disconnected | ConnectionState::Failed => {
                    return Err(Error::new(ErrorKind::Closed, "the client disconnected"))
                }
            }
            if states.changed().await.is_err() {
                return Err(Error::new(ErrorKind::Closed, "the client was destroyed"));
            }
        }
    }

    /// Why the session ended, if it ended within `within` (the connection monitor reports it a
    /// moment after the streams fail): a subscription that failed with the session names that
    /// cause ("the connection to the relay was lost: ... timed out") rather than the stream
    /// error it caused ("internal error").
    pub(crate) async fn session_loss(&self, within: Duration) -> Option<Error> {
        let mut states = self.state_tx.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if *states.borrow_and_update() != ConnectionState::Connected {
                return self.last_error();
            }
            match tokio::time::timeout_at(deadline, states.changed()).await {
                Ok(Ok(())) => continue,
                _ => return None,
            }
        }
    }

    /// Whether a lost subscription should wait for the session to come back.
    pub(crate) fn resumable(&self) -> bool {
        self.lock().state.resumable(self.config.reconnect)
    }

    /// Watches the session and reports when it ends on its own.
    fn watch(self: &Arc<Self>, epoch: u64, session: Arc<Session>) {
        let client = Arc::downgrade(self);
        let on_panic = {
            let client = client.clone();
            move |err: Error| {
                if let Some(client) = client.upgrade() {
                    client.lost(epoch, err);
                }
            }
        };
        let Ok(handle) = runtime::handle() else { return };
        let idle_timeout = self.config.idle_timeout;
        runtime::spawn_supervised(
            &handle,
            "the connection monitor",
            async move {
                crate::inject::check("task:connection");
                let reason = match session.connection.closed().await {
                    Ok(()) => Error::new(ErrorKind::Closed, "the relay closed the session"),
                    Err(err) => Error::new(ErrorKind::ConnectionFailed, lost(&error::chain(&err), idle_timeout)),
                };
                if let Some(client) = client.upgrade() {
                    client.lost(epoch, reason);
                }
            },
            on_panic,
        );
    }

    /// The session ended on its own: DISCONNECTED, or RECONNECTING and a redial loop.
    fn lost(self: &Arc<Self>, epoch: u64, reason: Error) {
        let mut inner = self.lock();
        let Some(state) = inner.state.lost(epoch, self.config.reconnect) else {
            return;
        };
        let reconnect = state == ConnectionState::Reconnecting;
        inner.session = None;
        self.state_changed(&inner);
        inner.last_error = Some(reason.clone());
        let callback = inner.callback.clone();
        drop(inner);
        tracing::warn!("{reason}");
        self.emit(callback, state);
        if reconnect {
            if let Ok(handle) = runtime::handle() {
                let weak = Arc::downgrade(self);
                let restarted = weak.clone();
                runtime::spawn_supervised(&handle, "the reconnect loop", redial(weak, epoch), move |err| {
                    if let Some(client) = restarted.upgrade() {
                        client.give_up(epoch, err);
                    }
                });
            }
        }
    }

    /// A redial succeeded: CONNECTED again (if nothing changed meanwhile).
    fn restored(self: &Arc<Self>, epoch: u64, session: Arc<Session>) {
        let mut inner = self.lock();
        if !inner.state.restored(epoch) {
            drop(inner);
            session.connection.abort(moq_net::Error::Cancel);
            return;
        }
        inner.session = Some(session.clone());
        self.state_changed(&inner);
        inner.last_error = None;
        let callback = inner.callback.clone();
        drop(inner);
        self.counters.reconnected();
        tracing::info!(version = ?session.version, "reconnected");
        self.emit(callback, ConnectionState::Connected);
        self.watch(epoch, session);
    }

    /// The reconnect loop stopped unexpectedly: DISCONNECTED with the reason.
    fn give_up(&self, epoch: u64, reason: Error) {
        let mut inner = self.lock();
        if !inner.state.give_up(epoch) {
            return;
        }
        self.state_changed(&inner);
        inner.last_error = Some(reason);
        let callback = inner.callback.clone();
        drop(inner);
        self.emit(callback, ConnectionState::Disconnected);
    }

    /// Closes the session (if any). Idempotent; DISCONNECTED is reported if a session or a
    /// connect was live.
    pub fn disconnect(&self) {
        let mut inner = self.lock();
        let was = inner.state.disconnect();
        let session = inner.session.take();
        self.state_changed(&inner);
        let callback = inner.callback.clone();
        drop(inner);
        if let Some(session) = session {
            let closing = async move {
                let _ = session.connection.clone().close().await;
                session.endpoint.clone().close().await;
                Ok(())
            };
            if let Err(err) = runtime::run_blocking("disconnect", CLOSE_TIMEOUT, closing) {
                tracing::debug!("closing the session: {err}");
            }
        }
        if matches!(
            was,
            ConnectionState::Connected | ConnectionState::Connecting | ConnectionState::Reconnecting
        ) {
            self.emit(callback, ConnectionState::Disconnected);
        }
    }

    /// Like [`Client::destroy`] but without waiting for the relay to acknowledge the close
    /// (used when the library shuts down).
    pub fn abort(&self) {
        let session = {
            let mut inner = self.lock();
            inner.state.destroy();
            inner.state.disconnect();
            let session = inner.session.take();
            self.state_changed(&inner);
            session
        };
        if let Some(session) = session {
            session.connection.abort(moq_net::Error::Cancel);
        }
        self.destroy();
    }

    /// Disconnects, stops every callback of this client and its subscribers, and ends its
    /// broadcasts. Afterwards no callback of this client runs (unless called from one).
    pub fn destroy(&self) {
        let (children, announcer) = {
            let mut inner = self.lock();
            inner.state.destroy();
            (std::mem::take(&mut inner.children), inner.announcer.take())
        };
        if let Some(announcer) = announcer {
            announcer.stop();
        }
        self.disconnect();
        // Taken under the lock after `destroyed` was set, so no connect registers another one.
        let registration = self.lock().callback.take();
        if let Some(registration) = registration {
            dispatch::close(&registration.gate);
        }
        self.hub.close_all();
        for child in children.iter().filter_map(Weak::upgrade) {
            child.stop();
        }
        let broadcasts = std::mem::take(&mut self.lock().broadcasts);
        for (_, broadcast) in broadcasts {
            broadcast.close();
        }
    }

    /// Registers the announcement watcher (`announce::watch`), replacing (and stopping) the one
    /// registered before; a destroyed client stops it at once and fails.
    pub(crate) fn set_announcer(&self, announcer: Arc<dyn Child>) -> Result<()> {
        let previous = {
            let mut inner = self.lock();
            if inner.state.destroyed() {
                drop(inner);
                announcer.stop();
                return Err(Error::new(ErrorKind::Closed, "the client is being destroyed"));
            }
            inner.announcer.replace(announcer)
        };
        // Outside the lock: stopping waits for a running callback, which may call into the client.
        if let Some(previous) = previous {
            previous.stop();
        }
        Ok(())
    }

    /// Stops reporting announcements. Idempotent.
    pub fn unwatch_announces(&self) {
        let previous = self.lock().announcer.take();
        if let Some(previous) = previous {
            previous.stop();
        }
    }

    /// Registers a child (a subscription) so `destroy` can stop it; fails once destroyed.
    pub(crate) fn adopt(&self, child: Weak<dyn Child>) -> Result<()> {
        let mut inner = self.lock();
        if inner.state.destroyed() {
            return Err(Error::new(ErrorKind::Closed, "the client is being destroyed"));
        }
        inner.children.retain(|child| child.strong_count() > 0);
        inner.children.push(child);
        Ok(())
    }

    /// The broadcast for `namespace`, creating and announcing it on first use.
    ///
    /// moq-net sends the announcement on the live session (and on every later one) and does not
    /// surface a per-announce acknowledgement, so what can fail here is what the session and
    /// the origin report: no session, an invalid path, a duplicate.
    pub(crate) fn broadcast(&self, namespace: &str) -> Result<moq_net::broadcast::Producer> {
        config::check_namespace(namespace)?;
        self.session("announcing a namespace")?;
        if let Some(broadcast) = self.lock().broadcasts.get(namespace) {
            return Ok(broadcast.clone());
        }
        let broadcast = self
            .local
            .create_broadcast(namespace)
            .map_err(|err| error::from_moq(&err, format!("announcing namespace \"{namespace}\"")))?;
        broadcast
            .announce(Default::default())
            .map_err(|err| error::from_moq(&err, format!("announcing namespace \"{namespace}\"")))?;
        let mut inner = self.lock();
        let entry = inner.broadcasts.entry(namespace.to_string()).or_insert(broadcast);
        Ok(entry.clone())
    }
}

/// Bytes of received objects a client keeps cached for its subscriptions. moq-net's origin has no
/// byte target by default, so without one every object received stays cached until the idle
/// expiry; with it the oldest groups are evicted first (a subscription far enough behind to
/// need them has long skipped them).
pub const RECEIVE_CACHE_BYTES: u64 = 32 << 20;

/// The origin configuration for published broadcasts: the client's publish buffer.
fn publish_origin(pool: &moq_net::cache::Pool) -> moq_net::origin::Config {
    let mut config = moq_net::origin::Config::default();
    config.pool = pool.clone();
    config
}

/// The origin configuration for received broadcasts: a bounded cache pool.
fn receive_origin() -> moq_net::origin::Config {
    let pool = moq_net::cache::Config::default()
        .with_capacity(RECEIVE_CACHE_BYTES)
        .with_expiry(moq_net::cache::DEFAULT_EXPIRY);
    let mut config = moq_net::origin::Config::default();
    config.pool = moq_net::cache::Pool::new(pool);
    config
}

/// Redials with exponential backoff and jitter until a session is back, the client is
/// disconnected or destroyed.
async fn redial(client: Weak<Client>, epoch: u64) {
    let Some((mut delay, max)) = client
        .upgrade()
        .map(|c| (c.config.reconnect_initial, c.config.reconnect_max))
    else {
        return;
    };
    loop {
        tokio::time::sleep(jittered(delay)).await;
        let Some(current) = client.upgrade() else { return };
        let url = {
            let inner = current.lock();
            if !inner.state.redialing(epoch) {
                return;
            }
            inner.url.clone()
        };
        let Some(url) = url else { return };
        match current.dial(url).await {
            Ok(session) => return current.restored(epoch, session),
            Err(err) => {
                tracing::info!("reconnect attempt failed: {err}");
                current.lock().last_error = Some(err);
            }
        }
        drop(current);
        delay = (delay * 2).min(max);
    }
}

/// `delay` scaled by a random factor in [0.5, 1.0), so many clients (or subscriptions) do not
/// retry in lockstep.
pub(crate) fn jittered(delay: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    let fraction = (hasher.finish() % 1000) as f64 / 2000.0;
    delay.mul_f64(0.5 + fraction)
}

/// Why a session ended, for its DISCONNECTED / RECONNECTING status and `moq_last_error`. The
/// transport reports its idle timeout only as text ("timed out"), which a user reads as a slow
/// relay; it means nothing was received from the relay for `idle_timeout` (a dead relay or
/// network, or a process too starved to read what arrived).
fn lost(cause: &str, idle_timeout: Duration) -> String {
    if cause.ends_with("timed out") {
        format!(
            "the connection to the relay was lost: nothing received from the relay within the idle timeout \
             ({} ms): {cause}",
            idle_timeout.as_millis()
        )
    } else {
        format!("the connection to the relay was lost: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::lost;
    use std::time::Duration;

    #[test]
    fn an_idle_timeout_is_named() {
        assert_eq!(
            lost("transport: connection error: timed out", Duration::from_millis(10_000)),
            "the connection to the relay was lost: nothing received from the relay within the idle timeout \
             (10000 ms): transport: connection error: timed out"
        );
        assert_eq!(
            lost(
                "transport: connection error: reset by peer",
                Duration::from_millis(10_000)
            ),
            "the connection to the relay was lost: transport: connection error: reset by peer"
        );
    }
}
