//! The handle registry: what C holds instead of pointers.
//!
//! A handle is an opaque number shaped like a pointer, `(id << 4) | type tag`, where ids come from
//! one process-wide counter and are never reused. The library never dereferences it; it looks
//! the number up in the registry of the expected type. NULL, a destroyed handle, a double
//! destroy, a handle of another type and a made-up value all miss the lookup and yield
//! [`ErrorKind::InvalidHandle`] instead of undefined behaviour.

use crate::error::{Error, ErrorKind, Result};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Hashes a handle value with one multiplication. Keys are ids from a counter, so they need
/// mixing, not protection against chosen collisions: a caller can only look up values, never
/// insert them. SipHash (the default) cost about two thirds of a publish call's overhead.
#[derive(Default)]
struct HandleHasher(u64);

impl Hasher for HandleHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed; this keeps the trait total without being used.
        for &byte in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        // Fibonacci hashing: spreads consecutive ids over both the low (bucket) and the high
        // (control byte) bits.
        self.0 = value.rotate_right(4).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type HandleMap<T> = HashMap<u64, Arc<T>, BuildHasherDefault<HandleHasher>>;

/// A typed table of live objects, keyed by handle value.
pub struct Registry<T> {
    type_name: &'static str,
    tag: u64,
    objects: RwLock<Option<HandleMap<T>>>,
}

impl<T> Registry<T> {
    /// An empty registry for objects called `type_name` in errors, with a distinct `tag` (1..=15).
    pub const fn new(type_name: &'static str, tag: u64) -> Self {
        Self {
            type_name,
            tag,
            objects: RwLock::new(None),
        }
    }

    /// Stores `object` and returns its new, never-before-issued handle value.
    pub fn insert(&self, object: Arc<T>) -> u64 {
        let handle = self.reserve();
        self.insert_at(handle, object);
        handle
    }

    /// A fresh handle for an object that is still being built (it may need its own handle);
    /// it becomes live with [`Registry::insert_at`]. Until then lookups miss it.
    pub fn reserve(&self) -> u64 {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        (id << 4) | self.tag
    }

    /// Makes a handle from [`Registry::reserve`] live.
    pub fn insert_at(&self, handle: u64, object: Arc<T>) {
        let mut objects = self.objects.write().unwrap_or_else(PoisonError::into_inner);
        objects.get_or_insert_with(HandleMap::default).insert(handle, object);
    }

    /// The live object behind `handle`.
    pub fn get(&self, handle: u64) -> Result<Arc<T>> {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects
            .as_ref()
            .and_then(|map| map.get(&handle).cloned())
            .ok_or_else(|| self.invalid(handle))
    }

    /// Removes and returns the object behind `handle`; a second removal fails.
    pub fn remove(&self, handle: u64) -> Result<Arc<T>> {
        let mut objects = self.objects.write().unwrap_or_else(PoisonError::into_inner);
        objects
            .as_mut()
            .and_then(|map| map.remove(&handle))
            .ok_or_else(|| self.invalid(handle))
    }

    /// Removes and returns every object (used when the library shuts down).
    pub fn drain(&self) -> Vec<Arc<T>> {
        let mut objects = self.objects.write().unwrap_or_else(PoisonError::into_inner);
        objects
            .take()
            .map(|map| map.into_values().collect())
            .unwrap_or_default()
    }

    /// How many objects are live.
    pub fn len(&self) -> usize {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        objects.as_ref().map_or(0, HashMap::len)
    }

    /// Whether no object is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn invalid(&self, handle: u64) -> Error {
        let why = if handle == 0 {
            "is NULL".to_string()
        } else if handle & 0xf != self.tag {
            format!(
                "0x{handle:x} is not a {} handle (wrong type or never issued)",
                self.type_name
            )
        } else {
            format!(
                "0x{handle:x} is not a live {} (already destroyed or never issued)",
                self.type_name
            )
        };
        Error::new(ErrorKind::InvalidHandle, format!("{} handle {why}", self.type_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_typed_and_never_reused() {
        let numbers: Registry<u32> = Registry::new("Number", 1);
        let words: Registry<&str> = Registry::new("Word", 2);
        let one = numbers.insert(Arc::new(1));
        let word = words.insert(Arc::new("w"));
        assert_eq!(*numbers.get(one).unwrap(), 1);
        assert_eq!(numbers.get(word).unwrap_err().kind(), ErrorKind::InvalidHandle);
        assert_eq!(words.get(one).unwrap_err().kind(), ErrorKind::InvalidHandle);
        assert_eq!(numbers.get(0).unwrap_err().kind(), ErrorKind::InvalidHandle);
        assert_eq!(numbers.get(0xdead_beef).unwrap_err().kind(), ErrorKind::InvalidHandle);
        numbers.remove(one).unwrap();
        assert!(numbers.remove(one).unwrap_err().message().contains("already destroyed"));
        let two = numbers.insert(Arc::new(2));
        assert_ne!(one, two, "ids are never reused");
        assert_eq!(numbers.len(), 1);
        assert_eq!(numbers.drain().len(), 1);
        assert!(numbers.is_empty());
    }

    #[test]
    fn many_handles_stay_reachable_and_spread_over_buckets() {
        let numbers: Registry<usize> = Registry::new("Number", 3);
        let handles: Vec<u64> = (0..10_000).map(|index| numbers.insert(Arc::new(index))).collect();
        for (index, handle) in handles.iter().enumerate() {
            assert_eq!(*numbers.get(*handle).unwrap(), index);
        }
        for handle in handles.iter().step_by(2) {
            numbers.remove(*handle).unwrap();
        }
        assert_eq!(numbers.len(), 5_000);
        for (index, handle) in handles.iter().enumerate() {
            assert_eq!(numbers.get(*handle).is_ok(), index % 2 == 1, "handle #{index}");
        }
        // Consecutive handles must not pile into a few buckets (the low bits pick the bucket).
        let buckets: std::collections::HashSet<u64> = (1..=4096u64)
            .map(|id| {
                let mut hasher = HandleHasher::default();
                hasher.write_u64(id << 4 | 3);
                hasher.finish() & 4095
            })
            .collect();
        assert!(buckets.len() > 4000, "only {} of 4096 buckets used", buckets.len());
    }
}
