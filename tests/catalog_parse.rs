//! Catalog parsing under hostile input: 1,000 malformed catalogs mutated from valid ones of both
//! formats never panic, never hang, and whatever is accepted obeys the catalog invariants. Also
//! the exact size and track-count limits.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use moq_ffi::core::catalog::{self, Catalog, CatalogFormat, TrackEntry, MAX_CATALOG_SIZE, MAX_CATALOG_TRACKS};
use moq_ffi::core::config::MAX_NAME_LEN;
use serde_json::{json, Map, Value};

const CASES: usize = 1_000;

/// xorshift64: deterministic, so a failure reproduces; no new dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const VIDEO_CODECS: &[&str] = &[
    "avc1.64001f",
    "avc3.42c01e",
    "vp8",
    "vp09.00.10.08",
    "av01.0.04M.08",
    "hev1.1.6.L93.B0",
];
const AUDIO_CODECS: &[&str] = &["opus", "mp4a.40.2", "flac", "mp3", "pcm"];
const OTHER_MIMES: &[&str] = &["application/json", "image/jpeg", "text/vtt", "application/octet-stream"];

/// A valid entry of a random kind.
fn random_entry(rng: &mut Rng, index: usize) -> TrackEntry {
    let name = format!("{}{index}", rng.pick(&["video", "audio", "track/", "ü-", "chat.", "x"]));
    let mut entry = TrackEntry {
        name,
        bitrate: if rng.chance(50) { rng.next() as u32 } else { 0 },
        ..TrackEntry::default()
    };
    match rng.below(3) {
        0 => {
            entry.codec = Some(rng.pick(VIDEO_CODECS).to_string());
            entry.mime_type = Some("video/mp4".into());
            entry.width = rng.below(4000) as u32;
            entry.height = rng.below(3000) as u32;
        }
        1 => {
            entry.codec = Some(rng.pick(AUDIO_CODECS).to_string());
            entry.mime_type = Some("audio/ogg".into());
            entry.sample_rate = *rng.pick(&[0, 44_100, 48_000]);
            entry.language = rng.chance(50).then(|| "en".to_string());
        }
        _ => {
            entry.mime_type = rng.chance(80).then(|| rng.pick(OTHER_MIMES).to_string());
            entry.language = rng.chance(30).then(|| "de".to_string());
        }
    }
    entry
}

/// A valid catalog of either format to mutate.
fn random_base(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(10) {
        return REALISTIC_HANG.as_bytes().to_vec();
    }
    let count = 1 + rng.below(6);
    let entries: Vec<_> = (0..count).map(|i| random_entry(rng, i)).collect();
    let format = if rng.chance(50) {
        CatalogFormat::Seed
    } else {
        CatalogFormat::Hang
    };
    catalog::serialize(&entries, format)
        .expect("random entries are valid")
        .into_bytes()
}

const REALISTIC_HANG: &str = r#"{"video":{"renditions":{"video/hd":{"codec":"avc1.64001f","codedWidth":1280,
"codedHeight":720,"bitrate":6000000,"framerate":30.0,"container":{"kind":"legacy"},"jitter":34}}},
"audio":{"renditions":{"audio/data":{"codec":"opus","sampleRate":48000,"numberOfChannels":2,"bitrate":128000,
"container":{"kind":"legacy"}}}},"json":{"tracks":{"chat":{"mode":"stream"}}},
"binary":{"tracks":{"thumb":{"mode":"snapshot","mime":"image/jpeg"}}},
"text":{"renditions":{"cc":{"format":"vtt","lang":"en"}}}}"#;

/// Byte ranges of the scalar values (after a `:` or `,`/`[`) in a JSON text, found by a rough scan.
fn value_spans(text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if matches!(text[i], b':' | b'[') || (text[i] == b',' && i + 1 < text.len() && text[i + 1] != b'"') {
            let start = i + 1;
            let mut end = start;
            if end < text.len() && text[end] == b'"' {
                end += 1;
                while end < text.len() && text[end] != b'"' {
                    end += if text[end] == b'\\' { 2 } else { 1 };
                }
                end = (end + 1).min(text.len());
            } else {
                while end < text.len() && !matches!(text[end], b',' | b'}' | b']' | b'{' | b'[') {
                    end += 1;
                }
            }
            if end > start {
                spans.push((start, end));
            }
        }
        i += 1;
    }
    spans
}

fn replace_value(rng: &mut Rng, text: &mut Vec<u8>, replacements: &[&str]) {
    let spans = value_spans(text);
    if spans.is_empty() {
        return;
    }
    let (start, end) = *rng.pick(&spans);
    let replacement = rng.pick(replacements).as_bytes().to_vec();
    text.splice(start..end, replacement);
}

fn insert_at_random(rng: &mut Rng, text: &mut Vec<u8>, bytes: &[u8]) {
    let at = rng.below(text.len() + 1);
    text.splice(at..at, bytes.iter().copied());
}

/// Inserts `bytes` just after a random `"` (inside a string if it opens one).
fn insert_in_string(rng: &mut Rng, text: &mut Vec<u8>, bytes: &[u8]) {
    let quotes: Vec<_> = text
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'"')
        .map(|(i, _)| i + 1)
        .collect();
    let at = if quotes.is_empty() { 0 } else { *rng.pick(&quotes) };
    text.splice(at..at, bytes.iter().copied());
}

/// JSON built by hand, so it can break rules `serialize` refuses to write: duplicate names.
fn duplicate_names(rng: &mut Rng) -> Vec<u8> {
    let name = *rng.pick(&["dup", "video", ""]);
    let doc = if rng.chance(50) {
        let tracks = [
            json!({"name": name}),
            json!({"name": "other"}),
            json!({"name": name, "selectionParams": {}}),
        ];
        json!({"version": 1, "tracks": tracks})
    } else {
        let mut sections = Map::new();
        let sections_with_name = [
            ("video", json!({"renditions": {name: {"codec": "vp8"}}})),
            (
                "audio",
                json!({"renditions": {name: {"codec": "opus", "sampleRate": 48000, "numberOfChannels": 2}}}),
            ),
            ("json", json!({"tracks": {name: {"mode": "stream"}}})),
            ("binary", json!({"tracks": {name: {"mode": "snapshot"}}})),
        ];
        let first = rng.below(4);
        let second = (first + 1 + rng.below(3)) % 4;
        for index in [first, second] {
            let (key, value) = &sections_with_name[index];
            sections.insert(key.to_string(), value.clone());
        }
        Value::Object(sections)
    };
    doc.to_string().into_bytes()
}

fn mutate(rng: &mut Rng, text: &mut Vec<u8>, kind: usize) {
    match kind {
        0 => text.truncate(rng.below(text.len().max(1))),
        1 => {
            for _ in 0..1 + rng.below(4) {
                if !text.is_empty() {
                    let at = rng.below(text.len());
                    text[at] ^= 1 + rng.below(255) as u8;
                }
            }
        }
        2 => {
            let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
            insert_at_random(rng, text, &bytes);
        }
        3 => {
            // Repeat a key inside a random object.
            let opens: Vec<_> = text
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'{')
                .map(|(i, _)| i + 1)
                .collect();
            if let Some(&at) = opens.get(rng.below(opens.len().max(1))) {
                let key = rng.pick(&["name", "codec", "dup", "version", "tracks", "video"]);
                let pair = format!("\"{key}\":1,\"{key}\":2,");
                text.splice(at..at, pair.into_bytes());
            }
        }
        4 => replace_value(
            rng,
            text,
            &[
                "\"1920\"", "1.5", "-1", "[]", "{}", "true", "null", "\"\"", "0", "\"x\"",
            ],
        ),
        5 => replace_value(
            rng,
            text,
            &[
                "4294967296",
                "4294967295",
                "18446744073709551616",
                "99999999999999999999999999",
                "1e400",
                "-9223372036854775809",
                "1e20",
            ],
        ),
        6 => {
            let depth = *rng.pick(&[100, 127, 128, 129, 1_000, 100_000]);
            let open = if rng.chance(50) { "[" } else { "{\"a\":" };
            let mut nest = open.repeat(depth);
            if rng.chance(50) {
                nest.push('1');
                nest.push_str(&(if open == "[" { "]" } else { "}" }).repeat(depth));
            }
            replace_value(rng, text, &[nest.as_str()]);
        }
        7 => {
            let nul: &[u8] = if rng.chance(50) { b"\\u0000" } else { b"\0" };
            insert_in_string(rng, text, nul);
        }
        8 => {
            let bad: &[&[u8]] = &[
                b"\xff",
                b"\xc3\x28",
                b"\xe2\x82",
                b"\xf0\x9f\x98",
                b"\xed\xa0\x80",
                b"\xc0\xaf",
            ];
            let bytes = *rng.pick(bad);
            if rng.chance(50) {
                insert_in_string(rng, text, bytes);
            } else {
                insert_at_random(rng, text, bytes);
            }
        }
        9 => {
            let length = *rng.pick(&[MAX_NAME_LEN, MAX_NAME_LEN + 1, 5_000, MAX_CATALOG_SIZE]);
            let fill = if rng.chance(50) {
                "a".repeat(length)
            } else {
                "\\n".repeat(length / 2)
            };
            let string = format!("\"{fill}\"");
            if rng.chance(50) {
                replace_value(rng, text, &[string.as_str()]);
            } else {
                insert_in_string(rng, text, fill.as_bytes());
            }
        }
        _ => {
            // The shape `serialize` never writes, sometimes mutated further.
            *text = duplicate_names(rng);
        }
    }
}

/// What every accepted catalog must satisfy.
fn check_invariants(input: &[u8], catalog: &Catalog) {
    assert!(input.len() <= MAX_CATALOG_SIZE);
    assert_eq!(&catalog.raw[..], input, "raw must be the input");
    assert!(catalog.tracks.len() <= MAX_CATALOG_TRACKS);
    let mut names = HashSet::new();
    for track in &catalog.tracks {
        assert!(!track.name.is_empty(), "empty name accepted");
        assert!(track.name.len() <= MAX_NAME_LEN, "over-long name accepted");
        assert!(
            !track.name.chars().any(char::is_control),
            "control character in {:?}",
            track.name
        );
        assert!(
            names.insert(track.name.clone()),
            "duplicate name {:?} accepted",
            track.name
        );
        for value in [&track.codec, &track.mime_type, &track.language].into_iter().flatten() {
            assert!(
                !value.is_empty() && value.len() <= MAX_NAME_LEN && !value.contains('\0'),
                "{value:?}"
            );
        }
    }
    // What was accepted can be written again: exactly in the seed format, without panicking in hang.
    if catalog.format == CatalogFormat::Seed {
        let json =
            catalog::serialize(&catalog.tracks, CatalogFormat::Seed).expect("accepted seed entries re-serialise");
        assert_eq!(
            catalog::parse(json.as_bytes()).expect("re-parse").tracks,
            catalog.tracks
        );
    } else if let Ok(json) = catalog::serialize(&catalog.tracks, CatalogFormat::Hang) {
        catalog::parse(json.as_bytes()).expect("hang output re-parses");
    }
}

#[test]
fn randomized_malformed_catalogs_never_panic_or_hang() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut accepted, mut rejected, mut panicked) = (0usize, 0usize, Vec::new());
    let mut per_kind = [(0usize, 0usize); 11];
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    for case in 0..CASES {
        let mut input = random_base(&mut rng);
        let kind = case % per_kind.len();
        mutate(&mut rng, &mut input, kind);
        if rng.chance(25) {
            let extra = rng.below(per_kind.len() - 1);
            mutate(&mut rng, &mut input, extra);
        }
        let call = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let result = catalog::parse(&input);
            if let Ok(catalog) = &result {
                check_invariants(&input, catalog);
            }
            result.map(|_| ()).map_err(|err| err.message().to_string())
        }));
        slowest = slowest.max(call.elapsed());
        match outcome {
            Ok(Ok(())) => {
                accepted += 1;
                per_kind[kind].0 += 1;
            }
            Ok(Err(message)) => {
                assert!(
                    message.starts_with("catalog"),
                    "case {case}: unhelpful message {message:?}"
                );
                rejected += 1;
                per_kind[kind].1 += 1;
            }
            Err(_) => panicked.push((
                case,
                String::from_utf8_lossy(&input[..input.len().min(300)]).into_owned(),
            )),
        }
    }
    let elapsed = started.elapsed();
    println!(
        "catalog fuzz: {CASES} cases, {accepted} accepted, {rejected} rejected, {} panicked; \
         total {elapsed:?}, slowest call {slowest:?}",
        panicked.len()
    );
    println!("per mutation kind (accepted, rejected): {per_kind:?}");
    assert!(panicked.is_empty(), "parse or the invariants panicked: {panicked:?}");
    assert_eq!(accepted + rejected, CASES);
    assert!(rejected > CASES / 2, "mutations should mostly break catalogs");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

/// A valid seed catalog padded with whitespace to exactly `size` bytes.
fn seed_of_size(size: usize) -> Vec<u8> {
    let mut text = br#"{"version":1,"tracks":[{"name":"video","selectionParams":{"codec":"avc1.64001f"}}]}"#.to_vec();
    text.resize(size, b' ');
    text
}

#[test]
fn size_limit_is_exact() {
    let at_limit = seed_of_size(MAX_CATALOG_SIZE);
    let catalog = catalog::parse(&at_limit).expect("a valid catalog of exactly MAX_CATALOG_SIZE bytes");
    assert_eq!(catalog.tracks[0].name, "video");
    assert_eq!(catalog.raw.len(), MAX_CATALOG_SIZE);

    let err = catalog::parse(&seed_of_size(MAX_CATALOG_SIZE + 1)).expect_err("one byte over the limit");
    assert!(err.message().contains("1048577 bytes; the maximum is 1048576"), "{err}");

    // The same at the limit with the bulk in a real string rather than whitespace.
    let head = r#"{"video":{"renditions":{}},"pad":""#;
    let filler = "p".repeat(MAX_CATALOG_SIZE - head.len() - 2);
    let padded = format!("{head}{filler}\"}}");
    assert_eq!(padded.len(), MAX_CATALOG_SIZE);
    assert_eq!(catalog::parse(padded.as_bytes()).unwrap().format, CatalogFormat::Hang);
}

fn seed_with_tracks(count: usize) -> String {
    let tracks: Vec<_> = (0..count).map(|i| json!({"name": format!("t{i}")})).collect();
    json!({"version": 1, "tracks": tracks}).to_string()
}

fn hang_with_binary_tracks(count: usize) -> String {
    let tracks: Map<String, Value> = (0..count)
        .map(|i| (format!("t{i}"), json!({"mode": "snapshot"})))
        .collect();
    json!({"binary": {"tracks": tracks}}).to_string()
}

#[test]
fn track_limit_is_exact() {
    for build in [seed_with_tracks, hang_with_binary_tracks] {
        let at_limit = build(MAX_CATALOG_TRACKS);
        assert_eq!(
            catalog::parse(at_limit.as_bytes()).unwrap().tracks.len(),
            MAX_CATALOG_TRACKS
        );
        let err = catalog::parse(build(MAX_CATALOG_TRACKS + 1).as_bytes()).expect_err("1025 tracks");
        assert!(err.message().contains("1025 tracks; the maximum is 1024"), "{err}");
    }
    let entries: Vec<_> = (0..=MAX_CATALOG_TRACKS)
        .map(|i| TrackEntry {
            name: format!("t{i}"),
            ..TrackEntry::default()
        })
        .collect();
    for format in [CatalogFormat::Seed, CatalogFormat::Hang] {
        assert!(catalog::serialize(&entries[..MAX_CATALOG_TRACKS], format).is_ok());
        assert!(catalog::serialize(&entries, format).is_err());
    }
}
