//! Per-session reliability state, split like the TCP backend's connections:
//! [`TxSession`] (what we send: sequence numbers, in-flight packets,
//! retransmission, the peer's credits) and [`RxSession`] (what we receive:
//! in-order delivery, the reorder ring, reassembly, owed acknowledgements).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::proto::{self, before, Type, FIRST, LAST};

/// A pool of packet buffers, so steady-state traffic allocates nothing.
#[derive(Default)]
pub struct Pool {
    free: Vec<Vec<u8>>,
}

impl Pool {
    pub fn take(&mut self) -> Vec<u8> {
        let mut b = self.free.pop().unwrap_or_default();
        b.clear();
        b
    }
    pub fn give(&mut self, b: Vec<u8>) {
        if self.free.len() < 4096 {
            self.free.push(b);
        }
    }
}

/// One outgoing packet: its payload and transmission history.
pub struct Packet {
    pub seq: u32,
    pub flags: u8,
    pub msg_len: u32,
    pub payload: Vec<u8>,
    pub sent_at: Option<Instant>,
    pub tries: u32,
    pub sacked: bool,
    pub resend: bool,
}

/// Smoothed round-trip time and retransmission timeout (RFC 6298).
pub struct Rtt {
    srtt: Option<Duration>,
    rttvar: Duration,
    pub rto: Duration,
    min: Duration,
    max: Duration,
}

impl Rtt {
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        Self {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial,
            min,
            max,
        }
    }
    pub fn sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(s) => {
                let diff = s.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((s * 7 + r) / 8);
            }
        }
        self.rto = (self.srtt.unwrap_or(r) + self.rttvar * 4).clamp(self.min, self.max);
    }
    pub fn srtt(&self) -> Duration {
        self.srtt.unwrap_or(self.rto)
    }
    pub fn back_off(&mut self) {
        self.rto = (self.rto * 2).min(self.max);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the peer's MAC address.
    Resolving,
    /// CONNECT sent, waiting for ACCEPT.
    Connecting,
    Established,
}

/// Peer addressing of a session.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub mac: [u8; 6],
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
    /// The peer's session id (0 until ACCEPT arrives).
    pub sid: u32,
}

/// The sending half of a session.
pub struct TxSession {
    pub sid: u32,
    pub peer: Peer,
    pub state: State,
    /// `Tx::close` was called: send what is queued, then CLOSE.
    pub closing: bool,
    /// A control packet (CONNECT, ACCEPT) to send on the next transmit.
    pub control: Option<Type>,
    pub control_tries: u32,
    pub control_at: Option<Instant>,
    pub next_seq: u32,
    pub inflight: VecDeque<Packet>,
    pub queued: VecDeque<Packet>,
    pub queued_bytes: usize,
    /// Credits granted by the peer: packets beyond its cumulative ack.
    pub peer_window: u16,
    pub rtt: Rtt,
    pub rto_at: Option<Instant>,
    pub last_sent: Instant,
    pub dirty: bool,
}

impl TxSession {
    pub fn new(sid: u32, peer: Peer, state: State, rtt: Rtt, now: Instant) -> Self {
        Self {
            sid,
            peer,
            state,
            closing: false,
            control: None,
            control_tries: 0,
            control_at: None,
            next_seq: 0,
            inflight: VecDeque::new(),
            queued: VecDeque::new(),
            queued_bytes: 0,
            peer_window: 1,
            rtt,
            rto_at: None,
            last_sent: now,
            dirty: false,
        }
    }

    pub fn drained(&self) -> bool {
        self.inflight.is_empty() && self.queued.is_empty()
    }

    /// Applies the peer's cumulative ack, selective acks and credits.
    /// Returns whether the session now has something to send (credits freed,
    /// or packets presumed lost).
    pub fn on_ack(
        &mut self,
        ack: u32,
        sack: u64,
        window: u16,
        now: Instant,
        pool: &mut Pool,
    ) -> bool {
        self.peer_window = window.max(1);
        let mut progressed = false;
        while let Some(p) = self.inflight.front() {
            if !before(p.seq, ack) {
                break;
            }
            let p = self.inflight.pop_front().expect("front exists");
            if let (1, Some(t)) = (p.tries, p.sent_at) {
                self.rtt.sample(now.saturating_duration_since(t)); // Karn: first tries only
            }
            self.queued_bytes -= p.payload.len();
            pool.give(p.payload);
            progressed = true;
        }
        let mut highest_sacked = None;
        let mut resend = false;
        if sack != 0 {
            for p in self.inflight.iter_mut() {
                let d = p.seq.wrapping_sub(ack).wrapping_sub(1);
                if d < 64 && sack & (1 << d) != 0 {
                    p.sacked = true;
                    highest_sacked = Some(p.seq);
                }
            }
        }
        // Fast retransmit: packets below a selectively acked one that have
        // been out for more than a smoothed RTT are presumed lost.
        if let Some(high) = highest_sacked {
            let srtt = self.rtt.srtt();
            for p in self.inflight.iter_mut() {
                if !before(p.seq, high) {
                    break;
                }
                let old = p
                    .sent_at
                    .is_some_and(|t| now.saturating_duration_since(t) >= srtt);
                if !p.sacked && !p.resend && old {
                    p.resend = true;
                    resend = true;
                }
            }
        }
        if progressed {
            self.rto_at = (!self.inflight.is_empty()).then(|| now + self.rtt.rto);
        }
        resend || (progressed && !self.queued.is_empty())
    }
}

/// A packet that arrived ahead of a gap, kept until the gap fills.
pub struct Held {
    pub seq: u32,
    pub flags: u8,
    pub msg_len: u32,
    pub payload: Vec<u8>,
}

/// A protocol violation by the peer; the session is reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    Oversize(u32),
    BadFragment,
}

/// The receiving half of a session.
pub struct RxSession {
    pub expected: u32,
    ring: Vec<Option<Held>>,
    held: usize,
    msg: Vec<u8>,
    msg_len: u32,
    in_msg: bool,
    /// When an acknowledgement is owed by.
    pub ack_due: Option<Instant>,
    pub last_heard: Instant,
    pool: Pool,
}

/// What receiving one DATA packet did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RxOutcome {
    pub duplicate: bool,
    pub out_of_order: bool,
    pub beyond_window: bool,
}

impl RxSession {
    pub fn new(window: usize, now: Instant) -> Self {
        Self {
            expected: 0,
            ring: (0..window).map(|_| None).collect(),
            held: 0,
            msg: Vec::new(),
            msg_len: 0,
            in_msg: false,
            ack_due: None,
            last_heard: now,
            pool: Pool::default(),
        }
    }

    pub fn window(&self) -> u16 {
        self.ring.len().min(u16::MAX as usize) as u16
    }

    /// Selective-ack bitmap of held packets above `expected`.
    pub fn sack(&self) -> u64 {
        if self.held == 0 {
            return 0;
        }
        let mut bits = 0u64;
        for i in 0..64.min(self.ring.len() as u32 - 1) {
            let seq = self.expected.wrapping_add(1 + i);
            if matches!(&self.ring[seq as usize % self.ring.len()], Some(h) if h.seq == seq) {
                bits |= 1 << i;
            }
        }
        bits
    }

    /// Takes one DATA packet; every message completed in order is handed to
    /// `deliver`, single-fragment ones straight from `payload`.
    pub fn on_data(
        &mut self,
        seq: u32,
        flags: u8,
        msg_len: u32,
        payload: &[u8],
        max_message: usize,
        deliver: &mut dyn FnMut(&[u8]),
    ) -> Result<RxOutcome, Violation> {
        let mut out = RxOutcome::default();
        let w = self.ring.len();
        if before(seq, self.expected) {
            out.duplicate = true;
            return Ok(out);
        }
        let ahead = seq.wrapping_sub(self.expected) as usize;
        if ahead >= w {
            out.beyond_window = true;
            return Ok(out);
        }
        if ahead > 0 {
            out.out_of_order = true;
            let slot = &mut self.ring[seq as usize % w];
            if slot.as_ref().is_some_and(|h| h.seq == seq) {
                out.duplicate = true;
            } else {
                let mut buf = self.pool.take();
                buf.extend_from_slice(payload);
                *slot = Some(Held {
                    seq,
                    flags,
                    msg_len,
                    payload: buf,
                });
                self.held += 1;
            }
            return Ok(out);
        }
        self.take(flags, msg_len, payload, max_message, deliver)?;
        self.expected = self.expected.wrapping_add(1);
        while self.held > 0 {
            let i = self.expected as usize % w;
            match self.ring[i].take() {
                Some(h) if h.seq == self.expected => {
                    self.held -= 1;
                    let r = self.take(h.flags, h.msg_len, &h.payload, max_message, deliver);
                    self.pool.give(h.payload);
                    r?;
                    self.expected = self.expected.wrapping_add(1);
                }
                other => {
                    self.ring[i] = other;
                    break;
                }
            }
        }
        Ok(out)
    }

    fn take(
        &mut self,
        flags: u8,
        msg_len: u32,
        payload: &[u8],
        max: usize,
        deliver: &mut dyn FnMut(&[u8]),
    ) -> Result<(), Violation> {
        let first = flags & FIRST != 0;
        let last = flags & LAST != 0;
        if first == self.in_msg {
            return Err(Violation::BadFragment);
        }
        if first {
            if msg_len as usize > max {
                return Err(Violation::Oversize(msg_len));
            }
            if last {
                if payload.len() != msg_len as usize {
                    return Err(Violation::BadFragment);
                }
                deliver(payload);
                return Ok(());
            }
            self.msg.clear();
            self.msg_len = msg_len;
            self.in_msg = true;
        }
        if self.msg.len() + payload.len() > self.msg_len as usize {
            return Err(Violation::BadFragment);
        }
        self.msg.extend_from_slice(payload);
        if last {
            if self.msg.len() != self.msg_len as usize {
                return Err(Violation::BadFragment);
            }
            self.in_msg = false;
            deliver(&self.msg);
        }
        Ok(())
    }
}

/// Bytes of payload per packet for a given MTU (IP packet size).
pub fn mss(mtu: usize) -> usize {
    mtu - super::wire::IPV4_LEN - super::wire::UDP_LEN - proto::LEN
}
