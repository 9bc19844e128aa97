//! `neo serve` as a process: kill -9 while producing with acks=all and
//! fsync=always, restart, and every acknowledged record and committed group
//! offset is there; the client commands work the way kcat/rpk users expect.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use neo_broker::client::{Admin, ClientError, ConnectConfig, Consumer, ConsumerConfig, StartAt};
use neo_broker::protocol::{method, Acks, Fsync, Produce, Produced, TopicConfig};
use neo_broker::records::BatchBuilder;
use neo_transports::tcp::{TcpConfig, TcpTransport};

const NEO: &str = env!("CARGO_BIN_EXE_neo");

struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Serve {
    /// Starts `neo serve` on a free loopback port and waits for its address.
    fn start(dir: &Path) -> Self {
        let mut child = Command::new(NEO)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir)
            .env("NEO_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                eprintln!("[serve] {line}");
                let _ = tx.send(line);
            }
        });
        loop {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve logged no address within 20 s");
            };
            if let Some(a) = line
                .split(" addr=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
            {
                let addr = a.parse().unwrap();
                return Self { child, addr };
            }
        }
    }

    fn neo(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        let mut c = Command::new(NEO)
            .arg("--broker")
            .arg(self.addr.to_string())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = c.wait_with_output().unwrap();
        let s = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        (out.status.success(), s(out.stdout), s(out.stderr))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(addr: SocketAddr) -> ConnectConfig {
    let mut c = ConnectConfig::new(addr);
    c.request_timeout = Duration::from_secs(10);
    c
}

fn tcp() -> TcpTransport {
    TcpTransport::new(TcpConfig::default()).unwrap()
}

fn produce_one(
    a: &mut Admin<TcpTransport>,
    partition: u32,
    value: &[u8],
) -> Result<Produced, ClientError> {
    let mut b = BatchBuilder::new();
    b.push(None, value, 1).unwrap();
    let req = Produce {
        topic: "durable",
        partition,
        acks: Acks::All,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        record_count: 1,
        codec: 0,
        first_timestamp: 1,
        max_timestamp: 1,
        records: b.bytes(),
    };
    a.connection().call(method::PRODUCE, &req)
}

#[test]
fn kill_9_while_producing_keeps_every_acked_record_and_committed_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let addr = serve.addr;
    let cfg = TopicConfig {
        partitions: 3,
        fsync: Fsync::Always,
        ..TopicConfig::default()
    };
    Admin::connect(tcp(), connect(addr))
        .unwrap()
        .create_topic("durable", cfg)
        .unwrap();

    // Three producers (one per partition), acks=all, until the broker dies.
    let acked: Arc<Mutex<Vec<(u32, u64, String)>>> = Arc::default();
    let dead = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..3u32)
        .map(|p| {
            let (acked, dead) = (acked.clone(), dead.clone());
            std::thread::spawn(move || {
                let mut a = Admin::connect(tcp(), connect(addr)).unwrap();
                for i in 0.. {
                    let v = format!("p{p}-{i}");
                    match produce_one(&mut a, p, v.as_bytes()) {
                        Ok(r) => acked.lock().unwrap().push((p, r.base_offset, v)),
                        Err(e) => {
                            assert!(
                                dead.load(Ordering::SeqCst),
                                "produce failed before the kill: {e}"
                            );
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    // A group consumer reads some and commits.
    let mut cc = ConsumerConfig::group("keepers", &["durable"]);
    cc.auto_commit = None;
    let mut c = Consumer::subscribe(tcp(), connect(addr), cc).unwrap();
    let mut consumed = 0;
    while consumed < 200 {
        consumed += c.poll(Duration::from_millis(100)).unwrap().len();
    }
    c.commit().unwrap();
    let committed: Vec<(String, u32)> = c.assignment();
    let positions: Vec<u64> = committed
        .iter()
        .map(|(t, p)| c.position(t, *p).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    dead.store(true, Ordering::SeqCst);
    let mut serve = serve;
    serve.child.kill().unwrap(); // SIGKILL
    serve.child.wait().unwrap();
    for p in producers {
        p.join().unwrap();
    }
    drop(c);
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "only {} records acked before the kill",
        acked.len()
    );

    let serve = Serve::start(dir.path());
    for p in 0..3u32 {
        let mut reader = Consumer::assign(
            tcp(),
            connect(serve.addr),
            ConsumerConfig::default(),
            &[("durable", p, StartAt::Earliest)],
        )
        .unwrap();
        let want: Vec<&(u32, u64, String)> = acked.iter().filter(|a| a.0 == p).collect();
        let mut got = std::collections::BTreeMap::new();
        for _ in 0..200 {
            for r in reader.poll(Duration::from_millis(50)).unwrap() {
                got.insert(r.offset, String::from_utf8(r.value).unwrap());
            }
            if want.iter().all(|a| got.contains_key(&a.1)) {
                break;
            }
        }
        for (_, off, v) in &want {
            assert_eq!(
                got.get(off),
                Some(v),
                "partition {p}: acknowledged offset {off} lost"
            );
        }
    }
    let d = Admin::connect(tcp(), connect(serve.addr))
        .unwrap()
        .describe_group("keepers")
        .unwrap();
    for ((t, p), pos) in committed.iter().zip(positions) {
        let o = d
            .offsets
            .iter()
            .find(|o| &o.topic == t && o.partition == *p)
            .expect("committed offset kept");
        assert_eq!(o.committed, Some(pos));
    }
}

#[test]
fn cli_topics_produce_consume_groups() {
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(dir.path());
    let (ok, out, err) = s.neo(
        &["topics", "create", "cli", "-p", "2", "-c", "fsync=always"],
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("2 partition(s), fsync always"), "{out}");
    let (ok, _, err) = s.neo(&["topics", "create", "cli"], "");
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = s.neo(&["topics", "create", "bad", "-c", "fsync=sometimes"], "");
    assert!(!ok && err.contains("fsync"), "{err}");
    let (ok, _, err) = s.neo(
        &[
            "produce", "cli", "-K", ":", "-p", "1", "-H", "trace=t1", "-H", "flag",
        ],
        "k1:v1\nk2:v2\nplain\n",
    );
    assert!(ok, "{err}");
    assert!(err.contains("3 of 3 records acknowledged"), "{err}");
    let (ok, out, err) = s.neo(
        &[
            "consume",
            "cli",
            "-p",
            "1",
            "-c",
            "3",
            "-f",
            "%o %k=%s [%h]\\n",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "0 k1=v1 [trace=t1,flag]\n1 k2=v2 [trace=t1,flag]\n2 =plain [trace=t1,flag]\n"
    );
    let (ok, out, _) = s.neo(&["consume", "cli", "-p", "1", "-o", "2", "-c", "1"], "");
    assert!(ok);
    assert_eq!(out, "plain\n");
    // A group reads each record once across invocations.
    let (ok, out1, _) = s.neo(&["consume", "cli", "-g", "readers", "-c", "2"], "");
    assert!(ok);
    let (ok, out2, _) = s.neo(
        &["consume", "cli", "-g", "readers", "--idle-exit-ms", "300"],
        "",
    );
    assert!(ok);
    let mut all: Vec<&str> = out1.lines().chain(out2.lines()).collect();
    all.sort();
    assert_eq!(all, ["plain", "v1", "v2"]);
    let (ok, out, _) = s.neo(&["groups", "describe", "readers"], "");
    assert!(
        ok && out.contains("cli") && out.contains("state Empty"),
        "{out}"
    );
    let (ok, out, _) = s.neo(&["topics", "describe", "cli"], "");
    assert!(ok && out.contains("fsync              always"), "{out}");
    let (ok, _, err) = s.neo(&["produce", "nope"], "x\n");
    assert!(!ok && err.contains("unknown topic `nope`"), "{err}");
    let (ok, _, _) = s.neo(&["topics", "delete", "cli"], "");
    assert!(ok);
    let (ok, out, _) = s.neo(&["topics", "list"], "");
    assert!(ok && out.is_empty(), "{out}");
}
