//! One server poll loop serves 1 000 concurrent TCP connections, each
//! completing RPCs, with every connection's calls in flight at the same time.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::TestServer;
use neo_transports::rpc::{Client, ClientConfig, MethodId, ServerConfig};
use neo_transports::tcp::{TcpConfig, TcpTransport};

const CONNS: usize = 1000;
const CALLS_PER_CONN: usize = 5;

/// Raises the soft open-files limit to the hard limit: 1 000 connections need
/// 2 000 descriptors in this one process (client and server ends).
fn raise_nofile() {
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
    if soft < 4096 {
        rlimit::Resource::NOFILE
            .set(hard.min(65_536), hard)
            .unwrap();
    }
    let (soft, _) = rlimit::Resource::NOFILE.get().unwrap();
    assert!(
        soft as usize >= 2 * CONNS + 64,
        "need {} descriptors, limit is {soft}",
        2 * CONNS + 64
    );
}

#[test]
fn one_poll_loop_serves_1000_concurrent_connections() {
    raise_nofile();
    let server = TestServer::start(TcpConfig::default(), ServerConfig::default(), |_| {});
    let mut c = Client::new(
        TcpTransport::new(TcpConfig::default()).unwrap(),
        ClientConfig::default(),
    );
    let conns: Vec<_> = (0..CONNS)
        .map(|_| c.connect_async(server.addr).unwrap())
        .collect();
    let echo = MethodId::new("echo", "Echo");
    let timeout = Some(Duration::from_secs(60));

    // Every connection has CALLS_PER_CONN calls outstanding at once; each
    // body names its connection and round so answers can be checked.
    let mut expect = HashMap::new();
    for (i, &conn) in conns.iter().enumerate() {
        for round in 0..CALLS_PER_CONN {
            let body = format!("conn {i} round {round}");
            let id = c.start(conn, echo, body.as_bytes(), timeout).unwrap();
            expect.insert(id, body);
        }
    }
    let mut done = 0;
    let mut failures = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !expect.is_empty() && Instant::now() < deadline {
        c.poll(&mut |id, r| match (expect.remove(&id), r) {
            (Some(want), Ok(body)) if body == want.as_bytes() => done += 1,
            (want, r) => failures.push(format!(
                "{id:?}: want {want:?}, got {:?}",
                r.map(|b| b.to_vec())
            )),
        })
        .unwrap();
    }
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(
        done,
        CONNS * CALLS_PER_CONN,
        "{} calls unanswered",
        expect.len()
    );

    // Close every connection; the server sees them all go.
    for conn in conns {
        c.close(conn);
    }
    let t = Instant::now();
    while c.transport().connections() > 0 && t.elapsed() < Duration::from_secs(10) {
        c.poll(&mut |_, _| {}).unwrap();
    }
    let stats = server.stop();
    assert_eq!(stats.connections_accepted, CONNS as u64);
    assert_eq!(stats.calls, (CONNS * CALLS_PER_CONN) as u64);
    println!("connections={CONNS} calls={}", stats.calls);
}
