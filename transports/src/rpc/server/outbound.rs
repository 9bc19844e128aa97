//! Calls the server makes itself, from its own poll loop, on connections it
//! opens over its own transport. A broker's follower fetches from its
//! partition leaders this way: an AF_XDP engine, a DPDK port or an RDMA
//! device belongs to one loop, so the calls cannot come from another thread
//! with a transport of their own.
//!
//! [`Server::connect`] opens a connection and [`Server::call`] sends a
//! request on it, returning the call's id. What comes back (the connection
//! established, an answer, an error answer, the connection gone) goes to the
//! one handler set with [`Server::on_outbound`], on the loop's thread, an
//! answer's body lent from the transport. Deadlines are the caller's: it
//! knows what it waits for, and closes the connection when it gives up.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::{Dispatch, Server};
use crate::frame::{self, Kind};
use crate::rpc::{parse_error, request_header, MethodId, RpcError};
use crate::transport::{CloseReason, ConnId, Transport, Tx};

/// What happened on an outbound connection.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// The connection is established (calls made before were queued).
    Connected,
    /// The answer to `call`, lent until the handler returns.
    Answer { call: u64, body: &'a [u8] },
    /// `call` failed at the peer (an error answer).
    Failed { call: u64, error: RpcError },
    /// The connection ended; its unanswered calls never will be.
    Closed(CloseReason),
}

/// The handler of [`Server::on_outbound`].
pub type OutboundHandler = Box<dyn FnMut(ConnId, Outcome<'_>) + Send>;

impl<T: Transport> Server<T> {
    /// Sets where outcomes on outbound connections go (one handler; a later
    /// call replaces it).
    pub fn on_outbound(&mut self, handler: impl FnMut(ConnId, Outcome<'_>) + Send + 'static) {
        self.dispatch.outbound = Some(Box::new(handler));
    }

    /// Starts connecting to `addr`; [`Outcome::Connected`] or
    /// [`Outcome::Closed`] follows.
    pub fn connect(&mut self, addr: SocketAddr) -> io::Result<ConnId> {
        let conn = self.transport.connect(addr)?;
        self.dispatch.open(conn, Some(addr), true);
        Ok(conn)
    }

    /// Sends a call of `method` on an outbound connection; the callee gives
    /// up after `budget`. Returns the call's id, which its outcome names.
    pub fn call(
        &mut self,
        conn: ConnId,
        method: MethodId,
        body: &[u8],
        budget: Duration,
    ) -> Result<u64, RpcError> {
        let d = &mut self.dispatch;
        if !d.state_mut(conn).is_some_and(|s| s.outbound) {
            return Err(RpcError::NotConnected);
        }
        d.last_call += 1;
        let call = d.last_call;
        let sub = request_header(method, Some(budget));
        let header = frame::header_for(Kind::Request, 0, call, &[&sub, body]);
        self.transport
            .tx()
            .send_parts(conn, &[&header, &sub, body])?;
        Ok(call)
    }

    /// Closes an outbound connection; [`Outcome::Closed`] follows.
    pub fn close(&mut self, conn: ConnId) {
        if self.dispatch.state_mut(conn).is_some_and(|s| s.outbound) {
            self.transport.tx().close(conn);
        }
    }
}

impl Dispatch {
    pub(super) fn outcome(&mut self, conn: ConnId, outcome: Outcome<'_>) {
        match &mut self.outbound {
            Some(h) => h(conn, outcome),
            None => tracing::debug!(?conn, ?outcome, "outbound outcome with no handler"),
        }
    }

    /// An answer (or not) on an outbound connection.
    pub(super) fn on_outbound_message(&mut self, conn: ConnId, data: &[u8], tx: &mut dyn Tx) {
        let frame = match frame::decode(data, tx.max_message()) {
            Ok(f) => f,
            Err(e) => {
                self.stats.malformed_frames += 1;
                tracing::warn!(?conn, error = %e, "malformed answer on an outbound connection; closing it");
                tx.close(conn);
                return;
            }
        };
        let call = frame.header.correlation;
        match frame.header.kind {
            Kind::Response => self.outcome(
                conn,
                Outcome::Answer {
                    call,
                    body: frame.payload,
                },
            ),
            Kind::Error => self.outcome(
                conn,
                Outcome::Failed {
                    call,
                    error: parse_error(frame.payload),
                },
            ),
            kind => {
                self.stats.malformed_frames += 1;
                tracing::warn!(?conn, ?kind, "the peer of an outbound connection sent a frame that is not an answer; closing it");
                tx.close(conn);
            }
        }
    }
}
