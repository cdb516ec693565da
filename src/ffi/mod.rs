//! The C edge: every `extern "C"` function, each going through [`boundary::enter`].

pub mod abi;
pub mod announce;
pub(crate) mod boundary;
pub mod catalog;
pub mod client;
pub mod library;
pub mod log;
pub mod poll;
pub mod publisher;
pub mod relay;
pub mod stats;
pub mod subscriber;
pub mod types;

pub use announce::*;
pub use catalog::*;
pub use client::*;
pub use library::*;
pub use log::*;
pub use poll::*;
pub use publisher::*;
pub use relay::*;
pub use stats::*;
pub use subscriber::*;
pub use types::*;
