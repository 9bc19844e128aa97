//! The RPC client: starts calls, matches answers by correlation id, enforces
//! per-connection credits and deadlines. Non-blocking at its core
//! ([`Client::start`] + [`Client::poll`]); [`Client::call`] blocks for
//! convenience.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use slab::Slab;

use super::{parse_error, request_header, MethodId, RpcError};
use crate::backoff::{Backoff, BackoffConfig, Idle};
use crate::frame::{self, Kind};
use crate::transport::{CloseReason, ConnId, Event, EventSink, Transport, Tx};

/// Client limits.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Calls outstanding per connection; match the server's credits.
    pub credits: u32,
    /// Deadline of calls started without one.
    pub default_timeout: Duration,
    pub backoff: BackoffConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            credits: 64,
            default_timeout: Duration::from_secs(30),
            backoff: BackoffConfig::default(),
        }
    }
}

/// Handle of one call, unique for the life of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallId(u64);

/// Receives each finished call: the answer body, lent, or why it failed.
pub type OnDone<'a> = dyn FnMut(CallId, Result<&[u8], RpcError>) + 'a;

/// Counters, for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub started: u64,
    pub completed: u64,
    pub failed: u64,
    pub expired: u64,
    /// Answers for calls that had already expired or never existed.
    pub stray_answers: u64,
}

struct Pending {
    conn: ConnId,
    deadline: Instant,
    generation: u32,
}

#[derive(Default)]
struct ConnState {
    connected: bool,
    outstanding: u32,
    closed: Option<CloseReason>,
}

struct Book {
    calls: Slab<Pending>,
    generation: u32,
    conns: HashMap<ConnId, ConnState>,
    stats: ClientStats,
}

/// An RPC client over one transport, driven by the caller's thread.
pub struct Client<T: Transport> {
    transport: T,
    book: Book,
    cfg: ClientConfig,
    next_sweep: Instant,
}

impl Book {
    fn finish(&mut self, id: CallId) -> Option<Pending> {
        let key = (id.0 & 0xffff_ffff) as usize;
        let live = self
            .calls
            .get(key)
            .is_some_and(|p| p.generation == (id.0 >> 32) as u32);
        if !live {
            return None;
        }
        let p = self.calls.remove(key);
        if let Some(c) = self.conns.get_mut(&p.conn) {
            c.outstanding = c.outstanding.saturating_sub(1);
        }
        Some(p)
    }

    fn id(&self, key: usize) -> CallId {
        CallId(((self.calls[key].generation as u64) << 32) | key as u64)
    }
}

struct Sink<'a> {
    book: &'a mut Book,
    on_done: &'a mut OnDone<'a>,
}

impl EventSink for Sink<'_> {
    fn on_event(&mut self, event: Event<'_>, _tx: &mut dyn Tx) {
        match event {
            Event::Connected { conn } | Event::Accepted { conn, .. } => {
                self.book.conns.entry(conn).or_default().connected = true;
            }
            Event::Message { conn, data } => self.on_message(conn, data),
            Event::Closed { conn, reason } => {
                let failed: Vec<usize> = self
                    .book
                    .calls
                    .iter()
                    .filter(|(_, p)| p.conn == conn)
                    .map(|(k, _)| k)
                    .collect();
                for key in failed {
                    let id = self.book.id(key);
                    self.book.finish(id);
                    self.book.stats.failed += 1;
                    (self.on_done)(id, Err(RpcError::ConnectionClosed(reason.clone())));
                }
                self.book.conns.entry(conn).or_default().closed = Some(reason);
            }
        }
    }
}

impl Sink<'_> {
    fn on_message(&mut self, conn: ConnId, data: &[u8]) {
        let (corr, result) = match frame::decode(data, usize::MAX) {
            Ok(f) if f.header.kind == Kind::Response => (f.header.correlation, Ok(f.payload)),
            Ok(f) if f.header.kind == Kind::Error => {
                (f.header.correlation, Err(parse_error(f.payload)))
            }
            Ok(f) => (
                f.header.correlation,
                Err(RpcError::Malformed(frame::FrameError::UnknownKind(
                    f.header.kind as u8,
                ))),
            ),
            Err(e) => (frame::peek_correlation(data), Err(RpcError::Malformed(e))),
        };
        let id = CallId(corr);
        match self.book.finish(id) {
            Some(p) if p.conn == conn => {
                if result.is_ok() {
                    self.book.stats.completed += 1;
                } else {
                    self.book.stats.failed += 1;
                }
                (self.on_done)(id, result);
            }
            _ => self.book.stats.stray_answers += 1,
        }
    }
}

impl<T: Transport> Client<T> {
    pub fn new(transport: T, cfg: ClientConfig) -> Self {
        Self {
            transport,
            book: Book {
                calls: Slab::new(),
                generation: 0,
                conns: HashMap::new(),
                stats: ClientStats::default(),
            },
            cfg,
            next_sweep: Instant::now(),
        }
    }

    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    pub fn stats(&self) -> &ClientStats {
        &self.book.stats
    }

    /// Calls in flight.
    pub fn outstanding(&self) -> usize {
        self.book.calls.len()
    }

    /// Starts connecting; calls may be started at once (they are queued).
    pub fn connect_async(&mut self, addr: SocketAddr) -> Result<ConnId, RpcError> {
        let conn = self.transport.connect(addr)?;
        self.book.conns.insert(conn, ConnState::default());
        Ok(conn)
    }

    /// Connects and waits until the connection is up or `timeout` passes.
    /// Calls on other connections that finish meanwhile are dropped: use
    /// [`Client::connect_with`] when some may be in flight.
    pub fn connect(&mut self, addr: SocketAddr, timeout: Duration) -> Result<ConnId, RpcError> {
        self.connect_with(addr, timeout, &mut |_, _| {})
    }

    /// [`Client::connect`] that hands calls finishing meanwhile to `others`.
    pub fn connect_with(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
        others: &mut OnDone<'_>,
    ) -> Result<ConnId, RpcError> {
        let conn = self.connect_async(addr)?;
        let deadline = Instant::now() + timeout;
        loop {
            self.poll(others)?;
            let state = &self.book.conns[&conn];
            if state.connected {
                return Ok(conn);
            }
            if let Some(reason) = &state.closed {
                return Err(RpcError::ConnectionClosed(reason.clone()));
            }
            if Instant::now() >= deadline {
                self.transport.tx().close(conn);
                return Err(RpcError::DeadlineExceeded);
            }
            self.transport.wait(Some(Duration::from_millis(1)))?;
        }
    }

    /// Closes `conn`; its outstanding calls fail with `ConnectionClosed`.
    pub fn close(&mut self, conn: ConnId) {
        self.transport.tx().close(conn);
    }

    /// Starts a call of `method` with `body` on `conn`. The answer arrives
    /// through [`Client::poll`].
    pub fn start(
        &mut self,
        conn: ConnId,
        method: MethodId,
        body: &[u8],
        timeout: Option<Duration>,
    ) -> Result<CallId, RpcError> {
        let state = self
            .book
            .conns
            .get_mut(&conn)
            .ok_or(RpcError::NotConnected)?;
        if let Some(reason) = &state.closed {
            return Err(RpcError::ConnectionClosed(reason.clone()));
        }
        if state.outstanding >= self.cfg.credits {
            return Err(RpcError::NoCredit(state.outstanding));
        }
        let timeout = timeout.unwrap_or(self.cfg.default_timeout);
        self.book.generation = self.book.generation.wrapping_add(1);
        let generation = self.book.generation;
        let key = self.book.calls.vacant_key();
        if key > u32::MAX as usize {
            return Err(RpcError::NoCredit(state.outstanding));
        }
        let corr = ((generation as u64) << 32) | key as u64;
        let sub = request_header(method, Some(timeout));
        let header = frame::header_for(Kind::Request, 0, corr, &[&sub, body]);
        self.transport
            .tx()
            .send_parts(conn, &[&header, &sub, body])?;
        state.outstanding += 1;
        self.book.calls.insert(Pending {
            conn,
            deadline: Instant::now() + timeout,
            generation,
        });
        self.book.stats.started += 1;
        Ok(CallId(corr))
    }

    /// Reaps answers without blocking; each finished call (answered, failed,
    /// or past its deadline) is reported to `on_done` exactly once, with the
    /// answer body lent from the transport. Returns transport events handled.
    pub fn poll(&mut self, on_done: &mut OnDone<'_>) -> Result<usize, RpcError> {
        let n = self.transport.poll(&mut Sink {
            book: &mut self.book,
            on_done,
        })?;
        if !self.book.calls.is_empty() {
            let now = Instant::now();
            if now >= self.next_sweep {
                self.next_sweep = now + Duration::from_millis(1);
                self.expire(now, on_done);
            }
        }
        Ok(n)
    }

    fn expire(&mut self, now: Instant, on_done: &mut OnDone<'_>) {
        let expired: Vec<usize> = self
            .book
            .calls
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| k)
            .collect();
        for key in expired {
            let id = self.book.id(key);
            self.book.finish(id);
            self.book.stats.expired += 1;
            on_done(id, Err(RpcError::DeadlineExceeded));
        }
    }

    /// Blocking call: starts it and polls (spinning, then backing off) until
    /// it finishes; the answer is copied into `out`. Answers to *other* calls
    /// that arrive meanwhile are dropped — use [`Client::call_into_with`]
    /// when other calls may be in flight.
    pub fn call_into(
        &mut self,
        conn: ConnId,
        method: MethodId,
        body: &[u8],
        timeout: Option<Duration>,
        out: &mut Vec<u8>,
    ) -> Result<(), RpcError> {
        self.call_into_with(conn, method, body, timeout, out, &mut |_, _| {})
    }

    /// [`Client::call_into`] that hands every other call finishing meanwhile
    /// to `others`, exactly as [`Client::poll`] would.
    pub fn call_into_with(
        &mut self,
        conn: ConnId,
        method: MethodId,
        body: &[u8],
        timeout: Option<Duration>,
        out: &mut Vec<u8>,
        others: &mut OnDone<'_>,
    ) -> Result<(), RpcError> {
        let me = self.start(conn, method, body, timeout)?;
        let mut result = None;
        let mut backoff = Backoff::new(self.cfg.backoff);
        while result.is_none() {
            let n = self.poll(&mut |id, r| {
                if id == me {
                    result = Some(r.map(|b| {
                        out.clear();
                        out.extend_from_slice(b);
                    }));
                } else {
                    others(id, r);
                }
            })?;
            if n > 0 {
                backoff.reset();
            } else if result.is_none() {
                match backoff.idle() {
                    Idle::Spin => std::hint::spin_loop(),
                    Idle::Yield => std::thread::yield_now(),
                    Idle::Wait(d) => self.transport.wait(Some(d.min(Duration::from_millis(1))))?,
                }
            }
        }
        result.expect("loop ends with a result")
    }

    /// [`Client::call_into`] returning a fresh vector.
    pub fn call(
        &mut self,
        conn: ConnId,
        method: MethodId,
        body: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, RpcError> {
        let mut out = Vec::new();
        self.call_into(conn, method, body, timeout, &mut out)?;
        Ok(out)
    }
}
