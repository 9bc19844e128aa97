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
//! says `WouldBlock`. [`Event::Connected`](crate::transport::Event::Connected) of a TLS client connection comes
//! when the handshake completes; messages sent before then wait in the queue
//! (bounded by `max_pending_write`). A failed handshake or a TLS alert ends
//! only that connection, with [`CloseReason::Tls`] and a warning naming the
//! peer and rustls' error. [`Tx::peer_identity`] is the CN of the peer's
//! verified certificate. The plain path is unchanged; under TLS, large sends
//! are copied into the queue (no `writev` from the caller's memory). A
//! handshake not complete within [`TcpConfig::tls_handshake_timeout`] closes
//! its connection.
//!
//! Files: `conn` (a connection's read and write halves), `events` (accept,
//! read, write, reap), `tx_side` (the send side handlers use), `tls_conn`
//! (rustls in a connection).

mod conn;
mod events;
mod tls_conn;
mod tx_side;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::tls::{ClientTls, ServerTls};
use crate::transport::{CloseReason, ConnId, EventSink, Transport, Tx};
use conn::{RxHalf, TxHalf};
use tls_conn::TlsConn;

/// Limits and sizes of a TCP transport.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// Largest message accepted or sent, in bytes (not counting the prefix).
    pub max_message: usize,
    /// Connections beyond this are accepted and closed at once, with a warning.
    pub max_connections: usize,
    /// Bytes a connection may have queued for a slow peer before sends are
    /// refused with [`SendError::Full`](crate::transport::SendError::Full).
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
