//! The seed format, `{"version":1,"tracks":[..]}`: see the parent module doc.

use serde::Serialize;
use serde_json::{Map, Value};

use super::{check_count, clamp_u32, describe, invalid, json_error, known, validate, FieldNames, TrackEntry};
use crate::error::{Error, Result};

const SEED_FIELDS: FieldNames = FieldNames {
    name: "name",
    codec: "selectionParams.codec",
    mime: "selectionParams.mimeType",
    language: "selectionParams.lang",
};

pub(super) fn parse(text: &str) -> Result<Vec<TrackEntry>> {
    let root: Value = serde_json::from_str(text).map_err(|err| json_error("catalog", &err))?;
    let Value::Object(root) = root else {
        return Err(Error::internal("catalog: the pre-pass accepted a non-object"));
    };
    match root.get("version") {
        Some(version) if version.as_u64() == Some(1) => {}
        None => {
            return Err(invalid(
                "catalog has \"tracks\" but no \"version\"; a seed catalog needs \"version\": 1".to_string(),
            ))
        }
        Some(Value::Number(version)) => {
            return Err(invalid(format!(
                "catalog \"version\" is {version}; only version 1 is supported"
            )))
        }
        Some(other) => {
            return Err(invalid(format!(
                "catalog \"version\" is {}; expected the number 1",
                kind(other)
            )))
        }
    }
    let tracks = match root.get("tracks") {
        Some(Value::Array(tracks)) => tracks,
        None => return Err(invalid("catalog has \"version\" but no \"tracks\" array".to_string())),
        Some(other) => {
            return Err(invalid(format!(
                "catalog \"tracks\" is {}; expected an array",
                kind(other)
            )))
        }
    };
    check_count(tracks.len())?;
    let entries = tracks
        .iter()
        .enumerate()
        .map(|(i, track)| seed_track(i, track))
        .collect::<Result<Vec<_>>>()?;
    validate(&entries, &SEED_FIELDS, &|i| describe("tracks", i, &entries[i].name))?;
    Ok(entries)
}

fn seed_track(index: usize, track: &Value) -> Result<TrackEntry> {
    let Value::Object(track) = track else {
        return Err(invalid(format!(
            "catalog tracks[{index}] is {}; expected an object",
            kind(track)
        )));
    };
    let name = match track.get("name") {
        Some(Value::String(name)) => name.clone(),
        None | Some(Value::Null) => return Err(invalid(format!("catalog tracks[{index}] has no \"name\""))),
        Some(other) => {
            return Err(invalid(format!(
                "catalog tracks[{index}].name is {}; expected a string",
                kind(other)
            )))
        }
    };
    let at = describe("tracks", index, &name);
    let empty = Map::new();
    let params = match track.get("selectionParams") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(params)) => params,
        Some(other) => {
            return Err(invalid(format!(
                "catalog {at}: selectionParams is {}; expected an object",
                kind(other)
            )))
        }
    };
    Ok(TrackEntry {
        codec: seed_string(params, "codec", &at)?,
        mime_type: seed_string(params, "mimeType", &at)?,
        width: seed_u32(params, "width", &at)?,
        height: seed_u32(params, "height", &at)?,
        bitrate: seed_integer(params, "bitrate", &at)?.map_or(0, clamp_u32),
        sample_rate: seed_u32(params, "samplerate", &at)?,
        language: seed_string(params, "lang", &at)?,
        name,
    })
}

fn seed_string(params: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) if value.is_empty() => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(other) => Err(invalid(format!(
            "catalog {at}: selectionParams.{key} is {}; expected a string",
            kind(other)
        ))),
    }
}

fn seed_integer(params: &Map<String, Value>, key: &str, at: &str) -> Result<Option<u64>> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number.as_u64().map(Some).ok_or_else(|| {
            invalid(format!(
                "catalog {at}: selectionParams.{key} is {number}; expected an integer from 0 to {}",
                u64::MAX
            ))
        }),
        Some(other) => Err(invalid(format!(
            "catalog {at}: selectionParams.{key} is {}; expected a non-negative integer",
            kind(other)
        ))),
    }
}

fn seed_u32(params: &Map<String, Value>, key: &str, at: &str) -> Result<u32> {
    let Some(value) = seed_integer(params, key, at)? else {
        return Ok(0);
    };
    u32::try_from(value).map_err(|_| {
        invalid(format!(
            "catalog {at}: selectionParams.{key} is {value}; the maximum is {}",
            u32::MAX
        ))
    })
}

/// How a JSON value's type reads in an error message.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[derive(Serialize)]
struct SeedOut<'a> {
    version: u32,
    tracks: Vec<SeedTrackOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeedTrackOut<'a> {
    name: &'a str,
    selection_params: SeedParamsOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeedParamsOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    codec: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mime_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bitrate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    samplerate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lang: Option<&'a str>,
}

pub(super) fn serialize(tracks: &[TrackEntry]) -> Result<String> {
    let out = SeedOut {
        version: 1,
        tracks: tracks
            .iter()
            .map(|track| SeedTrackOut {
                name: &track.name,
                selection_params: SeedParamsOut {
                    codec: track.codec.as_deref(),
                    mime_type: track.mime_type.as_deref(),
                    width: known(track.width),
                    height: known(track.height),
                    bitrate: known(track.bitrate),
                    samplerate: known(track.sample_rate),
                    lang: track.language.as_deref(),
                },
            })
            .collect(),
    };
    serde_json::to_string(&out).map_err(|err| Error::internal(format!("catalog: writing seed JSON failed: {err}")))
}
