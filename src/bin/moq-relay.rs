//! The standalone relay the interop, cluster and fault tests run as a separate process: moq-relay
//! 0.17.10's own `main`, built from the `moq-relay` library this crate already compiles (same
//! features as the embedded relay: noq QUIC, WebSocket), so the tests need no
//! `cargo install moq-relay`. It takes moq-relay's command line and configuration unchanged
//! (`moq-relay --help`).
//!
//! Not part of the C library: `cargo build --lib` (CMake, the package) never builds it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    moq_tokio::crypto::install_default().map_err(|err| anyhow::anyhow!("installing the crypto provider: {err:?}"))?;
    moq_relay::Relay::load(moq_relay::Config::load()?).await?.run().await
}
