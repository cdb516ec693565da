//! The raw stack: the same work as the C API stack, written directly against moq-net and
//! moq-tokio, through the same kind of relay (`moq_relay::Relay` embedded the way
//! `src/core/relay.rs` embeds it). It is the baseline the C API is compared with.

use super::plain;
use super::receiver::{Receiver, Sink};
use super::stack::{Link, Mode, Stack};
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a connect or subscribe may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Groups kept for a subscriber that is behind: the C API's retention and subscription budget.
const RETENTION: Duration = Duration::from_secs(30);
/// The C API's default track and subscription priority.
const PRIORITY: u8 = 127;

/// A tokio runtime shaped like the library's: one worker per core, two to four.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("raw-io")
        .enable_all()
        .build()
        .map_err(|err| format!("runtime: {err}"))
}

/// Runs `future` on `runtime` from this (non-runtime) thread, bounded by [`SETUP_TIMEOUT`].
fn setup<T>(
    runtime: &tokio::runtime::Runtime,
    what: &str,
    future: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    runtime.block_on(async {
        tokio::time::timeout(SETUP_TIMEOUT, future)
            .await
            .map_err(|_| format!("{what} timed out"))?
    })
}

/// An embedded `moq_relay::Relay` on a free loopback port.
pub struct RawRelay {
    pub url: url::Url,
    pub fingerprint: String,
    trigger: moq_relay::shutdown::Trigger,
    task: tokio::task::JoinHandle<()>,
}

impl RawRelay {
    /// Starts the relay on the current runtime with the C API's embedded-relay settings.
    pub async fn start() -> Result<Self, String> {
        let identity =
            moq_tokio::tls::Identity::generate(["localhost"]).map_err(|err| format!("certificate: {err}"))?;
        let fingerprint = identity.fingerprint().to_string();
        let mut config = moq_relay::Config::default();
        config.drain_timeout = Duration::ZERO;
        // The embedded relay's cache target (`src/core/relay.rs`): the same relay, configured alike.
        config.cache.capacity = Some(moq_ffi::core::relay::EMBEDDED_CACHE.to_string());
        config.listen.bind = Some(moq_tokio::listen::Bind::Addr(([127, 0, 0, 1], 0).into()));
        config.listen.tls.identity = Some(identity);
        config.auth.public = vec![moq_auth::Pattern::all()];
        let relay = moq_relay::Relay::load(config)
            .await
            .map_err(|err| format!("relay: {err:#}"))?;
        let addr = relay.quic_addr().map_err(|err| format!("relay address: {err}"))?;
        let trigger = relay.shutdown_trigger().clone();
        let ready = relay.ready();
        let task = tokio::spawn(async move {
            let _ = relay.run().await;
        });
        ready.wait().await.map_err(|err| format!("relay start: {err}"))?;
        let url = format!("https://localhost:{}", addr.port());
        Ok(Self {
            url: url.parse().map_err(|err| format!("relay URL: {err}"))?,
            fingerprint,
            trigger,
            task,
        })
    }

    pub fn stop(&self) {
        self.trigger.start();
        self.task.abort();
    }
}

/// The C API client's default publish buffer (`publish_buffer_bytes`).
const PUBLISH_BUFFER: u64 = moq_ffi::core::config::DEFAULT_PUBLISH_BUFFER;

/// An origin whose broadcasts share a cache pool of `capacity` bytes (`None`: no cap) with the
/// default idle expiry.
fn origin_config(capacity: impl Into<Option<u64>>) -> moq_net::origin::Config {
    let pool = moq_net::cache::Config::default()
        .with_capacity(capacity)
        .with_expiry(moq_net::cache::DEFAULT_EXPIRY);
    let mut config = moq_net::origin::Config::default();
    config.pool = moq_net::cache::Pool::new(pool);
    config
}

/// A moq-tokio client session with the relay's fingerprint pinned; it publishes the broadcasts
/// of `published` and receives into `received` (two origins, as the C API's client has).
pub struct RawClient {
    pub published: moq_net::origin::Producer,
    pub received: moq_net::origin::Producer,
    pub connection: moq_tokio::Connection,
    endpoint: moq_tokio::Client,
}

impl RawClient {
    /// Dials `relay` on the current runtime with the C API's QUIC settings and caches: its
    /// publish buffer and its receive cache cap.
    pub async fn connect(relay: &RawRelay) -> Result<Self, String> {
        Self::connect_with_receive_cap(relay, Some(moq_ffi::core::client::RECEIVE_CACHE_BYTES)).await
    }

    /// [`Self::connect`] with another cap on the receive cache (`None`: moq-net's default, no
    /// cap). The e2e bench's raw stack has none: with the C API's 32 MiB cap the raw reader,
    /// which reads each group as it comes, lost 3-65% of every burst of the e2e bench (the cache
    /// evicts groups not yet read; the C API reads ahead into its own bounded buffer), and a
    /// throughput over a lossy run is no baseline.
    pub async fn connect_with_receive_cap(relay: &RawRelay, receive_cap: Option<u64>) -> Result<Self, String> {
        let _ = moq_tokio::crypto::install_default();
        let published = moq_tokio::origin::spawn_config(origin_config(PUBLISH_BUFFER));
        let received = moq_tokio::origin::spawn_config(origin_config(receive_cap));
        let mut connect = moq_tokio::connect::Config::default();
        connect.once = Some(true);
        connect.tls.fingerprint = vec![relay.fingerprint.clone()];
        let mut quic = moq_tokio::quic::Config::default();
        quic.keep_alive = Duration::from_secs(1);
        quic.idle_timeout = Duration::from_secs(10);
        let endpoint = connect
            .init(quic)
            .map_err(|err| format!("client setup: {err}"))?
            .with_publisher(published.consume())
            .with_subscriber(received.clone())
            .with_reconnect(false);
        let connection = endpoint
            .connect(relay.url.clone())
            .established()
            .await
            .map_err(|err| format!("connect: {err}"))?;
        Ok(Self {
            published,
            received,
            connection,
            endpoint,
        })
    }

    /// The negotiated protocol version.
    pub fn protocol(&self) -> String {
        self.connection
            .version()
            .map_or_else(|| "(unknown)".to_string(), |version| version.to_string())
    }

    /// Closes the session and the endpoint.
    pub async fn close(self) {
        let _ = self.connection.close().await;
        self.endpoint.close().await;
    }
}

/// The track settings the C API's publisher uses.
pub fn track_info() -> moq_net::track::Info {
    track_info_with(RETENTION)
}

/// The C API publisher's track settings with another retention.
pub fn track_info_with(retention: Duration) -> moq_net::track::Info {
    moq_net::track::Info::default()
        .with_max_age(retention)
        .with_priority(PRIORITY)
        .with_timescale(moq_net::Timescale::MICRO)
}

/// The subscription settings the C API's subscriber uses.
pub fn subscription() -> moq_net::track::Subscription {
    moq_net::track::Subscription::default()
        .with_max_age(RETENTION)
        .with_priority(PRIORITY)
}

/// Now since the Unix epoch, as the C API stamps `moq_publish_data` objects.
pub fn timestamp_now() -> moq_net::Timestamp {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64);
    moq_net::Timestamp::from_micros(micros).unwrap_or_else(|_| moq_net::Timestamp::now())
}

/// Subscribes to `namespace/track` through `client` and spawns a reader feeding `sink`.
pub async fn subscribe(
    client: &RawClient,
    namespace: &str,
    track: &str,
    mode: Mode,
    sink: Arc<dyn Sink>,
) -> Result<tokio::task::AbortHandle, String> {
    let broadcast = client
        .received
        .consume()
        .routed_broadcast(namespace)
        .await
        .map_err(|err| format!("routed_broadcast: {err}"))?;
    let consumer = broadcast.track(track).map_err(|err| format!("track: {err}"))?;
    let subscriber = consumer
        .subscribe(subscription())
        .await
        .map_err(|err| format!("subscribe: {err}"))?;
    sink.on_subscribed();
    let task = match mode {
        Mode::Stream => tokio::spawn(read_groups(subscriber, sink)),
        Mode::Datagram => tokio::spawn(read_datagrams(subscriber, sink)),
    };
    Ok(task.abort_handle())
}

/// The next frame of `group`, handed back with the group.
async fn next_frame(
    mut group: moq_net::group::Consumer,
) -> (moq_net::group::Consumer, moq_net::Result<Option<moq_net::frame::Frame>>) {
    let read = group.read_frame().await;
    (group, read)
}

/// Reads groups as they arrive and the frames of every open group concurrently.
async fn read_groups(mut track: moq_net::track::Subscriber, sink: Arc<dyn Sink>) {
    let mut frames = FuturesUnordered::new();
    loop {
        tokio::select! {
            group = track.recv_group() => match group {
                Ok(Some(group)) => frames.push(next_frame(group)),
                _ => return,
            },
            Some((group, read)) = frames.next(), if !frames.is_empty() => {
                if let Ok(Some(frame)) = read {
                    sink.on_bytes(frame.payload);
                    frames.push(next_frame(group));
                }
            }
        }
    }
}

/// Reads datagrams until the track ends.
async fn read_datagrams(mut track: moq_net::track::Subscriber, sink: Arc<dyn Sink>) {
    while let Ok(Some(datagram)) = track.recv_datagram().await {
        sink.on_bytes(datagram.payload);
    }
}

/// A sink that hands every object to a plain dispatcher thread (std `mpsc`) before the real
/// sink sees it: the raw reader plus the thread hop the C API's callback thread adds.
struct HopSink {
    dispatcher: Arc<plain::Dispatcher>,
    inner: Arc<Receiver>,
}

impl Sink for HopSink {
    fn on_object(&self, bytes: &[u8]) {
        self.on_bytes(Bytes::copy_from_slice(bytes));
    }

    fn on_bytes(&self, bytes: Bytes) {
        let inner = self.inner.clone();
        self.dispatcher.post(Box::new(move || inner.on_object(&bytes)));
    }

    fn on_subscribed(&self) {
        self.inner.mark_subscribed();
    }
}

/// The raw stack: its own runtime, relay, publishing and subscribing client.
pub struct RawStack {
    /// With a thread hop before the sink (`rawhop`), for attributing the callback thread's cost.
    hop: Option<Arc<plain::Dispatcher>>,
    namespace: String,
    broadcast: moq_net::broadcast::Producer,
    publisher: Option<RawClient>,
    subscriber: Option<RawClient>,
    relay: RawRelay,
    runtime: tokio::runtime::Runtime,
}

impl RawStack {
    /// Starts the runtime and relay, connects both clients and announces `namespace`.
    pub fn start(namespace: &str) -> Result<Self, String> {
        let runtime = runtime()?;
        let (relay, publisher, subscriber) = setup(&runtime, "raw stack setup", async {
            let relay = RawRelay::start().await?;
            let publisher = RawClient::connect_with_receive_cap(&relay, None).await?;
            let subscriber = RawClient::connect_with_receive_cap(&relay, None).await?;
            Ok((relay, publisher, subscriber))
        })?;
        let broadcast = publisher
            .published
            .create_broadcast(namespace)
            .map_err(|err| format!("create_broadcast: {err}"))?;
        broadcast
            .announce(Default::default())
            .map_err(|err| format!("announce: {err}"))?;
        Ok(Self {
            hop: None,
            namespace: namespace.to_string(),
            broadcast,
            publisher: Some(publisher),
            subscriber: Some(subscriber),
            relay,
            runtime,
        })
    }
}

impl RawStack {
    /// The raw stack with a thread hop (std `mpsc` to one thread) in front of every sink.
    pub fn start_with_hop(namespace: &str) -> Result<Self, String> {
        let mut stack = Self::start(namespace)?;
        stack.hop = Some(Arc::new(plain::Dispatcher::start()));
        Ok(stack)
    }

    /// A new track of the stack's broadcast, with the C API publisher's settings.
    pub fn track(&self, name: &str) -> Result<moq_net::track::Producer, String> {
        self.broadcast
            .create_track(name, track_info())
            .map_err(|err| format!("create_track: {err}"))
    }
}

impl Drop for RawStack {
    fn drop(&mut self) {
        let clients = [self.subscriber.take(), self.publisher.take()];
        self.runtime.block_on(async {
            for client in clients.into_iter().flatten() {
                let _ = tokio::time::timeout(Duration::from_secs(2), client.close()).await;
            }
        });
        self.relay.stop();
    }
}

/// A raw publisher and subscriber on one track.
struct RawLink {
    reader: tokio::task::AbortHandle,
    track: moq_net::track::Producer,
    mode: Mode,
}

impl Link for RawLink {
    fn publish(&mut self, payload: &[u8]) -> Result<(), String> {
        let payload = Bytes::copy_from_slice(payload);
        let written = match self.mode {
            Mode::Stream => self.track.write_frame(timestamp_now(), payload),
            Mode::Datagram => self.track.append_datagram(timestamp_now(), payload).map(drop),
        };
        written.map_err(|err| format!("publish: {err}"))
    }
}

impl Drop for RawLink {
    fn drop(&mut self) {
        self.reader.abort();
        let _ = self.track.finish();
    }
}

impl RawStack {
    fn sink_for(&self, receiver: &Arc<Receiver>) -> Arc<dyn Sink> {
        match &self.hop {
            Some(dispatcher) => Arc::new(HopSink {
                dispatcher: dispatcher.clone(),
                inner: receiver.clone(),
            }),
            None => receiver.clone(),
        }
    }
}

impl Stack for RawStack {
    fn label(&self) -> &'static str {
        match self.hop {
            Some(_) => "rawhop",
            None => "raw",
        }
    }

    fn protocol(&self) -> String {
        let version = |client: &Option<RawClient>| client.as_ref().map(RawClient::protocol).unwrap_or_default();
        format!("{} / {}", version(&self.publisher), version(&self.subscriber))
    }

    fn open(&self, track: &str, mode: Mode, receiver: &Arc<Receiver>) -> Result<Box<dyn Link>, String> {
        let producer = self.track(track)?;
        let client = self.subscriber.as_ref().ok_or("the raw stack is stopped")?;
        let reader = setup(
            &self.runtime,
            "raw subscribe",
            subscribe(client, &self.namespace, track, mode, self.sink_for(receiver)),
        )?;
        Ok(Box::new(RawLink {
            reader,
            track: producer,
            mode,
        }))
    }
}
