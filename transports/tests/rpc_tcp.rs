//! Neo RPC over the TCP transport on loopback: answers, typed errors,
//! deadlines, credits, large messages.

mod common;

use std::time::Duration;

use common::TestServer;
use neo_transports::rpc::{
    Client, ClientConfig, ErrorCode, MethodId, RpcError, ServerConfig, ServiceError,
};
use neo_transports::tcp::{TcpConfig, TcpTransport};

const T: Option<Duration> = Some(Duration::from_secs(10));

fn client(cfg: ClientConfig) -> Client<TcpTransport> {
    Client::new(TcpTransport::new(TcpConfig::default()).unwrap(), cfg)
}

#[test]
fn echo_round_trips_bodies_of_every_size() {
    let server = TestServer::start(TcpConfig::default(), ServerConfig::default(), |_| {});
    let mut c = client(ClientConfig::default());
    let conn = c.connect(server.addr, Duration::from_secs(5)).unwrap();
    let echo = MethodId::new("echo", "Echo");
    for size in [0usize, 1, 64, 4095, 65_536, 1 << 20, 5 << 20] {
        let body: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let got = c.call(conn, echo, &body, T).unwrap();
        assert_eq!(got.len(), size);
        assert!(got == body, "echo of {size} bytes differs");
    }
    let stats = server.stop();
    assert_eq!(stats.calls, 7);
    assert_eq!(stats.malformed_frames, 0);
}

#[test]
fn unknown_method_and_handler_errors_come_back_typed() {
    let server = TestServer::start(TcpConfig::default(), ServerConfig::default(), |s| {
        s.register("test", "Fail", |_| {
            Err(ServiceError::application("no such topic"))
        })
        .unwrap();
        s.register("test", "Silent", |_| Ok(())).unwrap();
        assert!(
            s.register("test", "Fail", |_| Ok(())).is_err(),
            "duplicate name refused"
        );
    });
    let mut c = client(ClientConfig::default());
    let conn = c.connect(server.addr, Duration::from_secs(5)).unwrap();
    let err = c
        .call(conn, MethodId::new("nope", "Nope"), b"x", T)
        .unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::Remote {
                code: ErrorCode::UnknownMethod,
                ..
            }
        ),
        "{err:?}"
    );
    let err = c
        .call(conn, MethodId::new("test", "Fail"), b"x", T)
        .unwrap_err();
    assert_eq!(
        err,
        RpcError::Remote {
            code: ErrorCode::Application,
            message: "no such topic".into()
        }
    );
    let err = c
        .call(conn, MethodId::new("test", "Silent"), b"x", T)
        .unwrap_err();
    assert!(
        matches!(
            err,
            RpcError::Remote {
                code: ErrorCode::Internal,
                ..
            }
        ),
        "{err:?}"
    );
    // The connection still serves after errors.
    assert_eq!(
        c.call(conn, MethodId::new("echo", "Echo"), b"ok", T)
            .unwrap(),
        b"ok"
    );
}

#[test]
fn deadline_expires_when_the_server_never_answers() {
    // A handler that defers and never completes: the call must end with
    // DeadlineExceeded on the client, not hang.
    let server = TestServer::start(TcpConfig::default(), ServerConfig::default(), |s| {
        let mut parked = Vec::new();
        s.register("test", "Park", move |call| {
            parked.push(call.defer());
            Ok(())
        })
        .unwrap();
    });
    let mut c = client(ClientConfig::default());
    let conn = c.connect(server.addr, Duration::from_secs(5)).unwrap();
    let err = c
        .call(
            conn,
            MethodId::new("test", "Park"),
            b"",
            Some(Duration::from_millis(30)),
        )
        .unwrap_err();
    assert_eq!(err, RpcError::DeadlineExceeded);
    assert_eq!(c.stats().expired, 1);
    assert_eq!(
        c.call(conn, MethodId::new("echo", "Echo"), b"after", T)
            .unwrap(),
        b"after"
    );
}

#[test]
fn credits_bound_calls_in_flight_on_both_sides() {
    let server = TestServer::start(
        TcpConfig::default(),
        ServerConfig {
            credits: 2,
            ..Default::default()
        },
        |s| {
            let mut parked = Vec::new();
            s.register("test", "Park", move |call| {
                parked.push(call.defer());
                Ok(())
            })
            .unwrap();
        },
    );
    // Client allows 3 so the server's limit is what refuses the third call.
    let mut c = client(ClientConfig {
        credits: 3,
        ..Default::default()
    });
    let conn = c.connect(server.addr, Duration::from_secs(5)).unwrap();
    let park = MethodId::new("test", "Park");
    let a = c.start(conn, park, b"", T).unwrap();
    let b = c.start(conn, park, b"", T).unwrap();
    let third = c.start(conn, park, b"", T).unwrap();
    assert_eq!(
        c.start(conn, park, b"", T),
        Err(RpcError::NoCredit(3)),
        "client-side credit"
    );
    let mut results = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while results.is_empty() && std::time::Instant::now() < deadline {
        c.poll(&mut |id, r| results.push((id, r.map(|b| b.to_vec()))))
            .unwrap();
    }
    assert_eq!(results.len(), 1, "only the third call is answered");
    let (id, r) = &results[0];
    assert_eq!(*id, third);
    assert!(
        matches!(
            r,
            Err(RpcError::Remote {
                code: ErrorCode::Overloaded,
                ..
            })
        ),
        "{r:?}"
    );
    assert_ne!(a, b);
    assert_eq!(c.outstanding(), 2);
}

#[test]
fn closing_the_connection_fails_outstanding_calls() {
    let server = TestServer::start(TcpConfig::default(), ServerConfig::default(), |s| {
        s.register("test", "Hang", |call| {
            let _ = call.defer();
            Ok(())
        })
        .unwrap();
    });
    let mut c = client(ClientConfig::default());
    let conn = c.connect(server.addr, Duration::from_secs(5)).unwrap();
    let id = c
        .start(conn, MethodId::new("test", "Hang"), b"", T)
        .unwrap();
    c.close(conn);
    let mut got = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.is_none() && std::time::Instant::now() < deadline {
        c.poll(&mut |i, r| got = Some((i, r.map(|b| b.to_vec()))))
            .unwrap();
    }
    let (i, r) = got.expect("call finished");
    assert_eq!(i, id);
    assert!(matches!(r, Err(RpcError::ConnectionClosed(_))), "{r:?}");
    assert!(matches!(
        c.start(conn, MethodId::new("echo", "Echo"), b"", T),
        Err(RpcError::ConnectionClosed(_))
    ));
}

#[test]
fn connect_to_a_closed_port_fails_cleanly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = client(ClientConfig::default());
    let err = c.connect(port, Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, RpcError::ConnectionClosed(_)), "{err:?}");
}
