//! moq-ffi: a safe C ABI for Media over QUIC.
//!
//! The crate has two halves. The safe core ([`core`], [`dispatch`], [`runtime`], [`handle`])
//! is plain Rust built on moq-net and moq-tokio. The C edge ([`ffi`]) holds every exported
//! function; each runs through one boundary helper that catches panics, validates arguments,
//! looks up handles in typed registries and maps errors to `MoqResult` plus a thread-local last
//! error. See `include/moq_ffi.h` for the C contract.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod core;
pub mod dispatch;
pub mod error;
pub mod ffi;
pub mod handle;
pub mod inject;
pub mod runtime;

/// Whether this build is instrumented for line coverage (`scripts/coverage-wrap.sh`, the test
/// suite's `RUSTC_WRAPPER`, with `MOQ_COVERAGE_BUILD=1`). Naming the wrapper's switches here makes
/// cargo track them, so switching between an instrumented (or warnings-denied) build and a plain
/// one always rebuilds this crate instead of reusing the other kind.
#[doc(hidden)]
pub const COVERAGE_BUILD: bool = option_env!("MOQ_COVERAGE_BUILD").is_some();
const _: Option<&str> = option_env!("MOQ_DENY_WARNINGS");
