//! The Kafka listener's connections: the accept loop (a thread per
//! connection, bounded by `max_connections`), the TLS handshake, and the
//! request loop — read a frame, answer it, write the response, then close
//! or mute the connection when its session says so.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::session::Session;
use super::{answer, Shared};
use crate::security::{Listener, Principal};

pub(super) fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    loop {
        let accepted = listener.accept();
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                let open = shared.stats.connections.load(Ordering::Relaxed);
                if open >= shared.cfg.max_connections {
                    tracing::warn!(%peer, open, "Kafka connection refused: at max_connections");
                    continue;
                }
                shared.stats.connections.fetch_add(1, Ordering::Relaxed);
                let s = shared.clone();
                let spawned =
                    std::thread::Builder::new()
                        .name("kafka-conn".into())
                        .spawn(move || {
                            if let Err(e) = serve(stream, &s) {
                                tracing::debug!(%peer, error = %e, "Kafka connection ended");
                            }
                            s.stats.connections.fetch_sub(1, Ordering::Relaxed);
                        });
                let mut list = conns.lock().unwrap_or_else(|p| p.into_inner());
                list.retain(|h| !h.is_finished());
                match spawned {
                    Ok(h) => list.push(h),
                    Err(e) => {
                        shared.stats.connections.fetch_sub(1, Ordering::Relaxed);
                        tracing::error!(error = %e, "cannot start a Kafka connection thread");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Kafka accept failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean close before the
/// first byte. Read timeouts let the thread notice shutdown.
fn read_full(stream: &mut impl Read, buf: &mut [u8], stop: &AtomicBool) -> io::Result<bool> {
    let mut at = 0;
    while at < buf.len() {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("listener stopping"));
        }
        match stream.read(&mut buf[at..]) {
            Ok(0) if at == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => at += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let peer = stream.peer_addr()?;
    let local = stream.local_addr()?;
    let advertised = shared
        .cfg
        .advertised
        .clone()
        .unwrap_or_else(|| (local.ip().to_string(), shared.cfg.listen.port()));
    let mut session = Session::new(shared, peer, advertised);
    match &shared.cfg.tls {
        None => serve_stream(stream, &mut session, shared),
        Some(tls) => {
            let mut tls = tls_accept(stream, tls, shared)?;
            if let Some(cn) = tls
                .conn
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(neo_transports::tls::principal_from_cert)
            {
                match Principal::user(cn) {
                    Ok(p) => {
                        shared.security.note_certificate(&p, peer, Listener::Kafka);
                        session.principal = p;
                    }
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "client certificate CN is not a valid principal; staying anonymous")
                    }
                }
            }
            tls.sock
                .set_read_timeout(Some(Duration::from_millis(200)))?;
            serve_stream(&mut tls, &mut session, shared)
        }
    }
}

/// Most time a client gets to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the TLS handshake (bounded in time), logging why it failed.
fn tls_accept(
    mut sock: TcpStream,
    tls: &neo_transports::tls::ServerTls,
    shared: &Shared,
) -> io::Result<rustls::StreamOwned<rustls::ServerConnection, TcpStream>> {
    let peer = sock.peer_addr()?;
    let mut conn = rustls::ServerConnection::new(tls.config()).map_err(io::Error::other)?;
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    while conn.is_handshaking() {
        if Instant::now() >= deadline || shared.stop.load(Ordering::Relaxed) {
            shared.stats.tls_failures.fetch_add(1, Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            ));
        }
        match conn.complete_io(&mut sock) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                shared.stats.tls_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%peer, error = %e, "Kafka TLS handshake failed");
                return Err(e);
            }
        }
    }
    Ok(rustls::StreamOwned::new(conn, sock))
}

/// The request loop over any byte stream: plain TCP or a TLS session.
fn serve_stream(
    mut stream: impl Read + Write,
    session: &mut Session,
    shared: &Shared,
) -> io::Result<()> {
    let mut out = BytesMut::new();
    let peer = session.peer;
    loop {
        let mut len = [0u8; 4];
        if !read_full(&mut stream, &mut len, &shared.stop)? {
            return Ok(());
        }
        let len = i32::from_be_bytes(len);
        if len < 8 || len as usize > shared.cfg.max_request_bytes {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, len, max = shared.cfg.max_request_bytes, "Kafka request size out of range; closing the connection");
            return Ok(());
        }
        let mut body = vec![0u8; len as usize];
        read_full(&mut stream, &mut body, &shared.stop)?;
        shared.stats.requests.fetch_add(1, Ordering::Relaxed);
        out.clear();
        let started = Instant::now();
        let key = i16::from_be_bytes([body[0], body[1]]);
        match answer(shared, session, Bytes::from(body), &mut out) {
            Ok(true) => {
                stream.write_all(&(out.len() as i32).to_be_bytes())?;
                stream.write_all(&out)?;
                stream.flush()?;
                shared.observe(key, started);
            }
            Ok(false) => {} // acks=0: no response, as in Kafka
            Err(why) => {
                shared.stats.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%peer, %why, "Kafka request refused; closing the connection (as Kafka does)");
                return Ok(());
            }
        }
        if session.close_after {
            return Ok(());
        }
        if !session.mute.is_zero() {
            mute(std::mem::take(&mut session.mute), &shared.stop);
        }
    }
}

/// Sleeps out a throttle in steps, noticing shutdown.
fn mute(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}
