//! Timing bounds: a wait that an event or a wake must end is checked against half the poll's
//! timeout, never a tight margin: what matters is that the wake ended it, and a starved process
//! (the loaded runs beside `stress-ng`, or a test run at `nice 19` beside them) can take seconds
//! to be scheduled.

use super::*;
use crate::core::config::DeliveryMode;
use crate::core::connection::ConnectionState;
use crate::core::events::{ObjectInfo, StatusReport};
use bytes::Bytes;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc;
use std::thread;

fn object(n: u64) -> Event {
    let info = ObjectInfo {
        group_id: n,
        object_id: 0,
        timestamp_us: 0,
        delivery_mode: DeliveryMode::Stream,
        priority: 0,
    };
    Event::Object {
        info,
        payload: Bytes::from(n.to_le_bytes().to_vec()),
    }
}

fn status(status: SubscriptionStatus) -> Event {
    Event::Status(StatusReport {
        status,
        code: 0,
        message: String::new(),
    })
}

fn announce(n: usize) -> Event {
    Event::Announce {
        namespace: format!("ns{n}"),
        active: true,
    }
}

/// The object's number, read back from its payload.
fn number(event: &Event) -> Option<u64> {
    match event {
        Event::Object { payload, .. } => Some(u64::from_le_bytes(payload[..].try_into().unwrap())),
        _ => None,
    }
}

fn numbers(events: &[(u64, Event)]) -> Vec<u64> {
    events.iter().filter_map(|(_, event)| number(event)).collect()
}

fn status_of(event: &Event) -> Option<SubscriptionStatus> {
    match event {
        Event::Status(report) => Some(report.status),
        _ => None,
    }
}

/// Pushes objects 0..10 into a capacity-4 queue; returns what stays and the drop counts.
fn ten_into_four(policy: Policy) -> (Vec<u64>, usize, u64) {
    let hub = Hub::new();
    let queue = hub.open(1, 4, policy);
    let returned: usize = (0..10).map(|n| queue.push(object(n))).sum();
    let events = hub.poll(100, Duration::ZERO);
    assert!(events.iter().all(|(source, _)| *source == 1));
    (numbers(&events), returned, queue.dropped())
}

#[test]
fn drop_oldest_keeps_newest_objects() {
    assert_eq!(ten_into_four(Policy::DropOldest), (vec![6, 7, 8, 9], 6, 6));
}

#[test]
fn drop_newest_keeps_oldest_objects() {
    assert_eq!(ten_into_four(Policy::DropNewest), (vec![0, 1, 2, 3], 6, 6));
}

#[test]
fn latest_only_keeps_last_object() {
    assert_eq!(ten_into_four(Policy::LatestOnly), (vec![9], 9, 9));
}

#[test]
fn capacity_is_clamped() {
    let hub = Hub::new();
    let queue = hub.open(1, 0, Policy::DropOldest);
    assert_eq!(queue.push(object(0)), 0);
    assert_eq!(queue.push(object(1)), 1);
    assert_eq!(numbers(&hub.poll(10, Duration::ZERO)), vec![1]);
    assert_eq!(
        hub.open(2, usize::MAX, Policy::DropOldest).shared.capacity,
        MAX_CAPACITY
    );
}

#[test]
fn status_events_are_not_dropped_by_policy() {
    use SubscriptionStatus::*;
    for policy in [Policy::DropOldest, Policy::DropNewest, Policy::LatestOnly] {
        let hub = Hub::new();
        let queue = hub.open(7, 1, policy);
        let mut dropped = queue.push(status(Subscribed));
        for n in 0..5 {
            dropped += queue.push(object(n));
        }
        dropped += queue.push(status(Ended));
        assert_eq!(dropped, 4, "{policy:?}");
        let events = hub.poll(100, Duration::ZERO);
        let kept = if policy == Policy::DropNewest { 0 } else { 4 };
        assert_eq!(status_of(&events[0].1), Some(Subscribed), "{policy:?}");
        assert_eq!(number(&events[1].1), Some(kept), "{policy:?}");
        assert_eq!(status_of(&events[2].1), Some(Ended), "{policy:?}");
        assert_eq!(events.len(), 3, "{policy:?}");
    }
}

#[test]
fn repeated_subscribed_is_capped() {
    use SubscriptionStatus::*;
    let hub = Hub::new();
    let queue = hub.open(1, 4, Policy::DropOldest);
    let dropped: usize = (0..100).map(|_| queue.push(status(Subscribed))).sum();
    assert_eq!((dropped, queue.len(), queue.dropped()), (36, MAX_KEPT, 36));
    // A terminal status displaces a Subscribed and then survives any number of them.
    assert_eq!(queue.push(status(Error)), 1);
    for _ in 0..200 {
        queue.push(status(Subscribed));
    }
    assert_eq!(queue.len(), MAX_KEPT);
    let events = hub.poll(1000, Duration::ZERO);
    let terminal: Vec<_> = events
        .iter()
        .filter_map(|(_, event)| status_of(event))
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(terminal, vec![Error]);
    assert_eq!(hub.pending(), 0);
}

#[test]
fn terminal_status_is_never_dropped() {
    use SubscriptionStatus::*;
    let hub = Hub::new();
    let queue = hub.open(1, 4, Policy::LatestOnly);
    for n in 0..MAX_KEPT + 6 {
        let terminal = [NotFound, Ended, Error][n % 3];
        assert_eq!(queue.push(status(terminal)), 0);
    }
    assert_eq!(queue.len(), MAX_KEPT + 6);
    // With nothing evictable a Subscribed is still queued, then displaces only its predecessor.
    for _ in 0..100 {
        queue.push(status(Subscribed));
    }
    assert_eq!(queue.len(), MAX_KEPT + 7);
    let events = hub.poll(1000, Duration::ZERO);
    let terminal = events
        .iter()
        .filter(|(_, event)| status_of(event).is_some_and(|s| s.is_terminal()))
        .count();
    assert_eq!(terminal, MAX_KEPT + 6);
}

#[test]
fn order_within_source_is_preserved() {
    use SubscriptionStatus::*;
    let hub = Hub::new();
    let queue = hub.open(3, 64, Policy::DropOldest);
    queue.push(status(Subscribed));
    for n in 0..10 {
        queue.push(object(n));
        if n == 4 {
            queue.push(status(Subscribed));
        }
    }
    queue.push(status(Ended));
    let mut seen = Vec::new();
    while let [(source, event)] = &hub.poll(1, Duration::ZERO)[..] {
        assert_eq!(*source, 3);
        seen.push(number(event).map_or_else(|| format!("{:?}", status_of(event).unwrap()), |n| n.to_string()));
    }
    let expected = "Subscribed 0 1 2 3 4 Subscribed 5 6 7 8 9 Ended";
    assert_eq!(seen.join(" "), expected);
}

#[test]
fn round_robin_across_sources_and_control() {
    let hub = Hub::new();
    let queues: Vec<_> = (1..=3).map(|source| hub.open(source, 64, Policy::DropOldest)).collect();
    // The first source gets far more than the others: it must not starve them.
    for n in 0..40 {
        queues[0].push(object(n));
    }
    for n in 0..10 {
        queues[1].push(object(100 + n));
        queues[2].push(object(200 + n));
        hub.push_control(announce(n as usize));
    }
    let mut sources: Vec<u64> = hub.poll(4, Duration::ZERO).iter().map(|(source, _)| *source).collect();
    sources.sort();
    assert_eq!(sources, vec![0, 1, 2, 3]);
    // The rotation continues across calls.
    let mut sources: Vec<u64> = hub.poll(2, Duration::ZERO).iter().map(|(source, _)| *source).collect();
    sources.extend(hub.poll(2, Duration::ZERO).iter().map(|(source, _)| *source));
    sources.sort();
    assert_eq!(sources, vec![0, 1, 2, 3]);
    // Everything else comes out, each source in order.
    let mut rest = hub.poll(1000, Duration::ZERO);
    assert_eq!(rest.len(), 70 - 8);
    assert_eq!(hub.pending(), 0);
    rest.retain(|(source, _)| *source == 1);
    assert_eq!(numbers(&rest), (2..40).collect::<Vec<_>>());
}

#[test]
fn control_events_use_source_zero() {
    let hub = Hub::new();
    hub.push_control(Event::Connection(ConnectionState::Connected));
    let events = hub.poll(10, Duration::ZERO);
    assert!(matches!(
        events[..],
        [(0, Event::Connection(ConnectionState::Connected))]
    ));
}

#[test]
fn control_overflow_drops_oldest() {
    let hub = Hub::new();
    for n in 0..CONTROL_CAPACITY + 10 {
        hub.push_control(announce(n));
    }
    assert_eq!(hub.control_dropped(), 10);
    assert_eq!(hub.pending(), CONTROL_CAPACITY);
    let events = hub.poll(usize::MAX, Duration::ZERO);
    assert_eq!(events.len(), CONTROL_CAPACITY);
    assert!(matches!(&events[0].1, Event::Announce { namespace, .. } if namespace == "ns10"));
}

#[test]
fn poll_times_out_empty() {
    let hub = Hub::new();
    let start = Instant::now();
    assert!(hub.poll(10, Duration::from_millis(50)).is_empty());
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(40) && elapsed < Duration::from_secs(30),
        "{elapsed:?}"
    );
    // Zero timeout and zero max return at once.
    let start = Instant::now();
    assert!(hub.poll(10, Duration::ZERO).is_empty());
    assert!(hub.poll(0, Duration::from_secs(10)).is_empty());
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn push_from_another_thread_wakes_poll() {
    let hub = Hub::new();
    let queue = hub.open(5, 16, Policy::DropOldest);
    let (sender, receiver) = mpsc::channel();
    let producer = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        sender.send(Instant::now()).unwrap();
        queue.push(object(42));
    });
    let events = hub.poll(10, Duration::from_secs(10));
    let returned = Instant::now();
    let pushed = receiver.recv().unwrap();
    producer.join().unwrap();
    assert_eq!(numbers(&events), vec![42]);
    assert!(returned.duration_since(pushed) < Duration::from_secs(5));
}

#[test]
fn control_push_from_another_thread_wakes_poll() {
    let hub = Hub::new();
    let producer = {
        let hub = hub.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            hub.push_control(announce(1));
        })
    };
    let start = Instant::now();
    let events = hub.poll(10, Duration::from_secs(10));
    producer.join().unwrap();
    assert_eq!(events.len(), 1);
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn wake_ends_a_long_wait() {
    let hub = Hub::new();
    let waker = {
        let hub = hub.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            hub.wake();
        })
    };
    let start = Instant::now();
    assert!(hub.poll(10, Duration::from_secs(60)).is_empty());
    assert!(start.elapsed() < Duration::from_secs(30));
    waker.join().unwrap();
    // The wake was consumed: the next poll waits its full timeout.
    let start = Instant::now();
    assert!(hub.poll(10, Duration::from_millis(50)).is_empty());
    assert!(start.elapsed() >= Duration::from_millis(40));
}

#[test]
fn wake_before_poll_is_not_lost() {
    let hub = Hub::new();
    hub.wake();
    let start = Instant::now();
    assert!(hub.poll(10, Duration::from_secs(60)).is_empty());
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[test]
fn close_discards_events_and_ignores_pushes() {
    let hub = Hub::new();
    let queue = hub.open(1, 8, Policy::DropOldest);
    let other = hub.open(2, 8, Policy::DropOldest);
    for n in 0..3 {
        queue.push(object(n));
    }
    other.push(object(99));
    queue.close();
    queue.close();
    assert!(queue.is_closed() && queue.is_empty());
    assert_eq!(queue.push(object(5)), 0);
    assert_eq!(hub.pending(), 1);
    let events = hub.poll(10, Duration::ZERO);
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].0, number(&events[0].1)), (2, Some(99)));
    assert_eq!(queue.dropped(), 0);
}

#[test]
fn close_frees_payloads_at_once() {
    // Holds the token only so its drop is observable.
    struct Owner {
        _token: Arc<()>,
    }
    impl AsRef<[u8]> for Owner {
        fn as_ref(&self) -> &[u8] {
            &[0; 8]
        }
    }
    let token = Arc::new(());
    let hub = Hub::new();
    let queue = hub.open(1, 8, Policy::DropOldest);
    for _ in 0..4 {
        let info = ObjectInfo {
            group_id: 0,
            object_id: 0,
            timestamp_us: 0,
            delivery_mode: DeliveryMode::Datagram,
            priority: 0,
        };
        queue.push(Event::Object {
            info,
            payload: Bytes::from_owner(Owner { _token: token.clone() }),
        });
    }
    assert_eq!(Arc::strong_count(&token), 5);
    queue.close();
    assert_eq!(Arc::strong_count(&token), 1);
}

#[test]
fn close_all_discards_everything_and_ends_polls() {
    let hub = Hub::new();
    let queue = hub.open(1, 8, Policy::DropOldest);
    queue.push(object(1));
    hub.push_control(announce(1));
    // A poller waiting on an empty hub: drain first, then wait in another thread.
    assert_eq!(hub.poll(10, Duration::ZERO).len(), 2);
    let poller = {
        let hub = hub.clone();
        thread::spawn(move || {
            let start = Instant::now();
            let events = hub.poll(10, Duration::from_secs(60));
            (events.len(), start.elapsed())
        })
    };
    thread::sleep(Duration::from_millis(50));
    queue.push(object(2));
    hub.close_all();
    let (_, waited) = poller.join().unwrap();
    assert!(waited < Duration::from_secs(30));
    assert!(queue.is_closed());
    assert_eq!(hub.pending(), 0);
    assert_eq!(queue.push(object(3)), 0);
    hub.push_control(announce(2));
    assert_eq!(hub.pending(), 0);
    let start = Instant::now();
    assert!(hub.poll(10, Duration::from_secs(60)).is_empty());
    assert!(start.elapsed() < Duration::from_secs(30));
    let late = hub.open(9, 8, Policy::DropOldest);
    assert!(late.is_closed());
    assert_eq!(late.push(object(4)), 0);
    assert_eq!(hub.pending(), 0);
}

#[test]
fn reopening_a_source_closes_the_old_queue() {
    let hub = Hub::new();
    let old = hub.open(1, 8, Policy::DropOldest);
    old.push(object(1));
    let new = hub.open(1, 8, Policy::DropOldest);
    assert!(old.is_closed() && !new.is_closed());
    assert_eq!(old.push(object(2)), 0);
    new.push(object(3));
    old.close();
    assert_eq!(new.len(), 1);
    assert_eq!(numbers(&hub.poll(10, Duration::ZERO)), vec![3]);
}

#[test]
fn queue_outliving_its_hub_ignores_pushes() {
    let hub = Hub::new();
    let queue = hub.open(1, 8, Policy::DropOldest);
    queue.push(object(1));
    let weak = Arc::downgrade(&hub);
    drop(hub);
    // No reference cycle keeps the hub alive through its queues.
    assert!(weak.upgrade().is_none());
    assert!(queue.is_closed());
    assert_eq!(queue.push(object(2)), 0);
    assert_eq!(queue.len(), 0);
    queue.close();
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Hub>();
    check::<Arc<Hub>>();
    check::<Queue>();
}

#[test]
fn stress_four_producers_one_consumer() {
    const PER_PRODUCER: u64 = 100_000;
    const CAPACITY: usize = 1024;
    let start = Instant::now();
    let hub = Hub::new();
    let done = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (1..=4u64)
        .map(|source| {
            let queue = hub.open(source, CAPACITY, Policy::DropOldest);
            let done = done.clone();
            thread::spawn(move || {
                let mut dropped = 0;
                for n in 0..PER_PRODUCER {
                    dropped += queue.push(object(n));
                    if n % 16 == 0 {
                        assert!(queue.len() <= CAPACITY);
                    }
                }
                assert_eq!(dropped as u64, queue.dropped());
                done.fetch_add(1, Ordering::Release);
                queue
            })
        })
        .collect();
    let mut delivered = [0u64; 5];
    let mut last: [Option<u64>; 5] = [None; 5];
    loop {
        let finished = done.load(Ordering::Acquire) == 4;
        let events = hub.poll(64, Duration::from_millis(10));
        assert!(events.len() <= 64);
        for (source, event) in &events {
            let n = number(event).unwrap();
            let index = *source as usize;
            // Drops leave gaps, but what arrives comes in push order.
            assert!(last[index].is_none_or(|previous| previous < n));
            last[index] = Some(n);
            delivered[index] += 1;
        }
        if finished && events.is_empty() && hub.pending() == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "stress test took too long");
    }
    for producer in producers {
        let queue = producer.join().unwrap();
        let source = queue.source() as usize;
        assert_eq!(delivered[source] + queue.dropped(), PER_PRODUCER, "source {source}");
        // The last object is always delivered under DropOldest.
        assert_eq!(last[source], Some(PER_PRODUCER - 1));
    }
}
