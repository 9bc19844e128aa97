//! Malformed input from one peer gets an error frame or a close — never a
//! panic — and the server keeps serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::TestServer;
use neo_transports::frame::{self, Kind};
use neo_transports::rpc::{Client, ClientConfig, ErrorCode, MethodId, ServerConfig};
use neo_transports::tcp::{TcpConfig, TcpTransport};

const MAX: usize = 1 << 20;

fn server() -> TestServer {
    TestServer::start(
        TcpConfig {
            max_message: MAX,
            ..Default::default()
        },
        ServerConfig::default(),
        |_| {},
    )
}

fn raw(server: &TestServer) -> TcpStream {
    let s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn send_msg(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(&(msg.len() as u32).to_be_bytes()).unwrap();
    s.write_all(msg).unwrap();
}

/// Reads one length-prefixed message; `None` on a clean close.
fn recv_msg(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
        Err(e) => panic!("read failed: {e}"),
    }
    let mut msg = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut msg).unwrap();
    Some(msg)
}

fn request(corr: u64, method: MethodId, body: &[u8]) -> Vec<u8> {
    let mut payload = method.0.to_le_bytes().to_vec();
    payload.extend_from_slice(&0u32.to_le_bytes());
    payload.extend_from_slice(body);
    let mut out = vec![0u8; frame::encoded_len(payload.len())];
    frame::encode_with(&mut out, Kind::Request, 0, corr, |p| {
        p.copy_from_slice(&payload)
    });
    out
}

/// Expects an error frame with `code` for correlation id `corr`.
fn expect_error(s: &mut TcpStream, corr: u64, code: ErrorCode) {
    let msg = recv_msg(s).expect("an error frame, not a close");
    let f = frame::decode(&msg, MAX).expect("server frames decode");
    assert_eq!(f.header.kind, Kind::Error);
    assert_eq!(f.header.correlation, corr);
    assert_eq!(
        u16::from_le_bytes([f.payload[0], f.payload[1]]),
        code as u16
    );
}

fn good_client_still_served(server: &TestServer) {
    let mut c = Client::new(
        TcpTransport::new(TcpConfig::default()).unwrap(),
        ClientConfig::default(),
    );
    let conn = c.connect(server.addr, Duration::from_secs(5)).unwrap();
    let got = c
        .call(
            conn,
            MethodId::new("echo", "Echo"),
            b"still here",
            Some(Duration::from_secs(10)),
        )
        .unwrap();
    assert_eq!(got, b"still here");
}

#[test]
fn bad_checksum_gets_an_error_frame_and_the_connection_goes_on() {
    let server = server();
    let echo = MethodId::new("echo", "Echo");
    let mut s = raw(&server);
    let mut bad = request(11, echo, b"payload");
    *bad.last_mut().unwrap() ^= 1;
    send_msg(&mut s, &bad);
    expect_error(&mut s, 11, ErrorCode::MalformedFrame);
    // Same connection, a good request: answered.
    send_msg(&mut s, &request(12, echo, b"fine"));
    let msg = recv_msg(&mut s).unwrap();
    let f = frame::decode(&msg, MAX).unwrap();
    assert_eq!(
        (f.header.kind, f.header.correlation, f.payload),
        (Kind::Response, 12, &b"fine"[..])
    );
    good_client_still_served(&server);
    assert_eq!(server.stop().malformed_frames, 1);
}

#[test]
fn bad_magic_gets_an_error_frame_then_a_close() {
    let server = server();
    let mut s = raw(&server);
    send_msg(&mut s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_error(&mut s, 0, ErrorCode::MalformedFrame);
    assert_eq!(
        recv_msg(&mut s),
        None,
        "connection closed after a foreign protocol"
    );
    good_client_still_served(&server);
}

#[test]
fn truncated_frames_and_lying_lengths_get_error_frames() {
    let server = server();
    let echo = MethodId::new("echo", "Echo");
    let mut s = raw(&server);
    let good = request(21, echo, b"0123456789");
    // Shorter than the 24-byte header.
    send_msg(&mut s, &good[..10]);
    expect_error(&mut s, 0, ErrorCode::MalformedFrame);
    // Header says 18 payload bytes, message carries 13.
    send_msg(&mut s, &good[..good.len() - 5]);
    expect_error(&mut s, 21, ErrorCode::MalformedFrame);
    // A well-formed frame whose request sub-header is cut short.
    let mut short = vec![0u8; frame::encoded_len(3)];
    frame::encode_with(&mut short, Kind::Request, 0, 22, |p| {
        p.copy_from_slice(b"abc")
    });
    send_msg(&mut s, &short);
    expect_error(&mut s, 22, ErrorCode::MalformedRequest);
    // A response frame sent to a server.
    let mut resp = vec![0u8; frame::encoded_len(1)];
    frame::encode_with(&mut resp, Kind::Response, 0, 23, |p| p[0] = 1);
    send_msg(&mut s, &resp);
    expect_error(&mut s, 23, ErrorCode::MalformedRequest);
    good_client_still_served(&server);
    assert_eq!(server.stop().malformed_frames, 4);
}

#[test]
fn oversize_length_prefix_closes_only_that_connection() {
    let server = server();
    let mut s = raw(&server);
    s.write_all(&((MAX as u32) + 1).to_be_bytes()).unwrap();
    s.write_all(&[0u8; 64]).unwrap();
    assert_eq!(
        recv_msg(&mut s),
        None,
        "closed without reading 1 MiB of junk"
    );
    good_client_still_served(&server);
}

#[test]
fn peer_closing_mid_frame_is_a_clean_close() {
    let server = server();
    for cut in [1usize, 3, 4, 10, 30] {
        let mut s = raw(&server);
        let mut msg = 100u32.to_be_bytes().to_vec();
        msg.extend_from_slice(&request(31, MethodId::new("echo", "Echo"), &[7u8; 72]));
        s.write_all(&msg[..cut]).unwrap();
        drop(s);
    }
    good_client_still_served(&server);
    let stats = server.stop();
    assert_eq!(stats.calls, 1, "only the good client's call ran");
    assert!(stats.connections_closed >= 5, "{stats:?}");
}

#[test]
fn random_garbage_never_takes_the_server_down() {
    use rand::{Rng, SeedableRng};
    let seed = 0x5eed_u64;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let server = server();
    for _ in 0..50 {
        let mut s = raw(&server);
        let n = rng.gen_range(0..200);
        let junk: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
        // Either framed garbage or raw garbage.
        if rng.gen_bool(0.5) {
            send_msg(&mut s, &junk);
        } else {
            s.write_all(&junk).unwrap();
        }
    }
    good_client_still_served(&server);
    println!("seed={seed}");
}
