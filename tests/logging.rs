//! `moq_set_log_callback`: level filtering, runtime changes, clearing, re-entrancy, bounded
//! queue, scrubbing, the `MOQ_LOG` default and a foreign global subscriber.
//!
//! The log sink is process-wide, so the tests here run one at a time (`serial`).

mod common;

use common::*;
use moq_ffi::ffi::*;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);
const TARGET: &str = "logging_test";

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the tests of this file and starts each from the default (no callback).
fn serial() -> MutexGuard<'static, ()> {
    let guard = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    assert_ok(unsafe { moq_set_log_callback(MOQ_LOG_OFF, None, std::ptr::null_mut()) });
    guard
}

#[derive(Clone, Debug)]
struct Entry {
    level: MoqLogLevel,
    target: String,
    message: String,
}

/// Records what the log callback receives.
#[derive(Default)]
struct Recorder {
    entries: Mutex<Vec<Entry>>,
    arrived: Condvar,
    /// Set once the callback was cleared: any later call is a contract violation.
    cleared: AtomicBool,
    late_calls: AtomicUsize,
    /// Each call sleeps this long (a slow host).
    delay: Mutex<Duration>,
    /// While true, calls wait (up to 10 s) before returning.
    blocked: Mutex<bool>,
    unblocked: Condvar,
}

impl Recorder {
    fn new() -> Arc<Self> {
        kept(Arc::new(Self::default()))
    }

    fn ptr(self: &Arc<Self>) -> *mut c_void {
        Arc::as_ptr(self) as *mut c_void
    }

    fn snapshot(&self) -> Vec<Entry> {
        self.entries.lock().unwrap().clone()
    }

    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    /// Waits until an entry matching `pred` arrived; returns it.
    fn wait_for(&self, timeout: Duration, pred: impl Fn(&Entry) -> bool) -> Option<Entry> {
        let deadline = Instant::now() + timeout;
        let mut entries = self.entries.lock().unwrap();
        loop {
            if let Some(entry) = entries.iter().find(|e| pred(e)) {
                return Some(entry.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            entries = self.arrived.wait_timeout(entries, left).unwrap().0;
        }
    }

    /// Waits for an event of this test with exactly `message`.
    fn wait_message(&self, message: &str) -> Option<Entry> {
        self.wait_for(WAIT, |e| e.target == TARGET && e.message == message)
    }

    fn has_message(&self, message: &str) -> bool {
        self.snapshot().iter().any(|e| e.message.contains(message))
    }

    fn set_blocked(&self, blocked: bool) {
        *self.blocked.lock().unwrap() = blocked;
        self.unblocked.notify_all();
    }
}

unsafe extern "C" fn record(user_data: *mut c_void, level: MoqLogLevel, target: *const c_char, message: *const c_char) {
    let recorder = unsafe { &*(user_data as *const Recorder) };
    if recorder.cleared.load(Ordering::SeqCst) {
        recorder.late_calls.fetch_add(1, Ordering::SeqCst);
    }
    let entry = Entry {
        level,
        target: unsafe { CStr::from_ptr(target) }.to_string_lossy().into_owned(),
        message: unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned(),
    };
    recorder.entries.lock().unwrap().push(entry);
    recorder.arrived.notify_all();
    let delay = *recorder.delay.lock().unwrap();
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let deadline = Instant::now() + WAIT;
    let mut blocked = recorder.blocked.lock().unwrap();
    while *blocked && Instant::now() < deadline {
        blocked = recorder
            .unblocked
            .wait_timeout(blocked, Duration::from_millis(50))
            .unwrap()
            .0;
    }
}

fn set(level: MoqLogLevel, recorder: &Arc<Recorder>) {
    assert_ok(unsafe { moq_set_log_callback(level, Some(record), recorder.ptr()) });
}

fn clear() {
    assert_ok(unsafe { moq_set_log_callback(MOQ_LOG_OFF, None, std::ptr::null_mut()) });
}

#[test]
fn events_above_the_chosen_level_never_arrive() {
    let _serial = serial();
    let recorder = Recorder::new();
    set(MOQ_LOG_WARN, &recorder);
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    tracing::warn!(target: TARGET, "marker-warn");
    assert!(
        recorder.wait_message("marker-warn").is_some(),
        "the WARN marker did not arrive"
    );
    let above: Vec<Entry> = recorder
        .snapshot()
        .into_iter()
        .filter(|e| e.level > MOQ_LOG_WARN)
        .collect();
    assert!(above.is_empty(), "events above WARN arrived: {above:?}");
    assert!(recorder.snapshot().iter().all(|e| e.level >= MOQ_LOG_ERROR));

    // Raised at runtime: the next connect's INFO and the stack's DEBUG events arrive.
    set(MOQ_LOG_DEBUG, &recorder);
    let second = connected_client(&relay);
    let connected = recorder.wait_for(WAIT, |e| {
        e.level == MOQ_LOG_INFO && e.target.starts_with("moq_ffi") && e.message.starts_with("connected")
    });
    assert!(
        connected.is_some(),
        "no INFO 'connected' event: {:?}",
        recorder.snapshot()
    );
    tracing::warn!(target: TARGET, "marker-debug");
    assert!(recorder.wait_message("marker-debug").is_some());
    let entries = recorder.snapshot();
    assert!(
        entries.iter().any(|e| e.level == MOQ_LOG_DEBUG),
        "no DEBUG event while connecting at DEBUG: {entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| !e.target.starts_with("moq_ffi") && e.target != TARGET),
        "no event of a dependency arrived: {:?}",
        entries.iter().map(|e| &e.target).collect::<Vec<_>>()
    );
    assert!(
        entries.iter().all(|e| e.level <= MOQ_LOG_DEBUG),
        "TRACE events arrived at DEBUG"
    );
    moq_client_destroy(second);
    moq_client_destroy(client);
    drop(relay);
    clear();
}

#[test]
fn level_changes_take_effect_for_the_next_events() {
    let _serial = serial();
    let recorder = Recorder::new();
    set(MOQ_LOG_INFO, &recorder);
    tracing::info!(target: TARGET, "a-info");
    assert!(recorder.wait_message("a-info").is_some());
    tracing::debug!(target: TARGET, "a-debug");

    set(MOQ_LOG_WARN, &recorder);
    tracing::info!(target: TARGET, "b-info");
    tracing::warn!(target: TARGET, "b-warn");
    let warned = recorder.wait_message("b-warn").expect("b-warn did not arrive");
    assert_eq!(warned.level, MOQ_LOG_WARN);
    assert!(!recorder.has_message("b-info"), "INFO arrived at WARN");
    assert!(!recorder.has_message("a-debug"), "DEBUG arrived at INFO");

    // Events inside spans arrive too (the sink gets events, not span context).
    {
        let span = tracing::warn_span!(target: TARGET, "request", id = 7);
        let _entered = span.enter();
        tracing::warn!(target: TARGET, "b-in-span");
    }
    assert!(recorder.wait_message("b-in-span").is_some());

    set(MOQ_LOG_TRACE, &recorder);
    tracing::trace!(target: TARGET, "c-trace");
    assert_eq!(recorder.wait_message("c-trace").expect("c-trace").level, MOQ_LOG_TRACE);

    set(MOQ_LOG_OFF, &recorder);
    tracing::error!(target: TARGET, "d-error");
    set(MOQ_LOG_ERROR, &recorder);
    tracing::error!(target: TARGET, "e-error");
    assert_eq!(recorder.wait_message("e-error").expect("e-error").level, MOQ_LOG_ERROR);
    assert!(!recorder.has_message("d-error"), "an event arrived at OFF");
    clear();
}

#[test]
fn a_null_callback_stops_delivery_before_it_returns() {
    let _serial = serial();
    let recorder = Recorder::new();
    *recorder.delay.lock().unwrap() = Duration::from_millis(2);
    set(MOQ_LOG_INFO, &recorder);
    let stop = Arc::new(AtomicBool::new(false));
    let emitter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                tracing::info!(target: TARGET, n, "flood");
                n += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    assert!(wait_until(WAIT, || recorder.len() >= 20), "no events arrived");
    clear();
    recorder.cleared.store(true, Ordering::SeqCst);
    let count = recorder.len();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    emitter.join().unwrap();
    assert_eq!(
        recorder.late_calls.load(Ordering::SeqCst),
        0,
        "the callback ran after it was cleared"
    );
    assert_eq!(recorder.len(), count);

    // Replacing one callback by another stops the first the same way.
    let first = Recorder::new();
    let second = Recorder::new();
    set(MOQ_LOG_INFO, &first);
    tracing::info!(target: TARGET, "to-first");
    assert!(first.wait_message("to-first").is_some());
    set(MOQ_LOG_INFO, &second);
    first.cleared.store(true, Ordering::SeqCst);
    tracing::info!(target: TARGET, "to-second");
    assert!(second.wait_message("to-second").is_some());
    assert!(!first.has_message("to-second"));
    assert_eq!(first.late_calls.load(Ordering::SeqCst), 0);
    clear();
}

#[test]
fn an_invalid_level_is_rejected() {
    let _serial = serial();
    let recorder = Recorder::new();
    for level in [6, 7, 255, u32::MAX] {
        let (code, message) = take(unsafe { moq_set_log_callback(level, Some(record), recorder.ptr()) });
        assert_eq!(code, MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT);
        assert!(message.contains("max_level"), "{message}");
        assert!(last_error().contains("max_level"));
        let (code, _) = take(unsafe { moq_set_log_callback(level, None, std::ptr::null_mut()) });
        assert_eq!(code, MoqResultCode::MOQ_ERROR_INVALID_ARGUMENT);
    }
    // Nothing was installed by the failed calls.
    tracing::error!(target: TARGET, "not-routed");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(recorder.len(), 0);
}

/// State for a callback that calls back into the API.
struct Reentrant {
    recorder: Arc<Recorder>,
    client: usize,
    version: Mutex<Option<String>>,
    connected: Mutex<Option<bool>>,
    set_codes: Mutex<Vec<MoqResultCode>>,
    calls_after_clear: AtomicUsize,
    cleared_inside: AtomicBool,
}

unsafe extern "C" fn reentrant(
    user_data: *mut c_void,
    level: MoqLogLevel,
    target: *const c_char,
    message: *const c_char,
) {
    let state = unsafe { &*(user_data as *const Reentrant) };
    if state.cleared_inside.load(Ordering::SeqCst) {
        state.calls_after_clear.fetch_add(1, Ordering::SeqCst);
    }
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    if text == "reenter" {
        *state.version.lock().unwrap() = Some(text_of(moq_version()));
        *state.connected.lock().unwrap() = Some(moq_is_connected(state.client as *const MoqClient));
        // Change the level of this very callback from inside it.
        let code = take(unsafe { moq_set_log_callback(MOQ_LOG_DEBUG, Some(reentrant), user_data) }).0;
        state.set_codes.lock().unwrap().push(code);
    }
    if text == "clear-inside" {
        let code = take(unsafe { moq_set_log_callback(MOQ_LOG_OFF, None, std::ptr::null_mut()) }).0;
        state.set_codes.lock().unwrap().push(code);
        state.cleared_inside.store(true, Ordering::SeqCst);
    }
    unsafe { record(Arc::as_ptr(&state.recorder) as *mut c_void, level, target, message) };
}

fn text_of(ptr: *const c_char) -> String {
    unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

#[test]
fn a_callback_may_call_the_api_without_deadlock() {
    let _serial = serial();
    let relay = TestRelay::start();
    let client = connected_client(&relay);
    let state = kept(Arc::new(Reentrant {
        recorder: Recorder::new(),
        client: client as usize,
        version: Mutex::new(None),
        connected: Mutex::new(None),
        set_codes: Mutex::new(Vec::new()),
        calls_after_clear: AtomicUsize::new(0),
        cleared_inside: AtomicBool::new(false),
    }));
    let user_data = Arc::as_ptr(&state) as *mut c_void;
    assert_ok(unsafe { moq_set_log_callback(MOQ_LOG_INFO, Some(reentrant), user_data) });
    tracing::info!(target: TARGET, "reenter");
    assert!(
        state.recorder.wait_message("reenter").is_some(),
        "the re-entrant callback did not return"
    );
    assert!(state.version.lock().unwrap().as_deref().unwrap().starts_with("moq-ffi"));
    assert_eq!(*state.connected.lock().unwrap(), Some(true));
    assert_eq!(*state.set_codes.lock().unwrap(), vec![MoqResultCode::MOQ_OK]);

    // The level set from inside the callback applies: DEBUG now arrives.
    tracing::debug!(target: TARGET, "debug-after-reentry");
    assert!(state.recorder.wait_message("debug-after-reentry").is_some());

    // API calls from other threads keep working while callbacks run (no lock held).
    let handle = client as usize;
    let disconnect = std::thread::spawn(move || take(moq_disconnect(handle as *mut MoqClient)).0);
    let started = Instant::now();
    assert_eq!(disconnect.join().unwrap(), MoqResultCode::MOQ_OK);
    assert!(started.elapsed() < WAIT);

    // Clearing from inside the callback returns at once and no call follows.
    tracing::info!(target: TARGET, "clear-inside");
    assert!(state.recorder.wait_message("clear-inside").is_some());
    tracing::error!(target: TARGET, "after-clear");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(state.calls_after_clear.load(Ordering::SeqCst), 0);
    assert!(!state.recorder.has_message("after-clear"));
    assert_eq!(state.set_codes.lock().unwrap().len(), 2);
    assert!(state
        .set_codes
        .lock()
        .unwrap()
        .iter()
        .all(|c| *c == MoqResultCode::MOQ_OK));
    moq_client_destroy(client);
}

#[test]
fn a_flood_is_bounded_and_drops_are_reported() {
    let _serial = serial();
    let recorder = Recorder::new();
    recorder.set_blocked(true);
    set(MOQ_LOG_INFO, &recorder);
    let before = moq_ffi::core::log::stats();
    const FLOOD: usize = 20_000;
    for n in 0..FLOOD {
        tracing::info!(target: TARGET, n, "flood");
    }
    let during = moq_ffi::core::log::stats();
    assert!(during.in_flight <= 4096, "{during:?}");
    let dropped = during.dropped_total - before.dropped_total;
    assert!(
        dropped as usize >= FLOOD - 4096 - 1,
        "only {dropped} dropped of {FLOOD}"
    );
    recorder.set_blocked(false);
    assert!(wait_until(WAIT, || moq_ffi::core::log::stats().in_flight == 0));
    tracing::warn!(target: TARGET, "after-flood");
    assert!(recorder.wait_message("after-flood").is_some());
    let entries = recorder.snapshot();
    let notice = entries
        .iter()
        .position(|e| e.target == "moq_ffi::log" && e.message.contains(&format!("{dropped} log events were dropped")));
    assert!(notice.is_some(), "no drop notice: {:?}", entries.last());
    assert!(entries.len() <= 4096 + 2, "{} events delivered", entries.len());
    clear();
}

struct PanicsWhenFormatted;

impl std::fmt::Debug for PanicsWhenFormatted {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("Debug of a log field panicked")
    }
}

#[test]
fn forwarded_messages_are_scrubbed_and_formatting_is_panic_safe() {
    let _serial = serial();
    let recorder = Recorder::new();
    set(MOQ_LOG_INFO, &recorder);
    tracing::info!(
        target: TARGET,
        url = "https://bob:pw123@relay.example/x?jwt=SECRETJWT",
        token = "RAWTOKEN",
        "connecting to moqt://relay.example/?token=TOKEN1&x=1"
    );
    let entry = recorder
        .wait_for(WAIT, |e| e.target == TARGET && e.message.starts_with("connecting to"))
        .expect("the event did not arrive");
    for secret in ["pw123", "bob", "SECRETJWT", "TOKEN1", "RAWTOKEN"] {
        assert!(!entry.message.contains(secret), "{secret} leaked: {}", entry.message);
    }
    assert!(
        entry.message.contains("x=1") && entry.message.contains("relay.example"),
        "{}",
        entry.message
    );

    // A dependency logging a whole `Url` with Debug (as web_transport does) leaks nothing either.
    let url = url::Url::parse("https://bob:pw123@relay.example/x?jwt=SECRETJWT&v=1").unwrap();
    tracing::debug!(target: TARGET, request = ?url, "debug-url");
    tracing::info!(target: TARGET, request = ?url, "info-url");
    let entry = recorder
        .wait_for(WAIT, |e| e.message.starts_with("info-url"))
        .expect("the Url event did not arrive");
    for secret in ["pw123", "bob", "SECRETJWT"] {
        assert!(!entry.message.contains(secret), "{secret} leaked: {}", entry.message);
    }
    assert!(entry.message.contains("v=1"), "{}", entry.message);
    assert!(!recorder.has_message("debug-url"), "DEBUG arrived at INFO");

    // A field whose Debug panics: the emitting thread is unaffected, the event still arrives.
    tracing::warn!(target: TARGET, value = ?PanicsWhenFormatted, "bad-field");
    let entry = recorder
        .wait_for(WAIT, |e| e.message.starts_with("bad-field"))
        .expect("the event with a panicking field did not arrive");
    assert!(entry.message.contains("panicked"), "{}", entry.message);

    // The helper itself.
    use moq_ffi::core::log::scrub;
    assert_eq!(
        scrub("moql://u:p@h:4443/ns?jwt=abc&v=2"),
        "moql://***@h:4443/ns?jwt=***&v=2"
    );
    assert_eq!(scrub("plain text"), "plain text");
    clear();
}

/// Runs this test binary again with `test` only and `env` set; returns (success, stdout+stderr).
fn run_child(test: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env_remove("MOQ_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const CHILD: &str = "MOQ_FFI_LOGGING_CHILD";

#[test]
fn another_global_subscriber_is_reported() {
    if std::env::var(CHILD).as_deref() == Ok("foreign") {
        tracing::subscriber::set_global_default(tracing_subscriber::registry()).unwrap();
        let recorder = Recorder::new();
        let (code, message) = take(unsafe { moq_set_log_callback(MOQ_LOG_INFO, Some(record), recorder.ptr()) });
        assert_eq!(code, MoqResultCode::MOQ_ERROR_INVALID_STATE, "{message}");
        assert!(message.contains("another global tracing subscriber"), "{message}");
        // Clearing stays harmless.
        assert_ok(unsafe { moq_set_log_callback(MOQ_LOG_OFF, None, std::ptr::null_mut()) });
        println!("CHILD-OK");
        return;
    }
    let (ok, stdout, stderr) = run_child("another_global_subscriber_is_reported", &[(CHILD, "foreign")]);
    assert!(ok && stdout.contains("CHILD-OK"), "child failed:\n{stdout}\n{stderr}");
}

#[test]
fn moq_log_env_var_is_the_default_output() {
    if std::env::var(CHILD).as_deref() == Ok("env") {
        clear();
        tracing::info!(target: TARGET, "env-default-line jwt=abc");
        tracing::debug!(target: TARGET, "env-debug-hidden");
        tracing::info!(target: "elsewhere", "env-other-target-hidden");
        let recorder = Recorder::new();
        set(MOQ_LOG_INFO, &recorder);
        tracing::info!(target: TARGET, "while-callback");
        assert!(recorder.wait_message("while-callback").is_some());
        clear();
        tracing::info!(target: TARGET, "after-clear-line");
        println!("CHILD-OK");
        return;
    }
    let (ok, stdout, stderr) = run_child(
        "moq_log_env_var_is_the_default_output",
        &[(CHILD, "env"), ("MOQ_LOG", &format!("{TARGET}=info"))],
    );
    assert!(ok && stdout.contains("CHILD-OK"), "child failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("logging_test: env-default-line jwt=***"), "{stderr}");
    assert!(stderr.contains("after-clear-line"), "{stderr}");
    for hidden in ["env-debug-hidden", "env-other-target-hidden", "while-callback", "abc"] {
        assert!(!stderr.contains(hidden), "{hidden} on stderr:\n{stderr}");
    }

    // Without MOQ_LOG the default is silent.
    let (ok, stdout, stderr) = run_child("moq_log_env_var_is_the_default_output", &[(CHILD, "env")]);
    assert!(ok && stdout.contains("CHILD-OK"), "child failed:\n{stdout}\n{stderr}");
    assert!(!stderr.contains("env-default-line"), "{stderr}");
}
