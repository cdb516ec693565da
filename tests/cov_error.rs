//! Error mapping of the safe core (`moq_ffi::error`), called directly: the moq-net errors an
//! anonymous embedded relay never produces (unauthorized, timeout, unsupported version, closed),
//! error chains with nested sources, and panic payloads of every kind. Each maps to the
//! `MoqResultCode` the C contract documents (README "Errors"). Added for coverage (issue 7):
//! these paths are otherwise reached only with an authenticating relay or a failing TLS stack.

use moq_ffi::error::{chain, from_moq, Error, ErrorKind};
use std::fmt;

#[test]
fn moq_net_errors_map_to_the_documented_kinds() {
    use moq_net::Error as E;
    use moq_net::StreamError as S;
    let cases: Vec<(E, ErrorKind)> = vec![
        (E::NotFound, ErrorKind::NotFound),
        (E::Unroutable, ErrorKind::NotFound),
        (E::Stream(S::NotFound), ErrorKind::NotFound),
        (E::Unauthorized, ErrorKind::Refused),
        (E::Timeout, ErrorKind::Timeout),
        (E::Version, ErrorKind::Unsupported),
        (E::Cancel, ErrorKind::Closed),
        (E::Closed, ErrorKind::Closed),
        (E::Dropped, ErrorKind::Closed),
        (E::Duplicate, ErrorKind::Internal),
        (E::Transport("reset".into()), ErrorKind::Internal),
    ];
    for (err, kind) in cases {
        let shown = err.to_string();
        let mapped = from_moq(&err, "subscribing to \"t\"");
        assert_eq!(mapped.kind(), kind, "{shown}");
        assert!(
            mapped.message().starts_with("subscribing to \"t\": "),
            "{}",
            mapped.message()
        );
        assert!(mapped.message().contains(&shown), "{}", mapped.message());
    }
}

#[derive(Debug)]
struct Layer {
    text: &'static str,
    source: Option<Box<Layer>>,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

impl std::error::Error for Layer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[test]
fn chains_render_every_source_once() {
    let err = Layer {
        text: "handshake failed",
        source: Some(Box::new(Layer {
            text: "invalid peer certificate",
            source: Some(Box::new(Layer {
                text: "UnknownIssuer",
                source: None,
            })),
        })),
    };
    assert_eq!(chain(&err), "handshake failed: invalid peer certificate: UnknownIssuer");
    // A source already spelled out by its parent is not repeated.
    let repeated = Layer {
        text: "connect: timed out",
        source: Some(Box::new(Layer {
            text: "timed out",
            source: None,
        })),
    };
    assert_eq!(chain(&repeated), "connect: timed out");
}

#[test]
fn constructors_and_context_keep_the_kind() {
    let err = Error::internal("no QUIC address").context("moq_relay_start");
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert_eq!(err.message(), "moq_relay_start: no QUIC address");
    assert_eq!(err.to_string(), err.message());
    assert_eq!(Error::invalid_argument("x").kind(), ErrorKind::InvalidArgument);
}

#[test]
fn panic_payloads_of_every_kind_become_panic_errors() {
    let texts: [Box<dyn std::any::Any + Send>; 3] =
        [Box::new("static"), Box::new(String::from("owned")), Box::new(7u32)];
    let expected = ["static", "owned", "non-string panic payload"];
    for (payload, detail) in texts.iter().zip(expected) {
        let err = Error::from_panic("moq_poll", payload.as_ref());
        assert_eq!(err.kind(), ErrorKind::Panic);
        assert!(
            err.message().starts_with("moq_poll: internal panic caught: "),
            "{}",
            err.message()
        );
        assert!(err.message().contains(detail), "{}", err.message());
    }
}
