//! Unit tests of serialising, round trips and the limits shared by both directions.

use super::tests::{entry, reject, reject_serialize, some, HANG_REALISTIC};
use super::*;
use hang::catalog::MAX_RENDITIONS;

fn sample_seed_entries() -> Vec<TrackEntry> {
    vec![
        TrackEntry {
            name: "video".into(),
            codec: some("avc1.64001f"),
            mime_type: some("video/mp4"),
            width: 1920,
            height: 1080,
            bitrate: 5_000_000,
            sample_rate: 0,
            language: some("en"),
        },
        entry("bare"),
        TrackEntry {
            name: "ünïcode \u{1F600}".into(),
            mime_type: some("application/octet-stream; x=\"quoted\\\""),
            bitrate: u32::MAX,
            sample_rate: 1,
            ..TrackEntry::default()
        },
    ]
}

/// Entries the hang format carries exactly, in the order hang reads them back.
fn sample_hang_entries() -> Vec<TrackEntry> {
    vec![
        TrackEntry {
            name: "video/hd".into(),
            codec: some("avc1.64001f"),
            mime_type: some("video/h264"),
            width: 1920,
            height: 1080,
            bitrate: 5_000_000,
            ..TrackEntry::default()
        },
        TrackEntry {
            name: "video/sd".into(),
            codec: some("av01.0.04M.08"),
            mime_type: some("video/av1"),
            ..TrackEntry::default()
        },
        TrackEntry {
            name: "audio".into(),
            codec: some("opus"),
            mime_type: some("audio/opus"),
            sample_rate: 48_000,
            bitrate: 128_000,
            ..TrackEntry::default()
        },
        TrackEntry {
            name: "captions".into(),
            mime_type: some("text/vtt"),
            language: some("en"),
            ..TrackEntry::default()
        },
        TrackEntry {
            name: "state".into(),
            mime_type: some("application/json"),
            bitrate: 1000,
            ..TrackEntry::default()
        },
        entry("blob"),
        TrackEntry {
            name: "jpeg".into(),
            mime_type: some("image/jpeg"),
            ..TrackEntry::default()
        },
    ]
}

#[test]
fn seed_round_trip() {
    for tracks in [sample_seed_entries(), Vec::new()] {
        let json = serialize(&tracks, CatalogFormat::Seed).unwrap();
        let catalog = parse(json.as_bytes()).unwrap();
        assert_eq!(catalog.format, CatalogFormat::Seed);
        assert_eq!(catalog.tracks, tracks, "{json}");
        assert_eq!(&catalog.raw[..], json.as_bytes());
    }
    assert_eq!(
        serialize(&[entry("a")], CatalogFormat::Seed).unwrap(),
        r#"{"version":1,"tracks":[{"name":"a","selectionParams":{}}]}"#
    );
}

#[test]
fn hang_round_trip() {
    let tracks = sample_hang_entries();
    let json = serialize(&tracks, CatalogFormat::Hang).unwrap();
    let catalog = parse(json.as_bytes()).unwrap();
    assert_eq!(catalog.format, CatalogFormat::Hang);
    assert_eq!(catalog.tracks, tracks, "{json}");
    // hang's own reader agrees with what we wrote.
    let hang = hang::catalog::Catalog::<()>::from_str(&json).unwrap();
    assert_eq!(hang.audio.renditions["audio"].channel_count, 2);
    assert_eq!(hang.json.tracks["state"].mode, hang::catalog::Mode::Snapshot);
    // Parsing the realistic catalog and writing it back keeps every entry.
    let realistic = parse(HANG_REALISTIC.as_bytes()).unwrap().tracks;
    let again = serialize(&realistic, CatalogFormat::Hang).unwrap();
    assert_eq!(parse(again.as_bytes()).unwrap().tracks, realistic);
    let empty = serialize(&[], CatalogFormat::Hang).unwrap();
    assert_eq!(parse(empty.as_bytes()).unwrap().format, CatalogFormat::Hang);
}

#[test]
fn hang_serialize_maps_lossy_fields_as_documented() {
    let tracks = vec![
        TrackEntry {
            name: "v".into(),
            codec: some("avc1.64001F"),
            mime_type: None,
            width: 640,
            sample_rate: 44_100,
            language: some("en"),
            ..TrackEntry::default()
        },
        TrackEntry {
            name: "a".into(),
            codec: some("mp4a.40.2"),
            mime_type: some("audio/mp4"),
            width: 0,
            language: some("fr"),
            ..TrackEntry::default()
        },
        TrackEntry {
            name: "j".into(),
            mime_type: some("Application/JSON; charset=utf-8"),
            language: some("en"),
            ..TrackEntry::default()
        },
        TrackEntry {
            name: "plain".into(),
            mime_type: some("text/plain"),
            ..TrackEntry::default()
        },
    ];
    let json = serialize(&tracks, CatalogFormat::Hang).unwrap();
    let back = parse(json.as_bytes()).unwrap().tracks;
    let got: Vec<_> = back
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.codec.as_deref(),
                t.mime_type.as_deref(),
                t.sample_rate,
                t.language.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("v", Some("avc1.64001f"), Some("video/h264"), 0, None),
            ("a", Some("mp4a.40.2"), Some("audio/aac"), 0, None),
            ("j", None, Some("application/json"), 0, None),
            ("plain", None, Some("text/plain"), 0, None),
        ]
    );
    assert!(
        json.contains(r#""binary":{"tracks":{"plain":{"mode":"snapshot","mime":"text/plain"}}}"#),
        "{json}"
    );
}

#[test]
fn hang_serialize_needs_a_valid_codec_for_media() {
    let video = TrackEntry {
        mime_type: some("video/mp4"),
        ..entry("cam")
    };
    let message = reject_serialize(&[entry("ok"), video], CatalogFormat::Hang);
    assert!(
        message.contains("tracks[1] (\"cam\"): codec is unset, and the hang format requires one for video"),
        "{message}"
    );
    let audio = TrackEntry {
        sample_rate: 48_000,
        ..entry("mic")
    };
    assert!(reject_serialize(&[audio], CatalogFormat::Hang)
        .contains("\"mic\"): codec is unset, and the hang format requires one for audio"));
    let broken = TrackEntry {
        codec: some("avc1.xyz"),
        width: 1,
        ..entry("v")
    };
    let message = reject_serialize(&[broken], CatalogFormat::Hang);
    assert!(
        message.contains("codec \"avc1.xyz\" is not a valid video codec string"),
        "{message}"
    );
    // The seed format has no such requirement.
    assert!(serialize(&[TrackEntry { width: 1, ..entry("v") }], CatalogFormat::Seed).is_ok());
}

#[test]
fn entry_rules_apply_to_serialize() {
    let long = "x".repeat(crate::core::config::MAX_NAME_LEN);
    let at_limit = TrackEntry {
        codec: Some(long.clone()),
        mime_type: Some(long.clone()),
        language: Some(long.clone()),
        ..entry(&long)
    };
    for format in [CatalogFormat::Seed, CatalogFormat::Hang] {
        let json = serialize(std::slice::from_ref(&at_limit), format).unwrap();
        assert_eq!(parse(json.as_bytes()).unwrap().tracks[0].name, long);
    }
    let too_long = format!("{long}x");
    let cases: [(Vec<TrackEntry>, &str); 8] = [
        (vec![entry("")], "tracks[0] (\"\"): name is empty"),
        (
            vec![entry("a"), entry("a\0b")],
            "tracks[1] (\"a\\0b\"): name contains a NUL byte",
        ),
        (vec![entry("tab\there")], "name contains a control character"),
        (vec![entry(&too_long)], "name is 1025 bytes; the maximum is 1024"),
        (
            vec![entry("a"), entry("b"), entry("a")],
            "tracks[2] (\"a\"): the track name is already used by tracks[0]",
        ),
        (
            vec![TrackEntry {
                codec: some(""),
                ..entry("a")
            }],
            "codec is empty (leave it unset",
        ),
        (
            vec![TrackEntry {
                language: some("e\0n"),
                ..entry("a")
            }],
            "language contains a NUL byte",
        ),
        (
            vec![TrackEntry {
                mime_type: Some(too_long.clone()),
                ..entry("a")
            }],
            "mime_type is 1025 bytes",
        ),
    ];
    for (tracks, expected) in cases {
        for format in [CatalogFormat::Seed, CatalogFormat::Hang] {
            let message = reject_serialize(&tracks, format);
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }
}

#[test]
fn track_count_limits() {
    let tracks: Vec<_> = (0..MAX_CATALOG_TRACKS).map(|i| entry(&format!("t{i}"))).collect();
    for format in [CatalogFormat::Seed, CatalogFormat::Hang] {
        let json = serialize(&tracks, format).unwrap();
        assert_eq!(parse(json.as_bytes()).unwrap().tracks.len(), MAX_CATALOG_TRACKS);
    }
    let mut over = tracks.clone();
    over.push(entry("one-more"));
    for format in [CatalogFormat::Seed, CatalogFormat::Hang] {
        assert!(reject_serialize(&over, format).contains("catalog lists 1025 tracks; the maximum is 1024"));
    }
    let mut seed = String::from(r#"{"version":1,"tracks":["#);
    seed.push_str(
        &(0..=MAX_CATALOG_TRACKS)
            .map(|i| format!(r#"{{"name":"t{i}"}}"#))
            .collect::<Vec<_>>()
            .join(","),
    );
    seed.push_str("]}");
    assert!(reject(&seed).contains("1025 tracks"));
}

#[test]
fn hang_media_rendition_limit() {
    let audio = |i: usize| TrackEntry {
        codec: some("opus"),
        mime_type: some("audio/opus"),
        sample_rate: 48_000,
        ..entry(&format!("a{i}"))
    };
    let tracks: Vec<_> = (0..MAX_RENDITIONS).map(audio).collect();
    let json = serialize(&tracks, CatalogFormat::Hang).unwrap();
    assert_eq!(parse(json.as_bytes()).unwrap().tracks.len(), MAX_RENDITIONS);
    let over: Vec<_> = (0..=MAX_RENDITIONS).map(audio).collect();
    assert!(reject_serialize(&over, CatalogFormat::Hang).contains("the hang format allows at most 64"));
    // The seed format writes them; read as hang (by adding a section) the limit applies.
    let seed = serialize(&over, CatalogFormat::Seed).unwrap();
    assert_eq!(parse(seed.as_bytes()).unwrap().tracks.len(), MAX_RENDITIONS + 1);
    let hang_json = json.replace(
        r#""a0":"#,
        r#""extra":{"codec":"opus","sampleRate":1,"numberOfChannels":1},"a0":"#,
    );
    assert!(reject(&hang_json).contains("65 video, audio and text renditions"));
}

#[test]
fn serialized_size_is_bounded() {
    let long = "x".repeat(crate::core::config::MAX_NAME_LEN - 8);
    let tracks: Vec<_> = (0..MAX_CATALOG_TRACKS)
        .map(|i| TrackEntry {
            mime_type: Some(long.clone()),
            ..entry(&format!("{i:08}{long}"))
        })
        .collect();
    let message = reject_serialize(&tracks, CatalogFormat::Seed);
    assert!(message.contains("the maximum is 1048576 bytes"), "{message}");
}
