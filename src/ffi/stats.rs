//! Statistics: `moq_client_stats`, `moq_publisher_stats`, `moq_subscriber_stats`.

use super::boundary::{enter, lookup, ok, CLIENTS, PUBLISHERS, SUBSCRIBERS};
use super::types::*;
use crate::core::stats::Snapshot;
use crate::error::{Error, Result};

/// Counters of a client (totals over its publishers and subscribers), a publisher or a
/// subscriber. Set `struct_size = sizeof(MoqStats)` before the call; fields are only appended.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MoqStats {
    /// Must be `sizeof(MoqStats)` of the caller's header.
    pub struct_size: u32,
    /// Objects published (accepted for sending).
    pub objects_sent: u64,
    /// Payload bytes published.
    pub bytes_sent: u64,
    /// Objects delivered to a callback or queued for `moq_poll`.
    pub objects_received: u64,
    /// Payload bytes delivered to a callback or queued for `moq_poll`.
    pub bytes_received: u64,
    /// Objects dropped because they arrived too late (after later objects were delivered, their
    /// gap in the sequence timed out, or they waited longer than the subscription's
    /// `max_latency_ms`).
    pub objects_dropped_too_late: u64,
    /// Objects not sent because the client had no session (publish returned NOT_CONNECTED).
    pub objects_dropped_disconnected: u64,
    /// Objects dropped by a full queue: datagrams while the callbacks were 1024 objects behind,
    /// and objects a poll-mode subscription's queue dropped per its `queue_policy`.
    pub objects_dropped_queue_full: u64,
    /// Times the client reconnected after losing its session.
    pub reconnects: u64,
    /// Smoothed round-trip time to the relay in microseconds; 0 without a session.
    pub rtt_us: u64,
    /// Objects refused with `MOQ_ERROR_WOULD_BLOCK` because the publish buffer was at its cap.
    pub objects_dropped_backpressure: u64,
    /// Bytes the client's publishers hold buffered now (client stats only; 0 otherwise).
    pub publish_buffered_bytes: u64,
    /// Groups a stream subscription gave up, each counted once: a group that never arrived
    /// (later groups did, and neither waiting nor fetching it again brought it), a group whose
    /// stream ended early and whose rest could not be fetched again (its objects that did
    /// arrive were delivered), or a group dropped to keep the subscription within its buffer
    /// cap. A skipped range of sequence numbers counts every number in it. Zero for a
    /// subscription that delivered everything it was promised.
    pub groups_lost: u64,
    /// Groups a stream subscription fetched again from the relay after they were missed or cut
    /// short on the way (moq-lite-05+ and moq-transport), then delivered in order.
    pub groups_repaired: u64,
    /// Events other than objects (subscription statuses, catalogs, announcements, connection
    /// states) not delivered because their callback fell 1024 events behind (per object), or
    /// the `moq_poll` control queue was full. Catalogs and connection states are replaced by
    /// the newest one, which is always delivered; terminal statuses are never dropped. Client
    /// stats count every drop of the client, subscriber stats that subscriber's.
    pub events_dropped: u64,
}

/// `sizeof(MoqStats)` of the first release (fields up to `rtt_us`).
const STATS_SIZE_V1: usize = std::mem::offset_of!(MoqStats, objects_dropped_backpressure);
/// `sizeof(MoqStats)` of the second release, 0.2.0 (fields up to `publish_buffered_bytes`).
const STATS_SIZE_V2: usize = std::mem::offset_of!(MoqStats, groups_lost);
const KNOWN_STATS_SIZES: [usize; 3] = [STATS_SIZE_V1, STATS_SIZE_V2, std::mem::size_of::<MoqStats>()];

/// Writes `snapshot` into the caller's struct after checking its `struct_size`.
///
/// # Safety
/// `out` is NULL or points to a writable `MoqStats` of at least `struct_size` bytes.
unsafe fn write_stats(out: *mut MoqStats, snapshot: Snapshot) -> Result<()> {
    if out.is_null() {
        return Err(Error::invalid_argument("stats is NULL"));
    }
    // SAFETY: non-NULL and, per the contract, starts with a readable `struct_size`.
    let size = unsafe { std::ptr::read_unaligned(out.cast::<u32>()) } as usize;
    if !KNOWN_STATS_SIZES.contains(&size) {
        return Err(Error::invalid_argument(format!(
            "stats->struct_size is {size}; expected sizeof(MoqStats) = {}",
            std::mem::size_of::<MoqStats>()
        )));
    }
    let stats = MoqStats {
        struct_size: size as u32,
        objects_sent: snapshot.objects_sent,
        bytes_sent: snapshot.bytes_sent,
        objects_received: snapshot.objects_received,
        bytes_received: snapshot.bytes_received,
        objects_dropped_too_late: snapshot.dropped_too_late,
        objects_dropped_disconnected: snapshot.dropped_disconnected,
        objects_dropped_queue_full: snapshot.dropped_queue_full,
        reconnects: snapshot.reconnects,
        rtt_us: snapshot.rtt_us,
        objects_dropped_backpressure: snapshot.dropped_backpressure,
        publish_buffered_bytes: snapshot.publish_buffered,
        groups_lost: snapshot.groups_lost,
        groups_repaired: snapshot.groups_repaired,
        events_dropped: snapshot.events_dropped,
    };
    // Only the caller's `size` bytes: an older, smaller struct gets its own fields.
    // SAFETY: `out` points to `size` writable bytes (checked to be a known layout size, at most
    // `size_of::<MoqStats>()`), and `stats` is a local that cannot overlap it.
    unsafe { std::ptr::copy_nonoverlapping((&stats as *const MoqStats).cast::<u8>(), out.cast::<u8>(), size) };
    Ok(())
}

/// Fills `stats` with the client's totals (all its publishers and subscribers), reconnect
/// count and current RTT. Thread-safe, never blocks. Errors: INVALID_HANDLE, INVALID_ARGUMENT
/// (NULL `stats` or unknown `struct_size`).
///
/// # Safety
/// `stats` is NULL or points to a writable `MoqStats` whose `struct_size` is set.
#[no_mangle]
pub unsafe extern "C" fn moq_client_stats(client: *const MoqClient, stats: *mut MoqStats) -> MoqResult {
    enter("moq_client_stats", || {
        let snapshot = lookup(&CLIENTS, client)?.stats();
        // SAFETY: forwarded from this function's contract.
        unsafe { write_stats(stats, snapshot) }?;
        Ok(ok())
    })
}

/// Fills `stats` with the publisher's counters (objects/bytes sent, drops while disconnected)
/// and the client's RTT. Thread-safe, never blocks.
///
/// # Safety
/// `stats` is NULL or points to a writable `MoqStats` whose `struct_size` is set.
#[no_mangle]
pub unsafe extern "C" fn moq_publisher_stats(publisher: *const MoqPublisher, stats: *mut MoqStats) -> MoqResult {
    enter("moq_publisher_stats", || {
        let snapshot = lookup(&PUBLISHERS, publisher)?.stats();
        // SAFETY: forwarded from this function's contract.
        unsafe { write_stats(stats, snapshot) }?;
        Ok(ok())
    })
}

/// Fills `stats` with the subscriber's counters (objects/bytes delivered, drops too late or
/// with a full queue, groups lost and repaired) and the client's RTT. Thread-safe, never blocks.
///
/// # Safety
/// `stats` is NULL or points to a writable `MoqStats` whose `struct_size` is set.
#[no_mangle]
pub unsafe extern "C" fn moq_subscriber_stats(subscriber: *const MoqSubscriber, stats: *mut MoqStats) -> MoqResult {
    enter("moq_subscriber_stats", || {
        let snapshot = lookup(&SUBSCRIBERS, subscriber)?.stats();
        // SAFETY: forwarded from this function's contract.
        unsafe { write_stats(stats, snapshot) }?;
        Ok(ok())
    })
}
