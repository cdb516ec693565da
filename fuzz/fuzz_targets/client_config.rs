//! Client configuration: `moq_client_create_ex` with a fuzzed `MoqClientConfig` (any
//! `struct_size`, in a heap block of exactly that many bytes so AddressSanitizer catches a read
//! past it; fuzzed numbers, raw bool bytes, and fuzzed strings for the PEM, fingerprint, versions
//! and bind address), compared with the core's `ClientConfig::validated`.
//!
//! Invariants:
//! - never a panic, never a read outside the declared struct or strings;
//! - an unknown `struct_size`, a string that is not UTF-8 or an unknown overflow policy →
//!   NULL with INVALID_ARGUMENT;
//! - for configs the C layer can read in full (known size, short UTF-8 strings), the C API
//!   accepts exactly when the core accepts, and a rejection's last error contains the core's
//!   message;
//! - every failure has a fresh, non-empty `moq_last_error()` with a matching code.
// Two entry points over one `run`: libFuzzer's under cargo-fuzz (`--cfg fuzzing`,
// scripts/fuzz.sh), and the smoke runner under `cargo test` (common/smoke.rs).
#![cfg_attr(fuzzing, no_main)]

#[path = "common/mod.rs"]
mod common;

use common::*;
use moq_ffi::core::config::{ClientConfig, Overflow};
use moq_ffi::ffi::*;
use std::mem::{offset_of, size_of};
use std::time::Duration;

const FULL: usize = size_of::<MoqClientConfig>();
const V1: usize = offset_of!(MoqClientConfig, versions);
const V2: usize = offset_of!(MoqClientConfig, poll_events);
const V3: usize = offset_of!(MoqClientConfig, publish_buffer_bytes);
/// The layout before `max_streams` (the full size of the previous header).
const V5: usize = offset_of!(MoqClientConfig, max_streams);

const FINGERPRINTS: &[&str] = &[
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
    "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "::::",
];
const PEMS: &[&str] = &[
    "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n",
    "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    "-----BEGIN CERTIFICATE-----\nMIIB\n",
    "-----BEGIN PRIVATE KEY-----\nMIIBAAAA\n-----END PRIVATE KEY-----\n",
    "not a certificate",
];
const VERSIONS: &[&str] = &[
    "moq-lite-01",
    "moq-lite-05,moq-transport-14",
    "moq-lite-03, moq-lite-03",
    "",
    ",",
    "moq-lite-99",
];
const BINDS: &[&str] = &[
    "127.0.0.1:0",
    "[::1]:0",
    "0.0.0.0:0",
    "localhost:0",
    "127.0.0.1",
    "[::1]:65536",
    ":0",
];

/// A fuzzed optional string: NULL, a dictionary entry, random bytes, a dictionary entry with
/// random bytes appended, or a long run (around the C layer's caps).
fn string(input: &mut Input, dict: &[&str]) -> Option<Vec<u8>> {
    match input.u8() % 6 {
        0 | 5 => None,
        1 => Some(dict[input.u8() as usize % dict.len()].as_bytes().to_vec()),
        2 => Some(input.short_bytes()),
        3 => {
            let mut bytes = dict[input.u8() as usize % dict.len()].as_bytes().to_vec();
            bytes.extend(input.short_bytes());
            Some(bytes)
        }
        _ => {
            let len = match input.u8() % 4 {
                0 => 257,
                1 => 4097,
                2 => usize::from(input.u16()),
                _ => (1 << 20) + 1,
            };
            Some(vec![b'a'; len])
        }
    }
}

fn visible(bytes: &Option<Vec<u8>>) -> Option<&[u8]> {
    bytes
        .as_deref()
        .map(|b| b.split(|c| *c == 0).next().unwrap_or_default())
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

#[cfg(not(fuzzing))]
#[path = "common/smoke.rs"]
mod smoke;

#[cfg(not(fuzzing))]
fn main() {
    smoke::main("client_config", run);
}

fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let size = match input.u8() % 8 {
        0 => V1,
        1 => V2,
        2 => V3,
        3 | 6 => FULL,
        4 => V5,
        5 => usize::from(input.u16()) % 4097,
        _ => usize::from(input.u8()),
    };
    let timeout = input.interesting_u32(&[0, 1, 200, 10_000, 300_000, 300_001, u32::MAX]);
    let pem = string(&mut input, PEMS);
    let fingerprint = string(&mut input, FINGERPRINTS);
    let insecure = if input.bool() { input.u8() } else { 0 };
    let versions = string(&mut input, VERSIONS);
    let reconnect = input.u8();
    let reconnect_initial = input.interesting_u32(&[0, 1, 500, 10_000, 10_001, 300_000, u32::MAX]);
    let reconnect_max = input.interesting_u32(&[0, 1, 500, 10_000, 10_001, 300_000, u32::MAX]);
    let bind = string(&mut input, BINDS);
    let keep_alive = input.interesting_u32(&[0, 1, 1000, 2500, 5000, 150_000, 300_000]);
    let idle = input.interesting_u32(&[0, 1, 2000, 5000, 300_000, 300_001, u32::MAX]);
    let poll_events = input.u8();
    let buffer = match input.u8() % 8 {
        0 => 0,
        1 => 1 << 20,
        2 => (1 << 20) - 1,
        3 => 64 << 30,
        4 => (64 << 30) + 1,
        5 => 128 << 20,
        _ => input.u64(),
    };
    let overflow = input.interesting_u32(&[0, 1, 2]);
    let max_streams = match input.u8() % 8 {
        0 => 0,
        1 => 15,
        2 => 16,
        3 => 100_000,
        4 => 100_001,
        5 => 1024,
        _ => input.u64(),
    };

    let args = [
        CArg::new(pem.as_deref()),
        CArg::new(fingerprint.as_deref()),
        CArg::new(versions.as_deref()),
        CArg::new(bind.as_deref()),
    ];
    let mut block = Block::zeroed(size.max(4));
    block.put(0, size as u32);
    block.put(offset_of!(MoqClientConfig, connect_timeout_ms), timeout);
    block.put(offset_of!(MoqClientConfig, tls_root_ca_pem), args[0].ptr());
    block.put(offset_of!(MoqClientConfig, tls_fingerprint_sha256), args[1].ptr());
    block.put(offset_of!(MoqClientConfig, tls_insecure_skip_verify), insecure);
    block.put(offset_of!(MoqClientConfig, versions), args[2].ptr());
    block.put(offset_of!(MoqClientConfig, reconnect), reconnect);
    block.put(offset_of!(MoqClientConfig, reconnect_initial_ms), reconnect_initial);
    block.put(offset_of!(MoqClientConfig, reconnect_max_ms), reconnect_max);
    block.put(offset_of!(MoqClientConfig, bind_addr), args[3].ptr());
    block.put(offset_of!(MoqClientConfig, keep_alive_ms), keep_alive);
    block.put(offset_of!(MoqClientConfig, idle_timeout_ms), idle);
    block.put(offset_of!(MoqClientConfig, poll_events), poll_events);
    block.put(offset_of!(MoqClientConfig, publish_buffer_bytes), buffer);
    block.put(offset_of!(MoqClientConfig, publish_overflow), overflow);
    block.put(offset_of!(MoqClientConfig, max_streams), max_streams);

    prime();
    // SAFETY: `block` holds `size` readable bytes (at least the leading u32); its pointers are
    // NULL or our NUL-terminated strings.
    let client = unsafe { moq_client_create_ex(block.ptr().cast::<MoqClientConfig>()) };
    let failed = check_ptr("moq_client_create_ex", client, Expect::Any);
    if !client.is_null() {
        moq_client_destroy(client);
    }

    // What the library may read: fields wholly inside `size`.
    let has = |offset: usize, len: usize| offset + len <= size;
    let known_size = [V1, V2, V3, V5, FULL].contains(&size);
    let surely_unknown = !known_size && (!(V3..=FULL).contains(&size) || size % 8 != 0);
    let strings = [
        (offset_of!(MoqClientConfig, tls_root_ca_pem), &pem),
        (offset_of!(MoqClientConfig, tls_fingerprint_sha256), &fingerprint),
        (offset_of!(MoqClientConfig, versions), &versions),
        (offset_of!(MoqClientConfig, bind_addr), &bind),
    ];
    let read: Vec<Option<&[u8]>> = strings
        .iter()
        .map(|(offset, value)| if has(*offset, 8) { visible(value) } else { None })
        .collect();
    let bad_utf8 = read.iter().flatten().any(|bytes| std::str::from_utf8(bytes).is_err());
    let overflow_read = has(offset_of!(MoqClientConfig, publish_overflow), 4);
    let bad_overflow = overflow_read && overflow > 1;

    if surely_unknown || (known_size && (bad_utf8 || bad_overflow)) {
        assert_eq!(
            failed,
            Some(MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT),
            "INVARIANT: struct_size {size} (unknown: {surely_unknown}), bad UTF-8 {bad_utf8}, bad overflow {bad_overflow} not refused"
        );
        return;
    }
    let clean = known_size && read.iter().flatten().all(|bytes| bytes.len() <= 200);
    if !clean {
        return;
    }
    let text = |i: usize| read[i].map(|bytes| std::str::from_utf8(bytes).unwrap().to_string());
    let millis = |value: u32| Duration::from_millis(u64::from(value));
    let field = |offset: usize, len: usize| has(offset, len);
    // Field by field over the defaults, so fields the library adds later keep their defaults.
    let mut core = ClientConfig {
        timeout: millis(timeout),
        ..ClientConfig::default()
    };
    core.tls_root_ca_pem = text(0);
    core.tls_fingerprint_sha256 = text(1);
    core.tls_insecure_skip_verify = field(offset_of!(MoqClientConfig, tls_insecure_skip_verify), 1) && insecure != 0;
    core.versions = text(2);
    core.reconnect = field(offset_of!(MoqClientConfig, reconnect), 1) && reconnect != 0;
    core.reconnect_initial = millis(if field(offset_of!(MoqClientConfig, reconnect_initial_ms), 4) {
        reconnect_initial
    } else {
        0
    });
    core.reconnect_max = millis(if field(offset_of!(MoqClientConfig, reconnect_max_ms), 4) {
        reconnect_max
    } else {
        0
    });
    core.bind = text(3);
    core.keep_alive = millis(if field(offset_of!(MoqClientConfig, keep_alive_ms), 4) {
        keep_alive
    } else {
        0
    });
    core.idle_timeout = millis(if field(offset_of!(MoqClientConfig, idle_timeout_ms), 4) {
        idle
    } else {
        0
    });
    core.poll_events = field(offset_of!(MoqClientConfig, poll_events), 1) && poll_events != 0;
    core.publish_buffer_bytes = if field(offset_of!(MoqClientConfig, publish_buffer_bytes), 8) {
        buffer
    } else {
        0
    };
    core.publish_overflow = if overflow_read && overflow == 1 {
        Overflow::Error
    } else {
        Overflow::DropOldest
    };
    core.max_streams = if field(offset_of!(MoqClientConfig, max_streams), 8) {
        max_streams
    } else {
        0
    };
    let core = core.validated();
    match (&core, failed) {
        (Ok(_), None) => {}
        (Err(err), Some(code)) => {
            assert_eq!(
                code,
                MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT,
                "INVARIANT: core says {err}"
            );
            let last = last_error().unwrap_or_default();
            assert!(
                last.contains(err.message()),
                "INVARIANT: C error {last:?} lacks the core's {:?}",
                err.message()
            );
        }
        (core, c) => panic!(
            "INVARIANT: C and core disagree (size {size}): core {:?}, C {c:?} ({:?})",
            core.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            last_error()
        ),
    }
}
