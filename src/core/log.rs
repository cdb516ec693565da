//! Logging into the host: routes `tracing` events of the library and its dependencies (moq-net,
//! moq-tokio, moq-relay, noq, ...) to one application sink, or by default to stderr when the
//! `MOQ_LOG` environment variable is set (an `EnvFilter` such as `debug` or `moq_net=trace`).
//!
//! One global subscriber (a `tracing-subscriber` [`Registry`] with [`HostLayer`]) is installed
//! lazily, the first time a sink is set (or [`init_default`] finds `MOQ_LOG`). Filtering is
//! cheap: the layer answers `register_callsite` from an atomic maximum level and reports it as
//! its `max_level_hint`, so disabled levels are rejected by `tracing`'s static and global level
//! checks; every change rebuilds the callsite interest cache.
//!
//! The sink contract is every other callback's: the sink never runs on the thread that emitted
//! the event (it may hold a library or dependency lock). The event is formatted into owned
//! strings (message and fields, secrets scrubbed, length capped) and posted to the callback
//! dispatcher under the sink's [`Gate`]. At most [`MAX_IN_FLIGHT`] events wait at a time; more
//! are dropped and counted, and the count is reported to the sink once the queue has room.
//! Events emitted on the dispatcher thread while the sink itself runs are not forwarded (a sink
//! that calls a logging API function would otherwise feed itself forever).

use crate::dispatch::{self, Gate};
use crate::error::{Error, ErrorKind, Result};
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{span, Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Registry};

/// Most events queued for the sink at once; later ones are dropped and counted.
pub(crate) const MAX_IN_FLIGHT: usize = 4096;
/// Longest message forwarded, in bytes; longer ones are cut and end with "…".
pub(crate) const MAX_MESSAGE_LEN: usize = 16 * 1024;
/// How much of an event is formatted before scrubbing (then cut to [`MAX_MESSAGE_LEN`]).
const FORMAT_LIMIT: usize = 64 * 1024;
/// The environment variable that enables the default stderr output.
pub(crate) const ENV_VAR: &str = "MOQ_LOG";

/// The host's log sink: `(level, target, message)`, called on the callback dispatcher thread.
/// The strings are only borrowed for the call.
pub type LogFn = Arc<dyn Fn(Level, &str, &str) + Send + Sync>;

/// A sink to install: `key` identifies it (the C edge uses the callback and `user_data`), so
/// setting the same sink again only changes the level and keeps its queued events.
pub struct LogSink {
    /// Identity of the sink.
    pub key: (usize, usize),
    /// The function called with each event.
    pub callback: LogFn,
}

/// Counters of the current sink, for diagnostics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Events posted to the sink and not yet delivered or discarded.
    pub in_flight: usize,
    /// Events dropped because the queue was full, since the process started.
    pub dropped_total: u64,
}

struct Sink {
    key: (usize, usize),
    callback: LogFn,
    gate: Arc<Gate>,
    in_flight: AtomicUsize,
    /// Drops not reported to the sink yet.
    unreported: AtomicU64,
}

/// Whether a sink is installed (otherwise the `MOQ_LOG` default applies).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// The sink's maximum level: 0 = off, 1 = error ... 5 = trace.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
/// The installed sink, read on every forwarded event.
static SINK: RwLock<Option<Arc<Sink>>> = RwLock::new(None);
/// Serialises changes of the sink (never held while closing a gate or running a sink).
static CHANGE: Mutex<()> = Mutex::new(());
/// The outcome of installing the global subscriber, once.
static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
/// Every event dropped because the queue was full.
static DROPPED_TOTAL: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set while this thread (the dispatcher) runs the log sink.
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// The numeric value of `level` (1 = error ... 5 = trace).
pub fn level_number(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// The filter for a numeric maximum level (0 = off, 5 = trace); `None` when out of range.
pub fn level_filter(max: u32) -> Option<LevelFilter> {
    Some(match max {
        0 => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        5 => LevelFilter::TRACE,
        _ => return None,
    })
}

fn filter_number(filter: LevelFilter) -> u8 {
    filter.into_level().map_or(0, level_number)
}

fn sink_allows(level: Level) -> bool {
    level_number(level) <= MAX_LEVEL.load(Ordering::Acquire)
}

/// Installs or replaces the host sink with maximum level `max`, or with `None` restores the
/// default (silent unless `MOQ_LOG` is set).
///
/// Takes effect for events emitted after it returns. When the sink is replaced or cleared, the
/// old one is never called again once this returns (called from inside the sink itself it
/// returns at once and the sink is not called again afterwards). Setting the same sink (same
/// `key`) again only changes the level. Fails when another global `tracing` subscriber is
/// already installed in the process.
pub fn set_sink(max: LevelFilter, sink: Option<LogSink>) -> Result<()> {
    if sink.is_some() {
        install()?;
    } else if std::env::var_os(ENV_VAR).is_some() {
        // The stderr default; a foreign subscriber already has the events, nothing to undo.
        let _ = install();
    }
    let replaced = {
        let _change = CHANGE.lock().unwrap_or_else(PoisonError::into_inner);
        let mut current = SINK.write().unwrap_or_else(PoisonError::into_inner);
        let replaced = match sink {
            Some(new) if current.as_ref().is_some_and(|old| old.key == new.key) => None,
            Some(new) => current.replace(Arc::new(Sink {
                key: new.key,
                callback: new.callback,
                gate: Gate::new(),
                in_flight: AtomicUsize::new(0),
                unreported: AtomicU64::new(0),
            })),
            None => current.take(),
        };
        let active = current.is_some();
        drop(current);
        MAX_LEVEL.store(if active { filter_number(max) } else { 0 }, Ordering::Release);
        ACTIVE.store(active, Ordering::Release);
        // Callsites cached as enabled or disabled are asked again; `tracing` also recomputes
        // its global maximum level from `HostLayer::max_level_hint`.
        tracing::callsite::rebuild_interest_cache();
        replaced
    };
    if let Some(old) = replaced {
        // Outside every lock: this may wait for the old sink to return.
        dispatch::close(&old.gate);
    }
    Ok(())
}

/// Clears the sink (as `set_sink(OFF, None)`): for a library shutdown, so no sink or
/// `user_data` outlives it. The global subscriber itself stays installed (it cannot be removed).
pub fn clear() {
    let _ = set_sink(LevelFilter::OFF, None);
}

/// Installs the global subscriber if `MOQ_LOG` is set, so the stderr default works before any
/// sink is set. Errors (another subscriber is installed) are ignored: the host has its own.
pub fn init_default() {
    if std::env::var_os(ENV_VAR).is_some() {
        let _ = install();
    }
}

/// Counters of the current sink (zero in flight when none is installed).
pub fn stats() -> LogStats {
    let in_flight = SINK
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map_or(0, |sink| sink.in_flight.load(Ordering::Acquire));
    LogStats {
        in_flight,
        dropped_total: DROPPED_TOTAL.load(Ordering::Relaxed),
    }
}

fn install() -> Result<()> {
    let outcome = INSTALLED.get_or_init(|| {
        let env = std::env::var(ENV_VAR).ok().map(|spec| {
            EnvFilter::builder()
                .with_default_directive(LevelFilter::OFF.into())
                .parse_lossy(spec)
        });
        let subscriber = Registry::default().with(HostLayer { env });
        tracing::subscriber::set_global_default(subscriber).map_err(|_| {
            "another global tracing subscriber is already installed in this process (by the application or \
             another library), so moq-ffi cannot route its logs; install the moq-ffi log callback before any \
             other tracing subscriber, or consume the events through that subscriber instead"
                .to_string()
        })
    });
    outcome
        .clone()
        .map_err(|message| Error::new(ErrorKind::InvalidState, message))
}

/// The layer of the global subscriber: forwards to the sink when one is set, otherwise to
/// stderr through the `MOQ_LOG` filter (if the variable was set at installation).
pub struct HostLayer {
    env: Option<EnvFilter>,
}

impl<S: Subscriber> Layer<S> for HostLayer {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        // The env filter always sees the callsite, so it is ready when the default returns.
        let env = self
            .env
            .as_ref()
            .map(|env| <EnvFilter as Layer<S>>::register_callsite(env, metadata));
        if ACTIVE.load(Ordering::Acquire) {
            // The sink gets events only (no span context), so spans are not even created.
            if !metadata.is_span() && sink_allows(*metadata.level()) {
                Interest::always()
            } else {
                Interest::never()
            }
        } else {
            env.unwrap_or_else(Interest::never)
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        if ACTIVE.load(Ordering::Acquire) {
            return level_filter(u32::from(MAX_LEVEL.load(Ordering::Acquire)));
        }
        match &self.env {
            Some(env) => <EnvFilter as Layer<S>>::max_level_hint(env),
            None => Some(LevelFilter::OFF),
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        if ACTIVE.load(Ordering::Acquire) {
            return !metadata.is_span() && sink_allows(*metadata.level());
        }
        self.env
            .as_ref()
            .is_some_and(|env| <EnvFilter as Layer<S>>::enabled(env, metadata, ctx))
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if let Some(env) = &self.env {
            env.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(env) = &self.env {
            env.on_record(id, values, ctx);
        }
    }

    fn on_enter(&self, id: &span::Id, ctx: Context<'_, S>) {
        if let Some(env) = &self.env {
            env.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &span::Id, ctx: Context<'_, S>) {
        if let Some(env) = &self.env {
            env.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        if let Some(env) = &self.env {
            env.on_close(id, ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Nothing here may unwind into the code that emitted the event.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            if ACTIVE.load(Ordering::Acquire) {
                forward(event);
            } else if let Some(env) = &self.env {
                if <EnvFilter as Layer<S>>::enabled(env, event.metadata(), ctx) {
                    to_stderr(event);
                }
            }
        }));
    }
}

/// Posts `event` to the sink's dispatcher queue.
fn forward(event: &Event<'_>) {
    let level = *event.metadata().level();
    if !sink_allows(level) || IN_SINK.with(Cell::get) {
        return;
    }
    let Some(sink) = SINK.read().unwrap_or_else(PoisonError::into_inner).clone() else {
        return;
    };
    if !reserve(&sink) {
        return;
    }
    let unreported = sink.unreported.swap(0, Ordering::AcqRel);
    if unreported > 0 {
        let notice =
            format!("{unreported} log events were dropped: the log callback fell {MAX_IN_FLIGHT} events behind");
        post(&sink, Level::WARN, "moq_ffi::log".to_string(), notice);
        if !reserve(&sink) {
            return;
        }
    }
    let message = format_event(event);
    post(&sink, level, event.metadata().target().to_string(), message);
}

/// Takes a place in the sink's queue, or counts a drop.
fn reserve(sink: &Sink) -> bool {
    let taken = sink
        .in_flight
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_IN_FLIGHT).then_some(n + 1)
        })
        .is_ok();
    if !taken {
        sink.unreported.fetch_add(1, Ordering::Relaxed);
        DROPPED_TOTAL.fetch_add(1, Ordering::Relaxed);
    }
    taken
}

/// A place in the sink's queue, released when the job runs or is discarded (closed gate).
struct Reservation(Arc<Sink>);

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Posts one reserved event.
fn post(sink: &Arc<Sink>, level: Level, target: String, message: String) {
    let reservation = Reservation(sink.clone());
    let job = Box::new(move || {
        let reservation = reservation;
        // Events queued before the level was lowered are not delivered any more.
        if !sink_allows(level) {
            return;
        }
        IN_SINK.with(|flag| flag.set(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| (reservation.0.callback)(level, &target, &message)));
        IN_SINK.with(|flag| flag.set(false));
        if let Err(payload) = outcome {
            std::panic::resume_unwind(payload);
        }
    });
    // A failure (no dispatcher thread) drops the job, which releases the reservation.
    let _ = dispatch::post(&sink.gate, job);
}

/// Writes `event` to stderr (the `MOQ_LOG` default).
fn to_stderr(event: &Event<'_>) {
    let message = format_event(event);
    let metadata = event.metadata();
    let line = format!(
        "moq {:>5} {}: {}\n",
        metadata.level().as_str(),
        metadata.target(),
        message
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The event's message and fields as one line: `message key=value ...`, scrubbed and capped.
pub(crate) fn format_event(event: &Event<'_>) -> String {
    let mut visitor = Fields {
        message: Capped::new(FORMAT_LIMIT),
        fields: Capped::new(FORMAT_LIMIT),
    };
    let formatted = catch_unwind(AssertUnwindSafe(|| {
        event.record(&mut visitor);
    }));
    let mut text = visitor.message.text;
    if !visitor.fields.text.is_empty() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&visitor.fields.text);
    }
    if formatted.is_err() {
        text.push_str(" <a field's formatting panicked>");
    }
    let mut text = scrub(&text).into_owned();
    truncate(&mut text, MAX_MESSAGE_LEN);
    text
}

fn truncate(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

struct Fields {
    message: Capped,
    fields: Capped,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.text.is_empty() {
                let _ = self.fields.write_str(" ");
            }
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }
}

/// A string that stops growing at `cap` bytes (formatting stops with an error there).
struct Capped {
    text: String,
    cap: usize,
}

impl Capped {
    fn new(cap: usize) -> Self {
        Self {
            text: String::new(),
            cap,
        }
    }
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.cap.saturating_sub(self.text.len());
        if s.len() <= room {
            self.text.push_str(s);
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.text.push_str(&s[..end]);
        Err(fmt::Error)
    }
}

/// Query or field names whose values are secrets.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "jwt"
        || name.contains("token")
        || name.contains("password")
        || name.contains("secret")
        || matches!(
            name.as_str(),
            "auth" | "authorization" | "passwd" | "pwd" | "api_key" | "apikey" | "sig" | "signature" | "credential"
        )
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')
}

fn ends_value(byte: u8) -> bool {
    byte.is_ascii_whitespace()
        || matches!(
            byte,
            b'&' | b'"' | b'\'' | b'#' | b',' | b';' | b')' | b'>' | b']' | b'}' | b'`'
        )
}

fn ends_authority(byte: u8) -> bool {
    byte.is_ascii_whitespace()
        || matches!(
            byte,
            b'/' | b'?' | b'#' | b'"' | b'\'' | b'>' | b')' | b']' | b',' | b'`'
        )
}

/// Removes secrets from a log line: URL user info (`user:pass@` becomes `***@`), the values of
/// `jwt=`, `token=`, `password=` and similar parameters (`jwt=***`), quoted values of such names
/// (and `username`) in Debug-formatted structs and maps (`password: Some("***")`, as in a
/// `url::Url`'s Debug output), and `Bearer` tokens.
pub fn scrub(text: &str) -> Cow<'_, str> {
    if !text.contains('=') && !text.contains("://") && !text.contains("earer") && !text.contains(": ") {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // `copied` is where the text not yet copied to `out` starts.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        // `scheme://user:pass@host`: hide the user info.
        if bytes[i..].starts_with(b"://") {
            let start = i + 3;
            let mut end = start;
            while end < bytes.len() && !ends_authority(bytes[end]) {
                end += 1;
            }
            if let Some(at) = text[start..end].rfind('@') {
                out.push_str(&text[copied..start]);
                out.push_str("***");
                copied = start + at;
            }
            i = end;
            continue;
        }
        // `name=value` with a secret name: hide the value.
        if bytes[i] == b'=' {
            let mut name_start = i;
            while name_start > 0 && is_name_byte(bytes[name_start - 1]) {
                name_start -= 1;
            }
            if name_start < i && is_secret_name(&text[name_start..i]) {
                let mut end = i + 1;
                // A quoted value (Debug-formatted field) ends at its closing quote.
                let quoted = bytes.get(end) == Some(&b'"');
                if quoted {
                    end += 1;
                    while end < bytes.len() && bytes[end] != b'"' {
                        end += 1;
                    }
                } else {
                    while end < bytes.len() && !ends_value(bytes[end]) {
                        end += 1;
                    }
                }
                if end > i + 1 {
                    out.push_str(&text[copied..=i]);
                    out.push_str(if quoted { "\"***" } else { "***" });
                    copied = end;
                }
                i = end.max(i + 1);
                continue;
            }
        }
        // `password: Some("...")`, `"token": "..."` (Debug-formatted structs and maps): hide the
        // quoted value.
        if bytes[i] == b':' && bytes.get(i + 1) == Some(&b' ') {
            let name_end = if i > 0 && bytes[i - 1] == b'"' { i - 1 } else { i };
            let mut name_start = name_end;
            while name_start > 0 && is_name_byte(bytes[name_start - 1]) {
                name_start -= 1;
            }
            let name = &text[name_start..name_end];
            if !name.is_empty() && (is_secret_name(name) || name.eq_ignore_ascii_case("username")) {
                let mut start = i + 2;
                if bytes[start..].starts_with(b"Some(") {
                    start += 5;
                }
                if bytes.get(start) == Some(&b'"') {
                    let mut end = start + 1;
                    while end < bytes.len() && bytes[end] != b'"' {
                        end += if bytes[end] == b'\\' { 2 } else { 1 };
                    }
                    let end = end.min(bytes.len());
                    if end > start + 1 {
                        out.push_str(&text[copied..=start]);
                        out.push_str("***");
                        copied = end;
                    }
                    i = end.max(i + 1);
                    continue;
                }
            }
        }
        // `Bearer <token>`.
        if (bytes[i] == b'B' || bytes[i] == b'b')
            && bytes[i..].len() > 7
            && bytes[i..i + 7].eq_ignore_ascii_case(b"bearer ")
        {
            let start = i + 7;
            let mut end = start;
            while end < bytes.len() && !ends_value(bytes[end]) {
                end += 1;
            }
            if end > start {
                out.push_str(&text[copied..start]);
                out.push_str("***");
                copied = end;
            }
            i = end.max(i + 1);
            continue;
        }
        i += 1;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_hides_user_info_tokens_and_bearers() {
        let cases = [
            (
                "connecting to https://alice:hunter2@relay.example:443/a?jwt=eyJ.abc.def",
                "https://***@relay.example:443/a?jwt=***",
            ),
            (
                "url=moqt://relay/x?foo=1&token=s3cret&bar=2",
                "moqt://relay/x?foo=1&token=***&bar=2",
            ),
            ("access_token=abc, next", "access_token=***, next"),
            (
                "url=\"https://u@h/p?jwt=zzz\" version=1",
                "url=\"https://***@h/p?jwt=***\" version=1",
            ),
            ("password=\"pa ss\" ok", "password=\"***\" ok"),
            ("Authorization: Bearer abc.def.ghi rest", "Bearer *** rest"),
            (
                "Url { username: \"alice\", password: Some(\"hunter2\"), query: Some(\"jwt=eyJ&v=1\") }",
                "Url { username: \"***\", password: Some(\"***\"), query: Some(\"jwt=***&v=1\") }",
            ),
            (
                "headers: {\"x-token\": \"s3cret\", \"a\": \"b\"}",
                "{\"x-token\": \"***\", \"a\": \"b\"}",
            ),
            ("token: \"esc\\\"s3cret\" next", "token: \"***\" next"),
        ];
        for (input, expected) in cases {
            let shown = scrub(input);
            assert!(
                shown.contains(expected),
                "{input} -> {shown}, expected to contain {expected}"
            );
            for secret in ["hunter2", "eyJ", "s3cret", "abc", "zzz", "pa ss", "alice"] {
                if !input.contains(secret) {
                    continue;
                }
                assert!(!shown.contains(secret), "{input} -> {shown} still contains {secret}");
            }
        }
    }

    #[test]
    fn scrub_leaves_ordinary_text_alone() {
        for text in [
            "connected url=https://relay.example:443/ version=moq-lite-05",
            "sequence=5 next=6",
            "a=b==c",
            "=start",
            "trailing token=",
            "email bob@example.com",
            "unicode ünïcødé key",
            "Url { username: \"\", password: None, query: None }",
            "token: expired",
        ] {
            assert_eq!(scrub(text), text);
        }
    }

    #[test]
    fn scrub_handles_edges_without_panicking() {
        for text in [
            "://",
            "://@",
            "x://a@",
            "jwt=",
            "Bearer ",
            "bearer",
            "é=é",
            "token=é&",
            "=://a:b@c",
        ] {
            let _ = scrub(text);
        }
        assert_eq!(scrub("x://a:b@"), "x://***@");
        assert_eq!(scrub("token=é&x"), "token=***&x");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        let mut text = "ééé".to_string();
        truncate(&mut text, 3);
        assert_eq!(text, "é…");
    }

    #[test]
    fn capped_writer_stops_at_its_cap() {
        let mut capped = Capped::new(4);
        assert!(capped.write_str("ab").is_ok());
        assert!(capped.write_str("cdé").is_err());
        assert_eq!(capped.text, "abcd");
    }

    #[test]
    fn level_numbers_match_the_c_values() {
        assert_eq!(level_filter(0), Some(LevelFilter::OFF));
        assert_eq!(level_filter(5), Some(LevelFilter::TRACE));
        assert_eq!(level_filter(6), None);
        assert_eq!(filter_number(LevelFilter::WARN), 2);
        assert_eq!(level_number(Level::DEBUG), 4);
    }
}
