//! Puts groups back in sequence order.
//!
//! Groups travel on their own QUIC streams, so they can arrive out of order. Completed groups
//! wait here until every lower sequence has been delivered, was a datagram (datagrams share the
//! sequence space), or stayed missing for the gap timeout (a lost datagram, a group the
//! publisher no longer has, or one older than the subscriber's latency bound).

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

/// A group being received: the objects not yet delivered, and whether it is complete.
#[derive(Default)]
struct Pending {
    objects: Vec<Object>,
    complete: bool,
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

    /// Starts receiving group `sequence`; false when it is not wanted: late (below the cursor,
    /// counted when its objects arrive) or replayed from before the subscription (ignored).
    pub fn open(&mut self, sequence: u64) -> bool {
        if std::mem::take(&mut self.adopt_first) {
            self.start = sequence;
            self.next = sequence;
            self.latest_known = Some(sequence);
        }
        if sequence >= self.next {
            self.pending.entry(sequence).or_default();
            true
        } else {
            if sequence < self.start {
                tracing::debug!(sequence, start = self.start, "replayed group ignored");
            } else {
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
            Some(pending) if !pending.complete => pending.objects.push(object),
            _ if object.group >= self.start => self.late += 1,
            _ => {}
        }
    }

    /// Marks group `sequence` complete: nothing more will arrive for it.
    pub fn complete(&mut self, sequence: u64) {
        if let Some(pending) = self.pending.get_mut(&sequence) {
            pending.complete = true;
        }
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

    /// When the current gap times out, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.gap_since.map(|since| since + self.gap_timeout())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(group: u64, byte: u8) -> Object {
        Object {
            group,
            index: 0,
            timestamp_us: 0,
            payload: Bytes::from(vec![byte]),
            arrived: Instant::now(),
        }
    }

    fn bytes(reorder: &mut Reorder, now: Instant) -> Vec<u8> {
        reorder.ready(now).iter().map(|o| o.payload[0]).collect()
    }

    #[test]
    fn window_cost_counts_objects_and_bytes() {
        use crate::core::subscribe::{window_cost, WINDOW, WINDOW_BYTES};
        assert_eq!(window_cost(0), 1);
        assert_eq!(window_cost(64 << 10), 1);
        assert_eq!(window_cost((64 << 10) + 1), 2);
        assert_eq!(window_cost(WINDOW_BYTES), WINDOW as u32);
        assert_eq!(
            window_cost(usize::MAX / 2),
            WINDOW as u32,
            "never more than the whole window"
        );
    }

    #[test]
    fn reorders_groups_into_sequence_order() {
        let now = Instant::now();
        let mut reorder = Reorder::new(0);
        reorder.group(1, vec![object(1, 1)]);
        assert_eq!(bytes(&mut reorder, now), Vec::<u8>::new(), "group 1 waits for group 0");
        reorder.group(0, vec![object(0, 0)]);
        assert_eq!(bytes(&mut reorder, now), vec![0, 1]);
        reorder.group(2, vec![object(2, 2), object(2, 22)]);
        assert_eq!(bytes(&mut reorder, now), vec![2, 22]);
    }

    #[test]
    fn datagram_sequences_do_not_hold_back_streams() {
        let now = Instant::now();
        let mut reorder = Reorder::new(5);
        reorder.group(7, vec![object(7, 7)]);
        reorder.group(5, vec![object(5, 5)]);
        assert_eq!(bytes(&mut reorder, now), vec![5]);
        assert!(reorder.datagram(6));
        assert_eq!(bytes(&mut reorder, now), vec![7]);
        assert!(
            !reorder.datagram(4),
            "a datagram from before the subscription is not delivered"
        );
    }

    #[test]
    fn late_groups_are_dropped_and_gaps_time_out() {
        let start = Instant::now();
        let mut reorder = Reorder::new(3);
        reorder.group(2, vec![object(2, 2)]);
        reorder.group(5, vec![object(5, 5)]);
        assert_eq!(bytes(&mut reorder, start), Vec::<u8>::new());
        assert_eq!(reorder.deadline(), Some(start + GAP_TIMEOUT));
        assert_eq!(bytes(&mut reorder, start + GAP_TIMEOUT / 2), Vec::<u8>::new());
        assert_eq!(bytes(&mut reorder, start + GAP_TIMEOUT), vec![5]);
        assert_eq!(
            reorder.take_late(),
            2,
            "group 2 predates the subscription; 3 and 4 were skipped"
        );
        assert_eq!(reorder.take_late(), 0);
        assert_eq!(reorder.deadline(), None);
    }

    #[test]
    fn open_groups_deliver_as_objects_arrive() {
        let now = Instant::now();
        let mut reorder = Reorder::new(0);
        assert!(reorder.open(0));
        reorder.object(object(0, 1));
        assert_eq!(bytes(&mut reorder, now), vec![1], "the current group streams");
        assert!(reorder.open(1));
        reorder.object(object(1, 10));
        reorder.complete(1);
        reorder.object(Object {
            index: 1,
            ..object(0, 2)
        });
        assert_eq!(
            bytes(&mut reorder, now),
            vec![2],
            "group 1 waits for group 0 to complete"
        );
        reorder.complete(0);
        assert_eq!(bytes(&mut reorder, now), vec![10]);
        assert!(!reorder.open(0), "a finished group is not reopened");
    }

    #[test]
    fn a_resumed_group_skips_the_objects_already_delivered() {
        let now = Instant::now();
        let mut first = Reorder::new(0);
        first.open(0);
        first.object(Object {
            index: 0,
            ..object(0, 1)
        });
        first.object(Object {
            index: 1,
            ..object(0, 2)
        });
        assert_eq!(bytes(&mut first, now), vec![1, 2]);
        assert_eq!(first.position(), (0, 2), "group 0 is open with two objects delivered");

        // The session drops; the new one replays group 0 from its start.
        let mut resumed = Reorder::new(0);
        (resumed.next, resumed.next_index) = first.position();
        resumed.open(0);
        for (index, byte) in [(0, 1), (1, 2), (2, 3)] {
            resumed.object(Object {
                index,
                ..object(0, byte)
            });
        }
        resumed.complete(0);
        assert_eq!(bytes(&mut resumed, now), vec![3], "only the object not yet delivered");
    }

    #[test]
    fn a_stalled_open_group_is_given_up_after_the_gap_timeout() {
        let start = Instant::now();
        let mut reorder = Reorder::new(0);
        reorder.latest_known = Some(0); // where the track stood is known: the long timeout applies
        reorder.open(0);
        reorder.object(object(0, 1));
        reorder.group(1, vec![object(1, 2)]);
        assert_eq!(bytes(&mut reorder, start), vec![1]);
        assert_eq!(bytes(&mut reorder, start + GAP_TIMEOUT / 2), Vec::<u8>::new());
        assert_eq!(bytes(&mut reorder, start + GAP_TIMEOUT), vec![2]);
        reorder.object(Object {
            index: 1,
            ..object(0, 3)
        });
        assert_eq!(reorder.take_late(), 1, "an object of the abandoned group is late");
    }

    #[test]
    fn the_latency_bound_shortens_the_gap_timeout() {
        let start = Instant::now();
        let mut reorder = Reorder::new(0);
        reorder.max_latency = Some(Duration::from_millis(100));
        reorder.group(2, vec![object(2, 2)]);
        assert_eq!(bytes(&mut reorder, start), Vec::<u8>::new());
        assert_eq!(bytes(&mut reorder, start + Duration::from_millis(100)), vec![2]);
        assert_eq!(reorder.take_late(), 2);
    }
}
