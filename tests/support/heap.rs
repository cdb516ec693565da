//! The memory of a test or benchmark process: its live Rust heap (a counting global allocator)
//! and its resident set. Included with `#[path]` by the programs that compare memory over time
//! (`tests/chaos.rs`, `benches/soak.rs`), never by the library.
//!
//! RSS also counts memory the allocator keeps after it was freed (the pages of an earlier peak,
//! a stopped relay's cache), the live heap only what is still held: a leak shows in both,
//! allocator retention only in RSS. [`resident_bytes_trimmed`] first hands the allocator's free
//! pages back to the system, so what it reads is what the process holds (live data and the
//! fragmentation around it), without the free pages kept from the highest peak so far.

use std::sync::atomic::{AtomicI64, Ordering};

/// The system allocator, counting the bytes the process's Rust code holds allocated (C
/// allocations, aws-lc's, are not counted).
struct CountingAllocator;

static HEAP_BYTES: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the counter
// is only arithmetic on the sizes.
unsafe impl std::alloc::GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { std::alloc::System.alloc(layout) };
        if !ptr.is_null() {
            HEAP_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            HEAP_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { std::alloc::System.dealloc(ptr, layout) };
        HEAP_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let new = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            HEAP_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Bytes the process's Rust code holds allocated now.
pub fn live_bytes() -> i64 {
    HEAP_BYTES.load(Ordering::Relaxed)
}

/// The process's resident set (VmRSS) in bytes, 0 where /proc is not readable.
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The resident set after glibc's allocator returned the free pages of every arena to the
/// system (`malloc_trim(0)`, which takes each arena's lock in turn: a measuring aid for tests,
/// never called by the library). Elsewhere than glibc, the plain resident set. Not used by the
/// soak, which reports what the host sees and leaves the allocator undisturbed.
#[allow(dead_code)]
pub fn resident_bytes_trimmed() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::os::raw::c_int;
        }
        // SAFETY: glibc's malloc_trim takes a byte count and only releases free memory.
        unsafe { malloc_trim(0) };
    }
    resident_bytes()
}
