//! Callback registrations: `user_data` values that name a slot in a static table, never a real
//! pointer and never dereferenced. A slot remembers the registration's generation, its kind, and
//! whether its object is gone (`DEAD`: destroyed, unsubscribed or replaced) or its subscription
//! reached a terminal status (`TERMINAL`); `check_slot` judges every callback against it.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};

const SLOTS: usize = 1024;
const MAGIC: usize = 0x5eed_0000_0000_0000;
pub const DEAD: u64 = 1;
pub const TERMINAL: u64 = 2;
static SLOT: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
static NEXT_GEN: AtomicU32 = AtomicU32::new(1);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SlotKind {
    Connection = 1,
    Subscription = 2,
    Announce = 3,
    Log = 4,
}

pub fn new_slot(kind: SlotKind) -> usize {
    let gen = NEXT_GEN.fetch_add(1, SeqCst);
    SLOT[gen as usize % SLOTS].store((u64::from(gen) << 16) | ((kind as u64) << 8), SeqCst);
    MAGIC | gen as usize
}

pub fn mark(ud: usize, flag: u64) {
    let gen = ud as u32;
    let slot = &SLOT[gen as usize % SLOTS];
    let _ = slot.fetch_update(SeqCst, SeqCst, |state| {
        (state >> 16 == u64::from(gen)).then_some(state | flag)
    });
}

pub fn kill(ud: Option<usize>) {
    if let Some(ud) = ud {
        mark(ud, DEAD);
    }
}

pub fn kill_all<'a>(uds: impl IntoIterator<Item = &'a usize>) {
    uds.into_iter().for_each(|ud| mark(*ud, DEAD));
}

/// Checks a callback's `user_data` against its registration.
pub fn check_slot(ud: *mut c_void, kind: SlotKind, what: &str) -> usize {
    let ud = ud as usize;
    assert_eq!(
        ud & !0xffff_ffff,
        MAGIC,
        "INVARIANT: {what} called with user_data {ud:#x} that was never registered"
    );
    let gen = ud as u32;
    let state = SLOT[gen as usize % SLOTS].load(SeqCst);
    assert_eq!(
        state >> 16,
        u64::from(gen),
        "FINDING: {what} called for registration {gen}, whose object the harness destroyed in an earlier iteration"
    );
    assert_eq!(
        (state >> 8) & 0xff,
        kind as u64,
        "INVARIANT: {what} called with the user_data of another kind of callback"
    );
    assert!(
        state & DEAD == 0,
        "FINDING: {what} ran after its destroy/unsubscribe/replacement returned (registration {gen})"
    );
    assert!(
        state & TERMINAL == 0,
        "FINDING: {what} ran after the subscription's terminal status (registration {gen})"
    );
    ud
}
