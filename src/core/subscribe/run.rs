//! The subscription reader: establishes the subscription on the client's session, reads groups
//! and datagrams, and after a reconnect (or while waiting for the track) subscribes again.

use super::reorder::{Object, Reorder};
use super::{check_names, Start, SubscribeOptions, Subscriber};
use crate::core::client::Client;
use crate::core::events::{ObjectInfo, StatusReport, SubscriptionStatus};
use crate::core::publish::{carries_timestamps, DeliveryMode, RETENTION};
use crate::core::stats::DropReason;
use crate::error::{self, Error, ErrorKind, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

/// What a subscription reads: one track of one namespace, through one client.
pub(crate) struct Target {
    pub client: Weak<Client>,
    namespace: String,
    track: String,
    pub options: SubscribeOptions,
}

/// A live subscription on one session: the group and datagram cursors and where to start.
pub(crate) struct Live {
    groups: moq_net::track::Subscriber,
    datagrams: moq_net::track::Subscriber,
    reorder: Reorder,
    /// The subscription to switch both cursors to once the first group arrived.
    widen: Option<moq_net::track::Subscription>,
    /// Whether this session carries publisher timestamps.
    timestamps: bool,
    priority: u8,
}

impl Target {
    pub fn new(client: &Arc<Client>, namespace: &str, track: &str, options: SubscribeOptions) -> Result<Self> {
        check_names(namespace, track)?;
        Ok(Self {
            client: Arc::downgrade(client),
            namespace: namespace.to_string(),
            track: track.to_string(),
            options,
        })
    }

    /// Resolves the track on the client's current session: the broadcast (own, or announced by
    /// the relay within the client's timeout) and the track in it.
    pub fn resolve(
        &self,
        client: &Arc<Client>,
    ) -> impl std::future::Future<Output = Result<moq_net::track::Consumer>> + Send + 'static {
        let timeout = client.timeout();
        let consumer = client.remote().consume();
        let own = client.own_broadcast(&self.namespace);
        let (namespace, track) = (self.namespace.clone(), self.track.clone());
        async move {
            let broadcast = match own {
                Some(broadcast) => broadcast,
                None => tokio::time::timeout(timeout, consumer.routed_broadcast(namespace.as_str()))
                    .await
                    .map_err(|_| {
                        Error::new(
                            ErrorKind::NotFound,
                            format!(
                                "no publisher announced namespace \"{namespace}\" on the relay within {} ms",
                                timeout.as_millis()
                            ),
                        )
                    })?
                    .map_err(|err| error::from_moq(&err, format!("namespace \"{namespace}\"")))?,
            };
            broadcast
                .track(&track)
                .map_err(|err| error::from_moq(&err, format!("track \"{track}\"")))
        }
    }

    /// Where this target's track is: namespace/track, for messages.
    pub fn name(&self) -> String {
        format!("{}/{}", self.namespace, self.track)
    }

    /// Subscribes on the client's current session, bounded by the client's timeout. `resume`:
    /// the group a resumed subscription continues at (after a reconnect), asked of the
    /// publisher as the floor of what it sends, so it does not replay its whole retention.
    pub fn establish(
        &self,
        client: &Arc<Client>,
        resume: Option<u64>,
    ) -> impl std::future::Future<Output = Result<Live>> + Send + 'static {
        let timeout = client.timeout();
        let resolving = self.resolve(client);
        let version = client.session("subscribing").ok().and_then(|session| session.version);
        let (namespace, track, options) = (self.namespace.clone(), self.track.clone(), self.options);
        let subscribing = async move {
            let consumer = resolving.await?;
            let mut subscription = moq_net::track::Subscription::default()
                .with_max_age(options.max_latency.unwrap_or(RETENTION))
                .with_priority(options.priority);
            // Tell the publisher where this subscriber starts, so it does not send the history
            // its budget would otherwise reach back to only to have it ignored here (at a high
            // rate that flood crowds the wanted groups out of the receive cache). Known up
            // front when resuming, or when this client already follows the track; otherwise
            // set once the subscription reports the newest group (below).
            let mut floor = start_floor(options.start, resume, consumer.latest());
            if let Some(group) = floor.flatten() {
                subscription = subscription.with_start(moq_net::track::Position::group(group));
            }
            let context = format!("subscribing to track \"{track}\" in namespace \"{namespace}\"");
            // LATEST where the newest group is not known yet: ask for fresh groups only (the
            // newest one), then widen to the normal budget once it arrived. Both cursors ask
            // narrowly: the relay serves their union, and a wide datagram cursor would bring
            // the cached groups in any order, so the newest known while waiting could be an
            // old one (`start_positions_reach_back` once started 7 groups back).
            let latest_first = options.start == Start::Latest && consumer.latest().is_none();
            let first = match latest_first {
                true => subscription.clone().with_max_age(Duration::ZERO),
                false => subscription.clone(),
            };
            let mut groups = consumer
                .subscribe(first.clone())
                .await
                .map_err(|err| error::from_moq(&err, &context))?;
            let mut datagrams = consumer
                .subscribe(first)
                .await
                .map_err(|err| error::from_moq(&err, &context))?;
            // Datagrams already cached were published before the subscription went live: the
            // track replays them at once, so drain what is ready now and drop it.
            let mut replayed = None;
            while let Ok(Ok(Some(old))) = tokio::time::timeout(Duration::ZERO, datagrams.recv_datagram()).await {
                replayed = replayed.max(Some(old.sequence));
            }
            // Objects published after the subscription is live start after the newest
            // sequence the relay knew of when it confirmed the subscription.
            let mut latest = groups.latest().max(replayed);
            let wait = match options.start {
                // Counting back needs the newest group; it arrives shortly after the
                // subscription is confirmed when the track has any.
                Start::GroupsBack(_) => LATEST_WAIT,
                // LATEST could otherwise adopt an older group that happens to arrive first;
                // the wait is short because an empty track delays SUBSCRIBED by all of it.
                Start::Latest => LATEST_WAIT_FOR_LATEST,
                _ => Duration::ZERO,
            };
            let deadline = tokio::time::Instant::now() + wait;
            while latest.is_none() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
                latest = groups.latest();
            }
            // LATEST resolved by the wait: start at that group with the normal budget.
            let latest_found = latest_first && latest.is_some();
            let next = latest.map_or(0, |latest| latest + 1);
            let wanted = start_floor(options.start, resume, latest);
            if wanted.is_some() && wanted != floor && (!latest_first || latest_found) {
                floor = wanted;
                subscription = subscription.with_start(floor.flatten().map(moq_net::track::Position::group));
                for reader in [&mut groups, &mut datagrams] {
                    if let Err(err) = reader.update(subscription.clone()) {
                        tracing::debug!("setting where the subscription starts: {err}");
                    }
                }
            }
            let mut reorder = Reorder::new(match options.start {
                Start::Next => next,
                Start::Latest => latest.unwrap_or(0),
                Start::Group(group) => group,
                Start::GroupsBack(count) => latest.map_or(0, |latest| latest.saturating_sub(count)),
            });
            reorder.latest_known = latest;
            reorder.adopt_first = options.start == Start::Latest && latest.is_none();
            reorder.mixed = replayed.is_some();
            reorder.max_latency = options.max_latency;
            let priority = groups.info().priority;
            Ok(Live {
                widen: (latest_first && !latest_found).then_some(subscription),
                groups,
                datagrams,
                reorder,
                timestamps: carries_timestamps(version),
                priority,
            })
        };
        let (namespace, track) = (self.namespace.clone(), self.track.clone());
        async move {
            // The routed-broadcast wait has its own bound; this one covers the subscribe round trip.
            tokio::time::timeout(timeout * 2, subscribing).await.map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "subscribing to \"{namespace}/{track}\" got no answer within {} ms",
                        (timeout * 2).as_millis()
                    ),
                )
            })?
        }
    }
}

/// The floor a subscription asks the publisher for: `Some(Some(group))` to start there,
/// `Some(None)` for no floor, `None` while it cannot be known yet (the newest group is unknown).
/// A resumed subscription whose publisher restarted its numbering (newest below the floor)
/// drops the floor, or it would wait above the live edge forever.
fn start_floor(start: Start, resume: Option<u64>, latest: Option<u64>) -> Option<Option<u64>> {
    match (resume, start) {
        (Some(group), _) if latest.is_some_and(|latest| latest + 1 < group) => Some(None),
        (Some(group), _) | (None, Start::Group(group)) => Some(Some(group)),
        (None, Start::Next) => latest.map(|latest| Some(latest + 1)),
        (None, Start::Latest) => latest.map(Some),
        (None, Start::GroupsBack(count)) => latest.map(|latest| Some(latest.saturating_sub(count))),
    }
}

/// A pending read of a group's next frame: the group, the index of that frame, the result.
type FrameRead = Pin<
    Box<
        dyn Future<
                Output = (
                    moq_net::group::Consumer,
                    u64,
                    moq_net::Result<Option<moq_net::frame::Frame>>,
                ),
            > + Send,
    >,
>;

fn next_frame(mut group: moq_net::group::Consumer) -> FrameRead {
    Box::pin(async move {
        let index = group.index();
        let read = group.read_frame().await;
        (group, index, read)
    })
}

/// Switches a cursor from the narrow LATEST subscription to the normal one. A failure only
/// means the track is gone, which its reader reports.
fn widen_cursor(track: &mut moq_net::track::Subscriber, subscription: moq_net::track::Subscription) {
    if let Err(err) = track.update(subscription) {
        tracing::debug!("widening the subscription: {err}");
    }
}

/// How one session's reading ended.
enum Outcome {
    /// The subscriber is gone or stopped: nothing more to do.
    Stopped,
    /// The publisher ended the track.
    Ended,
    /// The subscription failed (often: the session was lost); the publisher's abort code if any.
    Failed(Error, u32),
}

/// How long a subscription starting N groups back waits to learn the newest group.
const LATEST_WAIT: Duration = Duration::from_secs(1);
/// How long a LATEST subscription waits for the newest group before adopting the first group
/// that arrives (`tests/object_model.rs::start_positions_reach_back` once got all ten cached
/// groups from the first one on).
const LATEST_WAIT_FOR_LATEST: Duration = Duration::from_millis(250);

/// How long a finished track's open groups may take to complete before ENDED is reported.
const FINISH_DRAIN: Duration = Duration::from_secs(5);

/// Delay between attempts to subscribe while the track is not (or no longer) there.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(500);

/// The terminal status for an error that ends a subscription.
fn terminal(err: &Error) -> SubscriptionStatus {
    match err.kind() {
        ErrorKind::NotFound => SubscriptionStatus::NotFound,
        _ => SubscriptionStatus::Error,
    }
}

/// Reads the subscription, and after a reconnect subscribes again on the new session.
pub(crate) async fn run(subscriber: Weak<Subscriber>, target: Target, first: Option<Live>) {
    crate::inject::check("task:subscriber");
    let window = Arc::new(Semaphore::new(super::WINDOW));
    let mut live = first;
    // Where the previous session stopped: the next group, and the objects of it already delivered.
    let mut resume_at: Option<(u64, u64)> = None;
    let patient = target.options.wait_for_track;
    let (status, code, reason) = loop {
        let current = match live.take() {
            Some(current) => current,
            None => {
                let Some(client) = target.client.upgrade() else { return };
                if let Err(err) = client.wait_connected(patient).await {
                    break (SubscriptionStatus::Error, 0, err);
                }
                match target.establish(&client, resume_at.map(|(group, _)| group)).await {
                    Ok(current) => current,
                    Err(err) if patient || (resume_at.is_some() && client.resumable()) => {
                        tracing::debug!("subscribing again shortly: {err}");
                        drop(client);
                        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
                        continue;
                    }
                    Err(err) => break (terminal(&err), 0, err),
                }
            }
        };
        let Some(strong) = subscriber.upgrade() else { return };
        strong.report(StatusReport {
            status: SubscriptionStatus::Subscribed,
            code: 0,
            message: String::new(),
        });
        drop(strong);
        let mut reorder = current.reorder;
        if let Some((previous, delivered)) = resume_at {
            // Continue after the last object delivered before the interruption: the publisher
            // may replay what it still holds. A publisher that restarted its numbering (newest
            // sequence below ours) starts over from what the new session reports.
            if reorder.latest_known.is_none_or(|latest| latest + 1 >= previous) {
                reorder.start = previous;
                reorder.next = previous;
                reorder.next_index = delivered;
            }
        }
        let reader = Reader {
            subscriber: &subscriber,
            reorder: Mutex::new(reorder),
            datagram_seen: Notify::new(),
            first_group: Notify::new(),
            window: &window,
            timestamps: current.timestamps,
            priority: current.priority,
        };
        let outcome = tokio::select! {
            outcome = reader.read_groups(current.groups, current.widen.clone()) => outcome,
            outcome = reader.read_datagrams(current.datagrams, current.widen) => outcome,
        };
        resume_at = Some(reader.reorder.lock().unwrap_or_else(PoisonError::into_inner).position());
        match outcome {
            Outcome::Stopped => return,
            Outcome::Ended => {
                break (
                    SubscriptionStatus::Ended,
                    0,
                    Error::new(ErrorKind::Closed, "the publisher ended the track"),
                )
            }
            Outcome::Failed(reason, code) => {
                let resumable = code == 0 && target.client.upgrade().is_some_and(|client| client.resumable());
                if !resumable {
                    break (SubscriptionStatus::Error, code, reason);
                }
                tracing::info!("subscription interrupted, resuming after reconnect: {reason}");
            }
        }
    };
    if let Some(subscriber) = subscriber.upgrade() {
        subscriber.end(status, code, reason);
    }
}

/// One session's reading state, shared by the group and datagram readers.
struct Reader<'a> {
    subscriber: &'a Weak<Subscriber>,
    reorder: Mutex<Reorder>,
    datagram_seen: Notify,
    /// The group reader widened its cursor: the datagram reader widens its own.
    first_group: Notify,
    window: &'a Arc<Semaphore>,
    timestamps: bool,
    priority: u8,
}

impl Reader<'_> {
    fn reorder(&self) -> std::sync::MutexGuard<'_, Reorder> {
        self.reorder.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn timestamp(&self, timestamp: moq_net::Timestamp) -> u64 {
        match self.timestamps {
            true => u64::try_from(timestamp.as_micros()).unwrap_or(u64::MAX),
            false => 0,
        }
    }

    /// Reads groups until the track ends or fails, delivering stream objects in sequence order
    /// as they arrive (the objects of an open group are not held back until it completes).
    async fn read_groups(
        &self,
        mut track: moq_net::track::Subscriber,
        mut widen: Option<moq_net::track::Subscription>,
    ) -> Outcome {
        let mut frames = FuturesUnordered::new();
        loop {
            let deadline = self.reorder().deadline();
            let gap_timer = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = track.recv_group() => match received {
                    Ok(Some(group)) => {
                        if self.reorder().open(group.sequence) {
                            frames.push(next_frame(group));
                        }
                        if let Some(subscription) = widen.take() {
                            widen_cursor(&mut track, subscription);
                            self.first_group.notify_one();
                        }
                    }
                    Ok(None) => {
                        // The track is finished; deliver what its open groups still hold
                        // (bounded: a group that never completes does not hold ENDED back).
                        let drain = async {
                            while let Some((group, index, read)) = frames.next().await {
                                if let Some(group) = self.on_frame(group, index, read) {
                                    frames.push(next_frame(group));
                                }
                                if let Some(outcome) = self.flush().await {
                                    return Some(outcome);
                                }
                            }
                            None
                        };
                        if let Ok(Some(outcome)) = tokio::time::timeout(FINISH_DRAIN, drain).await {
                            return outcome;
                        }
                        return Outcome::Ended;
                    }
                    Err(err) => {
                        let code = match err {
                            moq_net::Error::App(code) => u32::from(code),
                            _ => 0,
                        };
                        let message = match code {
                            0 => "the subscription failed".to_string(),
                            code => format!("the publisher aborted the track with code {code}"),
                        };
                        return Outcome::Failed(error::from_moq(&err, message), code);
                    }
                },
                Some((group, index, read)) = frames.next(), if !frames.is_empty() => {
                    if let Some(group) = self.on_frame(group, index, read) {
                        frames.push(next_frame(group));
                    }
                }
                _ = self.datagram_seen.notified() => {}
                _ = gap_timer => {}
            }
            if let Some(outcome) = self.flush().await {
                return outcome;
            }
        }
    }

    /// Takes one frame read; returns the group to read on from, or `None` once it is complete.
    fn on_frame(
        &self,
        group: moq_net::group::Consumer,
        index: u64,
        read: moq_net::Result<Option<moq_net::frame::Frame>>,
    ) -> Option<moq_net::group::Consumer> {
        let sequence = group.sequence;
        match read {
            Ok(Some(frame)) => {
                self.reorder().object(Object {
                    group: sequence,
                    index,
                    timestamp_us: self.timestamp(frame.timestamp),
                    payload: frame.payload,
                    arrived: Instant::now(),
                });
                Some(group)
            }
            Ok(None) => {
                self.reorder().complete(sequence);
                None
            }
            Err(err) => {
                tracing::debug!(sequence, "group ended early: {err}");
                self.reorder().complete(sequence);
                None
            }
        }
    }

    /// Delivers what the reorder releases; `Some` when the subscriber is gone.
    async fn flush(&self) -> Option<Outcome> {
        let (ready, late) = {
            let mut reorder = self.reorder();
            (reorder.ready(Instant::now()), reorder.take_late())
        };
        let subscriber = self.subscriber.upgrade()?;
        if late > 0 {
            subscriber.tally.dropped(DropReason::TooLate, late);
        }
        for object in ready {
            let permit = match subscriber.uses_window() {
                true => match self
                    .window
                    .clone()
                    .acquire_many_owned(super::window_cost(object.payload.len()))
                    .await
                {
                    Ok(permit) => Some(permit),
                    Err(_) => return Some(Outcome::Stopped),
                },
                false => None,
            };
            let info = ObjectInfo {
                group_id: object.group,
                object_id: object.index,
                timestamp_us: object.timestamp_us,
                delivery_mode: DeliveryMode::Stream,
                priority: self.priority,
            };
            if !subscriber.deliver(info, object, permit) {
                return Some(Outcome::Stopped);
            }
        }
        None
    }

    /// Reads datagrams (best-effort: dropped while the callbacks are a window behind). Never
    /// ends on its own: the group reader reports how the track ended.
    async fn read_datagrams(
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
            let current = self.reorder().datagram(datagram.sequence);
            self.datagram_seen.notify_one();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_follows_the_start_and_the_resume_point() {
        // Unknown newest group: only an absolute start or a resume point is known.
        assert_eq!(start_floor(Start::Next, None, None), None);
        assert_eq!(start_floor(Start::Latest, None, None), None);
        assert_eq!(start_floor(Start::GroupsBack(3), None, None), None);
        assert_eq!(start_floor(Start::Group(7), None, None), Some(Some(7)));
        assert_eq!(start_floor(Start::Next, Some(40), None), Some(Some(40)));
        // Known newest group 41.
        assert_eq!(start_floor(Start::Next, None, Some(41)), Some(Some(42)));
        assert_eq!(start_floor(Start::Latest, None, Some(41)), Some(Some(41)));
        assert_eq!(start_floor(Start::GroupsBack(3), None, Some(41)), Some(Some(38)));
        assert_eq!(start_floor(Start::GroupsBack(100), None, Some(41)), Some(Some(0)));
        // Resuming where the publisher still is (or has moved on): continue at the resume point.
        assert_eq!(start_floor(Start::Next, Some(40), Some(39)), Some(Some(40)));
        assert_eq!(start_floor(Start::Latest, Some(40), Some(90)), Some(Some(40)));
        // The publisher restarted its numbering: no floor, or the subscription would wait forever.
        assert_eq!(start_floor(Start::Next, Some(40), Some(5)), Some(None));
    }
}
