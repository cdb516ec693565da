//! The scale run: many publishers and subscriptions in one process, driven the same way
//! through the C API and through raw moq-net ([`CapiFleet`], [`RawFleet`]).

use super::capi;
use super::clock;
use super::payload::{self, Template};
use super::process;
use super::raw::{self, RawClient, RawRelay};
use super::receiver::{wait_until, Sink};
use super::stack::Mode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

const NAMESPACE: &str = "bench/scale";
/// Objects per second on every track (`MOQ_SCALE_RATE` overrides).
const RATE_HZ: u64 = 10;
/// Tracks, each with one publisher and one subscription (`MOQ_SCALE_TRACKS` overrides).
const TRACKS: usize = 1000;

/// A number from the environment variable `name`, or `default`.
fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
/// Payload bytes of every object.
const OBJECT_SIZE: usize = 1024;
/// How long publishers keep groups: game state at 10 Hz needs only the newest ones
/// (`MOQ_SCALE_RETENTION_MS` overrides; the C API default is 30 s).
const RETENTION_MS: u32 = 2000;

fn retention_ms() -> u32 {
    env_number("MOQ_SCALE_RETENTION_MS", RETENTION_MS)
}

/// Objects per group: by default one group per second per track (game state streamed in
/// groups); `MOQ_SCALE_GROUP=1` publishes every object as its own group (`moq_publish_data`).
fn objects_per_group() -> u64 {
    env_number("MOQ_SCALE_GROUP", rate_hz()).max(1)
}

fn rate_hz() -> u64 {
    env_number("MOQ_SCALE_RATE", RATE_HZ).clamp(1, 100)
}

/// The scenario: how many tracks, how fast, grouped how, for how long.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub tracks: usize,
    pub rate_hz: u64,
    pub objects_per_group: u64,
    pub load_seconds: u64,
    /// When the steady window starts (moq-net's caches only fill before their 30 s idle
    /// expiry plus the 15 s between sweeps).
    pub steady_after: u64,
}

impl Shape {
    /// The scenario, adjusted by `MOQ_SCALE_TRACKS`, `MOQ_SCALE_RATE`,
    /// `MOQ_SCALE_GROUP` and `MOQ_SCALE_SECONDS`.
    pub fn from_env() -> Self {
        let (seconds, steady) = super::pick((90, 50), (20, 8));
        let load_seconds = env_number("MOQ_SCALE_SECONDS", seconds).max(4);
        Self {
            tracks: env_number("MOQ_SCALE_TRACKS", TRACKS).max(1),
            rate_hz: rate_hz(),
            objects_per_group: objects_per_group(),
            load_seconds,
            steady_after: steady.min(load_seconds / 2),
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} subscriptions x {} objects/s of {OBJECT_SIZE} B ({} per group), {} s, steady window from {} s",
            self.tracks, self.rate_hz, self.objects_per_group, self.load_seconds, self.steady_after
        )
    }

    /// `scale` for the scenario, else a name that says what differs.
    pub fn metric_prefix(&self) -> String {
        let mut prefix = "scale".to_string();
        if self.tracks != TRACKS {
            prefix += &format!("_{}t", self.tracks);
        }
        if self.rate_hz != RATE_HZ {
            prefix += &format!("_{}hz", self.rate_hz);
        }
        if self.objects_per_group != self.rate_hz {
            prefix += &format!("_{}pg", self.objects_per_group);
        }
        prefix
    }
}

/// Publishes on track `index`.
pub type PublishFn = Box<dyn FnMut(usize, &[u8]) -> bool + Send>;

/// Many publishers and subscriptions through one stack.
pub trait Fleet {
    /// Connects `count` extra clients that stay idle.
    fn connect_idle_clients(&mut self, count: usize) -> Result<(), String>;
    /// Disconnects and drops the idle clients.
    fn drop_idle_clients(&mut self);
    /// Creates `count` publishers, one track each.
    fn create_publishers(&mut self, count: usize) -> Result<(), String>;
    /// Subscribes to every track, delivering to `sink`.
    fn subscribe_all(&mut self, sink: &Arc<ScaleSink>) -> Result<(), String>;
    /// Hands the publishers to the publishing thread.
    fn take_publishers(&mut self) -> PublishFn;
}

/// Latency histogram: 10 µs buckets below 10 ms, 1 ms buckets below 1 s, then one overflow.
struct Histogram {
    buckets: Vec<u64>,
    max_ns: u64,
}

impl Histogram {
    const FINE: u64 = 1000;
    const COARSE: u64 = 990;

    fn new() -> Self {
        Self {
            buckets: vec![0; (Self::FINE + Self::COARSE + 1) as usize],
            max_ns: 0,
        }
    }

    fn record(&mut self, ns: u64) {
        let us = ns / 1000;
        let index = match us {
            us if us < 10_000 => us / 10,
            us if us < 1_000_000 => Self::FINE + (us - 10_000) / 1000,
            _ => Self::FINE + Self::COARSE,
        };
        self.buckets[index as usize] += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    /// The upper bound (µs) of the bucket holding the `q` quantile.
    fn quantile_us(&self, q: f64) -> f64 {
        let total: u64 = self.buckets.iter().sum();
        let target = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= target {
                let index = index as u64;
                return match index < Self::FINE {
                    true => ((index + 1) * 10) as f64,
                    false => (10_000 + (index - Self::FINE + 1) * 1000) as f64,
                };
            }
        }
        f64::NAN
    }
}

/// Where every subscription of the scale run delivers: counts, checks and times each object.
pub struct ScaleSink {
    subscribed: AtomicU64,
    delivered: AtomicU64,
    corrupt: AtomicU64,
    latency: Mutex<Histogram>,
}

impl ScaleSink {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            subscribed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            latency: Mutex::new(Histogram::new()),
        })
    }

    fn histogram(&self) -> std::sync::MutexGuard<'_, Histogram> {
        self.latency.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets the latencies seen so far (start of the steady window).
    fn reset_latency(&self) {
        *self.histogram() = Histogram::new();
    }
}

impl Sink for ScaleSink {
    fn on_object(&self, bytes: &[u8]) {
        let now = clock::now_ns();
        match payload::verify(bytes) {
            Ok(stamp) => {
                self.histogram().record(now.saturating_sub(stamp.sent_ns));
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.corrupt.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn on_subscribed(&self) {
        self.subscribed.fetch_add(1, Ordering::Relaxed);
    }
}

/// The C API fleet: one relay, a publishing client, a subscribing client.
pub struct CapiFleet {
    subscribers: Vec<capi::Subscriber>,
    publishers: Vec<capi::Publisher>,
    idle: Vec<capi::Client>,
    publisher_client: capi::Client,
    subscriber_client: capi::Client,
    relay: capi::Relay,
}

impl CapiFleet {
    pub fn start() -> Result<Self, String> {
        let relay = capi::Relay::start()?;
        Ok(Self {
            subscribers: Vec::new(),
            publishers: Vec::new(),
            idle: Vec::new(),
            publisher_client: capi::Client::connect(&relay)?,
            subscriber_client: capi::Client::connect(&relay)?,
            relay,
        })
    }
}

fn track_name(index: usize) -> String {
    format!("t{index:05}")
}

impl Fleet for CapiFleet {
    fn connect_idle_clients(&mut self, count: usize) -> Result<(), String> {
        for _ in 0..count {
            self.idle.push(capi::Client::connect(&self.relay)?);
        }
        Ok(())
    }

    fn drop_idle_clients(&mut self) {
        self.idle.clear();
    }

    fn create_publishers(&mut self, count: usize) -> Result<(), String> {
        for index in 0..count {
            // The same retention as the raw fleet's tracks (`MOQ_SCALE_RETENTION_MS`).
            let publisher = capi::Publisher::create_with(
                &self.publisher_client,
                NAMESPACE,
                &track_name(index),
                Mode::Stream,
                retention_ms(),
            )?;
            self.publishers.push(publisher);
        }
        Ok(())
    }

    fn subscribe_all(&mut self, sink: &Arc<ScaleSink>) -> Result<(), String> {
        for index in 0..self.publishers.len() {
            let subscriber = capi::Subscriber::subscribe(&self.subscriber_client, NAMESPACE, &track_name(index), sink)?;
            self.subscribers.push(subscriber);
        }
        Ok(())
    }

    fn take_publishers(&mut self) -> PublishFn {
        let publishers = std::mem::take(&mut self.publishers);
        let per_group = objects_per_group();
        let mut written = vec![0u64; publishers.len()];
        Box::new(move |index, payload| {
            let publisher = &publishers[index];
            if per_group == 1 {
                return publisher.publish(payload).is_ok();
            }
            if written[index].is_multiple_of(per_group) && publisher.begin_group().is_err() {
                return false;
            }
            written[index] += 1;
            publisher.publish_object(payload).is_ok()
        })
    }
}

/// The raw fleet: the same shape on moq-net/moq-tokio, with its own runtime and relay.
pub struct RawFleet {
    readers: Vec<tokio::task::AbortHandle>,
    tracks: Vec<moq_net::track::Producer>,
    names: usize,
    idle: Vec<RawClient>,
    broadcast: moq_net::broadcast::Producer,
    publisher: RawClient,
    subscriber: RawClient,
    relay: RawRelay,
    runtime: tokio::runtime::Runtime,
}

impl RawFleet {
    pub fn start() -> Result<Self, String> {
        let runtime = raw::runtime()?;
        let (relay, publisher, subscriber) = runtime.block_on(async {
            let relay = RawRelay::start().await?;
            let publisher = RawClient::connect(&relay).await?;
            let subscriber = RawClient::connect(&relay).await?;
            Ok::<_, String>((relay, publisher, subscriber))
        })?;
        let broadcast = publisher
            .published
            .create_broadcast(NAMESPACE)
            .map_err(|err| format!("create_broadcast: {err}"))?;
        broadcast
            .announce(Default::default())
            .map_err(|err| format!("announce: {err}"))?;
        Ok(Self {
            readers: Vec::new(),
            tracks: Vec::new(),
            names: 0,
            idle: Vec::new(),
            broadcast,
            publisher,
            subscriber,
            relay,
            runtime,
        })
    }
}

impl Fleet for RawFleet {
    fn connect_idle_clients(&mut self, count: usize) -> Result<(), String> {
        for _ in 0..count {
            let client = self.runtime.block_on(RawClient::connect(&self.relay))?;
            self.idle.push(client);
        }
        Ok(())
    }

    fn drop_idle_clients(&mut self) {
        let idle = std::mem::take(&mut self.idle);
        self.runtime.block_on(async {
            for client in idle {
                let _ = tokio::time::timeout(Duration::from_secs(2), client.close()).await;
            }
        });
    }

    fn create_publishers(&mut self, count: usize) -> Result<(), String> {
        for index in 0..count {
            let track = self
                .broadcast
                .create_track(
                    track_name(index),
                    raw::track_info_with(Duration::from_millis(retention_ms().into())),
                )
                .map_err(|err| format!("create_track: {err}"))?;
            self.tracks.push(track);
        }
        self.names = count;
        Ok(())
    }

    fn subscribe_all(&mut self, sink: &Arc<ScaleSink>) -> Result<(), String> {
        let subscriber = &self.subscriber;
        let readers = self.runtime.block_on(async {
            let subscribing = (0..self.names).map(|index| {
                let sink = sink.clone() as Arc<dyn Sink>;
                async move { raw::subscribe(subscriber, NAMESPACE, &track_name(index), Mode::Stream, sink).await }
            });
            futures::future::join_all(subscribing).await
        });
        for reader in readers {
            self.readers.push(reader?);
        }
        Ok(())
    }

    fn take_publishers(&mut self) -> PublishFn {
        let mut tracks = std::mem::take(&mut self.tracks);
        let per_group = objects_per_group();
        let mut groups: Vec<Option<(moq_net::group::Producer, u64)>> = tracks.iter().map(|_| None).collect();
        Box::new(move |index, payload| {
            let data = bytes::Bytes::copy_from_slice(payload);
            if per_group == 1 {
                return tracks[index].write_frame(raw::timestamp_now(), data).is_ok();
            }
            let open = &mut groups[index];
            if open.as_ref().is_none_or(|(_, written)| *written >= per_group) {
                if let Some((group, _)) = open.take() {
                    let _ = group.finish();
                }
                match tracks[index].append_group() {
                    Ok(group) => *open = Some((group, 0)),
                    Err(_) => return false,
                }
            }
            let Some((group, written)) = open.as_mut() else {
                return false;
            };
            *written += 1;
            group.write_frame(raw::timestamp_now(), data).is_ok()
        })
    }
}

impl Drop for RawFleet {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
        self.drop_idle_clients();
        self.relay.stop();
    }
}

/// Lets background work settle before a memory reading.
fn settle(seconds: u64) {
    std::thread::sleep(Duration::from_secs(seconds));
}

/// Resident KiB added per item by `make`, after letting it settle.
fn rss_per_item(count: usize, settle_seconds: u64, make: impl FnOnce() -> Result<(), String>) -> f64 {
    let before = process::rss_bytes();
    make().unwrap_or_else(|err| panic!("{err}"));
    settle(settle_seconds);
    (process::rss_bytes().saturating_sub(before)) as f64 / 1024.0 / count as f64
}

/// Publishes `MOQ_SCALE_RATE` objects per second on each of `tracks` tracks until `stop`; returns the
/// publish count (shared) as it goes.
fn spawn_publisher(
    mut publish: PublishFn,
    tracks: usize,
    stop: Arc<AtomicBool>,
    published: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut template = Template::new(OBJECT_SIZE);
        let slots = 100 / rate_hz(); // ticks of 10 ms per period of one track
        let per_tick = tracks.div_ceil(slots as usize);
        let started = Instant::now();
        let mut seq = 0u64;
        for tick in 0u64.. {
            if stop.load(Ordering::Acquire) {
                return;
            }
            let due = started + Duration::from_millis(tick * 10);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let first = (tick % slots) as usize * per_tick;
            for index in first..(first + per_tick).min(tracks) {
                if publish(index, template.stamp(seq)) {
                    published.fetch_add(1, Ordering::Relaxed);
                }
                seq += 1;
            }
        }
    })
}

/// Runs the scale scenario for `variant` (`capi` or `raw`) and returns its figures.
pub fn run(variant: &str) -> Vec<(String, f64)> {
    let shape = Shape::from_env();
    let subscriptions = shape.tracks;
    let idle_clients = super::pick(100, 20);
    let (load_seconds, warm_seconds, every) = (shape.load_seconds, shape.steady_after, super::pick(10, 4));
    let mut fleet: Box<dyn Fleet> = match variant {
        "capi" => Box::new(CapiFleet::start().unwrap_or_else(|err| panic!("{err}"))),
        _ => Box::new(RawFleet::start().unwrap_or_else(|err| panic!("{err}"))),
    };
    settle(1);
    let mut results = vec![("scale.subscriptions".to_string(), subscriptions as f64)];
    let per_client = rss_per_item(idle_clients, 2, || fleet.connect_idle_clients(idle_clients));
    fleet.drop_idle_clients();
    settle(1);
    let per_publisher = rss_per_item(subscriptions, 1, || fleet.create_publishers(subscriptions));
    let sink = ScaleSink::new();
    let per_subscription = rss_per_item(subscriptions, 2, || {
        fleet.subscribe_all(&sink)?;
        match wait_until(Duration::from_secs(60), || {
            sink.subscribed.load(Ordering::Relaxed) >= subscriptions as u64
        }) {
            true => Ok(()),
            false => Err(format!(
                "only {} subscriptions went live",
                sink.subscribed.load(Ordering::Relaxed)
            )),
        }
    });
    results.push(("scale.idle_client_rss_kib".into(), per_client));
    results.push(("scale.publisher_rss_kib".into(), per_publisher));
    results.push(("scale.idle_subscription_rss_kib".into(), per_subscription));
    println!(
        "idle: {per_client:.1} KiB per client, {per_publisher:.1} KiB per publisher, {per_subscription:.1} KiB per subscription; rss {:.1} MiB",
        process::rss_mib()
    );
    results.extend(load(
        fleet.as_mut(),
        &sink,
        subscriptions,
        load_seconds,
        warm_seconds,
        every,
    ));
    results
}

/// The load phase: publishes, samples memory and CPU every `every` seconds, and measures the
/// steady window after `warm_seconds`.
fn load(
    fleet: &mut dyn Fleet,
    sink: &Arc<ScaleSink>,
    tracks: usize,
    seconds: u64,
    warm_seconds: u64,
    every: u64,
) -> Vec<(String, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let publisher = spawn_publisher(fleet.take_publishers(), tracks, stop.clone(), published.clone());
    let started = Instant::now();
    let mut steady = None;
    let mut elapsed = 0;
    while elapsed < seconds {
        std::thread::sleep(Duration::from_secs(every).min(Duration::from_secs(seconds - elapsed)));
        elapsed = started.elapsed().as_secs_f64().round() as u64;
        let (rss, cpu) = (process::rss_mib(), process::cpu_seconds());
        println!(
            "t={elapsed:>3} s  rss {rss:>7.1} MiB  cpu {cpu:>7.2} s  published {:>8}  delivered {:>8}",
            published.load(Ordering::Relaxed),
            sink.delivered.load(Ordering::Relaxed)
        );
        if steady.is_none() && elapsed >= warm_seconds {
            sink.reset_latency();
            steady = Some((Instant::now(), rss, cpu));
        }
    }
    stop.store(true, Ordering::Release);
    let _ = publisher.join();
    let (rss, cpu, end) = (process::rss_mib(), process::cpu_seconds(), Instant::now());
    let sent = published.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(3), || {
        sink.delivered.load(Ordering::Relaxed) >= sent
    });
    let (steady_at, steady_rss, steady_cpu) = steady.unwrap_or((started, rss, cpu));
    let window = end.duration_since(steady_at).as_secs_f64().max(1e-9);
    let histogram = sink.histogram();
    vec![
        ("scale.load_rss_mib".into(), rss),
        ("scale.load_rss_growth_mib".into(), rss - steady_rss),
        (
            "scale.load_rss_growth_mib_per_min".into(),
            (rss - steady_rss) / window * 60.0,
        ),
        ("scale.load_cpu_s_per_s".into(), (cpu - steady_cpu) / window),
        ("scale.load_latency_p50_us".into(), histogram.quantile_us(0.50)),
        ("scale.load_latency_p99_us".into(), histogram.quantile_us(0.99)),
        ("scale.load_latency_max_us".into(), histogram.max_ns as f64 / 1000.0),
        (
            "scale.load_delivered_fraction".into(),
            sink.delivered.load(Ordering::Relaxed) as f64 / sent.max(1) as f64,
        ),
        ("scale.load_corrupt".into(), sink.corrupt.load(Ordering::Relaxed) as f64),
        ("scale.load_threads".into(), process::threads() as f64),
    ]
}
