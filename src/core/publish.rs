//! Publishers: one track of one broadcast, written object by object or group by group.
//!
//! Stream mode carries objects in groups on QUIC streams (reliable, ordered): `publish` writes
//! one object as its own group; `begin_group`/`publish_object`/`end_group` build a group of many
//! objects (a video GOP, a batch of game state). Datagram mode sends each object as one QUIC
//! datagram (lossy, latest value). Writing never waits for the network: objects are handed to
//! moq-net's per-track cache and sent by the session in the background.

use crate::core::client::Client;
use crate::core::config::{self, DeliveryMode, MAX_DATAGRAM_SIZE, MAX_OBJECT_SIZE};
use crate::core::stats::{DropReason, Snapshot, Tally};
use crate::error::{self, Error, ErrorKind, Result};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the publisher keeps groups for subscribers that are behind, by default. Subscribers
/// reading reliably lose nothing unless they fall this far behind.
pub const RETENTION: Duration = Duration::from_secs(30);
/// The longest retention a publisher may ask for (the cache holds groups this long).
pub const MAX_RETENTION: Duration = Duration::from_secs(3600);
/// moq-net's cap on objects in one group.
pub const MAX_GROUP_OBJECTS: u64 = moq_net::group::MAX_GROUP_FRAMES as u64;
/// The track priority when none is given (moq-net's midpoint).
pub const DEFAULT_PRIORITY: u8 = 127;

/// How a publisher's track behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublisherOptions {
    /// The default mode for `publish` and the mode of `publish_object`.
    pub mode: DeliveryMode,
    /// Higher is more urgent; relays favour it when bandwidth is short.
    pub priority: u8,
    /// How long relays and this publisher keep a group for late or slow subscribers.
    pub retention: Duration,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        Self {
            mode: DeliveryMode::Stream,
            priority: DEFAULT_PRIORITY,
            retention: RETENTION,
        }
    }
}

/// The group being built on the track, and the track handle datagrams are written through.
struct Track {
    /// moq-net's `append_datagram` wants `&mut`: a clone of the track producer, used under the
    /// lock (datagram mode only).
    datagrams: moq_net::track::Producer,
    /// The open group (`begin_group`) and how many objects it holds.
    open: Option<(moq_net::group::Producer, u64)>,
}

/// [`Publisher::closed`]: the track is open.
const OPEN: u8 = 0;
/// [`Publisher::closed`]: `finish` ended the track.
const FINISHED: u8 = 1;
/// [`Publisher::closed`]: `abort` ended the track.
const ABORTED: u8 = 2;

/// Publishes objects on one track.
///
/// `publish` in stream mode (one object per group) takes no lock of ours: the track producer's
/// `append_group` needs only `&self`, and whether a group is open or the track closed is read
/// from atomics. Building a group (`begin_group`/`publish_object`/`end_group`) and datagrams go
/// through `track`'s lock, which only this publisher's own calls take.
pub struct Publisher {
    client: Arc<Client>,
    namespace: String,
    track_name: String,
    options: PublisherOptions,
    producer: moq_net::track::Producer,
    track: Mutex<Track>,
    /// Whether `begin_group` opened a group (mirrors `Track::open`, set under the lock).
    group_open: AtomicBool,
    /// [`OPEN`], [`FINISHED`] or [`ABORTED`]; set under the lock, never reset.
    closed: AtomicU8,
    tally: Tally,
}

/// The timestamp of an object: the caller's (microseconds), or now since the Unix epoch.
fn timestamp(timestamp_us: u64) -> Result<moq_net::Timestamp> {
    let micros = match timestamp_us {
        0 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |since| since.as_micros() as u64),
        given => given,
    };
    moq_net::Timestamp::from_micros(micros)
        .map_err(|_| Error::invalid_argument(format!("timestamp_us {timestamp_us} is out of range (at most 2^62-1)")))
}

impl Publisher {
    /// Creates the track `track_name` in `namespace`, announcing the namespace on first use.
    pub fn new(client: &Arc<Client>, namespace: &str, track_name: &str, options: PublisherOptions) -> Result<Self> {
        config::check_namespace(namespace)?;
        config::check_name("track_name", track_name)?;
        if options.retention.is_zero() || options.retention > MAX_RETENTION {
            return Err(Error::invalid_argument(format!(
                "retention {} ms is out of range (1..={} ms)",
                options.retention.as_millis(),
                MAX_RETENTION.as_millis()
            )));
        }
        let broadcast = client.broadcast(namespace)?;
        let info = moq_net::track::Info::default()
            .with_max_age(options.retention)
            .with_priority(options.priority)
            .with_timescale(moq_net::Timescale::MICRO);
        let track = broadcast.create_track(track_name, info).map_err(|err| {
            if matches!(err, moq_net::Error::Duplicate) {
                Error::invalid_argument(format!(
                    "track \"{track_name}\" already has a publisher in namespace \"{namespace}\"; destroy it first"
                ))
            } else {
                error::from_moq(&err, format!("creating track \"{namespace}/{track_name}\""))
            }
        })?;
        Ok(Self {
            client: client.clone(),
            namespace: namespace.to_string(),
            track_name: track_name.to_string(),
            options,
            track: Mutex::new(Track {
                datagrams: track.clone(),
                open: None,
            }),
            producer: track,
            group_open: AtomicBool::new(false),
            closed: AtomicU8::new(OPEN),
            tally: client.tally(),
        })
    }

    /// The options given at creation.
    pub fn options(&self) -> PublisherOptions {
        self.options
    }

    /// The mode given at creation.
    pub fn default_mode(&self) -> DeliveryMode {
        self.options.mode
    }

    fn lock(&self) -> MutexGuard<'_, Track> {
        self.track.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn context(&self) -> String {
        format!("publishing on \"{}/{}\"", self.namespace, self.track_name)
    }

    /// Checks the size for `mode` and that the session can carry it.
    fn admit(&self, len: usize, mode: DeliveryMode) -> Result<()> {
        match mode {
            DeliveryMode::Stream if len > MAX_OBJECT_SIZE => {
                return Err(Error::invalid_argument(format!(
                    "data_len {len} exceeds the maximum object size of {MAX_OBJECT_SIZE} bytes"
                )))
            }
            DeliveryMode::Datagram if len > MAX_DATAGRAM_SIZE => {
                return Err(Error::invalid_argument(format!(
                    "data_len {len} exceeds the datagram maximum of {MAX_DATAGRAM_SIZE} bytes; publish it with MOQ_DELIVERY_STREAM"
                )))
            }
            _ => {}
        }
        // Lock-free: `Client::session_flags` is an atomic mirror of the session (the client's lock is
        // taken only to explain a failure).
        let Some(session) = self.client.session_flags() else {
            return Err(self.not_live());
        };
        if mode == DeliveryMode::Stream {
            self.client.publish_room(len).inspect_err(|_| {
                self.tally.dropped(DropReason::Backpressure, 1);
            })?;
        }
        if mode == DeliveryMode::Datagram && session.websocket() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the session runs over the WebSocket fallback (UDP blocked?), which cannot carry datagrams; use MOQ_DELIVERY_STREAM",
            ));
        }
        if mode == DeliveryMode::Datagram && !session.datagrams() {
            let version = self
                .client
                .session("publishing")
                .ok()
                .and_then(|session| session.version);
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the negotiated protocol {} cannot carry datagrams (needs moq-lite-05 or later, or moq-transport); use MOQ_DELIVERY_STREAM",
                    version.map_or_else(|| "(unknown)".to_string(), |v| v.to_string())
                ),
            ));
        }
        Ok(())
    }

    /// The error of a publish without a live session (counted as dropped, disconnected).
    #[cold]
    fn not_live(&self) -> Error {
        self.tally.dropped(DropReason::Disconnected, 1);
        match self.client.session("publishing") {
            Err(err) => err,
            // Connected between the two reads: say so rather than fail the call oddly.
            Ok(_) => Error::new(
                ErrorKind::NotConnected,
                "publishing needs a connected client; the session changed during the call, retry",
            ),
        }
    }

    fn check_open(&self) -> Result<()> {
        match self.closed.load(Ordering::Acquire) {
            OPEN => Ok(()),
            FINISHED => Err(Error::new(ErrorKind::Closed, "the track was finished")),
            _ => Err(Error::new(ErrorKind::Closed, "the track was aborted")),
        }
    }

    /// Publishes one object in `mode` as its own group (stream) or datagram. Never blocks on the
    /// network; in stream mode takes no lock of ours (see [`Publisher`]).
    pub fn publish(&self, data: &[u8], mode: DeliveryMode) -> Result<()> {
        self.admit(data.len(), mode)?;
        crate::inject::check("publish");
        self.check_open()?;
        let timestamp = timestamp(0)?;
        let written = match mode {
            DeliveryMode::Stream => {
                if self.group_open.load(Ordering::Acquire) {
                    return Err(Error::new(
                        ErrorKind::InvalidState,
                        "a group is open (moq_publisher_begin_group): append to it with moq_publish_object or end it first",
                    ));
                }
                // What moq-net's `track::Producer::write_frame` does, through `&self`.
                let payload = Bytes::copy_from_slice(data);
                self.producer.append_group().and_then(|mut group| {
                    group.write_frame(timestamp, payload)?;
                    group.finish()
                })
            }
            DeliveryMode::Datagram => {
                let payload = Bytes::copy_from_slice(data);
                self.lock().datagrams.append_datagram(timestamp, payload).map(drop)
            }
        };
        written
            .map(|()| self.tally.sent(data.len()))
            .map_err(|err| error::from_moq(&err, self.context()))
    }

    /// Starts a new group, ending the open one if there is one; returns its group id.
    pub fn begin_group(&self) -> Result<u64> {
        self.require_stream("moq_publisher_begin_group")?;
        let mut track = self.lock();
        self.check_open()?;
        if let Some((group, _)) = track.open.take() {
            let _ = group.finish();
            self.group_open.store(false, Ordering::Release);
        }
        let group = self
            .producer
            .append_group()
            .map_err(|err| error::from_moq(&err, self.context()))?;
        let id = group.sequence;
        track.open = Some((group, 0));
        self.group_open.store(true, Ordering::Release);
        Ok(id)
    }

    /// Appends an object to the open group; returns its object id within the group.
    pub fn publish_object(&self, data: &[u8], timestamp_us: u64) -> Result<u64> {
        self.require_stream("moq_publish_object")?;
        let timestamp = timestamp(timestamp_us)?;
        self.admit(data.len(), DeliveryMode::Stream)?;
        crate::inject::check("publish");
        let payload = Bytes::copy_from_slice(data);
        let mut track = self.lock();
        self.check_open()?;
        let Some((group, count)) = track.open.as_mut() else {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "no group is open: call moq_publisher_begin_group first",
            ));
        };
        if *count >= MAX_GROUP_OBJECTS {
            return Err(Error::invalid_argument(format!(
                "group {} already holds {MAX_GROUP_OBJECTS} objects, the most a group can hold; begin a new group",
                group.sequence
            )));
        }
        group
            .write_frame(timestamp, payload)
            .map_err(|err| error::from_moq(&err, self.context()))?;
        let id = *count;
        *count += 1;
        drop(track);
        self.tally.sent(data.len());
        Ok(id)
    }

    /// Ends the open group.
    pub fn end_group(&self) -> Result<()> {
        let mut track = self.lock();
        self.check_open()?;
        match track.open.take() {
            Some((group, _)) => {
                self.group_open.store(false, Ordering::Release);
                group.finish().map_err(|err| error::from_moq(&err, self.context()))
            }
            None => Err(Error::new(ErrorKind::InvalidState, "no group is open")),
        }
    }

    fn require_stream(&self, what: &str) -> Result<()> {
        match self.options.mode {
            DeliveryMode::Stream => Ok(()),
            DeliveryMode::Datagram => Err(Error::new(
                ErrorKind::InvalidState,
                format!("{what} needs a stream-mode publisher; datagram publishers send single objects with moq_publish_data"),
            )),
        }
    }

    /// This publisher's counters, with the client's RTT.
    pub fn stats(&self) -> Snapshot {
        Snapshot {
            rtt_us: self.client.rtt_us(),
            ..self.tally.own.snapshot()
        }
    }

    /// Ends the track after the last group: subscribers see its end. Idempotent.
    pub fn finish(&self) {
        let mut track = self.lock();
        if self.closed.load(Ordering::Acquire) != OPEN {
            return;
        }
        if let Some((group, _)) = track.open.take() {
            let _ = group.finish();
            self.group_open.store(false, Ordering::Release);
        }
        self.closed.store(FINISHED, Ordering::Release);
        let _ = self.producer.finish();
    }

    /// Aborts the track with an application `code`: subscribers see an error carrying it.
    pub fn abort(&self, code: u16) -> Result<()> {
        let mut track = self.lock();
        self.check_open()?;
        if let Some((group, _)) = track.open.take() {
            let _ = group.abort(moq_net::Error::App(code));
            self.group_open.store(false, Ordering::Release);
        }
        self.closed.store(ABORTED, Ordering::Release);
        self.producer
            .clone()
            .abort(moq_net::Error::App(code))
            .map_err(|err| error::from_moq(&err, self.context()))
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.finish();
    }
}
