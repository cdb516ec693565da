//! The library's tokio runtime and the one way a caller's thread waits for it.
//!
//! The runtime starts lazily on first use and lives for the rest of the process. Callers never
//! enter it with `block_on`: they spawn the work and wait on a plain channel with a deadline, so
//! a wait works from any thread (a C thread, a callback, another runtime) and always ends.
//!
//! Every runtime thread is counted from its start until its last thread-local is destroyed (the
//! last thing it runs), so [`shutdown`] can tell whether any of them is still alive. On Linux a
//! thread that ran its last code is still listed in `/proc/self/task` for a moment (joining it
//! returns when the kernel clears its id, before the kernel lets go of the task): [`shutdown`]
//! also waits for those entries to go, so a host that counts its threads after a successful
//! shutdown finds none of ours.

use crate::error::{Error, ErrorKind, Result};
use std::cell::RefCell;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, Runtime};

static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// The name of the runtime's threads.
pub const THREAD_NAME: &str = "moq-ffi-io";

/// Threads of every runtime this library started (the current one and those shut down) that
/// have not exited yet.
static IO_THREADS: LiveThreads = LiveThreads::new();

/// A count of live threads, with a way to wait for none.
pub(crate) struct LiveThreads {
    state: Mutex<Threads>,
    changed: Condvar,
}

struct Threads {
    /// Threads started and not yet past their last thread-local.
    alive: usize,
    /// The `/proc/self/task/<tid>` entries of threads past their last thread-local that were
    /// still listed when last looked at (pruned as each thread ends).
    leaving: Vec<PathBuf>,
}

/// Uncounts its thread when the thread's thread-locals are destroyed, as it exits.
struct Alive {
    threads: &'static LiveThreads,
    /// The thread's `/proc/self/task/<tid>` entry (`None` where there is no such file system).
    task: Option<PathBuf>,
}

impl Drop for Alive {
    fn drop(&mut self) {
        let mut state = self.threads.lock();
        state.alive = state.alive.saturating_sub(1);
        state.leaving.retain(|task| task.exists());
        state.leaving.extend(self.task.take());
        self.threads.changed.notify_all();
    }
}

/// The calling thread's entry in `/proc/self/task`, read from the `/proc/thread-self` link
/// (`None` where there is no such file system).
pub(crate) fn task_entry() -> Option<PathBuf> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    let tid = link.file_name()?;
    Some(Path::new("/proc/self/task").join(tid))
}

/// How often [`wait_tasks_gone`] looks whether exited threads left the task list (the kernel
/// lets go of a task microseconds after its last code ran).
const TASK_POLL: Duration = Duration::from_millis(1);

/// Waits until none of `tasks` (entries of threads that ran their last code: joined, or past
/// their last thread-local) is listed in `/proc/self/task` any more, or `deadline` passes;
/// keeps in `tasks` and counts those still listed.
pub(crate) fn wait_tasks_gone(tasks: &mut Vec<PathBuf>, deadline: Instant) -> usize {
    loop {
        tasks.retain(|task| task.exists());
        if tasks.is_empty() || Instant::now() >= deadline {
            return tasks.len();
        }
        std::thread::sleep(TASK_POLL.min(deadline.saturating_duration_since(Instant::now())));
    }
}

thread_local! {
    static ALIVE: RefCell<Vec<Alive>> = const { RefCell::new(Vec::new()) };
}

impl LiveThreads {
    pub(crate) const fn new() -> Self {
        Self {
            state: Mutex::new(Threads {
                alive: 0,
                leaving: Vec::new(),
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Threads> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts the calling thread until it exits.
    fn started(&'static self) {
        let task = task_entry();
        self.lock().alive += 1;
        ALIVE.with(|alive| alive.borrow_mut().push(Alive { threads: self, task }));
    }

    /// Waits until no counted thread is alive, nor listed as a task any more, or `deadline`
    /// passes; returns how many are left.
    fn wait_for_none(&self, deadline: Instant) -> usize {
        let mut state = self.lock();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if state.alive == 0 || left.is_zero() {
                break;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if state.alive > 0 {
            return state.alive;
        }
        let mut leaving = std::mem::take(&mut state.leaving);
        drop(state);
        let left = wait_tasks_gone(&mut leaving, deadline);
        self.lock().leaving.extend(leaving);
        left
    }
}

/// A multi-thread runtime whose threads `threads` counts.
fn build(threads: &'static LiveThreads) -> std::io::Result<Runtime> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(THREAD_NAME)
        .on_thread_start(move || threads.started())
        .enable_all()
        .build()
}

/// The runtime's handle, starting the runtime on first use.
pub fn handle() -> Result<Handle> {
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(runtime) = slot.as_ref() {
        return Ok(runtime.handle().clone());
    }
    let runtime =
        build(&IO_THREADS).map_err(|err| Error::internal(format!("could not start the I/O runtime: {err}")))?;
    // rustls needs one process-wide crypto provider; an application may have installed its
    // own already, which is fine.
    let _guard = runtime.enter();
    let _ = moq_tokio::crypto::install_default();
    drop(_guard);
    let handle = runtime.handle().clone();
    *slot = Some(runtime);
    drop(slot);
    // `MOQ_LOG` sends the library's logs to stderr when no host log callback is set.
    crate::core::log::init_default();
    Ok(handle)
}

/// Stops the runtime: cancels every task and joins the worker threads, waiting at most
/// `timeout`. The next [`handle`] starts a fresh runtime. Must not be called from a runtime
/// thread.
///
/// `Timeout` (naming the threads) when a runtime thread, of this runtime or of one shut down
/// earlier, is still alive at the deadline (a blocking call that did not return); it exits on
/// its own once that call returns.
pub fn shutdown(timeout: Duration) -> Result<()> {
    if Handle::try_current().is_ok() {
        return Err(Error::new(
            ErrorKind::InvalidState,
            "the runtime cannot be shut down from one of its own tasks",
        ));
    }
    let runtime = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner).take();
    shut_down(runtime, &IO_THREADS, timeout)
}

/// Shuts `runtime` down and waits until none of `threads` is alive, at most `timeout` in all.
fn shut_down(runtime: Option<Runtime>, threads: &LiveThreads, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    if let Some(runtime) = runtime {
        runtime.shutdown_timeout(timeout);
    }
    match threads.wait_for_none(deadline) {
        0 => Ok(()),
        left => Err(Error::new(
            ErrorKind::Timeout,
            match timeout.is_zero() {
                // Nothing was left of the caller's budget: do not blame a task.
                true => format!(
                    "no time was left to join {left} I/O runtime thread(s) ({THREAD_NAME}): the earlier shutdown steps used up the timeout"
                ),
                false => format!(
                    "{left} I/O runtime thread(s) ({THREAD_NAME}) still running {} ms after the runtime was told to stop (a blocking call has not returned)",
                    timeout.as_millis()
                ),
            },
        )),
    }
}

/// Runs `future` on the runtime and waits for it on the calling thread for at most `timeout`.
///
/// On timeout the task is aborted and `what` names the operation in the error.
pub fn run_blocking<F, T>(what: &str, timeout: Duration, future: F) -> Result<T>
where
    F: Future<Output = Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let handle = handle()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let task = handle.spawn(async move {
        let _ = tx.send(future.await);
    });
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            task.abort();
            Err(Error::new(
                ErrorKind::Timeout,
                format!("{what} timed out after {} ms", timeout.as_millis()),
            ))
        }
        // The task ended without sending: it panicked (tokio caught it) or was aborted.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(Error::new(
            ErrorKind::Panic,
            format!("{what} failed: its background task panicked or was cancelled"),
        )),
    }
}

/// Spawns a background task; if it panics, `on_panic` receives the error instead of the
/// panic vanishing into the runtime.
pub fn spawn_supervised<F>(
    handle: &Handle,
    what: &'static str,
    future: F,
    on_panic: impl FnOnce(Error) + Send + 'static,
) -> tokio::task::AbortHandle
where
    F: Future<Output = ()> + Send + 'static,
{
    let task = handle.spawn(future);
    let abort = task.abort_handle();
    handle.spawn(async move {
        if let Err(err) = task.await {
            if err.is_panic() {
                let payload = err.into_panic();
                on_panic(Error::from_panic(what, payload.as_ref()));
            }
        }
    });
    abort
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_reports_a_thread_still_running_then_sees_it_exit() {
        static THREADS: LiveThreads = LiveThreads::new();
        let runtime = build(&THREADS).unwrap();
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        runtime.spawn_blocking(move || {
            let _ = entered_tx.send(());
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
        });
        entered_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert!(THREADS.wait_for_none(Instant::now()) >= 1);

        let err = shut_down(Some(runtime), &THREADS, Duration::from_millis(100)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.message().contains(THREAD_NAME), "{}", err.message());

        drop(release_tx);
        assert_eq!(
            THREADS.wait_for_none(Instant::now() + Duration::from_secs(30)),
            0,
            "the blocking thread exits once its call returns"
        );
        shut_down(None, &THREADS, Duration::from_millis(100)).unwrap();
    }

    #[test]
    fn shutdown_of_an_idle_runtime_joins_every_thread() {
        static THREADS: LiveThreads = LiveThreads::new();
        let runtime = build(&THREADS).unwrap();
        runtime.block_on(async {
            tokio::task::spawn_blocking(|| ()).await.unwrap();
        });
        shut_down(Some(runtime), &THREADS, Duration::from_secs(10)).unwrap();
        assert_eq!(THREADS.wait_for_none(Instant::now()), 0);
    }
}
