//! Reading one session of a subscription.
//!
//! Two halves run side by side on one task. The *receiver* takes groups, their objects and
//! datagrams off the session as they arrive and feeds them to the [`Sequencer`]; it never waits
//! for the application (only for the sequencer's own cap), so moq-net's receive cache does not
//! fill with groups nobody read yet. It also fetches again what the sequencer asks to repair.
//! The *deliverer* hands what the sequencer releases to the application in order, waiting on the
//! subscriber's callback window, and sleeps until the sequencer's next deadline or a change.
//! The sequencer's lock is held only for its own bookkeeping, never across an await or a
//! callback.

use super::establish::{Live, Target};
use super::sequencer::{Object, Repair, Repaired, Sequencer};
use super::Subscriber;
use crate::core::config::DeliveryMode;
use crate::core::events::ObjectInfo;
use crate::error::{self, Error, ErrorKind, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

/// How one session's reading ended.
pub(super) enum Outcome {
    /// The subscriber is gone or stopped: nothing more to do.
    Stopped,
    /// The publisher ended the track and every group below its end was delivered or counted.
    Ended,
    /// The subscription failed (often: the session was lost); the publisher's abort code if any.
    Failed(Error, u32),
}

/// How long a repair's fetch may take (dialing the second session included) before the group is
/// given up (the sequencer's own repair timeout is longer, so this decides).
const REPAIR_BOUND: Duration = Duration::from_secs(15);

/// Reads `live` until the track ends, the session fails or the subscriber stops; returns how
/// it ended and where delivery stands (the next group and the objects of it delivered).
pub(super) async fn read(
    subscriber: &Weak<Subscriber>,
    target: &Target,
    live: Live,
    window: &Arc<Semaphore>,
) -> (Outcome, (u64, u64)) {
    let reading = Reading {
        target,
        fetcher: Arc::default(),
        subscriber,
        sequencer: Mutex::new(live.sequencer),
        released: Mutex::new(VecDeque::new()),
        changed: Notify::new(),
        room: Notify::new(),
        first_group: Notify::new(),
        window,
        timestamps: live.timestamps,
        priority: live.priority,
    };
    let outcome = tokio::select! {
        outcome = reading.receive(live.groups, live.widen.clone()) => outcome,
        outcome = reading.receive_datagrams(live.datagrams, live.widen) => outcome,
        outcome = reading.deliver() => outcome,
    };
    let undelivered = reading.released().front().map(|object| (object.group, object.index));
    let position = resume_position(undelivered, reading.lock().position());
    (outcome, position)
}

/// Where the next session resumes: at the first object the sequencer released that did not
/// reach the application (the session ended while the deliverer waited for room in the window),
/// else where the sequencer stands. Objects of a group are released in order, so every earlier
/// one of that group was delivered.
fn resume_position(first_undelivered: Option<(u64, u64)>, sequencer: (u64, u64)) -> (u64, u64) {
    first_undelivered.unwrap_or(sequencer)
}

struct Reading<'a> {
    subscriber: &'a Weak<Subscriber>,
    /// Resolves the track afresh for repairs: once the publisher finished the track, the live
    /// subscription's own track may have no route left to fetch through.
    target: &'a Target,
    /// A second session for fetches the main one can no longer make, dialed on first need (and
    /// again once it was lost) and closed with this reading.
    fetcher: FetcherSlot,
    sequencer: Mutex<Sequencer>,
    /// What the sequencer released and the application did not get yet, in order: kept here,
    /// not in the deliverer's future, so a session that ends while the deliverer waits for room
    /// in the window resumes at the first of them instead of silently after them.
    released: Mutex<VecDeque<Object>>,
    /// The receiver changed the sequencer: the deliverer looks again.
    changed: Notify,
    /// The deliverer made room or scheduled repairs: the receiver looks again.
    room: Notify,
    /// The group cursor widened (a narrow LATEST start got its first group): so does the
    /// datagram cursor.
    first_group: Notify,
    window: &'a Arc<Semaphore>,
    timestamps: bool,
    priority: u8,
}

/// Where a group being read came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The live subscription.
    Live,
    /// A fetch repairing it.
    Repair,
}

/// A pending read of a group's next frame: the group, the index of that frame, the result.
type FrameRead = Pin<
    Box<
        dyn Future<
                Output = (
                    moq_net::group::Consumer,
                    u64,
                    moq_net::Result<Option<moq_net::frame::Frame>>,
                    Source,
                ),
            > + Send,
    >,
>;

/// Reads a group's next frame. A fetched group (a repair, or the rest of an open group a probe
/// asked for) that brings nothing for [`REPAIR_BOUND`] counts as interrupted: its stream is as
/// stuck as the live one it replaces (it is fetched again after a backoff, or asked for again
/// by the next probe). A live stream may be slow (a publisher writing a group over a long time):
/// the probes watch over it.
fn next_frame(mut group: moq_net::group::Consumer, source: Source) -> FrameRead {
    Box::pin(async move {
        let index = group.index();
        let read = match source {
            Source::Live => group.read_frame().await,
            Source::Repair => tokio::time::timeout(REPAIR_BOUND, group.read_frame())
                .await
                .unwrap_or(Err(moq_net::Error::Timeout)),
        };
        (group, index, read, source)
    })
}

/// A pending fetch of a group to repair: the group, then its consumer or why not.
type FetchRead = Pin<Box<dyn Future<Output = (u64, Fetched)> + Send>>;

/// How a repair's fetch ended.
enum Fetched {
    Group(Box<moq_net::group::Consumer>),
    /// The relay (or the publisher behind it) does not have the group.
    NotFound,
    /// The fetch could not be made (no session, no route yet, dropped, timed out): it is made
    /// again after a backoff (the sequencer decides when, and when to give up).
    Unavailable(Error),
}

/// The second session a subscription fetches through when the main one cannot (see
/// [`fetch`]): the session, the origin its broadcasts arrive in, and what the relay announced on
/// it.
struct Fetcher {
    session: Arc<crate::core::dial::Session>,
    origin: moq_net::origin::Producer,
    announcement: Mutex<Announcement>,
}

/// Whether the relay announces the subscription's broadcast on the fetch session (whose origin
/// holds only that broadcast's announcement, `Client::dial_for_fetching`), read from the
/// session's announcement cursor as fetches are made.
struct Announcement {
    cursor: moq_net::announce::Consumer,
    /// Since when the broadcast has not been announced (the session's start until it first is;
    /// its retraction after that); `None` while it is.
    absent_since: Option<Instant>,
}

impl Fetcher {
    fn new(session: Arc<crate::core::dial::Session>, origin: moq_net::origin::Producer) -> Self {
        let cursor = origin.consume().announced();
        Self {
            session,
            origin,
            announcement: Mutex::new(Announcement {
                cursor,
                absent_since: Some(Instant::now()),
            }),
        }
    }

    /// Since when `path` has not been announced on this session (`None`: it is), after taking
    /// the announcements that arrived since the last look.
    fn absent_since(&self, path: &str) -> Option<Instant> {
        let mut announcement = self.announcement.lock().unwrap_or_else(PoisonError::into_inner);
        let Announcement { cursor, absent_since } = &mut *announcement;
        while let Some(update) = cursor.try_next() {
            if !moq_net::Path::new(path).has_prefix(&update.prefix) {
                continue;
            }
            *absent_since = match (update.kind.is_active(), *absent_since) {
                (true, _) => None,
                (false, Some(since)) => Some(since),
                (false, None) => Some(Instant::now()),
            };
        }
        *absent_since
    }
}

/// How long a fetch on the fetch session may wait for the relay to announce the broadcast:
/// `timeout` while it is announced (it resolves at once), what is left of `timeout` since it was
/// last announced (or since the session started, before it first was), and no wait at all
/// (`None`: the relay does not have it) once it has been absent that long. So when a publisher
/// is gone, only the fetches made within `timeout` of its retraction wait for it to come back;
/// every later one is answered at once, instead of each group still to repair waiting the whole
/// timeout (thousands of groups of a burst, a few at a time: a subscription that never ended).
fn announcement_wait(absent_since: Option<Instant>, now: Instant, timeout: Duration) -> Option<Duration> {
    match absent_since {
        None => Some(timeout),
        Some(since) => {
            Some(timeout.saturating_sub(now.saturating_duration_since(since))).filter(|wait| !wait.is_zero())
        }
    }
}

/// The fetch session of one reading: dialed by the first fetch that needs it, dialed again by
/// the next fetch once it was lost (a relay restart); fetches waiting for a dial share it. A
/// failed dial is not kept: the next fetch dials afresh.
type FetcherSlot = Arc<tokio::sync::Mutex<Option<Arc<Fetcher>>>>;

/// The live fetch session of `slot`, dialed now if there is none. The dial runs as a task of its
/// own that stores the session in the slot: a fetch that stops waiting (its bound passed, its
/// reading ended) does not abandon the dial, and the next fetch finds the session or waits for
/// that same dial. In a slowed process (a sanitizer, a loaded host) a dial can take longer than
/// one fetch's bound; dialing afresh on every attempt would then never get a session at all.
async fn fetch_session(
    slot: &FetcherSlot,
    dialing: Option<
        impl Future<Output = Result<(Arc<crate::core::dial::Session>, moq_net::origin::Producer)>> + Send + 'static,
    >,
) -> Result<Arc<Fetcher>> {
    let slot = slot.clone();
    let dial = tokio::spawn(async move {
        let mut current = slot.lock().await;
        if let Some(fetcher) = current
            .as_ref()
            .filter(|fetcher| fetcher.session.connection.connected())
        {
            return Ok(fetcher.clone());
        }
        *current = None;
        let dialing = dialing.ok_or_else(|| Error::new(ErrorKind::Closed, "the client was destroyed"))?;
        let (session, origin) = dialing.await?;
        let fetcher = Arc::new(Fetcher::new(session, origin));
        *current = Some(fetcher.clone());
        Ok(fetcher)
    });
    dial.await
        .map_err(|err| Error::internal(format!("the fetch session's dial stopped: {err}")))?
}

/// Where a repair is fetched from: the client's own broadcast, or the fetch session.
enum Via {
    Own(moq_net::broadcast::Consumer),
    Session(Arc<Fetcher>),
}

/// Fetches a group again, on a second session of the client's (dialed on the subscription's
/// first repair), whose fresh request the relay serves from its cache or from the publisher.
/// Not on the main session: its origin hands back the local copy of a group that stalled or
/// broke on the way (the very copy being repaired), and once the publisher finished the track
/// the local track has no route left to fetch through (moq-relay 0.17 ends a subscription at
/// the track's live edge, cancelling older groups still on their way). The client's own
/// broadcast is read locally, so it is fetched where it is.
fn fetch(target: &Target, fetcher: &FetcherSlot, repair: Repair, priority: u8) -> FetchRead {
    let client = target.client.upgrade();
    let own = client
        .as_ref()
        .and_then(|client| client.own_broadcast(target.namespace()));
    let timeout = client
        .as_ref()
        .map_or(Duration::from_secs(10), |client| client.timeout());
    let dialing = client
        .as_ref()
        .map(|client| client.dial_for_fetching(target.namespace()));
    let names = target.clone_names();
    let fetcher = fetcher.clone();
    let options = moq_net::group::Fetch::default()
        .with_priority(priority)
        .with_frame_start(repair.from);
    Box::pin(async move {
        // The dial is bounded by the client's own connect timeout, not by the fetch's bound:
        // [`REPAIR_BOUND`] is for the relay's answer, which a slow dial must not eat into.
        let via = match own {
            Some(own) => Via::Own(own),
            None => match fetch_session(&fetcher, dialing).await {
                Ok(fetcher) => Via::Session(fetcher),
                Err(err) => return (repair.group, Fetched::Unavailable(err)),
            },
        };
        let attempt = async move {
            let fetcher = match via {
                Via::Own(own) => return fetch_in(std::future::ready(names.track_in(&own)), repair, options).await,
                Via::Session(fetcher) => fetcher,
            };
            let absent_since = fetcher.absent_since(names.namespace());
            let Some(wait) = announcement_wait(absent_since, Instant::now(), timeout) else {
                return Fetched::Unavailable(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "no publisher has announced namespace \"{}\" on the relay for {} ms",
                        names.namespace(),
                        absent_since.map_or(0, |since| since.elapsed().as_millis())
                    ),
                ));
            };
            fetch_in(names.resolve_in(fetcher.origin.consume(), None, wait), repair, options).await
        };
        let fetched = tokio::time::timeout(REPAIR_BOUND, attempt).await.unwrap_or_else(|_| {
            Fetched::Unavailable(Error::new(
                ErrorKind::Timeout,
                format!(
                    "fetching group {} again took over {} s",
                    repair.group,
                    REPAIR_BOUND.as_secs()
                ),
            ))
        });
        (repair.group, fetched)
    })
}

/// Asks whether a group no stream of this subscription brought yet exists (a probe of a quiet
/// subscription, `sequencer.rs`), on the client's own session: the local copy of the track
/// answers if the group arrived there, else the request goes to the relay. Only the answer is
/// used (the local copy may be a stalled stream's): a found group is fetched as a repair, on
/// the second session. Cheap, unlike that repair.
fn probe(target: &Target, repair: Repair, priority: u8) -> FetchRead {
    let client = target.client.upgrade();
    let resolving = client.as_ref().map(|client| target.resolve(client));
    let options = moq_net::group::Fetch::default()
        .with_priority(priority)
        .with_frame_start(repair.from);
    Box::pin(async move {
        let fetched = match resolving {
            None => Fetched::Unavailable(Error::new(ErrorKind::Closed, "the client was destroyed")),
            Some(resolving) => tokio::time::timeout(REPAIR_BOUND, fetch_in(resolving, repair, options))
                .await
                .unwrap_or_else(|_| Fetched::Unavailable(Error::new(ErrorKind::Timeout, "the probe went unanswered"))),
        };
        (repair.group, fetched)
    })
}

/// Resolves the track, then fetches the repair's group from it.
async fn fetch_in(
    resolving: impl Future<Output = Result<moq_net::track::Consumer>>,
    repair: Repair,
    options: moq_net::group::Fetch,
) -> Fetched {
    match resolving.await {
        Ok(track) => classify(track.fetch_group(repair.group, options).await),
        Err(err) => Fetched::Unavailable(err),
    }
}

fn classify(result: moq_net::Result<moq_net::group::Consumer>) -> Fetched {
    match result {
        Ok(group) => Fetched::Group(Box::new(group)),
        Err(err) => {
            let err = error::from_moq(&err, "fetching a group again");
            match err.kind() {
                ErrorKind::NotFound => Fetched::NotFound,
                _ => Fetched::Unavailable(err),
            }
        }
    }
}

/// Switches a cursor from the narrow LATEST subscription to the normal one. A failure only
/// means the track is gone, which its reader reports.
fn widen_cursor(track: &mut moq_net::track::Subscriber, subscription: moq_net::track::Subscription) {
    if let Err(err) = track.update(subscription) {
        tracing::debug!("widening the subscription: {err}");
    }
}

impl Reading<'_> {
    fn lock(&self) -> MutexGuard<'_, Sequencer> {
        self.sequencer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn released(&self) -> MutexGuard<'_, VecDeque<Object>> {
        self.released.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn timestamp(&self, timestamp: moq_net::Timestamp) -> u64 {
        match self.timestamps {
            true => u64::try_from(timestamp.as_micros()).unwrap_or(u64::MAX),
            false => 0,
        }
    }

    /// The receiver: groups and their objects into the sequencer, repairs out and back in.
    /// Ends only with the session (or the subscriber): the deliverer reports the track's end.
    async fn receive(
        &self,
        mut groups: moq_net::track::Subscriber,
        mut widen: Option<moq_net::track::Subscription>,
    ) -> Outcome {
        let mut live = FuturesUnordered::<FrameRead>::new();
        let mut repairs = FuturesUnordered::<FrameRead>::new();
        let mut fetches = FuturesUnordered::<FetchRead>::new();
        let mut finished = false;
        loop {
            let full = self.lock().is_full();
            // Tests stall the live subscription here (`inject::set_fault("subscribe:live:<namespace>",
            // true)`): nothing more is read from it.
            let stalled = crate::inject::fault("subscribe:live", self.target.namespace());
            // Whether this turn fed the sequencer (every branch but a wake-up from the deliverer).
            let mut fed = true;
            tokio::select! {
                received = groups.recv_group(), if !finished && !full && !stalled => match received {
                    Ok(Some(group)) => {
                        if self.lock().open(group.sequence, Instant::now()) {
                            live.push(next_frame(group, Source::Live));
                        }
                        if let Some(subscription) = widen.take() {
                            widen_cursor(&mut groups, subscription);
                            self.first_group.notify_one();
                        }
                    }
                    Ok(None) => {
                        finished = true;
                        // Every group was handed out; the end is declared by then.
                        let end = match tokio::time::timeout(Duration::from_millis(100), groups.finished()).await {
                            Ok(Ok(end)) => end,
                            _ => groups.latest().map_or(0, |latest| latest + 1),
                        };
                        self.lock().finish(end, Instant::now());
                    }
                    Err(err) => {
                        tracing::debug!(track = %self.target.name(), ?err, "the subscription failed");
                        let (message, code) = failure(&err);
                        return Outcome::Failed(error::from_moq(&err, message), code);
                    }
                },
                Some((group, index, read, source)) = live.next(), if !live.is_empty() && !full && !stalled => {
                    if let Some(group) = self.on_frame(group, index, read, source) {
                        live.push(next_frame(group, source));
                    }
                }
                Some((group, index, read, source)) = repairs.next(), if !repairs.is_empty() => {
                    if let Some(group) = self.on_frame(group, index, read, source) {
                        repairs.push(next_frame(group, source));
                    }
                }
                Some((sequence, fetched)) = fetches.next(), if !fetches.is_empty() => match fetched {
                    Fetched::Group(group) => {
                        let mut sequencer = self.lock();
                        match sequencer.is_probe(sequence) {
                            // Only the answer counts: the group is fetched again as a repair.
                            true => {
                                tracing::debug!(track = %self.target.name(), group = sequence, "probe: the relay has it");
                                sequencer.fetched(sequence, Instant::now());
                            }
                            false => repairs.push(next_frame(*group, Source::Repair)),
                        }
                    }
                    Fetched::NotFound => {
                        let mut sequencer = self.lock();
                        match sequencer.is_probe(sequence) {
                            // The usual answer for a quiet track.
                            true => tracing::debug!(track = %self.target.name(), group = sequence, "probe: the relay has nothing newer"),
                            false => tracing::info!(group = sequence, "repair: the relay does not have the group"),
                        }
                        sequencer.repaired(sequence, Repaired::NotFound, Instant::now());
                    }
                    Fetched::Unavailable(err) => {
                        let mut sequencer = self.lock();
                        // Once the track ended on the live subscription, a relay where no
                        // publisher announces the broadcast any more will not get it back: the
                        // answer is final. Before that (a relay restarting, a publisher
                        // reconnecting) it is an interruption, and the fetch is made again.
                        // A probe's is never final.
                        let probe = sequencer.is_probe(sequence);
                        let how = match err.kind() == ErrorKind::NotFound && sequencer.has_end() && !probe {
                            true => Repaired::NotFound,
                            false => Repaired::Interrupted,
                        };
                        match probe {
                            true => tracing::debug!(track = %self.target.name(), group = sequence, "probe not answered: {err}"),
                            false => tracing::info!(group = sequence, ?how, "repair not made: {err}"),
                        }
                        sequencer.repaired(sequence, how, Instant::now());
                    }
                },
                // The deliverer made room or scheduled repairs: nothing of ours changed, so the
                // deliverer is not woken for it (the two would wake each other forever).
                _ = self.room.notified() => fed = false,
            }
            if self.subscriber.strong_count() == 0 {
                return Outcome::Stopped;
            }
            let repairs = {
                let mut sequencer = self.lock();
                let repairs = sequencer.take_repairs();
                repairs
                    .into_iter()
                    .map(|repair| (repair, sequencer.is_probe(repair.group)))
                    .collect::<Vec<_>>()
            };
            for (repair, is_probe) in repairs {
                match is_probe {
                    true => {
                        tracing::debug!(track = %self.target.name(), group = repair.group, from = repair.from, "probe");
                        fetches.push(probe(self.target, repair, self.priority));
                    }
                    false => {
                        tracing::debug!(group = repair.group, from = repair.from, "fetching a group again");
                        fetches.push(fetch(self.target, &self.fetcher, repair, self.priority));
                    }
                }
            }
            if fed {
                self.changed.notify_one();
            }
        }
    }

    /// Takes one frame read; returns the group to read on from, or `None` once it ended.
    fn on_frame(
        &self,
        group: moq_net::group::Consumer,
        index: u64,
        read: moq_net::Result<Option<moq_net::frame::Frame>>,
        source: Source,
    ) -> Option<moq_net::group::Consumer> {
        let sequence = group.sequence;
        let now = Instant::now();
        let mut sequencer = self.lock();
        if source == Source::Live {
            sequencer.live(now);
        }
        match read {
            Ok(Some(frame)) => {
                sequencer.object(Object {
                    group: sequence,
                    index,
                    timestamp_us: self.timestamp(frame.timestamp),
                    payload: frame.payload,
                    arrived: now,
                });
                Some(group)
            }
            Ok(None) => {
                match source {
                    Source::Live => sequencer.finished(sequence),
                    Source::Repair => sequencer.repaired(sequence, Repaired::Complete, now),
                }
                None
            }
            Err(err) => {
                tracing::debug!(sequence, "group ended early: {err}");
                match source {
                    Source::Live => sequencer.broken(sequence, now),
                    // The fetch stream broke (its session was lost): fetched again from here.
                    Source::Repair => sequencer.repaired(sequence, Repaired::Interrupted, now),
                }
                None
            }
        }
    }

    /// Reads datagrams (best-effort: dropped while the callbacks are a window behind). Never
    /// ends on its own: the group reader reports how the track ended.
    async fn receive_datagrams(
        &self,
        mut track: moq_net::track::Subscriber,
        mut widen: Option<moq_net::track::Subscription>,
    ) -> Outcome {
        loop {
            let received = tokio::select! {
                received = track.recv_datagram() => received,
                _ = self.first_group.notified(), if widen.is_some() => {
                    if let Some(subscription) = widen.take() {
                        widen_cursor(&mut track, subscription);
                    }
                    continue;
                }
            };
            let Ok(Some(datagram)) = received else { break };
            let current = self.lock().datagram(datagram.sequence, Instant::now());
            self.changed.notify_one();
            if !current {
                continue;
            }
            let Some(subscriber) = self.subscriber.upgrade() else {
                return Outcome::Stopped;
            };
            let info = ObjectInfo {
                group_id: datagram.sequence,
                object_id: 0,
                timestamp_us: self.timestamp(datagram.timestamp),
                delivery_mode: DeliveryMode::Datagram,
                priority: self.priority,
            };
            let object = Object {
                group: datagram.sequence,
                index: 0,
                timestamp_us: info.timestamp_us,
                payload: datagram.payload,
                arrived: Instant::now(),
            };
            let permit = self
                .window
                .clone()
                .try_acquire_many_owned(super::window_cost(object.payload.len()))
                .ok();
            if permit.is_none() && subscriber.uses_window() {
                tracing::debug!("datagram dropped: the callback is {} objects behind", super::WINDOW);
            }
            if !subscriber.deliver(info, object, permit) {
                return Outcome::Stopped;
            }
        }
        std::future::pending().await
    }

    /// The deliverer: what the sequencer releases goes to the application in order; ENDED once
    /// the track ended and every group below its end was delivered or counted.
    async fn deliver(&self) -> Outcome {
        loop {
            let now = Instant::now();
            let (losses, deadline, done, wake) = {
                let mut sequencer = self.lock();
                let was_full = sequencer.is_full();
                self.released().extend(sequencer.ready(now));
                // The receiver looks again when delivery made room it was waiting for, or the
                // sequencer scheduled repairs for it to start.
                let wake = (was_full && !sequencer.is_full()) || sequencer.has_repairs();
                (
                    sequencer.take_losses(),
                    sequencer.deadline(now),
                    sequencer.is_done(),
                    wake,
                )
            };
            if wake {
                self.room.notify_one();
            }
            let Some(subscriber) = self.subscriber.upgrade() else {
                return Outcome::Stopped;
            };
            subscriber.tally.lost(&losses);
            // An object leaves `released` only once it has its window slot: this wait is where
            // the reading may end (its session lost), and what is still here is resumed.
            loop {
                // The guard goes before the wait (a std mutex guard is not held across an await).
                let cost = self
                    .released()
                    .front()
                    .map(|object| super::window_cost(object.payload.len()));
                let Some(cost) = cost else { break };
                let permit = match subscriber.uses_window() {
                    true => match self.window.clone().acquire_many_owned(cost).await {
                        Ok(permit) => Some(permit),
                        Err(_) => return Outcome::Stopped,
                    },
                    false => None,
                };
                let Some(object) = self.released().pop_front() else {
                    break;
                };
                let info = ObjectInfo {
                    group_id: object.group,
                    object_id: object.index,
                    timestamp_us: object.timestamp_us,
                    delivery_mode: DeliveryMode::Stream,
                    priority: self.priority,
                };
                if !subscriber.deliver(info, object, permit) {
                    return Outcome::Stopped;
                }
            }
            drop(subscriber);
            if done {
                return Outcome::Ended;
            }
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = sleep => {}
            }
        }
    }
}

/// What a subscription that failed with `err` reports, and the publisher's code (0 if none): the
/// publisher's own abort code, or who ended it. moq-relay ends a subscription with a bare
/// "internal error" when the publisher's session with it is lost (seen in a starved process:
/// the relay's connection to the publisher timed out), which alone tells a user nothing.
fn failure(err: &moq_net::Error) -> (String, u32) {
    use moq_net::StreamError;
    match err {
        moq_net::Error::App(code) => (
            format!("the publisher aborted the track with code {code}"),
            u32::from(*code),
        ),
        moq_net::Error::Stream(StreamError::Internal | StreamError::Session(_)) => (
            "the relay ended the subscription (as it does when the publisher's session with it is lost)".to_string(),
            0,
        ),
        _ => ("the subscription failed".to_string(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::{announcement_wait, failure, resume_position};
    use std::time::{Duration, Instant};

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[test]
    fn an_announced_broadcast_is_waited_for_the_whole_timeout() {
        let now = Instant::now();
        assert_eq!(announcement_wait(None, now, TIMEOUT), Some(TIMEOUT));
    }

    #[test]
    fn an_absent_broadcast_is_waited_for_what_is_left_of_the_timeout() {
        let since = Instant::now();
        assert_eq!(announcement_wait(Some(since), since, TIMEOUT), Some(TIMEOUT));
        let later = since + Duration::from_millis(3_200);
        assert_eq!(
            announcement_wait(Some(since), later, TIMEOUT),
            Some(Duration::from_millis(1_800))
        );
    }

    #[test]
    fn a_broadcast_absent_for_the_timeout_is_answered_at_once() {
        let since = Instant::now();
        assert_eq!(announcement_wait(Some(since), since + TIMEOUT, TIMEOUT), None);
        assert_eq!(announcement_wait(Some(since), since + TIMEOUT * 100, TIMEOUT), None);
        // A clock read before the absence began (a race between two fetches) waits in full.
        assert_eq!(
            announcement_wait(Some(since + Duration::from_secs(1)), since, TIMEOUT),
            Some(TIMEOUT)
        );
    }

    #[test]
    fn a_failed_subscription_names_who_ended_it() {
        let (message, code) = failure(&moq_net::Error::App(7));
        assert_eq!(
            (message.as_str(), code),
            ("the publisher aborted the track with code 7", 7)
        );
        for reset in [
            moq_net::StreamError::Internal,
            moq_net::StreamError::Session(moq_net::SessionError::Internal),
        ] {
            let (message, code) = failure(&moq_net::Error::Stream(reset));
            assert!(message.starts_with("the relay ended the subscription"), "{message}");
            assert_eq!(code, 0);
        }
        let (message, code) = failure(&moq_net::Error::Timeout);
        assert_eq!((message.as_str(), code), ("the subscription failed", 0));
    }

    #[test]
    fn a_session_resumes_at_the_first_released_object_the_application_did_not_get() {
        // The sequencer stands after group 40; the deliverer still held group 12 from object 3 on.
        assert_eq!(resume_position(Some((12, 3)), (41, 0)), (12, 3));
        assert_eq!(resume_position(None, (41, 0)), (41, 0));
    }
}
