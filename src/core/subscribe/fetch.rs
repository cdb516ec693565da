//! Fetching one past group: its objects in order, then ENDED once the group is complete, or
//! NOT_FOUND when neither the relay nor the publisher holds it any more.

use super::establish::Target;
use super::sequencer::Object;
use super::{Content, Sink, SubscribeOptions, Subscriber};
use crate::core::capabilities::{can_fetch, carries_timestamps};
use crate::core::client::Client;
use crate::core::config::DeliveryMode;
use crate::core::events::{ObjectInfo, StatusReport, SubscriptionStatus};
use crate::error::{self, Error, ErrorKind, Result};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long the track-info lookup that gives fetched objects their priority may take.
const INFO_WAIT: Duration = Duration::from_millis(200);

impl Subscriber {
    /// Fetches group `group` of `track_name` in `namespace` without waiting: its objects go to
    /// `sink`, then ENDED (complete), NOT_FOUND or ERROR. Fails at once with UNSUPPORTED where the
    /// negotiated protocol cannot fetch, and NOT_CONNECTED without a session.
    pub fn fetch(
        client: &Arc<Client>,
        namespace: &str,
        track_name: &str,
        group: u64,
        options: SubscribeOptions,
        sink: Sink,
    ) -> Result<Arc<Self>> {
        let target = Target::new(client, namespace, track_name, options)?;
        let version = client.session("fetching")?.version;
        if !can_fetch(version) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "fetching a past group needs moq-lite-05 or later, or moq-transport; the negotiated protocol is {}",
                    version.map_or_else(|| "(unknown)".to_string(), |v| v.to_string())
                ),
            ));
        }
        let timestamps = carries_timestamps(version);
        Self::spawn_task(client, options, sink, Content::Objects, move |weak| {
            run(weak, target, group, timestamps)
        })
    }
}

/// Fetches the group and delivers it.
async fn run(subscriber: Weak<Subscriber>, target: Target, group: u64, timestamps: bool) {
    let outcome = read(&subscriber, &target, group, timestamps).await;
    let Some(subscriber) = subscriber.upgrade() else { return };
    match outcome {
        Ok(count) => subscriber.end(
            SubscriptionStatus::Ended,
            0,
            Error::new(
                ErrorKind::Closed,
                format!("group {group} is complete ({count} objects)"),
            ),
        ),
        Err(err) => {
            let status = match err.kind() {
                ErrorKind::NotFound => SubscriptionStatus::NotFound,
                _ => SubscriptionStatus::Error,
            };
            subscriber.end(status, 0, err);
        }
    }
}

/// Reads the fetched group, delivering each object; returns how many there were.
async fn read(subscriber: &Weak<Subscriber>, target: &Target, group: u64, timestamps: bool) -> Result<u64> {
    let Some(client) = target.client.upgrade() else {
        return Err(Error::new(ErrorKind::Closed, "the client was destroyed"));
    };
    let timeout = client.timeout();
    let resolving = target.resolve(&client);
    drop(client);
    let context = format!("fetching group {group} of \"{}\"", target.name());
    let (mut consumer, priority) = tokio::time::timeout(timeout * 2, async {
        let track = resolving.await?;
        let fetch = moq_net::group::Fetch::default().with_priority(target.options.priority);
        let fetching = track.fetch_group(group, fetch);
        let info = tokio::time::timeout(INFO_WAIT, track.query());
        let (fetched, info) = tokio::join!(fetching, info);
        let consumer = fetched.map_err(|err| error::from_moq(&err, &context))?;
        let priority = match info {
            Ok(Ok(info)) => info.priority,
            _ => 0,
        };
        Ok::<_, Error>((consumer, priority))
    })
    .await
    .map_err(|_| {
        Error::new(
            ErrorKind::Timeout,
            format!("{context}: no answer within {} ms", (timeout * 2).as_millis()),
        )
    })??;

    let Some(strong) = subscriber.upgrade() else {
        return Err(Error::new(ErrorKind::Closed, "unsubscribed"));
    };
    strong.report(StatusReport {
        status: SubscriptionStatus::Subscribed,
        code: 0,
        message: String::new(),
    });
    drop(strong);
    let window = Arc::new(Semaphore::new(super::WINDOW));
    let mut count = 0;
    loop {
        let index = consumer.index();
        let frame = match consumer.read_frame().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ok(count),
            Err(err) => return Err(error::from_moq(&err, &context)),
        };
        let Some(subscriber) = subscriber.upgrade() else {
            return Err(Error::new(ErrorKind::Closed, "unsubscribed"));
        };
        let object = Object {
            group,
            index,
            timestamp_us: match timestamps {
                true => u64::try_from(frame.timestamp.as_micros()).unwrap_or(u64::MAX),
                false => 0,
            },
            payload: frame.payload,
            arrived: Instant::now(),
        };
        let info = ObjectInfo {
            group_id: group,
            object_id: index,
            timestamp_us: object.timestamp_us,
            delivery_mode: DeliveryMode::Stream,
            priority,
        };
        let permit = match subscriber.uses_window() {
            true => Some(
                window
                    .clone()
                    .acquire_many_owned(super::window_cost(object.payload.len()))
                    .await
                    .map_err(|_| Error::new(ErrorKind::Closed, "unsubscribed"))?,
            ),
            false => None,
        };
        if !subscriber.deliver(info, object, permit) {
            return Err(Error::new(ErrorKind::Closed, "unsubscribed"));
        }
        count += 1;
    }
}

/// What a publisher declared about a track, learnt without subscribing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackProperties {
    pub priority: u8,
    /// How long the publisher keeps groups (its `max_age`).
    pub retention: Duration,
    /// Timestamp units per second.
    pub timescale: u64,
    /// The newest group the relay knows of, when it knows.
    pub latest_group: Option<u64>,
}

/// Asks the relay (or the publisher behind it) what `track_name` in `namespace` declared.
/// Blocks up to twice the client's timeout.
pub fn query_track(client: &Arc<Client>, namespace: &str, track_name: &str) -> Result<TrackProperties> {
    let target = Target::new(client, namespace, track_name, SubscribeOptions::default())?;
    let version = client.session("querying a track")?.version;
    if !can_fetch(version) {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "querying a track needs moq-lite-05 or later, or moq-transport; the negotiated protocol is {}",
                version.map_or_else(|| "(unknown)".to_string(), |v| v.to_string())
            ),
        ));
    }
    let timeout = client.timeout();
    let resolving = target.resolve(client);
    let name = target.name();
    let querying = async move {
        let track = resolving.await?;
        let info = track
            .query()
            .await
            .map_err(|err| error::from_moq(&err, format!("querying \"{name}\"")))?;
        Ok(TrackProperties {
            priority: info.priority,
            retention: info.max_age,
            timescale: info.timescale.as_u64(),
            latest_group: track.latest(),
        })
    };
    crate::runtime::run_blocking("querying a track", timeout * 2, querying)
}
