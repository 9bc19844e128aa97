//! The message-level `Transport` trait: what every backend (TCP, RDMA, the packet
//! engine over AF_XDP or DPDK) offers the layers above.
//!
//! # Shape, and why
//!
//! * **Messages, not byte streams.** A backend delivers whole messages and takes
//!   whole messages. RDMA SEND/RECV and the packet engine are message-oriented by
//!   nature; TCP delimits messages with a 4-byte big-endian length prefix (the
//!   same framing Kafka uses, so the Kafka front can reuse the TCP backend).
//! * **Completion-style polling.** [`Transport::poll`] never blocks: it reaps
//!   whatever completed (accepts, connects, received messages, closes) and hands
//!   each to an [`EventSink`]. That maps one-to-one onto an RDMA completion queue,
//!   an AF_XDP RX ring or `rte_eth_rx_burst`, and onto epoll for TCP.
//! * **Lent receive buffers.** [`Event::Message`] borrows the bytes from the
//!   backend's own memory (the TCP read buffer, a registered RDMA receive buffer,
//!   the engine's reassembly buffer) for the duration of the callback. Nothing is
//!   allocated or copied per message on the way up; a consumer that needs the
//!   bytes later copies them itself.
//! * **Lent transmit buffers.** [`Tx::send_with`] lends `len` bytes of the
//!   backend's transmit memory and lets the caller write the message in place
//!   (the TCP write buffer, a registered RDMA send slot, an engine buffer that is
//!   later cut into UMEM frames or mbufs). [`Tx::send_parts`] gathers slices
//!   where the backend can gather (TCP `writev`, RDMA scatter-gather lists).
//! * **Send from inside the callback.** The sink receives a `&mut dyn Tx` next to
//!   each event, so a request handler answers while the request bytes are still
//!   borrowed — run to completion, no queue and no cross-thread hand-off.
//! * **Batches.** Sends are queued; the backend pushes them out once per poll
//!   round (one `write`/`writev` per connection, one doorbell per burst), or on
//!   [`Transport::flush`].
//! * **Idle waiting belongs to the backend.** [`Transport::wait`] blocks in the
//!   backend's own notifier (epoll, a completion channel, `poll` on an XSK) so a
//!   poll loop can back off to sleeping without missing a wake-up; see
//!   [`crate::backoff`].
//!
//! The traits are object safe (`&mut dyn Tx`, `&mut dyn EventSink`): a poll loop
//! pays one indirect call per event, far below the cost of the event itself.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Handle of one connection inside one transport instance.
///
/// The slot index is reused after a connection closes; the generation tells a
/// stale handle apart, so a late send to a closed connection fails with
/// [`SendError::Closed`] instead of reaching a newer connection in the same slot.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct ConnId {
    index: u32,
    generation: u32,
}

impl ConnId {
    /// Builds a handle; backends call this, users receive handles from events.
    pub fn new(index: u32, generation: u32) -> Self {
        Self { index, generation }
    }
    /// Dense slot index, for per-connection tables kept by upper layers.
    pub fn index(self) -> usize {
        self.index as usize
    }
    /// Generation of the slot when this connection was opened.
    pub fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.index, self.generation)
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// This side called [`Tx::close`].
    Local,
    /// The peer closed cleanly between messages.
    PeerClosed,
    /// The peer closed in the middle of a message; `pending` bytes were dropped
    /// (they never formed a whole message, so nothing delivered was lost).
    Truncated { pending: usize },
    /// The peer reset the connection.
    Reset,
    /// The peer announced a message larger than the configured maximum.
    Oversize { len: u64, max: usize },
    /// The peer did not drain our messages and the write queue hit its limit.
    WriteQueueFull { pending: usize },
    /// An outgoing connection could not be established.
    ConnectFailed(io::ErrorKind),
    /// Any other I/O error.
    Io(io::ErrorKind),
    /// The TLS handshake failed or the peer broke the TLS protocol.
    Tls(TlsFailure),
}

/// What went wrong in TLS, in short; the log line of the close has rustls'
/// full error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    /// The peer does not speak TLS (e.g. a plain-TCP client).
    NotTls,
    /// The peer presented no certificate where one is required.
    NoPeerCertificate,
    /// The peer's certificate failed verification (unknown issuer, expired,
    /// wrong name, ...).
    BadPeerCertificate,
    /// The peer refused the handshake or the session with a fatal alert; the
    /// RFC 8446 alert code (42 bad_certificate, 116 certificate_required, ...).
    AlertReceived(u8),
    /// No protocol version, cipher suite or group in common.
    Incompatible,
    /// The peer closed the connection before the handshake completed.
    HandshakeInterrupted,
    /// The handshake did not complete within the configured time.
    HandshakeTimeout,
    /// Any other protocol violation (malformed record, decryption failure, ...).
    Protocol,
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotTls => f.write_str("peer does not speak TLS"),
            Self::HandshakeTimeout => f.write_str("TLS handshake timed out"),
            Self::NoPeerCertificate => f.write_str("peer presented no certificate"),
            Self::BadPeerCertificate => f.write_str("peer certificate refused"),
            Self::AlertReceived(code) => {
                let name = match code {
                    10 => "unexpected_message",
                    20 => "bad_record_mac",
                    40 => "handshake_failure",
                    42 => "bad_certificate",
                    43 => "unsupported_certificate",
                    44 => "certificate_revoked",
                    45 => "certificate_expired",
                    46 => "certificate_unknown",
                    47 => "illegal_parameter",
                    48 => "unknown_ca",
                    49 => "access_denied",
                    50 => "decode_error",
                    51 => "decrypt_error",
                    70 => "protocol_version",
                    80 => "internal_error",
                    109 => "missing_extension",
                    112 => "unrecognized_name",
                    116 => "certificate_required",
                    _ => "alert",
                };
                write!(f, "peer sent TLS alert {name} ({code})")
            }
            Self::Incompatible => f.write_str("no TLS parameters in common with peer"),
            Self::HandshakeInterrupted => f.write_str("peer closed during the TLS handshake"),
            Self::Protocol => f.write_str("TLS protocol error"),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local => f.write_str("closed locally"),
            Self::PeerClosed => f.write_str("closed by peer"),
            Self::Truncated { pending } => {
                write!(
                    f,
                    "peer closed mid-message ({pending} bytes of a partial message)"
                )
            }
            Self::Reset => f.write_str("connection reset by peer"),
            Self::Oversize { len, max } => {
                write!(f, "peer sent a {len}-byte message, maximum is {max}")
            }
            Self::WriteQueueFull { pending } => {
                write!(f, "peer is not reading: {pending} bytes queued")
            }
            Self::ConnectFailed(kind) => write!(f, "connect failed: {kind}"),
            Self::Io(kind) => write!(f, "I/O error: {kind}"),
            Self::Tls(failure) => write!(f, "TLS: {failure}"),
        }
    }
}

/// One completion reaped by [`Transport::poll`].
#[derive(Debug)]
pub enum Event<'a> {
    /// A listener accepted a connection.
    Accepted { conn: ConnId, peer: SocketAddr },
    /// An outgoing connection from [`Transport::connect`] is established.
    Connected { conn: ConnId },
    /// A whole message arrived. `data` is lent from the backend until the
    /// callback returns.
    Message { conn: ConnId, data: &'a [u8] },
    /// The connection is gone; its handle is now stale.
    Closed { conn: ConnId, reason: CloseReason },
}

/// Why a send was refused. Nothing was queued when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("connection is closed")]
    Closed,
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("write queue full ({pending} bytes pending); retry after the peer drains it")]
    Full { pending: usize },
}

/// The sending half of a transport, lent to event callbacks.
pub trait Tx {
    /// Lends `len` bytes of transmit memory for one message on `conn`; `fill`
    /// must write all of it. The message is queued and goes out at the end of
    /// the current poll round or on [`Transport::flush`].
    fn send_with(
        &mut self,
        conn: ConnId,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), SendError>;

    /// Queues one message made of `parts` laid end to end. Backends that can
    /// gather (writev, scatter-gather lists) avoid copying large parts.
    fn send_parts(&mut self, conn: ConnId, parts: &[&[u8]]) -> Result<(), SendError> {
        let len = parts.iter().map(|p| p.len()).sum();
        self.send_with(conn, len, &mut |buf| {
            let mut at = 0;
            for p in parts {
                buf[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
        })
    }

    /// Closes `conn` after what is already queued on it has been sent. A
    /// [`Event::Closed`] with [`CloseReason::Local`] follows.
    fn close(&mut self, conn: ConnId);

    /// Largest message this transport carries, in bytes.
    fn max_message(&self) -> usize;

    /// The authenticated identity of the peer on `conn`, if the transport
    /// authenticates peers: for TLS, the Common Name of the peer's verified
    /// certificate (the client certificate on an accepted connection, the
    /// server's on an outgoing one). `None` when the peer is not
    /// authenticated, the handshake has not completed, or `conn` is closed.
    fn peer_identity(&self, conn: ConnId) -> Option<&str> {
        let _ = conn;
        None
    }
}

/// Receives events from [`Transport::poll`], with the sending half at hand.
pub trait EventSink {
    fn on_event(&mut self, event: Event<'_>, tx: &mut dyn Tx);
}

impl<F: FnMut(Event<'_>, &mut dyn Tx)> EventSink for F {
    fn on_event(&mut self, event: Event<'_>, tx: &mut dyn Tx) {
        self(event, tx)
    }
}

/// A message-level transport backend. One instance belongs to one poll loop
/// (one thread); nothing in it is shared or locked.
pub trait Transport {
    /// Short backend name for logs and reports ("tcp", "rdma", "af-xdp", "dpdk").
    fn name(&self) -> &'static str;

    /// Starts accepting connections on `addr`; returns the bound address (so
    /// port 0 can be used).
    fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr>;

    /// Starts connecting to `addr`. Returns at once; [`Event::Connected`] or an
    /// [`Event::Closed`] with [`CloseReason::ConnectFailed`] follows. Messages
    /// sent before then are queued.
    fn connect(&mut self, addr: SocketAddr) -> io::Result<ConnId>;

    /// Reaps completions without blocking, hands each to `sink`, then pushes
    /// out what was queued. Returns the number of events delivered.
    fn poll(&mut self, sink: &mut dyn EventSink) -> io::Result<usize>;

    /// The sending half, for sends outside an event callback.
    fn tx(&mut self) -> &mut dyn Tx;

    /// Pushes queued messages towards the wire now.
    fn flush(&mut self) -> io::Result<()>;

    /// Blocks until an event may be ready or `timeout` passes (`None`: no
    /// limit). Used by poll loops backing off when idle; it never loses events.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// The backend's counters in one line, for logs at shutdown and bench
    /// reports (empty when it keeps none).
    fn stats_line(&self) -> String {
        String::new()
    }

    /// The backend's monotonic counters by snake_case name (frames,
    /// messages, drops, retransmits, sessions opened...), for metrics.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Connections or sessions open now, when the backend tracks them.
    fn open_connections(&self) -> Option<usize> {
        None
    }
}

/// A boxed backend is a backend: a transport chosen at run time
/// (`Box<dyn Transport>`) drives the same generic clients and servers.
impl<T: Transport + ?Sized> Transport for Box<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        (**self).listen(addr)
    }
    fn connect(&mut self, addr: SocketAddr) -> io::Result<ConnId> {
        (**self).connect(addr)
    }
    fn poll(&mut self, sink: &mut dyn EventSink) -> io::Result<usize> {
        (**self).poll(sink)
    }
    fn tx(&mut self) -> &mut dyn Tx {
        (**self).tx()
    }
    fn flush(&mut self) -> io::Result<()> {
        (**self).flush()
    }
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).wait(timeout)
    }
    fn stats_line(&self) -> String {
        (**self).stats_line()
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        (**self).counters()
    }
    fn open_connections(&self) -> Option<usize> {
        (**self).open_connections()
    }
}
