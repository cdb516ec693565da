//! Client configuration and the validation of every string the core accepts.

use crate::error::{Error, Result};
use std::time::Duration;

/// Longest namespace or track name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest URL, in bytes.
pub const MAX_URL_LEN: usize = 8192;
/// Largest PEM bundle accepted as `tls_root_ca_pem`, in bytes.
pub const MAX_PEM_LEN: usize = 1 << 20;
/// Largest object accepted in stream mode, in bytes.
pub const MAX_OBJECT_SIZE: usize = 16 << 20;
/// Largest object accepted in datagram mode, in bytes: what one QUIC datagram carries on any
/// path (1200-byte minimum MTU) after QUIC and MoQ headers.
pub const MAX_DATAGRAM_SIZE: usize = 1024;

/// How an object travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    /// One QUIC datagram: lossy, unordered, small (at most [`MAX_DATAGRAM_SIZE`] bytes).
    Datagram,
    /// Groups of objects on QUIC streams: reliable and in order.
    Stream,
}
/// Connect (and other blocking operations) give up after this long unless configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);
/// Longest configurable timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_millis(300_000);

/// First reconnect delay unless configured.
pub const DEFAULT_RECONNECT_INITIAL: Duration = Duration::from_millis(500);
/// Longest reconnect delay unless configured.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_millis(10_000);
/// QUIC keep-alive unless configured: well below the idle timeout so quiet, healthy sessions
/// stay up.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_millis(1000);
/// QUIC idle timeout unless configured: how long a silent relay takes to be declared gone.
///
/// 10 s, moq-tokio's and moq-relay's own default. A process starved of CPU for seconds (a
/// loading hitch, a sanitizer, a loaded machine) must keep its session: in a process given about
/// a fifth of a core, a 10,000-group burst through the embedded relay took 12-18 s and one of its
/// connections went more than 5 s without a packet (every group is a stream and a task at each
/// hop; the connection's driver waits behind them), so a 5 s timeout lost the session 7 runs of 7
/// and 10 s kept it 3 of 3. Applications that need a dead relay noticed sooner set
/// `idle_timeout_ms` lower.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_millis(10_000);

/// How a client verifies the relay, how long blocking calls wait, and how it reconnects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Bound for `connect`, `subscribe` and announce confirmation.
    pub timeout: Duration,
    /// PEM text of CA certificates that replace the system roots.
    pub tls_root_ca_pem: Option<String>,
    /// Hex SHA-256 of the relay's certificate, pinned instead of chain verification.
    pub tls_fingerprint_sha256: Option<String>,
    /// Skip certificate verification entirely (development only; logged as a warning).
    pub tls_insecure_skip_verify: bool,
    /// Comma-separated protocol versions to offer; `None` offers every version moq-net speaks.
    pub versions: Option<String>,
    /// Redial with backoff when an established session is lost.
    pub reconnect: bool,
    /// First reconnect delay (doubled per failed attempt, with jitter).
    pub reconnect_initial: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
    /// Local UDP address to send from; `None` picks one (dual-stack, IPv4 fallback).
    pub bind: Option<String>,
    /// QUIC keep-alive interval.
    pub keep_alive: Duration,
    /// QUIC idle timeout: a relay silent this long is declared gone.
    pub idle_timeout: Duration,
    /// Also queue connection state changes for `moq_poll`.
    pub poll_events: bool,
    /// Cap on the bytes this client's publishers keep buffered (cached for subscribers).
    pub publish_buffer_bytes: u64,
    /// What publishing does when the buffer is at its cap.
    pub publish_overflow: Overflow,
    /// Race a WebSocket connection against QUIC for http(s):// URLs (UDP may be blocked).
    pub websocket: bool,
    /// The head start QUIC gets before the WebSocket attempt joins the race.
    pub websocket_delay: Duration,
    /// QUIC's stream limit for the relay's streams toward this client (unidirectional and
    /// bidirectional alike): the groups in flight to it at once.
    pub max_streams: u64,
}

/// What publishing does when the client's publish buffer is at its cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Evict the oldest buffered groups (a subscriber that far behind loses them).
    DropOldest,
    /// Refuse the object with `WouldBlock` (counted), keeping what is buffered.
    Error,
}

/// The head start QUIC gets over the WebSocket fallback by default (moq-tokio's default).
pub const DEFAULT_WEBSOCKET_DELAY: Duration = Duration::from_millis(200);

/// How many streams a peer may have open toward this library at once, unless configured: a
/// client's `max_streams` and the embedded relay's limit.
///
/// moq-tokio's default is 10,000 (moq-relay's too). Every group is a stream, and moq-net ranks a
/// session's groups newest first: each new group re-ranks up to 255 streams still in flight (a
/// finished one waits for its acknowledgement), waking each and rebuilding its close watch. With
/// 10,000 allowed, a burst of 5,000 one-object groups (`tests/c/test_chaos.c` case 2, under
/// AddressSanitizer) keeps hundreds in flight throughout, and the sending sessions spend seconds
/// of CPU on those wake-ups: beside `stress-ng --cpu 2` the burst took 9-19 s to arrive and a
/// client lost its session to the 5 s idle timeout in 2 runs of 2 (unloaded: 1 run of 4 lost
/// one, up to 25 s to arrive; a CI run too). With 1,024 on the clients and the embedded relay:
/// 4-7 s and no session lost in 5 loaded runs (1,024 on the clients alone: 8-9 s, none lost in
/// 2). 1,024 streams still carry about 10,000 groups/s over a 100 ms round trip.
pub(crate) const DEFAULT_MAX_STREAMS: u64 = 1024;
/// The smallest stream limit: control streams (announce, subscribe, fetch) count against it too.
pub(crate) const MIN_MAX_STREAMS: u64 = 16;
/// The largest stream limit.
pub(crate) const MAX_MAX_STREAMS: u64 = 100_000;

/// The default publish buffer cap.
pub const DEFAULT_PUBLISH_BUFFER: u64 = 128 << 20;
/// The smallest publish buffer cap.
pub const MIN_PUBLISH_BUFFER: u64 = 1 << 20;
/// The largest publish buffer cap.
pub const MAX_PUBLISH_BUFFER: u64 = 64 << 30;

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            tls_root_ca_pem: None,
            tls_fingerprint_sha256: None,
            tls_insecure_skip_verify: false,
            versions: None,
            reconnect: false,
            reconnect_initial: DEFAULT_RECONNECT_INITIAL,
            reconnect_max: DEFAULT_RECONNECT_MAX,
            bind: None,
            keep_alive: DEFAULT_KEEP_ALIVE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            poll_events: false,
            publish_buffer_bytes: DEFAULT_PUBLISH_BUFFER,
            publish_overflow: Overflow::DropOldest,
            websocket: true,
            websocket_delay: DEFAULT_WEBSOCKET_DELAY,
            max_streams: DEFAULT_MAX_STREAMS,
        }
    }
}

impl ClientConfig {
    /// Checks the settings against each other and normalises the fingerprint.
    pub fn validated(mut self) -> Result<Self> {
        if self.timeout.is_zero() {
            self.timeout = DEFAULT_TIMEOUT;
        }
        if self.timeout > MAX_TIMEOUT {
            return Err(Error::invalid_argument(format!(
                "connect_timeout_ms {} exceeds the maximum of {} ms",
                self.timeout.as_millis(),
                MAX_TIMEOUT.as_millis()
            )));
        }
        if let Some(fingerprint) = &self.tls_fingerprint_sha256 {
            self.tls_fingerprint_sha256 = Some(normalize_fingerprint(fingerprint)?);
        }
        if let Some(pem) = &self.tls_root_ca_pem {
            check_pem(pem)?;
        }
        zero_means(&mut self.reconnect_initial, DEFAULT_RECONNECT_INITIAL);
        zero_means(&mut self.reconnect_max, DEFAULT_RECONNECT_MAX);
        zero_means(&mut self.keep_alive, DEFAULT_KEEP_ALIVE);
        zero_means(&mut self.idle_timeout, DEFAULT_IDLE_TIMEOUT);
        zero_means(&mut self.websocket_delay, DEFAULT_WEBSOCKET_DELAY);
        // A head start longer than the whole connect would never let WebSocket try.
        self.websocket_delay = self.websocket_delay.min(self.timeout);
        if self.reconnect_initial > self.reconnect_max {
            return Err(Error::invalid_argument(format!(
                "reconnect_initial_ms ({}) exceeds reconnect_max_ms ({})",
                self.reconnect_initial.as_millis(),
                self.reconnect_max.as_millis()
            )));
        }
        if self.keep_alive * 2 > self.idle_timeout {
            return Err(Error::invalid_argument(format!(
                "keep_alive_ms ({}) must be at most half of idle_timeout_ms ({}), or quiet healthy sessions drop",
                self.keep_alive.as_millis(),
                self.idle_timeout.as_millis()
            )));
        }
        if self.idle_timeout > MAX_TIMEOUT {
            return Err(Error::invalid_argument(format!(
                "idle_timeout_ms {} exceeds the maximum of {} ms",
                self.idle_timeout.as_millis(),
                MAX_TIMEOUT.as_millis()
            )));
        }
        zero_means_within(
            "publish_buffer_bytes",
            &mut self.publish_buffer_bytes,
            DEFAULT_PUBLISH_BUFFER,
            MIN_PUBLISH_BUFFER..=MAX_PUBLISH_BUFFER,
        )?;
        zero_means_within(
            "max_streams",
            &mut self.max_streams,
            DEFAULT_MAX_STREAMS,
            MIN_MAX_STREAMS..=MAX_MAX_STREAMS,
        )?;
        self.parsed_versions()?;
        self.parsed_bind()?;
        let trust_count = [
            self.tls_root_ca_pem.is_some(),
            self.tls_fingerprint_sha256.is_some(),
            self.tls_insecure_skip_verify,
        ]
        .iter()
        .filter(|set| **set)
        .count();
        if trust_count > 1 {
            return Err(Error::invalid_argument(
                "tls_root_ca_pem, tls_fingerprint_sha256 and tls_insecure_skip_verify are exclusive: set at most one",
            ));
        }
        Ok(self)
    }
}

impl ClientConfig {
    /// The protocol versions to offer; empty means all.
    pub fn parsed_versions(&self) -> Result<Vec<moq_net::Version>> {
        let Some(list) = &self.versions else {
            return Ok(Vec::new());
        };
        let mut versions = Vec::new();
        for name in list.split(',').map(str::trim) {
            let version: moq_net::Version = name.parse().map_err(|_| {
                let known: Vec<String> = moq_net::Versions::all().iter().map(|v| v.to_string()).collect();
                Error::invalid_argument(format!(
                    "versions names unknown protocol version \"{name}\"; known: {}",
                    known.join(",")
                ))
            })?;
            if !versions.contains(&version) {
                versions.push(version);
            }
        }
        Ok(versions)
    }

    /// The local address to bind, if one was given.
    pub fn parsed_bind(&self) -> Result<Option<std::net::SocketAddr>> {
        let Some(bind) = &self.bind else { return Ok(None) };
        bind.parse()
            .map(Some)
            .map_err(|err| Error::invalid_argument(format!("bind_addr \"{bind}\" is not an IP:port address: {err}")))
    }
}

fn zero_means(value: &mut Duration, default: Duration) {
    if value.is_zero() {
        *value = default;
    }
}

/// A count where 0 means `default` and anything else must lie in `range` (InvalidArgument
/// naming the field otherwise).
fn zero_means_within(name: &str, value: &mut u64, default: u64, range: std::ops::RangeInclusive<u64>) -> Result<()> {
    if *value == 0 {
        *value = default;
    }
    if !range.contains(value) {
        return Err(Error::invalid_argument(format!(
            "{name} {value} is out of range ({}..={})",
            range.start(),
            range.end()
        )));
    }
    Ok(())
}

/// Accepts 64 hex digits, optionally separated by ':' (as `openssl x509 -fingerprint` prints).
fn normalize_fingerprint(value: &str) -> Result<String> {
    let hex: String = value.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid_argument(format!(
            "tls_fingerprint_sha256 must be 64 hex digits (a SHA-256), got {} characters",
            value.len()
        )));
    }
    Ok(hex.to_ascii_lowercase())
}

fn check_pem(pem: &str) -> Result<()> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    if pem.len() > MAX_PEM_LEN {
        return Err(Error::invalid_argument(format!(
            "tls_root_ca_pem is {} bytes; the maximum is {MAX_PEM_LEN}",
            pem.len()
        )));
    }
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        cert.map_err(|err| Error::invalid_argument(format!("tls_root_ca_pem is not valid PEM: {err}")))?;
        count += 1;
    }
    if count == 0 {
        return Err(Error::invalid_argument(
            "tls_root_ca_pem contains no \"-----BEGIN CERTIFICATE-----\" block",
        ));
    }
    Ok(())
}

/// Checks a namespace or track name: non-empty, at most [`MAX_NAME_LEN`] bytes, no control
/// characters. `param` names the C parameter in the error.
pub fn check_name(param: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid_argument(format!("{param} is empty")));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(Error::invalid_argument(format!(
            "{param} is {} bytes; the maximum is {MAX_NAME_LEN}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid_argument(format!("{param} contains a control character")));
    }
    Ok(())
}

/// Checks a namespace: a name (see [`check_name`]) whose '/'-separated segments are all
/// non-empty. MoQ treats `a/`, `/a` and `a//b` as spellings of `a` and `a/b`; accepting them would
/// let two spellings name one broadcast.
pub fn check_namespace(value: &str) -> Result<()> {
    check_name("namespace_str", value)?;
    if value.split('/').any(str::is_empty) {
        return Err(Error::invalid_argument(format!(
            "namespace_str \"{value}\" has an empty path segment (a leading, trailing or doubled '/')"
        )));
    }
    Ok(())
}

/// Parses a relay URL: `https://` (WebTransport), `moqt://`/`moql://` (raw QUIC) or `http://`
/// (development: fetches and pins the relay's self-signed certificate fingerprint).
pub fn parse_url(value: &str) -> Result<url::Url> {
    if value.len() > MAX_URL_LEN {
        return Err(Error::invalid_argument(format!(
            "url is {} bytes; the maximum is {MAX_URL_LEN}",
            value.len()
        )));
    }
    let url =
        url::Url::parse(value).map_err(|err| Error::invalid_argument(format!("url is not a valid URL: {err}")))?;
    match url.scheme() {
        "https" | "http" | "moqt" | "moql" => {}
        other => {
            return Err(Error::invalid_argument(format!(
                "url scheme \"{other}\" is not supported; use https://, moqt://, moql:// or http://"
            )))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid_argument("url has no host"));
    }
    Ok(url)
}

/// The URL without credentials or query (tokens), for logs and messages.
pub fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_timeout_means_default_and_too_long_is_rejected() {
        let config = ClientConfig {
            timeout: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(config.validated().unwrap().timeout, DEFAULT_TIMEOUT);
        let config = ClientConfig {
            timeout: MAX_TIMEOUT + Duration::from_millis(1),
            ..Default::default()
        };
        assert!(config.validated().unwrap_err().message().contains("connect_timeout_ms"));
    }

    #[test]
    fn zero_max_streams_means_default_and_the_range_is_checked() {
        let with = |max_streams| ClientConfig {
            max_streams,
            ..Default::default()
        };
        assert_eq!(with(0).validated().unwrap().max_streams, DEFAULT_MAX_STREAMS);
        for fine in [MIN_MAX_STREAMS, 4096, MAX_MAX_STREAMS] {
            assert_eq!(with(fine).validated().unwrap().max_streams, fine);
        }
        for bad in [MIN_MAX_STREAMS - 1, MAX_MAX_STREAMS + 1, u64::MAX] {
            let err = with(bad).validated().unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidArgument);
            assert!(err.message().contains("max_streams"), "{}", err.message());
        }
    }

    #[test]
    fn fingerprints_are_normalised_and_checked() {
        let colons = ["AB"; 32].join(":");
        let config = ClientConfig {
            tls_fingerprint_sha256: Some(colons),
            ..Default::default()
        };
        assert_eq!(
            config.validated().unwrap().tls_fingerprint_sha256,
            Some("ab".repeat(32))
        );
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(65)] {
            let config = ClientConfig {
                tls_fingerprint_sha256: Some(bad.to_string()),
                ..Default::default()
            };
            assert_eq!(
                config.validated().unwrap_err().kind(),
                crate::error::ErrorKind::InvalidArgument
            );
        }
    }

    #[test]
    fn trust_settings_are_exclusive_and_pem_is_checked() {
        let config = ClientConfig {
            tls_fingerprint_sha256: Some("a".repeat(64)),
            tls_insecure_skip_verify: true,
            ..Default::default()
        };
        assert!(config.validated().unwrap_err().message().contains("exclusive"));
        let config = ClientConfig {
            tls_root_ca_pem: Some("not a certificate".into()),
            ..Default::default()
        };
        assert!(config.validated().unwrap_err().message().contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn names_and_urls_are_validated() {
        assert!(check_name("track_name", "video/main").is_ok());
        assert!(check_name("track_name", "").is_err());
        assert!(check_name("track_name", "a\nb").is_err());
        assert!(check_name("track_name", &"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(check_namespace("game/room-1").is_ok());
        for alias in ["game/", "/game", "game//room", "/"] {
            assert!(check_namespace(alias)
                .unwrap_err()
                .message()
                .contains("empty path segment"));
        }
        assert!(parse_url("https://localhost:4443/anon").is_ok());
        assert!(parse_url("moqt://127.0.0.1:4443").is_ok());
        assert!(parse_url("ftp://example.com").unwrap_err().message().contains("ftp"));
        assert!(parse_url("https://").is_err());
        assert!(parse_url("no scheme").is_err());
    }

    #[test]
    fn redaction_removes_credentials_and_tokens() {
        let url = url::Url::parse("https://user:secret@relay.example:443/room?jwt=token").unwrap();
        let shown = redact(&url);
        assert!(!shown.contains("secret") && !shown.contains("token") && !shown.contains("user"));
        assert!(shown.contains("relay.example"));
    }
}
