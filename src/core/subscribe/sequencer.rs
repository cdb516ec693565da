//! The order and the loss accounting of one stream subscription: a pure state machine.
//!
//! Groups travel on their own streams, so they arrive out of order, may stop early (a relay's
//! route switch, a cache eviction, a lost session) or never come at all. The network code feeds
//! the [`Sequencer`] what arrives and asks it what to deliver ([`Sequencer::ready`]), which groups
//! to fetch again ([`Sequencer::take_repairs`]) and when to look next
//! ([`Sequencer::deadline`]); the clock is passed in, nothing here waits or does I/O.
//!
//! Every group at or after the start leaves one way: its objects delivered once, in sequence
//! order, or the group counted once in [`Losses`] with its reason. Per group:
//!
//! - *receiving → complete*: delivered as its objects arrive (a group streams while open);
//! - *broken* (its stream ended early) → *repairing* (fetched again from the first object not yet
//!   received) → *complete*, or *lost* when the relay does not have it or the repair cannot happen;
//! - *missing* (a later group arrived) → *repairing* once it stayed missing for the repair delay →
//!   *arrived*, or *lost* when the relay does not have it or the gap timeout runs out.
//!
//! A fetch that is interrupted (its session was lost, the relay restarted, the fetch stream
//! broke) is not an answer: the group goes back to waiting and is fetched again, from the first
//! object still missing, after a backoff, until [`Limits::repair_timeout`] after its first fetch.
//!
//! A live subscription that goes quiet is *probed*: after [`PROBE_FIRST`] without anything from
//! the live subscription, the group after the newest one known is asked for. A relay that has
//! it proves the live subscription stalled (a relay's route switch that forwarded nothing more, a
//! subscription stuck on the way): the group is fetched like a broken one, and the groups after
//! it are asked for in turn ([`PROBE_PIPELINE`] at a time) until the relay has no newer one, so a
//! stalled subscription still delivers everything the relay holds, in order, a probe interval
//! late (the next round comes [`PROBE_FIRST`] after one that found groups). A relay that does
//! not have it is no loss (the publisher is quiet): the next probe waits twice as long, up to
//! [`PROBE_MAX`], and anything from the live subscription starts over.
//!
//! The holes one event creates expire together: a hole's clock starts when the first group after
//! it arrived, not when delivery reaches it. All work is proportional to what arrived: a sequence
//! gap of any size is skipped and counted with arithmetic, and at most
//! [`Limits::max_repairs`] repairs are in flight.

pub(crate) use crate::core::stats::Losses;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
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

/// Why a group was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LossReason {
    /// It never arrived: later groups did, and it stayed missing past the gap timeout, or a
    /// fetch of it found nothing.
    Missing,
    /// Its stream ended early (or stalled past the gap timeout) and the rest could not be
    /// fetched again.
    Broken,
    /// It was given up to keep the subscription's buffer within its cap.
    Overflow,
}

impl Losses {
    fn count(&mut self, reason: LossReason, groups: u64) {
        let counter = match reason {
            LossReason::Missing => &mut self.missing,
            LossReason::Broken => &mut self.broken,
            LossReason::Overflow => &mut self.overflow,
        };
        *counter = counter.saturating_add(groups);
    }
}

/// How a fetch taken from [`Sequencer::take_repairs`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Repaired {
    /// Every object of the group arrived.
    Complete,
    /// The relay (or the publisher behind it) does not have the group: it is given up.
    NotFound,
    /// The fetch could not be made or stopped on the way (a lost session, a relay restart): the
    /// group is fetched again after a backoff while its repair timeout allows.
    Interrupted,
}

/// The first wait before an interrupted fetch is made again; doubled per attempt up to
/// [`RETRY_MAX`].
pub(crate) const RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two fetches of one group.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(2);

/// The wait before fetch attempt `attempt + 1` of a group, after `attempt` were interrupted.
fn retry_delay(attempt: u32) -> Duration {
    RETRY_FIRST
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(RETRY_MAX)
}

/// How long a live subscription may stay quiet before the group after the newest one known is
/// fetched to learn whether the relay has it (see the module documentation).
pub(crate) const PROBE_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two probes of a quiet subscription.
pub(crate) const PROBE_MAX: Duration = Duration::from_secs(30);
/// Probes in flight at most while catching up on a stalled subscription (within the repair cap).
pub(crate) const PROBE_PIPELINE: usize = 4;

/// A group to fetch again: its objects from `from` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Repair {
    pub group: u64,
    pub from: u64,
}

/// The knobs of a [`Sequencer`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// How long a hole, or a stalled group with later groups waiting, may hold delivery back
    /// before it is given up (or, where possible, fetched again).
    pub gap_timeout: Duration,
    /// Whether missing and broken groups can be fetched again (moq-lite-05+, moq-transport).
    pub can_repair: bool,
    /// How long a missing group may trail later ones before it is fetched (under load groups
    /// arrive out of order for a while; fetching at once would send them twice).
    pub repair_after: Duration,
    /// How long a group may be repaired (from its first fetch, retries of interrupted fetches
    /// included) before it is given up. A fetch still in flight then is waited for: its own
    /// bounds end it, and only an interrupted one gives the group up.
    pub repair_timeout: Duration,
    /// Fetches in flight at most.
    pub max_repairs: usize,
    /// Consecutive "not found" answers for missing groups after which the rest of the hole is
    /// given up at once (the relay has nothing there: a sequence jump, or a real loss upstream).
    pub max_not_found: u32,
    /// Payload bytes buffered at most; past it the reader waits. Then a hole or an open group at
    /// the front is fetched again where repairs are possible (the repair's objects are taken
    /// even at the cap), and given up (counted as overflow) where they are not, so delivery
    /// can go on.
    pub max_pending_bytes: usize,
    /// Groups (and datagram sequences) tracked at most, the same way.
    pub max_groups: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            gap_timeout: Duration::from_secs(30),
            can_repair: false,
            repair_after: Duration::from_secs(1),
            repair_timeout: Duration::from_secs(20),
            max_repairs: 8,
            max_not_found: 16,
            max_pending_bytes: 64 << 20,
            max_groups: 65_536,
        }
    }
}

/// Where a known group stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Its stream is open: more objects may come.
    Receiving,
    /// Every object arrived.
    Complete,
    /// Its stream ended early (or stalled), or its fetch was interrupted: waiting for a repair
    /// slot (and, after an interrupted fetch, for its retry time).
    Broken,
    /// A fetch of the rest is in flight (the group's `repair_started` says since when it is
    /// being repaired).
    Repairing,
    /// A datagram has this sequence: no stream objects will come.
    Datagram,
}

struct Group {
    objects: VecDeque<Object>,
    /// The index the next object of this group must have.
    expect: u64,
    state: State,
    /// When its stream (or datagram) arrived; `None` for a missing group being fetched.
    arrived: Option<Instant>,
    /// Whether it was missing before (a failed fetch then counts as missing, not broken).
    was_missing: bool,
    /// When its first fetch started, and how many fetches were interrupted since.
    repair_started: Option<Instant>,
    interrupted: u32,
    /// Not fetched again before then (the backoff after an interrupted fetch).
    retry_at: Option<Instant>,
}

impl Group {
    fn new(expect: u64, state: State, arrived: Option<Instant>, was_missing: bool) -> Self {
        Self {
            objects: VecDeque::new(),
            expect,
            state,
            arrived,
            was_missing,
            repair_started: None,
            interrupted: 0,
            retry_at: None,
        }
    }

    /// Whether its repair ran out of time (first fetch `repair_timeout` ago or more).
    fn repair_overdue(&self, now: Instant, timeout: Duration) -> bool {
        self.repair_started
            .is_some_and(|started| now.duration_since(started) >= timeout)
    }
}

/// One stream subscription's order and losses (see the module documentation).
pub(crate) struct Sequencer {
    /// The first sequence this subscription delivers; earlier groups are replays.
    start: u64,
    /// The group being delivered, or the hole at the front.
    next: u64,
    /// Objects of `next` already delivered.
    next_index: u64,
    groups: BTreeMap<u64, Group>,
    /// `(arrival, sequence)` of every known group that arrived: a hole's clock is the first
    /// arrival above it.
    arrivals: BTreeSet<(Instant, u64)>,
    pending_bytes: usize,
    /// One past the last group, once the track ended, and when that was learnt.
    end: Option<(u64, Instant)>,
    /// The newest sequence the session knew of when the subscription went live.
    latest_known: Option<u64>,
    /// Start at whichever group arrives first (LATEST on a track whose newest group was unknown).
    adopt_first: bool,
    /// Whether the track carries datagrams too (a lost datagram leaves a hole nobody fills).
    mixed: bool,
    /// The subscriber's latency bound, which also bounds how long a gap may hold delivery.
    max_latency: Option<Duration>,
    limits: Limits,
    in_flight: usize,
    not_found_streak: u32,
    repairs: Vec<Repair>,
    losses: Losses,
    probe: Probe,
}

/// The probing of a quiet live subscription (see the module documentation).
#[derive(Default)]
struct Probe {
    /// When the next probe is due; `None` until the sequencer first looks (its clock starts
    /// then).
    at: Option<Instant>,
    /// The wait after the last quiet answer (doubled per quiet answer up to [`PROBE_MAX`]).
    wait: Duration,
    /// Probes in flight whose group the relay has not confirmed yet: an answer that it does not
    /// have them is no loss.
    unconfirmed: BTreeSet<u64>,
    /// A probe found a group the live subscription had not brought: the following groups are
    /// fetched without waiting until the relay has no newer one.
    catching_up: bool,
    /// A live stream still open when the subscription went quiet, fetched from where it stopped
    /// (a group the relay completed while its live stream stalled): its objects join the live
    /// ones, duplicates dropped by index.
    open_group: Option<u64>,
    /// A probe of the current round found a group: the subscription is still stalled, so the
    /// next round comes after the first interval again rather than a doubled one.
    found: bool,
    /// When the live subscription last brought something.
    last_live: Option<Instant>,
}

/// The gap timeout where a gap most likely never fills: on a track that also carries
/// datagrams, and before the first delivery when the session did not know where the track
/// stood (on moq-lite-01..05 the relay's subscription starts at the publisher's newest group).
pub(crate) const SHORT_GAP_TIMEOUT: Duration = Duration::from_millis(500);

impl Sequencer {
    /// A sequencer delivering from group `start` on.
    pub fn new(start: u64, limits: Limits) -> Self {
        Self {
            start,
            next: start,
            next_index: 0,
            groups: BTreeMap::new(),
            arrivals: BTreeSet::new(),
            pending_bytes: 0,
            end: None,
            latest_known: start.checked_sub(1),
            adopt_first: false,
            mixed: false,
            max_latency: None,
            limits,
            in_flight: 0,
            not_found_streak: 0,
            repairs: Vec::new(),
            losses: Losses::default(),
            probe: Probe::default(),
        }
    }

    /// Sets what the session knew when the subscription went live: the newest sequence, and
    /// whether to start at whichever group arrives first.
    pub fn set_origin(&mut self, latest_known: Option<u64>, adopt_first: bool) {
        self.latest_known = latest_known;
        self.adopt_first = adopt_first;
    }

    /// Marks the track as carrying datagrams too.
    pub fn set_mixed(&mut self) {
        self.mixed = true;
    }

    /// Bounds how long a gap may hold delivery by the subscriber's latency bound.
    pub fn set_max_latency(&mut self, bound: Option<Duration>) {
        self.max_latency = bound;
    }

    /// Continues after a resume: group `next`, of which `delivered` objects were delivered.
    /// A publisher that restarted its numbering (newest below `next`) starts over instead.
    pub fn resume_at(&mut self, next: u64, delivered: u64) {
        if self.latest_known.is_some_and(|latest| latest + 1 < next) {
            return;
        }
        self.start = next;
        self.next = next;
        self.next_index = delivered;
    }

    /// Where delivery stands: the next group and the objects of it already delivered.
    pub fn position(&self) -> (u64, u64) {
        (self.next, self.next_index)
    }

    /// Whether the reader should stop taking more until delivery catches up.
    pub fn is_full(&self) -> bool {
        self.pending_bytes >= self.limits.max_pending_bytes || self.groups.len() >= self.limits.max_groups
    }

    /// Whether the track's end is known (the publisher finished it, or the live subscription
    /// ended).
    pub fn has_end(&self) -> bool {
        self.end.is_some()
    }

    /// Whether every group below the track's end was delivered or counted: ENDED may follow.
    pub fn is_done(&self) -> bool {
        self.end.is_some_and(|(end, _)| self.next >= end)
    }

    /// A group's stream began. False when it is not wanted: already delivered or given up,
    /// from before the start (a replay), past the track's end, or a second copy.
    pub fn open(&mut self, sequence: u64, now: Instant) -> bool {
        self.live(now);
        if std::mem::take(&mut self.adopt_first) && sequence >= self.start {
            self.start = sequence;
            self.next = sequence;
            self.next_index = 0;
            self.latest_known = Some(sequence);
        }
        if sequence < self.next || self.end.is_some_and(|(end, _)| sequence >= end) {
            return false;
        }
        if self.probe.unconfirmed.remove(&sequence) {
            // The live stream of a group a probe asked for: it is received here, the probe's
            // answer is ignored.
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        if let Some(group) = self.groups.get_mut(&sequence) {
            // A second stream for a group we gave up on receiving (no repair possible): it
            // continues where the first one stopped (duplicates are dropped by index).
            if group.state != State::Broken {
                return false;
            }
            group.state = State::Receiving;
            // The new stream takes over: should it break too, its repair is a new one, with
            // its own time (not cut short by the repair timeout of fetches made before it).
            group.repair_started = None;
            group.interrupted = 0;
            group.retry_at = None;
            if group.arrived.is_none() {
                group.arrived = Some(now);
                self.arrivals.insert((now, sequence));
            }
            return true;
        }
        let expect = if sequence == self.next { self.next_index } else { 0 };
        self.groups
            .insert(sequence, Group::new(expect, State::Receiving, Some(now), false));
        self.arrivals.insert((now, sequence));
        true
    }

    /// The live subscription brought something (a group, an object, a group's end, a
    /// datagram): it is not stalled, and the next probe waits the full first interval.
    pub fn live(&mut self, now: Instant) {
        self.probe.wait = PROBE_FIRST;
        self.probe.at = Some(now + PROBE_FIRST);
        self.probe.catching_up = false;
        self.probe.found = false;
        self.probe.last_live = Some(now);
    }

    /// Whether the fetch of `sequence` taken from [`Sequencer::take_repairs`] is a probe of a
    /// group no stream brought yet (it may be asked on the subscription's own session).
    pub fn is_probe(&self, sequence: u64) -> bool {
        self.probe.unconfirmed.contains(&sequence)
    }

    /// A probe's fetch returned its group: the relay (or the local copy of the track) has a
    /// group the live subscription did not bring. The probe only tells that: the group is then
    /// fetched like a broken one, on the second session (the answer on the subscription's own
    /// session may be the local copy of a stream that stalled), and the reader drops the
    /// probe's answer. Unless the live subscription brought something meanwhile (it was slow,
    /// not stalled): then the group is left to it (a hole, repaired as usual if it stays one).
    pub fn fetched(&mut self, sequence: u64, now: Instant) {
        if !self.probe.unconfirmed.remove(&sequence) {
            return;
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        let live_recently = self
            .probe
            .last_live
            .is_some_and(|last| now.duration_since(last) < PROBE_FIRST);
        if live_recently || sequence < self.next || self.groups.contains_key(&sequence) {
            self.schedule(now);
            return;
        }
        tracing::info!(
            group = sequence,
            "the live subscription stalled: fetching what the relay holds"
        );
        self.probe.catching_up = true;
        self.probe.found = true;
        self.probe.at = Some(now);
        // Known to exist from now on: fetched like a broken group, and the clock of the holes
        // below it.
        let from = if sequence == self.next { self.next_index } else { 0 };
        self.groups
            .insert(sequence, Group::new(from, State::Broken, Some(now), true));
        self.arrivals.insert((now, sequence));
        // The live streams still open stalled with the subscription: fetched from where they
        // stopped.
        for (sequence, group) in self.groups.iter_mut() {
            if group.state == State::Receiving && self.probe.open_group != Some(*sequence) {
                group.state = State::Broken;
            }
        }
        self.schedule(now);
    }

    /// A probe brought nothing new. Once none is left in flight the round is over: the next one
    /// comes after the first interval if this round found groups (the subscription is still
    /// stalled on a track that goes on), else after twice the last wait (up to [`PROBE_MAX`]).
    fn probe_answered(&mut self, now: Instant) {
        if self.probe.unconfirmed.is_empty() && self.probe.open_group.is_none() && !self.probe.catching_up {
            self.probe.wait = match std::mem::take(&mut self.probe.found) {
                true => PROBE_FIRST,
                false => (self.probe.wait * 2).clamp(PROBE_FIRST, PROBE_MAX),
            };
            self.probe.at = Some(now + self.probe.wait);
        }
        self.schedule(now);
    }

    /// An object of a group being received or repaired (objects come in order within their
    /// group). Duplicates, and objects of groups already delivered or given up, are ignored.
    pub fn object(&mut self, object: Object) {
        let Some(group) = self.groups.get_mut(&object.group) else {
            return;
        };
        if object.index < group.expect || matches!(group.state, State::Complete | State::Datagram) {
            return;
        }
        group.expect = object.index + 1;
        self.pending_bytes += object.payload.len();
        group.objects.push_back(object);
    }

    /// A group's stream ended cleanly: every object arrived.
    pub fn finished(&mut self, sequence: u64) {
        if let Some(group) = self.groups.get_mut(&sequence) {
            if group.state == State::Receiving {
                group.state = State::Complete;
            }
        }
    }

    /// A group's stream ended early: what arrived stays; the rest is fetched again if possible.
    pub fn broken(&mut self, sequence: u64, now: Instant) {
        let Some(group) = self.groups.get_mut(&sequence) else {
            return;
        };
        if group.state == State::Receiving {
            group.state = State::Broken;
        }
        self.schedule(now);
    }

    /// A datagram took `sequence`; false when it is from before the start (a replay) and must
    /// not be delivered.
    pub fn datagram(&mut self, sequence: u64, now: Instant) -> bool {
        self.live(now);
        self.mixed = true;
        if sequence >= self.next && !self.groups.contains_key(&sequence) {
            self.groups
                .insert(sequence, Group::new(0, State::Datagram, Some(now), false));
            self.arrivals.insert((now, sequence));
        }
        sequence >= self.start
    }

    /// A fetch taken from [`Sequencer::take_repairs`] ended (see [`Repaired`]).
    pub fn repaired(&mut self, sequence: u64, how: Repaired, now: Instant) {
        if self.probe.unconfirmed.remove(&sequence) {
            // The relay does not have the group (or could not say): the publisher has not
            // written it yet. No loss; the next probe waits longer.
            self.in_flight = self.in_flight.saturating_sub(1);
            self.probe.catching_up = false;
            self.probe_answered(now);
            return;
        }
        // A repair whose group was given up meanwhile (timeout, cap) was already released.
        let Some(group) = self.groups.get_mut(&sequence) else {
            return;
        };
        if self.probe.open_group == Some(sequence) {
            self.probe.open_group = None;
            self.in_flight = self.in_flight.saturating_sub(1);
            if how == Repaired::Complete && group.state == State::Receiving {
                group.state = State::Complete;
            }
            self.probe_answered(now);
            return;
        }
        if !matches!(group.state, State::Repairing) {
            return;
        }
        match how {
            Repaired::Complete => {
                self.in_flight = self.in_flight.saturating_sub(1);
                group.state = State::Complete;
                self.losses.repaired += 1;
                self.not_found_streak = 0;
            }
            Repaired::Interrupted if !group.repair_overdue(now, self.limits.repair_timeout) => {
                self.in_flight = self.in_flight.saturating_sub(1);
                group.interrupted = group.interrupted.saturating_add(1);
                group.retry_at = Some(now + retry_delay(group.interrupted));
                group.state = State::Broken;
                tracing::debug!(
                    group = sequence,
                    attempt = group.interrupted,
                    "a fetch was interrupted: retrying"
                );
            }
            Repaired::Interrupted => self.give_up_group(sequence, false),
            Repaired::NotFound => {
                if group.was_missing && group.objects.is_empty() && group.expect == 0 {
                    self.not_found_streak += 1;
                }
                self.give_up_group(sequence, false);
            }
        }
        self.schedule(now);
    }

    /// The track ended: `end` is one past its last group. Groups below it that are missing or
    /// open are waited for (and repaired) as holes whose clock starts now.
    pub fn finish(&mut self, end: u64, now: Instant) {
        if self.end.is_some() {
            return;
        }
        let end = end.max(self.next);
        self.end = Some((end, now));
        let past: Vec<u64> = self.groups.range(end..).map(|(sequence, _)| *sequence).collect();
        for sequence in past {
            self.forget(sequence);
        }
        let probes = self.probe.unconfirmed.split_off(&end);
        self.in_flight = self.in_flight.saturating_sub(probes.len());
    }

    /// Whether repairs wait to be taken.
    pub fn has_repairs(&self) -> bool {
        !self.repairs.is_empty()
    }

    /// Repairs to start now.
    pub fn take_repairs(&mut self) -> Vec<Repair> {
        std::mem::take(&mut self.repairs)
    }

    /// What was lost and repaired since the last call.
    pub fn take_losses(&mut self) -> Losses {
        std::mem::take(&mut self.losses)
    }

    /// The objects that may be delivered now, in order; gives up holes and stalled groups whose
    /// time is up, and schedules repairs.
    pub fn ready(&mut self, now: Instant) -> Vec<Object> {
        // Repairs first: a hole that can be fetched is fetched before it could be given up.
        self.schedule(now);
        let mut out = Vec::new();
        loop {
            if let Some((end, _)) = self.end {
                if self.next >= end {
                    break;
                }
            }
            let Some(group) = self.groups.get_mut(&self.next) else {
                // A hole at the front.
                match self.hole_expired(now) {
                    Some(reason) => self.skip_hole(reason),
                    None => break,
                }
                continue;
            };
            if let Some(last) = group.objects.back() {
                self.next_index = last.index + 1;
                self.pending_bytes -= group.objects.iter().map(|o| o.payload.len()).sum::<usize>();
                out.extend(group.objects.drain(..));
            }
            match group.state {
                State::Complete | State::Datagram => {
                    self.advance();
                    continue;
                }
                State::Receiving => {
                    // An open group holds later ones back only as long as a hole would: a
                    // publisher does not leave a group open once it has moved on.
                    if !self.stalled(now) {
                        break;
                    }
                    tracing::debug!(group = self.next, "a stalled group is treated as broken");
                    self.mark_broken();
                    continue;
                }
                State::Broken | State::Repairing if self.limits.can_repair => {
                    // A fetch in flight is waited for even past the repair timeout: it ends by
                    // itself (its dial, the relay's answer and each frame are bounded), and a
                    // fetch that is still working (a slowed process, a slow relay) would
                    // otherwise be cut off with the group it was about to bring. Once it ends
                    // interrupted past the timeout, the group is given up (`repaired`).
                    if group.state == State::Repairing || !group.repair_overdue(now, self.limits.repair_timeout) {
                        break; // a fetch in flight, or waiting for a repair slot or its retry time
                    }
                    tracing::debug!(group = self.next, "a repair took too long");
                    self.give_up_group(self.next, false);
                    continue;
                }
                State::Broken | State::Repairing => {
                    self.give_up_group(self.next, self.overflowing());
                    continue;
                }
            }
        }
        self.schedule(now);
        out
    }

    /// When [`Sequencer::ready`] may next change something by itself (a hole or a stalled group
    /// timing out, a repair becoming due or overdue), after `now`; `None` when only new arrivals
    /// or repair results can.
    pub fn deadline(&self, now: Instant) -> Option<Instant> {
        if self.is_done() {
            return None;
        }
        let mut times = Vec::with_capacity(4);
        if let Some(since) = self.front_clock() {
            match self.groups.get(&self.next).map(|g| g.state) {
                None if self.limits.can_repair => times.push(since + self.limits.repair_after),
                None | Some(State::Receiving) => times.push(since + self.gap_timeout()),
                _ => {}
            }
        }
        if self.probing() && self.probe.unconfirmed.is_empty() {
            times.extend(self.probe.at);
        }
        times.extend(self.open_after_end_due());
        let repairing = self
            .groups
            .range(self.next..self.next.saturating_add(self.limits.max_repairs as u64 * 4));
        for (_, group) in repairing {
            if self.limits.can_repair && matches!(group.state, State::Broken | State::Repairing) {
                times.extend(group.retry_at);
                times.extend(group.repair_started.map(|since| since + self.limits.repair_timeout));
            }
        }
        times.into_iter().filter(|at| *at > now).min()
    }

    /// When the hole (or stalled group) at the front started waiting: the first arrival of a
    /// group after it, or the track's end.
    fn front_clock(&self) -> Option<Instant> {
        let first_later = self
            .arrivals
            .iter()
            .find(|(_, sequence)| *sequence > self.next)
            .map(|(at, _)| *at);
        let ended = self.end.map(|(_, at)| at);
        match (first_later, ended) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn gap_timeout(&self) -> Duration {
        let start_unknown = self.latest_known.is_none() && self.next == self.start;
        let timeout = if self.mixed || start_unknown {
            SHORT_GAP_TIMEOUT.min(self.limits.gap_timeout)
        } else {
            self.limits.gap_timeout
        };
        self.max_latency.map_or(timeout, |bound| bound.min(timeout))
    }

    fn overflowing(&self) -> bool {
        self.is_full()
    }

    /// Whether the hole at the front is to be given up now, and why.
    fn hole_expired(&self, now: Instant) -> Option<LossReason> {
        if self.limits.can_repair {
            // Holes are fetched (schedule); only a run of "not found" answers gives one up.
            return (self.not_found_streak >= self.limits.max_not_found).then_some(LossReason::Missing);
        }
        if self.overflowing() && self.groups.range(self.next..).next().is_some() {
            return Some(LossReason::Overflow);
        }
        let since = self.front_clock()?;
        (now.duration_since(since) >= self.gap_timeout()).then_some(LossReason::Missing)
    }

    /// Whether the open group at the front has held later groups back for the gap timeout.
    fn stalled(&self, now: Instant) -> bool {
        if self.overflowing() && self.groups.range(self.next + 1..).next().is_some() {
            return true;
        }
        self.front_clock()
            .is_some_and(|since| now.duration_since(since) >= self.gap_timeout())
    }

    fn mark_broken(&mut self) {
        if let Some(group) = self.groups.get_mut(&self.next) {
            group.state = State::Broken;
        }
    }

    /// Skips the hole at the front up to the next known group (or the end), counting every
    /// sequence number in it.
    fn skip_hole(&mut self, reason: LossReason) {
        let to = self
            .groups
            .range(self.next..)
            .next()
            .map(|(sequence, _)| *sequence)
            .or(self.end.map(|(end, _)| end))
            .unwrap_or(self.next);
        if to <= self.next {
            return;
        }
        tracing::warn!(from = self.next, to, ?reason, "giving up a sequence gap");
        self.losses.count(reason, to - self.next);
        self.next = to;
        self.next_index = 0;
    }

    /// Gives up group `sequence`, counting it once: missing if nothing of it ever arrived,
    /// broken if it arrived in part, overflow when the buffer's cap forced it. What did arrive is
    /// still delivered: the group becomes complete.
    fn give_up_group(&mut self, sequence: u64, overflow: bool) {
        let group = self
            .groups
            .entry(sequence)
            .or_insert_with(|| Group::new(0, State::Complete, None, true));
        let reason = match (overflow, group.was_missing && group.expect == 0) {
            (true, _) => LossReason::Overflow,
            (false, true) => LossReason::Missing,
            (false, false) => LossReason::Broken,
        };
        if matches!(group.state, State::Repairing) {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        group.state = State::Complete;
        self.losses.count(reason, 1);
        tracing::warn!(group = sequence, ?reason, "giving up a group");
    }

    /// Drops what is buffered for `sequence`.
    fn forget(&mut self, sequence: u64) {
        if self.probe.open_group == Some(sequence) {
            // Its fetch's answer, if any, finds nothing to change.
            self.probe.open_group = None;
            self.in_flight = self.in_flight.saturating_sub(1);
        }
        if let Some(group) = self.groups.remove(&sequence) {
            self.pending_bytes -= group.objects.iter().map(|o| o.payload.len()).sum::<usize>();
            if let Some(at) = group.arrived {
                self.arrivals.remove(&(at, sequence));
            }
            if matches!(group.state, State::Repairing) {
                self.in_flight = self.in_flight.saturating_sub(1);
            }
        }
    }

    fn advance(&mut self) {
        // Delivery passed a group that really arrived: a run of "not found" answers is over.
        if self.groups.get(&self.next).is_some_and(|group| group.arrived.is_some()) {
            self.not_found_streak = 0;
        }
        self.forget(self.next);
        self.next += 1;
        self.next_index = 0;
    }

    /// Starts the repairs and probes that are due.
    fn schedule(&mut self, now: Instant) {
        self.break_open_after_end(now);
        self.schedule_repairs(now);
        self.schedule_probes(now);
    }

    /// When the groups still open on a track that ended are treated as broken: once the live
    /// subscription was quiet for [`PROBE_FIRST`] after the end. The publisher has moved past
    /// them, and a stream the relay neither finishes nor resets (its publisher gone) would
    /// otherwise hold the end for the gap timeout: their rest is fetched, or counted lost when
    /// the relay does not have it. `None` when nothing is open (the open group's own fetch
    /// aside) or no fetch can be made (then the gap timeout decides, as for any stalled group).
    fn open_after_end_due(&self) -> Option<Instant> {
        let (_, ended_at) = self.end?;
        if !self.limits.can_repair {
            return None;
        }
        let fetching = self.probe.open_group;
        let open = self
            .groups
            .iter()
            .any(|(sequence, group)| group.state == State::Receiving && fetching != Some(*sequence));
        let quiet_since = self.probe.last_live.map_or(ended_at, |last| last.max(ended_at));
        open.then_some(quiet_since + PROBE_FIRST)
    }

    /// Marks the groups still open on an ended track broken once [`Sequencer::open_after_end_due`]
    /// has come.
    fn break_open_after_end(&mut self, now: Instant) {
        if self.open_after_end_due().is_none_or(|at| now < at) {
            return;
        }
        let fetching = self.probe.open_group;
        for (sequence, group) in self.groups.iter_mut() {
            if group.state == State::Receiving && fetching != Some(*sequence) {
                tracing::debug!(
                    group = *sequence,
                    from = group.expect,
                    "the track ended and its open group went quiet: fetching its rest"
                );
                group.state = State::Broken;
            }
        }
    }

    /// Whether a quiet live subscription is probed now: it can fetch, the track has not ended,
    /// where it starts is known, and there is room for what a probe brings.
    fn probing(&self) -> bool {
        self.limits.can_repair && self.end.is_none() && !self.adopt_first && !self.is_full()
    }

    /// Starts the probes that are due (see the module documentation): one after the quiet
    /// interval, up to [`PROBE_PIPELINE`] while catching up, within the repair cap.
    fn schedule_probes(&mut self, now: Instant) {
        if !self.probing() {
            return;
        }
        let Some(at) = self.probe.at else {
            self.live(now); // the clock starts when the sequencer first looks
            return;
        };
        let (due, room) = match self.probe.catching_up {
            true => (true, PROBE_PIPELINE),
            false => (now >= at && self.probe.open_group.is_none(), 1),
        };
        // The oldest live stream still open is fetched from where it stopped, beside the probe
        // of the next group: the relay may hold its rest (a burst's last group, whose stream
        // stalled) with nothing newer to give the stall away.
        if due
            && !self.probe.catching_up
            && self.probe.unconfirmed.is_empty()
            && self.in_flight < self.limits.max_repairs
        {
            let open = self
                .groups
                .iter()
                .find(|(_, group)| group.state == State::Receiving)
                .map(|(sequence, group)| (*sequence, group.expect));
            if let Some((group, from)) = open {
                self.probe.open_group = Some(group);
                self.in_flight += 1;
                tracing::debug!(
                    group,
                    from,
                    "the live subscription is quiet: fetching its open group's rest"
                );
                self.repairs.push(Repair { group, from });
            }
        }
        while due && self.probe.unconfirmed.len() < room && self.in_flight < self.limits.max_repairs {
            let after = |last: Option<&u64>| last.map_or(self.next, |last| last.saturating_add(1));
            let group = after(self.groups.keys().next_back())
                .max(after(self.probe.unconfirmed.last()))
                .max(self.next);
            if self.groups.contains_key(&group) || self.probe.unconfirmed.contains(&group) {
                break; // the last sequence number there is
            }
            let from = if group == self.next { self.next_index } else { 0 };
            self.in_flight += 1;
            self.probe.unconfirmed.insert(group);
            tracing::debug!(
                group,
                "the live subscription is quiet: asking the relay for the next group"
            );
            self.repairs.push(Repair { group, from });
        }
    }

    /// Starts repairs where they are due: broken groups, and missing groups that trailed later
    /// ones for the repair delay, among the first few positions from the front.
    fn schedule_repairs(&mut self, now: Instant) {
        if !self.limits.can_repair || self.in_flight >= self.limits.max_repairs {
            return;
        }
        let clock = self.front_clock();
        let due = clock.is_some_and(|since| now.duration_since(since) >= self.limits.repair_after);
        let limit = self
            .groups
            .keys()
            .next_back()
            .copied()
            .max(self.end.map(|(end, _)| end.saturating_sub(1)));
        let Some(limit) = limit else { return };
        let window = self.limits.max_repairs as u64 * 4;
        let mut position = self.next;
        while position <= limit
            && position < self.next.saturating_add(window)
            && self.in_flight < self.limits.max_repairs
        {
            let later = due && (self.end.is_some() || self.groups.range(position + 1..).next().is_some());
            match self.groups.get_mut(&position) {
                Some(group) if group.state == State::Broken && group.retry_at.is_none_or(|at| at <= now) => {
                    group.state = State::Repairing;
                    group.repair_started.get_or_insert(now);
                    self.in_flight += 1;
                    self.repairs.push(Repair {
                        group: position,
                        from: group.expect,
                    });
                }
                Some(_) => {}
                // A run of "not found" answers stops fetching missing groups (the hole is given
                // up); broken groups and interrupted fetches are still made.
                None if later && self.not_found_streak < self.limits.max_not_found => {
                    let from = if position == self.next { self.next_index } else { 0 };
                    let mut group = Group::new(from, State::Repairing, None, true);
                    group.repair_started = Some(now);
                    self.groups.insert(position, group);
                    self.in_flight += 1;
                    self.repairs.push(Repair { group: position, from });
                }
                None => {}
            }
            position += 1;
        }
    }
}

#[cfg(test)]
#[path = "sequencer_tests.rs"]
mod tests;
