//! Consumer groups under churn: three consumers join and leave while a
//! producer runs; with commits, every message is consumed exactly once per
//! group and in order per partition. Offsets survive a broker restart.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{admin, cfg, tcp, topic, TestBroker};
use neo_broker::client::{Consumer, ConsumerConfig, Producer, ProducerConfig};
use neo_broker::protocol::{Assignor, Fsync};

const MESSAGES: u32 = 6000;
const PARTITIONS: u32 = 6;

/// (consumer, partition, offset, value) in the order consumed.
type Log = Arc<Mutex<Vec<(usize, u32, u64, u32)>>>;

fn consumer_cfg(assignor: Assignor) -> ConsumerConfig {
    ConsumerConfig {
        assignor,
        heartbeat_interval: Duration::from_millis(50),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(10),
        max_wait: Duration::from_millis(50),
        auto_commit: Some(Duration::from_millis(200)),
        ..ConsumerConfig::group("workers", &["events"])
    }
}

/// Consumes until `until` says stop; returns after a clean close.
fn run_consumer(
    id: usize,
    addr: std::net::SocketAddr,
    assignor: Assignor,
    log: Log,
    until: impl Fn(&Log) -> bool,
) {
    let mut c = Consumer::subscribe(tcp(), cfg(addr), consumer_cfg(assignor)).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !until(&log) && Instant::now() < deadline {
        c.poll_each(Duration::from_millis(50), |_, p, r| {
            let v: u32 = std::str::from_utf8(r.value).unwrap().parse().unwrap();
            log.lock().unwrap().push((id, p, r.offset, v));
        })
        .expect("poll");
    }
    c.close().expect("close commits and leaves");
}

fn churn(assignor: Assignor) {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    admin(b.addr)
        .create_topic("events", topic(PARTITIONS, Fsync::IntervalMs(2)))
        .unwrap();
    let addr = b.addr;
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let produced = Arc::new(AtomicBool::new(false));

    // The churn is driven by progress, not by wall-clock time, so it is the
    // same on a fast or a loaded machine: the producer stays at most 1 500
    // messages ahead of the consumers, and pauses at 2 000 until the group
    // has two stable members and at 3 500 until it has three; consumer 1
    // joins after 1 000 are consumed, consumer 2 after 2 000; consumer 0
    // leaves once consumer 2 has records, consumer 1 once it has records and
    // 4 500 are consumed; consumer 2 stays to the end.
    let count = |l: &Log| l.lock().unwrap().len();
    let got = |l: &Log, who: usize| l.lock().unwrap().iter().any(|e| e.0 == who);
    let p_done = produced.clone();
    let plog = log.clone();
    let producer = std::thread::spawn(move || {
        let mut p = Producer::connect(
            tcp(),
            cfg(addr),
            ProducerConfig {
                batch_bytes: 2048,
                ..Default::default()
            },
        )
        .unwrap();
        let mut a = admin(addr);
        let deadline = Instant::now() + Duration::from_secs(60);
        for i in 0..MESSAGES {
            while i as usize > count(&plog) + 1500 && Instant::now() < deadline {
                p.poll().unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            // A gate opens once the group shows the members, or once the
            // newest member has records (it may have had them, and the
            // oldest may have left, between two looks).
            let (members, newest) = match i {
                2000 => (2, 1),
                3500 => (3, 2),
                _ => (0, 0),
            };
            while members > 0 && !got(&plog, newest) && Instant::now() < deadline {
                let d = a.describe_group("workers").unwrap();
                if d.state == "Stable" && d.members.len() >= members {
                    break;
                }
                p.poll().unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
            p.send(
                "events",
                None,
                Some(&(i % 97).to_le_bytes()),
                i.to_string().as_bytes(),
            )
            .unwrap();
        }
        p.flush(Duration::from_secs(30)).unwrap();
        assert!(p.take_deliveries().iter().all(|d| d.result.is_ok()));
        p_done.store(true, Ordering::SeqCst);
    });
    let all = move |l: &Log| count(l) >= MESSAGES as usize;
    let wait_for = move |l: &Log, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(l) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let mut threads = Vec::new();
    let l = log.clone();
    threads.push(std::thread::spawn(move || {
        run_consumer(0, addr, assignor, l, move |l| {
            (got(l, 0) && got(l, 2)) || all(l)
        });
    }));
    let l = log.clone();
    threads.push(std::thread::spawn(move || {
        wait_for(&l, 1000);
        run_consumer(1, addr, assignor, l, move |l| {
            (got(l, 1) && count(l) >= 4500) || all(l)
        });
    }));
    let l = log.clone();
    threads.push(std::thread::spawn(move || {
        wait_for(&l, 2000);
        run_consumer(2, addr, assignor, l, all);
    }));
    producer.join().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    assert!(produced.load(Ordering::SeqCst));
    let log = log.lock().unwrap();
    let consumers: std::collections::BTreeSet<usize> = log.iter().map(|e| e.0).collect();
    assert_eq!(
        consumers.len(),
        3,
        "all three consumers got partitions ({assignor:?})"
    );
    let mut values: Vec<u32> = log.iter().map(|e| e.3).collect();
    values.sort_unstable();
    let dups = values.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(dups, 0, "no message consumed twice ({assignor:?})");
    assert_eq!(
        values,
        (0..MESSAGES).collect::<Vec<_>>(),
        "every message consumed ({assignor:?})"
    );
    let mut next: BTreeMap<u32, u64> = BTreeMap::new();
    for &(who, p, off, _) in log.iter() {
        let want = next.entry(p).or_insert(0);
        assert_eq!(
            off, *want,
            "partition {p}: consumer {who} read offset {off}, expected {want} (order)"
        );
        *want += 1;
    }
    // Committed offsets are the log ends, and survive a restart.
    drop(b);
    let b = TestBroker::start(dir.path());
    let mut a = admin(b.addr);
    let d = a.describe_group("workers").unwrap();
    assert_eq!(d.offsets.len(), PARTITIONS as usize);
    for o in &d.offsets {
        assert_eq!(o.committed, Some(next[&o.partition]), "{o:?}");
        assert_eq!(o.lag, Some(0));
    }
}

#[test]
fn three_consumers_churn_exactly_once_range() {
    churn(Assignor::Range);
}

#[test]
fn three_consumers_churn_exactly_once_sticky() {
    churn(Assignor::Sticky);
}

#[test]
fn three_consumers_churn_exactly_once_round_robin() {
    churn(Assignor::RoundRobin);
}

#[test]
fn a_member_that_stops_heartbeating_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start(dir.path());
    admin(b.addr)
        .create_topic("events", topic(2, Fsync::Never))
        .unwrap();
    let short = ConsumerConfig {
        session_timeout: Duration::from_millis(300),
        ..consumer_cfg(Assignor::Range)
    };
    let silent = Consumer::subscribe(tcp(), cfg(b.addr), short.clone()).unwrap();
    assert_eq!(silent.assignment().len(), 2);
    // A second member joins; the silent one never heartbeats again, so the
    // rebalance drops it once its session expires and the newcomer gets all.
    let mut live = Consumer::subscribe(tcp(), cfg(b.addr), short).unwrap();
    for _ in 0..40 {
        live.poll(Duration::from_millis(50)).unwrap();
    }
    assert_eq!(
        live.assignment().len(),
        2,
        "the live member owns both partitions"
    );
    let d = admin(b.addr).describe_group("workers").unwrap();
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.state, "Stable");
    drop(silent);
}
