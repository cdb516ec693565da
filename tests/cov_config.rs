//! Configuration checks of the safe core (`moq_ffi::core::config`) that the C edge never lets
//! through (its own length limits reject the input first) or that need settings no other test
//! combines: reconnect delays out of order, an idle timeout beyond the maximum, a malformed bind
//! address, an over-long PEM bundle or URL. Added for coverage (issue 7): defence in depth must
//! hold on its own.

use moq_ffi::core::config::{parse_url, ClientConfig, MAX_PEM_LEN, MAX_TIMEOUT, MAX_URL_LEN};
use moq_ffi::error::ErrorKind;
use std::time::Duration;

fn rejected(config: ClientConfig, needle: &str) {
    let err = config.validated().expect_err(needle);
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{}", err.message());
    assert!(err.message().contains(needle), "{}", err.message());
}

#[test]
fn inconsistent_timing_settings_are_rejected() {
    rejected(
        ClientConfig {
            reconnect_initial: Duration::from_secs(5),
            reconnect_max: Duration::from_secs(1),
            ..Default::default()
        },
        "reconnect_initial_ms (5000) exceeds reconnect_max_ms (1000)",
    );
    rejected(
        ClientConfig {
            idle_timeout: MAX_TIMEOUT + Duration::from_secs(1),
            ..Default::default()
        },
        "idle_timeout_ms",
    );
    rejected(
        ClientConfig {
            keep_alive: Duration::from_secs(4),
            idle_timeout: Duration::from_secs(5),
            ..Default::default()
        },
        "at most half of idle_timeout_ms",
    );
}

#[test]
fn malformed_bind_addresses_are_rejected() {
    for bind in ["localhost", "127.0.0.1", "300.0.0.1:5", "[::1]"] {
        rejected(
            ClientConfig {
                bind: Some(bind.into()),
                ..Default::default()
            },
            "is not an IP:port address",
        );
    }
    let ok = ClientConfig {
        bind: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    assert!(ok.validated().unwrap().parsed_bind().unwrap().is_some());
}

#[test]
fn oversized_pem_and_url_are_rejected_by_the_core_too() {
    rejected(
        ClientConfig {
            tls_root_ca_pem: Some("A".repeat(MAX_PEM_LEN + 1)),
            ..Default::default()
        },
        "tls_root_ca_pem is",
    );
    let long = format!("https://relay.example/{}", "p".repeat(MAX_URL_LEN));
    let err = parse_url(&long).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("the maximum is 8192"), "{}", err.message());
}
