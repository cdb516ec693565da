//! Establishing a subscription on one session: resolving the track, subscribing its group and
//! datagram cursors, and deciding where delivery starts.
//!
//! Where a subscription starts is decided by the newest group the relay holds, never by which
//! group happens to arrive first: LATEST and GROUPS_BACK first ask for the newest group alone
//! (`max_age` 0: the relay sends nothing older), learn its sequence, then widen the request to
//! start at the group wanted. An absolute start, or a resume, names its floor up front.

use super::sequencer::{Limits, Sequencer};
use super::{check_names, Start, SubscribeOptions};
use crate::core::capabilities::{can_fetch, carries_timestamps};
use crate::core::client::Client;
use crate::core::publish::RETENTION;
use crate::error::{self, Error, ErrorKind, Result};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What a subscription reads: one track of one namespace, through one client.
pub(crate) struct Target {
    pub client: Weak<Client>,
    namespace: String,
    track: String,
    pub options: SubscribeOptions,
}

/// A subscription live on one session: its cursors, where delivery starts, and what the
/// session can do.
pub(crate) struct Live {
    pub groups: moq_net::track::Subscriber,
    pub datagrams: moq_net::track::Subscriber,
    pub sequencer: Sequencer,
    /// The subscription both cursors switch to once the first group arrived (a narrow LATEST
    /// start whose newest group was not known when SUBSCRIBED was reported).
    pub widen: Option<moq_net::track::Subscription>,
    /// Whether this session carries publisher timestamps.
    pub timestamps: bool,
    pub priority: u8,
}

/// How long a LATEST or GROUPS_BACK subscription waits to learn the newest group the relay
/// holds (it arrives within a round trip when the track has any) before it starts with the
/// first group that comes.
const LATEST_WAIT: Duration = Duration::from_secs(1);

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

    /// The namespace of this target's track.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// A target with the same names and options, not tied to a client (for resolving in
    /// another origin).
    pub fn clone_names(&self) -> Self {
        Self {
            client: Weak::new(),
            namespace: self.namespace.clone(),
            track: self.track.clone(),
            options: self.options,
        }
    }

    /// Where this target's track is: namespace/track, for messages.
    pub fn name(&self) -> String {
        format!("{}/{}", self.namespace, self.track)
    }

    /// Resolves the track on the client's current session: the broadcast (own, or announced by
    /// the relay within the client's timeout) and the track in it.
    pub fn resolve(
        &self,
        client: &Arc<Client>,
    ) -> impl std::future::Future<Output = Result<moq_net::track::Consumer>> + Send + 'static {
        let own = client.own_broadcast(&self.namespace);
        self.resolve_in(client.remote().consume(), own, client.timeout())
    }

    /// Resolves the track in `origin` (or in `own`, this client's broadcast), waiting up to
    /// `timeout` for the relay to announce it.
    pub fn resolve_in(
        &self,
        origin: moq_net::origin::Consumer,
        own: Option<moq_net::broadcast::Consumer>,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<moq_net::track::Consumer>> + Send + 'static {
        let (namespace, track) = (self.namespace.clone(), self.track.clone());
        async move {
            let broadcast = match own {
                Some(broadcast) => broadcast,
                None => tokio::time::timeout(timeout, origin.routed_broadcast(namespace.as_str()))
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

    /// This target's track in `broadcast`.
    pub fn track_in(&self, broadcast: &moq_net::broadcast::Consumer) -> Result<moq_net::track::Consumer> {
        broadcast
            .track(&self.track)
            .map_err(|err| error::from_moq(&err, format!("track \"{}\"", self.track)))
    }

    /// Subscribes on the client's current session, bounded by twice the client's timeout.
    /// `resume`: the group a resumed subscription continues at (after a reconnect), asked of
    /// the publisher as the floor of what it sends, so it does not replay its whole retention.
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
            let context = format!("subscribing to track \"{track}\" in namespace \"{namespace}\"");
            let wide = moq_net::track::Subscription::default()
                .with_max_age(options.max_latency.unwrap_or(RETENTION))
                .with_priority(options.priority);
            // Known up front: an absolute start, a resume, or where this client's own track
            // stands. Otherwise (LATEST, GROUPS_BACK, NEXT on a remote track) the newest group
            // decides, learnt below.
            let floor = start_floor(options.start, resume, consumer.latest());
            let narrow = floor.is_none() && matches!(options.start, Start::Latest | Start::GroupsBack(_));
            let first = match (floor, narrow) {
                (Some(floor), _) => wide.clone().with_start(floor.map(moq_net::track::Position::group)),
                // The newest group alone: nothing older is sent until we widen.
                (None, true) => wide.clone().with_max_age(Duration::ZERO),
                (None, false) => wide.clone(),
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
            // The newest sequence the relay knew of when it confirmed the subscription (a
            // narrow request brings exactly that group).
            let mut latest = groups.latest().max(replayed);
            if narrow {
                let deadline = tokio::time::Instant::now() + LATEST_WAIT;
                while latest.is_none() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    latest = groups.latest();
                }
            }
            let wanted = start_floor(options.start, resume, latest);
            // Widen now when the start is known; a narrow start still waiting for its first
            // group widens when that group arrives (Live::widen).
            let mut widen = None;
            match wanted {
                Some(start) if narrow || start != floor.flatten() => {
                    let subscription = wide.clone().with_start(start.map(moq_net::track::Position::group));
                    for reader in [&mut groups, &mut datagrams] {
                        if let Err(err) = reader.update(subscription.clone()) {
                            tracing::debug!("setting where the subscription starts: {err}");
                        }
                    }
                }
                None if narrow => widen = Some(wide.clone()),
                _ => {}
            }
            let next = latest.map_or(0, |latest| latest + 1);
            let start = match options.start {
                Start::Next => next,
                Start::Latest => latest.unwrap_or(0),
                Start::Group(group) => group,
                Start::GroupsBack(count) => latest.map_or(0, |latest| latest.saturating_sub(count)),
            };
            let limits = Limits {
                gap_timeout: RETENTION,
                can_repair: can_fetch(version),
                ..Limits::default()
            };
            let mut sequencer = Sequencer::new(start, limits);
            sequencer.set_origin(latest, narrow && latest.is_none() && resume.is_none());
            if replayed.is_some() {
                sequencer.set_mixed();
            }
            sequencer.set_max_latency(options.max_latency);
            let priority = groups.info().priority;
            Ok(Live {
                groups,
                datagrams,
                sequencer,
                widen,
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
pub(crate) fn start_floor(start: Start, resume: Option<u64>, latest: Option<u64>) -> Option<Option<u64>> {
    match (resume, start) {
        (Some(group), _) if latest.is_some_and(|latest| latest + 1 < group) => Some(None),
        (Some(group), _) | (None, Start::Group(group)) => Some(Some(group)),
        (None, Start::Next) => latest.map(|latest| Some(latest + 1)),
        (None, Start::Latest) => latest.map(Some),
        (None, Start::GroupsBack(count)) => latest.map(|latest| Some(latest.saturating_sub(count))),
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
