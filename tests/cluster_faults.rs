//! `cluster_faults`: three brokers (separate processes, own network
//! namespaces) replicating one partition (replication factor 3,
//! min.insync.replicas 2) while an idempotent producer sends at acks=all and
//! a consumer reads from whoever leads. Ten rounds of faults: SIGKILL of the
//! partition leader (then a restart) alternating with an nftables cut of
//! the leader or of a follower (then heal). Afterwards every replica's log
//! is read from disk: every acknowledged message is there exactly once, in
//! order, at the offset its ack named; nothing a consumer read was lost.
//! Prints `rounds=10 acked=N lost=0 duplicated=0` and the time produce took
//! to resume after each leader kill.

mod cluster;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::{cut, heal, is_root, Net, Node};
use neo_broker::client::{
    Admin, ClientError, ConnectConfig, Consumer, ConsumerConfig, Producer, ProducerConfig, StartAt,
};
use neo_broker::protocol::BrokerError;
use neo_broker::replication::wire::{Metadata, MetadataRequest};
use neo_broker::replication::METHOD_METADATA;
use neo_transports::tcp::{TcpConfig, TcpTransport};

const TOPIC: &str = "cf";
const ROUNDS: usize = 10;
const NODES: u64 = 3;

#[test]
fn cluster_faults() {
    match std::env::var("NEO_CF_INNER") {
        Ok(tag) => run(&tag),
        Err(_) if !is_root() => eprintln!(
            "SKIPPED cluster_faults: it needs root (network namespaces, a bridge, nftables); CI runs it as root"
        ),
        Err(_) => {
            // Re-run this test inside the bridge's namespace, where the
            // clients live; the namespaces go when `net` drops.
            let tag = format!("cf{}", std::process::id() % 10_000);
            let net = Net::up(&tag, NODES);
            let status = std::process::Command::new("ip")
                .args(["netns", "exec", &Net::hub(&tag)])
                .arg(std::env::current_exe().unwrap())
                .args(["cluster_faults", "--exact", "--nocapture", "--test-threads=1"])
                .env("NEO_CF_INNER", &tag)
                .status()
                .unwrap();
            drop(net);
            assert!(status.success(), "cluster_faults failed inside its namespaces");
        }
    }
}

fn connect(nodes: &[Node]) -> ConnectConfig {
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr().parse().unwrap()).collect();
    let mut c = ConnectConfig::new(addrs[0]);
    c.bootstrap = addrs[1..].to_vec();
    c.connect_timeout = Duration::from_millis(500);
    c.request_timeout = Duration::from_secs(3);
    c
}

fn tcp() -> TcpTransport {
    TcpTransport::new(TcpConfig::default()).unwrap()
}

/// The partition's leader, epoch and ISR as one broker's metadata says.
fn leadership_at(addr: &str) -> Option<(u64, u32, Vec<u64>)> {
    let mut cc = ConnectConfig::new(addr.parse().ok()?);
    cc.connect_timeout = Duration::from_millis(300);
    cc.request_timeout = Duration::from_secs(1);
    let mut admin = Admin::connect(tcp(), cc).ok()?;
    let md: Metadata = admin
        .connection()
        .call(
            METHOD_METADATA,
            &MetadataRequest {
                topics: vec![TOPIC.into()],
            },
        )
        .ok()?;
    let p = md.topics.first()?.partitions.first()?.clone();
    Some((p.leader?, p.leader_epoch, p.isr))
}

/// The partition's leader and ISR, when every running broker agrees on them.
fn leadership(nodes: &[Node]) -> Option<(u64, Vec<u64>)> {
    let mut seen = None;
    for n in nodes.iter().filter(|n| n.running()) {
        let got = leadership_at(&n.addr())?;
        if seen.as_ref().is_some_and(|s| *s != got) {
            return None;
        }
        seen = Some(got);
    }
    seen.map(|(l, _, isr)| (l, isr))
}

/// Wall-clock time of day (UTC), to line the test's events up with the logs.
fn clock() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let s = t.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        t.subsec_millis()
    )
}

fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (offset, value) pairs read from a partition.
type Records = Vec<(u64, Vec<u8>)>;

/// What the producer side knows: tag -> acked offset, and given-up tags.
#[derive(Default)]
struct Acks {
    acked: BTreeMap<u64, u64>,
    failed: Vec<u64>,
    /// Each ack with the time it arrived.
    last_ack: Option<(u64, Instant)>,
}

struct Load {
    producer: Producer<TcpTransport>,
    next: u64,
    acks: Acks,
}

impl Load {
    /// Sends one message every 2 ms for `d`, reaping acks.
    fn run_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            let value = format!("m{:08}", self.next);
            if self
                .producer
                .send_tagged(TOPIC, Some(0), None, value.as_bytes(), &[], self.next)
                .is_ok()
            {
                self.next += 1;
            }
            self.reap();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn reap(&mut self) {
        if let Err(e) = self.producer.poll() {
            assert!(e.is_retriable(), "producer failed: {e}");
        }
        for d in self.producer.take_deliveries() {
            match d.result {
                Ok((base, _)) => {
                    for (i, tag) in d.tags.iter().enumerate() {
                        self.acks.acked.insert(*tag, base + i as u64);
                        self.acks.last_ack = Some((*tag, Instant::now()));
                    }
                }
                Err(e) => {
                    eprintln!("batch given up: {e}");
                    self.acks.failed.extend(d.tags);
                }
            }
        }
    }

    /// After a leader kill at `since`: the time until the cluster
    /// acknowledges again (the first ack arriving later than 20 ms after
    /// the kill, so none the dead leader sent), and the time until a
    /// message sent after the kill is acknowledged (the first figure plus
    /// draining what the producer queued meanwhile).
    fn resume_time(
        &mut self,
        since: Instant,
        first_tag: u64,
        limit: Duration,
    ) -> (Duration, Duration) {
        let mut resumed = None;
        loop {
            self.run_for(Duration::from_millis(5));
            if let Some((tag, at)) = self.acks.last_ack {
                if resumed.is_none() && at > since + Duration::from_millis(20) {
                    resumed = Some(at.duration_since(since));
                }
                if tag >= first_tag {
                    let drained = at.duration_since(since);
                    return (resumed.unwrap_or(drained), drained);
                }
            }
            assert!(
                since.elapsed() < limit,
                "produce did not resume within {limit:?}"
            );
        }
    }
}

/// Every record of the partition in node `n`'s log on disk: (offset, value).
fn read_replica(n: &Node) -> Records {
    let dir = n.dir.join("topics").join(TOPIC).join("0");
    let (log, _) = neo_storage::Log::open(&dir, neo_storage::LogConfig::default()).unwrap();
    let r = log.reader();
    let mut out = Vec::new();
    let mut at = r.start_offset();
    while at < r.end_offset() {
        let view = r.fetch(at, 1 << 20).unwrap();
        for (h, payload) in view.batches() {
            neo_broker::records::for_each_record(
                payload,
                h.meta.record_count,
                h.base_offset,
                0,
                |rec| out.push((rec.offset, rec.value.to_vec())),
            )
            .unwrap();
            at = h.last_offset() + 1;
        }
    }
    out
}

fn run(tag: &str) {
    let root = tempfile::tempdir().unwrap();
    let mut nodes: Vec<Node> = (1..=NODES)
        .map(|i| Node::new(tag, i, root.path(), NODES))
        .collect();
    for n in nodes.iter_mut() {
        n.start();
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| faults(tag, &mut nodes)));
    if result.is_ok() && std::env::var_os("NEO_CF_KEEP").is_some() {
        eprintln!("cluster_faults: kept {}", root.keep().display());
        return;
    }
    if let Err(panic) = result {
        for n in &nodes {
            eprintln!("{}", n.log_tail());
        }
        for n in nodes.iter_mut() {
            n.kill();
        }
        let kept = root.keep();
        let _ = &kept;
        eprintln!(
            "cluster_faults: data directories and logs kept in {}",
            kept.display()
        );
        std::panic::resume_unwind(panic);
    }
}

fn faults(tag: &str, nodes: &mut [Node]) {
    let cc = connect(nodes);
    wait_for(
        "the cluster to take a topic",
        Duration::from_secs(30),
        || {
            let mut a = Admin::connect(tcp(), cc.clone()).ok()?;
            let cfg = vec![
                ("replication.factor".to_string(), "3".to_string()),
                ("min.insync.replicas".to_string(), "2".to_string()),
            ];
            match a.create_topic_with(TOPIC, Some(1), cfg) {
                Ok(_) | Err(ClientError::Broker(BrokerError::TopicExists(_))) => Some(()),
                Err(e) => {
                    eprintln!("create (retried until the brokers registered): {e}");
                    None
                }
            }
        },
    );
    wait_for("a leader with a full ISR", Duration::from_secs(20), || {
        leadership(nodes).filter(|(_, isr)| isr.len() == 3)
    });
    let pcfg = ProducerConfig {
        delivery_timeout: Duration::from_secs(120),
        retry_backoff: Duration::from_millis(100),
        ..Default::default()
    };
    let producer = wait_for("a producer", Duration::from_secs(10), || {
        Producer::connect(tcp(), cc.clone(), pcfg.clone()).ok()
    });
    let mut load = Load {
        producer,
        next: 0,
        acks: Acks::default(),
    };

    // The consumer: reads from the leader throughout, remembers what it saw.
    let seen: Arc<Mutex<Records>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (seen, stop, cc) = (seen.clone(), stop.clone(), cc.clone());
        std::thread::spawn(move || {
            let mut c = wait_for("a consumer", Duration::from_secs(10), || {
                Consumer::assign(
                    tcp(),
                    cc.clone(),
                    ConsumerConfig::default(),
                    &[(TOPIC, 0, StartAt::Earliest)],
                )
                .ok()
            });
            while !stop.load(Ordering::Relaxed) {
                match c.poll(Duration::from_millis(200)) {
                    Ok(recs) => seen
                        .lock()
                        .unwrap()
                        .extend(recs.into_iter().map(|r| (r.offset, r.value))),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        })
    };

    load.run_for(Duration::from_secs(1));
    let mut resumes = Vec::new();
    for round in 0..ROUNDS {
        let (leader, _) = wait_for("the leader", Duration::from_secs(20), || leadership(nodes));
        println!("round {round} starts at {}", clock());
        if round % 2 == 0 {
            let first_tag = load.next;
            let (t, at) = (Instant::now(), clock());
            nodes[(leader - 1) as usize].kill();
            let (took, drained) = load.resume_time(t, first_tag, Duration::from_secs(30));
            println!(
                "round {round}: SIGKILL leader {leader} at {at}: acks resumed after {took:.2?}; the first message sent after the kill was acked after {drained:.2?}"
            );
            resumes.push(took);
            load.run_for(Duration::from_millis(500));
            nodes[(leader - 1) as usize].start();
        } else {
            // Rounds 1, 5, 9 cut the leader; 3 and 7 a follower.
            let victim = match round % 4 {
                1 => leader,
                _ => leader % NODES + 1,
            };
            cut(tag, victim);
            load.run_for(Duration::from_secs(4));
            heal(tag, victim);
            println!(
                "round {round}: cut node {victim} ({}) for 4 s, healed",
                if victim == leader {
                    "the leader"
                } else {
                    "a follower"
                }
            );
        }
        // Let the cluster recover fully before the next fault.
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            load.run_for(Duration::from_millis(200));
            if leadership(nodes).is_some_and(|(_, isr)| isr.len() == 3) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the ISR did not recover to 3 after round {round}"
            );
        }
    }
    load.producer.flush(Duration::from_secs(60)).expect("flush");
    load.reap();
    stop.store(true, Ordering::Relaxed);
    consumer.join().unwrap();
    // All replicas caught up (ISR 3, and the logs are the same length).
    std::thread::sleep(Duration::from_secs(2));
    for n in nodes.iter_mut() {
        n.stop();
    }

    let acks = &load.acks;
    let mut logs = Vec::new();
    for n in nodes.iter() {
        logs.push((n.id, read_replica(n)));
    }
    let (_, reference) = &logs[0];
    let mut lost = 0;
    let mut duplicated = 0;
    for (id, log) in &logs {
        let mut by_tag: HashMap<u64, Vec<u64>> = HashMap::new();
        for (off, v) in log {
            let tag: u64 = std::str::from_utf8(&v[1..]).unwrap().parse().unwrap();
            by_tag.entry(tag).or_default().push(*off);
        }
        duplicated += by_tag.values().filter(|o| o.len() > 1).count();
        for (tag, off) in &acks.acked {
            match by_tag.get(tag) {
                Some(o) if o == &vec![*off] => {}
                Some(o) => panic!("node {id}: message {tag} acked at offset {off} is at {o:?}"),
                None => lost += 1,
            }
        }
        // In order: acked messages appear in tag order.
        let mut last = None;
        for tag in acks.acked.keys() {
            let o = by_tag.get(tag).map(|v| v[0]);
            if let (Some(prev), Some(o)) = (last, o) {
                assert!(o > prev, "node {id}: message {tag} out of order");
            }
            last = o.or(last);
        }
        assert_eq!(log, reference, "node {id}'s log differs from node 1's");
    }
    let seen = seen.lock().unwrap();
    let on_disk: HashMap<u64, &Vec<u8>> = reference.iter().map(|(o, v)| (*o, v)).collect();
    let read_then_lost = seen
        .iter()
        .filter(|(o, v)| on_disk.get(o) != Some(&v))
        .count();
    println!(
        "consumer read {} records; {} of them are not in the final logs",
        seen.len(),
        read_then_lost
    );
    let worst = resumes.iter().max().copied().unwrap_or_default();
    println!(
        "acks resumed after leader kills in {:?} (worst {worst:.2?})",
        resumes
            .iter()
            .map(|d| format!("{:.2}s", d.as_secs_f64()))
            .collect::<Vec<_>>()
    );
    println!(
        "rounds={ROUNDS} acked={} lost={lost} duplicated={duplicated}",
        acks.acked.len()
    );
    assert!(
        acks.failed.is_empty(),
        "{} messages given up",
        acks.failed.len()
    );
    assert_eq!(lost, 0);
    assert_eq!(duplicated, 0);
    assert_eq!(
        read_then_lost, 0,
        "a consumer read a message that was later lost"
    );
    assert!(acks.acked.len() > 1000, "too few acks to mean anything");
    // Not a timing assertion on a noisy machine: a bound far above the 5 s
    // goal that only a broken failover misses.
    assert!(worst < Duration::from_secs(20), "a failover took {worst:?}");
}
