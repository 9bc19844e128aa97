//! The TCP backend on its own: message boundaries, close reasons, back-pressure.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::transport::CloseReason;
use neo_transports::{ConnId, Event, SendError, Transport, Tx};

/// What a test sink saw, owned.
#[derive(Debug, PartialEq)]
enum Seen {
    Accepted(ConnId),
    Message(ConnId, Vec<u8>),
    Closed(ConnId, CloseReason),
    Connected(ConnId),
}

fn pump(t: &mut TcpTransport, seen: &mut Vec<Seen>, until: impl Fn(&[Seen]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !until(seen) {
        assert!(Instant::now() < deadline, "timed out; saw {seen:?}");
        t.poll(&mut |ev: Event<'_>, _tx: &mut dyn Tx| {
            seen.push(match ev {
                Event::Accepted { conn, .. } => Seen::Accepted(conn),
                Event::Connected { conn } => Seen::Connected(conn),
                Event::Message { conn, data } => Seen::Message(conn, data.to_vec()),
                Event::Closed { conn, reason } => Seen::Closed(conn, reason),
            })
        })
        .unwrap();
        t.wait(Some(Duration::from_millis(1))).unwrap();
    }
}

fn listener(cfg: TcpConfig) -> (TcpTransport, std::net::SocketAddr) {
    let mut t = TcpTransport::new(cfg).unwrap();
    let addr = t.listen("127.0.0.1:0".parse().unwrap()).unwrap();
    (t, addr)
}

fn closed_reason(seen: &[Seen]) -> Option<&CloseReason> {
    seen.iter().find_map(|s| match s {
        Seen::Closed(_, r) => Some(r),
        _ => None,
    })
}

#[test]
fn messages_split_and_coalesced_by_tcp_arrive_whole() {
    let (mut t, addr) = listener(TcpConfig {
        read_buffer: 8,
        ..Default::default()
    });
    let mut s = TcpStream::connect(addr).unwrap();
    // Three messages written as one byte stream cut at awkward places.
    let mut stream = Vec::new();
    for m in [&b"first"[..], b"", &[9u8; 100]] {
        stream.extend_from_slice(&(m.len() as u32).to_be_bytes());
        stream.extend_from_slice(m);
    }
    for chunk in stream.chunks(7) {
        s.write_all(chunk).unwrap();
        s.flush().unwrap();
    }
    let mut seen = Vec::new();
    pump(&mut t, &mut seen, |s| {
        s.iter().filter(|e| matches!(e, Seen::Message(..))).count() == 3
    });
    let msgs: Vec<_> = seen
        .iter()
        .filter_map(|e| {
            if let Seen::Message(_, m) = e {
                Some(m.clone())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(msgs, vec![b"first".to_vec(), vec![], vec![9u8; 100]]);
}

#[test]
fn close_reasons_are_reported() {
    let (mut t, addr) = listener(TcpConfig {
        max_message: 1000,
        ..Default::default()
    });

    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&50u32.to_be_bytes()).unwrap();
    s.write_all(&[1u8; 20]).unwrap();
    drop(s);
    let mut seen = Vec::new();
    pump(&mut t, &mut seen, |s| closed_reason(s).is_some());
    assert_eq!(
        closed_reason(&seen),
        Some(&CloseReason::Truncated { pending: 24 })
    );

    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&5000u32.to_be_bytes()).unwrap();
    let mut seen = Vec::new();
    pump(&mut t, &mut seen, |s| closed_reason(s).is_some());
    assert_eq!(
        closed_reason(&seen),
        Some(&CloseReason::Oversize {
            len: 5000,
            max: 1000
        })
    );
    let mut buf = [0u8; 1];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "server closed the socket");

    let s = TcpStream::connect(addr).unwrap();
    drop(s);
    let mut seen = Vec::new();
    pump(&mut t, &mut seen, |s| closed_reason(s).is_some());
    assert_eq!(closed_reason(&seen), Some(&CloseReason::PeerClosed));
    assert_eq!(t.connections(), 0);
}

#[test]
fn stale_handles_and_limits_are_refused() {
    let (mut t, addr) = listener(TcpConfig {
        max_message: 100,
        max_pending_write: 1 << 20,
        ..Default::default()
    });
    let s = TcpStream::connect(addr).unwrap();
    let mut seen = Vec::new();
    pump(&mut t, &mut seen, |s| !s.is_empty());
    let Seen::Accepted(conn) = seen[0] else {
        panic!("{seen:?}")
    };
    assert_eq!(
        t.tx().send_parts(conn, &[&[0u8; 101]]),
        Err(SendError::TooLarge { len: 101, max: 100 })
    );
    // The peer never reads: the queue fills and sends are refused, not buffered without bound.
    let mut refused = None;
    for _ in 0..1_000_000 {
        match t.tx().send_parts(conn, &[&[1u8; 100]]) {
            Ok(()) => t.flush().unwrap(),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert!(
        matches!(refused, Some(SendError::Full { .. })),
        "{refused:?}"
    );
    drop(s);
    let mut seen = Vec::new();
    pump(&mut t, &mut seen, |s| closed_reason(s).is_some());
    assert_eq!(
        t.tx().send_parts(conn, &[b"x"]),
        Err(SendError::Closed),
        "stale handle"
    );
}

#[test]
fn large_message_to_a_slow_reader_arrives_intact() {
    let (mut t, addr) = listener(TcpConfig::default());
    let mut s = TcpStream::connect(addr).unwrap();
    let mut seen = Vec::new();
    pump(&mut t, &mut seen, |s| !s.is_empty());
    let Seen::Accepted(conn) = seen[0] else {
        panic!("{seen:?}")
    };
    let big: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 253) as u8).collect();
    // Gathered from three parts; far larger than the socket buffer, so most of
    // it is written on later WRITABLE edges.
    t.tx()
        .send_parts(conn, &[&big[..10], &big[10..5000], &big[5000..]])
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut got = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut got).unwrap();
        got
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !reader.is_finished() {
        assert!(Instant::now() < deadline);
        t.poll(&mut |_: Event<'_>, _: &mut dyn Tx| {}).unwrap();
        t.wait(Some(Duration::from_millis(1))).unwrap();
    }
    assert!(reader.join().unwrap() == big);
}
