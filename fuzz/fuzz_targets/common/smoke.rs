//! The fuzz smoke: each fuzz target built as a test of the main package (`cargo test`, the suite's
//! one build), with the same invariants as under libFuzzer.
//!
//! 1. Replays every committed input: `fuzz/regressions/<target>/*` (fixed findings) and
//!    `fuzz/corpus/<target>/*` (the seeds and what earlier campaigns kept).
//! 2. Mutates them for a bounded time: bit flips, byte changes, inserted, deleted and duplicated
//!    runs, splices of two inputs, and the target's dictionary tokens (`fuzz/dict/`), from a
//!    seeded generator (the seed is printed; `MOQ_FUZZ_SEED` replays one run).
//!
//! Any panic, on any thread, fails the run: like libFuzzer's abort-on-panic hook, a panic is a
//! bug even where the library's boundary would catch it. The failing input is written to
//! `$CARGO_TARGET_TMPDIR/fuzz-smoke/<target>/` for `cargo fuzz run <target> <file>`.
//!
//! This is a smoke, not the campaign: it has no coverage feedback and no AddressSanitizer.
//! `scripts/fuzz.sh` runs the coverage-guided libFuzzer campaign (nightly, ASan).
//!
//! `MOQ_FUZZ_SMOKE_SECS` sets the mutation time per target (default: 4 s for the parsers, 20 s
//! for `api_sequence`, whose inputs drive real sessions against a relay).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Set by the panic hook: a panic happened somewhere in the process.
static PANICKED: AtomicBool = AtomicBool::new(false);
static PANIC_MESSAGE: Mutex<String> = Mutex::new(String::new());

/// Inputs larger than this are not produced by mutation (libFuzzer's `-max_len` in fuzz.sh is
/// 1-16 KiB depending on the target).
const MAX_LEN: usize = 8192;

pub fn main(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let regressions = files(&root.join("regressions").join(target));
    let corpus = files(&root.join("corpus").join(target));
    let dictionary = dictionary(&root.join("dict"), target);
    let secs = std::env::var("MOQ_FUZZ_SMOKE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if target == "api_sequence" { 20 } else { 4 });
    let seed = std::env::var("MOQ_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    std::panic::set_hook(Box::new(|info| {
        PANICKED.store(true, Ordering::SeqCst);
        let mut message = PANIC_MESSAGE.lock().unwrap_or_else(|e| e.into_inner());
        if message.is_empty() {
            *message = info.to_string();
        }
        eprintln!("{info}");
    }));
    let start = Instant::now();
    let inputs: Vec<Vec<u8>> = regressions
        .iter()
        .chain(&corpus)
        .map(|path| std::fs::read(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display())))
        .collect();
    assert!(
        !corpus.is_empty(),
        "fuzz smoke {target}: no corpus in fuzz/corpus/{target}"
    );
    for (input, path) in inputs.iter().zip(regressions.iter().chain(&corpus)) {
        check(target, run, input, &format!("replaying {}", path.display()), seed);
    }
    let replayed = Instant::now();
    let mut rng = Rng(seed);
    let mut mutated = 0u64;
    let budget = Duration::from_secs(secs);
    while replayed.elapsed() < budget {
        let mut input = inputs[rng.below(inputs.len())].clone();
        for _ in 0..=rng.below(4) {
            mutate(&mut input, &inputs, &dictionary, &mut rng);
        }
        check(target, run, &input, "a mutated input", seed);
        mutated += 1;
    }
    println!(
        "fuzz smoke {target}: {} regression + {} corpus inputs replayed in {:.1} s, {mutated} mutated inputs in {:.1} s (seed {seed}): no panic, every invariant held",
        regressions.len(),
        corpus.len(),
        (replayed - start).as_secs_f64(),
        replayed.elapsed().as_secs_f64(),
    );
}

/// Runs one input; on a panic writes it out and exits with a failure.
fn check(target: &str, run: fn(&[u8]), input: &[u8], what: &str, seed: u64) {
    let outcome = catch_unwind(AssertUnwindSafe(|| run(input)));
    if outcome.is_ok() && !PANICKED.load(Ordering::SeqCst) {
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("fuzz-smoke")
        .join(target);
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join(format!("crash-{seed}-{}", input.len()));
    let _ = std::fs::write(&file, input);
    let message = PANIC_MESSAGE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    eprintln!(
        "FAILED: fuzz smoke {target}: {what} panicked: {message}\n  input ({} bytes) written to {}\n  replay: MOQ_FUZZ_SEED={seed}, or cargo +nightly fuzz run {target} {}",
        input.len(),
        file.display(),
        file.display()
    );
    std::process::exit(1);
}

/// The files of `dir`, sorted (none if it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The tokens of the target's libFuzzer dictionary (`fuzz/dict/<name>.dict`), if it has one.
fn dictionary(dir: &Path, target: &str) -> Vec<Vec<u8>> {
    let name = match target {
        "catalog_parse" => "catalog",
        "url_parse" => "url",
        "versions" => "versions",
        _ => return Vec::new(),
    };
    let text = std::fs::read_to_string(dir.join(format!("{name}.dict"))).unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| Some(unescape(&line[line.find('"')? + 1..line.rfind('"')?])))
        .filter(|token| !token.is_empty())
        .collect()
}

/// A dictionary value: `\\`, `\"` and `\xNN` escapes.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'\\', Some(b'x')) if i + 4 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 4;
                    }
                    Err(_) => {
                        out.push(b'\\');
                        i += 1;
                    }
                }
            }
            (b'\\', Some(&next)) => {
                out.push(next);
                i += 2;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// One random edit of `input`.
fn mutate(input: &mut Vec<u8>, inputs: &[Vec<u8>], dictionary: &[Vec<u8>], rng: &mut Rng) {
    let len = input.len();
    match rng.below(8) {
        0 if len > 0 => {
            let at = rng.below(len);
            input[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            input[at] = [0, 0xff, 0x7f, 0x80, b'"', b'{', b'/', b','][rng.below(8)] ^ (rng.next() as u8 & 1);
        }
        2 if len > 0 => {
            let at = rng.below(len);
            let count = 1 + rng.below((len - at).min(16));
            input.drain(at..at + count);
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let count = 1 + rng.below((len - at).min(32));
            let run = input[at..at + count].to_vec();
            let to = rng.below(len + 1);
            input.splice(to..to, run);
        }
        4 => {
            let other = &inputs[rng.below(inputs.len())];
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        5 if !dictionary.is_empty() => {
            let token = &dictionary[rng.below(dictionary.len())];
            let at = rng.below(len + 1);
            input.splice(at..at, token.iter().copied());
        }
        6 => {
            let at = rng.below(len + 1);
            let count = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..count).map(|_| rng.next() as u8).collect();
            input.splice(at..at, bytes);
        }
        _ if len > 0 => {
            // An interesting number over 1, 2, 4 or 8 bytes (sizes, counts, lengths).
            let width = [1usize, 2, 4, 8][rng.below(4)].min(len);
            let at = rng.below(len - width + 1);
            let value: u64 = [0, 1, u64::MAX, 0x7fff_ffff, 0x8000_0000, 255, 256, 1024][rng.below(8)];
            input[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
        }
        _ => input.push(rng.next() as u8),
    }
    input.truncate(MAX_LEN);
}

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
