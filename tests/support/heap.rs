//! The live Rust heap of a test or benchmark process: a counting global allocator. Included with
//! `#[path]` by the programs that compare memory over time (`tests/chaos.rs`, `benches/soak.rs`),
//! never by the library.
//!
//! RSS also counts memory the allocator keeps after it was freed (a stopped relay's cache,
//! fragmented arenas), the live heap only what is still held: a leak shows in both, allocator
//! retention only in RSS.

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
