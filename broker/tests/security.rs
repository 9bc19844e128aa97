//! The Neo protocol behind security, over real TCP sockets: SASL (SCRAM
//! and PLAIN) over `Broker/Authenticate`, authentication required, ACLs
//! (deny by default, super users, lists filtered, a changed ACL file picked
//! up without a restart), every decision in the audit log, and a produce
//! quota that holds answers without losing any. Kafka clients against the
//! same checks are in ci/security.sh.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::{tcp, topic, TestBroker};
use neo_broker::client::{
    Admin, ClientAuth, ClientError, ConnectConfig, Consumer, ConsumerConfig, Producer,
    ProducerConfig, StartAt,
};
use neo_broker::protocol::{BrokerError, Fsync};
use neo_broker::security::*;
use neo_transports::tcp::TcpTransport;

const USERS: [&str; 3] = ["admin", "alice", "bob"];

fn security(dir: &Path, quotas: QuotaConfig) -> (SecurityConfig, std::path::PathBuf) {
    let creds = dir.join("credentials.json");
    let mut store = CredentialStore::empty(&creds);
    for u in USERS {
        store.upsert(u, &format!("{u}-pw"), 4096).unwrap();
    }
    store.save().unwrap();
    let acls = dir.join("acls.json");
    let mut a = AclStore::empty(&acls);
    for text in [
        "Allow User:alice Write Topic:t",
        "Allow User:alice Read Topic:t",
        "Allow User:alice Read Group:g (prefixed)",
    ] {
        a.add(text.parse().unwrap()).unwrap();
    }
    a.save().unwrap();
    let cfg = SecurityConfig {
        credentials: Some(creds),
        mechanisms: SaslMechanism::ALL.to_vec(),
        kafka_sasl: false,
        neo_auth: true,
        acls: Some(acls.clone()),
        super_users: vec!["User:admin".parse().unwrap()],
        audit_log: Some(dir.join("audit.jsonl")),
        quotas,
    };
    (cfg, acls)
}

fn as_user(addr: std::net::SocketAddr, user: &str, pw: &str, m: SaslMechanism) -> ConnectConfig {
    let mut c = common::cfg(addr);
    c.auth = Some(ClientAuth {
        mechanism: m,
        user: user.into(),
        password: pw.into(),
    });
    c
}

fn scram(addr: std::net::SocketAddr, user: &str) -> ConnectConfig {
    as_user(
        addr,
        user,
        &format!("{user}-pw"),
        SaslMechanism::Scram(Mechanism::ScramSha256),
    )
}

fn broker_err<T: std::fmt::Debug>(r: Result<T, ClientError>) -> BrokerError {
    match r {
        Err(ClientError::Broker(e)) => e,
        other => panic!("expected a typed broker error, got {other:?}"),
    }
}

fn produce(cfg: ConnectConfig, topic: &str, values: &[&str]) -> Result<(), ClientError> {
    let mut p = Producer::connect(tcp(), cfg, ProducerConfig::default())?;
    for v in values {
        p.send(topic, Some(0), None, v.as_bytes())?;
    }
    p.flush(Duration::from_secs(20))?;
    for d in p.take_deliveries() {
        d.result?;
    }
    Ok(())
}

/// Reads partition 0 of `topic` as `user` until `want` records came (or
/// 20 s of polls passed); returns how many came.
fn read_all(addr: std::net::SocketAddr, user: &str, topic: &str, want: usize) -> usize {
    let mut c = Consumer::assign(
        tcp(),
        scram(addr, user),
        ConsumerConfig::default(),
        &[(topic, 0, StartAt::Earliest)],
    )
    .unwrap();
    let mut n = 0;
    for _ in 0..200 {
        if n >= want {
            break;
        }
        n += c.poll(Duration::from_millis(100)).unwrap().len();
    }
    n
}

/// A broker behind `quotas` with topic `t` created by the super user.
fn quota_broker(dir: &Path, quotas: QuotaConfig) -> (Arc<Security>, TestBroker) {
    let (cfg, _) = security(dir, quotas);
    let sec = Arc::new(Security::open(&cfg).unwrap());
    let b = TestBroker::start_secured(&dir.join("data"), sec.clone());
    let mut admin = Admin::connect(tcp(), scram(b.addr, "admin")).unwrap();
    admin.create_topic("t", topic(1, Fsync::Never)).unwrap();
    (sec, b)
}

#[test]
fn authentication_acls_and_audit_on_the_neo_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, acl_path) = security(dir.path(), QuotaConfig::default());
    let sec = Arc::new(Security::open(&cfg).unwrap());
    let b = TestBroker::start_secured(&dir.path().join("data"), sec.clone());

    // No credentials: every broker call is refused, typed.
    let mut anon = Admin::connect(tcp(), common::cfg(b.addr)).unwrap();
    assert!(matches!(
        broker_err(anon.list_topics()),
        BrokerError::Authentication(_)
    ));
    // A wrong password: the connection is not made.
    let bad = as_user(
        b.addr,
        "alice",
        "nope",
        SaslMechanism::Scram(Mechanism::ScramSha256),
    );
    match Admin::<TcpTransport>::connect(tcp(), bad) {
        Err(ClientError::Broker(BrokerError::Authentication(m))) => {
            assert!(m.contains("invalid credentials"), "{m}")
        }
        other => panic!("wrong password: {:?}", other.map(|_| ())),
    }
    // The super user (SCRAM-SHA-512) creates topics; alice may not.
    let mut admin = Admin::connect(
        tcp(),
        as_user(
            b.addr,
            "admin",
            "admin-pw",
            SaslMechanism::Scram(Mechanism::ScramSha512),
        ),
    )
    .unwrap();
    admin.create_topic("t", topic(1, Fsync::Never)).unwrap();
    admin
        .create_topic("secret", topic(1, Fsync::Never))
        .unwrap();
    let mut alice = Admin::connect(tcp(), scram(b.addr, "alice")).unwrap();
    assert!(matches!(
        broker_err(alice.create_topic("mine", topic(1, Fsync::Never))),
        BrokerError::NotAuthorized { .. }
    ));
    // Lists show only what the principal may describe.
    assert_eq!(alice.list_topics().unwrap(), vec!["t"]);
    assert_eq!(admin.list_topics().unwrap(), vec!["secret", "t"]);

    // alice writes and reads t; PLAIN works too.
    produce(scram(b.addr, "alice"), "t", &["a1", "a2"]).unwrap();
    produce(
        as_user(b.addr, "alice", "alice-pw", SaslMechanism::Plain),
        "t",
        &["a3"],
    )
    .unwrap();
    assert_eq!(read_all(b.addr, "alice", "t", 3), 3);
    // bob has no ACL: produce and fetch are refused.
    let denied = produce(scram(b.addr, "bob"), "t", &["b1"]);
    assert!(
        matches!(&denied, Err(ClientError::Broker(BrokerError::NotAuthorized { principal, .. })) if principal == "User:bob"),
        "{denied:?}"
    );
    let fetch = Consumer::assign(
        tcp(),
        scram(b.addr, "bob"),
        ConsumerConfig::default(),
        &[("t", 0, StartAt::Earliest)],
    )
    .and_then(|mut c| c.poll(Duration::from_millis(100)));
    assert!(
        matches!(
            &fetch,
            Err(ClientError::Broker(BrokerError::NotAuthorized { .. }))
        ),
        "{fetch:?}"
    );

    // Granting bob in the ACL file reaches the running broker.
    let mut store = AclStore::load(&acl_path).unwrap();
    store
        .add("Allow User:bob Write Topic:t".parse().unwrap())
        .unwrap();
    store.save().unwrap();
    std::thread::sleep(watched::RELOAD_CHECK_INTERVAL + Duration::from_millis(200));
    produce(scram(b.addr, "bob"), "t", &["b2"]).unwrap();

    // Every decision and authentication is in the audit log.
    drop((admin, alice, anon));
    b.stop();
    sec.audit.flush();
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |f: &dyn Fn(&serde_json::Value) -> bool| lines.iter().any(f);
    // (The producer asks Describe first; bob has nothing, so that is denied.)
    assert!(has(&|l| l["event"] == "authorize"
        && l["principal"] == "User:bob"
        && l["resource"] == "Topic:t"
        && l["allowed"] == false));
    assert!(has(&|l| l["event"] == "authorize"
        && l["principal"] == "User:bob"
        && l["operation"] == "Write"
        && l["allowed"] == true));
    assert!(has(&|l| l["event"] == "authorize"
        && l["principal"] == "User:alice"
        && l["resource"] == "Cluster:kafka-cluster"
        && l["allowed"] == false));
    assert!(has(&|l| l["event"] == "authenticate"
        && l["outcome"] == "failure"
        && l["mechanism"] == "SCRAM-SHA-256"));
    assert!(has(&|l| l["event"] == "authenticate"
        && l["outcome"] == "success"
        && l["mechanism"] == "PLAIN"
        && l["principal"] == "User:alice"));
    assert!(lines.iter().all(|l| l["listener"] == "neo"));
    assert!(sec.counters.authz_denied[1].load(Ordering::Relaxed) >= 3);
}

#[test]
fn a_produce_quota_throttles_without_losing_records() {
    let dir = tempfile::tempdir().unwrap();
    let quotas = QuotaConfig {
        produce_bytes_per_sec: Some(100_000),
        ..QuotaConfig::default()
    };
    let (sec, b) = quota_broker(dir.path(), quotas);
    // 300 KB at 100 KB/s: answers are held, never refused.
    let value = "v".repeat(1000);
    let values: Vec<&str> = (0..300).map(|_| value.as_str()).collect();
    produce(scram(b.addr, "alice"), "t", &values).unwrap();
    assert!(
        sec.counters.throttle_us[0].load(Ordering::Relaxed) > 0,
        "no throttle recorded"
    );
    assert_eq!(read_all(b.addr, "alice", "t", 300), 300);
}

#[test]
fn a_fetch_quota_throttles_without_losing_records() {
    let dir = tempfile::tempdir().unwrap();
    let quotas = QuotaConfig {
        fetch_bytes_per_sec: Some(100_000),
        ..QuotaConfig::default()
    };
    let (sec, b) = quota_broker(dir.path(), quotas);
    let value = "f".repeat(1000);
    let values: Vec<&str> = (0..300).map(|_| value.as_str()).collect();
    produce(scram(b.addr, "alice"), "t", &values).unwrap();
    assert_eq!(sec.counters.throttle_us[0].load(Ordering::Relaxed), 0);
    // Reading 300 KB at 100 KB/s: fetch answers are held, then delivered.
    assert_eq!(read_all(b.addr, "alice", "t", 300), 300);
    assert!(sec.counters.throttle_us[1].load(Ordering::Relaxed) > 0);
}
