//! The callback dispatcher: the only place application callbacks run.
//!
//! Every callback of every object runs on one library thread, `moq-ffi-callbacks`, one at a
//! time and in the order its events were posted. That gives the C side simple rules:
//!
//! - No library lock is held while a callback runs, and a callback may call any API function.
//! - Two callbacks never run at the same time, so a callback that destroys another object never
//!   waits for that object's callback (none can be running) and never deadlocks.
//! - [`close`] makes an object's [`Gate`] refuse further callbacks. Called from any other thread
//!   it also waits until a callback of that gate that is running right now has returned, so the
//!   caller may free its `user_data` as soon as `close` returns. Called from the dispatcher
//!   thread itself (inside a callback) it returns at once.
//!
//! A panic inside a job (our code around the callback) is caught and logged; the thread lives on.
//!
//! # One thread, even across a shutdown
//!
//! [`stop`] asks the thread to exit after the jobs queued before it and waits, bounded. When the
//! wait times out (a callback does not return), the thread stays the dispatcher, marked
//! stopping: a later [`post`] revives it instead of starting a second thread (which would run
//! callbacks concurrently with the stuck one), and a later [`stop`] waits for it again. Only a
//! thread that has left its loop is replaced, after it has exited.
//!
//! # Bounds
//!
//! Object callbacks ([`post`]) are bounded by their producer (a subscription's window). Control
//! events (status, catalog, announcement, connection state) are bounded per gate: at most
//! [`MAX_QUEUED_EVENTS`] of them wait at a time, counted by an atomic per gate. Beyond that:
//!
//! - [`post_event`] drops the new event (announcements, repeated SUBSCRIBED statuses);
//! - [`post_latest`] puts the new event in place of the newest one of its lane still waiting
//!   (connection states, catalogs): the newest always arrives, at the older one's place;
//! - [`post_final`] never drops (a terminal status: at most one per gate).
//!
//! Every drop is counted in the gate ([`Gate::dropped`]) and reported by the caller's counters,
//! and logged at WARN level: once when a burst of drops starts and once, with the count, when the
//! callback has caught up (the log callback's style).

use crate::error::{Error, Result};
use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::Duration;

/// The dispatcher thread's name.
pub const THREAD_NAME: &str = "moq-ffi-callbacks";

/// How long a call waits for a dispatcher thread that is leaving its loop to exit before it
/// starts the next one (it only drops the jobs it did not run, so this is short in practice).
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// [`Dispatcher::phase`]: running jobs.
const RUNNING: u8 = 0;
/// [`Dispatcher::phase`]: asked to exit at the `Stop` message queued by [`stop`].
const STOPPING: u8 = 1;
/// [`Dispatcher::phase`]: reached that `Stop` and left (or is leaving) its loop.
const EXITING: u8 = 2;

thread_local! {
    /// Set on the dispatcher thread.
    static ON_DISPATCHER: Cell<bool> = const { Cell::new(false) };
    /// When set, [`close`] on this thread waits for a running callback only until then.
    static CLOSE_DEADLINE: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
}

/// Work for the dispatcher thread: usually one application callback.
pub type Job = Box<dyn FnOnce() + Send>;

/// Most control events of one gate waiting for the dispatcher at a time (see the module's
/// "Bounds"). Not part of the C header:
///
/// cbindgen:ignore
pub const MAX_QUEUED_EVENTS: usize = 1024;

/// Admission to callbacks for one object; closed for good by [`close`].
pub struct Gate {
    id: u64,
    closed: AtomicBool,
    /// Control events of this gate posted and neither started nor discarded yet.
    queued: AtomicUsize,
    /// Control events dropped (or replaced by a newer one) at the cap, over the gate's life.
    dropped: AtomicU64,
    /// Drops not reported in the log yet.
    unreported: AtomicU64,
    /// The events of [`post_latest`] waiting, oldest first (each also travels in its own
    /// message, which takes it out of here when it runs or is dropped).
    latest: Mutex<VecDeque<LaneSlot>>,
}

/// One waiting event of a gate's [`post_latest`] lane: a newer event may replace it until its
/// message takes it.
type LaneSlot = Arc<Mutex<Option<Job>>>;

/// The message of one lane event. It takes its own event out (never another's), when it runs or
/// when it is dropped unrun (a closed gate, a panic before the job, a stopped dispatcher), so
/// the lane never keeps an event no message will run.
struct LaneEvent {
    gate: Arc<Gate>,
    slot: Option<LaneSlot>,
}

impl LaneEvent {
    /// Takes the event (possibly replaced by a newer one) and unlinks its slot from the lane.
    fn take(&mut self) -> Option<Job> {
        let slot = self.slot.take()?;
        let job = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        let mut lane = self.gate.latest.lock().unwrap_or_else(PoisonError::into_inner);
        // Messages run in lane order, so this is the front but after an unrun one.
        if let Some(index) = lane.iter().position(|waiting| Arc::ptr_eq(waiting, &slot)) {
            lane.remove(index);
        }
        job
    }

    fn run(mut self) {
        // Both locks are released before the event runs.
        if let Some(job) = self.take() {
            job();
        }
    }
}

impl Drop for LaneEvent {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("id", &self.id)
            .field("closed", &self.is_closed())
            .field("queued", &self.queued())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl Gate {
    /// A new, open gate.
    pub fn new() -> Arc<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Arc::new(Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            closed: AtomicBool::new(false),
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            unreported: AtomicU64::new(0),
            latest: Mutex::new(VecDeque::new()),
        })
    }

    /// Whether [`close`] was called for this gate.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Control events of this gate waiting for the dispatcher now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Control events of this gate dropped or replaced at the cap so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Counts one dropped event; the first of a burst is logged.
    fn count_drop(&self, what: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if self.unreported.fetch_add(1, Ordering::AcqRel) == 0 {
            tracing::warn!(
                "the {what} callback fell {MAX_QUEUED_EVENTS} events behind: newer {what} events are dropped until it catches up"
            );
        }
    }

    /// Logs the drops since the last report, now that an event was queued again.
    fn report_drops(&self, what: &str) {
        if self.unreported.load(Ordering::Relaxed) == 0 {
            return;
        }
        let dropped = self.unreported.swap(0, Ordering::AcqRel);
        if dropped > 0 {
            tracing::warn!(
                "{dropped} {what} events were dropped: the {what} callback fell {MAX_QUEUED_EVENTS} events behind"
            );
        }
    }
}

/// What became of a control event handed to [`post_event`], [`post_latest`] or [`post_final`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Posted {
    /// Queued (or discarded with every other event of a closed gate).
    Queued,
    /// Not queued: the gate already had [`MAX_QUEUED_EVENTS`] waiting. Counted in the gate.
    Dropped,
    /// Queued in place of the newest waiting event of the lane, which is dropped and counted.
    Replaced,
}

impl Posted {
    /// Whether an event was dropped (the new one or the one it replaced).
    pub fn dropped_one(self) -> bool {
        self != Posted::Queued
    }
}

/// A message's admission: holds its gate, and a control event's place in the gate's count
/// until the message starts or is discarded.
struct Ticket {
    gate: Arc<Gate>,
    counted: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.counted {
            self.gate.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

enum Message {
    Run(Ticket, Job),
    Stop,
}

struct Dispatcher {
    sender: Sender<Message>,
    /// The id of the gate whose job is running right now, 0 when none (gate ids start at 1).
    ///
    /// The hot path takes no lock: the dispatcher publishes `running` before it checks the
    /// gate, [`close`] publishes `closed` before it checks `running` (both `SeqCst`, so at least
    /// one of the two sees the other's write).
    running: AtomicU64,
    /// Threads waiting in [`close`] for the running job to return; the dispatcher touches
    /// `idle`/`finished` (and makes the wake-up system call) only when this is non-zero.
    waiters: AtomicUsize,
    idle: Mutex<()>,
    finished: Condvar,
    /// [`RUNNING`], [`STOPPING`] or [`EXITING`]; changed only by compare-and-swap.
    phase: AtomicU8,
    /// Set when the thread has left its loop (for a bounded join).
    exited: Mutex<bool>,
    exit: Condvar,
    handle: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The thread's entry in `/proc/self/task`, set as it starts: [`stop`] waits for it to go
    /// after the join (the kernel lists a joined thread for a moment longer).
    task: Mutex<Option<std::path::PathBuf>>,
}

impl Dispatcher {
    /// No job is running any more: wakes the threads waiting in [`close`], if any.
    fn finish_job(&self) {
        self.running.store(0, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            // Taking the lock orders this wake-up after a waiter's check of `running`.
            let _idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            self.finished.notify_all();
        }
    }

    /// Waits until the thread has left its loop, at most `timeout`; whether it has.
    fn wait_exited(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut exited = self.exited.lock().unwrap_or_else(PoisonError::into_inner);
        while !*exited {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            exited = self
                .exit
                .wait_timeout(exited, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Joins the thread once it has left its loop (it has nothing left to run).
    fn join(&self) {
        if let Some(handle) = self.handle.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = handle.join();
        }
    }
}

/// The dispatcher: `None` before first use and after a [`stop`] that joined its thread; a
/// stopping one whose thread did not exit in time stays here (see the module's docs).
static DISPATCHER: RwLock<Option<Arc<Dispatcher>>> = RwLock::new(None);

fn current() -> Option<Arc<Dispatcher>> {
    DISPATCHER.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Removes `dispatcher` from [`DISPATCHER`] (if it is still there) once its thread is joined.
fn forget(dispatcher: &Arc<Dispatcher>) {
    let mut slot = DISPATCHER.write().unwrap_or_else(PoisonError::into_inner);
    if slot.as_ref().is_some_and(|current| Arc::ptr_eq(current, dispatcher)) {
        *slot = None;
    }
}

/// The dispatcher to send to: the running one, a stopping one revived, or (once the previous
/// thread has exited) a new one.
fn dispatcher() -> Result<Arc<Dispatcher>> {
    loop {
        if let Some(dispatcher) = current() {
            match dispatcher
                .phase
                .compare_exchange(STOPPING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    tracing::info!(
                        "the callback thread is still busy after moq_shutdown timed out: it carries on and runs new callbacks once the running one returns"
                    );
                    return Ok(dispatcher);
                }
                Err(RUNNING) => return Ok(dispatcher),
                Err(_) => {
                    // It is leaving its loop: wait for it (outside every lock: the jobs it drops
                    // may call into the dispatcher), then replace it.
                    if !dispatcher.wait_exited(EXIT_WAIT) {
                        return Err(Error::new(
                            crate::error::ErrorKind::Timeout,
                            format!(
                                "the previous callback thread ({THREAD_NAME}) has not exited within {} ms; try again later",
                                EXIT_WAIT.as_millis()
                            ),
                        ));
                    }
                    dispatcher.join();
                    forget(&dispatcher);
                    continue;
                }
            }
        }
        let mut slot = DISPATCHER.write().unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            continue;
        }
        let dispatcher = spawn()?;
        *slot = Some(dispatcher.clone());
        return Ok(dispatcher);
    }
}

/// Starts a dispatcher thread.
fn spawn() -> Result<Arc<Dispatcher>> {
    let (sender, receiver) = channel();
    let (ready_tx, ready_rx) = channel::<Arc<Dispatcher>>();
    let thread = std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            ON_DISPATCHER.with(|flag| flag.set(true));
            if let Ok(dispatcher) = ready_rx.recv() {
                *dispatcher.task.lock().unwrap_or_else(PoisonError::into_inner) = crate::runtime::task_entry();
                run(&dispatcher, receiver);
                dispatcher.phase.store(EXITING, Ordering::Release);
                *dispatcher.exited.lock().unwrap_or_else(PoisonError::into_inner) = true;
                dispatcher.exit.notify_all();
            }
        })
        .map_err(|err| Error::internal(format!("could not start the callback thread: {err}")))?;
    let dispatcher = Arc::new(Dispatcher {
        sender,
        running: AtomicU64::new(0),
        waiters: AtomicUsize::new(0),
        idle: Mutex::new(()),
        finished: Condvar::new(),
        phase: AtomicU8::new(RUNNING),
        exited: Mutex::new(false),
        exit: Condvar::new(),
        handle: Mutex::new(Some(thread)),
        task: Mutex::new(None),
    });
    let _ = ready_tx.send(dispatcher.clone());
    Ok(dispatcher)
}

/// The dispatcher thread's loop; returns at a `Stop` it was asked for (the jobs queued after it
/// are dropped with `receiver`, unrun).
fn run(dispatcher: &Dispatcher, receiver: Receiver<Message>) {
    loop {
        let (ticket, job) = match receiver.recv() {
            Ok(Message::Run(ticket, job)) => (ticket, job),
            Ok(Message::Stop) => {
                if dispatcher
                    .phase
                    .compare_exchange(STOPPING, EXITING, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return;
                }
                // Revived after a stop that timed out: this `Stop` is stale.
                continue;
            }
            Err(_) => return,
        };
        dispatcher.running.store(ticket.gate.id, Ordering::SeqCst);
        if ticket.gate.closed.load(Ordering::SeqCst) {
            dispatcher.finish_job();
            drop(job);
            continue;
        }
        // The event has started: it no longer waits.
        drop(ticket);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            crate::inject::check("dispatch");
            job();
        }));
        if let Err(payload) = outcome {
            let err = Error::from_panic("the callback dispatcher", payload.as_ref());
            tracing::error!("{err}");
        }
        dispatcher.finish_job();
    }
}

/// Stops the dispatcher thread after the callbacks already queued, waiting at most `timeout`
/// for it to exit and joining it. Must not be called from inside a callback.
///
/// `Timeout` (naming the thread) when it is still running at the deadline: it stays the
/// dispatcher, stopping; a later [`post`] revives it and a later `stop` waits for it again, so
/// there is never a second dispatcher thread. After a successful stop, a later [`post`] starts
/// a new thread.
pub fn stop(timeout: Duration) -> Result<()> {
    if in_callback() {
        return Err(Error::new(
            crate::error::ErrorKind::InvalidState,
            "cannot stop the callback thread from inside a callback",
        ));
    }
    let Some(dispatcher) = current() else {
        return Ok(());
    };
    let deadline = std::time::Instant::now() + timeout;
    // A dispatcher already stopping has its `Stop` queued; one exiting needs none.
    if dispatcher
        .phase
        .compare_exchange(RUNNING, STOPPING, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        let _ = dispatcher.sender.send(Message::Stop);
    }
    if !dispatcher.wait_exited(timeout) {
        let busy = dispatcher.running.load(Ordering::SeqCst) != 0;
        return Err(Error::new(
            crate::error::ErrorKind::Timeout,
            match (busy, timeout.is_zero()) {
                (true, _) => format!(
                    "the callback thread ({THREAD_NAME}) is still running a callback that has not returned by the deadline"
                ),
                // Nothing was left of the caller's budget: do not blame a callback.
                (false, true) => format!(
                    "no time was left to join the callback thread ({THREAD_NAME}): the earlier shutdown steps used up the timeout"
                ),
                (false, false) => format!(
                    "the callback thread ({THREAD_NAME}) did not finish the queued callbacks within the {} ms left of the timeout",
                    timeout.as_millis()
                ),
            },
        ));
    }
    dispatcher.join();
    forget(&dispatcher);
    let mut task: Vec<_> = dispatcher
        .task
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .into_iter()
        .collect();
    if crate::runtime::wait_tasks_gone(&mut task, deadline) > 0 {
        return Err(Error::new(
            crate::error::ErrorKind::Timeout,
            format!("the callback thread ({THREAD_NAME}) was joined but the system still lists it at the deadline"),
        ));
    }
    Ok(())
}

/// Queues `job` to run on the dispatcher thread unless `gate` is closed by then. Not counted
/// against the gate's cap: for object callbacks, which their producer bounds (a window).
pub fn post(gate: &Arc<Gate>, job: Job) -> Result<()> {
    if gate.is_closed() {
        return Ok(());
    }
    send(
        Ticket {
            gate: gate.clone(),
            counted: false,
        },
        job,
    )
}

/// Queues a control event (`what` names its kind in the log) unless the gate already has
/// [`MAX_QUEUED_EVENTS`] waiting; then it is dropped and counted ([`Posted::Dropped`]).
pub fn post_event(gate: &Arc<Gate>, what: &str, job: Job) -> Result<Posted> {
    if gate.is_closed() {
        return Ok(Posted::Queued);
    }
    let admitted = gate
        .queued
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_QUEUED_EVENTS).then_some(n + 1)
        })
        .is_ok();
    if !admitted {
        gate.count_drop(what);
        return Ok(Posted::Dropped);
    }
    gate.report_drops(what);
    send(
        Ticket {
            gate: gate.clone(),
            counted: true,
        },
        job,
    )?;
    Ok(Posted::Queued)
}

/// Queues a control event that must never be dropped (a terminal status). Counted, so the
/// gate's other events see the room it takes, but admitted beyond the cap: the caller posts at
/// most a bounded number of these per gate (one).
pub fn post_final(gate: &Arc<Gate>, job: Job) -> Result<()> {
    if gate.is_closed() {
        return Ok(());
    }
    gate.queued.fetch_add(1, Ordering::AcqRel);
    send(
        Ticket {
            gate: gate.clone(),
            counted: true,
        },
        job,
    )
}

/// Queues a control event of which only the newest matters (a connection state, a catalog).
/// Below the cap it is queued like [`post_event`]; at the cap it takes the place of the newest
/// event of this lane still waiting, which is dropped and counted ([`Posted::Replaced`]), so the
/// newest is always delivered, never later than the event it replaced. The gate's other events
/// keep their order; one of this lane may now run before events posted after the one it
/// replaced.
pub fn post_latest(gate: &Arc<Gate>, what: &str, job: Job) -> Result<Posted> {
    // Held until the message is sent, so the lane's order is its messages' order.
    let mut lane = gate.latest.lock().unwrap_or_else(PoisonError::into_inner);
    // Checked under the lane's lock: `close` empties the lane after closing the gate.
    if gate.is_closed() {
        return Ok(Posted::Queued);
    }
    if gate.queued.load(Ordering::Acquire) >= MAX_QUEUED_EVENTS {
        if let Some(newest) = lane.back() {
            let mut waiting = newest.lock().unwrap_or_else(PoisonError::into_inner);
            // Empty once its message has taken it (running now): then this one is queued.
            if waiting.is_some() {
                let replaced = waiting.replace(job);
                drop(waiting);
                drop(lane);
                drop(replaced);
                gate.count_drop(what);
                return Ok(Posted::Replaced);
            }
        }
    }
    gate.report_drops(what);
    gate.queued.fetch_add(1, Ordering::AcqRel);
    let slot: LaneSlot = Arc::new(Mutex::new(Some(job)));
    lane.push_back(slot.clone());
    let event = LaneEvent {
        gate: gate.clone(),
        slot: Some(slot),
    };
    let ticket = Ticket {
        gate: gate.clone(),
        counted: true,
    };
    match try_send(Message::Run(ticket, Box::new(move || event.run()))) {
        Ok(()) => Ok(Posted::Queued),
        Err((err, unsent)) => {
            lane.pop_back();
            // After the lane's lock: the unsent event unlinks itself.
            drop(lane);
            drop(unsent);
            Err(err)
        }
    }
}

/// Sends one message to the dispatcher, starting it if needed.
fn send(ticket: Ticket, job: Job) -> Result<()> {
    try_send(Message::Run(ticket, job)).map_err(|(err, _unsent)| err)
}

/// Sends `message` to the dispatcher, starting it if needed; an unsent message comes back.
fn try_send(message: Message) -> std::result::Result<(), (Error, Message)> {
    let stopped = || Error::internal("the callback thread has stopped");
    // The common case sends under the shared read guard (no reference count to bump). A job
    // that could not be sent is dropped only after the guard is released: dropping it may run
    // code that posts again.
    let unsent = {
        let slot = DISPATCHER.read().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some(dispatcher) if dispatcher.phase.load(Ordering::Acquire) == RUNNING => {
                match dispatcher.sender.send(message) {
                    Ok(()) => return Ok(()),
                    Err(unsent) => Err(unsent),
                }
            }
            _ => Ok(message),
        }
    };
    match unsent {
        // No dispatcher yet, or one stopping or gone: revive or start one.
        Ok(message) => match dispatcher() {
            Ok(dispatcher) => dispatcher
                .sender
                .send(message)
                .map_err(|std::sync::mpsc::SendError(message)| (stopped(), message)),
            Err(err) => Err((err, message)),
        },
        Err(std::sync::mpsc::SendError(message)) => Err((stopped(), message)),
    }
}

/// Whether the calling thread is the dispatcher thread (i.e. we are inside a callback).
pub fn in_callback() -> bool {
    ON_DISPATCHER.with(Cell::get)
}

/// Closes `gate`: no callback of it starts afterwards, and (unless called from inside a
/// callback) none is running when this returns.
pub fn close(gate: &Gate) {
    gate.closed.store(true, Ordering::SeqCst);
    // The lane's waiting events will never run: release what they hold now, outside the lane's
    // lock (their messages, discarded later, find their slots empty).
    let waiting = std::mem::take(&mut *gate.latest.lock().unwrap_or_else(PoisonError::into_inner));
    let discarded: Vec<Job> = waiting
        .iter()
        .filter_map(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).take())
        .collect();
    drop(discarded);
    let Some(dispatcher) = current() else {
        // No callback was ever posted, so none can be running.
        return;
    };
    if in_callback() || dispatcher.running.load(Ordering::SeqCst) != gate.id {
        return;
    }
    let deadline = CLOSE_DEADLINE.with(Cell::get);
    let mut idle = dispatcher.idle.lock().unwrap_or_else(PoisonError::into_inner);
    dispatcher.waiters.fetch_add(1, Ordering::SeqCst);
    while dispatcher.running.load(Ordering::SeqCst) == gate.id {
        idle = match deadline {
            None => dispatcher.finished.wait(idle).unwrap_or_else(PoisonError::into_inner),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                let waited = dispatcher.finished.wait_timeout(idle, left);
                waited.unwrap_or_else(PoisonError::into_inner).0
            }
        };
    }
    dispatcher.waiters.fetch_sub(1, Ordering::SeqCst);
}

/// Runs `body` with the [`close`] calls it makes on this thread waiting for a running callback
/// only until `deadline`: a bounded shutdown, which a callback that does not return must not
/// hold beyond its timeout (the shutdown then reports the thread still running when it fails
/// to join it).
pub fn closing_until<T>(deadline: std::time::Instant, body: impl FnOnce() -> T) -> T {
    struct Restore(Option<std::time::Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CLOSE_DEADLINE.with(|current| current.set(self.0));
        }
    }
    let _restore = Restore(CLOSE_DEADLINE.with(|current| current.replace(Some(deadline))));
    body()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[test]
    fn close_waits_for_a_running_callback_and_stops_later_ones() {
        let gate = Gate::new();
        let started = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let later = Arc::new(AtomicUsize::new(0));
        {
            let (started, finished) = (started.clone(), finished.clone());
            post(
                &gate,
                Box::new(move || {
                    started.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(200));
                    finished.store(true, Ordering::SeqCst);
                }),
            )
            .unwrap();
        }
        let counter = later.clone();
        post(
            &gate,
            Box::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        while !started.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        close(&gate);
        assert!(finished.load(Ordering::SeqCst), "close returned while the callback ran");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(later.load(Ordering::SeqCst), 0, "a callback ran after close");
    }

    #[test]
    fn a_panicking_job_does_not_stop_the_dispatcher() {
        let gate = Gate::new();
        post(&gate, Box::new(|| panic!("job panicked"))).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        post(&gate, Box::new(move || tx.send(in_callback()).unwrap())).unwrap();
        assert!(
            rx.recv_timeout(Duration::from_secs(30)).unwrap(),
            "later jobs run on the dispatcher"
        );
        assert!(!in_callback());
    }

    /// Occupies the dispatcher thread until the returned sender is dropped (bounded: 30 s).
    fn hold_dispatcher() -> std::sync::mpsc::Sender<()> {
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        post(
            &Gate::new(),
            Box::new(move || {
                let _ = entered_tx.send(());
                let _ = release_rx.recv_timeout(Duration::from_secs(30));
            }),
        )
        .unwrap();
        entered_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the dispatcher runs jobs");
        release_tx
    }

    /// Waits until every job posted to the dispatcher before this call has been handled.
    fn drain() {
        let (tx, rx) = std::sync::mpsc::channel();
        post(&Gate::new(), Box::new(move || tx.send(()).unwrap())).unwrap();
        rx.recv_timeout(Duration::from_secs(30)).expect("the dispatcher drains");
    }

    fn recorder(ran: &Arc<Mutex<Vec<usize>>>, value: usize) -> Job {
        let ran = ran.clone();
        Box::new(move || ran.lock().unwrap_or_else(PoisonError::into_inner).push(value))
    }

    #[test]
    fn control_events_past_the_cap_are_dropped_and_counted_but_a_final_one_is_not() {
        let release = hold_dispatcher();
        let gate = Gate::new();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let extra = 100;
        let outcomes: Vec<Posted> = (0..MAX_QUEUED_EVENTS + extra)
            .map(|i| post_event(&gate, "test", recorder(&ran, i)).unwrap())
            .collect();
        assert!(outcomes[..MAX_QUEUED_EVENTS].iter().all(|o| *o == Posted::Queued));
        assert!(outcomes[MAX_QUEUED_EVENTS..].iter().all(|o| *o == Posted::Dropped));
        assert_eq!(gate.dropped(), extra as u64);
        assert_eq!(gate.queued(), MAX_QUEUED_EVENTS, "the queue stays at its cap");
        // A final event is admitted past the cap, and runs after the others.
        post_final(&gate, recorder(&ran, usize::MAX)).unwrap();
        assert_eq!(gate.queued(), MAX_QUEUED_EVENTS + 1);
        // Objects (plain posts) are not counted against the cap.
        post(&gate, recorder(&ran, usize::MAX - 1)).unwrap();
        assert_eq!(gate.queued(), MAX_QUEUED_EVENTS + 1);

        drop(release);
        drain();
        let mut expected: Vec<usize> = (0..MAX_QUEUED_EVENTS).collect();
        expected.extend([usize::MAX, usize::MAX - 1]);
        assert_eq!(
            *ran.lock().unwrap_or_else(PoisonError::into_inner),
            expected,
            "the admitted events ran once, in order"
        );
        assert_eq!(gate.queued(), 0, "every admitted event released its place");
        // There is room again.
        assert_eq!(post_event(&gate, "test", recorder(&ran, 7)).unwrap(), Posted::Queued);
        drain();
        assert_eq!(gate.dropped(), extra as u64);
    }

    #[test]
    fn latest_events_past_the_cap_replace_the_newest_waiting_one() {
        let release = hold_dispatcher();
        let gate = Gate::new();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let total = MAX_QUEUED_EVENTS + 10;
        let outcomes: Vec<Posted> = (0..total)
            .map(|i| post_latest(&gate, "test", recorder(&ran, i)).unwrap())
            .collect();
        assert!(outcomes[..MAX_QUEUED_EVENTS].iter().all(|o| *o == Posted::Queued));
        assert!(outcomes[MAX_QUEUED_EVENTS..].iter().all(|o| *o == Posted::Replaced));
        assert_eq!(gate.dropped(), 10);
        assert_eq!(gate.queued(), MAX_QUEUED_EVENTS);
        assert_eq!(
            gate.latest.lock().unwrap_or_else(PoisonError::into_inner).len(),
            MAX_QUEUED_EVENTS
        );

        drop(release);
        drain();
        // The first MAX - 1 in order, then the newest in the last one's place.
        let mut expected: Vec<usize> = (0..MAX_QUEUED_EVENTS - 1).collect();
        expected.push(total - 1);
        assert_eq!(*ran.lock().unwrap_or_else(PoisonError::into_inner), expected);
        assert_eq!(gate.queued(), 0);
        assert!(gate.latest.lock().unwrap_or_else(PoisonError::into_inner).is_empty());
    }

    #[test]
    fn latest_events_fill_a_cap_taken_by_other_events_and_keep_the_order() {
        let release = hold_dispatcher();
        let gate = Gate::new();
        let ran = Arc::new(Mutex::new(Vec::new()));
        for i in 0..MAX_QUEUED_EVENTS {
            assert_eq!(post_event(&gate, "test", recorder(&ran, i)).unwrap(), Posted::Queued);
        }
        // The cap is full of other events: the first latest event still gets in (the newest
        // must arrive), later ones replace it.
        let first = MAX_QUEUED_EVENTS;
        assert_eq!(
            post_latest(&gate, "test", recorder(&ran, first)).unwrap(),
            Posted::Queued
        );
        assert_eq!(
            post_latest(&gate, "test", recorder(&ran, first + 1)).unwrap(),
            Posted::Replaced
        );
        assert_eq!(post_event(&gate, "test", recorder(&ran, 0)).unwrap(), Posted::Dropped);
        assert_eq!(gate.queued(), MAX_QUEUED_EVENTS + 1);

        drop(release);
        drain();
        let mut expected: Vec<usize> = (0..MAX_QUEUED_EVENTS).collect();
        expected.push(first + 1);
        assert_eq!(*ran.lock().unwrap_or_else(PoisonError::into_inner), expected);
    }

    #[test]
    fn a_lane_message_dropped_unrun_takes_its_own_event_with_it() {
        let gate = Gate::new();
        let ran = Arc::new(Mutex::new(Vec::new()));
        let mut events = Vec::new();
        {
            let mut lane = gate.latest.lock().unwrap_or_else(PoisonError::into_inner);
            for value in [1, 2] {
                let slot: LaneSlot = Arc::new(Mutex::new(Some(recorder(&ran, value))));
                lane.push_back(slot.clone());
                events.push(LaneEvent {
                    gate: gate.clone(),
                    slot: Some(slot),
                });
            }
        }
        let second = events.pop().unwrap();
        // The first message is dropped without running (as after a panic before its job).
        drop(events);
        assert_eq!(gate.latest.lock().unwrap_or_else(PoisonError::into_inner).len(), 1);
        second.run();
        assert_eq!(
            *ran.lock().unwrap_or_else(PoisonError::into_inner),
            vec![2],
            "the second message ran its own event"
        );
        assert!(gate.latest.lock().unwrap_or_else(PoisonError::into_inner).is_empty());
    }

    #[test]
    fn close_discards_waiting_events_and_releases_what_they_hold() {
        let release = hold_dispatcher();
        let gate = Gate::new();
        let held = Arc::new(());
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let (held, ran) = (held.clone(), ran.clone());
            let job: Job = Box::new(move || {
                drop(held);
                ran.fetch_add(1, Ordering::SeqCst);
            });
            assert_eq!(post_latest(&gate, "test", job).unwrap(), Posted::Queued);
        }
        let counter = ran.clone();
        let event: Job = Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(post_event(&gate, "test", event).unwrap(), Posted::Queued);
        assert_eq!(Arc::strong_count(&held), 4);
        close(&gate);
        assert_eq!(Arc::strong_count(&held), 1, "close released the waiting latest events");
        // Events posted after close are not kept either.
        let late = held.clone();
        assert_eq!(
            post_latest(&gate, "test", Box::new(move || drop(late))).unwrap(),
            Posted::Queued
        );
        assert_eq!(Arc::strong_count(&held), 1);

        drop(release);
        drain();
        assert_eq!(ran.load(Ordering::SeqCst), 0, "a discarded event ran");
        assert_eq!(gate.queued(), 0, "discarded events released their places");
    }

    #[test]
    fn close_from_inside_a_callback_returns_at_once() {
        let gate = Gate::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let inner = gate.clone();
        post(
            &gate,
            Box::new(move || {
                close(&inner);
                tx.send(inner.is_closed()).unwrap();
            }),
        )
        .unwrap();
        assert!(rx.recv_timeout(Duration::from_secs(30)).unwrap());
    }
}
