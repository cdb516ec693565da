//! Unit tests of parsing: both formats, detection and the input rules.

use super::*;
use crate::error::ErrorKind;

/// Parses, expecting an invalid-argument error, and returns its message.
pub(super) fn reject(json: &str) -> String {
    reject_bytes(json.as_bytes())
}

pub(super) fn reject_bytes(json: &[u8]) -> String {
    match parse(json) {
        Ok(catalog) => panic!("accepted {:?}: {:?}", String::from_utf8_lossy(json), catalog.tracks),
        Err(err) => {
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
            err.message().to_string()
        }
    }
}

pub(super) fn reject_serialize(tracks: &[TrackEntry], format: CatalogFormat) -> String {
    let err = serialize(tracks, format).expect_err("serialize accepted invalid entries");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    err.message().to_string()
}

pub(super) fn entry(name: &str) -> TrackEntry {
    TrackEntry {
        name: name.to_string(),
        ..TrackEntry::default()
    }
}

pub(super) fn some(value: &str) -> Option<String> {
    Some(value.to_string())
}

/// What moq-dev's publishers put in `catalog.json`: an H.264 rendition and an Opus one, with the
/// fields entries do not carry (container, framerate, jitter, description) around them.
pub(super) const HANG_REALISTIC: &str = r#"{
  "video": {
    "renditions": {
      "video/hd": {
        "codec": "avc1.64001f", "description": "0164001fffe1", "codedWidth": 1280, "codedHeight": 720,
        "displayAspectWidth": 16, "displayAspectHeight": 9, "bitrate": 6000000, "framerate": 30.0,
        "optimizeForLatency": true, "container": {"kind": "legacy"}, "jitter": 34
      }
    },
    "display": {"width": 1280, "height": 720}, "rotation": 0.0, "flip": false
  },
  "audio": {
    "renditions": {
      "audio/data": {
        "codec": "opus", "sampleRate": 48000, "numberOfChannels": 2, "bitrate": 128000,
        "container": {"kind": "legacy"}, "jitter": 20
      }
    }
  },
  "clock": {"wall": 1751846400000000, "timescale": 1000000},
  "json": {"tracks": {"chat": {"mode": "stream", "compression": "deflate"}}},
  "binary": {"tracks": {"thumbnail": {"mode": "snapshot", "mime": "image/jpeg", "bitrate": 8000}}},
  "com.example.extension": {"anything": [1, 2, 3]}
}"#;

#[test]
fn seed_parse_all_fields() {
    let json = r#"{"version":1,"tracks":[{"name":"video","selectionParams":{"codec":"avc1.64001f",
        "mimeType":"video/mp4","width":1920,"height":1080,"bitrate":5000000,"samplerate":48000,"lang":"en"}}]}"#;
    let catalog = parse(json.as_bytes()).unwrap();
    assert_eq!(catalog.format, CatalogFormat::Seed);
    assert_eq!(&catalog.raw[..], json.as_bytes());
    assert_eq!(
        catalog.tracks,
        vec![TrackEntry {
            name: "video".into(),
            codec: some("avc1.64001f"),
            mime_type: some("video/mp4"),
            width: 1920,
            height: 1080,
            bitrate: 5_000_000,
            sample_rate: 48_000,
            language: some("en"),
        }]
    );
}

#[test]
fn seed_parse_missing_optional_fields_and_unknown_extras() {
    let json = r#"{"version":1,"extra":{"x":[1]},"tracks":[
        {"name":"a"},
        {"name":"b","selectionParams":{}},
        {"name":"c","selectionParams":null,"renderGroup":1},
        {"name":"d","selectionParams":{"codec":null,"width":null,"lang":"","future":"yes"}}]}"#;
    let catalog = parse(json.as_bytes()).unwrap();
    assert_eq!(catalog.format, CatalogFormat::Seed);
    assert_eq!(catalog.tracks, vec![entry("a"), entry("b"), entry("c"), entry("d")]);
    let empty = parse(br#"{"version":1,"tracks":[]}"#).unwrap();
    assert_eq!((empty.format, empty.tracks.len()), (CatalogFormat::Seed, 0));
}

#[test]
fn seed_rejects_wrong_types_naming_track_and_field() {
    let cases = [
        (
            r#"{"version":1,"tracks":[{"name":"v","selectionParams":{"width":"1920"}}]}"#,
            "tracks[0] (\"v\"): selectionParams.width is a string",
        ),
        (
            r#"{"version":1,"tracks":[{"name":"a"},{"name":"v","selectionParams":{"height":1.5}}]}"#,
            "tracks[1] (\"v\"): selectionParams.height is 1.5",
        ),
        (
            r#"{"version":1,"tracks":[{"name":"v","selectionParams":{"bitrate":-1}}]}"#,
            "selectionParams.bitrate is -1",
        ),
        (
            r#"{"version":1,"tracks":[{"name":"v","selectionParams":{"samplerate":true}}]}"#,
            "selectionParams.samplerate is a boolean",
        ),
        (
            r#"{"version":1,"tracks":[{"name":"v","selectionParams":{"codec":7}}]}"#,
            "selectionParams.codec is a number",
        ),
        (
            r#"{"version":1,"tracks":[{"name":"v","selectionParams":{"lang":["en"]}}]}"#,
            "selectionParams.lang is an array",
        ),
        (
            r#"{"version":1,"tracks":[{"name":"v","selectionParams":[]}]}"#,
            "selectionParams is an array",
        ),
        (r#"{"version":1,"tracks":[{"name":5}]}"#, "tracks[0].name is a number"),
        (
            r#"{"version":1,"tracks":[{"selectionParams":{}}]}"#,
            "tracks[0] has no \"name\"",
        ),
        (r#"{"version":1,"tracks":["video"]}"#, "tracks[0] is a string"),
        (r#"{"version":1,"tracks":{}}"#, "\"tracks\" is an object"),
        (r#"{"version":"1","tracks":[]}"#, "\"version\" is a string"),
        (r#"{"version":2,"tracks":[]}"#, "only version 1"),
        (r#"{"tracks":[]}"#, "no \"version\""),
        (r#"{"version":1}"#, "no \"tracks\""),
    ];
    for (json, expected) in cases {
        let message = reject(json);
        assert!(message.contains(expected), "{json}: {message:?} lacks {expected:?}");
    }
}

#[test]
fn seed_numbers_must_fit_u32_but_bitrate_clamps() {
    let at = |field: &str, value: &str| {
        format!(r#"{{"version":1,"tracks":[{{"name":"v","selectionParams":{{"{field}":{value}}}}}]}}"#)
    };
    assert_eq!(
        parse(at("width", "4294967295").as_bytes()).unwrap().tracks[0].width,
        u32::MAX
    );
    assert!(
        reject(&at("width", "4294967296")).contains("selectionParams.width is 4294967296; the maximum is 4294967295")
    );
    assert!(reject(&at("samplerate", "99999999999")).contains("samplerate"));
    assert_eq!(
        parse(at("bitrate", "18446744073709551615").as_bytes()).unwrap().tracks[0].bitrate,
        u32::MAX
    );
    assert!(reject(&at("bitrate", "18446744073709551616")).contains("selectionParams.bitrate"));
    assert!(reject(&at("bitrate", "1e400")).contains("not valid JSON"));
}

#[test]
fn hang_parse_realistic_catalog() {
    let catalog = parse(HANG_REALISTIC.as_bytes()).unwrap();
    assert_eq!(catalog.format, CatalogFormat::Hang);
    assert_eq!(&catalog.raw[..], HANG_REALISTIC.as_bytes());
    let expected = vec![
        TrackEntry {
            name: "video/hd".into(),
            codec: some("avc1.64001f"),
            mime_type: some("video/h264"),
            width: 1280,
            height: 720,
            bitrate: 6_000_000,
            ..TrackEntry::default()
        },
        TrackEntry {
            name: "audio/data".into(),
            codec: some("opus"),
            mime_type: some("audio/opus"),
            bitrate: 128_000,
            sample_rate: 48_000,
            ..TrackEntry::default()
        },
        TrackEntry {
            mime_type: some("application/json"),
            ..entry("chat")
        },
        TrackEntry {
            mime_type: some("image/jpeg"),
            bitrate: 8000,
            ..entry("thumbnail")
        },
    ];
    assert_eq!(catalog.tracks, expected);
}

#[test]
fn hang_parse_text_families_and_skipped_references() {
    let json = r#"{"text":{"renditions":{"cc.en":{"format":"vtt","lang":"en"},"cc.x":{"format":"ttml","lang":""},
        "roll":{"format":"utf8","lang":"de"},"odd":{"format":"cea708"}}},
        "video":{"renditions":{"h265":{"codec":"hvc1.1.6.L93.B0"},"mirror":{"codec":"vp8","broadcast":"../source"},
        "weird":{"codec":"foo bar"}}},
        "audio":{"renditions":{"aac":{"codec":"mp4a.40.2","sampleRate":44100,"numberOfChannels":1,
        "bitrate":99999999999}}}}"#;
    let tracks = parse(json.as_bytes()).unwrap().tracks;
    let summary: Vec<_> = tracks
        .iter()
        .map(|t| (t.name.as_str(), t.mime_type.as_deref(), t.language.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("h265", Some("video/h265"), None),
            ("weird", Some("video/x-unknown"), None),
            ("aac", Some("audio/aac"), None),
            ("cc.en", Some("text/vtt"), Some("en")),
            ("cc.x", Some("application/ttml+xml"), None),
            ("odd", Some("text/cea708"), None),
            ("roll", Some("text/plain"), Some("de")),
        ]
    );
    assert_eq!(tracks[2].bitrate, u32::MAX, "hang's u64 bitrate clamps");
    assert_eq!(tracks[2].sample_rate, 44_100);
}

#[test]
fn hang_rejects_bad_types_and_numbers() {
    let cases = [
        (
            r#"{"video":{"renditions":{"v":{"codec":"avc1.64001f","codedWidth":4294967296}}}}"#,
            "hang format",
        ),
        (r#"{"video":{"renditions":{"v":{"codec":42}}}}"#, "hang format"),
        (r#"{"video":{"renditions":{"v":{"codec":"avc1.zz"}}}}"#, "hang format"),
        (
            r#"{"video":{"renditions":{"v":{"codec":""}}}}"#,
            "video rendition \"v\": codec is empty",
        ),
        (
            r#"{"audio":{"renditions":{"a":{"codec":"opus","sampleRate":"48000","numberOfChannels":2}}}}"#,
            "hang format",
        ),
        (r#"{"audio":{"renditions":{"a":{"codec":"opus"}}}}"#, "sampleRate"),
        (r#"{"video":5}"#, "hang format"),
        (
            r#"{"binary":{"tracks":{"b":{"mode":"snapshot","bitrate":-5}}}}"#,
            "hang format",
        ),
        (
            r#"{"json":{"tracks":{"":{"mode":"stream"}}}}"#,
            "json track \"\": name (its key) is empty",
        ),
        (
            r#"{"json":{"tracks":{"a\u0000b":{"mode":"stream"}}}}"#,
            "json track \"a\\0b\": name (its key) contains a NUL byte",
        ),
        (
            r#"{"binary":{"tracks":{"b":{"mode":"snapshot","mime":"image/\u0000"}}}}"#,
            "binary track \"b\": mime contains a NUL byte",
        ),
    ];
    for (json, expected) in cases {
        let message = reject(json);
        assert!(message.contains(expected), "{json}: {message:?} lacks {expected:?}");
    }
    // Sections hang treats as someone else's key stay lenient, as hang itself is.
    assert!(parse(br#"{"json":"mine","binary":[1]}"#).unwrap().tracks.is_empty());
}

#[test]
fn detection_of_formats_and_non_catalogs() {
    assert_eq!(parse(b"{}").unwrap().format, CatalogFormat::Hang);
    assert_eq!(parse(b" {\"unknown\": 1} ").unwrap().tracks.len(), 0);
    for json in ["[]", "42", "\"x\"", "null", "true", ""] {
        let message = reject(json);
        assert!(message.starts_with("catalog"), "{json}: {message}");
    }
    assert!(reject("[]").contains("expected a catalog (a JSON object)"));
    assert!(reject("{} x").contains("not valid JSON"));
    // A hang section wins over seed keys, which hang ignores.
    let both = parse(br#"{"version":1,"tracks":[{"name":"x"}],"json":{"tracks":{"j":{"mode":"stream"}}}}"#).unwrap();
    assert_eq!((both.format, both.tracks[0].name.as_str()), (CatalogFormat::Hang, "j"));
}

#[test]
fn input_rules() {
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_CATALOG_SIZE));
    let expected = format!(
        "catalog is {} bytes; the maximum is {MAX_CATALOG_SIZE} bytes",
        big.len()
    );
    assert!(reject(&big).contains(&expected));
    let message = reject_bytes(b"{\"version\":1,\"tracks\":[{\"name\":\"a\xff\"}]}");
    assert!(
        message.contains("not valid UTF-8 (first bad byte at offset 33)"),
        "{message}"
    );
    let message = reject(r#"{"version":1,"tracks":[{"name":"a"},{"name":"a"}]}"#);
    assert!(
        message.contains("tracks[1] (\"a\"): the track name is already used by tracks[0]"),
        "{message}"
    );
    let message =
        reject(r#"{"video":{"renditions":{"x":{"codec":"vp8"}}},"binary":{"tracks":{"x":{"mode":"stream"}}}}"#);
    assert!(message.contains("binary track \"x\": the track name is already used by video rendition \"x\""));
    let message = reject(r#"{"version":1,"tracks":[{"name":"a","selectionParams":{"codec":"x","codec":"y"}}]}"#);
    assert!(message.contains("key \"codec\" appears twice"), "{message}");
    let message = reject(r#"{"video":{"renditions":{"v":{"codec":"vp8"},"v":{"codec":"vp8"}}}}"#);
    assert!(message.contains("key \"v\" appears twice"), "{message}");
    assert!(reject(r#"{"version":1,"version":1,"tracks":[]}"#).contains("appears twice"));
    assert!(reject(r#"{"version":1,"tracks":[{"name":"bell\u0007"}]}"#).contains("control character"));
    assert!(
        reject(r#"{"version":1,"tracks":[{"name":"a","selectionParams":{"lang":"e\u0000"}}]}"#)
            .contains("tracks[0] (\"a\"): selectionParams.lang contains a NUL byte")
    );
    let long = format!(r#"{{"version":1,"tracks":[{{"name":"{}"}}]}}"#, "n".repeat(1025));
    assert!(reject(&long).contains("name is 1025 bytes; the maximum is 1024"));
}

#[test]
fn deep_nesting_fails_fast_without_overflow() {
    let started = std::time::Instant::now();
    for prefix in ["", "{\"video\":", "{\"version\":1,\"tracks\":[{\"name\":\"a\",\"x\":"] {
        for open in ["[", "{\"a\":"] {
            let json = format!("{prefix}{}", open.repeat(100_000));
            let message = reject(&json);
            assert!(
                message.contains("recursion limit") || message.contains("expected a catalog"),
                "{message}"
            );
        }
    }
    let nested_ok = format!("{{\"x\":{}{}}}", "[".repeat(100), "]".repeat(100));
    assert!(parse(nested_ok.as_bytes()).is_ok());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// Found by the catalog fuzzer: a known text format spelt in another case must keep its meaning
/// when written back, so hang -> entries -> hang -> entries is stable.
#[test]
fn known_text_formats_in_another_case_round_trip() {
    for (format, mime) in [
        ("utF8", "text/plain"),
        ("TTML", "application/ttml+xml"),
        ("VTT", "text/vtt"),
    ] {
        let json = format!(r#"{{"text":{{"renditions":{{"c":{{"format":"{format}","lang":"de"}}}}}}}}"#);
        let first = parse(json.as_bytes()).expect("parses");
        assert_eq!(first.tracks[0].mime_type.as_deref(), Some(mime), "{format}");
        let written = serialize(&first.tracks, CatalogFormat::Hang).expect("serializes");
        let again = parse(written.as_bytes()).expect("parses again");
        assert_eq!(again.tracks, first.tracks, "{format}: {written}");
    }
}
