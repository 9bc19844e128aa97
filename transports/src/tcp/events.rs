//! The TCP transport's event handling: accepting connections, reading
//! (plain or through TLS) and delivering whole messages, writing when a
//! socket drains, and reaping closed connections.

use std::io;

use super::conn::{reason_for, Parsed};
use super::tls_conn::{ReadError, TlsConn};
use super::TcpTransport;
use crate::transport::{CloseReason, Event, EventSink};

impl TcpTransport {
    pub(super) fn accept_all(&mut self, li: usize, sink: &mut dyn EventSink) -> usize {
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
    pub(super) fn read_ready(
        &mut self,
        key: usize,
        hangup: bool,
        sink: &mut dyn EventSink,
    ) -> usize {
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

    pub(super) fn write_ready(&mut self, key: usize, sink: &mut dyn EventSink) -> usize {
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
    pub(super) fn reap_closed(&mut self, sink: &mut dyn EventSink) -> usize {
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
