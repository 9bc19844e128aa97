//! The RPC server: a method table and the event sink that runs handlers on the
//! transport's poll loop. The same loop can also call out: connections the
//! server opens itself carry its own requests, and their answers go to one
//! handler (see [`outbound`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{parse_request, ErrorCode, MethodId, ServiceError, ERROR_HEADER_LEN};
use crate::backoff::{Backoff, BackoffConfig, Idle};
use crate::frame::{self, Kind};
use crate::transport::{ConnId, Event, EventSink, SendError, Transport, Tx};

pub mod outbound;
use outbound::{OutboundHandler, Outcome};

/// Server limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Calls one connection may have outstanding (received, not yet answered).
    pub credits: u32,
    /// Idle back-off of [`Server::run`].
    pub backoff: BackoffConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            credits: 64,
            backoff: BackoffConfig::default(),
        }
    }
}

/// Counters, for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    pub connections_accepted: u64,
    pub connections_closed: u64,
    pub calls: u64,
    pub errors_sent: u64,
    pub malformed_frames: u64,
    pub unknown_methods: u64,
    pub overloaded: u64,
    /// Answers that could not be sent (peer gone, or its queue full).
    pub replies_dropped: u64,
}

type Handler = Box<dyn FnMut(&mut Call<'_>) -> Result<(), ServiceError> + Send>;

struct Method {
    name: String,
    handler: Handler,
}

#[derive(Clone, Copy)]
struct ConnState {
    conn: ConnId,
    in_flight: u32,
    /// The peer's address, when the transport reported one (accepted connections).
    peer: Option<SocketAddr>,
    /// Opened by [`Server::connect`]: carries this server's calls, not
    /// requests to it.
    outbound: bool,
}

/// An answer promised for later; give it to [`Server::complete`].
#[derive(Debug)]
#[must_use = "a deferred call must be completed, or its caller waits until its deadline"]
pub struct Deferred {
    conn: ConnId,
    correlation: u64,
    deadline: Option<Instant>,
}

impl Deferred {
    /// The connection the answer goes to.
    pub fn conn(&self) -> ConnId {
        self.conn
    }
}

enum Answer {
    None,
    Sent,
    Deferred,
}

/// One call as a handler sees it.
pub struct Call<'a> {
    conn: ConnId,
    peer: Option<SocketAddr>,
    correlation: u64,
    deadline: Option<Instant>,
    body: &'a [u8],
    tx: &'a mut dyn Tx,
    answer: Answer,
}

impl<'a> Call<'a> {
    /// The request body, lent from the transport's receive buffer.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
    pub fn conn(&self) -> ConnId {
        self.conn
    }
    /// The caller's address, as the transport reported it when it accepted
    /// the connection.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }
    /// When the caller stops waiting, if it set a deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The authenticated identity of the caller's connection (for TLS, the
    /// client certificate's Common Name), if the transport has one; see
    /// [`Tx::peer_identity`].
    pub fn peer_identity(&self) -> Option<&str> {
        self.tx.peer_identity(self.conn)
    }

    /// Answers with `body`, gathered into the transport without an extra copy.
    pub fn reply(&mut self, body: &[u8]) -> Result<(), SendError> {
        send_response(self.tx, self.conn, self.correlation, body)?;
        self.answer = Answer::Sent;
        Ok(())
    }

    /// Answers with `len` bytes written in place by `fill` into the
    /// transport's transmit memory.
    pub fn reply_with(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), SendError> {
        let corr = self.correlation;
        let mut fill = Some(fill);
        self.tx
            .send_with(self.conn, frame::encoded_len(len), &mut |buf| {
                if let Some(f) = fill.take() {
                    frame::encode_with(buf, Kind::Response, 0, corr, f);
                }
            })?;
        self.answer = Answer::Sent;
        Ok(())
    }

    /// Promises an answer later through [`Server::complete`]. The call keeps
    /// holding one of the connection's credits until then.
    pub fn defer(&mut self) -> Deferred {
        self.answer = Answer::Deferred;
        Deferred {
            conn: self.conn,
            correlation: self.correlation,
            deadline: self.deadline,
        }
    }
}

fn send_response(tx: &mut dyn Tx, conn: ConnId, corr: u64, body: &[u8]) -> Result<(), SendError> {
    let header = frame::header_for(Kind::Response, 0, corr, &[body]);
    tx.send_parts(conn, &[&header, body])
}

fn send_error(tx: &mut dyn Tx, conn: ConnId, corr: u64, code: ErrorCode, msg: &str) -> bool {
    let code = (code as u16).to_le_bytes();
    let sub = [code[0], code[1], 0, 0];
    debug_assert_eq!(sub.len(), ERROR_HEADER_LEN);
    let header = frame::header_for(Kind::Error, 0, corr, &[&sub, msg.as_bytes()]);
    tx.send_parts(conn, &[&header, &sub, msg.as_bytes()])
        .is_ok()
}

/// The method table and per-connection state; the event sink of the server.
struct Dispatch {
    methods: HashMap<u32, Method>,
    conns: Vec<Option<ConnState>>,
    credits: u32,
    stats: ServerStats,
    /// Where answers on outbound connections go.
    outbound: Option<OutboundHandler>,
    /// Id of the last call made on an outbound connection.
    last_call: u64,
}

/// An RPC server over one transport, run by one poll loop.
pub struct Server<T: Transport> {
    transport: T,
    dispatch: Dispatch,
    backoff: Backoff,
}

impl<T: Transport> Server<T> {
    pub fn new(transport: T, cfg: ServerConfig) -> Self {
        Self {
            transport,
            dispatch: Dispatch {
                methods: HashMap::new(),
                conns: Vec::new(),
                credits: cfg.credits.max(1),
                stats: ServerStats::default(),
                outbound: None,
                last_call: 0,
            },
            backoff: Backoff::new(cfg.backoff),
        }
    }

    /// Registers `handler` for `service/method`. Fails if the name is taken or
    /// its wire id collides with another name's.
    pub fn register<F>(
        &mut self,
        service: &str,
        method: &str,
        handler: F,
    ) -> Result<MethodId, String>
    where
        F: FnMut(&mut Call<'_>) -> Result<(), ServiceError> + Send + 'static,
    {
        let id = MethodId::new(service, method);
        let name = format!("{service}/{method}");
        if let Some(existing) = self.dispatch.methods.get(&id.0) {
            return Err(if existing.name == name {
                format!("method {name} is already registered")
            } else {
                format!(
                    "method {name} has the same wire id {id} as {}",
                    existing.name
                )
            });
        }
        self.dispatch.methods.insert(
            id.0,
            Method {
                name,
                handler: Box::new(handler),
            },
        );
        Ok(id)
    }

    /// The transport, e.g. to `listen` on it.
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    pub fn stats(&self) -> &ServerStats {
        &self.dispatch.stats
    }

    /// One non-blocking round: reap events, run handlers, send answers.
    pub fn poll_once(&mut self) -> std::io::Result<usize> {
        self.transport.poll(&mut self.dispatch)
    }

    /// Runs the poll loop until `stop` is set, spinning while busy and backing
    /// off to blocking waits while idle.
    pub fn run(&mut self, stop: &AtomicBool) -> std::io::Result<()> {
        // Bounded so `stop` is noticed within 50 ms.
        self.run_with(stop, Self::poll_once, || Duration::from_millis(50))
    }

    /// The poll loop of [`Server::run`] around a caller's round: `round`
    /// does the work (at least [`Server::poll_once`], and whatever the
    /// service owes, e.g. completing deferred calls) and returns how much it
    /// did; `wait_cap` bounds each idle wait, asked only when about to wait.
    pub fn run_with(
        &mut self,
        stop: &AtomicBool,
        mut round: impl FnMut(&mut Self) -> std::io::Result<usize>,
        mut wait_cap: impl FnMut() -> Duration,
    ) -> std::io::Result<()> {
        while !stop.load(Ordering::Relaxed) {
            if round(self)? > 0 {
                self.backoff.reset();
                continue;
            }
            match self.backoff.idle() {
                Idle::Spin => std::hint::spin_loop(),
                Idle::Yield => std::thread::yield_now(),
                Idle::Wait(d) => self.transport.wait(Some(d.min(wait_cap())))?,
            }
        }
        Ok(())
    }

    /// Answers a deferred call: `Ok(body)` or a typed error. A call whose
    /// deadline has passed is answered `DeadlineExceeded` instead.
    pub fn complete(&mut self, call: Deferred, result: Result<&[u8], ServiceError>) {
        let d = &mut self.dispatch;
        let Some(state) = d.state_mut(call.conn) else {
            d.stats.replies_dropped += 1;
            return;
        };
        state.in_flight = state.in_flight.saturating_sub(1);
        let tx = self.transport.tx();
        let late = call.deadline.is_some_and(|t| Instant::now() > t);
        let sent = match result {
            _ if late => {
                d.stats.errors_sent += 1;
                send_error(
                    tx,
                    call.conn,
                    call.correlation,
                    ErrorCode::DeadlineExceeded,
                    "answered after the deadline",
                )
            }
            Ok(body) => send_response(tx, call.conn, call.correlation, body).is_ok(),
            Err(e) => {
                d.stats.errors_sent += 1;
                send_error(tx, call.conn, call.correlation, e.code, &e.message)
            }
        };
        if !sent {
            d.stats.replies_dropped += 1;
        }
    }
}

impl Dispatch {
    fn state_mut(&mut self, conn: ConnId) -> Option<&mut ConnState> {
        self.conns
            .get_mut(conn.index())?
            .as_mut()
            .filter(|s| s.conn == conn)
    }

    fn error(&mut self, tx: &mut dyn Tx, conn: ConnId, corr: u64, code: ErrorCode, msg: &str) {
        self.stats.errors_sent += 1;
        if !send_error(tx, conn, corr, code, msg) {
            self.stats.replies_dropped += 1;
        }
    }

    fn on_message(&mut self, conn: ConnId, data: &[u8], tx: &mut dyn Tx) {
        if self.state_mut(conn).is_some_and(|s| s.outbound) {
            return self.on_outbound_message(conn, data, tx);
        }
        let max = tx.max_message();
        let frame = match frame::decode(data, max) {
            Ok(f) => f,
            Err(e) => {
                self.stats.malformed_frames += 1;
                let corr = frame::peek_correlation(data);
                self.error(tx, conn, corr, ErrorCode::MalformedFrame, &e.to_string());
                if e.is_foreign() {
                    tracing::debug!(?conn, error = %e, "closing connection that does not speak Neo frames");
                    tx.close(conn);
                }
                return;
            }
        };
        let corr = frame.header.correlation;
        if frame.header.kind != Kind::Request {
            self.stats.malformed_frames += 1;
            let msg = format!(
                "a server accepts requests, not {:?} frames",
                frame.header.kind
            );
            self.error(tx, conn, corr, ErrorCode::MalformedRequest, &msg);
            return;
        }
        let Some((method, budget, body)) = parse_request(frame.payload) else {
            self.stats.malformed_frames += 1;
            self.error(
                tx,
                conn,
                corr,
                ErrorCode::MalformedRequest,
                "request shorter than its 8-byte sub-header",
            );
            return;
        };
        let credits = self.credits;
        let Some(state) = self.state_mut(conn) else {
            return;
        };
        if state.in_flight >= credits {
            self.stats.overloaded += 1;
            let msg = format!("{credits} calls already outstanding on this connection");
            self.error(tx, conn, corr, ErrorCode::Overloaded, &msg);
            return;
        }
        state.in_flight += 1;
        let peer = state.peer;
        let Some(entry) = self.methods.get_mut(&method.0) else {
            self.stats.unknown_methods += 1;
            self.release(conn);
            self.error(
                tx,
                conn,
                corr,
                ErrorCode::UnknownMethod,
                &format!("no method with id {method}"),
            );
            return;
        };
        self.stats.calls += 1;
        let deadline = budget.map(|b| Instant::now() + b);
        let mut call = Call {
            conn,
            peer,
            correlation: corr,
            deadline,
            body,
            tx,
            answer: Answer::None,
        };
        let result = (entry.handler)(&mut call);
        let answer = std::mem::replace(&mut call.answer, Answer::None);
        let result = match (result, answer) {
            (Ok(()), Answer::Deferred) => return,
            (Ok(()), Answer::Sent) => Ok(()),
            (Ok(()), Answer::None) => Err(ServiceError::new(
                ErrorCode::Internal,
                "handler returned without answering",
            )),
            (Err(e), Answer::None) => Err(e),
            (Err(e), _) => {
                tracing::warn!(?conn, error = ?e, "handler failed after answering; error not sent");
                Ok(())
            }
        };
        self.release(conn);
        if let Err(e) = result {
            self.error(call.tx, conn, corr, e.code, &e.message);
        }
    }

    /// Starts tracking `conn` (accepted, or opened by [`Server::connect`]).
    fn open(&mut self, conn: ConnId, peer: Option<SocketAddr>, outbound: bool) {
        let i = conn.index();
        if self.conns.len() <= i {
            self.conns.resize(i + 1, None);
        }
        self.conns[i] = Some(ConnState {
            conn,
            in_flight: 0,
            peer,
            outbound,
        });
    }

    fn release(&mut self, conn: ConnId) {
        if let Some(s) = self.state_mut(conn) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }
}

impl EventSink for Dispatch {
    fn on_event(&mut self, event: Event<'_>, tx: &mut dyn Tx) {
        match event {
            Event::Message { conn, data } => self.on_message(conn, data, tx),
            Event::Connected { conn } if self.state_mut(conn).is_some_and(|s| s.outbound) => {
                self.outcome(conn, Outcome::Connected);
            }
            Event::Accepted { conn, .. } | Event::Connected { conn } => {
                self.stats.connections_accepted += 1;
                let peer = match event {
                    Event::Accepted { peer, .. } => Some(peer),
                    _ => None,
                };
                self.open(conn, peer, false);
            }
            Event::Closed { conn, reason } => {
                self.stats.connections_closed += 1;
                tracing::debug!(?conn, %reason, "connection closed");
                if self.state_mut(conn).is_some_and(|s| s.outbound) {
                    self.outcome(conn, Outcome::Closed(reason));
                }
                if let Some(slot) = self.conns.get_mut(conn.index()) {
                    if slot.is_some_and(|s| s.conn == conn) {
                        *slot = None;
                    }
                }
            }
        }
    }
}
