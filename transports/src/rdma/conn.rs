//! One connection's state on the RDMA backend — credits, send slots, the
//! queue beyond the credits, reassembly — and the wire conventions: the
//! 4-byte fragment header, the hello, and how work request ids name their
//! connection and buffer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use sideway::rdmacm::communication_manager::Identifier;
use slab::Slab;

use super::verbs::{self, RemoteWord};
use super::RdmaConfig;
use crate::transport::{CloseReason, ConnId, Event};

/// Fragment header flags (a u32, little-endian, in front of each SEND).
pub(super) const MORE: u32 = 1 << 31;
pub(super) const HELLO: u32 = 1 << 30;
pub(super) const HEADER: usize = 4;
pub(super) const HELLO_LEN: usize = 8 + 4 + 4 + 4;

/// Work request ids: kind, connection slot and generation, buffer slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Recv = 1,
    Send = 2,
    Credit = 3,
}

/// The slot field of a request that holds no slot (inline sends, credit writes).
pub(super) const NO_SLOT: usize = 0xffff;

pub(super) fn wr_id(kind: Kind, conn: ConnId, slot: usize) -> u64 {
    ((kind as u64) << 60)
        | ((conn.index() as u64 & 0xff_ffff) << 36)
        | ((conn.generation() as u64 & 0xf_ffff) << 16)
        | slot as u64 & 0xffff
}

pub(super) fn split_wr_id(id: u64) -> (u64, usize, u32, usize) {
    (
        id >> 60,
        ((id >> 36) & 0xff_ffff) as usize,
        ((id >> 16) & 0xf_ffff) as u32,
        (id & 0xffff) as usize,
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Client: resolving the address, then the route.
    Resolving,
    /// Client: connect sent; server: accept sent.
    Connecting,
    Open,
    /// Closed locally or by the peer; waiting to be reaped.
    Done,
}

pub(super) struct Hello {
    pub(super) word: RemoteWord,
    pub(super) slots: u64,
    pub(super) slot_size: usize,
}

pub(super) struct Conn {
    pub(super) generation: u32,
    pub(super) id: Arc<Identifier>,
    pub(super) state: State,
    pub(super) outgoing: bool,
    pub(super) peer: SocketAddr,
    pub(super) device: Option<usize>,
    pub(super) res: Option<verbs::Conn>,
    pub(super) peer_hello: Option<Hello>,
    /// SENDs posted to the peer (hello included).
    pub(super) sent: u64,
    /// Receive buffers read and posted again; the peer learns it by WRITE.
    pub(super) reposted: u64,
    pub(super) written: u64,
    pub(super) free_send: Vec<usize>,
    /// Work requests on the send queue not yet completed.
    pub(super) sq: usize,
    pub(super) pending: VecDeque<(Vec<u8>, usize)>,
    pub(super) pending_bytes: usize,
    pub(super) reassembly: Vec<u8>,
    pub(super) close_requested: bool,
    /// Out of credits with messages queued (for the stall counter).
    pub(super) stalled: bool,
}

impl Conn {
    pub(super) fn handle(&self, index: usize) -> ConnId {
        ConnId::new(index as u32, self.generation)
    }
    /// Posts the first `len` bytes of send slot `slot` as one SEND and
    /// accounts for it: an inline send frees its slot at once, any other
    /// when its completion arrives.
    pub(super) fn post_slot(
        &mut self,
        conn: ConnId,
        slot: usize,
        len: usize,
    ) -> Result<(), super::RdmaError> {
        let Some(res) = self.res.as_mut() else {
            return Err(super::RdmaError::Unavailable("no queue pair".into()));
        };
        let inline = res.inline(len);
        let id = wr_id(Kind::Send, conn, if inline { NO_SLOT } else { slot });
        if let Err(e) = res.post_send(slot, len, id) {
            self.free_send.push(slot);
            return Err(e);
        }
        if inline {
            self.free_send.push(slot);
        }
        self.sent += 1;
        self.sq += 1;
        Ok(())
    }

    pub(super) fn credits(&self) -> u64 {
        let (Some(h), Some(res)) = (&self.peer_hello, &self.res) else {
            return 0;
        };
        let freed = stable(|| res.read_credit());
        h.slots.saturating_sub(self.sent.saturating_sub(freed))
    }
}

/// Reads a word the NIC may be writing until two reads agree.
pub(super) fn stable(read: impl Fn() -> u64) -> u64 {
    let mut a = read();
    loop {
        let b = read();
        if a == b {
            return a;
        }
        a = b;
    }
}

/// The connection table and devices: the sending half lent to callbacks.
pub(super) struct Conns {
    pub(super) cfg: RdmaConfig,
    pub(super) table: Slab<Conn>,
    pub(super) generations: Vec<u32>,
    pub(super) devices: Vec<verbs::Device>,
    pub(super) closed: Vec<(ConnId, CloseReason)>,
    /// Connections with something to send, gathered per poll round.
    pub(super) pump_keys: Vec<usize>,
    pub(super) announced: Vec<Event<'static>>,
    pub(super) stats: Stats,
}

#[derive(Debug, Default, Clone)]
pub(super) struct Stats {
    pub(super) sends: u64,
    pub(super) recvs: u64,
    pub(super) credit_writes: u64,
    pub(super) fragments: u64,
    /// Times a connection ran out of credits with messages queued.
    pub(super) credit_stalls: u64,
    /// The last failure that closed a connection, for logs and tests.
    pub(super) last_error: Option<String>,
}
