//! Panic and fault injection for tests: proof that every panic is caught and turned into an
//! error, and faults the network cannot be made to produce on demand (a live subscription that
//! stalls: [`set_fault`], [`fault`]).
//!
//! A Rust test arms a named point ([`arm`]); the next time the library passes that point
//! ([`check`]) it panics. The points sit in every export (the boundary), the publish path, the
//! background tasks and the callback dispatcher (`tests/panic_injection.rs`).
//!
//! The points are always compiled in, so the suite tests the one build it ships instead of a
//! feature variant: while nothing is armed (always, outside the Rust tests: arming is a Rust
//! function, not part of the C ABI) a point costs one relaxed atomic load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// The armed points; [`ARMED_COUNT`] mirrors its length for the lock-free fast path.
static ARMED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static ARMED_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Arms `point` for one panic.
#[doc(hidden)]
pub fn arm(point: &str) {
    let mut armed = ARMED.lock().unwrap_or_else(PoisonError::into_inner);
    armed.push(point.to_string());
    ARMED_COUNT.store(armed.len(), Ordering::Release);
}

/// Disarms every point.
#[doc(hidden)]
pub fn disarm_all() {
    let mut armed = ARMED.lock().unwrap_or_else(PoisonError::into_inner);
    armed.clear();
    ARMED_COUNT.store(0, Ordering::Release);
}

/// Panics once if `point` is armed.
#[inline]
pub fn check(point: &str) {
    if ARMED_COUNT.load(Ordering::Relaxed) == 0 {
        return;
    }
    let hit = {
        let mut armed = ARMED.lock().unwrap_or_else(PoisonError::into_inner);
        let index = armed.iter().position(|p| p == point);
        if let Some(index) = index {
            armed.remove(index);
            ARMED_COUNT.store(armed.len(), Ordering::Release);
        }
        index.is_some()
    };
    if hit {
        panic!("injected panic at {point}");
    }
}

/// Sets or clears a fault: a point that stays armed (it does not panic) until cleared.
#[doc(hidden)]
pub fn set_fault(point: &str, on: bool) {
    let mut armed = ARMED.lock().unwrap_or_else(PoisonError::into_inner);
    let fault = format!("fault:{point}");
    armed.retain(|p| *p != fault);
    if on {
        armed.push(fault);
    }
    ARMED_COUNT.store(armed.len(), Ordering::Release);
}

/// Whether the fault `point` followed by `:` and `scope` is set (one relaxed atomic load while
/// nothing is armed).
#[inline]
pub fn fault(point: &str, scope: &str) -> bool {
    if ARMED_COUNT.load(Ordering::Relaxed) == 0 {
        return false;
    }
    let fault = format!("fault:{point}:{scope}");
    ARMED.lock().unwrap_or_else(PoisonError::into_inner).contains(&fault)
}
