//! The send side of the TCP transport ([`TxSide`]): connection ids, the
//! write queues and their flushing, admission against the queue limit, and
//! the [`Tx`] methods handlers call while a received message is lent.

use super::conn::{reason_for, Flushed};
use super::TxSide;
use crate::transport::{CloseReason, ConnId, SendError, Tx};

impl TxSide {
    pub(super) fn id(&self, key: usize) -> ConnId {
        ConnId::new(key as u32, self.generations[key])
    }

    pub(super) fn key(&self, conn: ConnId) -> Option<usize> {
        let key = conn.index();
        let live =
            self.conns.contains(key) && self.generations.get(key) == Some(&conn.generation());
        live.then_some(key)
    }

    /// Marks `key` closed now; pending writes are dropped.
    pub(super) fn close_with(&mut self, key: usize, reason: CloseReason) {
        if let Some(tx) = self.conns.get_mut(key) {
            if tx.closing.is_none() || !self.closed.iter().any(|(k, _)| *k == key) {
                tx.closing = Some(reason.clone());
                self.closed.push((key, reason));
            }
        }
    }

    /// Closes `key` once its queued writes are out.
    pub(super) fn finish(&mut self, key: usize, reason: CloseReason) {
        if let Some(tx) = self.conns.get_mut(key) {
            if tx.closing.is_none() {
                tx.closing = Some(reason);
                self.mark_dirty(key);
            }
        }
    }

    pub(super) fn mark_dirty(&mut self, key: usize) {
        let tx = &mut self.conns[key];
        if !tx.dirty {
            tx.dirty = true;
            self.dirty.push(key);
        }
    }

    pub(super) fn flush_one(&mut self, key: usize) {
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

    pub(super) fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for key in dirty.drain(..) {
            if let Some(tx) = self.conns.get_mut(key) {
                tx.dirty = false;
                self.flush_one(key);
            }
        }
        self.dirty = dirty;
    }

    pub(super) fn admit(&self, conn: ConnId, len: usize) -> Result<usize, SendError> {
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
