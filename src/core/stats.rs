//! Counters behind `moq_*_stats`: lock-free, shared by a client and its publishers/subscribers.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a subscription gave up and what it repaired, since it last reported (the sequencer's
/// `take_losses`, `subscribe/sequencer.rs`, which counts them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Losses {
    /// Groups that never arrived (a skipped sequence range counts every number in it).
    pub missing: u64,
    /// Groups delivered in part: their stream ended early and the rest could not be fetched.
    pub broken: u64,
    /// Groups given up at the buffer cap.
    pub overflow: u64,
    /// Groups fetched again after they were missed or broken on the way.
    pub repaired: u64,
}

impl Losses {
    /// Groups given up, whatever the reason.
    pub fn groups_lost(&self) -> u64 {
        self.missing.saturating_add(self.broken).saturating_add(self.overflow)
    }
}

/// Why an object was dropped instead of delivered or sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Arrived after later objects were delivered, or its gap timed out.
    TooLate,
    /// Published while the client had no session.
    Disconnected,
    /// A datagram arrived while the callback was a full window behind.
    QueueFull,
    /// Not published: the client's publish buffer was at its cap (overflow policy ERROR).
    Backpressure,
}

/// Monotonic counters of one object (client, publisher or subscriber).
#[derive(Debug, Default)]
pub struct Counters {
    objects_sent: AtomicU64,
    bytes_sent: AtomicU64,
    objects_received: AtomicU64,
    bytes_received: AtomicU64,
    dropped_too_late: AtomicU64,
    dropped_disconnected: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_backpressure: AtomicU64,
    reconnects: AtomicU64,
    groups_lost: AtomicU64,
    groups_repaired: AtomicU64,
    events_dropped: AtomicU64,
}

/// A copy of the counters at one moment, plus the session's RTT estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub objects_sent: u64,
    pub bytes_sent: u64,
    pub objects_received: u64,
    pub bytes_received: u64,
    pub dropped_too_late: u64,
    pub dropped_disconnected: u64,
    pub dropped_queue_full: u64,
    pub dropped_backpressure: u64,
    pub reconnects: u64,
    /// Groups a stream subscription gave up (never arrived, or ended early and could not be
    /// fetched again, or dropped at the buffer's cap): each counted once, a skipped sequence
    /// range by every number in it.
    pub groups_lost: u64,
    /// Groups fetched again after they were missed or broken on the way.
    pub groups_repaired: u64,
    /// Control events (status, catalog, announcement, connection state) dropped, or replaced by
    /// a newer one, because their callback or poll queue was full.
    pub events_dropped: u64,
    /// Bytes buffered by the client's publishers (client snapshots only).
    pub publish_buffered: u64,
    /// Smoothed round-trip time in microseconds; 0 when unknown (no session).
    pub rtt_us: u64,
}

impl Counters {
    pub fn sent(&self, bytes: usize) {
        self.objects_sent.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn received(&self, bytes: usize) {
        self.objects_received.fetch_add(1, Ordering::Relaxed);
        self.bytes_received.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn dropped(&self, why: DropReason, count: u64) {
        let counter = match why {
            DropReason::TooLate => &self.dropped_too_late,
            DropReason::Disconnected => &self.dropped_disconnected,
            DropReason::QueueFull => &self.dropped_queue_full,
            DropReason::Backpressure => &self.dropped_backpressure,
        };
        counter.fetch_add(count, Ordering::Relaxed);
    }

    pub fn reconnected(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn lost(&self, losses: &Losses) {
        self.groups_lost.fetch_add(losses.groups_lost(), Ordering::Relaxed);
        self.groups_repaired.fetch_add(losses.repaired, Ordering::Relaxed);
    }

    /// Counts control events a full callback queue dropped.
    pub fn events_dropped(&self, count: u64) {
        self.events_dropped.fetch_add(count, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Snapshot {
            objects_sent: read(&self.objects_sent),
            bytes_sent: read(&self.bytes_sent),
            objects_received: read(&self.objects_received),
            bytes_received: read(&self.bytes_received),
            dropped_too_late: read(&self.dropped_too_late),
            dropped_disconnected: read(&self.dropped_disconnected),
            dropped_queue_full: read(&self.dropped_queue_full),
            dropped_backpressure: read(&self.dropped_backpressure),
            reconnects: read(&self.reconnects),
            groups_lost: read(&self.groups_lost),
            groups_repaired: read(&self.groups_repaired),
            events_dropped: read(&self.events_dropped),
            publish_buffered: 0,
            rtt_us: 0,
        }
    }
}

/// Counts for an object and for the client it belongs to at once.
#[derive(Debug, Clone)]
pub struct Tally {
    pub own: std::sync::Arc<Counters>,
    pub client: std::sync::Arc<Counters>,
}

impl Tally {
    pub fn new(client: std::sync::Arc<Counters>) -> Self {
        Self {
            own: Default::default(),
            client,
        }
    }

    pub fn sent(&self, bytes: usize) {
        self.own.sent(bytes);
        self.client.sent(bytes);
    }

    pub fn received(&self, bytes: usize) {
        self.own.received(bytes);
        self.client.received(bytes);
    }

    pub fn dropped(&self, why: DropReason, count: u64) {
        self.own.dropped(why, count);
        self.client.dropped(why, count);
    }

    /// What a subscription gave up and repaired (nothing to do when both are zero).
    pub(crate) fn lost(&self, losses: &Losses) {
        if losses.groups_lost() == 0 && losses.repaired == 0 {
            return;
        }
        tracing::debug!(?losses, "subscription losses");
        self.own.lost(losses);
        self.client.lost(losses);
    }

    /// Counts control events a full callback queue dropped.
    pub fn events_dropped(&self, count: u64) {
        self.own.events_dropped(count);
        self.client.events_dropped(count);
    }
}
