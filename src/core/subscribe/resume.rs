//! A subscription across sessions: establish on the client's session, read it, and after a
//! reconnect (or while waiting for the track) establish again, continuing after the last object
//! delivered. One mechanism: each session gets fresh cursors whose floor is where delivery
//! stands; the sequencer drops what the new session sends again and fetches what it lacks.

use super::establish::{Live, Target};
use super::session::{self, Outcome};
use super::Subscriber;
use crate::core::client::jittered;
use crate::core::events::{StatusReport, SubscriptionStatus};
use crate::error::{Error, ErrorKind};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The first delay before subscribing again when the track is not (or no longer) there, or a
/// session delivered nothing; doubled up to [`RESUBSCRIBE_MAX`] while that goes on.
const RESUBSCRIBE_DELAY: Duration = Duration::from_millis(500);
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(8);

/// A session that lasted this long counts as useful even if it delivered nothing (a quiet
/// track): the backoff starts over.
const USEFUL_SESSION: Duration = Duration::from_secs(10);

/// How long a failed subscription waits for the client to say whether its session ended (and
/// why) before reporting its own error.
const SESSION_LOSS_WAIT: Duration = Duration::from_millis(500);

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
    let mut delay = RESUBSCRIBE_DELAY;
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
                    // Resuming after a lost session retries while the session comes and goes;
                    // but a track nobody publishes any more (no announcement within the client's
                    // timeout) ends the subscription with NOT_FOUND, unless it waits for tracks.
                    Err(err)
                        if patient
                            || (resume_at.is_some() && client.resumable() && err.kind() != ErrorKind::NotFound) =>
                    {
                        tracing::debug!("subscribing again in {} ms: {err}", delay.as_millis());
                        drop(client);
                        tokio::time::sleep(jittered(delay)).await;
                        delay = (delay * 2).min(RESUBSCRIBE_MAX);
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
        let mut current = current;
        if let Some((next, delivered)) = resume_at {
            current.sequencer.resume_at(next, delivered);
        }
        let before = current.sequencer.position();
        let started = Instant::now();
        let (outcome, position) = session::read(&subscriber, &target, current, &window).await;
        resume_at = Some(position);
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
                let client = target.client.upgrade();
                let reason = match (&client, code) {
                    (Some(client), 0) => match client.session_loss(SESSION_LOSS_WAIT).await {
                        Some(lost) => Error::new(lost.kind(), format!("{lost} (the subscription's error: {reason})")),
                        None => reason,
                    },
                    _ => reason,
                };
                let resumable = code == 0 && client.is_some_and(|client| client.resumable());
                if !resumable {
                    break (SubscriptionStatus::Error, code, reason);
                }
                tracing::info!("subscription interrupted, resuming after reconnect: {reason}");
                // A session that delivered nothing and did not last: wait before the next one,
                // longer each time, so a relay that drops every session is not hammered.
                if position == before && started.elapsed() < USEFUL_SESSION {
                    tokio::time::sleep(jittered(delay)).await;
                    delay = (delay * 2).min(RESUBSCRIBE_MAX);
                } else {
                    delay = RESUBSCRIBE_DELAY;
                }
            }
        }
    };
    if let Some(subscriber) = subscriber.upgrade() {
        subscriber.end(status, code, reason);
    }
}
