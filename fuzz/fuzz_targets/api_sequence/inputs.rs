//! Decoding the fuzzer's bytes into argument values (what to pass, not yet C memory: see
//! `args`). The byte layout is the input format of the committed corpus: change it only on
//! purpose.

use crate::common::*;
use crate::world::*;
use moq_ffi::ffi::*;

// ---------------------------------------------------------------------------------------------
// Handles.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
pub enum Sel {
    Live(u8),
    Stale(u8),
    Null,
    Wrong(u8),
    Raw(u64),
}

pub fn sel(input: &mut Input) -> Sel {
    match input.u8() % 16 {
        0..=10 => Sel::Live(input.u8()),
        11 => Sel::Stale(input.u8()),
        12 => Sel::Null,
        13 => Sel::Wrong(input.u8()),
        14 => Sel::Raw(input.u64()),
        // Pointer-shaped: a small id with any tag.
        _ => Sel::Raw((u64::from(input.u16()) << 4) | u64::from(input.u8() & 0xf)),
    }
}

/// Turns a selector into a handle value of `kind`, and whether it is certainly invalid.
pub fn resolve(sel: Sel, kind: u64) -> (usize, Expect) {
    with_world(|world| match sel {
        Sel::Live(i) => {
            let live = world.live(kind);
            match live.len() {
                0 => (0, Expect::BadHandle),
                n => (live[i as usize % n], Expect::Any),
            }
        }
        Sel::Stale(i) => match world.stale.get(&kind) {
            Some(stale) if !stale.is_empty() => (stale[i as usize % stale.len()], Expect::BadHandle),
            _ => (0, Expect::BadHandle),
        },
        Sel::Null => (0, Expect::BadHandle),
        Sel::Wrong(i) => {
            let others: Vec<usize> = [K_CLIENT, K_PUBLISHER, K_SUBSCRIBER, K_RELAY]
                .into_iter()
                .filter(|k| *k != kind)
                .flat_map(|k| world.live(k))
                .filter(|h| *h != 0)
                .collect();
            match others.len() {
                0 => ((((i as u64) << 4) | ((kind % 4) + 1)) as usize, Expect::BadHandle),
                n => (others[i as usize % n], Expect::BadHandle),
            }
        }
        Sel::Raw(value) => {
            let value = if is_prime_like(value as usize) {
                value ^ 0x1
            } else {
                value
            } as usize;
            let tag = value as u64 & 0xf;
            let surely_bad = value == 0 || tag != kind || (value as u64 >> 4) > (1 << 40);
            (value, if surely_bad { Expect::BadHandle } else { Expect::Any })
        }
    })
}

/// `resolve` for a typed handle.
pub fn handle<T: Handle>(sel: Sel) -> (*mut T, Expect) {
    let (value, expect) = resolve(sel, T::KIND);
    (value as *mut T, expect)
}

// ---------------------------------------------------------------------------------------------
// Strings.
// ---------------------------------------------------------------------------------------------

pub const NAMESPACES: &[&str] = &["fz", "fz/a", "fz/b", "game"];
pub const TRACKS: &[&str] = &["t", "u", "catalog.json"];
const MALFORMED: &[&[u8]] = &[
    b"a//b",
    b"/a",
    b"a/",
    b"/",
    b"\xff\xfe",
    b"a\x01b",
    b"\xc0\xaf",
    b"a\xc2\x85b",
    b"x\x7f",
    b"ok\0hidden",
];

/// A C string argument: None is NULL.
pub type Str = Option<Vec<u8>>;

pub fn name(input: &mut Input, pool: &[&str]) -> Str {
    match input.u8() % 16 {
        0..=9 => Some(pool[input.u8() as usize % pool.len()].as_bytes().to_vec()),
        10 => None,
        11 => Some(input.short_bytes()),
        12 => Some(vec![b'n'; if input.bool() { 1024 } else { 1025 }]),
        13 => Some(Vec::new()),
        14 => Some(MALFORMED[input.u8() as usize % MALFORMED.len()].to_vec()),
        _ => {
            let mut bytes = pool[input.u8() as usize % pool.len()].as_bytes().to_vec();
            bytes.push(b'/');
            bytes.extend(input.short_bytes());
            Some(bytes)
        }
    }
}

fn opt_pool(input: &mut Input, pool: &[&str]) -> Str {
    match input.u8() % 4 {
        0 => None,
        1 | 2 => Some(pool[input.u8() as usize % pool.len()].as_bytes().to_vec()),
        _ => name(input, pool),
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads and buffers.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub enum Data {
    /// NULL with this length (0 is valid; more is the documented INVALID_ARGUMENT).
    Null(usize),
    Bytes(Vec<u8>),
    /// This many zero bytes from a shared buffer.
    Big(usize),
}

pub const MAX_OBJECT: usize = MOQ_MAX_OBJECT_SIZE;

pub fn data(input: &mut Input) -> Data {
    match input.u8() % 16 {
        0 => Data::Null(0),
        1 => Data::Null(usize::from(input.u16()) + 1),
        2 => Data::Big(MOQ_MAX_DATAGRAM_SIZE),
        3 => Data::Big(MOQ_MAX_DATAGRAM_SIZE + 1),
        4 => Data::Big(if input.u8() == 0 { MAX_OBJECT } else { MAX_OBJECT + 1 }),
        5 => Data::Big(usize::from(input.u16())),
        _ => Data::Bytes(input.short_bytes()),
    }
}

const CATALOGS: &[&str] = &[
    r#"{"version":1,"tracks":[{"name":"v","selectionParams":{"codec":"avc1.64001f","mimeType":"video/mp4","width":1920,"height":1080,"bitrate":5000000,"samplerate":48000,"lang":"en"}}]}"#,
    r#"{"video":{"renditions":{"v":{"codec":"avc1.64001f","codedWidth":1280,"codedHeight":720}}},"audio":{"renditions":{"a":{"codec":"opus","sampleRate":48000,"numberOfChannels":2}}}}"#,
    r#"{"version":1,"tracks":[{"name":"a"},{"name":"a"}]}"#,
    r#"{"json":{"tracks":{"chat":{"mode":"stream"}}},"binary":{"tracks":{"thumb":{"mode":"snapshot","mime":"image/jpeg"}}}}"#,
    "{}",
    "[]",
    "{\"version\":2,\"tracks\":[]}",
    "{\"a\":1,\"a\":2}",
];

/// Raw catalog JSON (for a catalog track): known catalogs, deep nesting, or random bytes.
pub fn catalog_json(input: &mut Input) -> Data {
    match input.u8() % 4 {
        0 | 1 => Data::Bytes(CATALOGS[input.u8() as usize % CATALOGS.len()].as_bytes().to_vec()),
        2 => {
            let depth = usize::from(input.u8()) * 2;
            Data::Bytes(format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes())
        }
        _ => Data::Bytes(input.short_bytes()),
    }
}

/// An output text buffer: NULL or owned, with this length.
#[derive(Clone, Copy, Debug)]
pub enum Buf {
    Null(usize),
    Owned(usize),
}

pub fn buf(input: &mut Input) -> Buf {
    let len = [0, 1, 2, 8, 16, 64, 256, usize::from(input.u8())][input.u8() as usize % 8];
    if input.u8().is_multiple_of(8) {
        Buf::Null(len)
    } else {
        Buf::Owned(len)
    }
}

// ---------------------------------------------------------------------------------------------
// URLs.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub enum Url {
    Relay,
    Scheme(u8),
    Secret,
    Null,
    Empty,
    TooLong,
    ClosedPort(u16),
    Fuzz(Vec<u8>),
}

pub fn url(input: &mut Input) -> Url {
    match input.u8() % 16 {
        0..=7 => Url::Relay,
        8 | 9 => Url::Scheme(input.u8()),
        10 => Url::Secret,
        11 => Url::Null,
        12 => Url::Empty,
        13 => Url::TooLong,
        14 => Url::ClosedPort(input.u16()),
        _ => Url::Fuzz(input.short_bytes()),
    }
}

// ---------------------------------------------------------------------------------------------
// Versioned structs (built into C memory by `args`).
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct Cfg {
    pub size: u8,
    pub raw_size: u16,
    pub timeout: u32,
    pub trust: u8,
    pub versions: u8,
    pub fuzz_versions: Vec<u8>,
    pub reconnect: u8,
    pub reconnect_initial: u32,
    pub reconnect_max: u32,
    pub bind: u8,
    pub keep_alive: u32,
    pub idle: u32,
    pub poll_events: u8,
    pub buffer: u64,
    pub overflow: u32,
}

pub fn cfg(input: &mut Input) -> Cfg {
    Cfg {
        size: input.u8(),
        raw_size: input.u16(),
        timeout: if input.u8() == 0xff {
            300_001
        } else {
            200 + u32::from(input.u16()) % 801
        },
        trust: input.u8(),
        versions: input.u8(),
        fuzz_versions: input.short_bytes(),
        reconnect: input.u8(),
        reconnect_initial: input.interesting_u32(&[0, 20, 100, 1000]) % 2000,
        reconnect_max: input.interesting_u32(&[0, 50, 500, 1000]) % 3000,
        bind: input.u8(),
        keep_alive: [0, 50, 100, 500, 1000, 2000][input.u8() as usize % 6],
        idle: [0, 100, 200, 1000, 2000, 5000, 300_001][input.u8() as usize % 7],
        poll_events: input.u8(),
        buffer: [0, 1 << 20, (1 << 20) - 1, 64 << 30][input.u8() as usize % 4],
        overflow: input.interesting_u32(&[0, 0, 1, 2]),
    }
}

#[derive(Clone, Debug)]
pub struct PubOpts {
    pub size: u8,
    pub delivery: u32,
    pub priority: u8,
    pub order: u32,
    pub retention: u32,
}

pub fn pub_opts(input: &mut Input) -> Option<PubOpts> {
    input.bool().then(|| PubOpts {
        size: input.u8(),
        delivery: input.interesting_u32(&[MOQ_DELIVERY_STREAM, MOQ_DELIVERY_STREAM, MOQ_DELIVERY_DATAGRAM, 2]),
        priority: input.u8(),
        order: input.interesting_u32(&[0, 0, 1, 2]),
        retention: input.interesting_u32(&[0, 1, 30_000, 3_600_000, 3_600_001]),
    })
}

#[derive(Clone, Debug)]
pub struct SubOpts {
    pub size: u8,
    pub start: u32,
    pub start_group: u64,
    pub max_latency: u32,
    pub priority: u8,
    pub wait: u8,
    pub delivery: u32,
    pub capacity: u32,
    pub policy: u32,
}

pub fn sub_opts(input: &mut Input) -> Option<SubOpts> {
    input.bool().then(|| SubOpts {
        size: input.u8(),
        start: input.interesting_u32(&[0, 1, 2, 3]),
        start_group: if input.bool() {
            u64::from(input.u8())
        } else {
            input.u64()
        },
        max_latency: input.interesting_u32(&[0, 1, 100, 5000]),
        priority: input.u8(),
        wait: input.u8() & 0x81,
        delivery: input.interesting_u32(&[0, 0, 1, 2]),
        capacity: input.interesting_u32(&[0, 1, 16, 1 << 20, (1 << 20) + 1]),
        policy: input.interesting_u32(&[0, 1, 2, 3]),
    })
}

/// One entry of a published catalog.
#[derive(Clone, Debug)]
pub struct Track {
    pub name: Str,
    pub codec: Str,
    pub mime: Str,
    pub numbers: [u32; 4],
    pub language: Str,
}

const CODECS: &[&str] = &[
    "avc1.64001f",
    "opus",
    "mp4a.40.2",
    "vp09.00.10.08",
    "av01.0.08M.08",
    "hev1.1.6.L93.B0",
];
const MIMES: &[&str] = &[
    "video/mp4",
    "audio/opus",
    "application/json",
    "text/vtt",
    "text/plain",
    "image/jpeg",
    "VIDEO/MP4; x=1",
];
const LANGS: &[&str] = &["en", "de-CH", "x"];

pub fn track(input: &mut Input) -> Track {
    Track {
        name: name(input, &["v", "a", "chat", "thumb", "v"]),
        codec: opt_pool(input, CODECS),
        mime: opt_pool(input, MIMES),
        numbers: [
            input.interesting_u32(&[0, 1920, u32::MAX]),
            input.interesting_u32(&[0, 1080]),
            input.interesting_u32(&[0, 5_000_000, u32::MAX]),
            input.interesting_u32(&[0, 48_000]),
        ],
        language: opt_pool(input, LANGS),
    }
}
