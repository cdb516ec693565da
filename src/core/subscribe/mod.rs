//! Subscribers: deliver the objects of one track, with their metadata and the subscription's
//! status, to callbacks on the dispatcher thread or to the client's poll queue.
//!
//! Stream objects are delivered reliably and in sequence order: [`sequencer`] decides order and
//! loss (pure, clock passed in), [`establish`] subscribes on a session and decides where delivery
//! starts, [`session`] reads one session (the receiver never waits for the application; the
//! deliverer waits when the callbacks fall [`WINDOW`] objects or [`WINDOW_BYTES`] behind), and
//! [`resume`] carries the subscription across sessions. In poll mode nothing waits and the
//! subscription's bounded queue applies its drop policy. Datagrams are best-effort: one that
//! arrives while the window is full is dropped and counted.
//!
//! A subscription reports SUBSCRIBED each time it goes live (again after a resume), and ends
//! with exactly one terminal status: NOT_FOUND, ENDED or ERROR. Nothing follows it.

mod establish;
pub(crate) mod fetch;
mod resume;
mod sequencer;
mod session;

use crate::core::catalog::Catalog;
use crate::core::client::{Child, Client};
use crate::core::config;
use crate::core::events::{Event, ObjectInfo, StatusReport, SubscriptionStatus};
use crate::core::poll;
use crate::core::stats::{DropReason, Snapshot, Tally};
use crate::dispatch::{self, Gate};
use crate::error::{Error, Result};
use crate::runtime;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::AbortHandle;

pub(crate) use sequencer::Object;

/// Receives each object's payload (seed API); the slice lives for the call only.
pub type DataCallback = Arc<dyn Fn(&[u8]) + Send + Sync>;
/// Receives each object with its metadata; both live for the call only.
pub type ObjectCallback = Arc<dyn Fn(&ObjectInfo, &[u8]) + Send + Sync>;
/// Receives status changes.
pub type StatusCallback = Arc<dyn Fn(&StatusReport) + Send + Sync>;
/// Receives each new catalog of a catalog subscription.
pub type CatalogCallback = Arc<dyn Fn(&Arc<Catalog>) + Send + Sync>;

/// Objects queued for the callbacks before the reader waits.
pub const WINDOW: usize = 1024;
/// Payload bytes queued for the callbacks before the reader waits.
pub const WINDOW_BYTES: usize = 64 << 20;

/// The window permits an object of `len` bytes takes: one per `WINDOW_BYTES / WINDOW` bytes
/// (64 KiB), at least one, so the window holds [`WINDOW`] small objects or [`WINDOW_BYTES`].
pub(crate) fn window_cost(len: usize) -> u32 {
    len.div_ceil(WINDOW_BYTES / WINDOW).clamp(1, WINDOW) as u32
}

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Objects published after the subscription is live.
    Next,
    /// The newest group the relay holds, then on.
    Latest,
    /// This group (if still held), then on.
    Group(u64),
    /// This many groups before the newest one the relay holds (if still held), then on.
    GroupsBack(u64),
}

/// How a subscription behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscribeOptions {
    pub start: Start,
    /// Objects that waited longer than this for their turn are skipped and counted.
    pub max_latency: Option<Duration>,
    /// Higher is more urgent.
    pub priority: u8,
    /// Wait for the namespace/track to appear instead of reporting NOT_FOUND.
    pub wait_for_track: bool,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self {
            start: Start::Next,
            max_latency: None,
            priority: crate::core::publish::DEFAULT_PRIORITY,
            wait_for_track: false,
        }
    }
}

/// Where a subscription's events go.
pub enum Sink {
    /// Callbacks on the dispatcher thread; any may be absent.
    Callbacks {
        on_object: Option<ObjectCallback>,
        on_catalog: Option<CatalogCallback>,
        on_status: Option<StatusCallback>,
    },
    /// The client's poll queue for this subscription.
    Poll(poll::Queue),
}

/// What the track carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// Application objects, delivered as they are.
    Objects,
    /// Catalog JSON: each object is parsed and delivered as a catalog.
    Catalog,
}

/// A live subscription to one track.
pub struct Subscriber {
    gate: Arc<Gate>,
    subscribed: AtomicBool,
    /// Why the subscription ended, when it ended on its own.
    ended: Mutex<Option<Error>>,
    tasks: Mutex<Vec<AbortHandle>>,
    tally: Tally,
    client: Weak<Client>,
    sink: Sink,
    content: Content,
    options: SubscribeOptions,
    /// The newest catalog of a catalog subscription.
    catalog: Mutex<Option<Arc<Catalog>>>,
}

impl Subscriber {
    /// Subscribes to `track_name` in `namespace` and returns once the publisher confirmed it
    /// (the seed API: blocks up to the client's timeout; no status reports).
    pub fn new(client: &Arc<Client>, namespace: &str, track_name: &str, callback: DataCallback) -> Result<Arc<Self>> {
        let on_object: ObjectCallback = Arc::new(move |_: &ObjectInfo, data: &[u8]| callback(data));
        let sink = Sink::Callbacks {
            on_object: Some(on_object),
            on_catalog: None,
            on_status: None,
        };
        let target = establish::Target::new(client, namespace, track_name, SubscribeOptions::default())?;
        client.session("subscribing")?;
        let first = runtime::run_blocking(
            "subscribe",
            client.timeout() + Duration::from_secs(1),
            target.establish(client, None),
        )?;
        Self::spawn(client, target, Some(first), sink, Content::Objects)
    }

    /// Starts a subscription without waiting: its status reports how it goes. Fails at once
    /// only for invalid arguments, or with NOT_CONNECTED when the client has no session and
    /// `options.wait_for_track` is off.
    pub fn start(
        client: &Arc<Client>,
        namespace: &str,
        track_name: &str,
        options: SubscribeOptions,
        sink: Sink,
        content: Content,
    ) -> Result<Arc<Self>> {
        let target = establish::Target::new(client, namespace, track_name, options)?;
        if !options.wait_for_track {
            client.session("subscribing")?;
        }
        Self::spawn(client, target, None, sink, content)
    }

    fn spawn(
        client: &Arc<Client>,
        target: establish::Target,
        first: Option<establish::Live>,
        sink: Sink,
        content: Content,
    ) -> Result<Arc<Self>> {
        let options = target.options;
        Self::spawn_task(client, options, sink, content, move |weak| {
            resume::run(weak, target, first)
        })
    }

    /// Creates the subscriber and starts its reader task, built by `task` from a weak handle.
    fn spawn_task<Task, Reader>(
        client: &Arc<Client>,
        options: SubscribeOptions,
        sink: Sink,
        content: Content,
        task: Task,
    ) -> Result<Arc<Self>>
    where
        Task: FnOnce(Weak<Self>) -> Reader,
        Reader: std::future::Future<Output = ()> + Send + 'static,
    {
        let subscriber = Arc::new(Self {
            gate: Gate::new(),
            subscribed: AtomicBool::new(true),
            ended: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            tally: client.tally(),
            client: Arc::downgrade(client),
            sink,
            content,
            options,
            catalog: Mutex::new(None),
        });
        let child = Arc::downgrade(&subscriber);
        client.adopt(child)?;
        let weak = Arc::downgrade(&subscriber);
        let task = runtime::spawn_supervised(
            &runtime::handle()?,
            "the subscription reader",
            task(Arc::downgrade(&subscriber)),
            move |err: Error| {
                if let Some(subscriber) = weak.upgrade() {
                    subscriber.end(SubscriptionStatus::Error, 0, err);
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

    /// This subscription's counters, with the client's RTT (and poll-queue drops).
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

    /// The newest catalog a catalog subscription received.
    pub fn latest_catalog(&self) -> Option<Arc<Catalog>> {
        self.catalog.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Ends the subscription on its own with a terminal `status` (reported once, after every
    /// object already queued) and stops the readers.
    fn end(&self, status: SubscriptionStatus, code: u32, reason: Error) {
        let first = {
            let mut ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
            let first = ended.is_none() && self.is_subscribed();
            if first {
                tracing::info!("subscription ended: {reason}");
                *ended = Some(reason.clone());
            }
            self.subscribed.store(false, Ordering::Release);
            first
        };
        for task in self.lock_tasks().drain(..) {
            task.abort();
        }
        if first {
            self.report(StatusReport {
                status,
                code,
                message: reason.message().to_string(),
            });
        }
    }

    /// Stops delivery. Afterwards no callback of this subscriber runs (and, unless called from
    /// inside a callback, none is running) and its poll queue is gone. Idempotent.
    pub fn unsubscribe(&self) {
        self.subscribed.store(false, Ordering::Release);
        for task in self.lock_tasks().drain(..) {
            task.abort();
        }
        dispatch::close(&self.gate);
        if let Sink::Poll(queue) = &self.sink {
            queue.close();
        }
    }

    /// Reports a status change.
    fn report(&self, report: StatusReport) {
        match &self.sink {
            Sink::Callbacks { on_status, .. } => {
                if let Some(on_status) = on_status.clone() {
                    let terminal = report.status.is_terminal();
                    let job = Box::new(move || on_status(&report));
                    // A terminal status is never dropped; a SUBSCRIBED past the cap is.
                    if terminal {
                        let _ = dispatch::post_final(&self.gate, job);
                    } else if dispatch::post_event(&self.gate, "subscription status", job)
                        .is_ok_and(|posted| posted.dropped_one())
                    {
                        self.tally.events_dropped(1);
                    }
                }
            }
            Sink::Poll(queue) => {
                queue.push(Event::Status(report));
            }
        }
    }

    /// Hands one object to the application. `permit` holds a window slot until the callback
    /// ran (callback mode); without one (a datagram while the window is full) it is dropped.
    /// False once the subscriber is stopped.
    fn deliver(&self, info: ObjectInfo, object: Object, permit: Option<OwnedSemaphorePermit>) -> bool {
        if !self.is_subscribed() {
            return false;
        }
        if self.content == Content::Catalog {
            return self.deliver_catalog(&object);
        }
        match &self.sink {
            Sink::Callbacks { on_object, .. } => {
                let Some(permit) = permit else {
                    self.tally.dropped(DropReason::QueueFull, 1);
                    return true;
                };
                let Some(on_object) = on_object.clone() else {
                    return true;
                };
                let tally = self.tally.clone();
                let max_latency = self.options.max_latency;
                let job = Box::new(move || {
                    let _permit = permit;
                    if max_latency.is_some_and(|bound| object.arrived.elapsed() > bound) {
                        tally.dropped(DropReason::TooLate, 1);
                        return;
                    }
                    tally.received(object.payload.len());
                    on_object(&info, &object.payload);
                });
                dispatch::post(&self.gate, job).is_ok()
            }
            Sink::Poll(queue) => {
                let len = object.payload.len();
                let dropped = queue.push(Event::Object {
                    info,
                    payload: object.payload,
                });
                self.tally.received(len);
                if dropped > 0 {
                    self.tally.dropped(DropReason::QueueFull, dropped as u64);
                }
                !queue.is_closed()
            }
        }
    }

    /// Parses a catalog object and delivers it; malformed JSON ends the subscription with ERROR.
    fn deliver_catalog(&self, object: &Object) -> bool {
        let catalog = match crate::core::catalog::parse(&object.payload) {
            Ok(catalog) => Arc::new(catalog),
            Err(err) => {
                let err = err.context(format!("catalog in group {}", object.group));
                self.end(SubscriptionStatus::Error, 0, err);
                return false;
            }
        };
        self.tally.received(object.payload.len());
        *self.catalog.lock().unwrap_or_else(PoisonError::into_inner) = Some(catalog.clone());
        match &self.sink {
            Sink::Callbacks { on_catalog, .. } => match on_catalog.clone() {
                // Past the cap the newest catalog replaces the newest waiting one.
                Some(on_catalog) => {
                    match dispatch::post_latest(&self.gate, "catalog", Box::new(move || on_catalog(&catalog))) {
                        Ok(posted) => {
                            if posted.dropped_one() {
                                self.tally.events_dropped(1);
                            }
                            true
                        }
                        Err(_) => false,
                    }
                }
                None => true,
            },
            Sink::Poll(queue) => {
                let dropped = queue.push(Event::Catalog(catalog));
                if dropped > 0 {
                    self.tally.dropped(DropReason::QueueFull, dropped as u64);
                }
                !queue.is_closed()
            }
        }
    }

    /// Whether deliveries wait for window permits (callback mode).
    fn uses_window(&self) -> bool {
        matches!(self.sink, Sink::Callbacks { .. }) && self.content == Content::Objects
    }
}

impl Child for Subscriber {
    fn stop(&self) {
        self.unsubscribe();
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.unsubscribe();
    }
}

/// Checks a subscription's names.
fn check_names(namespace: &str, track_name: &str) -> Result<()> {
    config::check_namespace(namespace)?;
    config::check_name("track_name", track_name)
}

#[cfg(test)]
mod tests {
    use super::{window_cost, WINDOW, WINDOW_BYTES};

    #[test]
    fn window_cost_counts_objects_and_bytes() {
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
}
