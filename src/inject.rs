//! Test-only panic injection (feature `panic-injection`).
//!
//! Tests arm a named point; the next time the library passes that point it panics, which proves
//! the panic is caught and turned into an error. Without the feature, [`check`] compiles to
//! nothing.

#[cfg(feature = "panic-injection")]
mod armed {
    use std::sync::{Mutex, PoisonError};

    static ARMED: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// Arms `point` for one panic.
    pub fn arm(point: &str) {
        ARMED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(point.to_string());
    }

    /// Disarms every point.
    pub fn disarm_all() {
        ARMED.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Panics once if `point` is armed.
    pub fn check(point: &str) {
        let hit = {
            let mut armed = ARMED.lock().unwrap_or_else(PoisonError::into_inner);
            match armed.iter().position(|p| p == point) {
                Some(index) => {
                    armed.remove(index);
                    true
                }
                None => false,
            }
        };
        if hit {
            panic!("injected panic at {point}");
        }
    }
}

#[cfg(feature = "panic-injection")]
pub use armed::{arm, check, disarm_all};

/// Does nothing: panic injection is compiled out.
#[cfg(not(feature = "panic-injection"))]
#[inline(always)]
pub fn check(_point: &str) {}
