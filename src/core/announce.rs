//! Announcement discovery: reports namespaces the relay announces to a client (and their
//! withdrawal) to a callback or the client's poll queue.
//!
//! The client's remote origin outlives its sessions, so one watcher covers every session: a
//! session that ends withdraws what it announced, and the next one announces it again.

use crate::core::client::{Child, Client};
use crate::core::config;
use crate::core::events::Event;
use crate::dispatch::{self, Gate};
use crate::error::Result;
use crate::runtime;
use std::sync::{Arc, Weak};
use tokio::task::AbortHandle;

/// Receives `(namespace, active)` on the dispatcher thread.
pub type AnnounceCallback = Arc<dyn Fn(&str, bool) + Send + Sync>;

/// Where announcements go.
pub enum AnnounceSink {
    Callback(AnnounceCallback),
    /// The client's control queue, drained by `moq_poll`.
    Poll,
}

/// Reports announcements of namespaces at or below `prefix` (`None`: all) to `sink`, replacing
/// (and stopping) the watcher `client` had. Works before and after connect.
pub fn watch(client: &Arc<Client>, prefix: Option<String>, sink: AnnounceSink) -> Result<()> {
    if let Some(prefix) = prefix.as_deref().filter(|prefix| !prefix.is_empty()) {
        config::check_namespace(prefix.trim_end_matches('/'))?;
    }
    client.set_announcer(Arc::new(Watcher::start(client, prefix, sink)?))
}

/// A running announcement watcher; stopping it closes its gate.
pub struct Watcher {
    gate: Arc<Gate>,
    task: AbortHandle,
}

impl Watcher {
    /// Starts reporting announcements of namespaces equal to `prefix` or below it (`None`: all).
    pub fn start(client: &Arc<Client>, prefix: Option<String>, sink: AnnounceSink) -> Result<Self> {
        let gate = Gate::new();
        let mut announced = client.remote().consume().announced();
        let weak: Weak<Client> = Arc::downgrade(client);
        let task_gate = gate.clone();
        let task = runtime::spawn_supervised(
            &runtime::handle()?,
            "the announcement watcher",
            async move {
                while let Some(update) = announced.next().await {
                    let active = match update.kind {
                        moq_net::announce::Kind::Announced => true,
                        moq_net::announce::Kind::Retracted => false,
                        moq_net::announce::Kind::Updated => continue,
                    };
                    let namespace = update.prefix.as_str().to_string();
                    if !matches(prefix.as_deref(), &namespace) {
                        continue;
                    }
                    tracing::debug!(namespace, active, "announcement");
                    match &sink {
                        AnnounceSink::Callback(callback) => {
                            let callback = callback.clone();
                            let job = Box::new(move || callback(&namespace, active));
                            // A flood the callback cannot keep up with is dropped past the
                            // gate's cap, counted in the client's `events_dropped`.
                            match dispatch::post_event(&task_gate, "announcement", job) {
                                Ok(posted) if posted.dropped_one() => {
                                    if let Some(client) = weak.upgrade() {
                                        client.events_dropped(1);
                                    }
                                }
                                Ok(_) => {}
                                Err(_) => return,
                            }
                        }
                        AnnounceSink::Poll => match weak.upgrade() {
                            Some(client) => client.hub().push_control(Event::Announce { namespace, active }),
                            None => return,
                        },
                    }
                }
            },
            |err| tracing::error!("announcement watcher stopped: {err}"),
        );
        Ok(Self { gate, task })
    }

    /// Stops reporting. Afterwards no callback of this watcher runs (and, unless called from a
    /// callback, none is running).
    pub fn stop(&self) {
        self.task.abort();
        dispatch::close(&self.gate);
    }
}

impl Child for Watcher {
    fn stop(&self) {
        Watcher::stop(self);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `namespace` is `prefix` or below it ('/'-separated segments).
fn matches(prefix: Option<&str>, namespace: &str) -> bool {
    match prefix {
        None | Some("") => true,
        Some(prefix) => namespace
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/')),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(matches(None, "a/b"));
        assert!(matches(Some(""), "a/b"));
        assert!(matches(Some("a"), "a"));
        assert!(matches(Some("a"), "a/b"));
        assert!(!matches(Some("a"), "ab"));
        assert!(matches(Some("game/"), "game/room1"));
        assert!(!matches(Some("game/room1"), "game/room"));
    }
}
