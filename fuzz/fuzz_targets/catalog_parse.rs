//! Catalog JSON: `moq_ffi::core::catalog::parse` on arbitrary bytes, and for every accepted input
//! the serialize → parse round trips.
//!
//! Invariants:
//! - parse never panics; a rejection is `InvalidArgument` with a non-empty message;
//! - an accepted catalog obeys the documented rules (raw bytes kept, at most
//!   `MAX_CATALOG_TRACKS` tracks, names non-empty, unique, ≤ `MAX_NAME_LEN` bytes, no control
//!   characters; codec/mime/language `None` rather than empty, no NUL, ≤ `MAX_NAME_LEN`);
//! - seed format carries every field: `parse(serialize(tracks, Seed))` gives back exactly the same
//!   tracks, in seed format (serialize may only refuse with the documented size limit);
//! - a catalog read from the hang format round-trips through hang to the same entries (order
//!   aside: a text rendition without a language is written as a binary track, as documented);
//! - any catalog written as hang and read back keeps its set of track names, and hang writing is
//!   a fixpoint after one round (`t2 → hang → t3` gives `t3 == t2`).
// Two entry points over one `run`: libFuzzer's under cargo-fuzz (`--cfg fuzzing`,
// scripts/fuzz.sh), and the smoke runner under `cargo test` (common/smoke.rs).
#![cfg_attr(fuzzing, no_main)]

use moq_ffi::core::catalog::{parse, serialize, CatalogFormat, TrackEntry, MAX_CATALOG_TRACKS};
use moq_ffi::core::config::MAX_NAME_LEN;
use moq_ffi::error::ErrorKind;
use std::collections::BTreeSet;

fn check_string(what: &str, value: &str) {
    assert!(!value.is_empty(), "INVARIANT: accepted an empty {what}");
    assert!(!value.contains('\0'), "INVARIANT: accepted a {what} with NUL");
    assert!(
        value.len() <= MAX_NAME_LEN,
        "INVARIANT: accepted a {what} of {} bytes",
        value.len()
    );
}

fn check_tracks(tracks: &[TrackEntry]) {
    assert!(
        tracks.len() <= MAX_CATALOG_TRACKS,
        "INVARIANT: {} tracks accepted",
        tracks.len()
    );
    let mut names = BTreeSet::new();
    for track in tracks {
        check_string("name", &track.name);
        assert!(
            !track.name.chars().any(char::is_control),
            "INVARIANT: name with a control character: {:?}",
            track.name
        );
        assert!(
            names.insert(track.name.as_str()),
            "INVARIANT: duplicate name accepted: {:?}",
            track.name
        );
        for (what, value) in [
            ("codec", &track.codec),
            ("mime", &track.mime_type),
            ("language", &track.language),
        ] {
            if let Some(value) = value {
                check_string(what, value);
            }
        }
    }
}

fn names(tracks: &[TrackEntry]) -> BTreeSet<&str> {
    tracks.iter().map(|track| track.name.as_str()).collect()
}

fn sorted(tracks: &[TrackEntry]) -> Vec<TrackEntry> {
    let mut tracks = tracks.to_vec();
    tracks.sort_by(|a, b| a.name.cmp(&b.name));
    tracks
}

fn expect_invalid(what: &str, err: &moq_ffi::error::Error) {
    assert_eq!(
        err.kind(),
        ErrorKind::InvalidArgument,
        "INVARIANT: {what} failed with {:?}: {err}",
        err.kind()
    );
    assert!(
        !err.message().is_empty(),
        "INVARIANT: {what} failed with an empty message"
    );
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

#[cfg(not(fuzzing))]
#[path = "common/smoke.rs"]
mod smoke;

#[cfg(not(fuzzing))]
fn main() {
    smoke::main("catalog_parse", run);
}

fn run(data: &[u8]) {
    let catalog = match parse(data) {
        Ok(catalog) => catalog,
        Err(err) => return expect_invalid("parse", &err),
    };
    assert_eq!(&catalog.raw[..], data, "INVARIANT: raw differs from the input");
    let tracks = catalog.tracks;
    check_tracks(&tracks);

    // Seed carries every field: an exact round trip.
    match serialize(&tracks, CatalogFormat::Seed) {
        Ok(json) => {
            let back = parse(json.as_bytes()).unwrap_or_else(|err| {
                panic!("INVARIANT: seed output of an accepted catalog is rejected: {err}\n{json}")
            });
            assert_eq!(
                back.format,
                CatalogFormat::Seed,
                "INVARIANT: seed output not detected as seed: {json}"
            );
            assert_eq!(
                back.tracks, tracks,
                "INVARIANT: seed round trip changed the tracks: {json}"
            );
        }
        Err(err) => {
            expect_invalid("serialize(seed)", &err);
            assert!(
                err.message().contains("maximum"),
                "INVARIANT: serialize(seed) refused accepted tracks: {err}"
            );
        }
    }

    // hang: exact for hang input; name-preserving and idempotent for anything.
    match serialize(&tracks, CatalogFormat::Hang) {
        Ok(json) => {
            let second = parse(json.as_bytes()).unwrap_or_else(|err| {
                panic!("INVARIANT: hang output of an accepted catalog is rejected: {err}\n{json}")
            });
            assert_eq!(
                second.format,
                CatalogFormat::Hang,
                "INVARIANT: hang output not detected as hang: {json}"
            );
            assert_eq!(
                names(&second.tracks),
                names(&tracks),
                "INVARIANT: hang round trip changed the track names: {json}"
            );
            if catalog.format == CatalogFormat::Hang {
                // Same entries; the order may change because a text rendition without a language
                // is written as a binary track (documented), and sections come out in hang order.
                let (before, after) = (sorted(&tracks), sorted(&second.tracks));
                if before != after {
                    assert_eq!(
                        after, before,
                        "INVARIANT: hang → hang round trip changed the tracks: {json}"
                    );
                }
            }
            let again = serialize(&second.tracks, CatalogFormat::Hang)
                .unwrap_or_else(|err| panic!("INVARIANT: hang output cannot be written again: {err}\n{json}"));
            let third = parse(again.as_bytes())
                .unwrap_or_else(|err| panic!("INVARIANT: second hang output rejected: {err}\n{again}"));
            assert_eq!(
                third.tracks, second.tracks,
                "INVARIANT: hang writing is not a fixpoint: {json} → {again}"
            );
        }
        Err(err) => expect_invalid("serialize(hang)", &err),
    }
}
