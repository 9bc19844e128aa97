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
    admin: Option<SocketAddr>,
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
                let admin = line
                    .split(" admin=Some(")
                    .nth(1)
                    .and_then(|r| r.split(')').next())
                    .map(|a| a.parse().unwrap());
                return Self { child, addr, admin };
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

/// One HTTP GET; (status code, body).
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |b| b.1).to_string();
    (code, body)
}

/// The value of one sample line (`name{labels} value`) in a scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
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

#[test]
fn admin_metrics_ready_and_health_reflect_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Serve::start(dir.path());
    let admin = s.admin.expect("serve logs its admin address");
    assert_eq!(http_get(admin, "/health").0, 200);
    // Ready once the poll loop serves (it publishes as it starts).
    let mut ready = 0;
    for _ in 0..100 {
        ready = http_get(admin, "/ready").0;
        if ready == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ready, 200);
    let (ok, _, err) = s.neo(&["topics", "create", "m", "-p", "2"], "");
    assert!(ok, "{err}");
    let (ok, _, err) = s.neo(&["produce", "m", "-p", "1"], "a\nbb\nccc\n");
    assert!(ok, "{err}");
    let (ok, _, err) = s.neo(&["consume", "m", "-g", "mg", "-c", "2"], "");
    assert!(ok, "{err}");
    let (code, m) = http_get(admin, "/metrics");
    assert_eq!(code, 200);
    let p1 = "{partition=\"1\",topic=\"m\"}";
    assert_eq!(
        sample(&m, &format!("neo_partition_log_end_offset{p1}")),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, &format!("neo_partition_high_watermark{p1}")),
        Some(3.0)
    );
    assert!(sample(&m, &format!("neo_partition_bytes_in_total{p1}")).unwrap() > 0.0);
    assert!(sample(&m, &format!("neo_partition_bytes_out_total{p1}")).unwrap() > 0.0);
    assert_eq!(
        sample(
            &m,
            "neo_consumer_group_lag{group=\"mg\",partition=\"1\",topic=\"m\"}"
        ),
        Some(1.0),
        "two of three records consumed and committed: {m}"
    );
    assert_eq!(sample(&m, "neo_records_in_total"), Some(3.0));
    assert_eq!(sample(&m, "neo_serving"), Some(1.0));
    assert!(
        sample(
            &m,
            "neo_rpc_handler_duration_seconds_count{method=\"Produce\"}"
        )
        .unwrap()
            >= 1.0,
        "{m}"
    );
    assert!(m.contains("neo_rpc_calls_total{transport=\"tcp\"}"), "{m}");
    assert_eq!(http_get(admin, "/nope").0, 404);
    // SIGTERM: the broker stops serving; the process exits cleanly.
    let pid = s.child.id() as i32;
    Command::new("kill").arg(pid.to_string()).status().unwrap();
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
