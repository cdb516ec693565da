//! Object payloads that prove their own delivery: a sequence number, the send time and a
//! checksum of every byte.
//!
//! Layout (little endian): `seq u64 | sent_ns u64 | check u64 | filler ... | seq u64`. The
//! filler is fixed per size, so stamping an object writes 32 bytes; verifying it reads all of
//! them. `check` folds the filler with the sequence number and the send time, and the trailing
//! copy of `seq` catches truncation or a mix-up of two objects.

use super::clock;

/// Bytes before the filler.
pub const HEADER: usize = 24;
/// The smallest payload that holds the header and the trailing sequence number.
pub const MIN_LEN: usize = HEADER + 8;
/// Set in `seq` for warm-up objects, which prove the path is live and are not counted.
pub const WARM_UP: u64 = 1 << 63;

/// A payload of one size, re-stamped for every object.
pub struct Template {
    bytes: Vec<u8>,
    filler_fold: u64,
}

/// What a verified payload says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u64,
    pub sent_ns: u64,
}

impl Template {
    /// A payload of `len` bytes (at least [`MIN_LEN`]) with pseudo-random filler.
    pub fn new(len: usize) -> Self {
        assert!(len >= MIN_LEN, "payloads carry at least {MIN_LEN} bytes");
        let mut bytes = vec![0u8; len];
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ len as u64;
        for byte in &mut bytes[HEADER..len - 8] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        let filler_fold = fold(&bytes[HEADER..len - 8]);
        Self { bytes, filler_fold }
    }

    /// Stamps the payload with `seq` and the current time and returns it.
    pub fn stamp(&mut self, seq: u64) -> &[u8] {
        let sent_ns = clock::now_ns();
        let len = self.bytes.len();
        self.bytes[0..8].copy_from_slice(&seq.to_le_bytes());
        self.bytes[8..16].copy_from_slice(&sent_ns.to_le_bytes());
        self.bytes[16..24].copy_from_slice(&check(self.filler_fold, seq, sent_ns).to_le_bytes());
        self.bytes[len - 8..].copy_from_slice(&seq.to_le_bytes());
        &self.bytes
    }

    /// The payload length.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the payload is empty (never: see [`MIN_LEN`]).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Checks every byte of a received payload and returns its stamp.
pub fn verify(bytes: &[u8]) -> Result<Stamp, &'static str> {
    if bytes.len() < MIN_LEN {
        return Err("too short");
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    let len = bytes.len();
    let (seq, sent_ns, stored) = (word(0), word(8), word(16));
    if word(len - 8) != seq {
        return Err("trailing sequence number differs");
    }
    if check(fold(&bytes[HEADER..len - 8]), seq, sent_ns) != stored {
        return Err("checksum mismatch");
    }
    Ok(Stamp { seq, sent_ns })
}

fn check(filler_fold: u64, seq: u64, sent_ns: u64) -> u64 {
    filler_fold ^ seq.rotate_left(17) ^ sent_ns.rotate_left(41) ^ 0x5bd1_e995
}

/// A position-sensitive fold of `bytes`, four independent lanes so it runs near memory speed.
fn fold(bytes: &[u8]) -> u64 {
    let mut lanes = [0u64; 4];
    let mut chunks = bytes.chunks_exact(32);
    for chunk in &mut chunks {
        for (lane, word) in lanes.iter_mut().zip(chunk.chunks_exact(8)) {
            let value = u64::from_le_bytes(word.try_into().unwrap_or_default());
            *lane = lane.rotate_left(1) ^ value;
        }
    }
    let mut tail = 0u64;
    for (index, byte) in chunks.remainder().iter().enumerate() {
        tail ^= u64::from(*byte) << ((index % 8) * 8);
        tail = tail.rotate_left(3);
    }
    lanes[0] ^ lanes[1].rotate_left(16) ^ lanes[2].rotate_left(32) ^ lanes[3].rotate_left(48) ^ tail
}
