//! Relay URLs: `moq_ffi::core::config::parse_url` / `redact` on arbitrary text, and the same
//! text through `moq_connect` / `moq_connect_async`, offline.
//!
//! The C calls go to a "black-hole" client: one whose `moq_connect_async` to a local UDP socket
//! that never answers keeps it CONNECTING (5-minute timeout, recreated every minute). A URL the
//! library accepts therefore gets INVALID_STATE ("a connect is already in progress") and never
//! dials; one it rejects gets INVALID_ARGUMENT. So the C layer's URL validation is compared with
//! the core's without any network traffic, at parser speed.
//!
//! Invariants:
//! - parse_url never panics; accepted URLs have a supported scheme (https, http, moqt, moql), a
//!   non-empty host, at most `MAX_URL_LEN` bytes; rejections are InvalidArgument;
//! - `redact` of an accepted URL has no username, password or query, and is itself a URL;
//! - C agrees: accepted → INVALID_STATE from both calls (for moq_connect only when rejected, so
//!   nothing can ever block); rejected / not UTF-8 / too long → INVALID_ARGUMENT whose message
//!   contains the core's; every failure carries a fresh, non-empty last error and matching code.
// Two entry points over one `run`: libFuzzer's under cargo-fuzz (`--cfg fuzzing`,
// scripts/fuzz.sh), and the smoke runner under `cargo test` (common/smoke.rs).
#![cfg_attr(fuzzing, no_main)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use moq_ffi::core::config::{parse_url, redact, MAX_URL_LEN};
use moq_ffi::error::ErrorKind;
use moq_ffi::ffi::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct BlackHole {
    _socket: std::net::UdpSocket,
    client: usize,
    since: Instant,
}

static HOLE: Mutex<Option<BlackHole>> = Mutex::new(None);

fn black_hole() -> usize {
    let mut hole = HOLE.lock().unwrap();
    if let Some(existing) = hole.as_ref() {
        if existing.since.elapsed() < Duration::from_secs(60) {
            return existing.client;
        }
        moq_client_destroy(existing.client as *mut MoqClient);
    }
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the black hole");
    let port = socket.local_addr().unwrap().port();
    let mut config = Block::zeroed(std::mem::size_of::<MoqClientConfig>());
    config.put(0, std::mem::size_of::<MoqClientConfig>() as u32);
    config.put(std::mem::offset_of!(MoqClientConfig, connect_timeout_ms), 300_000u32);
    config.put(std::mem::offset_of!(MoqClientConfig, tls_insecure_skip_verify), 1u8);
    config.put(std::mem::offset_of!(MoqClientConfig, idle_timeout_ms), 300_000u32);
    // SAFETY: full-size config, no pointers.
    let client = unsafe { moq_client_create_ex(config.ptr().cast()) };
    assert!(!client.is_null(), "setup: black-hole client: {:?}", last_error());
    let url = CArg::new(Some(format!("moqt://127.0.0.1:{port}").as_bytes()));
    // SAFETY: NUL-terminated URL, no callback.
    let result = unsafe { moq_connect_async(client, url.ptr(), None, std::ptr::null_mut()) };
    assert_eq!(
        check_result("moq_connect_async", result, Expect::Any),
        MoqResultCode::MOQ_OK,
        "setup"
    );
    *hole = Some(BlackHole {
        _socket: socket,
        client: client as usize,
        since: Instant::now(),
    });
    client as usize
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

#[cfg(not(fuzzing))]
#[path = "common/smoke.rs"]
mod smoke;

#[cfg(not(fuzzing))]
fn main() {
    smoke::main("url_parse", run);
}

fn run(data: &[u8]) {
    let client = black_hole() as *mut MoqClient;
    let visible = data.split(|b| *b == 0).next().unwrap_or_default();
    let core = std::str::from_utf8(visible).map(parse_url);
    match &core {
        Ok(Ok(url)) => {
            assert!(
                matches!(url.scheme(), "https" | "http" | "moqt" | "moql"),
                "INVARIANT: scheme {}",
                url.scheme()
            );
            assert!(
                url.host_str().is_some_and(|host| !host.is_empty()),
                "INVARIANT: accepted {url} without a host"
            );
            assert!(
                visible.len() <= MAX_URL_LEN,
                "INVARIANT: accepted a {}-byte URL",
                visible.len()
            );
            let shown = redact(url);
            let again = url::Url::parse(&shown)
                .unwrap_or_else(|err| panic!("INVARIANT: redacted {shown:?} is not a URL: {err}"));
            assert!(
                again.username().is_empty() && again.password().is_none(),
                "INVARIANT: credentials left in {shown:?}"
            );
            assert!(again.query().is_none(), "INVARIANT: query left in {shown:?}");
        }
        Ok(Err(err)) => {
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "INVARIANT: {err}");
            assert!(!err.message().is_empty());
        }
        Err(_) => {}
    }

    let url = CArg::new(Some(data));
    let accepted = matches!(core, Ok(Ok(_)));
    let calls: &[(&str, bool)] = if accepted {
        &[("moq_connect_async", true)]
    } else {
        &[("moq_connect", false), ("moq_connect_async", true)]
    };
    for (func, asynchronous) in calls {
        prime();
        // SAFETY: NUL-terminated string we own; no callback.
        let result = unsafe {
            if *asynchronous {
                moq_connect_async(client, url.ptr(), None, std::ptr::null_mut())
            } else {
                moq_connect(client, url.ptr(), None, std::ptr::null_mut())
            }
        };
        let code = result.code;
        let text = if result.message.is_null() {
            String::new()
        } else {
            unsafe { read_c("message", result.message) }
        };
        check_result(func, result, Expect::Any);
        match &core {
            Ok(Ok(_)) => assert!(
                code == MoqResultCode::MOQ_ERROR_INVALID_STATE && text.contains("already in progress"),
                "INVARIANT: {func} refused a URL the core accepts ({:?}): {code:?} {text}",
                String::from_utf8_lossy(visible)
            ),
            Ok(Err(err)) => {
                assert_eq!(
                    code,
                    MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT,
                    "INVARIANT: {func} on a URL the core rejects: {text}"
                );
                // Over-long strings are refused by the C string reader first, with its own words.
                assert!(
                    visible.len() > MAX_URL_LEN || text.contains(err.message()),
                    "INVARIANT: {func}: {text:?} lacks the core's {:?}",
                    err.message()
                );
            }
            Err(_) => {
                assert_eq!(
                    code,
                    MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT,
                    "INVARIANT: {func} on non-UTF-8: {text}"
                );
            }
        }
    }
}
