//! Puts groups back in sequence order, and says which missing groups to fetch.
//!
//! Groups travel on their own QUIC streams, so they can arrive out of order. Completed groups
//! wait here until every lower sequence has been delivered, was a datagram (datagrams share the
//! sequence space), or stayed missing for the gap timeout (a lost datagram, a group the
//! publisher no longer has, or one older than the subscriber's latency bound).
//!
//! A group can also be lost on the way: a relay that switches its upstream route (a cluster
//! peer connecting, a reconnect upstream) cancels the groups in flight on the old route and
//! starts the new one after them. Where the protocol can fetch, such groups are repaired: a
//! missing sequence below a group that arrived [`REPAIR_AFTER`] ago, or a group whose stream
//! ended with an error, is fetched once from the relay (which still holds it, or asks the
//! publisher); what the relay cannot serve is skipped at once instead of after the gap timeout.

use crate::core::publish::RETENTION;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// One object as received: where it sits, its timestamp and when it arrived here.
#[derive(Clone, Debug)]
pub(crate) struct Object {
    pub group: u64,
    pub index: u64,
    pub timestamp_us: u64,
    pub payload: Bytes,
    pub arrived: Instant,
}

/// How long a missing sequence may hold back later groups before it is skipped: the
/// publisher's retention, past which a missing group can no longer arrive. It must be long:
/// under load moq-lite sends newer groups first, so an older group can trail for seconds.
pub(crate) const GAP_TIMEOUT: Duration = RETENTION;
/// The gap timeout where a gap most likely never fills: on a track that also carries datagrams
/// (a lost datagram never arrives), and before the first delivery when the session did not know
/// where the track stood (on moq-lite-01..05 the relay's subscription to the publisher starts at
/// the publisher's newest group, so the groups before it never come).
pub(crate) const SHORT_GAP_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a later group must have been here before a missing lower one is fetched: longer
/// than a burst's newest-first reordering usually delays an older group, far shorter than
/// [`GAP_TIMEOUT`].
pub(crate) const REPAIR_AFTER: Duration = Duration::from_secs(1);
/// How far past the cursor missing sequences are looked for, per scan.
const REPAIR_SCAN: u64 = 1024;
/// How often the waiting groups are scanned for lost ones, unless a repair just ended or a
/// group broke (a scan on every object would cost more than the burst it looks at).
const REPAIR_SCAN_EVERY: Duration = Duration::from_millis(100);
/// How many repaired sequences are remembered, so their second copy is ignored quietly.
const REPAIRED_MEMORY: usize = 4096;

/// A group being received: the objects not yet delivered, and whether it is complete.
struct Pending {
    objects: Vec<Object>,
    complete: bool,
    /// The index the next new object has; lower ones are copies (a repair and the
    /// subscription can both carry the group).
    received: u64,
    /// Streams reading the group now (the subscription's, a repair's).
    readers: u32,
    /// Every reader ended with an error before the group completed: waiting for a repair.
    broken: bool,
    /// When the group first arrived.
    opened: Instant,
}

impl Pending {
    fn new(opened: Instant) -> Self {
        Self {
            objects: Vec::new(),
            complete: false,
            received: 0,
            readers: 0,
            broken: false,
            opened,
        }
    }
}

pub(crate) struct Reorder {
    /// The first sequence this subscription delivers.
    pub start: u64,
    /// The newest sequence the session knew of when the subscription went live.
    pub latest_known: Option<u64>,
    pub next: u64,
    /// Objects of group `next` with a lower index were delivered already (it streams while open;
    /// after a resume the group may arrive again from its start).
    pub next_index: u64,
    pending: BTreeMap<u64, Pending>,
    datagrams: BTreeSet<u64>,
    gap_since: Option<Instant>,
    /// Whether the track carries datagrams too.
    pub mixed: bool,
    /// The subscriber's latency bound, which also bounds how long a gap may hold delivery.
    pub max_latency: Option<Duration>,
    /// Start at whatever group arrives first (LATEST on a track whose newest group was not
    /// known when the subscription went live).
    pub adopt_first: bool,
    /// Objects dropped as too late since the last [`Reorder::take_late`].
    late: u64,
    /// Whether lost groups may be fetched (the session's protocol can fetch).
    pub repair: bool,
    /// Sequences fetched (or being fetched): each is fetched once.
    repaired: BTreeSet<u64>,
    /// Sequences the relay could not serve: skipped when the cursor reaches them.
    gone: BTreeSet<u64>,
    /// When a later group becomes old enough to make a missing sequence worth fetching.
    repair_wake: Option<Instant>,
    /// No scan before this, unless `rescan`.
    scan_after: Option<Instant>,
    /// Scan at the next call: a group broke, or a repair ended.
    rescan: bool,
}

impl Reorder {
    pub fn new(next: u64) -> Self {
        Self {
            start: next,
            latest_known: next.checked_sub(1),
            next,
            next_index: 0,
            pending: BTreeMap::new(),
            datagrams: BTreeSet::new(),
            gap_since: None,
            mixed: false,
            max_latency: None,
            adopt_first: false,
            late: 0,
            repair: false,
            repaired: BTreeSet::new(),
            gone: BTreeSet::new(),
            repair_wake: None,
            scan_after: None,
            rescan: false,
        }
    }

    /// Records a datagram's sequence so the stream order can pass it; false for a datagram
    /// from before the subscription's start (replayed from the track's cache).
    pub fn datagram(&mut self, sequence: u64) -> bool {
        self.mixed = true;
        if sequence >= self.next {
            self.datagrams.insert(sequence);
        }
        sequence >= self.start
    }

    /// Starts receiving group `sequence` on one more stream; false when it is not wanted: late
    /// (below the cursor), replayed from before the subscription, or a repaired group's copy.
    pub fn open(&mut self, sequence: u64) -> bool {
        self.open_at(sequence, Instant::now())
    }

    pub fn open_at(&mut self, sequence: u64, now: Instant) -> bool {
        if std::mem::take(&mut self.adopt_first) {
            self.start = sequence;
            self.next = sequence;
            self.latest_known = Some(sequence);
        }
        if sequence >= self.next {
            self.gone.remove(&sequence);
            self.rescan |= self.repaired.contains(&sequence);
            let pending = self.pending.entry(sequence).or_insert_with(|| Pending::new(now));
            pending.readers += 1;
            pending.broken = false;
            true
        } else {
            if sequence < self.start {
                tracing::debug!(sequence, start = self.start, "replayed group ignored");
            } else if !self.repaired.contains(&sequence) {
                tracing::debug!(sequence, next = self.next, "late group dropped");
            }
            false
        }
    }

    /// Adds an object of an open group (objects arrive in order within their group).
    pub fn object(&mut self, object: Object) {
        if object.group == self.next && object.index < self.next_index {
            return; // Delivered before a resume.
        }
        match self.pending.get_mut(&object.group) {
            // A copy (lower index) or a complete group's: already have it.
            Some(pending) if !pending.complete && object.index >= pending.received => {
                pending.received = object.index + 1;
                pending.objects.push(object);
            }
            Some(_) => {}
            None if self.repaired.contains(&object.group) => {}
            None if object.group >= self.start => self.late += 1,
            None => {}
        }
    }

    /// Marks group `sequence` complete: nothing more will arrive for it.
    pub fn complete(&mut self, sequence: u64) {
        if let Some(pending) = self.pending.get_mut(&sequence) {
            pending.complete = true;
        }
    }

    /// One stream of group `sequence` ended with an error. Once no stream reads it any more,
    /// the group waits for a repair, or (repair impossible or tried) counts as complete.
    pub fn failed(&mut self, sequence: u64) {
        let repairable = self.repair && !self.repaired.contains(&sequence);
        if let Some(pending) = self.pending.get_mut(&sequence) {
            pending.readers = pending.readers.saturating_sub(1);
            if pending.readers == 0 && !pending.complete {
                match repairable {
                    true => {
                        pending.broken = true;
                        self.rescan = true;
                    }
                    false => pending.complete = true,
                }
            }
        }
    }

    /// The relay could not serve the repair of `sequence`: skip it (or end the broken group
    /// with what it has) instead of waiting out the gap timeout.
    pub fn unrepairable(&mut self, sequence: u64) {
        self.rescan = true;
        match self.pending.get_mut(&sequence) {
            Some(pending) if pending.readers == 0 => pending.complete = true,
            Some(_) => {}
            None if sequence >= self.next => {
                self.gone.insert(sequence);
            }
            None => {}
        }
    }

    /// The sequences to fetch now, at most `room`, each once: broken groups, and missing
    /// sequences below a group that has waited [`REPAIR_AFTER`]. Also sets when to look again
    /// (never in the past, so the reader does not spin).
    pub fn repairs(&mut self, now: Instant, room: usize) -> Vec<u64> {
        let mut due = Vec::new();
        let resting = self.scan_after.is_some_and(|after| now < after) && !self.rescan;
        if !self.repair || room == 0 || self.pending.is_empty() || resting {
            if self.repair_wake.is_some_and(|wake| wake <= now) || self.pending.is_empty() {
                self.repair_wake = None;
            }
            // Delivery is stuck and a group came in since the last scan: look again soon.
            if resting && self.repair_wake.is_none() && self.gap_since.is_some() {
                self.repair_wake = self.scan_after;
            }
            return due;
        }
        self.rescan = false;
        let scan_after = now + REPAIR_SCAN_EVERY;
        self.scan_after = Some(scan_after);
        self.repair_wake = None;
        let horizon = self.next.saturating_add(REPAIR_SCAN);
        let broken = self.pending.range(..horizon).filter(|(_, p)| p.broken).map(|(s, _)| *s);
        due.extend(broken.filter(|s| !self.repaired.contains(s)).take(room));
        // Gaps: not on a track with datagrams (a lost datagram cannot be fetched) nor before
        // the start is known (the groups before the first one were never asked for).
        let start_unknown = self.latest_known.is_none() && self.next == self.start;
        if !self.mixed && !start_unknown {
            // Missing sequences below the highest group that has waited long enough.
            let mut overdue_below = None;
            for (&sequence, pending) in self.pending.range(..horizon) {
                let ripe = pending.opened + REPAIR_AFTER;
                if ripe <= now {
                    overdue_below = Some(sequence);
                } else if self.repair_wake.is_none_or(|wake| ripe < wake) {
                    self.repair_wake = Some(ripe.max(scan_after));
                }
            }
            if let Some(limit) = overdue_below {
                let missing = (self.next..limit).filter(|s| {
                    !self.pending.contains_key(s)
                        && !self.datagrams.contains(s)
                        && !self.gone.contains(s)
                        && !self.repaired.contains(s)
                });
                let left = room.saturating_sub(due.len());
                due.extend(missing.take(left));
            }
        }
        self.repaired.extend(due.iter().copied());
        while self.repaired.len() > REPAIRED_MEMORY {
            self.repaired.pop_first();
        }
        due
    }

    /// Adds a whole group at once.
    #[cfg(test)]
    pub fn group(&mut self, sequence: u64, objects: Vec<Object>) {
        if self.open(sequence) {
            for object in objects {
                self.object(object);
            }
            self.complete(sequence);
        } else if sequence >= self.start {
            self.late += objects.len() as u64;
        }
    }

    /// The objects that may be delivered now, in order: everything received of the current
    /// group, and each following group once the one before it is complete.
    pub fn ready(&mut self, now: Instant) -> Vec<Object> {
        let mut out = Vec::new();
        loop {
            if let Some(pending) = self.pending.get_mut(&self.next) {
                if let Some(last) = pending.objects.last() {
                    self.next_index = last.index + 1;
                    out.append(&mut pending.objects);
                    self.gap_since = None;
                }
                if pending.complete {
                    self.pending.remove(&self.next);
                    self.advance();
                    continue;
                }
                // The current group is still open. It holds back later groups only as long
                // as a gap would: a publisher does not leave a group open once it has moved on.
                let Some(&later) = self.pending.range(self.next + 1..).next().map(|(s, _)| s) else {
                    self.gap_since = None;
                    break;
                };
                if !self.gap_expired(now) {
                    break;
                }
                tracing::debug!(group = self.next, "giving up on an incomplete group");
                self.pending.remove(&self.next);
                self.skip_to(later);
                continue;
            }
            if self.datagrams.remove(&self.next) {
                self.advance();
                continue;
            }
            if self.gone.remove(&self.next) {
                tracing::debug!(group = self.next, "skipping a group the relay no longer has");
                self.late += 1;
                self.advance();
                continue;
            }
            // A gap: wait for it, unless it has been missing too long.
            let Some(&lowest) = self.pending.keys().next() else {
                break;
            };
            if !self.gap_expired(now) {
                break;
            }
            tracing::debug!(from = self.next, to = lowest, "skipping a sequence gap");
            let missing = (self.next..lowest).filter(|s| !self.datagrams.contains(s)).count();
            self.late += missing as u64;
            self.skip_to(lowest);
        }
        out
    }

    /// Where delivery stands: the next group and the objects of it already delivered.
    pub fn position(&self) -> (u64, u64) {
        (self.next, self.next_index)
    }

    fn advance(&mut self) {
        self.next += 1;
        self.next_index = 0;
        self.gap_since = None;
    }

    fn skip_to(&mut self, sequence: u64) {
        self.next = sequence;
        self.next_index = 0;
        self.gap_since = None;
        self.datagrams.retain(|s| *s >= sequence);
        self.gone.retain(|s| *s >= sequence);
    }

    /// Starts the gap clock if needed; whether the gap has lasted its timeout.
    fn gap_expired(&mut self, now: Instant) -> bool {
        let since = *self.gap_since.get_or_insert(now);
        now.duration_since(since) >= self.gap_timeout()
    }

    /// How many objects (or whole missing groups) were dropped as too late since the last call.
    pub fn take_late(&mut self) -> u64 {
        std::mem::take(&mut self.late)
    }

    fn gap_timeout(&self) -> Duration {
        let start_unknown = self.latest_known.is_none() && self.next == self.start;
        let timeout = if self.mixed || start_unknown {
            SHORT_GAP_TIMEOUT
        } else {
            GAP_TIMEOUT
        };
        self.max_latency.map_or(timeout, |bound| bound.min(timeout))
    }

    /// When to look at the gaps again: the current gap's timeout, or the moment a missing
    /// sequence becomes worth fetching, whichever comes first.
    pub fn deadline(&self) -> Option<Instant> {
        let gap = self.gap_since.map(|since| since + self.gap_timeout());
        match (gap, self.repair_wake) {
            (Some(gap), Some(wake)) => Some(gap.min(wake)),
            (gap, wake) => gap.or(wake),
        }
    }
}

#[cfg(test)]
mod tests;
