//! The sans-IO packet engine: fed frames and a clock, it delivers messages to
//! an [`EventSink`] and writes the frames it wants sent into a [`Phy`](crate::phy::Phy)'s lent
//! transmit buffers. It never reads a clock or touches a device itself, so the
//! same code runs on AF_XDP, DPDK and the deterministic simulator.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use slab::Slab;

mod receive;
mod timers;
mod transmit;
mod tx;

pub use tx::EngineTx;

use super::proto::{Header, Type};
use super::session::{mss, Peer, Pool, Rtt, RxSession, State, TxSession};
use super::wire::{Arp, UdpAddrs};
use crate::transport::{CloseReason, ConnId, Event, EventSink};

/// Addresses, limits and timers of one engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub port: u16,
    /// IP MTU of the link (1500 on Ethernet).
    pub mtu: usize,
    pub max_message: usize,
    /// Reorder window, in packets: the credits each side grants its peer.
    pub window: u16,
    /// Bytes a session may have queued or in flight before sends are refused.
    pub max_pending: usize,
    pub max_sessions: usize,
    pub rto_initial: Duration,
    pub rto_min: Duration,
    pub rto_max: Duration,
    /// Retransmissions of one packet before the session is declared dead.
    pub max_retries: u32,
    /// An acknowledgement is sent at most this long after in-order data,
    /// unless a packet going the other way carries it sooner.
    pub ack_delay: Duration,
    pub keepalive: Duration,
    pub idle_timeout: Duration,
    pub arp_retry: Duration,
    pub arp_tries: u32,
}

impl EngineConfig {
    pub fn new(mac: [u8; 6], ip: Ipv4Addr, port: u16) -> Self {
        Self {
            mac,
            ip,
            port,
            mtu: 1500,
            max_message: 16 << 20,
            window: 256,
            max_pending: 64 << 20,
            max_sessions: 4096,
            rto_initial: Duration::from_millis(5),
            rto_min: Duration::from_millis(1),
            rto_max: Duration::from_millis(200),
            max_retries: 30,
            ack_delay: Duration::from_micros(200),
            keepalive: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(10),
            arp_retry: Duration::from_millis(200),
            arp_tries: 10,
        }
    }
}

/// Counters; every dropped frame lands in exactly one of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub frames_in: u64,
    pub frames_out: u64,
    pub malformed: u64,
    pub bad_checksum: u64,
    pub not_for_us: u64,
    pub ip_fragments: u64,
    pub bad_protocol: u64,
    pub unknown_session: u64,
    pub arp_in: u64,
    pub arp_out: u64,
    pub data_in: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub beyond_window: u64,
    pub retransmits: u64,
    pub acks_out: u64,
    pub resets_out: u64,
    pub sessions_opened: u64,
    pub sessions_closed: u64,
    pub tx_ring_full: u64,
}

/// The packet engine. See the module docs and `docs/packet-engine.md`.
pub struct Engine {
    cfg: EngineConfig,
    rx: Slab<RxSession>,
    tx: EngineTx,
    listening: bool,
    /// (peer ip, peer port, peer sid) -> session key, to make CONNECT idempotent.
    by_peer: HashMap<(Ipv4Addr, u16, u32), usize>,
    neighbours: HashMap<Ipv4Addr, [u8; 6]>,
    /// ARP resolution in progress: ip -> (next try, tries so far).
    resolving: HashMap<Ipv4Addr, (Instant, u32)>,
    arp_out: VecDeque<([u8; 6], Arp)>,
    /// Control packets for sessions that no longer (or never) existed.
    loose: VecDeque<(UdpAddrs, Header)>,
    closed: Vec<(usize, CloseReason)>,
    dirty_spare: Vec<usize>,
    stats: EngineStats,
}

fn sid(key: usize, generation: u16) -> u32 {
    ((generation as u32) << 16) | key as u32
}

fn arm(next: &mut Option<Instant>, at: Instant) {
    if next.is_none_or(|n| at < n) {
        *next = Some(at);
    }
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Self {
        let tx = EngineTx {
            sessions: Slab::new(),
            generations: Vec::new(),
            dirty: Vec::new(),
            pool: Pool::default(),
            scratch: Vec::new(),
            max_message: cfg.max_message,
            max_pending: cfg.max_pending,
            mss: mss(cfg.mtu),
            next_timer: None,
        };
        Self {
            rx: Slab::new(),
            tx,
            listening: false,
            by_peer: HashMap::new(),
            neighbours: HashMap::new(),
            resolving: HashMap::new(),
            arp_out: VecDeque::new(),
            loose: VecDeque::new(),
            closed: Vec::new(),
            dirty_spare: Vec::new(),
            stats: EngineStats::default(),
            cfg,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }
    pub fn sessions(&self) -> usize {
        self.tx.sessions.len()
    }
    pub fn tx(&mut self) -> &mut EngineTx {
        &mut self.tx
    }
    /// Accept CONNECTs from now on.
    pub fn listen(&mut self) {
        self.listening = true;
    }
    /// A neighbour entry the engine does not have to resolve with ARP.
    pub fn add_neighbour(&mut self, ip: Ipv4Addr, mac: [u8; 6]) {
        self.neighbours.insert(ip, mac);
    }
    /// Whether the engine has a neighbour entry for `ip`.
    pub fn knows(&self, ip: Ipv4Addr) -> bool {
        self.neighbours.contains_key(&ip)
    }
    /// Whether a connect waits on ARP.
    pub fn is_resolving(&self) -> bool {
        !self.resolving.is_empty()
    }
    /// The addresses connects wait on.
    pub fn resolving_ips(&self) -> Vec<Ipv4Addr> {
        self.resolving.keys().copied().collect()
    }
    /// `ip` is at `mac` (from an ARP packet, or from a table outside the
    /// engine): sessions waiting on it go on to CONNECT.
    pub fn learn(&mut self, ip: Ipv4Addr, mac: [u8; 6], now: Instant) {
        self.neighbours.insert(ip, mac);
        if self.resolving.remove(&ip).is_none() {
            return;
        }
        for (key, s) in self.tx.sessions.iter_mut() {
            if s.state == State::Resolving && s.peer.ip == ip {
                s.peer.mac = mac;
                s.state = State::Connecting;
                s.control = Some(Type::Connect);
                if !s.dirty {
                    s.dirty = true;
                    self.tx.dirty.push(key);
                }
            }
        }
        arm(&mut self.tx.next_timer, now);
    }
    /// When the engine next needs [`Engine::poll_timers`], if ever.
    pub fn next_timer(&self) -> Option<Instant> {
        self.tx.next_timer
    }

    fn new_session(&mut self, peer: Peer, state: State, now: Instant) -> Option<usize> {
        if self.tx.sessions.len() >= self.cfg.max_sessions.min(1 << 16) {
            return None;
        }
        let key = self.tx.sessions.vacant_key();
        if self.tx.generations.len() <= key {
            self.tx.generations.resize(key + 1, 0);
        }
        // Generation 0 is never used, so no session id is 0 (CONNECT's dst).
        let g = &mut self.tx.generations[key];
        *g = g.wrapping_add(1).max(1);
        let rtt = Rtt::new(self.cfg.rto_initial, self.cfg.rto_min, self.cfg.rto_max);
        let k1 = self
            .tx
            .sessions
            .insert(TxSession::new(sid(key, *g), peer, state, rtt, now));
        let k2 = self
            .rx
            .insert(RxSession::new(self.cfg.window as usize, now));
        debug_assert_eq!((k1, k2), (key, key));
        self.stats.sessions_opened += 1;
        arm(&mut self.tx.next_timer, now);
        Some(key)
    }

    /// Opens a session to `peer`; `Event::Connected` follows, or `Closed`
    /// with `ConnectFailed`.
    pub fn connect(&mut self, peer: SocketAddrV4, now: Instant) -> std::io::Result<ConnId> {
        let mac = self.neighbours.get(peer.ip()).copied();
        let state = if mac.is_some() {
            State::Connecting
        } else {
            State::Resolving
        };
        let p = Peer {
            mac: mac.unwrap_or([0; 6]),
            ip: *peer.ip(),
            port: peer.port(),
            sid: 0,
        };
        let key = self
            .new_session(p, state, now)
            .ok_or_else(|| std::io::Error::other("engine session table full"))?;
        if state == State::Resolving {
            self.resolving.entry(*peer.ip()).or_insert((now, 0));
        } else {
            self.tx.sessions[key].control = Some(Type::Connect);
            self.tx.mark_dirty(key);
        }
        Ok(self.tx.conn(key))
    }

    fn close_session(&mut self, key: usize, reason: CloseReason) {
        if !self.closed.iter().any(|(k, _)| *k == key) {
            self.closed.push((key, reason));
        }
    }

    fn reset_to(&mut self, key: usize, reason: CloseReason) {
        let s = &self.tx.sessions[key];
        let addrs = self.addrs(&s.peer);
        self.push_loose(addrs, Header::control(Type::Reset, s.peer.sid, s.sid));
        self.close_session(key, reason);
    }

    fn push_loose(&mut self, a: UdpAddrs, h: Header) {
        if self.loose.len() < 1024 {
            self.loose.push_back((a, h));
        }
    }

    fn addrs(&self, p: &Peer) -> UdpAddrs {
        UdpAddrs {
            src_mac: self.cfg.mac,
            dst_mac: p.mac,
            src: self.cfg.ip,
            dst: p.ip,
            src_port: self.cfg.port,
            dst_port: p.port,
        }
    }

    /// Removes sessions closed since the last call and reports each with an
    /// [`Event::Closed`]. Call once per poll round, after the other steps.
    pub fn reap(&mut self, sink: &mut dyn EventSink) {
        while let Some((key, reason)) = self.closed.pop() {
            let Some(s) = self.tx.sessions.try_remove(key) else {
                continue;
            };
            let mut rx = self.rx.remove(key);
            self.by_peer.remove(&(s.peer.ip, s.peer.port, s.peer.sid));
            for p in s.inflight.into_iter().chain(s.queued) {
                self.tx.pool.give(p.payload);
            }
            rx.ack_due = None;
            self.stats.sessions_closed += 1;
            let conn = ConnId::new(key as u32, self.tx.generations[key] as u32);
            sink.on_event(Event::Closed { conn, reason }, &mut self.tx);
        }
    }
}
