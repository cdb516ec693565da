//! The safe core: plain Rust, no raw pointers, testable without C.

pub mod announce;
pub mod capabilities;
pub mod catalog;
pub mod client;
pub mod config;
pub mod connection;
pub mod dial;
pub mod events;
pub mod log;
pub mod poll;
pub mod publish;
pub mod relay;
pub mod stats;
pub mod subscribe;
