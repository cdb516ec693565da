//! The library's tokio runtime and the one way a caller's thread waits for it.
//!
//! The runtime starts lazily on first use and lives for the rest of the process. Callers never
//! enter it with `block_on`: they spawn the work and wait on a plain channel with a deadline, so
//! a wait works from any thread (a C thread, a callback, another runtime) and always ends.

use crate::error::{Error, ErrorKind, Result};
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};

static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// The runtime's handle, starting the runtime on first use.
pub fn handle() -> Result<Handle> {
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(runtime) = slot.as_ref() {
        return Ok(runtime.handle().clone());
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("moq-ffi-io")
        .enable_all()
        .build()
        .map_err(|err| Error::internal(format!("could not start the I/O runtime: {err}")))?;
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
pub fn shutdown(timeout: Duration) -> Result<()> {
    if Handle::try_current().is_ok() {
        return Err(Error::new(
            ErrorKind::InvalidState,
            "the runtime cannot be shut down from one of its own tasks",
        ));
    }
    let runtime = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(runtime) = runtime {
        runtime.shutdown_timeout(timeout);
    }
    Ok(())
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
