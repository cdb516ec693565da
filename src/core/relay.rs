//! The embedded relay: a real `moq-relay` in this process, for tests, demos and local sessions.
//!
//! It listens for QUIC/WebTransport on the given address with a self-signed certificate made in
//! memory (never written to disk), admits anonymous publishers and subscribers, and reports the
//! URL and certificate fingerprint clients need.

use crate::core::config::DEFAULT_MAX_STREAMS;
use crate::error::{Error, ErrorKind, Result};
use crate::runtime;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;

/// The embedded relay's cache target (cached group payload; the oldest groups go first).
pub const EMBEDDED_CACHE: &str = "256MiB";

/// How long starting the relay may take.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long stopping waits for the relay to close its sessions.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a relay whose stop returned first may go on closing in the background before it is
/// aborted (a starved process: the sessions' closes and the socket's release are still queued).
const CLOSE_BOUND: Duration = Duration::from_secs(30);

/// Relays whose stop returned before they finished closing: their ports, and whether they have
/// closed since. A relay started on one of those ports waits for the old one (within its own
/// start bound) instead of failing with "address in use". Entries are dropped once closed, so
/// this holds at most the relays stopped in the last `CLOSE_BOUND`.
static CLOSING: Mutex<Vec<Closing>> = Mutex::new(Vec::new());

struct Closing {
    ports: Vec<u16>,
    closed: watch::Receiver<bool>,
}

/// Locks `CLOSING` with the entries that no longer hold their ports dropped: closed, or their
/// closing task is gone (the runtime shut down).
fn closing_relays() -> std::sync::MutexGuard<'static, Vec<Closing>> {
    let mut closing = CLOSING.lock().unwrap_or_else(PoisonError::into_inner);
    closing.retain(|entry| !*entry.closed.borrow() && entry.closed.has_changed().is_ok());
    closing
}

/// Waits until no relay stopped earlier still holds one of `ports` (0 is never held: the
/// system picks a free port). Errors when one is still closing after `START_TIMEOUT`.
fn wait_for_ports(ports: &[u16]) -> Result<()> {
    let waits: Vec<watch::Receiver<bool>> = {
        closing_relays()
            .iter()
            .filter(|entry| entry.ports.iter().any(|port| *port != 0 && ports.contains(port)))
            .map(|entry| entry.closed.clone())
            .collect()
    };
    if waits.is_empty() {
        return Ok(());
    }
    tracing::info!(?ports, "waiting for a relay stopped on the same port to close");
    runtime::run_blocking(
        "waiting for the relay stopped on this port",
        START_TIMEOUT,
        async move {
            for mut closed in waits {
                // An error means the closing task is gone: it has ended either way.
                let _ = closed.wait_for(|closed| *closed).await;
            }
            Ok(())
        },
    )
    .map_err(|err| {
        Error::new(
            ErrorKind::ConnectionFailed,
            format!("a relay stopped earlier on port {ports:?} is still closing: {err}"),
        )
    })
}

/// A running embedded relay.
pub struct Relay {
    url: String,
    fingerprint: String,
    addr: SocketAddr,
    /// The plain-HTTP web listener (WebSocket fallback, `/certificate.sha256`), when started.
    http: Option<SocketAddr>,
    running: Mutex<Option<Running>>,
}

struct Running {
    trigger: moq_relay::shutdown::Trigger,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Starts a relay bound to `bind_addr` (e.g. `127.0.0.1:0`; port 0 picks a free port).
    pub fn start(bind_addr: &str) -> Result<Self> {
        Self::start_with_web(bind_addr, None)
    }

    /// Starts a relay that also serves plain HTTP on `http_addr`: the WebSocket fallback
    /// (`http://` URLs race `ws://` against QUIC) and `/certificate.sha256`.
    pub fn start_with_web(bind_addr: &str, http_addr: Option<&str>) -> Result<Self> {
        let bind: SocketAddr = bind_addr.parse().map_err(|err| {
            Error::invalid_argument(format!("bind_addr \"{bind_addr}\" is not an IP:port address: {err}"))
        })?;
        let http = http_addr
            .map(|addr| {
                addr.parse::<SocketAddr>().map_err(|err| {
                    Error::invalid_argument(format!("http_addr \"{addr}\" is not an IP:port address: {err}"))
                })
            })
            .transpose()?;
        wait_for_ports(&[bind.port(), http.map_or(0, |addr| addr.port())])?;
        let identity = moq_tokio::tls::Identity::generate(["localhost"])
            .map_err(|err| Error::internal(format!("could not generate the relay certificate: {err}")))?;
        let fingerprint = identity.fingerprint().to_string();

        let mut config = moq_relay::Config::default();
        config.drain_timeout = Duration::ZERO;
        // moq-relay's cache is unbounded unless told otherwise; an embedded relay must not grow
        // the host process without bound.
        config.cache.capacity = Some(EMBEDDED_CACHE.to_string());
        // A client's stream limit, for the same reason (see `DEFAULT_MAX_STREAMS`): it caps the
        // groups a publishing client has in flight to this relay during a burst.
        config.quic.max_streams = Some(DEFAULT_MAX_STREAMS);
        config.listen.bind = Some(moq_tokio::listen::Bind::Addr(bind));
        config.listen.tls.identity = Some(identity);
        config.auth.public = vec![moq_auth::Pattern::all()];
        config.web.http.listen = http;
        config.web.ws = http.is_some();

        let (relay, addr) = runtime::run_blocking("starting the relay", START_TIMEOUT, async move {
            let relay = moq_relay::Relay::load(config).await.map_err(|err| {
                Error::new(
                    ErrorKind::ConnectionFailed,
                    format!("could not start the relay on {bind}: {err:#}"),
                )
            })?;
            let addr = relay
                .quic_addr()
                .map_err(|err| Error::internal(format!("the relay has no QUIC address: {err:#}")))?;
            Ok((relay, addr))
        })?;
        let http = relay.web_addrs().http;
        let trigger = relay.shutdown_trigger().clone();
        let ready = relay.ready();
        let handle = runtime::handle()?;
        let task = handle.spawn(async move {
            if let Err(err) = relay.run().await {
                tracing::error!("embedded relay stopped: {err:#}");
            }
        });
        let running = Running { trigger, task };
        if let Err(err) = runtime::run_blocking("starting the relay", START_TIMEOUT, async move {
            ready.wait().await.map_err(|err| {
                Error::new(
                    ErrorKind::ConnectionFailed,
                    format!("the relay failed to start: {err:#}"),
                )
            })
        }) {
            running.task.abort();
            return Err(err);
        }
        tracing::info!(%addr, "embedded relay listening");
        Ok(Self {
            url: format!("https://localhost:{}", addr.port()),
            fingerprint,
            addr,
            http,
            running: Mutex::new(Some(running)),
        })
    }

    /// The plain-HTTP listener's URL (`http://localhost:PORT`), when the relay serves one.
    pub fn http_url(&self) -> Option<String> {
        self.http.map(|addr| format!("http://localhost:{}", addr.port()))
    }

    /// The URL clients connect to, `https://localhost:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Hex SHA-256 of the relay's certificate, for `tls_fingerprint_sha256`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The bound QUIC address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the relay and closes its sessions. Idempotent. Waits at most `STOP_TIMEOUT`; a
    /// relay that has not closed by then (a starved process) goes on closing in the background,
    /// aborted after `CLOSE_BOUND`, and a relay started on its port meanwhile waits for it.
    pub fn stop(&self) {
        let Some(running) = self.running.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return;
        };
        running.trigger.start();
        let Ok(handle) = runtime::handle() else {
            // The runtime is gone (library shut down): so is the relay's task.
            running.task.abort();
            return;
        };
        let (closed_tx, closed) = watch::channel(false);
        let mut task = running.task;
        handle.spawn(async move {
            if tokio::time::timeout(CLOSE_BOUND, &mut task).await.is_err() {
                tracing::warn!("the embedded relay had not closed {CLOSE_BOUND:?} after its stop: aborted");
                task.abort();
                let _ = task.await;
            }
            let _ = closed_tx.send(true);
        });
        let port = self.addr.port();
        // Tests make this wait time out at once (`inject::set_fault("relay:stop:<port>")`).
        let timeout = match crate::inject::fault("relay:stop", &port.to_string()) {
            true => Duration::ZERO,
            false => STOP_TIMEOUT,
        };
        let mut wait = closed.clone();
        let stopped = runtime::run_blocking("stopping the relay", timeout, async move {
            let _ = wait.wait_for(|closed| *closed).await;
            Ok(())
        });
        if stopped.is_err() && !*closed.borrow() {
            tracing::warn!(
                port,
                "the embedded relay is still closing after its stop returned; a relay started on its port waits for it"
            );
            let ports = vec![port, self.http.map_or(0, |addr| addr.port())];
            closing_relays().push(Closing { ports, closed });
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}
