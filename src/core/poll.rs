//! Bounded event queues that a C application drains from its own thread (`moq_poll`).
//!
//! One [`Hub`] per client holds a control queue (connection and announcement events, reported
//! with source 0) and one [`Queue`] per source (a subscription, with a non-zero `u64` the caller
//! chooses). Producers are library tasks on runtime threads: [`Queue::push`] and
//! [`Hub::push_control`] never block beyond a short internal mutex held for O(1) work, and never
//! allocate except when a queue's ring buffer grows. The consumer is the application thread
//! calling [`Hub::poll`], which waits on a condition variable for the first event.
//!
//! # Bounds
//!
//! - Droppable events ([`Event::is_droppable`]: objects and catalogs) are bounded per queue by its
//!   capacity and [`Policy`]. Capacity counts events, not bytes: an object carries its payload
//!   (up to 16 MiB), so a queue may hold up to `capacity × object size` bytes. Choosing a
//!   capacity that fits the application's memory budget is the caller's contract.
//! - Non-droppable events (status reports) are always queued, but at most [`MAX_KEPT`] of them:
//!   beyond that the oldest non-terminal one is dropped. Only `Subscribed` reports can repeat (a
//!   subscription's terminal status is reported once), so a hostile peer that makes a subscription
//!   resume over and over cannot grow the queue; terminal statuses are never dropped.
//! - The control queue holds at most [`CONTROL_CAPACITY`] events and drops its oldest when full.
//!
//! # Order and fairness
//!
//! Within one source events come out in the order they were pushed (policy drops aside). Across
//! sources, [`Hub::poll`] takes one event per turn from each non-empty queue (control included)
//! in round-robin order, continuing across calls, so one busy subscription cannot starve others.
//!
//! # Data structure
//!
//! Each source keeps two ring buffers: droppable events and kept (non-droppable) ones, each entry
//! stamped with a per-source sequence number. Popping takes the front with the lower number, so
//! the source's push order is preserved while every policy decision is O(1) (`pop_front` of the
//! droppable ring), and the kept-cap eviction scans at most [`MAX_KEPT`] entries. Dropped and
//! discarded events are released after the lock is let go, so freeing a large payload never
//! extends the critical section.

use crate::core::events::{Event, SubscriptionStatus};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// What a queue does with a droppable event when it already holds `capacity` droppable events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Drop the oldest droppable event to make room (live media: the newest matters most).
    DropOldest,
    /// Keep only the newest droppable event, whatever the capacity (state-like tracks).
    LatestOnly,
    /// Discard the event being pushed (keep what the application has not seen yet).
    DropNewest,
}

/// A source queue's capacity when the application does not choose one.
pub const DEFAULT_CAPACITY: usize = 1024;
/// The largest capacity a source queue accepts; larger requests are clamped here (the FFI rejects
/// them before they get this far).
pub const MAX_CAPACITY: usize = 1 << 20;
/// The control queue's capacity (connection and announcement events).
pub const CONTROL_CAPACITY: usize = 4096;
/// How many non-droppable events a source queue keeps before it drops the oldest non-terminal one.
pub const MAX_KEPT: usize = 64;

/// The event queues of one client: a control queue plus one queue per source.
#[derive(Debug)]
pub struct Hub {
    state: Mutex<State>,
    /// Signalled when the hub goes from no pending events to some, on [`Hub::wake`] and on close.
    ready: Condvar,
    control_dropped: AtomicU64,
}

#[derive(Debug)]
struct State {
    /// Set by [`Hub::close_all`], for good.
    closed: bool,
    control: VecDeque<Event>,
    sources: HashMap<u64, Source>,
    /// The round-robin order: every slot with at least one event, exactly once.
    turns: VecDeque<Turn>,
    /// Total events in `control` and all sources, so `poll` can tell at once whether to wait.
    pending: usize,
    /// Bumped by every [`Hub::wake`]; a poll returns early when it changes while it waits.
    wakes: u64,
    /// The `wakes` value the last poll returned at. A wake that no poll has seen yet makes the
    /// next poll return at once, so a wake racing with the start of a poll is never lost.
    wakes_seen: u64,
}

/// Whose turn comes next in the round robin: the control queue or one source's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Turn {
    Control,
    Source(u64),
}

/// The hub's side of one source queue.
#[derive(Debug)]
struct Source {
    /// The handle's shared part: tells a reopened source apart from the old one.
    shared: Arc<Shared>,
    droppable: VecDeque<(u64, Event)>,
    kept: VecDeque<(u64, Event)>,
    /// The sequence number the next event gets.
    next: u64,
}

/// The producer's side of one source queue, shared by all clones of its [`Queue`].
#[derive(Debug)]
struct Shared {
    /// Weak, so a queue held by a background task keeps neither the hub nor its events alive.
    hub: Weak<Hub>,
    source: u64,
    capacity: usize,
    policy: Policy,
    dropped: AtomicU64,
    closed: AtomicBool,
}

/// A producer's handle to one source queue of a [`Hub`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue {
    shared: Arc<Shared>,
}

impl Hub {
    /// A new hub with an empty control queue and no sources.
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub {
            state: Mutex::new(State {
                closed: false,
                control: VecDeque::new(),
                sources: HashMap::new(),
                turns: VecDeque::new(),
                pending: 0,
                wakes: 0,
                wakes_seen: 0,
            }),
            ready: Condvar::new(),
            control_dropped: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the queues consistent enough to drain;
        // it must not turn into a panic in the C caller's thread.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a queue for `source` (non-zero: 0 is the control queue in [`Hub::poll`]'s results).
    ///
    /// `capacity` is clamped to `1..=MAX_CAPACITY`. Sources are unique per hub: opening a source
    /// that is already open closes the old queue first. After [`Hub::close_all`] the returned queue
    /// is already closed.
    pub fn open(self: &Arc<Self>, source: u64, capacity: usize, policy: Policy) -> Queue {
        debug_assert_ne!(source, 0, "source 0 is reserved for the control queue");
        let shared = Arc::new(Shared {
            hub: Arc::downgrade(self),
            source,
            capacity: capacity.clamp(1, MAX_CAPACITY),
            policy,
            dropped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        let mut state = self.lock();
        if state.closed {
            shared.closed.store(true, Ordering::Release);
            return Queue { shared };
        }
        let source_state = Source {
            shared: shared.clone(),
            droppable: VecDeque::new(),
            kept: VecDeque::new(),
            next: 0,
        };
        let old = state.sources.insert(source, source_state);
        if let Some(old) = &old {
            old.shared.closed.store(true, Ordering::Release);
            state.pending -= old.len();
            state.turns.retain(|turn| *turn != Turn::Source(source));
        }
        drop(state);
        drop(old);
        Queue { shared }
    }

    /// Queues a client-level event (connection state, announcement) for source 0. Never blocks;
    /// when the control queue is full its oldest event is dropped and counted.
    pub fn push_control(&self, event: Event) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        let mut dropped = None;
        if state.control.len() >= CONTROL_CAPACITY {
            dropped = state.control.pop_front();
            state.pending -= 1;
            self.control_dropped.fetch_add(1, Ordering::Relaxed);
        }
        if state.control.is_empty() {
            state.turns.push_back(Turn::Control);
        }
        state.control.push_back(event);
        state.pending += 1;
        let was_idle = state.pending == 1;
        drop(state);
        if was_idle {
            self.ready.notify_all();
        }
        drop(dropped);
    }

    /// Takes up to `max` events, waiting up to `timeout` for the first one (`Duration::ZERO`: do
    /// not wait). Returns `(source, event)` pairs, source 0 for control events.
    ///
    /// Takes one event per turn from each non-empty queue in round-robin order. Returns early,
    /// possibly empty, after [`Hub::wake`] (including a wake since the previous poll returned) and
    /// at once, empty, after [`Hub::close_all`].
    pub fn poll(&self, max: usize, timeout: Duration) -> Vec<(u64, Event)> {
        if max == 0 {
            return Vec::new();
        }
        // No deadline when `timeout` overflows `Instant`: wait until an event or a wake.
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        let wakes = state.wakes;
        loop {
            if state.closed {
                return Vec::new();
            }
            if state.pending > 0 {
                break;
            }
            if state.wakes != wakes || state.wakes_seen != state.wakes {
                state.wakes_seen = state.wakes;
                return Vec::new();
            }
            state = match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Vec::new();
                    }
                    let wait = self.ready.wait_timeout(state, deadline - now);
                    wait.unwrap_or_else(PoisonError::into_inner).0
                }
                None => self.ready.wait(state).unwrap_or_else(PoisonError::into_inner),
            };
        }
        state.wakes_seen = state.wakes;
        let state = &mut *state;
        let mut events = Vec::with_capacity(max.min(state.pending));
        while events.len() < max {
            let Some(slot) = state.turns.pop_front() else { break };
            let (source, event, more) = match slot {
                Turn::Control => {
                    let Some(event) = state.control.pop_front() else {
                        continue;
                    };
                    (0, event, !state.control.is_empty())
                }
                Turn::Source(source) => {
                    let Some(queue) = state.sources.get_mut(&source) else {
                        continue;
                    };
                    let Some(event) = queue.pop() else { continue };
                    (source, event, !queue.is_empty())
                }
            };
            events.push((source, event));
            if more {
                state.turns.push_back(slot);
            }
        }
        state.pending -= events.len();
        events
    }

    /// Makes a waiting [`Hub::poll`] return now. With no poll waiting, the next poll that would
    /// wait returns at once instead (so a wake racing with the start of a poll is not lost).
    pub fn wake(&self) {
        let mut state = self.lock();
        state.wakes = state.wakes.wrapping_add(1);
        drop(state);
        self.ready.notify_all();
    }

    /// Closes every queue and discards their events. Later pushes and opens are ignored, and
    /// polls return empty at once (a waiting poll returns now).
    pub fn close_all(&self) {
        let mut state = self.lock();
        state.closed = true;
        let control = std::mem::take(&mut state.control);
        let sources = std::mem::take(&mut state.sources);
        state.turns = VecDeque::new();
        state.pending = 0;
        for source in sources.values() {
            source.shared.closed.store(true, Ordering::Release);
        }
        drop(state);
        self.ready.notify_all();
        // Payloads are freed outside the lock.
        drop(control);
        drop(sources);
    }

    /// How many control events were dropped because the control queue was full.
    pub fn control_dropped(&self) -> u64 {
        self.control_dropped.load(Ordering::Relaxed)
    }

    /// How many events are queued in all queues together.
    pub fn pending(&self) -> usize {
        self.lock().pending
    }
}

impl Source {
    fn len(&self) -> usize {
        self.droppable.len() + self.kept.len()
    }

    fn is_empty(&self) -> bool {
        self.droppable.is_empty() && self.kept.is_empty()
    }

    /// The oldest event of either ring.
    fn pop(&mut self) -> Option<Event> {
        let ring = match (self.droppable.front(), self.kept.front()) {
            (Some((a, _)), Some((b, _))) if b < a => &mut self.kept,
            (Some(_), _) => &mut self.droppable,
            (None, _) => &mut self.kept,
        };
        ring.pop_front().map(|(_, event)| event)
    }

    /// Queues `event` by the policy. Returns whether it was queued, and the event dropped to make
    /// room (or `event` itself when it was not queued), for the caller to free outside the lock.
    fn push(&mut self, event: Event) -> (bool, Option<Event>) {
        let seq = self.next;
        self.next += 1;
        if event.is_droppable() {
            let capacity = self.shared.capacity;
            let dropped = match self.shared.policy {
                Policy::DropOldest if self.droppable.len() >= capacity => self.droppable.pop_front(),
                Policy::DropNewest if self.droppable.len() >= capacity => return (false, Some(event)),
                Policy::LatestOnly => self.droppable.pop_front(),
                _ => None,
            };
            self.droppable.push_back((seq, event));
            return (true, dropped.map(|(_, event)| event));
        }
        let mut dropped = None;
        if self.kept.len() >= MAX_KEPT {
            // Real traffic only ever evicts a repeated `Subscribed` here; any other non-terminal
            // event is evictable too so the bound holds even if one is misrouted to a source.
            let evictable = |(_, event): &(u64, Event)| match event {
                Event::Status(report) => report.status == SubscriptionStatus::Subscribed,
                _ => true,
            };
            if let Some(index) = self.kept.iter().position(evictable) {
                dropped = self.kept.remove(index).map(|(_, event)| event);
            }
        }
        self.kept.push_back((seq, event));
        (true, dropped)
    }
}

impl Queue {
    /// Queues `event` under the queue's policy (see [`Policy`] and the module doc). Never blocks.
    ///
    /// Returns how many events this push dropped (0 or 1), which are also added to
    /// [`Queue::dropped`]. Pushes to a closed queue, or one whose hub is gone, are ignored
    /// (returning 0).
    pub fn push(&self, event: Event) -> usize {
        if self.shared.closed.load(Ordering::Acquire) {
            return 0;
        }
        let Some(hub) = self.shared.hub.upgrade() else { return 0 };
        let mut state = hub.lock();
        if state.closed {
            return 0;
        }
        let source = self.shared.source;
        let Some(queue) = state.sources.get_mut(&source) else {
            return 0;
        };
        if !Arc::ptr_eq(&queue.shared, &self.shared) {
            return 0;
        }
        let was_empty = queue.is_empty();
        let (queued, dropped) = queue.push(event);
        let count = usize::from(dropped.is_some());
        if was_empty && queued {
            state.turns.push_back(Turn::Source(source));
        }
        let was_idle = state.pending == 0;
        // A queued event that displaced another leaves the total unchanged.
        if queued && dropped.is_none() {
            state.pending += 1;
        }
        drop(state);
        if was_idle && queued {
            hub.ready.notify_all();
        }
        if count > 0 {
            self.shared.dropped.fetch_add(count as u64, Ordering::Relaxed);
        }
        drop(dropped);
        count
    }

    /// How many events the policy (or the kept-event cap) dropped from this queue so far. Events
    /// discarded by closing are not counted.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Closes this queue: its pending events are freed now and later pushes are ignored.
    /// Idempotent.
    pub fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(hub) = self.shared.hub.upgrade() else { return };
        let mut state = hub.lock();
        let source = self.shared.source;
        let removed = match state.sources.get(&source) {
            Some(queue) if Arc::ptr_eq(&queue.shared, &self.shared) => state.sources.remove(&source),
            _ => None,
        };
        if let Some(removed) = &removed {
            state.pending -= removed.len();
            state.turns.retain(|turn| *turn != Turn::Source(source));
        }
        drop(state);
        drop(removed);
    }

    /// Whether the queue was closed (by [`Queue::close`] or [`Hub::close_all`]) or its hub is gone.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire) || self.shared.hub.strong_count() == 0
    }

    /// How many events the queue holds (0 once closed).
    pub fn len(&self) -> usize {
        let Some(hub) = self.shared.hub.upgrade() else { return 0 };
        let state = hub.lock();
        match state.sources.get(&self.shared.source) {
            Some(queue) if Arc::ptr_eq(&queue.shared, &self.shared) => queue.len(),
            _ => 0,
        }
    }

    /// Whether the queue holds no events.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The source this queue reports its events under.
    pub fn source(&self) -> u64 {
        self.shared.source
    }
}

#[cfg(test)]
mod tests;
