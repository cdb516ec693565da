//! Subscribers: deliver every object of one track to a callback on the dispatcher thread.
//!
//! Stream objects are delivered reliably and in sequence order (see [`Reorder`]): the reader
//! waits when the callback falls
//! [`WINDOW`] objects behind (back-pressure reaches the relay, nothing is dropped). Datagrams
//! are delivered best-effort: one that arrives while the window is full is dropped.

use crate::core::client::Client;
use crate::core::config;
use crate::core::publish::RETENTION;
use crate::core::stats::{DropReason, Snapshot, Tally};
use crate::dispatch::{self, Gate};
use crate::error::{self, Error, ErrorKind, Result};
use crate::runtime;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tokio::task::AbortHandle;

/// Receives each object's payload on the dispatcher thread; the slice lives for the call only.
pub type DataCallback = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// Objects queued for the callback before the reader waits.
pub const WINDOW: usize = 1024;

/// A live subscription to one track.
pub struct Subscriber {
    gate: Arc<Gate>,
    subscribed: AtomicBool,
    /// Why the subscription ended, when it ended on its own.
    ended: Mutex<Option<Error>>,
    tasks: Mutex<Vec<AbortHandle>>,
    tally: Tally,
    client: std::sync::Weak<Client>,
}

impl Subscriber {
    /// Subscribes to `track_name` in `namespace` and returns once the publisher confirmed it.
    ///
    /// Waits (bounded by the client's timeout) for the namespace to be announced. When the
    /// client reconnects, the subscription is re-established on the new session by itself.
    pub fn new(client: &Arc<Client>, namespace: &str, track_name: &str, callback: DataCallback) -> Result<Arc<Self>> {
        config::check_namespace(namespace)?;
        config::check_name("track_name", track_name)?;
        client.session("subscribing")?;
        let target = Target {
            client: Arc::downgrade(client),
            namespace: namespace.to_string(),
            track: track_name.to_string(),
        };
        let establish = target.establish(client);
        let first = runtime::run_blocking("subscribe", client.timeout() + Duration::from_secs(1), establish)?;

        let subscriber = Arc::new(Self {
            gate: Gate::new(),
            subscribed: AtomicBool::new(true),
            ended: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            tally: client.tally(),
            client: Arc::downgrade(client),
        });
        client.adopt(&subscriber)?;

        let weak = Arc::downgrade(&subscriber);
        let task = runtime::spawn_supervised(
            &runtime::handle()?,
            "the subscription reader",
            run(Arc::downgrade(&subscriber), target, first, callback),
            move |err: Error| {
                if let Some(subscriber) = weak.upgrade() {
                    subscriber.end(err);
                }
            },
        );
        subscriber.lock_tasks().push(task);
        // The reader may have ended before its handle was stored.
        if !subscriber.is_subscribed() {
            for task in subscriber.lock_tasks().drain(..) {
                task.abort();
            }
        }
        Ok(subscriber)
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<AbortHandle>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This subscription's counters, with the client's RTT.
    pub fn stats(&self) -> Snapshot {
        Snapshot {
            rtt_us: self.client.upgrade().map_or(0, |client| client.rtt_us()),
            ..self.tally.own.snapshot()
        }
    }

    /// Whether objects are still being delivered.
    pub fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// Why the subscription ended on its own (end of track, error, disconnect), if it did.
    pub fn end_reason(&self) -> Option<Error> {
        self.ended.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Records why the subscription ended and stops both readers. Objects already queued for
    /// the callback are still delivered (they arrived before the end).
    fn end(&self, reason: Error) {
        {
            let mut ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
            if ended.is_none() && self.is_subscribed() {
                tracing::info!("subscription ended: {reason}");
                *ended = Some(reason);
            }
            self.subscribed.store(false, Ordering::Release);
        }
        for task in self.lock_tasks().drain(..) {
            task.abort();
        }
    }

    /// Stops delivery. Afterwards no callback of this subscriber runs (and, unless called from
    /// inside a callback, none is running). Idempotent.
    pub fn unsubscribe(&self) {
        self.subscribed.store(false, Ordering::Release);
        for task in self.lock_tasks().drain(..) {
            task.abort();
        }
        dispatch::close(&self.gate);
    }

    /// Queues `payload` for the callback, holding one window permit until it ran.
    fn deliver(&self, callback: &DataCallback, payload: Bytes, permit: tokio::sync::OwnedSemaphorePermit) -> bool {
        let callback = callback.clone();
        let tally = self.tally.clone();
        let job = Box::new(move || {
            let _permit = permit;
            tally.received(payload.len());
            callback(&payload);
        });
        dispatch::post(&self.gate, job).is_ok()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.unsubscribe();
    }
}

/// Puts groups back in sequence order.
///
/// Each stream object travels as its own group on its own QUIC stream, so groups can arrive out
/// of order. Completed groups wait here until every lower sequence has been delivered, was a
/// datagram (datagrams share the sequence space), or stayed missing for [`GAP_TIMEOUT`]
/// (a lost datagram, or a group the publisher no longer has).
struct Reorder {
    /// The first sequence published after the subscription went live.
    start: u64,
    /// The newest sequence the session knew of when the subscription went live.
    latest_known: Option<u64>,
    next: u64,
    pending: BTreeMap<u64, Vec<Bytes>>,
    datagrams: BTreeSet<u64>,
    gap_since: Option<Instant>,
    /// Whether the track carries datagrams too.
    mixed: bool,
    /// Objects dropped as too late since the last [`Reorder::take_late`].
    late: u64,
}

/// How long a missing sequence may hold back later groups before it is skipped: the
/// publisher's retention, past which a missing group can no longer arrive. It must be long:
/// under load moq-lite sends newer groups first, so an older group can trail for seconds.
const GAP_TIMEOUT: Duration = RETENTION;
/// The gap timeout where a gap most likely never fills: on a track that also carries datagrams
/// (a lost datagram never arrives), and before the first delivery when the session did not know
/// where the track stood (on moq-lite-01..05 the relay's subscription to the publisher starts at
/// the publisher's newest group, so the groups before it never come).
const SHORT_GAP_TIMEOUT: Duration = Duration::from_millis(500);

impl Reorder {
    fn new(next: u64) -> Self {
        Self {
            start: next,
            latest_known: next.checked_sub(1),
            next,
            pending: BTreeMap::new(),
            datagrams: BTreeSet::new(),
            gap_since: None,
            mixed: false,
            late: 0,
        }
    }

    /// Records a datagram's sequence so the stream order can pass it; false for a datagram
    /// published before the subscription went live (replayed from the track's cache).
    fn datagram(&mut self, sequence: u64) -> bool {
        self.mixed = true;
        if sequence >= self.next {
            self.datagrams.insert(sequence);
        }
        sequence >= self.start
    }

    /// Adds a completed group; late groups (below the cursor) are dropped and counted, replays
    /// of groups from before the subscription (or before a resume) are ignored.
    fn group(&mut self, sequence: u64, frames: Vec<Bytes>) {
        if sequence >= self.next {
            self.pending.insert(sequence, frames);
        } else if sequence >= self.start {
            tracing::debug!(sequence, next = self.next, "late group dropped");
            self.late += frames.len() as u64;
        } else {
            tracing::debug!(sequence, start = self.start, "replayed group ignored");
        }
    }

    /// The frames that may be delivered now, in order.
    fn ready(&mut self, now: Instant) -> Vec<Bytes> {
        let mut out = Vec::new();
        loop {
            if let Some(frames) = self.pending.remove(&self.next) {
                out.extend(frames);
            } else if !self.datagrams.remove(&self.next) {
                // A gap: wait for it, unless it has been missing too long.
                let Some((&lowest, _)) = self.pending.iter().next() else {
                    break;
                };
                let since = *self.gap_since.get_or_insert(now);
                if now.duration_since(since) < self.gap_timeout() {
                    break;
                }
                tracing::debug!(from = self.next, to = lowest, "skipping a sequence gap");
                let missing = (self.next..lowest).filter(|s| !self.datagrams.contains(s)).count();
                self.late += missing as u64;
                self.next = lowest;
                self.datagrams.retain(|s| *s >= lowest);
                continue;
            }
            self.next += 1;
            self.gap_since = None;
        }
        out
    }

    /// How many objects were dropped as too late since the last call.
    fn take_late(&mut self) -> u64 {
        std::mem::take(&mut self.late)
    }

    fn gap_timeout(&self) -> Duration {
        let start_unknown = self.latest_known.is_none() && self.next == self.start;
        if self.mixed || start_unknown {
            SHORT_GAP_TIMEOUT
        } else {
            GAP_TIMEOUT
        }
    }

    /// When the current gap times out, if there is one.
    fn deadline(&self) -> Option<Instant> {
        self.gap_since.map(|since| since + self.gap_timeout())
    }
}

struct Shared {
    reorder: Mutex<Reorder>,
    datagram_seen: Notify,
}

/// What a subscription reads: one track of one namespace, through one client.
struct Target {
    client: std::sync::Weak<Client>,
    namespace: String,
    track: String,
}

/// A live subscription on one session: the group and datagram cursors and where to start.
struct Live {
    groups: moq_net::track::Subscriber,
    datagrams: moq_net::track::Subscriber,
    reorder: Reorder,
}

impl Target {
    /// Subscribes on the client's current session.
    fn establish(&self, client: &Arc<Client>) -> impl std::future::Future<Output = Result<Live>> + Send + 'static {
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
            let consumer = broadcast
                .track(&track)
                .map_err(|err| error::from_moq(&err, format!("track \"{track}\"")))?;
            let subscription = moq_net::track::Subscription::default().with_max_age(RETENTION);
            let context = format!("subscribing to track \"{track}\" in namespace \"{namespace}\"");
            let groups = consumer
                .subscribe(subscription.clone())
                .await
                .map_err(|err| error::from_moq(&err, &context))?;
            let mut datagrams = consumer
                .subscribe(subscription)
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
            let latest = groups.latest().max(replayed);
            let mut reorder = Reorder::new(latest.map_or(0, |latest| latest + 1));
            reorder.mixed = replayed.is_some();
            Ok(Live {
                groups,
                datagrams,
                reorder,
            })
        }
    }
}

/// How one session's reading ended.
enum Outcome {
    /// The subscriber is gone or stopped: nothing more to do.
    Stopped,
    /// The publisher ended the track.
    Ended(Error),
    /// The subscription failed (often: the session was lost).
    Failed(Error),
}

/// Delay between attempts to re-subscribe after a reconnect while the publisher is not back.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(500);

/// Reads the subscription, and after a reconnect subscribes again on the new session.
async fn run(subscriber: std::sync::Weak<Subscriber>, target: Target, first: Live, callback: DataCallback) {
    crate::inject::check("task:subscriber");
    let window = Arc::new(Semaphore::new(WINDOW));
    let mut live = Some(first);
    let mut resume_at: Option<u64> = None;
    let reason = loop {
        let current = match live.take() {
            Some(current) => current,
            None => {
                let Some(client) = target.client.upgrade() else { return };
                if let Err(err) = client.wait_connected().await {
                    break err;
                }
                match target.establish(&client).await {
                    Ok(current) => current,
                    Err(err) if client.resumable() => {
                        tracing::debug!("re-subscribing after a reconnect: {err}");
                        drop(client);
                        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
                        continue;
                    }
                    Err(err) => break err,
                }
            }
        };
        let mut reorder = current.reorder;
        if let Some(previous) = resume_at {
            // Continue after the last object delivered before the interruption: the publisher
            // may replay what it still holds. A publisher that restarted its numbering (newest
            // sequence below ours) starts over from what the new session reports.
            if reorder.latest_known.is_none_or(|latest| latest + 1 >= previous) {
                reorder.start = previous;
                reorder.next = previous;
            }
        }
        let shared = Shared {
            reorder: Mutex::new(reorder),
            datagram_seen: Notify::new(),
        };
        let outcome = tokio::select! {
            outcome = read_groups(&subscriber, current.groups, &shared, &callback, &window) => outcome,
            outcome = read_datagrams(&subscriber, current.datagrams, &shared, &callback, &window) => outcome,
        };
        resume_at = Some(shared.reorder.lock().unwrap_or_else(PoisonError::into_inner).next);
        match outcome {
            Outcome::Stopped => return,
            Outcome::Ended(reason) => break reason,
            Outcome::Failed(reason) => {
                let resumable = target.client.upgrade().is_some_and(|client| client.resumable());
                if !resumable {
                    break reason;
                }
                tracing::info!("subscription interrupted, resuming after reconnect: {reason}");
            }
        }
    };
    if let Some(subscriber) = subscriber.upgrade() {
        subscriber.end(reason);
    }
}

/// Reads groups until the track ends or fails, delivering stream objects in sequence order.
async fn read_groups(
    subscriber: &std::sync::Weak<Subscriber>,
    mut track: moq_net::track::Subscriber,
    shared: &Shared,
    callback: &DataCallback,
    window: &Arc<Semaphore>,
) -> Outcome {
    loop {
        let deadline = shared.reorder.lock().unwrap_or_else(PoisonError::into_inner).deadline();
        let gap_timer = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = track.recv_group() => match received {
                Ok(Some(mut group)) => {
                    let sequence = group.sequence;
                    let mut frames = Vec::new();
                    loop {
                        match group.read_frame().await {
                            Ok(Some(frame)) => frames.push(frame.payload),
                            Ok(None) => break,
                            Err(err) => {
                                tracing::debug!(sequence, "group ended early: {err}");
                                break;
                            }
                        }
                    }
                    shared.reorder.lock().unwrap_or_else(PoisonError::into_inner).group(sequence, frames);
                }
                Ok(None) => return Outcome::Ended(Error::new(ErrorKind::Closed, "the publisher ended the track")),
                Err(err) => return Outcome::Failed(error::from_moq(&err, "the subscription failed")),
            },
            _ = shared.datagram_seen.notified() => {}
            _ = gap_timer => {}
        }
        let (ready, late) = {
            let mut reorder = shared.reorder.lock().unwrap_or_else(PoisonError::into_inner);
            (reorder.ready(Instant::now()), reorder.take_late())
        };
        if late > 0 {
            if let Some(subscriber) = subscriber.upgrade() {
                subscriber.tally.dropped(DropReason::TooLate, late);
            }
        }
        for payload in ready {
            let Ok(permit) = window.clone().acquire_owned().await else {
                return Outcome::Stopped;
            };
            if !deliver(subscriber, callback, payload, permit) {
                return Outcome::Stopped;
            }
        }
    }
}

/// Reads datagrams (best-effort: dropped while the callback is [`WINDOW`] objects behind).
/// Never ends on its own: the group reader reports how the track ended.
async fn read_datagrams(
    subscriber: &std::sync::Weak<Subscriber>,
    mut track: moq_net::track::Subscriber,
    shared: &Shared,
    callback: &DataCallback,
    window: &Arc<Semaphore>,
) -> Outcome {
    while let Ok(Some(datagram)) = track.recv_datagram().await {
        let current = shared
            .reorder
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .datagram(datagram.sequence);
        shared.datagram_seen.notify_one();
        if !current {
            continue;
        }
        match window.clone().try_acquire_owned() {
            Ok(permit) => {
                if !deliver(subscriber, callback, datagram.payload, permit) {
                    return Outcome::Stopped;
                }
            }
            Err(_) => {
                tracing::debug!("datagram dropped: the callback is {WINDOW} objects behind");
                if let Some(subscriber) = subscriber.upgrade() {
                    subscriber.tally.dropped(DropReason::QueueFull, 1);
                }
            }
        }
    }
    std::future::pending().await
}

/// Queues `payload` for the subscriber's callback; false once the subscriber is gone.
fn deliver(
    subscriber: &std::sync::Weak<Subscriber>,
    callback: &DataCallback,
    payload: Bytes,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> bool {
    match subscriber.upgrade() {
        Some(subscriber) => subscriber.deliver(callback, payload, permit),
        None => false,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn frames(reorder: &mut Reorder, now: Instant) -> Vec<u8> {
        reorder.ready(now).iter().map(|b| b[0]).collect()
    }

    #[test]
    fn reorders_groups_into_sequence_order() {
        let now = Instant::now();
        let mut reorder = Reorder::new(0);
        reorder.group(1, vec![Bytes::from_static(&[1])]);
        assert_eq!(frames(&mut reorder, now), Vec::<u8>::new(), "group 1 waits for group 0");
        reorder.group(0, vec![Bytes::from_static(&[0])]);
        assert_eq!(frames(&mut reorder, now), vec![0, 1]);
        reorder.group(2, vec![Bytes::from_static(&[2]), Bytes::from_static(&[22])]);
        assert_eq!(frames(&mut reorder, now), vec![2, 22]);
    }

    #[test]
    fn datagram_sequences_do_not_hold_back_streams() {
        let now = Instant::now();
        let mut reorder = Reorder::new(5);
        reorder.group(7, vec![Bytes::from_static(&[7])]);
        reorder.group(5, vec![Bytes::from_static(&[5])]);
        assert_eq!(frames(&mut reorder, now), vec![5]);
        assert!(reorder.datagram(6));
        assert_eq!(frames(&mut reorder, now), vec![7]);
        assert!(
            !reorder.datagram(4),
            "a datagram from before the subscription is not delivered"
        );
    }

    #[test]
    fn late_groups_are_dropped_and_gaps_time_out() {
        let start = Instant::now();
        let mut reorder = Reorder::new(3);
        reorder.group(2, vec![Bytes::from_static(&[2])]);
        reorder.group(5, vec![Bytes::from_static(&[5])]);
        assert_eq!(frames(&mut reorder, start), Vec::<u8>::new());
        assert_eq!(reorder.deadline(), Some(start + GAP_TIMEOUT));
        assert_eq!(frames(&mut reorder, start + GAP_TIMEOUT / 2), Vec::<u8>::new());
        assert_eq!(frames(&mut reorder, start + GAP_TIMEOUT), vec![5]);
        assert_eq!(
            reorder.take_late(),
            2,
            "group 2 predates the subscription; 3 and 4 were skipped"
        );
        assert_eq!(reorder.take_late(), 0);
        assert_eq!(reorder.deadline(), None);
    }
}
