//! Publishers: one track of one broadcast, written one object at a time.
//!
//! Stream mode writes each object as its own group (reliable, ordered); datagram mode sends it
//! as a QUIC datagram (lossy, latest value). Writing never waits for the network: objects are
//! handed to moq-net's per-track cache and sent by the session in the background.

use crate::core::client::Client;
use crate::core::config::{self, MAX_DATAGRAM_SIZE, MAX_OBJECT_SIZE};
use crate::core::stats::{DropReason, Snapshot, Tally};
use crate::error::{self, Error, ErrorKind, Result};
use bytes::Bytes;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How an object travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    /// One QUIC datagram: lossy, unordered, small (at most [`MAX_DATAGRAM_SIZE`] bytes).
    Datagram,
    /// One QUIC stream per object: reliable and in order.
    Stream,
}

/// How long the publisher keeps groups for subscribers that are behind. Subscribers reading
/// reliably lose nothing unless they fall this far behind.
pub const RETENTION: Duration = Duration::from_secs(30);

/// Publishes objects on one track.
pub struct Publisher {
    client: Arc<Client>,
    namespace: String,
    track_name: String,
    default_mode: DeliveryMode,
    track: Mutex<moq_net::track::Producer>,
    tally: Tally,
}

impl Publisher {
    /// Creates the track `track_name` in `namespace`, announcing the namespace on first use.
    pub fn new(client: &Arc<Client>, namespace: &str, track_name: &str, mode: DeliveryMode) -> Result<Self> {
        config::check_namespace(namespace)?;
        config::check_name("track_name", track_name)?;
        let broadcast = client.broadcast(namespace)?;
        let info = moq_net::track::Info::default().with_max_age(RETENTION);
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
            default_mode: mode,
            track: Mutex::new(track),
            tally: client.tally(),
        })
    }

    /// The mode given at creation.
    pub fn default_mode(&self) -> DeliveryMode {
        self.default_mode
    }

    /// Publishes one object in `mode`. Never blocks on the network.
    pub fn publish(&self, data: &[u8], mode: DeliveryMode) -> Result<()> {
        match mode {
            DeliveryMode::Stream if data.len() > MAX_OBJECT_SIZE => {
                return Err(Error::invalid_argument(format!(
                    "data_len {} exceeds the maximum object size of {MAX_OBJECT_SIZE} bytes",
                    data.len()
                )))
            }
            DeliveryMode::Datagram if data.len() > MAX_DATAGRAM_SIZE => {
                return Err(Error::invalid_argument(format!(
                    "data_len {} exceeds the datagram maximum of {MAX_DATAGRAM_SIZE} bytes; publish it with MOQ_DELIVERY_STREAM",
                    data.len()
                )))
            }
            _ => {}
        }
        let session = self.client.session("publishing").inspect_err(|_| {
            self.tally.dropped(DropReason::Disconnected, 1);
        })?;
        if mode == DeliveryMode::Datagram && !carries_datagrams(session.version) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the negotiated protocol {} cannot carry datagrams (needs moq-lite-05 or later, or moq-transport); use MOQ_DELIVERY_STREAM",
                    session.version.map_or_else(|| "(unknown)".to_string(), |v| v.to_string())
                ),
            ));
        }
        crate::inject::check("publish");
        let payload = Bytes::copy_from_slice(data);
        let timestamp = moq_net::Timestamp::now();
        let mut track = self.track.lock().unwrap_or_else(PoisonError::into_inner);
        let written = match mode {
            DeliveryMode::Stream => track.write_frame(timestamp, payload),
            DeliveryMode::Datagram => track.append_datagram(timestamp, payload).map(drop),
        };
        written.map(|()| self.tally.sent(data.len())).map_err(|err| {
            error::from_moq(
                &err,
                format!("publishing on \"{}/{}\"", self.namespace, self.track_name),
            )
        })
    }

    /// This publisher's counters, with the client's RTT.
    pub fn stats(&self) -> Snapshot {
        Snapshot {
            rtt_us: self.client.rtt_us(),
            ..self.tally.own.snapshot()
        }
    }

    /// Ends the track: subscribers see its end.
    pub fn finish(&self) {
        let track = self.track.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = track.finish();
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Whether `version` has a datagram encoding (moq-lite-05+ and every moq-transport draft).
fn carries_datagrams(version: Option<moq_net::Version>) -> bool {
    let Some(version) = version else { return false };
    let name = version.to_string();
    match name.strip_prefix("moq-lite-") {
        Some(number) => number
            .split('-')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 5),
        None => true,
    }
}
