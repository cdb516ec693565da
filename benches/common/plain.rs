//! Plain baselines for the call-cost benchmark: what a handle lookup and a callback hand-off
//! cost with nothing but std (`RwLock<HashMap>`, an `mpsc` channel to a thread).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::Thread;

/// A boxed job, as the dispatcher runs them.
pub type Job = Box<dyn FnOnce() + Send>;

/// A client's state, as a registry entry holds it.
pub struct Entry {
    connected: Mutex<bool>,
}

/// Handles in a `RwLock<HashMap>`, as simple as a registry can be.
pub struct Registry {
    entries: RwLock<HashMap<u64, Arc<Entry>>>,
}

impl Registry {
    /// A registry of `count` connected clients.
    pub fn with_clients(count: u64) -> Self {
        let entries = (1..=count)
            .map(|id| {
                let entry = Entry {
                    connected: Mutex::new(true),
                };
                ((id << 4) | 1, Arc::new(entry))
            })
            .collect();
        Self {
            entries: RwLock::new(entries),
        }
    }

    /// A live handle.
    pub fn some_handle(&self) -> u64 {
        (1 << 4) | 1
    }

    /// The entry behind `handle`.
    pub fn get(&self, handle: u64) -> Option<Arc<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&handle)
            .cloned()
    }

    /// Lookup plus a state check: the work `moq_is_connected` does, minus the C boundary.
    pub fn is_connected(&self, handle: u64) -> bool {
        self.get(handle)
            .is_some_and(|entry| *entry.connected.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// moq-ffi's own registry holding `count` objects, and one live handle.
pub fn moq_registry(count: u32) -> (moq_ffi::handle::Registry<u32>, u64) {
    let registry = moq_ffi::handle::Registry::new("Bench", 1);
    let handles: Vec<u64> = (0..count).map(|n| registry.insert(Arc::new(n))).collect();
    let handle = handles.first().copied().unwrap_or_default();
    (registry, handle)
}

/// Jobs run one at a time on a thread fed by a std `mpsc` channel.
pub struct Dispatcher {
    sender: Mutex<Option<Sender<Job>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Dispatcher {
    /// Starts the thread.
    pub fn start() -> Self {
        let (sender, receiver) = channel::<Job>();
        let thread = std::thread::spawn(move || {
            while let Ok(job) = receiver.recv() {
                job();
            }
        });
        Self {
            sender: Mutex::new(Some(sender)),
            thread: Some(thread),
        }
    }

    /// Queues `job`; false once stopped.
    pub fn post(&self, job: Job) -> bool {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        sender.as_ref().is_some_and(|sender| sender.send(job).is_ok())
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Wakes the posting thread once every job posted ran.
struct Done {
    ran: AtomicU64,
    waiter: Thread,
}

/// Posts `jobs` jobs through `post` and waits until the last has run.
pub fn round_trip(post: impl Fn(Job) -> bool, jobs: u64) {
    let done = Arc::new(Done {
        ran: AtomicU64::new(0),
        waiter: std::thread::current(),
    });
    for _ in 0..jobs {
        let done = done.clone();
        let posted = post(Box::new(move || {
            if done.ran.fetch_add(1, Ordering::AcqRel) + 1 == jobs {
                done.waiter.unpark();
            }
        }));
        assert!(posted, "the dispatcher stopped");
    }
    while done.ran.load(Ordering::Acquire) < jobs {
        std::thread::park();
    }
}
