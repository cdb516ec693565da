//! Helpers shared by the integration tests: they call the exported C functions as C would.
#![allow(dead_code)]

use moq_ffi::ffi::*;
use std::ffi::{c_void, CStr, CString};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Text of a C string the library owns.
pub fn text(ptr: *const std::ffi::c_char) -> String {
    assert!(!ptr.is_null(), "expected a string, got NULL");
    unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

pub fn last_error() -> String {
    let ptr = moq_last_error();
    if ptr.is_null() {
        String::new()
    } else {
        text(ptr)
    }
}

/// Consumes a MoqResult: returns its code and message, freeing the message.
pub fn take(result: MoqResult) -> (MoqResultCode, String) {
    let message = if result.message.is_null() {
        String::new()
    } else {
        text(result.message)
    };
    moq_free_str(result.message);
    (result.code, message)
}

#[track_caller]
pub fn assert_ok(result: MoqResult) {
    let (code, message) = take(result);
    assert_eq!(code, MoqResultCode::MOQ_OK, "expected MOQ_OK, got {code:?}: {message}");
}

pub struct TestRelay {
    pub relay: *mut MoqRelay,
    pub url: String,
    pub fingerprint: String,
}

impl TestRelay {
    pub fn start() -> Self {
        let relay = unsafe { moq_relay_start(cstr("127.0.0.1:0").as_ptr()) };
        assert!(!relay.is_null(), "relay failed: {}", last_error());
        Self {
            relay,
            url: text(moq_relay_url(relay)),
            fingerprint: text(moq_relay_fingerprint(relay)),
        }
    }

    pub fn stop(&mut self) {
        moq_relay_stop(self.relay);
        self.relay = std::ptr::null_mut();
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if !self.relay.is_null() {
            moq_relay_stop(self.relay);
        }
    }
}

/// `MOQ_TEST_TIME_SCALE` (default 1): how much slower than normal this run is (valgrind, ASan,
/// coverage instrumentation), to stretch connect timeouts by.
pub fn time_scale() -> u32 {
    std::env::var("MOQ_TEST_TIME_SCALE")
        .ok()
        .and_then(|value| value.parse::<u32>().ok())
        .unwrap_or(1)
        .clamp(1, 60)
}

pub fn config_pinned(fingerprint: &CString, timeout_ms: u32) -> MoqClientConfig {
    MoqClientConfig {
        struct_size: std::mem::size_of::<MoqClientConfig>() as u32,
        connect_timeout_ms: timeout_ms,
        tls_root_ca_pem: std::ptr::null(),
        tls_fingerprint_sha256: fingerprint.as_ptr(),
        tls_insecure_skip_verify: false,
        ..config_zeroed()
    }
}

/// A client connected to `relay` with the fingerprint pinned.
pub fn connected_client(relay: &TestRelay) -> *mut MoqClient {
    connected_client_with(relay, None, std::ptr::null_mut())
}

pub fn connected_client_with(
    relay: &TestRelay,
    callback: MoqConnectionCallback,
    user_data: *mut c_void,
) -> *mut MoqClient {
    connected_client_configured(relay, |config| config, callback, user_data)
}

/// A client connected to `relay` with the fingerprint pinned, its config changed by `adjust`.
pub fn connected_client_configured(
    relay: &TestRelay,
    adjust: impl FnOnce(MoqClientConfig) -> MoqClientConfig,
    callback: MoqConnectionCallback,
    user_data: *mut c_void,
) -> *mut MoqClient {
    let fingerprint = cstr(&relay.fingerprint);
    let config = adjust(config_pinned(&fingerprint, 5000 * time_scale()));
    let client = unsafe { moq_client_create_ex(&config) };
    assert!(!client.is_null(), "client: {}", last_error());
    assert_ok(unsafe { moq_connect(client, cstr(&relay.url).as_ptr(), callback, user_data) });
    client
}

/// Collects what a data callback receives.
#[derive(Default)]
pub struct Inbox {
    pub objects: Mutex<Vec<Vec<u8>>>,
    pub arrived: Condvar,
}

impl Inbox {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Waits until at least `count` objects arrived or `timeout` passed; returns the count.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut objects = self.objects.lock().unwrap();
        while objects.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            objects = self.arrived.wait_timeout(objects, left).unwrap().0;
        }
        objects.len()
    }

    pub fn len(&self) -> usize {
        self.objects.lock().unwrap().len()
    }
}

pub unsafe extern "C" fn inbox_callback(user_data: *mut c_void, data: *const u8, len: usize) {
    let inbox = unsafe { &*(user_data as *const Inbox) };
    let bytes = if len == 0 {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(data, len) }.to_vec()
    };
    inbox.objects.lock().unwrap().push(bytes);
    inbox.arrived.notify_all();
}

pub fn subscribe(client: *mut MoqClient, ns: &str, track: &str, inbox: &Arc<Inbox>) -> *mut MoqSubscriber {
    let sub = unsafe {
        moq_subscribe(
            client,
            cstr(ns).as_ptr(),
            cstr(track).as_ptr(),
            Some(inbox_callback),
            Arc::as_ptr(inbox) as *mut c_void,
        )
    };
    assert!(!sub.is_null(), "subscribe: {}", last_error());
    sub
}

/// Default subscription options starting at `start` (`start_group` for ABSOLUTE_GROUP and
/// GROUPS_BACK).
pub fn start_options(start: MoqStartPosition, start_group: u64) -> MoqSubscribeOptions {
    MoqSubscribeOptions {
        start,
        start_group,
        ..moq_subscribe_options_default()
    }
}

/// `moq_subscribe_ex` with callbacks; asserts it returned a subscriber.
///
/// # Safety
/// `user_data` stays valid for the callbacks until the subscriber is destroyed.
pub unsafe fn subscribe_with(
    client: *mut MoqClient,
    ns: &str,
    track: &str,
    options: &MoqSubscribeOptions,
    on_object: MoqObjectCallback,
    on_status: MoqStatusCallback,
    user_data: *mut c_void,
) -> *mut MoqSubscriber {
    // SAFETY: valid strings and options; `user_data` per this function's contract.
    let sub = unsafe {
        moq_subscribe_ex(
            client,
            cstr(ns).as_ptr(),
            cstr(track).as_ptr(),
            options,
            on_object,
            on_status,
            user_data,
        )
    };
    assert!(!sub.is_null(), "subscribe: {}", last_error());
    sub
}

pub fn publisher(client: *mut MoqClient, ns: &str, track: &str) -> *mut MoqPublisher {
    let publisher = unsafe { moq_create_publisher(client, cstr(ns).as_ptr(), cstr(track).as_ptr()) };
    assert!(!publisher.is_null(), "publisher: {}", last_error());
    publisher
}

pub fn publish(publisher: *mut MoqPublisher, data: &[u8], mode: MoqDeliveryMode) -> (MoqResultCode, String) {
    take(unsafe { moq_publish_data(publisher, data.as_ptr(), data.len(), mode) })
}

/// Records connection states.
#[derive(Default)]
pub struct States {
    pub seen: Mutex<Vec<MoqConnectionState>>,
    pub changed: Condvar,
}

impl States {
    pub fn wait_for(&self, state: MoqConnectionState, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut seen = self.seen.lock().unwrap();
        while !seen.contains(&state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            seen = self.changed.wait_timeout(seen, left).unwrap().0;
        }
        true
    }

    pub fn snapshot(&self) -> Vec<MoqConnectionState> {
        self.seen.lock().unwrap().clone()
    }
}

pub unsafe extern "C" fn states_callback(user_data: *mut c_void, state: MoqConnectionState) {
    let states = unsafe { &*(user_data as *const States) };
    states.seen.lock().unwrap().push(state);
    states.changed.notify_all();
}

/// Keeps `value` alive for the rest of the process: its address is a callback's `user_data`, and
/// a failing assertion must not free it while the library may still call back with it.
pub fn kept<T>(value: Arc<T>) -> Arc<T> {
    std::mem::forget(value.clone());
    value
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A config with no TLS setting and the given timeout (0 = default).
pub fn config_plain(timeout_ms: u32) -> MoqClientConfig {
    MoqClientConfig {
        struct_size: std::mem::size_of::<MoqClientConfig>() as u32,
        connect_timeout_ms: timeout_ms,
        tls_root_ca_pem: std::ptr::null(),
        tls_fingerprint_sha256: std::ptr::null(),
        tls_insecure_skip_verify: false,
        ..config_zeroed()
    }
}

// ── External relay process ──────────────────────────────────────────────────────────────────

/// Where the standalone `moq-relay` binary is: `$MOQ_RELAY_BIN` (another build of moq-relay, e.g.
/// one from `cargo install moq-relay`), else this package's own `moq-relay` binary
/// (`src/bin/moq-relay.rs`: moq-relay 0.17.10's `main` on the library we compile), which cargo
/// builds with the tests.
pub fn moq_relay_bin() -> std::path::PathBuf {
    match std::env::var_os("MOQ_RELAY_BIN") {
        Some(bin) => bin.into(),
        None => env!("CARGO_BIN_EXE_moq-relay").into(),
    }
}

/// A free loopback UDP port (bound, read, released; the relay binds it right after).
pub fn free_udp_port() -> u16 {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on loopback");
    socket.local_addr().unwrap().port()
}

/// A free loopback TCP port.
pub fn free_tcp_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a TCP socket on loopback");
    listener.local_addr().unwrap().port()
}

/// `GET path` over plain HTTP/1.0 on loopback, bounded by `timeout`; returns the body of a 200.
pub fn http_get(port: u16, path: &str, timeout: Duration) -> Result<String, String> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|err| format!("connect: {err}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|err| err.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|err| err.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|err| format!("send: {err}"))?;
    let mut response = Vec::new();
    stream
        .take(1 << 20)
        .read_to_end(&mut response)
        .map_err(|err| format!("read: {err}"))?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("malformed response: {response:?}"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("status \"{status}\""));
    }
    Ok(body.to_string())
}

static RELAY_LOG_COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The real `moq-relay` binary running as a child process on loopback, with anonymous
/// publish/subscribe and an HTTP listener serving `/certificate.sha256`.
///
/// [`ExternalRelay::start`] uses `--listen-tls-generate` (a new self-signed certificate on every
/// start, so a restart changes the fingerprint). [`ExternalRelay::start_with_stable_cert`]
/// serves a certificate made once with the `openssl` CLI, kept across restarts (what a client
/// that pins the fingerprint and reconnects needs). The certificate lives alone in its own
/// directory: moq-relay watches the *directory* of `--listen-tls-cert` and reloads on any write
/// in it, so a log file next to the certificate makes it reload in a loop (~18,000 reloads/s).
///
/// The child is SIGKILLed when this value drops (also while a failing test unwinds) and, on
/// Linux, when the thread that started it exits (`PR_SET_PDEATHSIG`), so no relay outlives its
/// test even if the test binary itself is killed. Ports come from the kernel: parallel-safe.
pub struct ExternalRelay {
    bin: std::path::PathBuf,
    child: Option<std::process::Child>,
    /// UDP port of the QUIC listener (kept across `restart`).
    pub port: u16,
    /// TCP port of the plain-HTTP listener (`/certificate.sha256`).
    pub http_port: u16,
    /// Hex SHA-256 of the certificate the current process serves.
    pub fingerprint: String,
    /// The relay's stdout and stderr (removed on drop unless the test is failing).
    pub log: std::path::PathBuf,
    /// How many times the process was started.
    pub starts: usize,
    /// Directory holding only `cert.pem` and `key.pem` (stable-certificate mode).
    tls_dir: Option<std::path::PathBuf>,
    /// Extra command-line arguments (e.g. cluster flags), kept across `restart`.
    extra: Vec<String>,
}

/// How long a relay start may take before the harness gives up.
pub const RELAY_START_TIMEOUT: Duration = Duration::from_secs(20);

impl ExternalRelay {
    /// Starts the relay on free loopback ports. Panics (failing the test) if the binary is
    /// missing ([`moq_relay_bin`]).
    pub fn start() -> Self {
        Self::start_inner(false)
    }

    /// Like [`ExternalRelay::start`], with one self-signed certificate (ECDSA P-256, for
    /// `localhost` and 127.0.0.1) served by every process this value starts: the fingerprint
    /// survives `restart`. Needs the `openssl` command.
    pub fn start_with_stable_cert() -> Self {
        Self::start_inner(true)
    }

    fn start_inner(stable_cert: bool) -> Self {
        let bin = moq_relay_bin();
        assert!(
            bin.is_file(),
            "moq-relay binary not found at {}: build it with `cargo build --bin moq-relay` (or set MOQ_RELAY_BIN)",
            bin.display()
        );
        let n = RELAY_LOG_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("moq-ffi-relay-{}-{n}.log", std::process::id()));
        let mut relay = Self {
            bin,
            child: None,
            port: 0,
            http_port: 0,
            fingerprint: String::new(),
            log,
            starts: 0,
            tls_dir: None,
            extra: Vec::new(),
        };
        if stable_cert {
            let dir = std::env::temp_dir().join(format!("moq-ffi-relay-tls-{}-{n}", std::process::id()));
            relay.tls_dir = Some(dir.clone());
            make_self_signed_cert(&dir);
        }
        // Another process may take a probed port before the relay binds it: retry with new ones.
        let mut errors = Vec::new();
        for _ in 0..3 {
            relay.port = free_udp_port();
            relay.http_port = free_tcp_port();
            match relay.launch() {
                Ok(()) => return relay,
                Err(err) => errors.push(err),
            }
        }
        panic!("moq-relay did not start: {}", errors.join("; "));
    }

    /// Starts a relay on the given UDP `port` (picked by the caller, e.g. so two relays can name
    /// each other in cluster flags) with `extra` arguments, kept across `restart`.
    pub fn start_on(port: u16, extra: Vec<String>) -> Self {
        let mut relay = Self::start();
        relay.kill();
        relay.port = port;
        relay.extra = extra;
        relay.restart();
        relay
    }

    /// `https://127.0.0.1:PORT` (WebTransport) or `moqt://…` (raw QUIC), etc.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Process id of the running relay, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|child| child.id())
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `kill -9` the relay and reap it. No-op if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }

    /// Kills the relay (if running) and starts a new process on the same QUIC port. The new
    /// process has a new certificate: `fingerprint` is updated. The HTTP port is reused when
    /// possible, otherwise a fresh one is taken.
    pub fn restart(&mut self) {
        self.kill();
        let mut errors = Vec::new();
        for attempt in 0..3 {
            if attempt > 0 {
                self.http_port = free_tcp_port();
                std::thread::sleep(Duration::from_millis(100));
            }
            match self.launch() {
                Ok(()) => return,
                Err(err) => errors.push(err),
            }
        }
        panic!(
            "moq-relay did not restart on UDP port {}: {}",
            self.port,
            errors.join("; ")
        );
    }

    /// The relay's log so far (every run of it: restarts append).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Last lines of the relay's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Spawns the process on `self.port` / `self.http_port` and waits (bounded) until it serves
    /// its certificate fingerprint.
    fn launch(&mut self) -> Result<(), String> {
        use std::process::{Command, Stdio};
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|err| format!("open {}: {err}", self.log.display()))?;
        let log_err = log.try_clone().map_err(|err| err.to_string())?;
        let mut command = Command::new(&self.bin);
        command
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--auth-public")
            .arg("**")
            .arg("--web-http-listen")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .args(&self.extra)
            // Plain text, so tests can search the log and failure messages stay readable.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        match &self.tls_dir {
            Some(dir) => command
                .arg("--listen-tls-cert")
                .arg(dir.join("cert.pem"))
                .arg("--listen-tls-key")
                .arg(dir.join("key.pem")),
            None => command.arg("--listen-tls-generate").arg("localhost"),
        };
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            extern "C" {
                fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
            }
            const PR_SET_PDEATHSIG: std::ffi::c_int = 1;
            const SIGKILL: std::ffi::c_ulong = 9;
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                command.pre_exec(|| {
                    prctl(PR_SET_PDEATHSIG, SIGKILL);
                    Ok(())
                });
            }
        }
        let child = command
            .spawn()
            .map_err(|err| format!("spawn {}: {err}", self.bin.display()))?;
        self.child = Some(child);
        self.starts += 1;

        let deadline = Instant::now() + RELAY_START_TIMEOUT;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!(
                    "moq-relay exited with {status} (ports udp {} / tcp {}); log {}:\n{}",
                    self.port,
                    self.http_port,
                    self.log.display(),
                    self.log_tail(20)
                ));
            }
            match http_get(self.http_port, "/certificate.sha256", Duration::from_millis(500)) {
                Ok(body) => {
                    let fingerprint = body.trim().to_string();
                    if fingerprint.len() == 64 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()) {
                        self.fingerprint = fingerprint;
                        return Ok(());
                    }
                    last = format!("unexpected fingerprint {fingerprint:?}");
                }
                Err(err) => last = err,
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        Err(format!(
            "moq-relay did not serve /certificate.sha256 on 127.0.0.1:{} within {RELAY_START_TIMEOUT:?} ({last}); log {}:\n{}",
            self.http_port,
            self.log.display(),
            self.log_tail(20)
        ))
    }
}

impl Drop for ExternalRelay {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.tls_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        } else {
            eprintln!("moq-relay log kept at {}", self.log.display());
        }
    }
}

/// Writes `dir/cert.pem` and `dir/key.pem`: a self-signed ECDSA P-256 certificate for
/// `localhost` and 127.0.0.1, valid 10 days, made with the `openssl` command (bounded by the
/// command itself: it does no network I/O).
pub fn make_self_signed_cert(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("create the certificate directory");
    let output = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .args(["-days", "10", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("run openssl (needed for a stable relay certificate): {err}"));
    assert!(
        output.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A zero-initialised config (every newer field at its default) with `struct_size` set.
pub fn config_zeroed() -> MoqClientConfig {
    // SAFETY: every field is an integer, a bool or a raw pointer; all-zero is valid for each
    // (0, false, NULL) and is the documented "default" value.
    let mut config: MoqClientConfig = unsafe { std::mem::zeroed() };
    config.struct_size = std::mem::size_of::<MoqClientConfig>() as u32;
    config
}

/// Collects what a callback reports, of any type, in arrival order; tests wait on it.
pub struct Recorder<T> {
    items: Mutex<Vec<T>>,
    changed: Condvar,
}

impl<T: Clone> Recorder<T> {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            items: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        })
    }

    pub fn push(&self, item: T) {
        self.items.lock().unwrap().push(item);
        self.changed.notify_all();
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Vec<T> {
        self.items.lock().unwrap().clone()
    }

    /// Waits until `condition` holds for the recorded items or `timeout` passes; returns whether
    /// it held.
    pub fn wait_until(&self, timeout: Duration, mut condition: impl FnMut(&[T]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut items = self.items.lock().unwrap();
        while !condition(&items) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            items = self.changed.wait_timeout(items, left).unwrap().0;
        }
        true
    }
}

/// Stats read by `read` (one of the `moq_*_stats` functions) into a `MoqStats` of this size.
pub fn stats_of(read: impl FnOnce(*mut MoqStats) -> MoqResult) -> MoqStats {
    let mut stats = MoqStats {
        struct_size: std::mem::size_of::<MoqStats>() as u32,
        ..Default::default()
    };
    assert_ok(read(&mut stats));
    stats
}

/// A subscription's stats.
pub fn subscriber_stats(subscriber: *mut MoqSubscriber) -> MoqStats {
    // SAFETY: `stats` is a writable `MoqStats` with `struct_size` set.
    stats_of(|stats| unsafe { moq_subscriber_stats(subscriber, stats) })
}

/// A client's stats.
pub fn client_stats(client: *mut MoqClient) -> MoqStats {
    // SAFETY: `stats` is a writable `MoqStats` with `struct_size` set.
    stats_of(|stats| unsafe { moq_client_stats(client, stats) })
}
