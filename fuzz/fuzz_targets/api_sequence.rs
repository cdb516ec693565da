//! The whole C API, driven as a hostile C program would drive it, against an embedded relay
//! started once per process (`moq_relay_start("127.0.0.1:0")`, clients pinned to its
//! fingerprint).
//!
//! The input is decoded into up to `MAX_STEPS` actions. Each action is one C call with
//! fuzzer-chosen arguments:
//! - handles: a live one of the right type, a destroyed one, NULL, a live one of another type,
//!   or a raw pointer-shaped number (all looked up by the library, never dereferenced);
//! - strings: names that let publishers and subscribers meet, random bytes (invalid UTF-8,
//!   control characters, embedded NULs), empty, and names around the length caps — always
//!   NUL-terminated buffers we own, in heap blocks of exactly their size (ASan sees any over-read);
//! - buffers and lengths within what we own (plus the documented NULL-with-length cases);
//! - versioned structs (`MoqClientConfig`, `MoqPublisherOptions`, `MoqSubscribeOptions`,
//!   `MoqStats`) with fuzzed `struct_size` and fields, in blocks of exactly `struct_size` bytes.
//!
//! A `Defer` action queues the next action for a callback instead: every callback (connection,
//! objects, status, catalogs, announcements, logs) performs one queued action from inside the
//! callback thread, so re-entrant calls — destroying one's own subscriber or client, blocking
//! connects and subscribes, shutdown — are covered.
//!
//! Checked after every call (see `common`): no MOQ_ERROR_PANIC (the libFuzzer panic hook also
//! aborts on any panic, caught or not), failures carry a fresh non-empty `moq_last_error()` with a
//! matching `moq_last_error_code()` and an equal, caller-owned `MoqResult.message` (freed with
//! `moq_free_str`), invalid handles give INVALID_HANDLE, and successes have no message.
//! Checked in callbacks: `user_data` is one we registered, of the right kind, whose object has not
//! been destroyed/unsubscribed/replaced (the "no callback after destroy returns" contract), no
//! callback after a terminal status, arguments are well-formed (every pointer readable, strings
//! UTF-8-safe to read, statuses and levels in range, `track_name` "" for the earlier announce API),
//! and no log line, error message or `moq_client_last_error` text contains the password or token
//! of a URL we connected with. Poll events are validated the same way.
//!
//! Work per input is bounded: at most `MAX_STEPS` actions and a time budget, clients with
//! 200–1000 ms timeouts, caps on objects created; at the end every handle the input created is
//! destroyed so nothing accumulates across iterations.
//!
//! Layout (`api_sequence/`):
//! - `action.rs`: the `Action`s and their decoder (the input format of the committed corpus);
//! - `inputs.rs`: decoding argument values (handle selectors, strings, payloads, URLs, options);
//! - `args.rs`: building C memory from them, including `versioned!`, the one builder for every
//!   struct with a `struct_size`;
//! - `exec.rs`: the call-and-check helpers every C call goes through (`call`, `query`, `create`,
//!   `destroy`) and the dispatch of actions;
//! - `actions_client.rs`, `actions_pubsub.rs`, `actions_library.rs`: the actions that are more
//!   than one call, and the per-input teardown;
//! - `callbacks.rs`: the C callbacks, their checks, the deferred-action queue, poll events;
//! - `world.rs`: the relay, what the input created, URL secrets;
//! - `slots.rs`: callback registrations (`user_data` values).
// Two entry points over one `run`: libFuzzer's under cargo-fuzz (`--cfg fuzzing`,
// scripts/fuzz.sh), and the smoke runner under `cargo test` (common/smoke.rs).
#![cfg_attr(fuzzing, no_main)]

#[path = "common/mod.rs"]
mod common;

#[path = "api_sequence/action.rs"]
mod action;
#[path = "api_sequence/actions_client.rs"]
mod actions_client;
#[path = "api_sequence/actions_library.rs"]
mod actions_library;
#[path = "api_sequence/actions_pubsub.rs"]
mod actions_pubsub;
#[path = "api_sequence/args.rs"]
mod args;
#[path = "api_sequence/callbacks.rs"]
mod callbacks;
#[path = "api_sequence/exec.rs"]
mod exec;
#[path = "api_sequence/inputs.rs"]
mod inputs;
#[path = "api_sequence/slots.rs"]
mod slots;
#[path = "api_sequence/world.rs"]
mod world;

use common::Input;
use std::time::{Duration, Instant};

const MAX_STEPS: usize = 48;
/// Stop starting new actions after this long (each blocking call is bounded by ~1–3 s more).
const BUDGET: Duration = Duration::from_secs(8);

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| run(data));

#[cfg(not(fuzzing))]
#[path = "common/smoke.rs"]
mod smoke;

#[cfg(not(fuzzing))]
fn main() {
    smoke::main("api_sequence", run);
}

fn run(data: &[u8]) {
    world::relay();
    world::next_iteration();
    let mut input = Input::new(data);
    let clients_first = input.bool();
    let start = Instant::now();
    let mut steps = 0;
    while !input.is_empty() && steps < MAX_STEPS && start.elapsed() < BUDGET {
        let next = action::action(&mut input, 0);
        exec::exec(&next, false);
        steps += 1;
    }
    actions_library::cleanup(clients_first);
}
