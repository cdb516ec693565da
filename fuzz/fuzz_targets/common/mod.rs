//! Helpers shared by the fuzz targets: a byte reader that never runs out (missing bytes read as
//! zero), owned NUL-terminated C strings, exact-size heap buffers (so AddressSanitizer sees any
//! read or write past what the caller declared), and the error-reporting invariants every C call
//! is checked against.
#![allow(dead_code)]

use moq_ffi::ffi::*;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ffi::{c_char, CStr};

// ---------------------------------------------------------------------------------------------
// Input decoding.
// ---------------------------------------------------------------------------------------------

/// Reads the fuzzer's bytes front to back; past the end every read is zero.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
    pub fn u8(&mut self) -> u8 {
        let byte = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        byte
    }
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = self.pos.saturating_add(n);
        self.data[start..end].to_vec()
    }
    /// A length byte, then that many bytes.
    pub fn short_bytes(&mut self) -> Vec<u8> {
        let n = self.u8() as usize;
        self.bytes(n)
    }
    /// Everything left.
    pub fn rest(&mut self) -> Vec<u8> {
        let n = self.remaining();
        self.bytes(n)
    }
    /// A u32 biased towards the boundaries that matter to validation.
    pub fn interesting_u32(&mut self, specials: &[u32]) -> u32 {
        let selector = self.u8();
        match (selector as usize) % (specials.len() + 2) {
            i if i < specials.len() => specials[i],
            i if i == specials.len() => u32::from(self.u8()),
            _ => self.u32(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Memory the fuzzer owns and hands to the library.
// ---------------------------------------------------------------------------------------------

/// A heap block of exactly `len` bytes (at least 1 is allocated so the pointer is real; with
/// `len` 0 the library may not read it at all). ASan flags any access past `len`.
pub struct Block {
    ptr: *mut u8,
    len: usize,
    layout: Layout,
}

impl Block {
    pub fn zeroed(len: usize) -> Self {
        let layout = Layout::from_size_align(len.max(1), 8).expect("layout");
        // SAFETY: non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory allocating {len} bytes");
        Self { ptr, len, layout }
    }
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let block = Self::zeroed(bytes.len());
        // SAFETY: the block holds `bytes.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), block.ptr, bytes.len()) };
        block
    }
    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` initialised bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
    /// Writes `value` at `offset` if it fits in the block (a field an older, smaller struct
    /// does not have is simply not written).
    pub fn put<T: Copy>(&mut self, offset: usize, value: T) {
        if offset + std::mem::size_of::<T>() <= self.len {
            // SAFETY: in bounds, checked above; unaligned write.
            unsafe { std::ptr::write_unaligned(self.ptr.add(offset).cast::<T>(), value) };
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { dealloc(self.ptr, self.layout) };
    }
}

/// A C string argument: NULL, or bytes followed by a NUL in an exact-size block (the bytes may
/// themselves contain NULs: the library sees the prefix before the first one).
pub enum CArg {
    Null,
    Text(Block),
}

impl CArg {
    pub fn new(bytes: Option<&[u8]>) -> Self {
        match bytes {
            None => CArg::Null,
            Some(bytes) => {
                let mut with_nul = Vec::with_capacity(bytes.len() + 1);
                with_nul.extend_from_slice(bytes);
                with_nul.push(0);
                CArg::Text(Block::from_bytes(&with_nul))
            }
        }
    }
    pub fn ptr(&self) -> *const c_char {
        match self {
            CArg::Null => std::ptr::null(),
            CArg::Text(block) => block.ptr().cast::<c_char>().cast_const(),
        }
    }
}

/// Reads a library-provided C string, checking it is there. ASan checks every byte is readable.
///
/// # Safety
/// `ptr` is NULL (reported) or claimed by the library to be a NUL-terminated string.
pub unsafe fn read_c(what: &str, ptr: *const c_char) -> String {
    assert!(!ptr.is_null(), "INVARIANT: {what} is NULL");
    // SAFETY: the library's contract.
    unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

// ---------------------------------------------------------------------------------------------
// Error-reporting invariants.
// ---------------------------------------------------------------------------------------------

/// Handles of no registry (tag 0xf is never issued) whose failure message we recognise: calling
/// a destroy with one sets a known last error, so after the call under test we can tell whether
/// that call set a new one. The value changes on every call (a counter in the id bits), so the
/// fuzzer cannot learn it from a comparison and smuggle it into an input.
pub const PRIME: usize = 0x7ff3_0000_0000_000f;

thread_local! {
    static PRIMED: std::cell::Cell<usize> = const { std::cell::Cell::new(PRIME) };
}

pub fn prime() {
    static NONCE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    let nonce = NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xffff_ffff;
    let value = PRIME | (nonce << 4);
    PRIMED.with(|primed| primed.set(value));
    moq_publisher_destroy(value as *mut MoqPublisher);
}

/// Whether `value` could be a priming handle (callers never pass those as fuzzed handles).
pub fn is_prime_like(value: usize) -> bool {
    value & 0xffff_0000_0000_000f == PRIME
}

/// This thread's last error text, if any.
pub fn last_error() -> Option<String> {
    let ptr = moq_last_error();
    if ptr.is_null() {
        None
    } else {
        // SAFETY: library-owned, valid until the next failing call on this thread.
        Some(unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
    }
}

pub fn code_u32(code: MoqResultCode) -> u32 {
    code as u32
}

/// Whether the last error is still the one `prime` set.
pub fn still_primed() -> bool {
    let value = PRIMED.with(|primed| primed.get());
    let marker = format!("0x{value:x} ");
    last_error().is_some_and(|text| text.contains(&marker))
}

/// After a call that failed: the last error must be fresh, non-empty, and its code not OK.
#[track_caller]
pub fn check_fresh_error(func: &str) -> (MoqResultCode, String) {
    let text = last_error().unwrap_or_else(|| panic!("INVARIANT: {func} failed but moq_last_error() is NULL"));
    assert!(
        !text.is_empty(),
        "INVARIANT: {func} failed with an empty moq_last_error()"
    );
    assert!(
        !still_primed(),
        "INVARIANT: {func} failed without setting moq_last_error() (still: {text})"
    );
    let code = moq_last_error_code();
    assert!(
        code != MoqResultCode::MOQ_OK,
        "INVARIANT: {func} failed but moq_last_error_code() is MOQ_OK ({text})"
    );
    assert!(
        code != MoqResultCode::MOQ_ERROR_PANIC,
        "FINDING: {func} caught a panic: {text}"
    );
    (code, text)
}

/// What the harness knows about a call's handle argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A live handle (or one that may be): any outcome.
    Any,
    /// NULL, destroyed, another type's or never issued: must fail with INVALID_HANDLE.
    BadHandle,
}

/// Checks a `MoqResult`: success has no message; failure has a non-empty message equal to the
/// last error, whose code matches. Frees the message. Returns the code.
#[track_caller]
pub fn check_result(func: &str, result: MoqResult, expect: Expect) -> MoqResultCode {
    if result.code == MoqResultCode::MOQ_OK {
        assert!(
            result.message.is_null(),
            "INVARIANT: {func} succeeded with a non-NULL message"
        );
        assert!(
            expect != Expect::BadHandle,
            "INVARIANT: {func} succeeded with an invalid handle"
        );
        return result.code;
    }
    assert!(
        !result.message.is_null(),
        "INVARIANT: {func} failed ({:?}) with a NULL MoqResult.message",
        result.code
    );
    // SAFETY: issued by the library, NUL-terminated, ours until moq_free_str.
    let message = unsafe { CStr::from_ptr(result.message) }.to_string_lossy().into_owned();
    assert!(
        result.code != MoqResultCode::MOQ_ERROR_PANIC,
        "FINDING: {func} caught a panic: {message}"
    );
    assert!(
        !message.is_empty(),
        "INVARIANT: {func} failed ({:?}) with an empty message",
        result.code
    );
    let (code, last) = check_fresh_error(func);
    assert_eq!(
        code, result.code,
        "INVARIANT: {func}: moq_last_error_code() differs from MoqResult.code ({message})"
    );
    assert_eq!(
        last, message,
        "INVARIANT: {func}: moq_last_error() differs from MoqResult.message"
    );
    assert!(
        result.message != moq_last_error(),
        "INVARIANT: {func}: MoqResult.message is the last-error buffer"
    );
    if expect == Expect::BadHandle {
        assert_eq!(
            result.code,
            MoqResultCode::MOQ_ERROR_INVALID_HANDLE,
            "INVARIANT: {func} with an invalid handle: {message}"
        );
    }
    moq_free_str(result.message);
    result.code
}

/// Checks a pointer-returning call: NULL means failure with a fresh last error.
#[track_caller]
pub fn check_ptr<T>(func: &str, ptr: *const T, expect: Expect) -> Option<MoqResultCode> {
    if ptr.is_null() {
        let (code, text) = check_fresh_error(func);
        if expect == Expect::BadHandle {
            assert_eq!(
                code,
                MoqResultCode::MOQ_ERROR_INVALID_HANDLE,
                "INVARIANT: {func} with an invalid handle: {text}"
            );
        }
        Some(code)
    } else {
        assert!(
            expect != Expect::BadHandle,
            "INVARIANT: {func} returned a value for an invalid handle"
        );
        None
    }
}

/// Checks a bool query: false may or may not set an error (false is also a plain answer).
#[track_caller]
pub fn check_bool(func: &str, value: bool, expect: Expect) {
    if value {
        assert!(
            expect != Expect::BadHandle,
            "INVARIANT: {func} returned true for an invalid handle"
        );
        return;
    }
    // A false answer is checked like a void call.
    check_void(func, expect);
}

/// Checks a void call (destroys): an invalid handle is recorded in the last error.
#[track_caller]
pub fn check_void(func: &str, expect: Expect) {
    if expect == Expect::BadHandle {
        let (code, text) = check_fresh_error(func);
        assert_eq!(
            code,
            MoqResultCode::MOQ_ERROR_INVALID_HANDLE,
            "INVARIANT: {func} with an invalid handle: {text}"
        );
    } else if !still_primed() {
        check_fresh_error(func);
    }
}
