//! What each negotiated protocol version can do: the one place that decides it from the version
//! name (moq-lite-NN or moq-transport-NN), so publishing, subscribing, fetching and the client
//! ask the same question the same way.

use moq_net::Version;

/// Whether `version` has a datagram encoding (moq-lite-05+ and every moq-transport draft).
pub(crate) fn carries_datagrams(version: Option<Version>) -> bool {
    at_least(version, 5, 0)
}

/// Whether `version` carries per-object timestamps end to end: moq-lite-05+ and
/// moq-transport-17+ (earlier drafts stamp objects on receipt; measured by the object-model
/// tests' probe across versions).
pub(crate) fn carries_timestamps(version: Option<Version>) -> bool {
    at_least(version, 5, 17)
}

/// Whether `version` can fetch past groups (moq-lite-05+, every moq-transport draft): what
/// `moq_fetch_group` and the repair of broken or missing groups use.
pub(crate) fn can_fetch(version: Option<Version>) -> bool {
    at_least(version, 5, 0)
}

/// Whether `version` is moq-lite-`lite` or later, or moq-transport-`transport` or later. No
/// version (no session yet) can do nothing.
fn at_least(version: Option<Version>, lite: u32, transport: u32) -> bool {
    let Some(version) = version else { return false };
    let name = version.to_string();
    let (number, minimum) = match (name.strip_prefix("moq-lite-"), name.strip_prefix("moq-transport-")) {
        (Some(number), _) => (number, lite),
        (_, Some(number)) => (number, transport),
        _ => return false,
    };
    number
        .split('-')
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n >= minimum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(name: &str) -> Option<Version> {
        name.parse().ok()
    }

    #[test]
    fn datagrams_timestamps_and_fetch_by_version() {
        assert!(!carries_datagrams(version("moq-lite-04")));
        assert!(carries_datagrams(version("moq-lite-05")));
        assert!(carries_datagrams(version("moq-transport-14")));
        assert!(!carries_timestamps(version("moq-lite-04")));
        assert!(carries_timestamps(version("moq-lite-06")));
        assert!(!carries_timestamps(version("moq-transport-16")));
        assert!(carries_timestamps(version("moq-transport-17")));
        assert!(!can_fetch(version("moq-lite-04")));
        assert!(can_fetch(version("moq-lite-05")));
        assert!(can_fetch(version("moq-transport-14")));
    }

    #[test]
    fn no_session_can_do_nothing() {
        assert!(!carries_datagrams(None));
        assert!(!carries_timestamps(None));
        assert!(!can_fetch(None));
    }
}
