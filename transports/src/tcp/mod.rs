//! The TCP backend: kernel sockets, the default transport that runs anywhere.
//!
//! One [`TcpTransport`] serves any number of listeners and connections from one
//! poll loop through epoll (mio, edge-triggered). Sockets are non-blocking with
//! `TCP_NODELAY`. Each message is a 4-byte big-endian length then the bytes —
//! Kafka's framing too. Received messages are parsed in place in a per-connection
//! read buffer and lent to the sink; sends are queued per connection and written
//! once per poll round (a batch of responses costs one `write`), or written
//! straight from the caller's memory with `writev` when a large message finds an
//! empty queue. Oversized announcements, resets and peers that close mid-message
//! end the connection with a typed [`CloseReason`]; other connections go on.
//!
//! # TLS
//!
//! With [`TcpConfig::tls_server`] every accepted connection speaks TLS 1.3;
//! with [`TcpConfig::tls_client`] every [`Transport::connect`] does (both
//! configured in [`crate::tls`]). rustls runs sans-IO inside each connection's
//! send half: socket bytes go through `read_tls`/`process_new_packets` into
//! the same read buffer and message parser as plain TCP, and queued plaintext
//! goes through rustls' writer to `write_tls`, still drained until the socket
//! says `WouldBlock`. [`Event::Connected`] of a TLS client connection comes
//! when the handshake completes; messages sent before then wait in the queue
//! (bounded by `max_pending_write`). A failed handshake or a TLS alert ends
//! only that connection, with [`CloseReason::Tls`] and a warning naming the
//! peer and rustls' error. [`Tx::peer_identity`] is the CN of the peer's
//! verified certificate. The plain path is unchanged; under TLS, large sends
//! are copied into the queue (no `writev` from the caller's memory).

mod conn;
mod tls_conn;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::tls::{ClientTls, ServerTls};
use crate::transport::{CloseReason, ConnId, Event, EventSink, SendError, Transport, Tx};
use conn::{reason_for, Flushed, Parsed, RxHalf, TxHalf};
use tls_conn::{ReadError, TlsConn};

/// Limits and sizes of a TCP transport.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Largest message accepted or sent, in bytes (not counting the prefix).
    pub max_message: usize,
    /// Connections beyond this are accepted and closed at once, with a warning.
    pub max_connections: usize,
    /// Bytes a connection may have queued for a slow peer before sends are
    /// refused with [`SendError::Full`].
    pub max_pending_write: usize,
    /// Initial read buffer per connection; grows up to one maximal message.
    pub read_buffer: usize,
    /// Messages at least this large are written with `writev` from the
    /// caller's memory when the connection's queue is empty (plain TCP only).
    pub direct_write_threshold: usize,
    /// Accepted connections on this transport speak TLS with this server
    /// configuration.
    pub tls_server: Option<ServerTls>,
    /// Outgoing connections of this transport speak TLS with this client
    /// configuration.
    pub tls_client: Option<ClientTls>,
    /// A TLS handshake not complete after this long closes its connection.
    pub tls_handshake_timeout: Duration,
}

impl Default for TcpConfig {
    fn default() -> Self {
        Self {
            max_message: 16 << 20,
            max_connections: 65_536,
            max_pending_write: 64 << 20,
            read_buffer: 16 << 10,
            direct_write_threshold: 32 << 10,
            tls_server: None,
            tls_client: None,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

const LISTENER_BASE: usize = usize::MAX / 2;

/// The send side: everything a handler may touch while a message is lent.
struct TxSide {
    conns: Slab<TxHalf>,
    generations: Vec<u32>,
    dirty: Vec<usize>,
    closed: Vec<(usize, CloseReason)>,
    cfg: TcpConfig,
}

/// Kernel-socket transport; see the module docs.
pub struct TcpTransport {
    poll: Poll,
    events: Events,
    /// `wait` already collected events that `poll` has not handled.
    events_ready: bool,
    listeners: Vec<TcpListener>,
    rx: Slab<RxHalf>,
    tx: TxSide,
    rejected: u64,
    /// Connections accepted (for metrics).
    accepted: u64,
    tls_stats: TlsStats,
    last_tls_sweep: std::time::Instant,
}

/// TLS handshake counters of one transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsStats {
    /// Handshakes that completed.
    pub handshakes_completed: u64,
    /// TLS connections that ended before their handshake completed (refused
    /// certificates, peers not speaking TLS, alerts, peers that hung up);
    /// not counted: failed TCP connects and local closes.
    pub handshakes_failed: u64,
}

impl TcpTransport {
    pub fn new(cfg: TcpConfig) -> io::Result<Self> {
        Ok(Self {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            events_ready: false,
            listeners: Vec::new(),
            rx: Slab::new(),
            tx: TxSide {
                conns: Slab::new(),
                generations: Vec::new(),
                dirty: Vec::new(),
                closed: Vec::new(),
                cfg,
            },
            rejected: 0,
            accepted: 0,
            tls_stats: TlsStats::default(),
            last_tls_sweep: std::time::Instant::now(),
        })
    }

    /// TLS handshake counters (zero when TLS is off).
    pub fn tls_stats(&self) -> TlsStats {
        self.tls_stats
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.tx.conns.len()
    }

    /// Connections refused because `max_connections` was reached.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    fn insert(
        &mut self,
        mut stream: TcpStream,
        connected: bool,
        tls: Option<Box<TlsConn>>,
    ) -> io::Result<ConnId> {
        stream.set_nodelay(true)?;
        let key = self.tx.conns.vacant_key();
        self.poll.registry().register(
            &mut stream,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let k1 = self.tx.conns.insert(TxHalf::new(stream, connected, tls));
        let k2 = self.rx.insert(RxHalf::new(self.tx.cfg.read_buffer));
        debug_assert_eq!((k1, k2), (key, key), "rx and tx slabs out of step");
        if self.tx.generations.len() <= key {
            self.tx.generations.resize(key + 1, 0);
        }
        Ok(self.tx.id(key))
    }

    fn accept_all(&mut self, li: usize, sink: &mut dyn EventSink) -> usize {
        let mut n = 0;
        loop {
            let (stream, peer) = match self.listeners[li].accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: the pending connection stays in the
                    // backlog; edge-triggered, so we retry on the next arrival.
                    tracing::warn!(error = %e, "accept failed");
                    return n;
                }
            };
            if self.tx.conns.len() >= self.tx.cfg.max_connections {
                self.rejected += 1;
                tracing::warn!(%peer, max = self.tx.cfg.max_connections, "connection limit reached; closing new connection");
                continue;
            }
            let tls = match &self.tx.cfg.tls_server {
                None => None,
                Some(server) => match TlsConn::server(server.config(), peer) {
                    Ok(t) => Some(Box::new(t)),
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "could not start TLS on accepted connection");
                        continue;
                    }
                },
            };
            match self.insert(stream, true, tls) {
                Ok(conn) => {
                    n += 1;
                    self.accepted += 1;
                    sink.on_event(Event::Accepted { conn, peer }, &mut self.tx);
                }
                Err(e) => tracing::warn!(%peer, error = %e, "could not set up accepted connection"),
            }
        }
    }

    /// Reads everything the socket has and delivers each whole message.
    /// `hangup`: the event already reported the peer's FIN or an error, so
    /// read on to the end instead of trusting a short read.
    fn read_ready(&mut self, key: usize, hangup: bool, sink: &mut dyn EventSink) -> usize {
        let max = self.tx.cfg.max_message;
        let mut delivered = 0;
        loop {
            let Some(rx) = self.rx.get_mut(key) else {
                return delivered;
            };
            let Some(tx) = self.tx.conns.get_mut(key) else {
                return delivered;
            };
            // A closing connection reads no more, except to finish a TLS
            // handshake that its queued messages wait for.
            if tx.closing.is_some() && tx.tls.as_ref().is_none_or(|t| t.established()) {
                return delivered;
            }
            // `Some(up)` under TLS; `up`: the handshake completed just now.
            let (read, tls_step) = match &mut tx.tls {
                None => (
                    rx.read_from(&mut tx.stream, max).map_err(ReadError::Io),
                    None,
                ),
                Some(tls) => {
                    let read = tls.read_into(&mut tx.stream, rx, max);
                    (read, Some(tls.take_established()))
                }
            };
            let conn = self.tx.id(key);
            if let Some(up) = tls_step {
                // Reading may leave records to send (handshake flights,
                // tickets), and a finished handshake releases queued messages.
                self.tx.mark_dirty(key);
                if up {
                    delivered += self.tls_established(key, sink);
                }
            }
            // Deliver every whole message now in the buffer.
            loop {
                let rx = &self.rx[key];
                match rx.next_message(max) {
                    Parsed::Message(range) => {
                        let end = range.end;
                        sink.on_event(
                            Event::Message {
                                conn,
                                data: rx.bytes(range),
                            },
                            &mut self.tx,
                        );
                        delivered += 1;
                        self.rx[key].consume(end);
                    }
                    Parsed::Incomplete => break,
                    Parsed::Oversize(len) => {
                        self.tx.close_with(key, CloseReason::Oversize { len, max });
                        return delivered;
                    }
                }
            }
            match read {
                Ok((0, _)) => {
                    if self.tls_cut_in_handshake(key) {
                        return delivered;
                    }
                    let pending = self.rx[key].pending();
                    let reason = if pending == 0 {
                        CloseReason::PeerClosed
                    } else {
                        CloseReason::Truncated { pending }
                    };
                    // Answers already queued for this peer still go out
                    // (it may only have shut down its sending side).
                    self.tx.finish(key, reason);
                    return delivered;
                }
                // A short read drained the socket: epoll reports any data that
                // arrives after it as a new edge, so skip the read that would
                // only say EAGAIN (tokio relies on the same kernel behaviour).
                Ok((_, false)) if !hangup => return delivered,
                Ok((_, false)) => {}
                Ok((_, true)) => {}
                Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return delivered,
                Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(ReadError::Io(e)) => {
                    self.tx.close_with(key, reason_for(&e));
                    return delivered;
                }
                Err(ReadError::Tls(e)) => {
                    self.tls_failed(key, &e);
                    return delivered;
                }
            }
        }
    }

    fn write_ready(&mut self, key: usize, sink: &mut dyn EventSink) -> usize {
        let Some(tx) = self.tx.conns.get_mut(key) else {
            return 0;
        };
        let mut events = 0;
        if !tx.connected {
            match tx.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    self.tx
                        .close_with(key, CloseReason::ConnectFailed(e.kind()));
                    return 0;
                }
            }
            match tx.stream.peer_addr() {
                // Under TLS, `Connected` waits for the handshake; the flush
                // below sends the ClientHello.
                Ok(_) if tx.tls.is_some() => tx.connected = true,
                Ok(_) => {
                    tx.connected = true;
                    let conn = self.tx.id(key);
                    sink.on_event(Event::Connected { conn }, &mut self.tx);
                    events = 1;
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return 0,
                Err(e) => {
                    self.tx
                        .close_with(key, CloseReason::ConnectFailed(e.kind()));
                    return 0;
                }
            }
        }
        self.tx.flush_one(key);
        events
    }

    /// Removes connections closed during this round and reports them.
    fn reap_closed(&mut self, sink: &mut dyn EventSink) -> usize {
        let mut n = 0;
        while let Some((key, reason)) = self.tx.closed.pop() {
            if let Some(mut half) = self.tx.conns.try_remove(key) {
                let _ = self.poll.registry().deregister(&mut half.stream);
                let unfinished = half.tls.as_ref().is_some_and(|t| !t.established());
                if unfinished
                    && !matches!(reason, CloseReason::Local | CloseReason::ConnectFailed(_))
                {
                    self.tls_stats.handshakes_failed += 1;
                }
                self.rx.remove(key);
                let conn = self.tx.id(key);
                self.tx.generations[key] = self.tx.generations[key].wrapping_add(1);
                sink.on_event(Event::Closed { conn, reason }, &mut self.tx);
                n += 1;
            }
        }
        n
    }
}

impl TxSide {
    fn id(&self, key: usize) -> ConnId {
        ConnId::new(key as u32, self.generations[key])
    }

    fn key(&self, conn: ConnId) -> Option<usize> {
        let key = conn.index();
        let live =
            self.conns.contains(key) && self.generations.get(key) == Some(&conn.generation());
        live.then_some(key)
    }

    /// Marks `key` closed now; pending writes are dropped.
    fn close_with(&mut self, key: usize, reason: CloseReason) {
        if let Some(tx) = self.conns.get_mut(key) {
            if tx.closing.is_none() || !self.closed.iter().any(|(k, _)| *k == key) {
                tx.closing = Some(reason.clone());
                self.closed.push((key, reason));
            }
        }
    }

    /// Closes `key` once its queued writes are out.
    fn finish(&mut self, key: usize, reason: CloseReason) {
        if let Some(tx) = self.conns.get_mut(key) {
            if tx.closing.is_none() {
                tx.closing = Some(reason);
                self.mark_dirty(key);
            }
        }
    }

    fn mark_dirty(&mut self, key: usize) {
        let tx = &mut self.conns[key];
        if !tx.dirty {
            tx.dirty = true;
            self.dirty.push(key);
        }
    }

    fn flush_one(&mut self, key: usize) {
        let Some(tx) = self.conns.get_mut(key) else {
            return;
        };
        if !tx.connected || self.closed.iter().any(|(k, _)| *k == key) {
            return;
        }
        match tx.flush() {
            Ok(Flushed::Done) => {
                if let Some(reason) = tx.closing.clone() {
                    let _ = tx.stream.shutdown(std::net::Shutdown::Both);
                    self.closed.push((key, reason));
                }
            }
            // The socket's send buffer is full; its WRITABLE edge resumes us.
            Ok(Flushed::Blocked) => {}
            Err(e) => self.close_with(key, reason_for(&e)),
        }
    }

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for key in dirty.drain(..) {
            if let Some(tx) = self.conns.get_mut(key) {
                tx.dirty = false;
                self.flush_one(key);
            }
        }
        self.dirty = dirty;
    }

    fn admit(&self, conn: ConnId, len: usize) -> Result<usize, SendError> {
        let key = self.key(conn).ok_or(SendError::Closed)?;
        let tx = &self.conns[key];
        if tx.closing.is_some() {
            return Err(SendError::Closed);
        }
        if len > self.cfg.max_message {
            return Err(SendError::TooLarge {
                len,
                max: self.cfg.max_message,
            });
        }
        let pending = tx.pending();
        if pending + len > self.cfg.max_pending_write {
            return Err(SendError::Full { pending });
        }
        Ok(key)
    }
}

impl Tx for TxSide {
    fn send_with(
        &mut self,
        conn: ConnId,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), SendError> {
        let key = self.admit(conn, len)?;
        self.conns[key].queue_with(len, fill);
        self.mark_dirty(key);
        Ok(())
    }

    fn send_parts(&mut self, conn: ConnId, parts: &[&[u8]]) -> Result<(), SendError> {
        let len = parts.iter().map(|p| p.len()).sum();
        let key = self.admit(conn, len)?;
        let tx = &mut self.conns[key];
        if len >= self.cfg.direct_write_threshold
            && tx.pending() == 0
            && tx.connected
            && tx.tls.is_none()
        {
            if let Err(e) = tx.write_direct(len, parts) {
                self.close_with(key, reason_for(&e));
                return Err(SendError::Closed);
            }
        } else {
            tx.queue_parts(len, parts);
        }
        self.mark_dirty(key);
        Ok(())
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(key) = self.key(conn) {
            self.finish(key, CloseReason::Local);
        }
    }

    fn max_message(&self) -> usize {
        self.cfg.max_message
    }

    fn peer_identity(&self, conn: ConnId) -> Option<&str> {
        let key = self.key(conn)?;
        self.conns[key].tls.as_deref()?.identity()
    }
}

impl Transport for TcpTransport {
    fn name(&self) -> &'static str {
        "tcp"
    }

    fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let mut listener = TcpListener::bind(addr)?;
        let token = Token(LISTENER_BASE + self.listeners.len());
        self.poll
            .registry()
            .register(&mut listener, token, Interest::READABLE)?;
        let local = listener.local_addr()?;
        self.listeners.push(listener);
        Ok(local)
    }

    fn connect(&mut self, addr: SocketAddr) -> io::Result<ConnId> {
        let tls = match &self.tx.cfg.tls_client {
            None => None,
            Some(client) => Some(Box::new(
                TlsConn::client(client, addr).map_err(io::Error::other)?,
            )),
        };
        let stream = TcpStream::connect(addr)?;
        self.insert(stream, false, tls)
    }

    fn poll(&mut self, sink: &mut dyn EventSink) -> io::Result<usize> {
        self.tx.flush_dirty();
        if !self.events_ready {
            match self.poll.poll(&mut self.events, Some(Duration::ZERO)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.events_ready = false;
        let mut delivered = 0;
        // `events` is moved out so handlers may borrow `self` mutably.
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for ev in events.iter() {
            let key = ev.token().0;
            if key >= LISTENER_BASE {
                delivered += self.accept_all(key - LISTENER_BASE, sink);
                continue;
            }
            if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                delivered += self.write_ready(key, sink);
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                delivered += self.read_ready(key, ev.is_read_closed() || ev.is_error(), sink);
            }
        }
        self.events = events;
        if self.tx.cfg.tls_server.is_some() || self.tx.cfg.tls_client.is_some() {
            self.tls_sweep();
        }
        delivered += self.reap_closed(sink);
        self.tx.flush_dirty();
        delivered += self.reap_closed(sink);
        Ok(delivered)
    }

    fn tx(&mut self) -> &mut dyn Tx {
        &mut self.tx
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tx.flush_dirty();
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if self.events_ready || !self.tx.dirty.is_empty() || !self.tx.closed.is_empty() {
            return Ok(());
        }
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {
                self.events_ready = !self.events.is_empty();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut c = vec![
            ("connections_accepted", self.accepted),
            ("connections_rejected", self.rejected),
        ];
        let cfg = &self.tx.cfg;
        if cfg.tls_server.is_some() || cfg.tls_client.is_some() {
            c.push(("tls_handshakes", self.tls_stats.handshakes_completed));
            c.push(("tls_handshake_failures", self.tls_stats.handshakes_failed));
        }
        c
    }

    fn open_connections(&self) -> Option<usize> {
        Some(self.tx.conns.len())
    }

    fn stats_line(&self) -> String {
        let cfg = &self.tx.cfg;
        if cfg.tls_server.is_none() && cfg.tls_client.is_none() {
            return String::new();
        }
        let s = self.tls_stats;
        format!(
            "tls handshakes: {} completed, {} failed",
            s.handshakes_completed, s.handshakes_failed
        )
    }
}
