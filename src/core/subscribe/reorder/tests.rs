//! Tests of the reorder: sequence order, gaps, resumes and repairs.

use super::*;

fn object(group: u64, byte: u8) -> Object {
    Object {
        group,
        index: 0,
        timestamp_us: 0,
        payload: Bytes::from(vec![byte]),
        arrived: Instant::now(),
    }
}

fn bytes(reorder: &mut Reorder, now: Instant) -> Vec<u8> {
    reorder.ready(now).iter().map(|o| o.payload[0]).collect()
}

#[test]
fn window_cost_counts_objects_and_bytes() {
    use crate::core::subscribe::{window_cost, WINDOW, WINDOW_BYTES};
    assert_eq!(window_cost(0), 1);
    assert_eq!(window_cost(64 << 10), 1);
    assert_eq!(window_cost((64 << 10) + 1), 2);
    assert_eq!(window_cost(WINDOW_BYTES), WINDOW as u32);
    assert_eq!(
        window_cost(usize::MAX / 2),
        WINDOW as u32,
        "never more than the whole window"
    );
}

#[test]
fn reorders_groups_into_sequence_order() {
    let now = Instant::now();
    let mut reorder = Reorder::new(0);
    reorder.group(1, vec![object(1, 1)]);
    assert_eq!(bytes(&mut reorder, now), Vec::<u8>::new(), "group 1 waits for group 0");
    reorder.group(0, vec![object(0, 0)]);
    assert_eq!(bytes(&mut reorder, now), vec![0, 1]);
    reorder.group(2, vec![object(2, 2), indexed(2, 1, 22)]);
    assert_eq!(bytes(&mut reorder, now), vec![2, 22]);
}

#[test]
fn datagram_sequences_do_not_hold_back_streams() {
    let now = Instant::now();
    let mut reorder = Reorder::new(5);
    reorder.group(7, vec![object(7, 7)]);
    reorder.group(5, vec![object(5, 5)]);
    assert_eq!(bytes(&mut reorder, now), vec![5]);
    assert!(reorder.datagram(6));
    assert_eq!(bytes(&mut reorder, now), vec![7]);
    assert!(
        !reorder.datagram(4),
        "a datagram from before the subscription is not delivered"
    );
}

#[test]
fn late_groups_are_dropped_and_gaps_time_out() {
    let start = Instant::now();
    let mut reorder = Reorder::new(3);
    reorder.group(2, vec![object(2, 2)]);
    reorder.group(5, vec![object(5, 5)]);
    assert_eq!(bytes(&mut reorder, start), Vec::<u8>::new());
    assert_eq!(reorder.deadline(), Some(start + GAP_TIMEOUT));
    assert_eq!(bytes(&mut reorder, start + GAP_TIMEOUT / 2), Vec::<u8>::new());
    assert_eq!(bytes(&mut reorder, start + GAP_TIMEOUT), vec![5]);
    assert_eq!(
        reorder.take_late(),
        2,
        "group 2 predates the subscription; 3 and 4 were skipped"
    );
    assert_eq!(reorder.take_late(), 0);
    assert_eq!(reorder.deadline(), None);
}

#[test]
fn open_groups_deliver_as_objects_arrive() {
    let now = Instant::now();
    let mut reorder = Reorder::new(0);
    assert!(reorder.open(0));
    reorder.object(object(0, 1));
    assert_eq!(bytes(&mut reorder, now), vec![1], "the current group streams");
    assert!(reorder.open(1));
    reorder.object(object(1, 10));
    reorder.complete(1);
    reorder.object(Object {
        index: 1,
        ..object(0, 2)
    });
    assert_eq!(
        bytes(&mut reorder, now),
        vec![2],
        "group 1 waits for group 0 to complete"
    );
    reorder.complete(0);
    assert_eq!(bytes(&mut reorder, now), vec![10]);
    assert!(!reorder.open(0), "a finished group is not reopened");
}

#[test]
fn a_resumed_group_skips_the_objects_already_delivered() {
    let now = Instant::now();
    let mut first = Reorder::new(0);
    first.open(0);
    first.object(Object {
        index: 0,
        ..object(0, 1)
    });
    first.object(Object {
        index: 1,
        ..object(0, 2)
    });
    assert_eq!(bytes(&mut first, now), vec![1, 2]);
    assert_eq!(first.position(), (0, 2), "group 0 is open with two objects delivered");

    // The session drops; the new one replays group 0 from its start.
    let mut resumed = Reorder::new(0);
    (resumed.next, resumed.next_index) = first.position();
    resumed.open(0);
    for (index, byte) in [(0, 1), (1, 2), (2, 3)] {
        resumed.object(Object {
            index,
            ..object(0, byte)
        });
    }
    resumed.complete(0);
    assert_eq!(bytes(&mut resumed, now), vec![3], "only the object not yet delivered");
}

#[test]
fn a_stalled_open_group_is_given_up_after_the_gap_timeout() {
    let start = Instant::now();
    let mut reorder = Reorder::new(0);
    reorder.latest_known = Some(0); // where the track stood is known: the long timeout applies
    reorder.open(0);
    reorder.object(object(0, 1));
    reorder.group(1, vec![object(1, 2)]);
    assert_eq!(bytes(&mut reorder, start), vec![1]);
    assert_eq!(bytes(&mut reorder, start + GAP_TIMEOUT / 2), Vec::<u8>::new());
    assert_eq!(bytes(&mut reorder, start + GAP_TIMEOUT), vec![2]);
    reorder.object(Object {
        index: 1,
        ..object(0, 3)
    });
    assert_eq!(reorder.take_late(), 1, "an object of the abandoned group is late");
}

#[test]
fn the_latency_bound_shortens_the_gap_timeout() {
    let start = Instant::now();
    let mut reorder = Reorder::new(0);
    reorder.max_latency = Some(Duration::from_millis(100));
    reorder.group(2, vec![object(2, 2)]);
    assert_eq!(bytes(&mut reorder, start), Vec::<u8>::new());
    assert_eq!(bytes(&mut reorder, start + Duration::from_millis(100)), vec![2]);
    assert_eq!(reorder.take_late(), 2);
}

fn indexed(group: u64, index: u64, byte: u8) -> Object {
    Object {
        index,
        ..object(group, byte)
    }
}

#[test]
fn a_missing_group_is_fetched_once_a_later_one_has_waited() {
    let start = Instant::now();
    let mut reorder = Reorder::new(5);
    reorder.repair = true;
    assert!(reorder.open_at(8, start));
    reorder.object(object(8, 8));
    reorder.complete(8);
    assert_eq!(bytes(&mut reorder, start), Vec::<u8>::new());
    assert_eq!(reorder.repairs(start, 8), Vec::<u64>::new(), "group 8 just arrived");
    assert_eq!(reorder.deadline(), Some(start + REPAIR_AFTER), "woken when it is ripe");
    let ripe = start + REPAIR_AFTER;
    assert_eq!(reorder.repairs(ripe, 2), vec![5, 6], "at most the room given");
    assert_eq!(reorder.repairs(ripe, 8), Vec::<u64>::new(), "the next scan waits");
    let later = ripe + REPAIR_SCAN_EVERY;
    assert_eq!(reorder.repairs(later, 8), vec![7]);
    assert_eq!(
        reorder.repairs(later + REPAIR_SCAN_EVERY, 8),
        Vec::<u64>::new(),
        "each once"
    );

    // The repair of 5 arrives; 6 cannot be had; 7 arrives on the subscription after all.
    assert!(reorder.open_at(5, later));
    reorder.object(object(5, 5));
    reorder.complete(5);
    reorder.unrepairable(6);
    assert_eq!(bytes(&mut reorder, later), vec![5], "6 is skipped, 7 is still awaited");
    assert!(reorder.open_at(7, later));
    reorder.object(object(7, 7));
    reorder.complete(7);
    assert_eq!(bytes(&mut reorder, later), vec![7, 8]);
    assert_eq!(reorder.take_late(), 1, "the unrepairable group is counted");
    assert!(
        !reorder.open_at(7, later),
        "the second copy of a repaired group is not read"
    );
    reorder.object(object(7, 7));
    assert_eq!(reorder.take_late(), 0, "and its objects are not counted as late");
}

#[test]
fn a_broken_group_is_fetched_at_once_and_its_copy_adds_only_what_was_missing() {
    let now = Instant::now();
    let mut reorder = Reorder::new(5);
    reorder.repair = true;
    reorder.open_at(5, now);
    reorder.object(indexed(5, 0, 1));
    assert_eq!(bytes(&mut reorder, now), vec![1], "the open group streams");
    reorder.failed(5);
    assert_eq!(
        bytes(&mut reorder, now),
        Vec::<u8>::new(),
        "a broken group is not complete"
    );
    assert_eq!(reorder.repairs(now, 8), vec![5]);
    assert!(reorder.open_at(5, now));
    for (index, byte) in [(0, 1), (1, 2), (2, 3)] {
        reorder.object(indexed(5, index, byte));
    }
    reorder.complete(5);
    assert_eq!(bytes(&mut reorder, now), vec![2, 3]);
    assert_eq!(reorder.position(), (6, 0));
}

#[test]
fn copies_from_two_streams_are_delivered_once() {
    let now = Instant::now();
    let mut reorder = Reorder::new(5);
    reorder.repair = true;
    reorder.group(6, vec![object(6, 6)]);
    assert!(reorder.open_at(5, now)); // the subscription's stream
    assert!(reorder.open_at(5, now)); // a repair's
    reorder.object(indexed(5, 0, 1));
    reorder.object(indexed(5, 0, 1));
    reorder.object(indexed(5, 1, 2));
    reorder.failed(5); // the subscription's stream breaks; the repair still reads
    reorder.object(indexed(5, 1, 2));
    reorder.complete(5);
    assert_eq!(bytes(&mut reorder, now), vec![1, 2, 6]);
    assert_eq!(reorder.repairs(now, 8), Vec::<u64>::new(), "nothing was lost");
}

#[test]
fn without_repair_a_broken_group_ends_with_what_it_has() {
    let now = Instant::now();
    let mut reorder = Reorder::new(5);
    reorder.open_at(5, now);
    reorder.object(indexed(5, 0, 1));
    reorder.failed(5);
    reorder.group(6, vec![object(6, 6)]);
    assert_eq!(bytes(&mut reorder, now), vec![1, 6]);
    let ripe = now + REPAIR_AFTER;
    reorder.group(9, vec![object(9, 9)]);
    assert_eq!(bytes(&mut reorder, now), Vec::<u8>::new());
    assert_eq!(reorder.repairs(ripe, 8), Vec::<u64>::new());
    assert_eq!(
        reorder.deadline(),
        Some(now + GAP_TIMEOUT),
        "only the gap timeout applies"
    );
}

#[test]
fn gaps_are_not_fetched_on_tracks_with_datagrams_or_before_the_start_is_known() {
    let start = Instant::now();
    let ripe = start + REPAIR_AFTER;
    let mut mixed = Reorder::new(5);
    mixed.repair = true;
    assert!(mixed.datagram(6));
    mixed.group(8, vec![object(8, 8)]);
    assert_eq!(mixed.repairs(ripe, 8), Vec::<u64>::new(), "7 may be a lost datagram");

    let mut unknown = Reorder::new(0);
    unknown.repair = true;
    unknown.group(40, vec![object(40, 40)]);
    assert_eq!(
        unknown.repairs(ripe, 8),
        Vec::<u64>::new(),
        "0..40 were never asked for"
    );
}

#[test]
fn a_stuck_reader_is_woken_to_scan_again_never_in_the_past() {
    let start = Instant::now();
    let mut reorder = Reorder::new(5);
    reorder.repair = true;
    reorder.group(7, vec![object(7, 7)]);
    assert_eq!(bytes(&mut reorder, start), Vec::<u8>::new());
    assert_eq!(reorder.repairs(start, 8), Vec::<u64>::new());
    // A group arrives while the scan rests; the wake still comes, and after it the scan.
    let soon = start + REPAIR_SCAN_EVERY / 2;
    reorder.group(9, vec![object(9, 9)]);
    assert_eq!(reorder.repairs(soon, 8), Vec::<u64>::new());
    let wake = reorder.deadline().expect("a wake while delivery is stuck");
    assert!(wake > soon);
    // With no room, a wake that passed is dropped rather than spun on.
    let late = start + REPAIR_AFTER * 3;
    assert_eq!(reorder.repairs(late, 0), Vec::<u64>::new());
    assert!(reorder.deadline().is_none_or(|deadline| deadline > late));
    assert_eq!(reorder.repairs(late, 8), vec![5, 6, 8]);
}
