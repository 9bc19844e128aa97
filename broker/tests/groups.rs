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

    let p_done = produced.clone();
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
        for i in 0..MESSAGES {
            p.send(
                "events",
                None,
                Some(&(i % 97).to_le_bytes()),
                i.to_string().as_bytes(),
            )
            .unwrap();
            if i % 500 == 0 {
                std::thread::sleep(Duration::from_millis(40)); // spread over the churn
            }
        }
        p.flush(Duration::from_secs(30)).unwrap();
        assert!(p.take_deliveries().iter().all(|d| d.result.is_ok()));
        p_done.store(true, Ordering::SeqCst);
    });
    let all_consumed = move |l: &Log| l.lock().unwrap().len() >= MESSAGES as usize;
    // Consumer 0 from the start, leaves after a while; 1 joins later, leaves
    // later; 2 joins last and stays until everything is consumed.
    let mut threads = Vec::new();
    for (id, start_ms, stop_ms) in [(0usize, 0u64, 700u64), (1, 250, 1300), (2, 500, u64::MAX)] {
        let log = log.clone();
        threads.push(std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(start_ms));
            let t0 = Instant::now();
            run_consumer(id, addr, assignor, log, move |l| {
                (stop_ms != u64::MAX && t0.elapsed() >= Duration::from_millis(stop_ms - start_ms))
                    || all_consumed(l)
            });
        }));
    }
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
