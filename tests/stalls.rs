//! A live subscription that stalls: the relay holds the groups, the subscription's stream brings
//! nothing more (a relay's route switch that forwarded nothing, a stream stuck on the way, a
//! process slowed past its peers' patience). Seen in the field as a subscription that stays
//! SUBSCRIBED and silent while the publisher goes on. Every object must still arrive, once, in
//! order, intact, and nothing be counted lost: the subscription probes the relay once it is
//! quiet and fetches what the relay holds (`subscribe/sequencer.rs`, "probed").
//!
//! The stall is injected (`moq_ffi::inject::set_fault("subscribe:live:<namespace>")`): the
//! subscription stops reading its live stream, exactly what a stuck stream looks like from
//! inside; the faults are scoped by namespace, so the tests run side by side.

mod common;

use common::*;
use moq_ffi::ffi::*;
use moq_ffi::inject::set_fault;
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the subscriber saw: (group, object, payload) in order of arrival, and its statuses.
struct Seen {
    objects: Arc<Recorder<(u64, u64, Vec<u8>)>>,
    statuses: Arc<Recorder<MoqSubscriptionStatus>>,
}

impl Seen {
    /// Waits until `count` objects arrived or `timeout` passed; returns the count.
    fn wait_for(&self, count: usize, timeout: Duration) -> usize {
        self.objects.wait_until(timeout, |objects| objects.len() >= count);
        self.objects.snapshot().len()
    }
}

unsafe extern "C" fn on_object(user_data: *mut c_void, info: *const MoqObjectInfo, data: *const u8, len: usize) {
    // SAFETY: `user_data` is the test's `Seen`, alive until the subscriber is destroyed; `info`
    // and `data` are valid during the call.
    let (seen, info) = unsafe { (&*(user_data as *const Seen), *info) };
    let payload = match len {
        0 => Vec::new(),
        // SAFETY: as above.
        _ => unsafe { std::slice::from_raw_parts(data, len) }.to_vec(),
    };
    seen.objects.push((info.group_id, info.object_id, payload));
}

unsafe extern "C" fn on_status(user_data: *mut c_void, status: MoqSubscriptionStatus, _: u32, _: *const c_char) {
    // SAFETY: as in `on_object`.
    let seen = unsafe { &*(user_data as *const Seen) };
    seen.statuses.push(status);
}

/// The payload of object `index` of group `group`: its coordinates, then filler.
fn payload(group: u64, index: u64) -> Vec<u8> {
    let mut data = Vec::with_capacity(64);
    data.extend_from_slice(&group.to_le_bytes());
    data.extend_from_slice(&index.to_le_bytes());
    data.resize(64, (group ^ index) as u8);
    data
}

/// Publishes groups `groups` of `per_group` objects each on `publisher`, every `pause` apart.
fn publish(publisher: *mut MoqPublisher, groups: std::ops::Range<u64>, per_group: u64, pause: Duration) {
    for group in groups {
        assert_eq!(
            take(unsafe { moq_publisher_begin_group(publisher, std::ptr::null_mut()) }).0,
            MoqResultCode::MOQ_OK
        );
        for index in 0..per_group {
            let data = payload(group, index);
            // SAFETY: `data` is valid for its length.
            let (code, message) = take(unsafe { moq_publish_object(publisher, data.as_ptr(), data.len(), 0) });
            assert_eq!(code, MoqResultCode::MOQ_OK, "{message}");
        }
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    assert_eq!(take(moq_publisher_end_group(publisher)).0, MoqResultCode::MOQ_OK);
}

/// Runs one case on its own namespace: `before` groups arrive live, then the live subscription
/// stalls and `after` more groups are published; every object must arrive, in order, intact.
fn stalled_subscription_delivers_everything(ns: &str, per_group: u64, before: u64, after: u64, pause: Duration) {
    let relay = TestRelay::start();
    let pub_client = connected_client(&relay);
    let sub_client = connected_client(&relay);
    let publisher = common::publisher(pub_client, ns, "t");
    let seen = Arc::new(Seen {
        objects: Recorder::new(),
        statuses: Recorder::new(),
    });
    let options = start_options(MOQ_START_ABSOLUTE_GROUP, 0);
    // SAFETY: the user data outlives the subscriber.
    let subscriber = unsafe {
        subscribe_with(
            sub_client,
            ns,
            "t",
            &options,
            Some(on_object),
            Some(on_status),
            Arc::as_ptr(&seen) as *mut c_void,
        )
    };
    let scale = time_scale();
    let bound = Duration::from_secs(30 * u64::from(scale));

    publish(publisher, 0..before, per_group, pause);
    let live = (before * per_group) as usize;
    assert_eq!(
        seen.wait_for(live, bound),
        live,
        "the live subscription before the stall"
    );

    let fault = format!("subscribe:live:{ns}");
    set_fault(&fault, true);
    let began = Instant::now();
    publish(publisher, before..before + after, per_group, pause);
    let total = ((before + after) * per_group) as usize;
    let got = seen.wait_for(total, bound);
    let took = began.elapsed();
    set_fault(&fault, false);

    let objects = seen.objects.snapshot();
    let expected: Vec<(u64, u64)> = (0..before + after)
        .flat_map(|group| (0..per_group).map(move |index| (group, index)))
        .collect();
    let order: Vec<(u64, u64)> = objects.iter().map(|(group, index, _)| (*group, *index)).collect();
    assert_eq!(got, total, "{got} of {total} objects after the stall ({took:?})");
    assert_eq!(order, expected, "every object once, in order");
    for (group, index, data) in &objects {
        assert_eq!(data, &payload(*group, *index), "object {group}/{index} intact");
    }
    let stats = subscriber_stats(subscriber);
    assert_eq!(stats.groups_lost, 0, "nothing lost");
    assert!(
        stats.groups_repaired >= 1,
        "the groups after the stall were fetched: {}",
        stats.groups_repaired
    );
    assert_eq!(
        seen.statuses.snapshot(),
        vec![MOQ_SUBSCRIPTION_SUBSCRIBED],
        "no error, no end: the subscription went on"
    );
    eprintln!(
        "{ns}: {after} groups of {per_group} after the stall delivered in {took:?}, {} groups fetched",
        stats.groups_repaired
    );

    moq_subscriber_destroy(subscriber);
    drop(seen);
    moq_publisher_destroy(publisher);
    moq_client_destroy(sub_client);
    moq_client_destroy(pub_client);
}

/// A steady 100 Hz track (one object per group) whose live subscription stalls: the groups
/// keep coming through the probes' fetches, a probe interval late.
#[test]
fn a_stalled_steady_track_still_delivers_every_object() {
    stalled_subscription_delivers_everything("stalls/steady", 1, 50, 300, Duration::from_millis(10));
}

/// A burst (groups of 10, written at once) right after the stall, then nothing: no later group
/// comes to give the stall away, and the last group may have been open on the stalled stream.
#[test]
fn the_tail_of_a_burst_after_a_stall_is_fetched() {
    stalled_subscription_delivers_everything("stalls/burst", 10, 3, 200, Duration::ZERO);
}
