//! What the library reports to the application: objects with their metadata, subscription
//! status, connection state, announcements and catalogs. The same values travel either to a
//! callback (on the dispatcher thread) or into a client's poll queue ([`crate::core::poll`]).

use crate::core::catalog::Catalog;
use crate::core::config::DeliveryMode;
use crate::core::connection::ConnectionState;
use bytes::Bytes;
use std::sync::Arc;

/// Where an object sits in its track, and how it travelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The group's sequence number (for datagrams: the datagram's sequence).
    pub group_id: u64,
    /// The object's index within its group (0 for datagrams).
    pub object_id: u64,
    /// The publisher's timestamp in microseconds, or 0 when the negotiated protocol does not
    /// carry timestamps.
    pub timestamp_us: u64,
    /// How the object travelled.
    pub delivery_mode: DeliveryMode,
    /// The track's priority as the publisher declared it (higher is more urgent).
    pub priority: u8,
}

/// A subscription's lifecycle. `Subscribed` may repeat (after a resume); the other three are
/// terminal and reported exactly once, after which nothing more is reported for the subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionStatus {
    /// The subscription is live: objects follow.
    Subscribed,
    /// The namespace or track does not exist (terminal).
    NotFound,
    /// The publisher ended the track (terminal).
    Ended,
    /// The subscription failed (terminal); the message says why.
    Error,
}

impl SubscriptionStatus {
    /// Whether nothing follows this status.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Subscribed)
    }
}

/// One status report: what happened, the publisher's abort code if it gave one, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReport {
    pub status: SubscriptionStatus,
    /// The application code the publisher aborted the track with (`moq_publisher_abort`), else 0.
    pub code: u32,
    /// Human-readable detail; empty for `Subscribed`.
    pub message: String,
}

/// Something to report to the application, tagged with the source it belongs to.
#[derive(Clone, Debug)]
pub enum Event {
    /// An object of a subscription.
    Object { info: ObjectInfo, payload: Bytes },
    /// A subscription's status changed.
    Status(StatusReport),
    /// The client's connection state changed.
    Connection(ConnectionState),
    /// A namespace was announced (`active`) or withdrawn (`!active`).
    Announce { namespace: String, active: bool },
    /// A catalog subscription received a new catalog.
    Catalog(Arc<Catalog>),
}

impl Event {
    /// Whether a bounded queue may drop this event under pressure: only objects (and catalog
    /// updates, superseded by the next one) are droppable; status, connection and announcement
    /// events are always kept.
    pub fn is_droppable(&self) -> bool {
        matches!(self, Self::Object { .. } | Self::Catalog(_))
    }
}
