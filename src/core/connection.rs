//! The client's connection state machine, without I/O: which state a connect call, a dial's
//! outcome, a session lost or restored, a disconnect and a destroy lead to.
//!
//! Every background outcome (a dial, the connection monitor, the reconnect loop) carries the
//! epoch it started under; connect and disconnect start a new one, so an outcome from before
//! (a connect cancelled by `moq_disconnect`, a session replaced by a reconnect) changes
//! nothing. `Client` (`client.rs`) keeps one [`Machine`] under its lock and does what each
//! transition implies: report the state, keep or drop the session, start the reconnect loop.
//!
//! ```text
//!   DISCONNECTED / FAILED --connect--> CONNECTING --established--> CONNECTED
//!                                      CONNECTING --connect_failed--> FAILED
//!   CONNECTED --lost--> RECONNECTING (reconnect on, not destroyed) or DISCONNECTED
//!   RECONNECTING --restored--> CONNECTED      RECONNECTING --give_up--> DISCONNECTED
//!   any --disconnect--> DISCONNECTED
//! ```

use crate::error::{Error, ErrorKind, Result};

/// Connection state, reported through the connection callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not connected (initially, after `disconnect`, or after the relay went away).
    Disconnected,
    /// A connect is in progress.
    Connecting,
    /// Connected to the relay.
    Connected,
    /// The last connect failed.
    Failed,
    /// The session was lost and the client is redialing.
    Reconnecting,
}

/// A client's connection state, the epoch of its current connect, and whether it is destroyed.
#[derive(Debug)]
pub(crate) struct Machine {
    state: ConnectionState,
    epoch: u64,
    destroyed: bool,
}

impl Default for Machine {
    fn default() -> Self {
        Self {
            state: ConnectionState::Disconnected,
            epoch: 0,
            destroyed: false,
        }
    }
}

impl Machine {
    /// The current state.
    pub fn state(&self) -> ConnectionState {
        self.state
    }

    /// Whether the client is destroyed (no connect is accepted any more).
    pub fn destroyed(&self) -> bool {
        self.destroyed
    }

    /// A connect call: CONNECTING under a new epoch (returned), from DISCONNECTED or FAILED only.
    pub fn connect(&mut self) -> Result<u64> {
        if self.destroyed {
            return Err(Error::new(ErrorKind::Closed, "the client is being destroyed"));
        }
        match self.state {
            ConnectionState::Connecting => Err(Error::new(
                ErrorKind::InvalidState,
                "a connect is already in progress on this client",
            )),
            ConnectionState::Connected | ConnectionState::Reconnecting => Err(Error::new(
                ErrorKind::InvalidState,
                "the client is already connected; call moq_disconnect first",
            )),
            ConnectionState::Disconnected | ConnectionState::Failed => {
                self.epoch += 1;
                self.state = ConnectionState::Connecting;
                Ok(self.epoch)
            }
        }
    }

    /// The dial of connect `epoch` produced a session: CONNECTED, if that connect is still the
    /// current one (else the session is not wanted).
    pub fn established(&mut self, epoch: u64) -> bool {
        self.advance(epoch, ConnectionState::Connecting, ConnectionState::Connected)
    }

    /// The dial of connect `epoch` failed: FAILED, if that connect is still the current one.
    pub fn connect_failed(&mut self, epoch: u64) -> bool {
        self.advance(epoch, ConnectionState::Connecting, ConnectionState::Failed)
    }

    /// The session of `epoch` ended on its own: RECONNECTING when the client `reconnect`s and is
    /// not destroyed, else DISCONNECTED. `None` (nothing changes) for a session no longer current.
    pub fn lost(&mut self, epoch: u64, reconnect: bool) -> Option<ConnectionState> {
        let next = match reconnect && !self.destroyed {
            true => ConnectionState::Reconnecting,
            false => ConnectionState::Disconnected,
        };
        self.advance(epoch, ConnectionState::Connected, next).then_some(next)
    }

    /// Whether the reconnect loop of `epoch` is still wanted.
    pub fn redialing(&self, epoch: u64) -> bool {
        self.is(epoch, ConnectionState::Reconnecting)
    }

    /// The reconnect loop of `epoch` has a session again: CONNECTED, if it is still wanted.
    pub fn restored(&mut self, epoch: u64) -> bool {
        self.advance(epoch, ConnectionState::Reconnecting, ConnectionState::Connected)
    }

    /// The reconnect loop of `epoch` stopped: DISCONNECTED, if it was still wanted.
    pub fn give_up(&mut self, epoch: u64) -> bool {
        self.advance(epoch, ConnectionState::Reconnecting, ConnectionState::Disconnected)
    }

    /// A disconnect: DISCONNECTED under a new epoch, so every outcome of what ran before is
    /// stale. Returns the state it left.
    pub fn disconnect(&mut self) -> ConnectionState {
        let was = self.state;
        self.epoch += 1;
        self.state = ConnectionState::Disconnected;
        was
    }

    /// Marks the client destroyed: connects are refused and a lost session is not redialed.
    pub fn destroy(&mut self) {
        self.destroyed = true;
    }

    /// Whether a subscription whose session failed should wait for the next one: the client
    /// `reconnect`s, is not destroyed, and is (or is about to be) redialing.
    pub fn resumable(&self, reconnect: bool) -> bool {
        reconnect && !self.destroyed && matches!(self.state, ConnectionState::Connected | ConnectionState::Reconnecting)
    }

    fn is(&self, epoch: u64, state: ConnectionState) -> bool {
        self.epoch == epoch && self.state == state
    }

    fn advance(&mut self, epoch: u64, from: ConnectionState, to: ConnectionState) -> bool {
        let current = self.is(epoch, from);
        if current {
            self.state = to;
        }
        current
    }
}

#[cfg(test)]
mod tests {
    use super::ConnectionState::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_connect_reconnects_and_disconnects() {
        let mut machine = Machine::default();
        let epoch = machine.connect().unwrap();
        assert_eq!(machine.state(), Connecting);
        assert!(machine.established(epoch));
        assert_eq!(machine.state(), Connected);
        assert!(machine.resumable(true));
        assert!(!machine.resumable(false));
        assert_eq!(machine.lost(epoch, true), Some(Reconnecting));
        assert!(machine.redialing(epoch));
        assert!(machine.restored(epoch));
        assert_eq!(machine.lost(epoch, false), Some(Disconnected));
        assert!(!machine.redialing(epoch));
        assert_eq!(machine.disconnect(), Disconnected);
    }

    #[test]
    fn outcomes_of_a_cancelled_connect_change_nothing() {
        let mut machine = Machine::default();
        let first = machine.connect().unwrap();
        assert_eq!(machine.disconnect(), Connecting);
        let second = machine.connect().unwrap();
        assert!(
            !machine.established(first),
            "the cancelled dial's session is not wanted"
        );
        assert!(!machine.connect_failed(first));
        assert_eq!(machine.state(), Connecting);
        assert!(machine.connect_failed(second));
        assert_eq!(machine.state(), Failed);
        assert_eq!(machine.lost(second, true), None, "no session to lose");
    }

    #[test]
    fn a_second_connect_is_refused_until_disconnected() {
        let mut machine = Machine::default();
        let epoch = machine.connect().unwrap();
        assert_eq!(machine.connect().unwrap_err().kind(), ErrorKind::InvalidState);
        machine.established(epoch);
        assert_eq!(machine.connect().unwrap_err().kind(), ErrorKind::InvalidState);
        machine.lost(epoch, true);
        assert_eq!(machine.connect().unwrap_err().kind(), ErrorKind::InvalidState);
        machine.disconnect();
        assert!(machine.connect().is_ok());
    }

    #[test]
    fn a_destroyed_client_neither_connects_nor_redials() {
        let mut machine = Machine::default();
        let epoch = machine.connect().unwrap();
        machine.established(epoch);
        machine.destroy();
        assert!(!machine.resumable(true));
        assert_eq!(machine.lost(epoch, true), Some(Disconnected));
        assert_eq!(machine.connect().unwrap_err().kind(), ErrorKind::Closed);
    }

    /// What happens to the machine; `back` picks the epoch an outcome carries: the current one
    /// (0) or one of the epochs before it.
    #[derive(Clone, Debug)]
    enum Step {
        Connect,
        Established { back: u64 },
        ConnectFailed { back: u64 },
        Lost { back: u64, reconnect: bool },
        Restored { back: u64 },
        GiveUp { back: u64 },
        Disconnect,
        Destroy,
    }

    fn step() -> impl Strategy<Value = Step> {
        let back = 0..3u64;
        prop_oneof![
            3 => Just(Step::Connect),
            3 => back.clone().prop_map(|back| Step::Established { back }),
            1 => back.clone().prop_map(|back| Step::ConnectFailed { back }),
            2 => (back.clone(), any::<bool>()).prop_map(|(back, reconnect)| Step::Lost { back, reconnect }),
            2 => back.clone().prop_map(|back| Step::Restored { back }),
            1 => back.prop_map(|back| Step::GiveUp { back }),
            1 => Just(Step::Disconnect),
            1 => Just(Step::Destroy),
        ]
    }

    /// The edges of the diagram at the top of this module.
    fn legal(from: ConnectionState, to: ConnectionState) -> bool {
        from == to
            || to == Disconnected
            || matches!(
                (from, to),
                (Disconnected | Failed, Connecting)
                    | (Connecting, Connected | Failed)
                    | (Connected, Reconnecting)
                    | (Reconnecting, Connected)
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Any sequence of calls and outcomes, current or stale: only the diagram's edges are
        /// taken, an outcome of an older epoch changes nothing, epochs only grow, and a destroyed
        /// client never connects or redials again.
        #[test]
        fn only_current_outcomes_move_the_machine_and_only_along_its_edges(
            steps in proptest::collection::vec(step(), 1..60)
        ) {
            let mut machine = Machine::default();
            for step in steps {
                let (state, epoch, destroyed) = (machine.state, machine.epoch, machine.destroyed);
                let stale = |back: u64| back > 0;
                let at = |back: u64| epoch.saturating_sub(back);
                match step {
                    Step::Connect => {
                        let result = machine.connect();
                        prop_assert_eq!(result.is_ok(), !destroyed && matches!(state, Disconnected | Failed));
                        if let Ok(new) = result {
                            prop_assert_eq!(new, epoch + 1);
                        }
                    }
                    // A dial's or a reconnect loop's outcome moves only from the state it expects.
                    Step::Established { back }
                    | Step::ConnectFailed { back }
                    | Step::Restored { back }
                    | Step::GiveUp { back } => {
                        let (moved, from) = match step {
                            Step::Established { .. } => (machine.established(at(back)), Connecting),
                            Step::ConnectFailed { .. } => (machine.connect_failed(at(back)), Connecting),
                            Step::Restored { .. } => (machine.restored(at(back)), Reconnecting),
                            _ => (machine.give_up(at(back)), Reconnecting),
                        };
                        prop_assert_eq!(moved, !stale(back) && state == from);
                    }
                    Step::Lost { back, reconnect } => {
                        let next = machine.lost(at(back), reconnect);
                        prop_assert_eq!(next.is_some(), !stale(back) && state == Connected);
                        if next.is_some() {
                            let redials = reconnect && !destroyed;
                            prop_assert_eq!(next, Some(if redials { Reconnecting } else { Disconnected }));
                        }
                    }
                    Step::Disconnect => {
                        prop_assert_eq!(machine.disconnect(), state);
                        prop_assert_eq!(machine.epoch, epoch + 1);
                    }
                    Step::Destroy => machine.destroy(),
                }
                prop_assert!(legal(state, machine.state), "{:?} -> {:?}", state, machine.state);
                prop_assert!(machine.epoch >= epoch);
                prop_assert!(machine.destroyed || !destroyed, "destroyed is for good");
                if destroyed {
                    prop_assert!(machine.state != Connecting && machine.state != Reconnecting || state == machine.state,
                        "a destroyed client entered {:?}", machine.state);
                }
            }
        }
    }
}
