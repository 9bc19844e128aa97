//! A server calling out from its own poll loop (`Server::connect`/`call`):
//! answers, error answers, and closes reach the outbound handler, while the
//! same server keeps serving calls made to it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestServer;
use neo_transports::rpc::{
    Client, ClientConfig, ErrorCode, MethodId, Outcome, RpcError, Server, ServerConfig,
};
use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::transport::CloseReason;
use neo_transports::{ConnId, Transport};

#[derive(Debug, PartialEq)]
enum Seen {
    Connected,
    Answer(u64, Vec<u8>),
    Failed(u64, ErrorCode),
    Closed(CloseReason),
}

type Log = Arc<Mutex<Vec<(ConnId, Seen)>>>;

fn caller() -> (Server<TcpTransport>, Log) {
    let mut s = Server::new(
        TcpTransport::new(TcpConfig::default()).unwrap(),
        ServerConfig::default(),
    );
    let log: Log = Arc::default();
    let l = log.clone();
    s.on_outbound(move |conn, o| {
        let seen = match o {
            Outcome::Connected => Seen::Connected,
            Outcome::Answer { call, body } => Seen::Answer(call, body.to_vec()),
            Outcome::Failed {
                call,
                error: RpcError::Remote { code, .. },
            } => Seen::Failed(call, code),
            Outcome::Failed { call, error } => panic!("call {call}: unexpected {error:?}"),
            Outcome::Closed(r) => Seen::Closed(r),
        };
        l.lock().unwrap().push((conn, seen));
    });
    (s, log)
}

/// Polls `s` until `log` holds `n` outcomes (bounded at 10 s).
fn poll_until(s: &mut Server<TcpTransport>, log: &Log, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "outcomes so far: {:?}",
            log.lock().unwrap()
        );
        s.poll_once().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn answers_errors_and_closes_reach_the_outbound_handler() {
    let callee = TestServer::start(TcpConfig::default(), ServerConfig::default(), |_| {});
    let (mut s, log) = caller();
    let echo = MethodId::new("echo", "Echo");
    let conn = s.connect(callee.addr).unwrap();
    // Calls made before the connection is up are queued, and answered.
    let a = s
        .call(conn, echo, b"first", Duration::from_secs(5))
        .unwrap();
    let big: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    let b = s.call(conn, echo, &big, Duration::from_secs(5)).unwrap();
    let c = s
        .call(
            conn,
            MethodId::new("no", "Such"),
            b"",
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(a < b && b < c, "call ids are distinct and increasing");
    poll_until(&mut s, &log, 4);
    let got: Vec<Seen> = log
        .lock()
        .unwrap()
        .drain(..)
        .map(|(k, x)| {
            assert_eq!(k, conn);
            x
        })
        .collect();
    assert_eq!(
        got,
        vec![
            Seen::Connected,
            Seen::Answer(a, b"first".to_vec()),
            Seen::Answer(b, big),
            Seen::Failed(c, ErrorCode::UnknownMethod),
        ]
    );
    s.close(conn);
    poll_until(&mut s, &log, 1);
    assert_eq!(
        log.lock().unwrap()[0],
        (conn, Seen::Closed(CloseReason::Local))
    );
    assert!(matches!(
        s.call(conn, echo, b"late", Duration::from_secs(1)),
        Err(RpcError::NotConnected)
    ));
    // The callee served two calls and refused one to an unknown method.
    let stats = callee.stop();
    assert_eq!(stats.calls, 2);
    assert_eq!(stats.unknown_methods, 1);
}

#[test]
fn a_refused_connect_and_a_vanished_peer_are_reported_closed() {
    let (mut s, log) = caller();
    // A port nothing listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let conn = s.connect(addr).unwrap();
    poll_until(&mut s, &log, 1);
    assert!(matches!(
        log.lock().unwrap()[0],
        (k, Seen::Closed(CloseReason::ConnectFailed(_))) if k == conn
    ));
    log.lock().unwrap().clear();

    let callee = TestServer::start(TcpConfig::default(), ServerConfig::default(), |_| {});
    let conn = s.connect(callee.addr).unwrap();
    poll_until(&mut s, &log, 1);
    assert_eq!(log.lock().unwrap()[0], (conn, Seen::Connected));
    callee.stop();
    poll_until(&mut s, &log, 2);
    let (k, last) = log.lock().unwrap().pop().unwrap();
    assert_eq!(k, conn);
    assert!(
        matches!(
            last,
            Seen::Closed(CloseReason::PeerClosed | CloseReason::Reset)
        ),
        "{last:?}"
    );
}

#[test]
fn a_caller_keeps_serving_and_requests_on_its_outbound_connections_are_refused() {
    // The caller serves echo to a client while it calls out.
    let callee = TestServer::start(TcpConfig::default(), ServerConfig::default(), |_| {});
    let (mut s, log) = caller();
    s.register("echo", "Echo", |call| {
        let body = call.body();
        call.reply(body)?;
        Ok(())
    })
    .unwrap();
    let own = s
        .transport()
        .listen("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let conn = s.connect(callee.addr).unwrap();
    let echo = MethodId::new("echo", "Echo");
    let out = s.call(conn, echo, b"out", Duration::from_secs(5)).unwrap();
    let t = std::thread::spawn(move || {
        let mut c = Client::new(
            TcpTransport::new(TcpConfig::default()).unwrap(),
            ClientConfig::default(),
        );
        let k = c.connect(own, Duration::from_secs(5)).unwrap();
        c.call(k, echo, b"in", Some(Duration::from_secs(5)))
            .unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t.is_finished() || log.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline);
        s.poll_once().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(t.join().unwrap(), b"in");
    assert_eq!(
        log.lock().unwrap()[1],
        (conn, Seen::Answer(out, b"out".to_vec()))
    );
    assert_eq!(s.stats().calls, 1, "only the client's call was served");
    callee.stop();
}
