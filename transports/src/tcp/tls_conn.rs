//! One TCP connection's TLS state: rustls' sans-IO connection between the
//! socket and the connection's plaintext buffers (the receive half's parse
//! buffer, the send half's queue of framed messages).
//!
//! Reading: socket → `read_tls` → `process_new_packets` → plaintext into the
//! receive buffer, repeated until the socket says `WouldBlock` (TLS records do
//! not tell a short read from a drained socket, so the plain path's short-read
//! shortcut is not taken). Writing: queued plaintext → `writer()` (rustls
//! holds at most [`TLS_BUFFER`] bytes of records) → `write_tls`, until the
//! queue is empty or the socket pushes back. Queued plaintext waits while the
//! handshake runs.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use mio::net::TcpStream;

use super::conn::{Flushed, RxHalf};
use super::TcpTransport;
use crate::tls::{principal_from_cert, ClientTls};
use crate::transport::{CloseReason, Event, EventSink, TlsFailure};

/// Bytes of encrypted records rustls may hold for the socket beyond our
/// own write queue (its default, stated so the bound is visible here).
const TLS_BUFFER: usize = 64 << 10;

/// Why reading under TLS stopped.
pub enum ReadError {
    Io(io::Error),
    Tls(rustls::Error),
}

pub struct TlsConn {
    conn: rustls::Connection,
    /// Peer address, for logs.
    pub peer: SocketAddr,
    established: bool,
    close_notify_sent: bool,
    identity: Option<String>,
    /// When the connection started, for the handshake timeout.
    pub started: std::time::Instant,
}

impl TlsConn {
    fn new(mut conn: rustls::Connection, peer: SocketAddr) -> Self {
        conn.set_buffer_limit(Some(TLS_BUFFER));
        Self {
            conn,
            peer,
            established: false,
            close_notify_sent: false,
            identity: None,
            started: std::time::Instant::now(),
        }
    }

    pub fn server(
        config: Arc<rustls::ServerConfig>,
        peer: SocketAddr,
    ) -> Result<Self, rustls::Error> {
        let conn = rustls::ServerConnection::new(config)?;
        Ok(Self::new(conn.into(), peer))
    }

    /// Starts the client side; the ClientHello is queued at once.
    pub fn client(tls: &ClientTls, peer: SocketAddr) -> Result<Self, rustls::Error> {
        let conn = rustls::ClientConnection::new(tls.config(), tls.server_name_for(peer))?;
        Ok(Self::new(conn.into(), peer))
    }

    pub fn is_client(&self) -> bool {
        matches!(self.conn, rustls::Connection::Client(_))
    }

    /// The handshake has completed (and was reported by [`Self::take_established`]).
    pub fn established(&self) -> bool {
        self.established
    }

    /// CN of the peer's verified certificate, once established.
    pub fn identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    /// True exactly once: on the first call after the handshake completed.
    /// Records the peer's identity.
    pub fn take_established(&mut self) -> bool {
        if self.established || self.conn.is_handshaking() {
            return false;
        }
        self.established = true;
        self.identity = self
            .conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(principal_from_cert);
        true
    }

    /// Moves plaintext into `rx`, reading and decrypting records from the
    /// socket when rustls holds none. Returns like [`RxHalf::read_from`]:
    /// `(0, _)` is the end of the stream; `(n, true)` asks to be called
    /// again. `Err(Io(WouldBlock))`: the socket is drained.
    pub fn read_into(
        &mut self,
        stream: &mut TcpStream,
        rx: &mut RxHalf,
        max: usize,
    ) -> Result<(usize, bool), ReadError> {
        loop {
            match rx.read_from(&mut self.conn.reader(), max) {
                // A close_notify and nothing left: a clean end.
                Ok((0, _)) => return Ok((0, false)),
                Ok((n, _)) => return Ok((n, true)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // TCP EOF without close_notify: frames are length-delimited,
                // so a cut shows as a truncated message like on plain TCP.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok((0, false)),
                Err(e) => return Err(ReadError::Io(e)),
            }
            match self.conn.read_tls(stream) {
                Ok(_) => {
                    // After EOF too: rustls then reports it through the reader.
                    self.conn.process_new_packets().map_err(ReadError::Tls)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// Pushes records, then queued plaintext (`wbuf[*sent..]`), at the
    /// socket until both are out or the socket pushes back. `closing`: once
    /// the queue is out, a close_notify follows.
    pub fn flush(
        &mut self,
        stream: &mut TcpStream,
        wbuf: &mut Vec<u8>,
        sent: &mut usize,
        closing: bool,
    ) -> io::Result<Flushed> {
        loop {
            while self.conn.wants_write() {
                match self.conn.write_tls(stream) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    // The WRITABLE edge resumes us.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if self.conn.is_handshaking() {
                // Waiting for the peer's flight (even when closing: queued
                // messages go out first): the READABLE edge brings it and
                // marks the connection dirty again.
                return Ok(Flushed::Blocked);
            }
            if *sent < wbuf.len() {
                // Takes what fits in rustls' buffer; the loop sends it and
                // comes back for more.
                let n = self.conn.writer().write(&wbuf[*sent..])?;
                if n == 0 && !self.conn.wants_write() {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                *sent += n;
                continue;
            }
            wbuf.clear();
            *sent = 0;
            if closing && !self.close_notify_sent {
                self.close_notify_sent = true;
                self.conn.send_close_notify();
                continue;
            }
            return Ok(Flushed::Done);
        }
    }

    /// Best effort, once, after a TLS error: sends the alert rustls queued
    /// for the peer, without waiting for the socket.
    pub fn send_alert(&mut self, stream: &mut TcpStream) {
        while self.conn.wants_write() {
            match self.conn.write_tls(stream) {
                Ok(n) if n > 0 => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => return,
            }
        }
    }
}

/// The transport's side of TLS events on connection `key`.
impl TcpTransport {
    /// The handshake completed: count it, and announce an outgoing
    /// connection now. Returns events delivered.
    pub(super) fn tls_established(&mut self, key: usize, sink: &mut dyn EventSink) -> usize {
        self.tls_stats.handshakes_completed += 1;
        let Some(tls) = self.tx.conns[key].tls.as_deref() else {
            return 0;
        };
        tracing::debug!(peer = %tls.peer, identity = ?tls.identity(), "TLS handshake completed");
        if !tls.is_client() {
            return 0;
        }
        let conn = self.tx.id(key);
        sink.on_event(Event::Connected { conn }, &mut self.tx);
        1
    }

    /// rustls refused what the peer sent: tell the peer (best effort) and
    /// close this connection only.
    pub(super) fn tls_failed(&mut self, key: usize, err: &rustls::Error) {
        let Some(tx) = self.tx.conns.get_mut(key) else {
            return;
        };
        if let Some(tls) = tx.tls.as_deref_mut() {
            tracing::warn!(peer = %tls.peer, error = %err, "TLS failed; closing the connection");
            tls.send_alert(&mut tx.stream);
        }
        self.tx.close_with(key, CloseReason::Tls(failure_of(err)));
    }

    /// Closes connections whose handshake has run longer than the
    /// configured timeout (a peer that connects and never speaks must not
    /// hold its slot forever). Looks at most once a second.
    pub(super) fn tls_sweep(&mut self) {
        let now = std::time::Instant::now();
        if now.duration_since(self.last_tls_sweep) < std::time::Duration::from_secs(1) {
            return;
        }
        self.last_tls_sweep = now;
        let limit = self.tx.cfg.tls_handshake_timeout;
        let late: Vec<usize> = self
            .tx
            .conns
            .iter()
            .filter(|(_, h)| {
                h.closing.is_none()
                    && h.tls
                        .as_deref()
                        .is_some_and(|t| !t.established() && now.duration_since(t.started) > limit)
            })
            .map(|(k, _)| k)
            .collect();
        for key in late {
            if let Some(t) = self.tx.conns[key].tls.as_deref() {
                tracing::warn!(peer = %t.peer, ?limit, "TLS handshake timed out; closing the connection");
            }
            self.tx
                .close_with(key, CloseReason::Tls(TlsFailure::HandshakeTimeout));
        }
    }

    /// At the end of the stream: if the TLS handshake had not completed,
    /// closes the connection as a TLS failure and returns true.
    pub(super) fn tls_cut_in_handshake(&mut self, key: usize) -> bool {
        let Some(tls) = self.tx.conns[key].tls.as_deref() else {
            return false;
        };
        if tls.established() {
            return false;
        }
        tracing::warn!(peer = %tls.peer, "peer closed during the TLS handshake");
        let reason = CloseReason::Tls(TlsFailure::HandshakeInterrupted);
        self.tx.close_with(key, reason);
        true
    }
}

/// The short, typed form of a rustls error for [`CloseReason::Tls`](crate::transport::CloseReason::Tls).
pub fn failure_of(err: &rustls::Error) -> TlsFailure {
    use rustls::{Error, InvalidMessage};
    match err {
        Error::InvalidMessage(InvalidMessage::InvalidContentType)
        | Error::InvalidMessage(InvalidMessage::UnknownProtocolVersion) => TlsFailure::NotTls,
        Error::NoCertificatesPresented => TlsFailure::NoPeerCertificate,
        Error::InvalidCertificate(_) => TlsFailure::BadPeerCertificate,
        Error::AlertReceived(alert) => TlsFailure::AlertReceived(u8::from(*alert)),
        Error::PeerIncompatible(_) => TlsFailure::Incompatible,
        _ => TlsFailure::Protocol,
    }
}
