//! The embedded relay: a real `moq-relay` in this process, for tests, demos and local sessions.
//!
//! It listens for QUIC/WebTransport on the given address with a self-signed certificate made in
//! memory (never written to disk), admits anonymous publishers and subscribers, and reports the
//! URL and certificate fingerprint clients need.

use crate::error::{Error, ErrorKind, Result};
use crate::runtime;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The embedded relay's cache target (cached group payload; the oldest groups go first).
pub const EMBEDDED_CACHE: &str = "256MiB";

/// How long starting the relay may take.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long stopping waits for the relay to close its sessions.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

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
        let identity = moq_tokio::tls::Identity::generate(["localhost"])
            .map_err(|err| Error::internal(format!("could not generate the relay certificate: {err}")))?;
        let fingerprint = identity.fingerprint().to_string();

        let mut config = moq_relay::Config::default();
        config.drain_timeout = Duration::ZERO;
        // moq-relay's cache is unbounded unless told otherwise; an embedded relay must not grow
        // the host process without bound.
        config.cache.capacity = Some(EMBEDDED_CACHE.to_string());
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

    /// Stops the relay and closes its sessions (bounded wait). Idempotent.
    pub fn stop(&self) {
        let Some(running) = self.running.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return;
        };
        running.trigger.start();
        let abort = running.task.abort_handle();
        let stopped = runtime::run_blocking("stopping the relay", STOP_TIMEOUT, async move {
            let _ = running.task.await;
            Ok(())
        });
        if stopped.is_err() {
            abort.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}
