//! Library-wide functions: initialisation, version, errors and strings.

use super::boundary::{self, enter};
use std::ffi::{c_char, CString};
use std::sync::OnceLock;

/// Starts the library's runtime and callback thread. Optional and idempotent: every function
/// initialises lazily.
///
/// Returns true when the library is ready; false (with `moq_last_error`) if the runtime could
/// not start. Thread-safe; does not block beyond thread creation.
///
/// # Safety
/// None: takes no pointers.
#[no_mangle]
pub extern "C" fn moq_init() -> bool {
    enter("moq_init", || {
        crate::runtime::handle()?;
        Ok(true)
    })
}

/// The library version and the MoQ protocol versions it speaks, e.g.
/// `"moq-ffi 0.2.0 (moq-lite-01,...,moq-transport-14,...)"`.
///
/// The string is static: never free it. Thread-safe, never blocks, never NULL.
///
/// # Safety
/// None: takes no pointers.
#[no_mangle]
pub extern "C" fn moq_version() -> *const c_char {
    static VERSION: OnceLock<CString> = OnceLock::new();
    enter("moq_version", || {
        let version = VERSION.get_or_init(|| {
            let versions: Vec<String> = moq_net::Versions::all().iter().map(|v| v.to_string()).collect();
            let text = format!("moq-ffi {} ({})", env!("CARGO_PKG_VERSION"), versions.join(","));
            CString::new(text).unwrap_or_default()
        });
        Ok(version.as_ptr())
    })
}

/// The message of the last failing call on this thread, or NULL if none failed yet.
///
/// Owned by the library: do not free it. Valid until the next failing call on the same thread.
/// Never blocks.
///
/// # Safety
/// None: takes no pointers.
#[no_mangle]
pub extern "C" fn moq_last_error() -> *const c_char {
    enter("moq_last_error", || Ok(boundary::last_error()))
}

/// Frees a string the library handed to the caller (a `MoqResult.message`).
///
/// NULL, strings the library did not hand out, and strings already freed are ignored (as with
/// `free`, a pointer freed twice is only recognised while its address has not been reused by a
/// newer message: free each message once).
/// Thread-safe, never blocks.
///
/// # Safety
/// None beyond passing a pointer value; the library never dereferences a pointer it did not
/// issue.
#[no_mangle]
pub extern "C" fn moq_free_str(s: *const c_char) {
    enter("moq_free_str", || {
        boundary::free_string(s);
        Ok(())
    })
}
