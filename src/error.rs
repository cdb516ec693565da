//! The one error type of the safe core.
//!
//! Every failure carries a [`ErrorKind`] (which the C edge maps to a `MoqResultCode`) and an
//! actionable message that names the parameter, object or peer involved.

use std::fmt;

/// What kind of failure happened; one kind per C result code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A parameter was NULL, malformed, too long or out of range.
    InvalidArgument,
    /// The transport or TLS handshake failed.
    ConnectionFailed,
    /// The operation needs a connected client.
    NotConnected,
    /// A bounded wait ran out.
    Timeout,
    /// A bug or an unexpected state inside the library or its dependencies.
    Internal,
    /// The negotiated protocol or transport cannot do what was asked.
    Unsupported,
    /// A caller-provided buffer is too small.
    BufferTooSmall,
    /// A handle is NULL, stale, destroyed, of another type, or was never issued.
    InvalidHandle,
    /// A panic was caught inside the library.
    Panic,
    /// The peer or relay refused the request.
    Refused,
    /// The namespace or track does not exist.
    NotFound,
    /// The object was closed or ended (unsubscribed, finished, disconnected).
    Closed,
    /// The operation conflicts with one already in progress or done (e.g. connect twice).
    InvalidState,
    /// A bounded buffer is full; retry later (publishing with the ERROR overflow policy).
    WouldBlock,
}

/// An error of the safe core: a kind and an actionable message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// Creates an error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Shorthand for [`ErrorKind::InvalidArgument`].
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Shorthand for [`ErrorKind::NotConnected`].
    pub fn not_connected(what: &str) -> Self {
        Self::new(
            ErrorKind::NotConnected,
            format!("{what} needs a connected client; call moq_connect first"),
        )
    }

    /// Builds the error for a caught panic, keeping its payload text when it has one.
    pub fn from_panic(context: &str, payload: &(dyn std::any::Any + Send)) -> Self {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_string());
        Self::new(
            ErrorKind::Panic,
            format!("{context}: internal panic caught: {detail} (this is a moq-ffi bug; please report it)"),
        )
    }

    /// Prefixes the message with context, keeping the kind.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Result alias of the safe core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Renders an error with its whole `source()` chain, which is where TLS and QUIC put the
/// reason a handshake failed.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let next = inner.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = inner.source();
    }
    text
}

/// Maps a moq-net protocol error to our kinds, for failures reported by the session.
pub fn from_moq(err: &moq_net::Error, context: impl fmt::Display) -> Error {
    use moq_net::Error as E;
    use moq_net::StreamError as S;
    let kind = match err {
        E::NotFound | E::Unroutable | E::Stream(S::NotFound | S::Unroutable) => ErrorKind::NotFound,
        E::Unauthorized => ErrorKind::Refused,
        E::Timeout => ErrorKind::Timeout,
        E::Version => ErrorKind::Unsupported,
        E::Cancel | E::Closed | E::Dropped => ErrorKind::Closed,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("{context}: {}", chain(err)))
}
