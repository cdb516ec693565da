//! The one boundary every exported function goes through.
//!
//! [`enter`] runs the body inside `catch_unwind`, turns an `Err` or a panic into the function's
//! failure value (an error `MoqResult`, NULL, false or nothing) and records the message as the
//! thread's last error. The argument readers here are the only code that touches C memory.

use super::types::*;
use crate::core;
use crate::error::{Error, ErrorKind, Result};
use crate::handle::Registry;
use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};

/// Live clients.
pub(crate) static CLIENTS: Registry<core::client::Client> = Registry::new("MoqClient", 1);
/// Live publishers.
pub(crate) static PUBLISHERS: Registry<core::publish::Publisher> = Registry::new("MoqPublisher", 2);
/// Live subscribers.
pub(crate) static SUBSCRIBERS: Registry<core::subscribe::Subscriber> = Registry::new("MoqSubscriber", 3);
/// Live embedded relays, with the C strings they hand out.
pub(crate) static RELAYS: Registry<RelayStrings> = Registry::new("MoqRelay", 4);

/// A relay and the C copies of its URL and fingerprint, valid until it is stopped.
pub(crate) struct RelayStrings {
    pub relay: core::relay::Relay,
    pub url: CString,
    pub fingerprint: CString,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
    static LAST_ERROR_CODE: std::cell::Cell<MoqResultCode> = const { std::cell::Cell::new(MoqResultCode::MOQ_OK) };
}

/// Strings handed to C that `moq_free_str` may release.
static ISSUED: Mutex<Option<HashSet<usize>>> = Mutex::new(None);

/// What an exported function returns when it fails.
pub(crate) trait Failure {
    fn failure(err: &Error) -> Self;
}

impl Failure for MoqResult {
    fn failure(err: &Error) -> Self {
        MoqResult {
            code: code_of(err.kind()),
            message: issue_string(err.message()),
        }
    }
}

impl<T> Failure for *mut T {
    fn failure(_: &Error) -> Self {
        std::ptr::null_mut()
    }
}

impl<T> Failure for *const T {
    fn failure(_: &Error) -> Self {
        std::ptr::null()
    }
}

impl Failure for MoqResultCode {
    fn failure(err: &Error) -> Self {
        code_of(err.kind())
    }
}

impl Failure for bool {
    fn failure(_: &Error) -> Self {
        false
    }
}

impl Failure for () {
    fn failure(_: &Error) -> Self {}
}

/// Runs the body of exported function `name`: panics are caught, errors recorded.
pub(crate) fn enter<R: Failure>(name: &'static str, body: impl FnOnce() -> Result<R>) -> R {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        crate::inject::check(name);
        body()
    }));
    let err = match outcome {
        Ok(Ok(value)) => return value,
        Ok(Err(err)) => err.context(name),
        Err(payload) => Error::from_panic(name, payload.as_ref()),
    };
    // Recording must not unwind either: it only allocates.
    let _ = catch_unwind(AssertUnwindSafe(|| set_last_error(&err)));
    catch_unwind(AssertUnwindSafe(|| R::failure(&err))).unwrap_or_else(|_| R::failure(&Error::internal("")))
}

/// The success value of a `MoqResult` function.
pub(crate) fn ok() -> MoqResult {
    MoqResult {
        code: MoqResultCode::MOQ_OK,
        message: std::ptr::null(),
    }
}

pub(crate) fn code_of(kind: ErrorKind) -> MoqResultCode {
    use MoqResultCode::*;
    match kind {
        ErrorKind::InvalidArgument => MOQ_ERROR_INVALID_ARGUMENT,
        ErrorKind::ConnectionFailed => MOQ_ERROR_CONNECTION_FAILED,
        ErrorKind::NotConnected => MOQ_ERROR_NOT_CONNECTED,
        ErrorKind::Timeout => MOQ_ERROR_TIMEOUT,
        ErrorKind::Internal => MOQ_ERROR_INTERNAL,
        ErrorKind::Unsupported => MOQ_ERROR_UNSUPPORTED,
        ErrorKind::BufferTooSmall => MOQ_ERROR_BUFFER_TOO_SMALL,
        ErrorKind::InvalidHandle => MOQ_ERROR_INVALID_HANDLE,
        ErrorKind::Panic => MOQ_ERROR_PANIC,
        ErrorKind::Refused => MOQ_ERROR_REFUSED,
        ErrorKind::NotFound => MOQ_ERROR_NOT_FOUND,
        ErrorKind::Closed => MOQ_ERROR_CLOSED,
        ErrorKind::InvalidState => MOQ_ERROR_INVALID_STATE,
        ErrorKind::WouldBlock => MOQ_ERROR_WOULD_BLOCK,
    }
}

fn to_cstring(text: &str) -> CString {
    CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default()
}

/// Records `err` as this thread's last error.
pub(crate) fn set_last_error(err: &Error) {
    let message = to_cstring(err.message());
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(message));
    LAST_ERROR_CODE.with(|slot| slot.set(code_of(err.kind())));
}

/// The code of this thread's last error (`MOQ_OK` if none yet).
pub(crate) fn last_error_code() -> MoqResultCode {
    LAST_ERROR_CODE.with(|slot| slot.get())
}

/// This thread's last error, or NULL. Valid until the next failing call on this thread.
pub(crate) fn last_error() -> *const c_char {
    LAST_ERROR.with(|slot| {
        slot.borrow()
            .as_ref()
            .map_or(std::ptr::null(), |message| message.as_ptr())
    })
}

/// Hands `text` to C as a string it frees with `moq_free_str`.
pub(crate) fn issue_string(text: &str) -> *const c_char {
    let raw = to_cstring(text).into_raw();
    let mut issued = ISSUED.lock().unwrap_or_else(PoisonError::into_inner);
    issued.get_or_insert_with(HashSet::new).insert(raw as usize);
    raw
}

/// Releases a string from [`issue_string`]; anything else (NULL, foreign, already freed) is
/// ignored.
pub(crate) fn free_string(ptr: *const c_char) {
    let known = {
        let mut issued = ISSUED.lock().unwrap_or_else(PoisonError::into_inner);
        issued.as_mut().is_some_and(|set| set.remove(&(ptr as usize)))
    };
    if known {
        // SAFETY: `ptr` came from `CString::into_raw` in `issue_string` and was just removed
        // from the issued set, so it is released exactly once.
        drop(unsafe { CString::from_raw(ptr as *mut c_char) });
    }
}

/// The handle value behind a C pointer. Never dereferenced.
pub(crate) fn handle_of<T>(ptr: *const T) -> u64 {
    ptr as usize as u64
}

/// The C pointer for a handle value. Never dereferenced by the library.
pub(crate) fn ptr_of<T>(handle: u64) -> *mut T {
    handle as usize as *mut T
}

/// Reads a NUL-terminated UTF-8 string parameter of at most `max` bytes.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string readable up to its terminator or `max + 1`
/// bytes, whichever comes first.
pub(crate) unsafe fn str_arg<'a>(param: &str, ptr: *const c_char, max: usize) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::invalid_argument(format!("{param} is NULL")));
    }
    // Bounded scan (like strnlen): an unterminated or huge string is rejected without reading
    // past `max + 1` bytes.
    let mut len = 0usize;
    // SAFETY: the caller guarantees bytes up to the terminator or `max + 1` are readable; the
    // loop stops at the first of the two.
    while len <= max && unsafe { *ptr.add(len) } != 0 {
        len += 1;
    }
    if len > max {
        return Err(Error::invalid_argument(format!(
            "{param} is longer than the maximum of {max} bytes"
        )));
    }
    // SAFETY: the `len` bytes before the terminator were just read, so they are readable.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes)
        .map_err(|err| Error::invalid_argument(format!("{param} is not valid UTF-8 (at byte {})", err.valid_up_to())))
}

/// Reads an optional string parameter: NULL is `None`.
///
/// # Safety
/// As for [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(param: &str, ptr: *const c_char, max: usize) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded from the caller.
    unsafe { str_arg(param, ptr, max) }.map(Some)
}

/// Reads a byte-buffer parameter; NULL is allowed only with length 0.
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes that stay unchanged during the call.
pub(crate) unsafe fn bytes_arg<'a>(param: &str, data: *const u8, len: usize) -> Result<&'a [u8]> {
    if data.is_null() {
        return match len {
            0 => Ok(&[]),
            _ => Err(Error::invalid_argument(format!(
                "{param} is NULL but its length is {len}"
            ))),
        };
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid_argument(format!("{param} length {len} is impossible")));
    }
    // SAFETY: the caller guarantees `len` readable bytes at `data`.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// Copies `text` and a NUL terminator into the caller's buffer `buf` of `len` bytes.
///
/// # Safety
/// `buf` is NULL (only with `len` 0) or points to `len` writable bytes.
pub(crate) unsafe fn copy_out(param: &str, buf: *mut c_char, len: usize, text: &str) -> Result<()> {
    if buf.is_null() && len > 0 {
        return Err(Error::invalid_argument(format!(
            "{param} is NULL but its length is {len}"
        )));
    }
    let needed = text.len() + 1;
    if len < needed {
        if len > 0 {
            // SAFETY: `buf` has at least one writable byte.
            unsafe { *buf = 0 };
        }
        return Err(Error::new(
            ErrorKind::BufferTooSmall,
            format!("{param} holds {len} bytes; {needed} are needed"),
        ));
    }
    // SAFETY: `buf` has `len >= text.len() + 1` writable bytes and cannot overlap `text`, which
    // the library owns.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
    }
    Ok(())
}

/// Looks up a live object by the C pointer the caller holds.
pub(crate) fn lookup<T, H>(registry: &Registry<T>, ptr: *const H) -> Result<Arc<T>> {
    registry.get(handle_of(ptr))
}

/// A C `user_data` pointer carried to the callback thread. The library never dereferences it.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub *mut std::ffi::c_void);

// SAFETY: the pointer is only passed back to the caller's own callback, which the documented
// contract says runs on the library's callback thread; the library never reads through it.
unsafe impl Send for UserData {}
// SAFETY: as above; the library shares the value, never the pointee.
unsafe impl Sync for UserData {}

/// An options struct whose every field is an integer: any byte pattern is a valid value, so a
/// caller's struct can be copied over a default one byte for byte.
///
/// # Safety
/// Implement only for `#[repr(C)]` structs of integer fields that start with `u32 struct_size`.
pub(crate) unsafe trait PlainOptions: Copy {
    /// Every released `struct_size`, oldest first.
    const KNOWN_SIZES: &'static [usize];
}

/// Reads a caller's versioned options struct: NULL is `default`; otherwise its `struct_size`
/// must be a released layout size, and fields an older (smaller) layout lacks keep `default`.
///
/// # Safety
/// `ptr` is NULL or points to at least `struct_size` readable bytes.
pub(crate) unsafe fn read_options<T: PlainOptions>(param: &str, ptr: *const T, default: T) -> Result<T> {
    if ptr.is_null() {
        return Ok(default);
    }
    // SAFETY: non-NULL and points to at least the leading `struct_size` field.
    let size = unsafe { std::ptr::read_unaligned(ptr.cast::<u32>()) } as usize;
    if !T::KNOWN_SIZES.contains(&size) {
        return Err(Error::invalid_argument(format!(
            "{param}->struct_size is {size}; expected {} (start from the moq_*_options_default() of the header you compile with)",
            std::mem::size_of::<T>()
        )));
    }
    let mut value = default;
    // SAFETY: `size` is a known layout size no larger than `T`, the caller guarantees `size`
    // readable bytes, and `T: PlainOptions` accepts any bytes.
    unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), (&mut value as *mut T).cast::<u8>(), size) };
    Ok(value)
}
