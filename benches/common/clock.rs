//! One monotonic clock for the whole process: send and receive times are nanoseconds since the
//! first call, so a one-way latency is a plain difference (publisher and subscriber share the
//! process).

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds since the process's benchmark epoch.
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}
