//! Turning decoded arguments into C memory the harness owns: strings, payloads, URLs, output
//! buffers and versioned structs (one builder, `versioned!`, for every struct with a
//! `struct_size`), each in a heap block of exactly its size so ASan sees any access past it.

use crate::common::*;
use crate::inputs::*;
use crate::world::*;
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};
use std::sync::OnceLock;

pub fn arg(value: &Str) -> CArg {
    CArg::new(value.as_deref())
}

pub fn ud_ptr(ud: Option<usize>) -> *mut c_void {
    ud.unwrap_or(0) as *mut c_void
}

// ---------------------------------------------------------------------------------------------
// Payloads, URLs, output buffers.
// ---------------------------------------------------------------------------------------------

fn big_buffer() -> &'static [u8] {
    static BIG: OnceLock<Vec<u8>> = OnceLock::new();
    BIG.get_or_init(|| vec![0u8; MAX_OBJECT + 1])
}

/// The data pointer and length to pass; the block (if any) must outlive the call.
pub fn data_arg(data: &Data) -> (Option<Block>, *const u8, usize) {
    match data {
        Data::Null(len) => (None, std::ptr::null(), *len),
        Data::Bytes(bytes) => {
            let block = Block::from_bytes(bytes);
            let ptr = block.ptr().cast_const();
            (Some(block), ptr, bytes.len())
        }
        Data::Big(len) => (None, big_buffer().as_ptr(), (*len).min(MAX_OBJECT + 1)),
    }
}

/// The URL bytes to pass. Fuzzed URLs are pointed at the loopback interface so nothing leaves the
/// machine and no name is resolved (the library parses with the same `url` crate version).
pub fn url_bytes(url: &Url, port: u16) -> Option<Vec<u8>> {
    Some(match url {
        Url::Relay => format!("https://localhost:{port}").into_bytes(),
        Url::Scheme(which) => {
            let scheme = ["moqt", "moql", "http", "https"][*which as usize % 4];
            let host = ["localhost", "127.0.0.1", "[::1]"][(*which as usize / 4) % 3];
            format!("{scheme}://{host}:{port}/anon").into_bytes()
        }
        Url::Secret => format!(
            "https://fzuser:{}@localhost:{port}/room?jwt={}",
            secret("pw"),
            secret("tok")
        )
        .into_bytes(),
        Url::Null => return None,
        Url::Empty => Vec::new(),
        Url::TooLong => format!("https://localhost:{port}/{}", "p".repeat(MOQ_MAX_URL_LEN)).into_bytes(),
        Url::ClosedPort(p) => format!("moqt://127.0.0.1:{}", p.max(&1)).into_bytes(),
        Url::Fuzz(bytes) => {
            let visible = bytes.split(|b| *b == 0).next().unwrap_or_default();
            match std::str::from_utf8(visible)
                .ok()
                .and_then(|text| url::Url::parse(text).ok())
            {
                Some(mut parsed) if parsed.host().is_some() => {
                    let local = matches!(parsed.host(), Some(url::Host::Domain("localhost")))
                        || matches!(parsed.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                        || matches!(parsed.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
                    if !local && parsed.set_host(Some("localhost")).is_err() {
                        return Some(b"bad://".to_vec());
                    }
                    parsed.as_str().as_bytes().to_vec()
                }
                // Not a URL with a host: the library rejects it before any network use.
                _ => bytes.clone(),
            }
        }
    })
}

/// An output text buffer: the block (if owned, filled with garbage so a missing terminator
/// would show), the pointer and the length to pass.
pub fn text_buf(buf: Buf) -> (Option<Block>, *mut c_char, usize) {
    match buf {
        Buf::Null(len) => (None, std::ptr::null_mut(), len),
        Buf::Owned(len) => {
            let block = Block::zeroed(len);
            // SAFETY: `len` writable bytes.
            unsafe { std::ptr::write_bytes(block.ptr(), b'#', len) };
            let ptr = block.ptr().cast::<c_char>();
            (Some(block), ptr, len)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Versioned structs.
// ---------------------------------------------------------------------------------------------

/// A fuzzed `struct_size` from a selector byte: mostly `full`; else `older` (an earlier
/// version's size, if given), 0, `full + 8`, or `odd` (a random size the caller derives from the
/// selector, so the input format stays as it was).
pub fn struct_size(selector: u8, full: usize, older: Option<usize>, odd: usize) -> usize {
    match (selector % 8, older) {
        (4, Some(older)) => older,
        (0..=4, _) => full,
        (5, _) => 0,
        (6, _) => full + 8,
        _ => odd,
    }
}

/// A zeroed block of exactly `size` bytes (4 at least) whose `struct_size` field says `size`.
pub fn versioned_block(size: usize) -> Block {
    let mut block = Block::zeroed(size.max(4));
    block.put(0, size as u32);
    block
}

/// Type check for `versioned!`: the value must have the field's type.
pub fn field<S, F>(_field: fn(&S) -> &F, value: F) -> F {
    value
}

/// Builds a versioned struct `$ty` in a block of exactly `$size` bytes (see `versioned_block`)
/// and writes each field that fits (an older, smaller version lacks the rest). Listed fields
/// must have the field's type; `raw { .. }` fields are written as given (a fuzzed byte in a
/// `bool`, which may be neither 0 nor 1).
macro_rules! versioned {
    ($ty:ty, $size:expr, { $($field:ident: $value:expr),* $(,)? } $(raw { $($raw:ident: $raw_value:expr),* $(,)? })?) => {{
        let mut block = $crate::args::versioned_block($size);
        $(block.put(
            ::std::mem::offset_of!($ty, $field),
            $crate::args::field::<$ty, _>(|s| &s.$field, $value),
        );)*
        $($(block.put(::std::mem::offset_of!($ty, $raw), $raw_value);)*)?
        block
    }};
}

/// The pointer to an optional struct block (NULL without one).
pub fn opt_ptr<T>(block: &Option<Block>) -> *const T {
    block
        .as_ref()
        .map_or(std::ptr::null(), |b| b.ptr().cast_const().cast::<T>())
}

/// An output struct `T` for a query that fills it: `selector` None passes NULL.
pub fn out_struct<T>(selector: Option<u8>, older: Option<usize>) -> (Option<usize>, Option<Block>, *mut T) {
    let full = size_of::<T>();
    let size = selector.map(|s| struct_size(s, full, older, usize::from(s) % full));
    let block = size.map(versioned_block);
    let ptr = block.as_ref().map_or(std::ptr::null_mut(), |b| b.ptr().cast::<T>());
    (size, block, ptr)
}

pub fn pub_opts_block(opts: &PubOpts) -> Block {
    let full = size_of::<MoqPublisherOptions>();
    let size = struct_size(opts.size, full, None, usize::from(opts.size / 8) % (full + 1));
    versioned!(MoqPublisherOptions, size, {
        delivery_mode: opts.delivery,
        priority: opts.priority,
        group_order: opts.order,
        retention_ms: opts.retention,
    })
}

pub fn sub_opts_block(opts: &SubOpts) -> Block {
    let full = size_of::<MoqSubscribeOptions>();
    let size = struct_size(opts.size, full, None, usize::from(opts.size / 8) % (full + 1));
    versioned!(MoqSubscribeOptions, size, {
        start: opts.start,
        start_group: opts.start_group,
        max_latency_ms: opts.max_latency,
        priority: opts.priority,
        wait_for_track: opts.wait,
        delivery: opts.delivery,
        queue_capacity: opts.capacity,
        queue_policy: opts.policy,
    })
}

/// A `MoqClientConfig` and the strings it points to (keep both alive for the call).
pub fn client_config(cfg: &Cfg) -> (Block, Vec<CArg>) {
    let relay = relay();
    let full = size_of::<MoqClientConfig>();
    let size = match cfg.size % 16 {
        0..=11 => full,
        12 => offset_of!(MoqClientConfig, versions),
        13 => offset_of!(MoqClientConfig, poll_events),
        14 => offset_of!(MoqClientConfig, publish_buffer_bytes),
        _ => usize::from(cfg.raw_size) % (full + 16),
    };
    let fingerprint = match cfg.trust % 8 {
        0..=3 | 6 => Some(relay.fingerprint.clone()),
        4 => Some(b"00".repeat(32)),
        5 => Some(
            relay
                .fingerprint
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).to_uppercase())
                .collect::<Vec<_>>()
                .join(":")
                .into_bytes(),
        ),
        _ => None,
    };
    let insecure: u8 = match cfg.trust % 8 {
        6 | 7 => 1 + cfg.trust / 8,
        _ => 0,
    };
    let pem: Str =
        (cfg.trust == 0xfe).then(|| b"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n".to_vec());
    let known = known_versions();
    let versions: Str = match cfg.versions % 8 {
        0..=3 => None,
        4 | 5 => (!known.is_empty()).then(|| known[usize::from(cfg.versions / 8) % known.len()].clone().into_bytes()),
        6 => Some(cfg.fuzz_versions.clone()),
        _ => Some(
            known
                .iter()
                .skip(usize::from(cfg.versions / 8) % known.len().max(1))
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(",")
                .into_bytes(),
        ),
    };
    let bind: Str = match cfg.bind % 8 {
        0..=4 => None,
        5 => Some(b"127.0.0.1:0".to_vec()),
        6 => Some(b"[::1]:0".to_vec()),
        _ => Some(b"not an address".to_vec()),
    };
    let args = vec![arg(&pem), arg(&fingerprint), arg(&versions), arg(&bind)];
    let block = versioned!(MoqClientConfig, size, {
        connect_timeout_ms: cfg.timeout,
        tls_root_ca_pem: args[0].ptr(),
        tls_fingerprint_sha256: args[1].ptr(),
        versions: args[2].ptr(),
        reconnect_initial_ms: cfg.reconnect_initial,
        reconnect_max_ms: cfg.reconnect_max,
        bind_addr: args[3].ptr(),
        keep_alive_ms: cfg.keep_alive,
        idle_timeout_ms: cfg.idle,
        publish_buffer_bytes: cfg.buffer,
        publish_overflow: cfg.overflow,
    } raw {
        tls_insecure_skip_verify: insecure,
        reconnect: cfg.reconnect & 0x81,
        poll_events: cfg.poll_events & 0x81,
    });
    (block, args)
}

/// A `MoqTrackInfo` array for `moq_publish_catalog` and the strings it points to.
pub fn track_infos(tracks: &[Track]) -> (Block, Vec<[CArg; 4]>) {
    let strings: Vec<[CArg; 4]> = tracks
        .iter()
        .map(|t| [arg(&t.name), arg(&t.codec), arg(&t.mime), arg(&t.language)])
        .collect();
    let mut block = Block::zeroed(tracks.len() * size_of::<MoqTrackInfo>());
    for (i, (t, s)) in tracks.iter().zip(&strings).enumerate() {
        let info = MoqTrackInfo {
            name: s[0].ptr(),
            codec: s[1].ptr(),
            mime_type: s[2].ptr(),
            width: t.numbers[0],
            height: t.numbers[1],
            bitrate: t.numbers[2],
            sample_rate: t.numbers[3],
            language: s[3].ptr(),
        };
        block.put(i * size_of::<MoqTrackInfo>(), info);
    }
    (block, strings)
}
