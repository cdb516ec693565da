//! Catalogs: the list of tracks a broadcast publishes, read from and written to JSON.
//!
//! Pure data handling: no network, no FFI, no `unsafe`. Two formats are understood both ways and
//! flattened into one [`TrackEntry`] per track (numbers use 0 for "unknown").
//!
//! # Seed format (the earlier library)
//!
//! `{"version":1,"tracks":[{"name":"video","selectionParams":{"codec":"avc1.64001f",
//! "mimeType":"video/mp4","width":1920,"height":1080,"bitrate":5000000,"samplerate":48000,
//! "lang":"en"}}]}`. Only version 1 exists. `selectionParams` and each of its fields are optional,
//! `null` counts as absent and an empty string as unset; unknown fields anywhere are ignored, but a
//! known field of the wrong type (`"width":"1920"`, `"width":1.5`, `"width":-1`) is an error.
//! width, height and samplerate above `u32::MAX` are errors; bitrate may be any u64 and is clamped
//! to `u32::MAX`, as with hang. Track order is kept.
//!
//! # hang format (moq-dev's `catalog.json`, read and written as [`hang::catalog::Catalog`])
//!
//! | hang               | entry                                                                  |
//! |--------------------|------------------------------------------------------------------------|
//! | `video.renditions` | codec; `codedWidth`/`codedHeight` → width/height; bitrate; mime `video/<family>` |
//! | `audio.renditions` | codec; `sampleRate` → sample_rate; bitrate; mime `audio/<family>`     |
//! | `text.renditions`  | `lang` → language; mime from `format`                                  |
//! | `json.tracks`      | mime `application/json`; bitrate                                       |
//! | `binary.tracks`    | `mime` → mime_type; bitrate                                            |
//!
//! Text formats: vtt → `text/vtt`, ttml → `application/ttml+xml`, utf8 → `text/plain`, any other
//! format `f` → `text/f`. Codec families: avc1/avc3 → h264, hvc1/hev1 → h265, vp09 → vp9,
//! av01 → av1, vp8; mp4a → aac, mp3/mp2 → mpeg, ac-3 → ac3, ec-3 → eac3, opus/flac/pcm as named;
//! any other codec → its text before the first `.` when that is a short token, else `x-unknown`.
//! hang has no mime for media, so these are descriptive, and they let an entry be classified again
//! when written back.
//! Entries come out in hang's order: video, audio, text, json, binary, each sorted by name.
//! Renditions with a `broadcast` reference are skipped: they are tracks of another broadcast.
//! hang's `bitrate` is a u64; values above `u32::MAX` are clamped to it (no real stream is faster).
//!
//! Writing hang, an entry is classified by its mime (compared case-insensitively, parameters after
//! `;` ignored) and numbers: `video/*` or width/height > 0 → video rendition; `audio/*` or
//! sample_rate > 0 → audio rendition; `application/json` → json track; `text/vtt`,
//! `application/ttml+xml`, or `text/*` with a language → text rendition; anything else (including
//! `text/plain` without a language) → binary track carrying the mime. Video and audio need a codec
//! (hang requires one) that hang can parse.
//!
//! What the hang format loses: the mime of media entries (re-derived from the codec on read); the
//! language of anything but text; bitrate of text; numbers that do not belong to the kind (e.g.
//! sample_rate on video, width on audio); the exact spelling of codec strings (hang canonicalises
//! them, e.g. hex case); mime parameters of json tracks. hang needs fields entries do not have:
//! audio is written with `numberOfChannels` 2 (stereo, which Opus and AAC decoders produce from
//! mono too), json and binary tracks with mode `snapshot` (each object its own group, as
//! `moq_publish_data` sends it), containers as hang's default. Read back, a binary track with a
//! `video/*`, `audio/*` or `application/json` mime becomes that kind when written again.
//!
//! # Format detection
//!
//! The top level must be a JSON object (`[]`, `42`, `"x"`, `null` are errors). With any hang
//! section key (`video`, `audio`, `text`, `json`, `binary`) it is hang; else with `tracks` or
//! `version` it is seed (both then required); else (`{}`, or only unknown keys) an empty hang
//! catalog, since hang ignores keys it does not know.
//!
//! # Rules, checked on parse and on serialize
//!
//! At most [`MAX_CATALOG_SIZE`] bytes of UTF-8 JSON and [`MAX_CATALOG_TRACKS`] tracks (hang itself
//! also caps video + audio + text renditions at [`hang::catalog::MAX_RENDITIONS`]). No JSON object
//! may repeat a key (so a name cannot silently shadow another). Track names are non-empty, unique
//! across all sections, at most [`MAX_NAME_LEN`] bytes and free of control characters; codec, mime
//! and language are at most [`MAX_NAME_LEN`] bytes without NUL, and are `None` rather than empty.
//! Width, height and sample rate must fit a u32. Nesting is bounded by serde_json's recursion limit
//! (128), so deep input fails fast instead of overflowing the stack.

use std::collections::{HashMap, HashSet};
use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::core::config::MAX_NAME_LEN;
use crate::error::{Error, Result};

mod hang_json;
mod seed;

/// Largest catalog accepted or produced, in bytes of JSON.
pub const MAX_CATALOG_SIZE: usize = 1 << 20;
/// Most tracks one catalog may list.
pub const MAX_CATALOG_TRACKS: usize = 1024;

/// Which JSON format a catalog is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogFormat {
    /// `{"version":1,"tracks":[..]}`, the earlier library's format.
    Seed,
    /// moq-dev's `catalog.json`, as defined by the `hang` crate.
    Hang,
}

/// One track of a catalog, flattened from either format. Numbers are 0 when unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackEntry {
    /// The track name within the broadcast: non-empty and unique in its catalog.
    pub name: String,
    /// WebCodecs codec string, e.g. `avc1.64001f` or `opus`.
    pub codec: Option<String>,
    /// Media type, e.g. `video/mp4` or `application/json`.
    pub mime_type: Option<String>,
    /// Coded width in pixels.
    pub width: u32,
    /// Coded height in pixels.
    pub height: u32,
    /// Bits per second.
    pub bitrate: u32,
    /// Audio samples per second.
    pub sample_rate: u32,
    /// BCP-47 language tag, e.g. `en`.
    pub language: Option<String>,
}

/// A parsed catalog: its format, its tracks and the exact bytes it was parsed from.
#[derive(Clone, Debug)]
pub struct Catalog {
    /// The format the JSON was in.
    pub format: CatalogFormat,
    /// The tracks, in the order described in the module doc.
    pub tracks: Vec<TrackEntry>,
    /// The input, byte for byte.
    pub raw: Bytes,
}

/// Parses a catalog in either format (detected as the module doc describes).
pub fn parse(json: &[u8]) -> Result<Catalog> {
    if json.len() > MAX_CATALOG_SIZE {
        return Err(invalid(format!(
            "catalog is {} bytes; the maximum is {MAX_CATALOG_SIZE} bytes",
            json.len()
        )));
    }
    let text = std::str::from_utf8(json).map_err(|err| {
        invalid(format!(
            "catalog is not valid UTF-8 (first bad byte at offset {})",
            err.valid_up_to()
        ))
    })?;
    // One bounded pass rejects bad JSON and duplicate keys and tells the formats apart.
    let shape: Shape = serde_json::from_str(text).map_err(|err| json_error("catalog", &err))?;
    let (format, tracks) = if !shape.hang_keys && shape.seed_keys {
        (CatalogFormat::Seed, seed::parse(text)?)
    } else {
        (CatalogFormat::Hang, hang_json::parse(text)?)
    };
    Ok(Catalog {
        format,
        tracks,
        raw: Bytes::copy_from_slice(json),
    })
}

/// Writes `tracks` as JSON in `format`, after checking them with the rules of [`parse`].
pub fn serialize(tracks: &[TrackEntry], format: CatalogFormat) -> Result<String> {
    validate(tracks, &ENTRY_FIELDS, &|i| describe("tracks", i, &tracks[i].name))?;
    let json = match format {
        CatalogFormat::Seed => seed::serialize(tracks)?,
        CatalogFormat::Hang => hang_json::serialize(tracks)?,
    };
    if json.len() > MAX_CATALOG_SIZE {
        return Err(invalid(format!(
            "the serialised catalog would be {} bytes; the maximum is {MAX_CATALOG_SIZE} bytes \
             (list fewer tracks or shorter strings)",
            json.len()
        )));
    }
    Ok(json)
}

// ---- checks shared by both directions ----

/// How a format spells the checked fields, so errors name what the caller wrote.
struct FieldNames {
    name: &'static str,
    codec: &'static str,
    mime: &'static str,
    language: &'static str,
}

const ENTRY_FIELDS: FieldNames = FieldNames {
    name: "name",
    codec: "codec",
    mime: "mime_type",
    language: "language",
};

fn validate(tracks: &[TrackEntry], fields: &FieldNames, at: &dyn Fn(usize) -> String) -> Result<()> {
    check_count(tracks.len())?;
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(tracks.len());
    for (i, track) in tracks.iter().enumerate() {
        let problem = string_problem(&track.name).or_else(|| {
            let control = track.name.chars().any(char::is_control);
            control.then(|| "contains a control character".to_string())
        });
        if let Some(problem) = problem {
            return Err(invalid(format!("catalog {}: {} {problem}", at(i), fields.name)));
        }
        let optional = [
            (fields.codec, &track.codec),
            (fields.mime, &track.mime_type),
            (fields.language, &track.language),
        ];
        for (field, value) in optional {
            if let Some(problem) = value.as_deref().and_then(string_problem) {
                return Err(invalid(format!("catalog {}: {field} {problem}", at(i))));
            }
        }
        if let Some(first) = seen.insert(&track.name, i) {
            return Err(invalid(format!(
                "catalog {}: the track name is already used by {}; names must be unique",
                at(i),
                at(first)
            )));
        }
    }
    Ok(())
}

fn check_count(count: usize) -> Result<()> {
    if count > MAX_CATALOG_TRACKS {
        return Err(invalid(format!(
            "catalog lists {count} tracks; the maximum is {MAX_CATALOG_TRACKS}"
        )));
    }
    Ok(())
}

/// What is wrong with a string field, if anything.
fn string_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        Some("is empty (leave it unset instead)".to_string())
    } else if value.contains('\0') {
        Some("contains a NUL byte".to_string())
    } else if value.len() > MAX_NAME_LEN {
        Some(format!("is {} bytes; the maximum is {MAX_NAME_LEN}", value.len()))
    } else {
        None
    }
}

/// `tracks[3] ("video")`: where a track is, for error messages.
fn describe(place: &str, index: usize, name: &str) -> String {
    format!("{place}[{index}] ({})", quote(name))
}

/// Debug-quotes a string (escaping NUL and control characters), shortened for messages.
fn quote(value: &str) -> String {
    const LIMIT: usize = 64;
    if value.len() <= LIMIT {
        return format!("{value:?}");
    }
    let mut end = LIMIT;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &value[..end], value.len())
}

fn invalid(message: String) -> Error {
    Error::invalid_argument(message)
}

fn json_error(context: &str, err: &serde_json::Error) -> Error {
    match err.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            invalid(format!("{context} is not valid JSON: {err}"))
        }
        _ => invalid(format!("{context}: {err}")),
    }
}

// ---- the pre-pass: duplicate keys and format detection ----

/// Which top-level keys a catalog object has.
struct Shape {
    seed_keys: bool,
    hang_keys: bool,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct ShapeVisitor;
        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a catalog (a JSON object)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Shape, A::Error> {
                let mut shape = Shape {
                    seed_keys: false,
                    hang_keys: false,
                };
                let mut keys = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "tracks" | "version" => shape.seed_keys = true,
                        "video" | "audio" | "text" | "json" | "binary" => shape.hang_keys = true,
                        _ => {}
                    }
                    unique_key(&mut keys, key)?;
                    map.next_value::<UniqueKeys>()?;
                }
                Ok(shape)
            }
        }
        deserializer.deserialize_map(ShapeVisitor)
    }
}

/// Any JSON value whose objects repeat no key. serde_json keeps the last of repeated keys
/// silently, which would let one rendition shadow another.
struct UniqueKeys;

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> std::result::Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> std::result::Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<UniqueKeys, A::Error> {
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            unique_key(&mut keys, key)?;
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }
}

fn unique_key<E: de::Error>(keys: &mut HashSet<String>, key: String) -> std::result::Result<(), E> {
    if keys.contains(&key) {
        return Err(E::custom(format!(
            "key {} appears twice in one object; each key may appear once",
            quote(&key)
        )));
    }
    keys.insert(key);
    Ok(())
}

/// 0 means unknown, which both formats express by leaving the field out.
fn known(value: u32) -> Option<u32> {
    (value > 0).then_some(value)
}

fn clamp_u32(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod serialize_tests;
#[cfg(test)]
mod tests;
