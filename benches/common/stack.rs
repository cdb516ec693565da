//! What a benchmark drives: a stack (the C API, or raw moq-net) that opens a publisher and a
//! subscriber on one track through its relay. Both stacks implement the same two traits, so
//! every case runs the same code against each.

use super::payload::{Template, WARM_UP};
use super::receiver::{wait_until, Receiver};
use std::sync::Arc;
use std::time::Duration;

/// How objects travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Reliable, one object per group on its own QUIC stream.
    Stream,
    /// One QUIC datagram per object, lossy.
    Datagram,
}

/// A publisher → relay → subscriber path set up by one stack.
pub trait Stack {
    /// `capi` or `raw`.
    fn label(&self) -> &'static str;
    /// The negotiated protocol versions of the publishing and the subscribing session.
    fn protocol(&self) -> String;
    /// Creates a publisher of `track` and a subscriber that hands every object to `receiver`.
    fn open(&self, track: &str, mode: Mode, receiver: &Arc<Receiver>) -> Result<Box<dyn Link>, String>;
}

/// One open path; dropping it destroys the subscriber, then the publisher.
pub trait Link {
    /// Publishes one object (copied before it returns).
    fn publish(&mut self, payload: &[u8]) -> Result<(), String>;
}

/// How long a path may take to carry its first object.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one warm-up object may take before the next is sent.
const WARM_UP_RETRY: Duration = Duration::from_millis(100);

/// Proves the path is live end to end before a measured run: publishes a warm-up object and
/// waits for it (another every 100 ms until one arrives), then publishes one more and waits
/// for it, so nothing of the warm-up is still in flight when measuring starts.
pub fn warm_up(link: &mut dyn Link, receiver: &Receiver, template: &mut Template) -> Result<(), String> {
    let mut seq = WARM_UP;
    let live = wait_until(WARM_UP_TIMEOUT, || {
        seq += 1;
        let _ = link.publish(template.stamp(seq));
        wait_until(WARM_UP_RETRY, || receiver.is_warm())
    });
    if !live {
        return Err(format!(
            "no warm-up object arrived within {} s",
            WARM_UP_TIMEOUT.as_secs()
        ));
    }
    seq += 1;
    link.publish(template.stamp(seq))?;
    match wait_until(WARM_UP_TIMEOUT, || receiver.last_warm_up() >= seq) {
        true => Ok(()),
        false => Err("the last warm-up object did not arrive".to_string()),
    }
}
