//! Protocol version lists (`MoqClientConfig.versions`): the core parser
//! (`ClientConfig::parsed_versions`) on arbitrary text, and the same text through
//! `moq_client_create_ex`.
//!
//! Invariants:
//! - parsing never panics; a rejection is `InvalidArgument` naming the unknown entry;
//! - an accepted list is non-empty, has no duplicates, and each entry prints as a name that
//!   parses back to itself; printing the whole list and parsing it again is the identity;
//! - every comma-separated, trimmed entry of an accepted input is a known name;
//! - the C API agrees with the core: `moq_client_create_ex` with only `versions` set returns a
//!   client exactly when the core accepts (strings the C layer cannot read — invalid UTF-8 — are
//!   INVALID_ARGUMENT), and every failure carries a fresh, non-empty last error.
// Two entry points over one `run`: libFuzzer's under cargo-fuzz (`--cfg fuzzing`,
// scripts/fuzz.sh), and the smoke runner under `cargo test` (common/smoke.rs).
#![cfg_attr(fuzzing, no_main)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use moq_ffi::core::config::ClientConfig;
use moq_ffi::error::ErrorKind;
use moq_ffi::ffi::*;
use std::sync::Once;

fn parse(list: &str) -> moq_ffi::error::Result<Vec<String>> {
    let config = ClientConfig {
        versions: Some(list.to_string()),
        ..Default::default()
    };
    config
        .parsed_versions()
        .map(|versions| versions.iter().map(|v| v.to_string()).collect())
}

/// Every version the library says it speaks (from `moq_version()`) must be accepted.
fn check_advertised() {
    // SAFETY: static string.
    let text = unsafe { read_c("moq_version()", moq_version()) };
    let inside = text
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or("");
    for name in inside.split(',').filter(|name| !name.is_empty() && *name != "...") {
        let parsed = parse(name).unwrap_or_else(|err| panic!("INVARIANT: advertised version {name:?} rejected: {err}"));
        assert_eq!(
            parsed,
            vec![name.to_string()],
            "INVARIANT: advertised version {name:?} parsed as {parsed:?}"
        );
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

#[cfg(not(fuzzing))]
#[path = "common/smoke.rs"]
mod smoke;

#[cfg(not(fuzzing))]
fn main() {
    smoke::main("versions", run);
}

fn run(data: &[u8]) {
    static ADVERTISED: Once = Once::new();
    ADVERTISED.call_once(check_advertised);

    // What C sees: the bytes before the first NUL.
    let visible = data.split(|b| *b == 0).next().unwrap_or_default();
    let text = std::str::from_utf8(visible).ok();

    let core = text.map(parse);
    if let Some(Ok(list)) = &core {
        let text = text.unwrap();
        assert!(!list.is_empty(), "INVARIANT: {text:?} accepted as an empty list");
        for (i, name) in list.iter().enumerate() {
            assert!(!list[..i].contains(name), "INVARIANT: duplicate {name} in {list:?}");
            assert_eq!(
                parse(name).ok().as_deref(),
                Some(std::slice::from_ref(name)),
                "INVARIANT: {name} does not re-parse"
            );
        }
        let joined = list.join(",");
        assert_eq!(
            parse(&joined).ok().as_ref(),
            Some(list),
            "INVARIANT: {joined:?} does not re-parse to {list:?}"
        );
        for entry in text.split(',').map(str::trim) {
            assert!(
                list.iter().any(|name| name == entry),
                "INVARIANT: entry {entry:?} of {text:?} accepted but not in {list:?}"
            );
        }
    }
    if let Some(Err(err)) = &core {
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "INVARIANT: {err}");
        assert!(
            err.message().contains("unknown protocol version"),
            "INVARIANT: unexpected message: {err}"
        );
    }

    // The same string through the C API.
    let versions = CArg::new(Some(data));
    let mut config = Block::zeroed(std::mem::size_of::<MoqClientConfig>());
    config.put(0, std::mem::size_of::<MoqClientConfig>() as u32);
    config.put(std::mem::offset_of!(MoqClientConfig, versions), versions.ptr());
    prime();
    // SAFETY: a full-size config whose only pointer is our NUL-terminated string.
    let client = unsafe { moq_client_create_ex(config.ptr().cast::<MoqClientConfig>()) };
    let failed = check_ptr("moq_client_create_ex", client, Expect::Any);
    match (&core, failed) {
        (Some(Ok(_)), None) | (Some(Err(_)), Some(MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT)) => {}
        (None, Some(MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT)) => {}
        // The C layer caps the string's length (an implementation limit the core does not have).
        (Some(Ok(_)), Some(MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT)) if visible.len() > 1024 => {}
        (core, c) => panic!(
            "INVARIANT: C and core disagree on versions {:?}: core {:?}, C {:?} ({:?})",
            String::from_utf8_lossy(visible),
            core.as_ref().map(|r| r.as_ref().map_err(|e| e.to_string())),
            c,
            last_error()
        ),
    }
    if let (Some(Err(err)), Some(_), true) = (&core, failed, visible.len() <= 1024) {
        let last = last_error().unwrap_or_default();
        assert!(
            last.contains(err.message()),
            "INVARIANT: C error {last:?} lacks the core's {:?}",
            err.message()
        );
    }
    if !client.is_null() {
        moq_client_destroy(client);
    }
}
