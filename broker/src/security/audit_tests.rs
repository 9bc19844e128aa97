//! Tests of the audit log.

use std::fs;
use std::os::unix::fs::MetadataExt;

use super::*;

fn peer() -> SocketAddr {
    "10.0.0.7:53124".parse().unwrap()
}

fn authn(i: usize) -> AuditEvent {
    AuditEvent::Authenticate {
        principal: Some(Principal::user(format!("user{i}")).unwrap()),
        peer: peer(),
        listener: Listener::Kafka,
        mechanism: "SCRAM-SHA-256".into(),
        outcome: if i.is_multiple_of(2) {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        reason: "because".into(),
    }
}

#[test]
fn events_from_many_threads_all_land_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    // A small queue, so callers block on it.
    let log = Arc::new(AuditLog::open_with_capacity(&path, 4).unwrap());
    const THREADS: usize = 8;
    const EACH: usize = 250;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let alice = Principal::user("alice").unwrap();
                let decision = Decision {
                    allowed: true,
                    reason: "allowed by Allow User:alice Write Topic:orders (literal)".into(),
                };
                for i in 0..EACH {
                    if i.is_multiple_of(2) {
                        log.record(&authn(t * EACH + i));
                    } else {
                        log.record(&AuditEvent::authorize(
                            &alice,
                            peer(),
                            Listener::Neo,
                            Operation::Write,
                            ResourceType::Topic,
                            "orders",
                            &decision,
                        ));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let log = Arc::into_inner(log).unwrap();
    let stats = log.close();
    assert_eq!(stats.events_written, (THREADS * EACH) as u64);
    assert_eq!(stats.write_errors, 0);

    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), THREADS * EACH);
    let mut users = HashSet::new();
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts = v["ts"].as_str().unwrap();
        // 2025-01-31T09:15:02.123Z
        assert_eq!(ts.len(), 24, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
        humantime::parse_rfc3339(ts).unwrap();
        assert_eq!(v["peer"], "10.0.0.7:53124");
        match v["event"].as_str().unwrap() {
            "authenticate" => {
                for f in ["principal", "listener", "mechanism", "outcome", "reason"] {
                    assert!(v[f].is_string(), "{f} in {line}");
                }
                assert_eq!(v["listener"], "kafka");
                assert_eq!(v["mechanism"], "SCRAM-SHA-256");
                assert!(users.insert(v["principal"].as_str().unwrap().to_owned()));
            }
            "authorize" => {
                assert_eq!(v["principal"], "User:alice");
                assert_eq!(v["listener"], "neo");
                assert_eq!(v["operation"], "Write");
                assert_eq!(v["resource"], "Topic:orders");
                assert_eq!(v["allowed"], true);
                assert!(v["reason"].as_str().unwrap().starts_with("allowed by"));
            }
            other => panic!("event {other}"),
        }
    }
    assert_eq!(
        users.len(),
        THREADS * EACH / 2,
        "every authenticate event landed once"
    );
}

#[test]
fn exact_line_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path).unwrap();
    log.record(&AuditEvent::Authenticate {
        principal: None,
        peer: "[::1]:9092".parse().unwrap(),
        listener: Listener::Neo,
        mechanism: "PLAIN".into(),
        outcome: Outcome::Failure,
        reason: "malformed PLAIN message".into(),
    });
    log.flush();
    // Flushed without closing.
    let text = fs::read_to_string(&path).unwrap();
    let (ts, rest) = text.split_at(33);
    assert!(ts.starts_with("{\"ts\":\"") && ts.ends_with("Z\","), "{ts}");
    assert_eq!(
        rest,
        "\"event\":\"authenticate\",\"principal\":null,\"peer\":\"[::1]:9092\",\"listener\":\"neo\",\"mechanism\":\"PLAIN\",\"outcome\":\"failure\",\"reason\":\"malformed PLAIN message\"}\n"
    );
    assert_eq!(log.stats().events_written, 1);
    // Appends: a second log on the same file keeps the first line.
    drop(log);
    let log = AuditLog::open(&path).unwrap();
    log.record(&authn(0));
    drop(log);
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 2);
}

#[test]
fn disabled_records_nothing() {
    let log = AuditLog::disabled();
    assert!(!log.is_enabled());
    log.record(&authn(1));
    log.flush();
    assert_eq!(log.close(), AuditStats::default());
}

#[cfg(target_os = "linux")]
#[test]
fn write_errors_are_counted() {
    // Writes to /dev/full fail with ENOSPC.
    let log = AuditLog::open_with_capacity("/dev/full", 2).unwrap();
    for i in 0..20 {
        log.record(&authn(i));
    }
    let stats = log.close();
    assert_eq!(stats.events_written, 0);
    assert_eq!(stats.write_errors, 20);
}
