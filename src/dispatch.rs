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

use crate::error::{Error, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::thread::ThreadId;

/// Work for the dispatcher thread: usually one application callback.
pub type Job = Box<dyn FnOnce() + Send>;

/// Admission to callbacks for one object; closed for good by [`close`].
#[derive(Debug)]
pub struct Gate {
    id: u64,
    closed: AtomicBool,
}

impl Gate {
    /// A new, open gate.
    pub fn new() -> Arc<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Arc::new(Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            closed: AtomicBool::new(false),
        })
    }

    /// Whether [`close`] was called for this gate.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

enum Message {
    Run(Arc<Gate>, Job),
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
    thread: ThreadId,
    /// Signals when the thread has left its loop (for a bounded join at shutdown).
    exited: Mutex<Option<Receiver<()>>>,
    handle: Mutex<Option<std::thread::JoinHandle<()>>>,
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
}

/// The running dispatcher; `None` before first use and after [`stop`].
static DISPATCHER: RwLock<Option<Arc<Dispatcher>>> = RwLock::new(None);

fn current() -> Option<Arc<Dispatcher>> {
    DISPATCHER.read().unwrap_or_else(PoisonError::into_inner).clone()
}

fn dispatcher() -> Result<Arc<Dispatcher>> {
    if let Some(dispatcher) = current() {
        return Ok(dispatcher);
    }
    let mut slot = DISPATCHER.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(dispatcher) = slot.as_ref() {
        return Ok(dispatcher.clone());
    }
    let (sender, receiver) = channel();
    let (exit_tx, exit_rx) = channel();
    let (ready_tx, ready_rx) = channel::<Arc<Dispatcher>>();
    let thread = std::thread::Builder::new()
        .name("moq-ffi-callbacks".into())
        .spawn(move || {
            if let Ok(dispatcher) = ready_rx.recv() {
                run(&dispatcher, receiver);
            }
            let _ = exit_tx.send(());
        })
        .map_err(|err| Error::internal(format!("could not start the callback thread: {err}")))?;
    let dispatcher = Arc::new(Dispatcher {
        sender,
        running: AtomicU64::new(0),
        waiters: AtomicUsize::new(0),
        idle: Mutex::new(()),
        finished: Condvar::new(),
        thread: thread.thread().id(),
        exited: Mutex::new(Some(exit_rx)),
        handle: Mutex::new(Some(thread)),
    });
    let _ = ready_tx.send(dispatcher.clone());
    *slot = Some(dispatcher.clone());
    Ok(dispatcher)
}

fn run(dispatcher: &Dispatcher, receiver: Receiver<Message>) {
    while let Ok(Message::Run(gate, job)) = receiver.recv() {
        dispatcher.running.store(gate.id, Ordering::SeqCst);
        if gate.closed.load(Ordering::SeqCst) {
            dispatcher.finish_job();
            drop(job);
            continue;
        }
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
/// for it to exit. Must not be called from inside a callback. A later [`post`] starts a new
/// thread.
pub fn stop(timeout: std::time::Duration) -> Result<()> {
    if in_callback() {
        return Err(Error::new(
            crate::error::ErrorKind::InvalidState,
            "cannot stop the callback thread from inside a callback",
        ));
    }
    let Some(dispatcher) = DISPATCHER.write().unwrap_or_else(PoisonError::into_inner).take() else {
        return Ok(());
    };
    let _ = dispatcher.sender.send(Message::Stop);
    let exited = dispatcher.exited.lock().unwrap_or_else(PoisonError::into_inner).take();
    match exited.map(|exited| exited.recv_timeout(timeout)) {
        Some(Err(std::sync::mpsc::RecvTimeoutError::Timeout)) => Err(Error::new(
            crate::error::ErrorKind::Timeout,
            match timeout.is_zero() {
                // Nothing was left of the caller's budget: do not blame a callback.
                true => "no time was left to join the callback thread: the earlier shutdown steps used up the timeout"
                    .to_string(),
                false => format!(
                    "the callback thread did not finish within the {} ms left of the timeout (a callback may still be running)",
                    timeout.as_millis()
                ),
            },
        )),
        _ => {
            if let Some(handle) = dispatcher.handle.lock().unwrap_or_else(PoisonError::into_inner).take() {
                let _ = handle.join();
            }
            Ok(())
        }
    }
}

/// Queues `job` to run on the dispatcher thread unless `gate` is closed by then.
pub fn post(gate: &Arc<Gate>, job: Job) -> Result<()> {
    if gate.is_closed() {
        return Ok(());
    }
    let stopped = || Error::internal("the callback thread has stopped");
    let message = Message::Run(gate.clone(), job);
    // The common case sends under the shared read guard (no reference count to bump). A job
    // that could not be sent is dropped only after the guard is released: dropping it may run
    // code that posts again.
    let unsent = {
        let slot = DISPATCHER.read().unwrap_or_else(PoisonError::into_inner);
        match slot.as_ref() {
            Some(dispatcher) => match dispatcher.sender.send(message) {
                Ok(()) => return Ok(()),
                Err(unsent) => Err(unsent),
            },
            None => Ok(message),
        }
    };
    match unsent {
        // No dispatcher yet: start one.
        Ok(message) => dispatcher()?.sender.send(message).map_err(|_| stopped()),
        Err(_) => Err(stopped()),
    }
}

/// Whether the calling thread is the dispatcher thread (i.e. we are inside a callback).
pub fn in_callback() -> bool {
    std::thread::current().name() == Some("moq-ffi-callbacks")
        && current().is_some_and(|dispatcher| dispatcher.thread == std::thread::current().id())
}

/// Closes `gate`: no callback of it starts afterwards, and (unless called from inside a
/// callback) none is running when this returns.
pub fn close(gate: &Gate) {
    gate.closed.store(true, Ordering::SeqCst);
    let Some(dispatcher) = current() else {
        // No callback was ever posted, so none can be running.
        return;
    };
    if dispatcher.thread == std::thread::current().id() || dispatcher.running.load(Ordering::SeqCst) != gate.id {
        return;
    }
    let mut idle = dispatcher.idle.lock().unwrap_or_else(PoisonError::into_inner);
    dispatcher.waiters.fetch_add(1, Ordering::SeqCst);
    while dispatcher.running.load(Ordering::SeqCst) == gate.id {
        idle = dispatcher.finished.wait(idle).unwrap_or_else(PoisonError::into_inner);
    }
    dispatcher.waiters.fetch_sub(1, Ordering::SeqCst);
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
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            "later jobs run on the dispatcher"
        );
        assert!(!in_callback());
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
        assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
    }
}
