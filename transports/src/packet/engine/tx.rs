//! The engine's sending half, [`EngineTx`]: the [`Tx`] a handler writes to
//! while a received message is lent to it. It cuts messages into packets and
//! queues them on their session; `transmit` puts them on the wire.

use std::time::Instant;

use slab::Slab;

use crate::packet::proto::{FIRST, LAST};
use crate::packet::session::{Packet, Pool, TxSession};
use crate::transport::{ConnId, SendError, Tx};

/// The sending side of the engine: what a handler may touch while a message
/// is lent to it.
pub struct EngineTx {
    pub(crate) sessions: Slab<TxSession>,
    pub(crate) generations: Vec<u16>,
    pub(super) dirty: Vec<usize>,
    pub(super) pool: Pool,
    pub(super) scratch: Vec<u8>,
    pub(super) max_message: usize,
    pub(super) max_pending: usize,
    pub(super) mss: usize,
    /// Earliest deadline any session may have armed.
    pub(super) next_timer: Option<Instant>,
}

impl EngineTx {
    pub(super) fn key(&self, conn: ConnId) -> Option<usize> {
        let k = conn.index();
        let live = self.sessions.contains(k)
            && self.generations.get(k).map(|g| *g as u32) == Some(conn.generation());
        live.then_some(k)
    }

    pub(super) fn conn(&self, key: usize) -> ConnId {
        ConnId::new(key as u32, self.generations[key] as u32)
    }

    pub(super) fn mark_dirty(&mut self, key: usize) {
        let s = &mut self.sessions[key];
        if !s.dirty {
            s.dirty = true;
            self.dirty.push(key);
        }
    }

    fn enqueue(&mut self, key: usize, len: usize, fill: &mut dyn FnMut(&mut [u8])) {
        let mss = self.mss;
        let s = &mut self.sessions[key];
        let n = len.div_ceil(mss).max(1);
        if n == 1 {
            let mut payload = self.pool.take();
            payload.resize(len, 0);
            fill(&mut payload);
            push(s, FIRST | LAST, len as u32, payload);
        } else {
            self.scratch.clear();
            self.scratch.resize(len, 0);
            fill(&mut self.scratch);
            for (i, chunk) in self.scratch.chunks(mss).enumerate() {
                let mut payload = self.pool.take();
                payload.extend_from_slice(chunk);
                let flags = if i == 0 { FIRST } else { 0 } | if i == n - 1 { LAST } else { 0 };
                push(s, flags, if i == 0 { len as u32 } else { 0 }, payload);
            }
        }
        self.mark_dirty(key);
    }
}

fn push(s: &mut TxSession, flags: u8, msg_len: u32, payload: Vec<u8>) {
    let seq = s.next_seq;
    s.next_seq = seq.wrapping_add(1);
    s.queued_bytes += payload.len();
    s.queued.push_back(Packet {
        seq,
        flags,
        msg_len,
        payload,
        sent_at: None,
        tries: 0,
        sacked: false,
        resend: false,
    });
}

impl Tx for EngineTx {
    fn send_with(
        &mut self,
        conn: ConnId,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), SendError> {
        let key = self.key(conn).ok_or(SendError::Closed)?;
        let s = &self.sessions[key];
        if s.closing {
            return Err(SendError::Closed);
        }
        if len > self.max_message {
            return Err(SendError::TooLarge {
                len,
                max: self.max_message,
            });
        }
        if s.queued_bytes + len > self.max_pending {
            return Err(SendError::Full {
                pending: s.queued_bytes,
            });
        }
        self.enqueue(key, len, fill);
        Ok(())
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(key) = self.key(conn) {
            self.sessions[key].closing = true;
            self.mark_dirty(key);
        }
    }

    fn max_message(&self) -> usize {
        self.max_message
    }
}
