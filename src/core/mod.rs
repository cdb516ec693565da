//! The safe core: plain Rust, no raw pointers, testable without C.

pub mod client;
pub mod config;
pub(crate) mod dial;
pub mod log;
pub mod publish;
pub mod relay;
pub mod stats;
pub mod subscribe;
