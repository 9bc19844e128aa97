//! The RDMA data path: reaping completions (receives delivered, buffers
//! posted again, sends retired), the credit writes, and the send side lent
//! to callbacks — direct sends into registered slots, and the queue that
//! drains as credits return.

use std::io;

use super::conn::*;
use super::verbs::{Completion, RemoteWord};
use super::{RdmaError, RdmaTransport};
use crate::transport::{CloseReason, ConnId, Event, EventSink, SendError, Tx};

impl RdmaTransport {
    pub(super) fn reap_completions(
        &mut self,
        sink: &mut dyn EventSink,
    ) -> Result<usize, RdmaError> {
        let mut delivered = 0;
        for wc in std::mem::take(&mut self.backlog) {
            delivered += self.on_completion(wc, sink);
        }
        for d in 0..self.conns.devices.len() {
            self.wcs.clear();
            self.conns.devices[d].poll(&mut self.wcs)?;
            for i in 0..self.wcs.len() {
                let wc = self.wcs[i];
                delivered += self.on_completion(wc, sink);
            }
        }
        Ok(delivered)
    }

    pub(super) fn on_completion(&mut self, wc: Completion, sink: &mut dyn EventSink) -> usize {
        let (kind, index, generation, slot) = split_wr_id(wc.wr_id);
        let our_slot = self.conns.cfg.slot_size;
        let max_message = self.conns.cfg.max_message;
        let Some(e) = self
            .conns
            .table
            .get_mut(index)
            .filter(|e| e.generation == generation)
        else {
            return 0; // a request of a connection already gone
        };
        let conn = e.handle(index);
        if kind != Kind::Recv as u64 {
            e.sq = e.sq.saturating_sub(1);
            if kind == Kind::Send as u64 && slot != NO_SLOT {
                e.free_send.push(slot);
            }
        }
        if wc.status != 0 {
            if e.state == State::Open && !e.close_requested {
                tracing::warn!(?conn, status = wc.status, "RDMA work request failed");
                self.conns.stats.last_error = Some(format!(
                    "{conn:?}: work request kind {kind} failed with status {}",
                    wc.status
                ));
                self.conns
                    .close_now(conn, CloseReason::Io(io::ErrorKind::Other));
            }
            return 0;
        }
        if kind != Kind::Recv as u64 {
            return 0;
        }
        self.conns.stats.recvs += 1;
        let Conn {
            res,
            peer_hello,
            reassembly,
            reposted,
            ..
        } = e;
        let Some(res) = res.as_mut() else { return 0 };
        let data = res.received(slot, wc.byte_len as usize);
        let outcome = match data.get(..HEADER) {
            None => Err(CloseReason::Io(io::ErrorKind::InvalidData)),
            Some(head) => {
                let head = u32::from_le_bytes(head.try_into().expect("4 bytes"));
                let body = &data[HEADER..];
                if head & HELLO != 0 {
                    match parse_hello(body) {
                        Some(h) if h.slot_size >= our_slot => {
                            *peer_hello = Some(h);
                            Ok(false)
                        }
                        _ => {
                            tracing::warn!(
                                ?conn,
                                "RDMA peer hello unusable (slot size below ours?)"
                            );
                            Err(CloseReason::Io(io::ErrorKind::InvalidData))
                        }
                    }
                } else if head & MORE != 0 || !reassembly.is_empty() {
                    let len = reassembly.len() + body.len();
                    if len > max_message {
                        Err(CloseReason::Oversize {
                            len: len as u64,
                            max: max_message,
                        })
                    } else {
                        reassembly.extend_from_slice(body);
                        if head & MORE == 0 {
                            std::mem::swap(&mut self.scratch, reassembly);
                            Ok(true)
                        } else {
                            Ok(false)
                        }
                    }
                } else {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(body);
                    Ok(true)
                }
            }
        };
        // The buffer is free again: post it and count it for the peer.
        let repost = res.post_recv(slot, wr_id(Kind::Recv, conn, slot));
        *reposted += 1;
        let deliver = match (outcome, repost) {
            (Err(reason), _) => {
                self.conns.close_now(conn, reason);
                return 0;
            }
            (_, Err(err)) => {
                tracing::warn!(?conn, error = %err, "RDMA re-post of a receive failed");
                self.conns
                    .close_now(conn, CloseReason::Io(io::ErrorKind::Other));
                return 0;
            }
            (Ok(d), Ok(())) => d,
        };
        if !deliver {
            return 0;
        }
        sink.on_event(
            Event::Message {
                conn,
                data: &self.scratch,
            },
            &mut self.conns,
        );
        self.scratch.clear();
        1
    }

    pub(super) fn deliver_announced(&mut self, sink: &mut dyn EventSink) -> usize {
        let mut n = 0;
        let announced = std::mem::take(&mut self.conns.announced);
        for ev in announced {
            sink.on_event(ev, &mut self.conns);
            n += 1;
        }
        let closed = std::mem::take(&mut self.conns.closed);
        for (conn, reason) in closed {
            sink.on_event(Event::Closed { conn, reason }, &mut self.conns);
            n += 1;
        }
        n
    }
}

pub(super) fn parse_hello(b: &[u8]) -> Option<Hello> {
    let b = b.get(..HELLO_LEN)?;
    let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    Some(Hello {
        word: RemoteWord {
            addr: u64::from_le_bytes(b[0..8].try_into().expect("8 bytes")),
            rkey: u32_at(8),
        },
        slots: u32_at(12) as u64,
        slot_size: u32_at(16) as usize,
    })
}

impl Conns {
    /// Established: send our hello, tell the user.
    pub(super) fn opened(&mut self, conn: ConnId) {
        let cfg = self.cfg.clone();
        let Some(e) = self.table.get_mut(conn.index()) else {
            return;
        };
        if e.state == State::Open {
            return;
        }
        e.state = State::Open;
        let Some(res) = e.res.as_mut() else { return };
        let Some(slot) = e.free_send.pop() else {
            return;
        };
        let w = res.credit_word();
        let buf = res.send_slot(slot);
        buf[..HEADER].copy_from_slice(&HELLO.to_le_bytes());
        let h = &mut buf[HEADER..HEADER + HELLO_LEN];
        h[0..8].copy_from_slice(&w.addr.to_le_bytes());
        h[8..12].copy_from_slice(&w.rkey.to_le_bytes());
        h[12..16].copy_from_slice(&(cfg.recv_slots as u32).to_le_bytes());
        h[16..20].copy_from_slice(&(cfg.slot_size as u32).to_le_bytes());
        if let Err(err) = e.post_slot(conn, slot, HEADER + HELLO_LEN) {
            tracing::warn!(?conn, error = %err, "RDMA hello failed");
            self.close_now(conn, CloseReason::Io(io::ErrorKind::Other));
            return;
        }
        let ev = if e.outgoing {
            Event::Connected { conn }
        } else {
            Event::Accepted { conn, peer: e.peer }
        };
        self.announced.push(ev);
    }

    /// Closes at once (an error): the user hears `reason`.
    pub(super) fn close_now(&mut self, conn: ConnId, reason: CloseReason) {
        if self.stats.last_error.is_none() {
            self.stats.last_error = Some(format!("{conn:?} closed: {reason}"));
        }
        if let Some(e) = self.table.get(conn.index()) {
            let _ = e.id.disconnect();
        }
        self.finish(conn, reason);
    }

    /// Releases the connection and queues its Closed event.
    pub(super) fn finish(&mut self, conn: ConnId, reason: CloseReason) {
        let Some(e) = self
            .table
            .get(conn.index())
            .filter(|e| e.generation == conn.generation())
        else {
            return;
        };
        if e.state == State::Done {
            return;
        }
        let e = self.table.remove(conn.index());
        let _ = e.id.disconnect();
        // Dropping `e` destroys the QP and deregisters its memory; the
        // identifier goes with the last reference.
        drop(e);
        self.closed.push((conn, reason));
    }

    pub(super) fn live(&mut self, conn: ConnId) -> Result<&mut Conn, SendError> {
        self.table
            .get_mut(conn.index())
            .filter(|e| e.generation == conn.generation() && !e.close_requested)
            .ok_or(SendError::Closed)
    }

    /// Sends what is queued on `index` while credits, slots and queue room last.
    pub(super) fn pump(&mut self, index: usize) {
        let slot_size = self.cfg.slot_size;
        let send_room = self.cfg.send_slots;
        let Some(e) = self.table.get_mut(index) else {
            return;
        };
        if e.state != State::Open || e.peer_hello.is_none() {
            return;
        }
        let conn = e.handle(index);
        let mut failed = false;
        let (mut sends, mut fragments, mut stalls) = (0, 0, 0);
        while !e.pending.is_empty() {
            if e.credits() == 0 {
                // Counted once per stall, not per look while it lasts.
                if !e.stalled {
                    e.stalled = true;
                    stalls += 1;
                }
                break;
            }
            e.stalled = false;
            if e.sq >= send_room {
                break;
            }
            let Some(slot) = e.free_send.pop() else { break };
            let Some(res) = e.res.as_mut() else { break };
            let (msg, off) = e.pending.front().expect("not empty");
            let chunk = (msg.len() - off).min(slot_size - HEADER);
            let more = off + chunk < msg.len();
            let buf = res.send_slot(slot);
            buf[..HEADER].copy_from_slice(&(if more { MORE } else { 0 }).to_le_bytes());
            buf[HEADER..HEADER + chunk].copy_from_slice(&msg[*off..off + chunk]);
            if let Err(err) = e.post_slot(conn, slot, HEADER + chunk) {
                tracing::warn!(?conn, error = %err, "RDMA send failed");
                failed = true;
                break;
            }
            sends += 1;
            fragments += more as u64;
            let (_, off) = e.pending.front_mut().expect("not empty");
            *off += chunk;
            if !more {
                let (m, _) = e.pending.pop_front().expect("front exists");
                e.pending_bytes -= m.len();
            }
        }
        let done = e.close_requested && e.pending.is_empty() && e.sq == 0;
        self.stats.sends += sends;
        self.stats.fragments += fragments;
        self.stats.credit_stalls += stalls;
        if failed {
            self.close_now(conn, CloseReason::Io(io::ErrorKind::Other));
        } else if done {
            self.finish(conn, CloseReason::Local);
        }
    }

    /// Tells each peer how many of its receive buffers are free again.
    pub(super) fn write_credits(&mut self) {
        for (index, e) in self.table.iter_mut() {
            if e.state != State::Open || e.reposted == e.written {
                continue;
            }
            let (Some(h), Some(res)) = (&e.peer_hello, e.res.as_mut()) else {
                continue;
            };
            if e.sq >= self.cfg.send_slots + 4 {
                continue; // the queue is full; next round
            }
            let conn = ConnId::new(index as u32, e.generation);
            match res.post_credit(h.word, e.reposted, wr_id(Kind::Credit, conn, NO_SLOT)) {
                Ok(()) => {
                    e.written = e.reposted;
                    e.sq += 1;
                    self.stats.credit_writes += 1;
                }
                Err(err) => tracing::warn!(?conn, error = %err, "RDMA credit write failed"),
            }
        }
    }

    pub(super) fn pump_all(&mut self) {
        // The list is reused: no allocation per poll round.
        let mut keys = std::mem::take(&mut self.pump_keys);
        keys.clear();
        keys.extend(
            self.table
                .iter()
                .filter(|(_, e)| !e.pending.is_empty() || e.close_requested)
                .map(|(k, _)| k),
        );
        for &k in &keys {
            self.pump(k);
        }
        self.pump_keys = keys;
    }
}

impl Tx for Conns {
    fn send_with(
        &mut self,
        conn: ConnId,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), SendError> {
        let max = self.cfg.max_message;
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let slot_size = self.cfg.slot_size;
        let max_pending = self.cfg.max_pending;
        let send_room = self.cfg.send_slots;
        let e = self.live(conn)?;
        // Fast path: written straight into a registered send slot.
        let direct = e.state == State::Open
            && e.pending.is_empty()
            && len + HEADER <= slot_size
            && e.sq < send_room
            && !e.free_send.is_empty()
            && e.credits() > 0;
        if direct {
            let slot = e.free_send.pop().expect("checked");
            let res = e.res.as_mut().expect("open connections have resources");
            let buf = res.send_slot(slot);
            buf[..HEADER].copy_from_slice(&0u32.to_le_bytes());
            fill(&mut buf[HEADER..HEADER + len]);
            return match e.post_slot(conn, slot, HEADER + len) {
                Ok(()) => {
                    self.stats.sends += 1;
                    Ok(())
                }
                Err(err) => {
                    tracing::warn!(?conn, error = %err, "RDMA send failed");
                    self.close_now(conn, CloseReason::Io(io::ErrorKind::Other));
                    Err(SendError::Closed)
                }
            };
        }
        if e.pending_bytes + len > max_pending {
            return Err(SendError::Full {
                pending: e.pending_bytes,
            });
        }
        let mut v = vec![0u8; len];
        fill(&mut v);
        e.pending_bytes += len;
        e.pending.push_back((v, 0));
        self.pump(conn.index());
        Ok(())
    }

    fn close(&mut self, conn: ConnId) {
        let Some(e) = self
            .table
            .get_mut(conn.index())
            .filter(|e| e.generation == conn.generation())
        else {
            return;
        };
        if e.close_requested {
            return;
        }
        e.close_requested = true;
        if e.state != State::Open || (e.pending.is_empty() && e.sq == 0) {
            self.finish(conn, CloseReason::Local);
        }
    }

    fn max_message(&self) -> usize {
        self.cfg.max_message
    }
}
