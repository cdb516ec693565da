//! Dialing a relay once: TLS trust, QUIC settings, protocol versions, and the MoQ handshake,
//! bounded by the client's timeout, with errors that say which check failed.

use crate::core::config::{self, ClientConfig};
use crate::error::{self, Error, ErrorKind, Result};
use std::sync::Arc;
use std::time::Duration;

/// One live session with a relay.
pub struct Session {
    pub(crate) connection: moq_tokio::Connection,
    pub(crate) endpoint: moq_tokio::Client,
    pub(crate) version: Option<moq_net::Version>,
    /// What carries the session.
    pub(crate) transport: Transport,
    /// Custom roots staged for moq-tokio, removed when the session is gone.
    _roots: Option<Arc<TempPem>>,
}

/// What carries a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// QUIC (WebTransport over HTTP/3 or raw QUIC): streams and datagrams.
    Quic,
    /// The WebSocket fallback (TCP): streams only, no datagrams.
    WebSocket,
}

impl Transport {
    /// The name reported to users.
    pub fn name(self) -> &'static str {
        match self {
            Self::Quic => "quic",
            Self::WebSocket => "websocket",
        }
    }

    /// Which transport carries `connection`: moq-tokio does not say, but only QUIC reports
    /// packet counts (the WebSocket transport has no packets of its own to count).
    fn of(connection: &moq_tokio::Connection) -> Self {
        match connection.monitor().stats().and_then(|stats| stats.packets_sent) {
            Some(_) => Self::Quic,
            None => Self::WebSocket,
        }
    }
}

/// Dials `url` once and completes the MoQ handshake within the configured timeout.
pub(crate) async fn dial(
    config: ClientConfig,
    publish: moq_net::origin::Consumer,
    subscribe: moq_net::origin::Producer,
    url: url::Url,
) -> Result<Arc<Session>> {
    let timeout = config.timeout;
    let shown = config::redact(&url);
    let mut connect = moq_tokio::connect::Config::default();
    // Our own deadline below is the one that fires (reported as a timeout); moq-tokio's is a
    // backstop.
    connect.timeout = timeout + Duration::from_secs(1);
    connect.once = Some(true);
    connect.version = config.parsed_versions()?;
    connect.bind = config.parsed_bind()?;
    connect.tls.insecure = Some(config.tls_insecure_skip_verify);
    connect.websocket.enabled = Some(config.websocket);
    connect.websocket.delay = config.websocket_delay;
    if let Some(fingerprint) = &config.tls_fingerprint_sha256 {
        connect.tls.fingerprint = vec![fingerprint.clone()];
    }
    // moq-tokio reads custom roots from files and watches their folder for rotations, so the
    // PEM text goes into a private folder of its own that lives as long as the session.
    let roots = match &config.tls_root_ca_pem {
        Some(pem) => Some(Arc::new(TempPem::write(pem)?)),
        None => None,
    };
    if let Some(roots) = &roots {
        connect.tls.root = vec![roots.path.clone()];
    }
    let mut quic = moq_tokio::quic::Config::default();
    quic.keep_alive = config.keep_alive;
    quic.idle_timeout = config.idle_timeout;
    quic.max_streams = Some(config.max_streams);
    let endpoint = connect.init(quic).map_err(|err| {
        Error::new(
            ErrorKind::ConnectionFailed,
            format!("TLS/QUIC setup failed: {}", error::chain(&err)),
        )
    });
    let endpoint = endpoint?
        .with_publisher(publish)
        .with_subscriber(subscribe)
        .with_reconnect(false);

    let established = tokio::time::timeout(timeout, endpoint.connect(url).established()).await;
    match established {
        Ok(Ok(connection)) => Ok(Arc::new(Session {
            version: connection.version(),
            transport: Transport::of(&connection),
            connection,
            endpoint,
            _roots: roots,
        })),
        Ok(Err(moq_tokio::Error::ConnectTimeout(_))) | Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "no MoQ session with {shown} within {} ms (relay unreachable or not answering)",
                timeout.as_millis()
            ),
        )),
        Ok(Err(err)) => Err(Error::new(
            ErrorKind::ConnectionFailed,
            format!("could not connect to {shown}: {}", describe(&err)),
        )),
    }
}

/// The error chain, with a hint for the TLS failures users hit most.
fn describe(err: &moq_tokio::Error) -> String {
    let text = error::chain(err);
    let lower = text.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("fingerprint") {
        format!("TLS certificate verification failed ({text}); trust the relay with tls_root_ca_pem or tls_fingerprint_sha256")
    } else {
        text
    }
}

/// A private folder holding in-memory roots as a PEM file for moq-tokio's file-based loader.
struct TempPem {
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl TempPem {
    fn write(pem: &str) -> Result<Self> {
        use std::io::Write;
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "moq-ffi-roots-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(name);
        let stage_error = |err: std::io::Error| {
            Error::internal(format!("could not stage tls_root_ca_pem in {}: {err}", dir.display()))
        };
        let mut folder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut folder, 0o700);
        folder.create(&dir).map_err(stage_error)?;
        let staged = Self {
            path: dir.join("roots.pem"),
            dir: dir.clone(),
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&staged.path).map_err(stage_error)?;
        file.write_all(pem.as_bytes()).map_err(stage_error)?;
        Ok(staged)
    }
}

impl Drop for TempPem {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}
