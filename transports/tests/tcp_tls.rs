//! TLS 1.3 on the TCP transport: RPC over TLS (small, large, pipelined),
//! mutual TLS and the peer identity, refusals that close only the offending
//! connection with a typed reason, certificate reload, configuration errors.

mod common;
mod tls_support;

use std::collections::HashMap;
use std::time::Duration;

use neo_transports::rpc::{Client, ClientConfig, MethodId, RpcError, ServerConfig};
use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::tls::{
    principal_from_cert, ClientTls, ClientTlsSettings, ServerTls, ServerTlsSettings, TlsError,
};
use neo_transports::transport::{CloseReason, TlsFailure};
use neo_transports::Transport;
use rustls::pki_types::CertificateDer;
use tls_support::{overwrite, pump, rpc_server, Pki, Side};

const T: Option<Duration> = Some(Duration::from_secs(20));

fn echo() -> MethodId {
    MethodId::new("echo", "Echo")
}

fn server_cfg(tls: &ServerTls) -> TcpConfig {
    TcpConfig {
        tls_server: Some(tls.clone()),
        ..Default::default()
    }
}

fn tls_client(tls: ClientTls, cfg: ClientConfig) -> Client<TcpTransport> {
    let tcp = TcpConfig {
        tls_client: Some(tls),
        ..Default::default()
    };
    Client::new(TcpTransport::new(tcp).unwrap(), cfg)
}

fn mtls_settings(pki: &Pki, required: bool) -> ServerTlsSettings {
    ServerTlsSettings {
        client_ca: Some(pki.ca_pem.clone()),
        require_client_cert: required,
        ..pki.server_settings("neo-server")
    }
}

#[test]
fn rpc_echo_over_tls_small_and_4_mib() {
    let pki = Pki::new("test CA");
    let tls = ServerTls::new(&pki.server_settings("neo-server")).unwrap();
    let server = rpc_server(server_cfg(&tls), ServerConfig::default());
    let mut c = tls_client(pki.client(None), ClientConfig::default());
    let conn = c.connect(server.addr, Duration::from_secs(5)).unwrap();
    // The client's peer identity is the server certificate's CN.
    assert_eq!(c.transport().tx().peer_identity(conn), Some("neo-server"));
    for size in [0usize, 1, 100, 16_383, 16_385, 70_000, 4 << 20] {
        let body: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        let got = c.call(conn, echo(), &body, T).unwrap();
        assert!(got == body, "echo of {size} bytes differs");
    }
    assert_eq!(
        c.transport().stats_line(),
        "tls handshakes: 1 completed, 0 failed"
    );
    let stopped = server.stop_all();
    assert_eq!(stopped.rpc.calls, 7);
    assert_eq!(stopped.rpc.malformed_frames, 0);
    assert_eq!(stopped.tls.handshakes_completed, 1);
    assert_eq!(stopped.tls.handshakes_failed, 0);
    assert_eq!(stopped.stats_line, "tls handshakes: 1 completed, 0 failed");
}

#[test]
fn two_hundred_pipelined_calls_over_tls() {
    let pki = Pki::new("test CA");
    let tls = ServerTls::new(&pki.server_settings("neo-server")).unwrap();
    let server = rpc_server(
        server_cfg(&tls),
        ServerConfig {
            credits: 256,
            ..Default::default()
        },
    );
    let mut c = tls_client(
        pki.client(None),
        ClientConfig {
            credits: 256,
            ..Default::default()
        },
    );
    // Calls start before the handshake completes: they wait in the queue.
    let conn = c.connect_async(server.addr).unwrap();
    let mut expected = HashMap::new();
    for i in 0..200usize {
        let body: Vec<u8> = (0..(i * 397) % 50_000).map(|j| (i + j) as u8).collect();
        let id = c.start(conn, echo(), &body, T).unwrap();
        expected.insert(id, body);
    }
    let mut answered = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while answered < 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "{answered} of 200 answered"
        );
        c.poll(&mut |id, r| {
            let body = r.expect("call failed");
            assert!(
                expected.remove(&id).unwrap() == body,
                "answer to another call"
            );
            answered += 1;
        })
        .unwrap();
        c.transport().wait(Some(Duration::from_millis(1))).unwrap();
    }
    assert!(expected.is_empty());
    assert_eq!(server.stop_all().rpc.calls, 200);
}

#[test]
fn mtls_peer_identity_is_the_client_cn() {
    let pki = Pki::new("test CA");
    let tls = ServerTls::new(&mtls_settings(&pki, true)).unwrap();
    let server = rpc_server(server_cfg(&tls), ServerConfig::default());
    let whoami = MethodId::new("id", "WhoAmI");
    let mut alice = tls_client(pki.client(Some("alice")), ClientConfig::default());
    let conn = alice.connect(server.addr, Duration::from_secs(5)).unwrap();
    assert_eq!(alice.call(conn, whoami, b"", T).unwrap(), b"alice");
    let mut bob = tls_client(pki.client(Some("bob")), ClientConfig::default());
    let conn = bob.connect(server.addr, Duration::from_secs(5)).unwrap();
    assert_eq!(bob.call(conn, whoami, b"", T).unwrap(), b"bob");
    drop(server);

    // Without client auth there is no identity; on plain TCP neither.
    let tls = ServerTls::new(&pki.server_settings("neo-server")).unwrap();
    let server = rpc_server(server_cfg(&tls), ServerConfig::default());
    let mut c = tls_client(pki.client(None), ClientConfig::default());
    let conn = c.connect(server.addr, Duration::from_secs(5)).unwrap();
    assert_eq!(c.call(conn, whoami, b"", T).unwrap(), b"");
    let plain = rpc_server(TcpConfig::default(), ServerConfig::default());
    let mut c = Client::new(
        TcpTransport::new(TcpConfig::default()).unwrap(),
        ClientConfig::default(),
    );
    let conn = c.connect(plain.addr, Duration::from_secs(5)).unwrap();
    assert_eq!(c.call(conn, whoami, b"", T).unwrap(), b"");
    assert_eq!(
        c.transport().stats_line(),
        "",
        "no TLS counters without TLS"
    );
}

#[test]
fn optional_client_cert_is_verified_when_offered() {
    let pki = Pki::new("test CA");
    let tls = ServerTls::new(&mtls_settings(&pki, false)).unwrap();
    let server = rpc_server(server_cfg(&tls), ServerConfig::default());
    let whoami = MethodId::new("id", "WhoAmI");
    let mut anon = tls_client(pki.client(None), ClientConfig::default());
    let conn = anon.connect(server.addr, Duration::from_secs(5)).unwrap();
    assert_eq!(anon.call(conn, whoami, b"", T).unwrap(), b"");
    let mut carol = tls_client(pki.client(Some("carol")), ClientConfig::default());
    let conn = carol.connect(server.addr, Duration::from_secs(5)).unwrap();
    assert_eq!(carol.call(conn, whoami, b"", T).unwrap(), b"carol");
}

#[test]
fn client_without_certificate_is_refused_and_server_goes_on() {
    let pki = Pki::new("test CA");
    let tls = ServerTls::new(&mtls_settings(&pki, true)).unwrap();
    let mut server = Side::new(server_cfg(&tls), true);
    let addr = server.t.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let cfg = |tls| TcpConfig {
        tls_client: Some(tls),
        ..Default::default()
    };

    let mut anon = Side::new(cfg(pki.client(None)), false);
    let conn = anon.t.connect(addr).unwrap();
    anon.t.tx().send_parts(conn, &[b"let me in"]).unwrap();
    pump(&mut server, &mut anon, |s, a| {
        s.closed.len() == 1 && a.closed_reason(conn).is_some()
    });
    let (sconn, sreason) = &server.seen.closed[0];
    assert_eq!(*sreason, CloseReason::Tls(TlsFailure::NoPeerCertificate));
    assert!(
        server.seen.messages_on(*sconn).is_empty(),
        "unauthenticated data delivered"
    );
    // The client learns it through the alert (or a reset if the alert is lost).
    let creason = anon.seen.closed_reason(conn).unwrap();
    assert!(
        matches!(
            creason,
            CloseReason::Tls(TlsFailure::AlertReceived(116)) | CloseReason::Reset
        ),
        "{creason:?}"
    );
    assert_eq!(server.t.tls_stats().handshakes_failed, 1);

    // A client with a certificate is served afterwards, as `alice`.
    let mut alice = Side::new(cfg(pki.client(Some("alice"))), false);
    let conn = alice.t.connect(addr).unwrap();
    alice.t.tx().send_parts(conn, &[b"hello"]).unwrap();
    pump(&mut server, &mut alice, |_, a| !a.messages.is_empty());
    assert_eq!(alice.seen.connected, vec![conn]);
    assert_eq!(alice.seen.messages_on(conn), vec![&b"hello"[..]]);
    let (_, msg, id) = server.seen.messages.last().unwrap();
    assert_eq!(
        (msg.as_slice(), id.as_deref()),
        (&b"hello"[..], Some("alice"))
    );
    assert_eq!(server.t.tls_stats().handshakes_completed, 1);
    assert!(server.t.stats_line().contains("1 completed, 1 failed"));
}

#[test]
fn client_certificate_from_another_ca_is_refused() {
    let pki = Pki::new("test CA");
    let rogue = Pki::new("rogue CA");
    let tls = ServerTls::new(&mtls_settings(&pki, true)).unwrap();
    let mut server = Side::new(server_cfg(&tls), true);
    let addr = server.t.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    // Trusts the real server, but its own certificate is the rogue CA's.
    let (cert, key) = rogue.leaf("mallory", "mallory", true);
    let client = ClientTls::new(&ClientTlsSettings {
        ca: pki.ca_pem.clone(),
        cert: Some(cert),
        key: Some(key),
        server_name: None,
    })
    .unwrap();
    let mut mallory = Side::new(
        TcpConfig {
            tls_client: Some(client),
            ..Default::default()
        },
        false,
    );
    let conn = mallory.t.connect(addr).unwrap();
    pump(&mut server, &mut mallory, |s, m| {
        s.closed.len() == 1 && m.closed_reason(conn).is_some()
    });
    assert_eq!(
        server.seen.closed[0].1,
        CloseReason::Tls(TlsFailure::BadPeerCertificate)
    );
}

#[test]
fn client_refuses_a_server_certificate_it_does_not_trust() {
    let pki = Pki::new("test CA");
    let other = Pki::new("other CA");
    let tls = ServerTls::new(&pki.server_settings("neo-server")).unwrap();
    let mut server = Side::new(server_cfg(&tls), true);
    let addr = server.t.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut client = Side::new(
        TcpConfig {
            tls_client: Some(other.client(None)),
            ..Default::default()
        },
        false,
    );
    let conn = client.t.connect(addr).unwrap();
    client.t.tx().send_parts(conn, &[b"secret"]).unwrap();
    pump(&mut server, &mut client, |s, c| {
        s.closed.len() == 1 && c.closed_reason(conn).is_some()
    });
    assert_eq!(
        client.seen.closed_reason(conn),
        Some(&CloseReason::Tls(TlsFailure::BadPeerCertificate))
    );
    assert!(
        client.seen.connected.is_empty(),
        "Connected without a trusted server"
    );
    assert!(server.seen.messages.is_empty());
    assert_eq!(client.t.tls_stats().handshakes_failed, 1);
}

#[test]
fn plain_client_to_tls_server_is_closed_typed_and_server_goes_on() {
    let pki = Pki::new("test CA");
    let tls = ServerTls::new(&pki.server_settings("neo-server")).unwrap();
    let mut server = Side::new(server_cfg(&tls), true);
    let addr = server.t.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut plain = Side::new(TcpConfig::default(), false);
    let conn = plain.t.connect(addr).unwrap();
    plain.t.tx().send_parts(conn, &[b"plain text"]).unwrap();
    pump(&mut server, &mut plain, |s, p| {
        s.closed.len() == 1 && p.closed_reason(conn).is_some()
    });
    assert_eq!(
        server.seen.closed[0].1,
        CloseReason::Tls(TlsFailure::NotTls)
    );
    assert!(server.seen.messages.is_empty());
    assert!(plain.seen.messages.is_empty());

    let mut good = Side::new(
        TcpConfig {
            tls_client: Some(pki.client(None)),
            ..Default::default()
        },
        false,
    );
    let conn = good.t.connect(addr).unwrap();
    good.t.tx().send_parts(conn, &[b"over tls"]).unwrap();
    pump(&mut server, &mut good, |_, g| !g.messages.is_empty());
    assert_eq!(good.seen.messages_on(conn), vec![&b"over tls"[..]]);
}

#[test]
fn tls_client_to_plain_server_fails_typed_and_server_goes_on() {
    let pki = Pki::new("test CA");
    let mut server = Side::new(TcpConfig::default(), true);
    let addr = server.t.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut client = Side::new(
        TcpConfig {
            tls_client: Some(pki.client(None)),
            ..Default::default()
        },
        false,
    );
    let conn = client.t.connect(addr).unwrap();
    client.t.tx().send_parts(conn, &[b"queued"]).unwrap();
    pump(&mut server, &mut client, |s, c| {
        s.closed.len() == 1 && c.closed_reason(conn).is_some()
    });
    // The plain server reads the ClientHello as an absurd length prefix.
    assert!(
        matches!(server.seen.closed[0].1, CloseReason::Oversize { .. }),
        "{:?}",
        server.seen.closed
    );
    let reason = client.seen.closed_reason(conn).unwrap();
    assert!(
        matches!(
            reason,
            CloseReason::Tls(TlsFailure::HandshakeInterrupted) | CloseReason::Reset
        ),
        "{reason:?}"
    );
    assert!(client.seen.connected.is_empty());

    let mut plain = Side::new(TcpConfig::default(), false);
    let conn = plain.t.connect(addr).unwrap();
    plain.t.tx().send_parts(conn, &[b"plain"]).unwrap();
    pump(&mut server, &mut plain, |_, p| !p.messages.is_empty());
    assert_eq!(plain.seen.messages_on(conn), vec![&b"plain"[..]]);
}

#[test]
fn local_close_sends_queued_messages_then_close_notify() {
    let pki = Pki::new("test CA");
    let tls = ServerTls::new(&pki.server_settings("neo-server")).unwrap();
    let mut server = Side::new(server_cfg(&tls), false);
    let addr = server.t.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut client = Side::new(
        TcpConfig {
            tls_client: Some(pki.client(None)),
            ..Default::default()
        },
        false,
    );
    let conn = client.t.connect(addr).unwrap();
    let big = vec![7u8; 3 << 20];
    client.t.tx().send_parts(conn, &[b"first"]).unwrap();
    client.t.tx().send_parts(conn, &[&big]).unwrap();
    // Closed before the handshake even started: still delivered, in order.
    client.t.tx().close(conn);
    pump(&mut server, &mut client, |s, c| {
        s.closed.len() == 1 && c.closed_reason(conn).is_some()
    });
    let sconn = server.seen.closed[0].0;
    let got = server.seen.messages_on(sconn);
    assert_eq!(got.len(), 2, "messages lost");
    assert!(
        got[0] == b"first" && got[1] == big.as_slice(),
        "messages differ"
    );
    // A close_notify, not a cut: the server sees a clean close.
    assert_eq!(server.seen.closed[0].1, CloseReason::PeerClosed);
    assert_eq!(client.seen.closed_reason(conn), Some(&CloseReason::Local));
}

/// The CN of the certificate the server presents now, seen by a blocking
/// rustls client (the way a Kafka-style caller would see it).
fn served_cn(addr: std::net::SocketAddr, client: &ClientTls) -> String {
    let mut tls =
        rustls::ClientConnection::new(client.config(), client.server_name_for(addr)).unwrap();
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    while tls.is_handshaking() {
        tls.complete_io(&mut sock).unwrap();
    }
    let chain = tls.peer_certificates().unwrap();
    principal_from_cert(&chain[0]).unwrap()
}

/// The same, through the transport: a TLS client's peer identity.
fn served_cn_via_transport(addr: std::net::SocketAddr, client: &ClientTls) -> String {
    let mut c = tls_client(client.clone(), ClientConfig::default());
    let conn = c.connect(addr, Duration::from_secs(5)).unwrap();
    let cn = c.transport().tx().peer_identity(conn).unwrap().to_owned();
    // And the connection serves.
    assert_eq!(c.call(conn, echo(), b"x", T).unwrap(), b"x");
    cn
}

#[test]
fn reload_now_serves_the_new_pair_and_keeps_the_old_on_a_bad_one() {
    let pki = Pki::new("test CA");
    let settings = pki.server_settings("server-a");
    let tls = ServerTls::new(&settings).unwrap();
    let server = rpc_server(server_cfg(&tls), ServerConfig::default());
    let client = pki.client(None);
    assert_eq!(served_cn(server.addr, &client), "server-a");

    // A good new pair, picked up on reload_now.
    let (cert_b, key_b) = pki.leaf_pem("server-b", false);
    overwrite(&settings.cert, &cert_b);
    overwrite(&settings.key, &key_b);
    tls.reload_now().unwrap();
    assert_eq!(
        principal_from_cert(&tls.current_cert()).unwrap(),
        "server-b"
    );
    assert_eq!(served_cn(server.addr, &client), "server-b");
    assert_eq!(served_cn_via_transport(server.addr, &client), "server-b");

    // A half-written certificate: refused, the old pair keeps serving.
    overwrite(&settings.cert, &cert_b[..cert_b.len() / 2]);
    let err = tls.reload_now().unwrap_err();
    assert!(matches!(err, TlsError::BadPem { .. }), "{err}");
    assert!(err.to_string().contains("server.crt"), "{err}");
    assert_eq!(served_cn(server.addr, &client), "server-b");

    // A certificate that does not match the key: refused too.
    let (cert_c, _) = pki.leaf_pem("server-c", false);
    overwrite(&settings.cert, &cert_c);
    let err = tls.reload_now().unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
    assert_eq!(served_cn_via_transport(server.addr, &client), "server-b");
    let stopped = server.stop_all();
    assert_eq!(stopped.tls.handshakes_failed, 0);
}

#[test]
fn changed_files_are_picked_up_by_the_once_a_second_check() {
    let pki = Pki::new("test CA");
    let settings = pki.server_settings("server-a");
    let tls = ServerTls::new(&settings).unwrap();
    let server = rpc_server(server_cfg(&tls), ServerConfig::default());
    let client = pki.client(None);
    assert_eq!(served_cn(server.addr, &client), "server-a");

    // A corrupt key: the check after a second refuses it; old pair serves.
    overwrite(&settings.key, "-----BEGIN PRIVATE KEY-----\nnot base64!\n");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(served_cn(server.addr, &client), "server-a");

    // The complete pair: the next check a second later loads it.
    let (cert_b, key_b) = pki.leaf_pem("server-b", false);
    overwrite(&settings.cert, &cert_b);
    overwrite(&settings.key, &key_b);
    // Within the second after the last check nothing is stat'ed.
    assert_eq!(served_cn(server.addr, &client), "server-a");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(served_cn(server.addr, &client), "server-b");
    assert_eq!(served_cn_via_transport(server.addr, &client), "server-b");
}

#[test]
fn configuration_errors_are_typed_and_name_the_file() {
    let pki = Pki::new("test CA");
    let good = pki.server_settings("neo-server");
    let missing = pki.path("nope.pem");
    let err = ServerTls::new(&ServerTlsSettings {
        cert: missing.clone(),
        ..good.clone()
    })
    .unwrap_err();
    assert!(
        matches!(&err, TlsError::Read { path, .. } if *path == missing),
        "{err}"
    );
    assert!(err.to_string().contains("nope.pem"), "{err}");

    // The key file given as the certificate: no certificate in it.
    let err = ServerTls::new(&ServerTlsSettings {
        cert: good.key.clone(),
        ..good.clone()
    })
    .unwrap_err();
    assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");

    // The certificate given as the key: no private key in it.
    let err = ServerTls::new(&ServerTlsSettings {
        key: good.cert.clone(),
        ..good.clone()
    })
    .unwrap_err();
    assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err}");

    // Another pair's key.
    let (_, other_key) = pki.leaf("other", "other", false);
    let err = ServerTls::new(&ServerTlsSettings {
        key: other_key,
        ..good.clone()
    })
    .unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");

    let err = ServerTls::new(&ServerTlsSettings {
        require_client_cert: true,
        ..good.clone()
    })
    .unwrap_err();
    assert!(matches!(err, TlsError::ClientCaMissing), "{err}");

    // A CA bundle whose block is not a certificate.
    let bad_ca = pki.path("bad-ca.pem");
    overwrite(
        &bad_ca,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let err = ServerTls::new(&ServerTlsSettings {
        client_ca: Some(bad_ca.clone()),
        ..good.clone()
    })
    .unwrap_err();
    assert!(matches!(err, TlsError::BadCa { .. }), "{err}");

    let err = ClientTls::new(&ClientTlsSettings {
        ca: pki.ca_pem.clone(),
        cert: Some(good.cert.clone()),
        key: None,
        server_name: None,
    })
    .unwrap_err();
    assert!(
        matches!(err, TlsError::ClientPairIncomplete { .. }),
        "{err}"
    );
    let err = ClientTls::new(&ClientTlsSettings {
        ca: pki.ca_pem.clone(),
        cert: None,
        key: None,
        server_name: Some("not a name!".into()),
    })
    .unwrap_err();
    assert!(matches!(err, TlsError::InvalidServerName { .. }), "{err}");
}

#[test]
fn principal_is_the_subject_cn() {
    let pki = Pki::new("test CA");
    let (cert, _) = pki.leaf("alice", "alice", true);
    let pem = std::fs::read(cert).unwrap();
    use rustls::pki_types::pem::PemObject;
    let der = CertificateDer::from_pem_slice(&pem).unwrap();
    assert_eq!(principal_from_cert(&der).as_deref(), Some("alice"));
    assert_eq!(
        principal_from_cert(&CertificateDer::from(vec![1, 2, 3])),
        None
    );
}

#[test]
fn a_configured_dns_name_is_verified() {
    let pki = Pki::new("test CA");
    let tls = ServerTls::new(&pki.server_settings("neo-server")).unwrap();
    let server = rpc_server(server_cfg(&tls), ServerConfig::default());
    let with_name = |name: &str| {
        ClientTls::new(&ClientTlsSettings {
            ca: pki.ca_pem.clone(),
            cert: None,
            key: None,
            server_name: Some(name.into()),
        })
        .unwrap()
    };
    let mut ok = tls_client(with_name("localhost"), ClientConfig::default());
    let conn = ok.connect(server.addr, Duration::from_secs(5)).unwrap();
    assert_eq!(ok.call(conn, echo(), b"hi", T).unwrap(), b"hi");
    let mut wrong = tls_client(with_name("elsewhere.example"), ClientConfig::default());
    let err = wrong
        .connect(server.addr, Duration::from_secs(5))
        .unwrap_err();
    assert_eq!(
        err,
        RpcError::ConnectionClosed(CloseReason::Tls(TlsFailure::BadPeerCertificate))
    );
}

#[test]
fn a_silent_peer_is_closed_when_the_handshake_times_out() {
    let pki = Pki::new("test CA");
    let tls = ServerTls::new(&pki.server_settings("neo-server")).unwrap();
    let mut server = Side::new(
        TcpConfig {
            tls_handshake_timeout: std::time::Duration::from_millis(200),
            ..server_cfg(&tls)
        },
        true,
    );
    let addr = server.t.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    // Connects and never sends a ClientHello.
    let silent = std::net::TcpStream::connect(addr).unwrap();
    silent
        .set_read_timeout(Some(std::time::Duration::from_millis(50)))
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.seen.closed.is_empty() && std::time::Instant::now() < deadline {
        server.poll();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        server.seen.closed.first().map(|c| &c.1),
        Some(&CloseReason::Tls(TlsFailure::HandshakeTimeout))
    );
    // The socket is closed on the server's side: the peer reads end of stream.
    let mut buf = [0u8; 16];
    let n = std::io::Read::read(&mut &silent, &mut buf);
    assert!(matches!(n, Ok(0)) || n.is_err(), "{n:?}");
    assert_eq!(server.t.tls_stats().handshakes_failed, 1);
}
