//! The hang format (moq-dev's `catalog.json`): see the parent module doc for the mapping.

use std::str::FromStr;

use hang::catalog::{AudioCodec, AudioConfig, BinaryConfig, JsonConfig, Mode, TextConfig, TextFormat};
use hang::catalog::{VideoCodec, VideoConfig, MAX_RENDITIONS};

use super::{check_count, clamp_u32, describe, invalid, json_error, known, quote, validate, FieldNames, TrackEntry};
use crate::error::{Error, Result};

const HANG_FIELDS: FieldNames = FieldNames {
    name: "name (its key)",
    codec: "codec",
    mime: "mime",
    language: "lang",
};
/// hang requires a channel count and entries have none; see the parent module doc.
const HANG_AUDIO_CHANNELS: u32 = 2;
/// Longest codec or format token turned into a mime subtype; longer ones become `x-unknown`.
const MAX_MIME_TOKEN: usize = 64;

pub(super) fn parse(text: &str) -> Result<Vec<TrackEntry>> {
    let catalog: hang::catalog::Catalog =
        serde_json::from_str(text).map_err(|err| json_error("catalog (hang format)", &err))?;
    let media = catalog.video.renditions.len() + catalog.audio.renditions.len() + catalog.text.renditions.len();
    check_count(media + catalog.json.tracks.len() + catalog.binary.tracks.len())?;
    check_media_count(media)?;

    let mut entries = Vec::new();
    let mut origins: Vec<&'static str> = Vec::new();
    for (name, video) in catalog.video.renditions.iter().filter(|(_, v)| v.broadcast.is_none()) {
        let codec = media_codec(video.codec.to_string(), "video rendition", name)?;
        entries.push(TrackEntry {
            name: name.clone(),
            mime_type: Some(format!("video/{}", codec_family(&codec))),
            codec: Some(codec),
            width: video.coded_width.unwrap_or(0),
            height: video.coded_height.unwrap_or(0),
            bitrate: video.bitrate.map_or(0, clamp_u32),
            ..TrackEntry::default()
        });
        origins.push("video rendition");
    }
    for (name, audio) in catalog.audio.renditions.iter().filter(|(_, a)| a.broadcast.is_none()) {
        let codec = media_codec(audio.codec.to_string(), "audio rendition", name)?;
        entries.push(TrackEntry {
            name: name.clone(),
            mime_type: Some(format!("audio/{}", codec_family(&codec))),
            codec: Some(codec),
            sample_rate: audio.sample_rate,
            bitrate: audio.bitrate.map_or(0, clamp_u32),
            ..TrackEntry::default()
        });
        origins.push("audio rendition");
    }
    for (name, text) in catalog.text.renditions.iter().filter(|(_, t)| t.broadcast.is_none()) {
        entries.push(TrackEntry {
            name: name.clone(),
            mime_type: Some(text_mime(&text.format)),
            language: text.lang.clone().filter(|lang| !lang.is_empty()),
            ..TrackEntry::default()
        });
        origins.push("text rendition");
    }
    for (name, json) in catalog.json.tracks.iter().filter(|(_, j)| j.broadcast.is_none()) {
        entries.push(TrackEntry {
            name: name.clone(),
            mime_type: Some("application/json".to_string()),
            bitrate: json.bitrate.map_or(0, clamp_u32),
            ..TrackEntry::default()
        });
        origins.push("json track");
    }
    for (name, binary) in catalog.binary.tracks.iter().filter(|(_, b)| b.broadcast.is_none()) {
        entries.push(TrackEntry {
            name: name.clone(),
            mime_type: binary.mime.clone().filter(|mime| !mime.is_empty()),
            bitrate: binary.bitrate.map_or(0, clamp_u32),
            ..TrackEntry::default()
        });
        origins.push("binary track");
    }
    validate(&entries, &HANG_FIELDS, &|i| {
        format!("{} {}", origins[i], quote(&entries[i].name))
    })?;
    Ok(entries)
}

fn check_media_count(count: usize) -> Result<()> {
    if count > MAX_RENDITIONS {
        return Err(invalid(format!(
            "catalog has {count} video, audio and text renditions; the hang format allows at most {MAX_RENDITIONS}"
        )));
    }
    Ok(())
}

fn media_codec(codec: String, what: &str, name: &str) -> Result<String> {
    if codec.is_empty() {
        return Err(invalid(format!("catalog {what} {}: codec is empty", quote(name))));
    }
    Ok(codec)
}

/// The mime subtype naming a codec's family (see the module doc).
fn codec_family(codec: &str) -> String {
    let prefix = codec.split('.').next().unwrap_or_default().to_ascii_lowercase();
    let family = match prefix.as_str() {
        "avc1" | "avc3" => "h264",
        "hvc1" | "hev1" => "h265",
        "vp09" => "vp9",
        "av01" => "av1",
        "mp4a" => "aac",
        "mp3" | "mp2" => "mpeg",
        "ac-3" => "ac3",
        "ec-3" => "eac3",
        _ => return mime_token(&prefix),
    };
    family.to_string()
}

/// `token` when it is a plausible mime subtype, else `x-unknown`.
fn mime_token(token: &str) -> String {
    let plausible = !token.is_empty()
        && token.len() <= MAX_MIME_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'+');
    if plausible {
        token.to_ascii_lowercase()
    } else {
        "x-unknown".to_string()
    }
}

fn text_mime(format: &TextFormat) -> String {
    match format {
        TextFormat::Vtt => "text/vtt".to_string(),
        TextFormat::Ttml => "application/ttml+xml".to_string(),
        TextFormat::Utf8 => "text/plain".to_string(),
        // hang keeps formats it does not recognise verbatim, case included: a known one in
        // another case ("UTF8") gets the known mime, so writing it back names the same format.
        other => match mime_token(&other.to_string()).as_str() {
            "vtt" => "text/vtt".to_string(),
            "ttml" => "application/ttml+xml".to_string(),
            "utf8" => "text/plain".to_string(),
            token => format!("text/{token}"),
        },
    }
}

/// The lowercase type/subtype of a mime, without parameters.
fn mime_essence(mime: &str) -> String {
    mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

enum HangKind {
    Video,
    Audio,
    Text(TextFormat),
    Json,
    Binary,
}

fn classify(track: &TrackEntry) -> HangKind {
    let essence = track.mime_type.as_deref().map(mime_essence).unwrap_or_default();
    if essence.starts_with("video/") || track.width > 0 || track.height > 0 {
        HangKind::Video
    } else if essence.starts_with("audio/") || track.sample_rate > 0 {
        HangKind::Audio
    } else if essence == "application/json" {
        HangKind::Json
    } else if essence == "text/vtt" {
        HangKind::Text(TextFormat::Vtt)
    } else if essence == "application/ttml+xml" {
        HangKind::Text(TextFormat::Ttml)
    } else if essence == "text/plain" && track.language.is_some() {
        HangKind::Text(TextFormat::Utf8)
    } else if let Some(subtype) = essence.strip_prefix("text/").filter(|_| track.language.is_some()) {
        // FromStr of TextFormat never fails: unknown formats are kept verbatim.
        HangKind::Text(TextFormat::from_str(subtype).unwrap_or_default())
    } else {
        HangKind::Binary
    }
}

pub(super) fn serialize(tracks: &[TrackEntry]) -> Result<String> {
    let mut catalog = hang::catalog::Catalog::<()>::default();
    let mut media = 0;
    for (i, track) in tracks.iter().enumerate() {
        let at = || describe("tracks", i, &track.name);
        let bitrate = known(track.bitrate).map(u64::from);
        let name = track.name.as_str();
        let inserted = match classify(track) {
            HangKind::Video => {
                let codec = VideoCodec::from_str(required_codec(track, "video", &at)?)
                    .map_err(|err| bad_codec(&at(), "video", track, &err))?;
                let mut config = VideoConfig::new(codec);
                config.coded_width = known(track.width);
                config.coded_height = known(track.height);
                config.bitrate = bitrate;
                media += 1;
                catalog.video.insert(name, config)
            }
            HangKind::Audio => {
                let codec = AudioCodec::from_str(required_codec(track, "audio", &at)?)
                    .map_err(|err| bad_codec(&at(), "audio", track, &err))?;
                let mut config = AudioConfig::new(codec, track.sample_rate, HANG_AUDIO_CHANNELS);
                config.bitrate = bitrate;
                media += 1;
                catalog.audio.insert(name, config)
            }
            HangKind::Text(format) => {
                let mut config = TextConfig::new(format);
                config.lang = track.language.clone();
                media += 1;
                catalog.text.insert(name, config)
            }
            HangKind::Json => {
                let mut config = JsonConfig::new(Mode::Snapshot);
                config.bitrate = bitrate;
                catalog.json.insert(name, config)
            }
            HangKind::Binary => {
                let mut config = BinaryConfig::new(Mode::Snapshot);
                config.mime = track.mime_type.clone();
                config.bitrate = bitrate;
                catalog.binary.insert(name, config)
            }
        };
        // validate() already rejected duplicate names, so hang cannot find one.
        inserted.map_err(|err| Error::internal(format!("catalog {}: {err}", at())))?;
    }
    check_media_count(media)?;
    serde_json::to_string(&catalog).map_err(|err| Error::internal(format!("catalog: writing hang JSON failed: {err}")))
}

fn required_codec<'a>(track: &'a TrackEntry, what: &str, at: &dyn Fn() -> String) -> Result<&'a str> {
    track.codec.as_deref().ok_or_else(|| {
        invalid(format!(
            "catalog {}: codec is unset, and the hang format requires one for {what} (e.g. {})",
            at(),
            if what == "video" { "\"avc1.64001f\"" } else { "\"opus\"" }
        ))
    })
}

fn bad_codec(at: &str, what: &str, track: &TrackEntry, err: &hang::Error) -> Error {
    let codec = track.codec.as_deref().unwrap_or_default();
    invalid(format!(
        "catalog {at}: codec {} is not a valid {what} codec string: {err}",
        quote(codec)
    ))
}
