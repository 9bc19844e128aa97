//! The sans-IO packet engine: fed frames and a clock, it delivers messages to
//! an [`EventSink`] and writes the frames it wants sent into a [`Phy`]'s lent
//! transmit buffers. It never reads a clock or touches a device itself, so the
//! same code runs on AF_XDP, DPDK and the deterministic simulator.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use slab::Slab;

use super::proto::{self, Header, Type, FIRST, LAST};
use super::session::{mss, Packet, Peer, Pool, Rtt, RxSession, State, TxSession, Violation};
use super::wire::{self, Arp, Parsed, UdpAddrs, ARP_REPLY, ARP_REQUEST, BROADCAST};
use crate::phy::Phy;
use crate::transport::{CloseReason, ConnId, Event, EventSink, SendError, Tx};

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

/// The sending side of the engine: what a handler may touch while a message
/// is lent to it.
pub struct EngineTx {
    pub(crate) sessions: Slab<TxSession>,
    pub(crate) generations: Vec<u16>,
    dirty: Vec<usize>,
    pool: Pool,
    scratch: Vec<u8>,
    max_message: usize,
    max_pending: usize,
    mss: usize,
    /// Earliest deadline any session may have armed.
    next_timer: Option<Instant>,
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

impl EngineTx {
    fn key(&self, conn: ConnId) -> Option<usize> {
        let k = conn.index();
        let live = self.sessions.contains(k)
            && self.generations.get(k).map(|g| *g as u32) == Some(conn.generation());
        live.then_some(k)
    }

    fn conn(&self, key: usize) -> ConnId {
        ConnId::new(key as u32, self.generations[key] as u32)
    }

    fn mark_dirty(&mut self, key: usize) {
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

    /// Handles one received frame.
    pub fn handle_frame(&mut self, now: Instant, frame: &[u8], sink: &mut dyn EventSink) {
        self.stats.frames_in += 1;
        match wire::parse(frame, self.cfg.ip, self.cfg.port) {
            Err(wire::Drop::Malformed) => self.stats.malformed += 1,
            Err(wire::Drop::BadChecksum) => self.stats.bad_checksum += 1,
            Err(wire::Drop::NotForUs) => self.stats.not_for_us += 1,
            Err(wire::Drop::Fragment) => self.stats.ip_fragments += 1,
            Ok(Parsed::Arp(arp)) => self.on_arp(arp, now),
            Ok(Parsed::Udp {
                src_mac,
                src,
                src_port,
                payload,
                ..
            }) => match Header::parse(payload) {
                None => self.stats.bad_protocol += 1,
                Some((h, data)) => self.on_packet(now, src_mac, src, src_port, h, data, sink),
            },
        }
    }

    fn on_arp(&mut self, arp: Arp, now: Instant) {
        self.stats.arp_in += 1;
        if arp.target_ip != self.cfg.ip {
            return;
        }
        self.neighbours.insert(arp.sender_ip, arp.sender_mac);
        if arp.op == ARP_REQUEST && self.arp_out.len() < 64 {
            let reply = Arp {
                op: ARP_REPLY,
                sender_mac: self.cfg.mac,
                sender_ip: self.cfg.ip,
                target_mac: arp.sender_mac,
                target_ip: arp.sender_ip,
            };
            self.arp_out.push_back((arp.sender_mac, reply));
        }
        if self.resolving.remove(&arp.sender_ip).is_some() {
            for (key, s) in self.tx.sessions.iter_mut() {
                if s.state == State::Resolving && s.peer.ip == arp.sender_ip {
                    s.peer.mac = arp.sender_mac;
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
    }

    #[allow(clippy::too_many_arguments)]
    fn on_packet(
        &mut self,
        now: Instant,
        src_mac: [u8; 6],
        src: Ipv4Addr,
        port: u16,
        h: Header,
        data: &[u8],
        sink: &mut dyn EventSink,
    ) {
        if h.ty == Type::Connect {
            return self.on_connect(now, src_mac, src, port, h, sink);
        }
        let key = (h.dst_sid & 0xffff) as usize;
        let live = self
            .tx
            .sessions
            .get(key)
            .filter(|s| s.sid == h.dst_sid && s.peer.ip == src && s.peer.port == port);
        let Some(s) = live else {
            self.stats.unknown_session += 1;
            if h.ty != Type::Reset && h.ty != Type::Close {
                let peer = Peer {
                    mac: src_mac,
                    ip: src,
                    port,
                    sid: h.src_sid,
                };
                let a = self.addrs(&peer);
                self.push_loose(a, Header::control(Type::Reset, h.src_sid, h.dst_sid));
                self.stats.resets_out += 1;
            }
            return;
        };
        if self.closed.iter().any(|(k, _)| *k == key) {
            return; // closed this round; reaped before the next
        }
        if h.ty == Type::Reset && s.state == State::Connecting {
            let reason = CloseReason::ConnectFailed(std::io::ErrorKind::ConnectionRefused);
            return self.close_session(key, reason);
        }
        if h.ty == Type::Accept {
            if s.state == State::Connecting {
                let s = &mut self.tx.sessions[key];
                s.peer.sid = h.src_sid;
                s.state = State::Established;
                s.control = None;
                s.peer_window = h.window.max(1);
                if let Some(t) = s.control_at.filter(|_| s.control_tries == 1) {
                    s.rtt.sample(now.saturating_duration_since(t));
                }
                self.tx.mark_dirty(key);
                self.rx[key].last_heard = now;
                let conn = self.tx.conn(key);
                sink.on_event(Event::Connected { conn }, &mut self.tx);
            }
            return;
        }
        if s.peer.sid != h.src_sid || s.state != State::Established {
            self.stats.unknown_session += 1;
            return;
        }
        self.rx[key].last_heard = now;
        match h.ty {
            Type::Reset => return self.close_session(key, CloseReason::Reset),
            Type::Close => return self.close_session(key, CloseReason::PeerClosed),
            _ => {}
        }
        let s = &mut self.tx.sessions[key];
        let send = s.on_ack(h.ack, h.sack, h.window, now, &mut self.tx.pool);
        if send
            || (s.closing && s.drained())
            || (!s.queued.is_empty() && (s.inflight.len() as u16) < s.peer_window)
        {
            self.tx.mark_dirty(key);
        }
        if let Some(at) = self.tx.sessions[key].rto_at {
            arm(&mut self.tx.next_timer, at);
        }
        if h.ty != Type::Data {
            return;
        }
        self.stats.data_in += 1;
        let conn = self.tx.conn(key);
        let max = self.cfg.max_message;
        let tx = &mut self.tx;
        let rx = &mut self.rx[key];
        let r = rx.on_data(h.seq, h.flags, h.msg_len, data, max, &mut |msg| {
            sink.on_event(Event::Message { conn, data: msg }, tx)
        });
        match r {
            Ok(o) => {
                self.stats.duplicates += o.duplicate as u64;
                self.stats.out_of_order += o.out_of_order as u64;
                self.stats.beyond_window += o.beyond_window as u64;
                // Gaps and duplicates are acknowledged at once (the peer may
                // be retransmitting for want of an ack); in-order data waits
                // up to `ack_delay` for a packet going back to carry it.
                let due = if o.duplicate || o.out_of_order || o.beyond_window {
                    now
                } else {
                    now + self.cfg.ack_delay
                };
                let rx = &mut self.rx[key];
                if rx.ack_due.is_none_or(|d| due < d) {
                    rx.ack_due = Some(due);
                }
                arm(&mut self.tx.next_timer, due);
            }
            Err(Violation::Oversize(len)) => {
                self.reset_to(
                    key,
                    CloseReason::Oversize {
                        len: len as u64,
                        max,
                    },
                );
            }
            Err(Violation::BadFragment) => {
                self.reset_to(key, CloseReason::Io(std::io::ErrorKind::InvalidData));
            }
        }
    }

    fn on_connect(
        &mut self,
        now: Instant,
        src_mac: [u8; 6],
        src: Ipv4Addr,
        port: u16,
        h: Header,
        sink: &mut dyn EventSink,
    ) {
        if h.dst_sid != 0 || h.src_sid == 0 {
            self.stats.bad_protocol += 1;
            return;
        }
        self.neighbours.entry(src).or_insert(src_mac);
        if let Some(&key) = self.by_peer.get(&(src, port, h.src_sid)) {
            // Our ACCEPT was lost: send it again.
            self.tx.sessions[key].control = Some(Type::Accept);
            self.tx.mark_dirty(key);
            return;
        }
        let peer = Peer {
            mac: src_mac,
            ip: src,
            port,
            sid: h.src_sid,
        };
        let key = match self
            .listening
            .then(|| self.new_session(peer, State::Established, now))
            .flatten()
        {
            Some(k) => k,
            None => {
                let a = self.addrs(&peer);
                self.push_loose(a, Header::control(Type::Reset, h.src_sid, 0));
                self.stats.resets_out += 1;
                return;
            }
        };
        self.by_peer.insert((src, port, h.src_sid), key);
        let s = &mut self.tx.sessions[key];
        s.peer_window = h.window.max(1);
        s.control = Some(Type::Accept);
        self.tx.mark_dirty(key);
        let conn = self.tx.conn(key);
        let peer = std::net::SocketAddr::V4(SocketAddrV4::new(src, port));
        sink.on_event(Event::Accepted { conn, peer }, &mut self.tx);
    }

    /// Runs timers due at `now`: retransmissions, owed acks, keepalives, idle
    /// and connect timeouts, ARP retries, graceful closes.
    pub fn poll_timers(&mut self, now: Instant) {
        if self.tx.next_timer.is_none_or(|t| now < t) {
            return;
        }
        let mut next: Option<Instant> = None;
        let cfg = &self.cfg;
        for (key, s) in self.tx.sessions.iter_mut() {
            let rx = &mut self.rx[key];
            let mut wake = false;
            match s.state {
                State::Resolving => continue,
                State::Connecting => {
                    if let Some(at) = s.control_at {
                        let due = at + s.rtt.rto;
                        if now >= due {
                            if s.control_tries > cfg.max_retries.min(12) {
                                self.closed.push((
                                    key,
                                    CloseReason::ConnectFailed(std::io::ErrorKind::TimedOut),
                                ));
                                continue;
                            }
                            s.rtt.back_off();
                            s.control = Some(Type::Connect);
                            wake = true;
                        } else {
                            arm(&mut next, due);
                        }
                    }
                }
                State::Established => {
                    if now.saturating_duration_since(rx.last_heard) >= cfg.idle_timeout {
                        self.closed
                            .push((key, CloseReason::Io(std::io::ErrorKind::TimedOut)));
                        continue;
                    }
                    arm(&mut next, rx.last_heard + cfg.idle_timeout);
                    if let Some(at) = s.rto_at {
                        if now >= at {
                            let front_tries = s.inflight.front().map_or(0, |p| p.tries);
                            if front_tries > cfg.max_retries {
                                self.closed
                                    .push((key, CloseReason::Io(std::io::ErrorKind::TimedOut)));
                                continue;
                            }
                            for p in s.inflight.iter_mut().filter(|p| !p.sacked) {
                                p.resend = true;
                            }
                            s.rtt.back_off();
                            s.rto_at = Some(now + s.rtt.rto);
                            wake = true;
                        }
                        arm(&mut next, s.rto_at.expect("set"));
                    }
                    if let Some(due) = rx.ack_due {
                        if now >= due {
                            wake = true;
                        } else {
                            arm(&mut next, due);
                        }
                    }
                    let keepalive_at = s.last_sent + cfg.keepalive;
                    if now >= keepalive_at {
                        rx.ack_due = Some(now);
                        wake = true;
                    } else {
                        arm(&mut next, keepalive_at);
                    }
                    if s.closing && s.drained() {
                        wake = true;
                    }
                }
            }
            if wake && !s.dirty {
                s.dirty = true;
                self.tx.dirty.push(key);
            }
        }
        // ARP resolution: retry, or fail the sessions waiting on it.
        let mut failed = Vec::new();
        for (ip, (at, tries)) in self.resolving.iter_mut() {
            if now >= *at {
                if *tries >= cfg.arp_tries {
                    failed.push(*ip);
                    continue;
                }
                *tries += 1;
                *at = now + cfg.arp_retry;
                let req = Arp {
                    op: ARP_REQUEST,
                    sender_mac: cfg.mac,
                    sender_ip: cfg.ip,
                    target_mac: [0; 6],
                    target_ip: *ip,
                };
                self.arp_out.push_back((BROADCAST, req));
            }
            arm(&mut next, *at);
        }
        for ip in failed {
            self.resolving.remove(&ip);
            for (key, s) in self.tx.sessions.iter() {
                if s.state == State::Resolving && s.peer.ip == ip {
                    self.closed.push((
                        key,
                        CloseReason::ConnectFailed(std::io::ErrorKind::HostUnreachable),
                    ));
                }
            }
        }
        self.tx.next_timer = next;
    }

    /// Writes every frame that is due into `phy`'s transmit buffers. Returns
    /// frames written; stops early (and resumes next time) if the ring fills.
    pub fn poll_transmit(&mut self, now: Instant, phy: &mut dyn Phy) -> usize {
        let mut sent = 0;
        while let Some((dst, arp)) = self.arp_out.front() {
            let frame_len = wire::ETH_LEN + wire::ARP_LEN;
            match phy.tx_with(frame_len, &mut |f| wire::write_arp(f, *dst, arp)) {
                Ok(true) => {
                    self.arp_out.pop_front();
                    self.stats.arp_out += 1;
                    sent += 1;
                }
                _ => return self.ring_full(sent),
            }
        }
        while let Some((a, h)) = self.loose.front() {
            match phy.tx_with(wire::HEADERS + proto::LEN, &mut |f| {
                write_packet(f, a, h, &[])
            }) {
                Ok(true) => {
                    self.loose.pop_front();
                    sent += 1;
                }
                _ => return self.ring_full(sent),
            }
        }
        let mut dirty =
            std::mem::replace(&mut self.tx.dirty, std::mem::take(&mut self.dirty_spare));
        for (i, &key) in dirty.iter().enumerate() {
            if !self.tx.sessions.contains(key) {
                continue;
            }
            match self.transmit_session(key, now, phy) {
                Some(n) => sent += n,
                None => {
                    // Ring full: this session and the rest stay dirty.
                    self.tx.dirty.extend_from_slice(&dirty[i..]);
                    dirty.clear();
                    self.dirty_spare = dirty;
                    return self.ring_full(sent);
                }
            }
        }
        dirty.clear();
        self.dirty_spare = dirty;
        sent
    }

    fn ring_full(&mut self, sent: usize) -> usize {
        self.stats.tx_ring_full += 1;
        sent
    }

    /// Sends what session `key` owes; `None` if the ring filled first.
    fn transmit_session(&mut self, key: usize, now: Instant, phy: &mut dyn Phy) -> Option<usize> {
        let a = self.addrs(&self.tx.sessions[key].peer);
        let window = self.rx[key].window();
        let s = &mut self.tx.sessions[key];
        let rx = &mut self.rx[key];
        let mut sent = 0;
        let stats = &mut self.stats;
        if s.state == State::Resolving {
            s.dirty = false;
            return Some(0);
        }
        let mut base = Header::control(Type::Ack, s.peer.sid, s.sid);
        base.window = window;
        if let Some(ty) = s.control {
            let mut h = base;
            h.ty = ty;
            if ty == Type::Connect {
                h.dst_sid = 0;
            }
            if !phy
                .tx_with(wire::HEADERS + proto::LEN, &mut |f| {
                    write_packet(f, &a, &h, &[])
                })
                .ok()?
            {
                return None;
            }
            s.control = None;
            s.control_tries += 1;
            s.control_at = Some(now);
            arm(&mut self.tx.next_timer, now + s.rtt.rto);
            s.last_sent = now;
            sent += 1;
        }
        if s.state != State::Established {
            s.dirty = false;
            return Some(sent);
        }
        let data = |p: &mut Packet, rx: &mut RxSession, phy: &mut dyn Phy| -> Option<()> {
            let mut h = base;
            h.ty = Type::Data;
            h.flags = p.flags;
            h.seq = p.seq;
            h.msg_len = p.msg_len;
            h.ack = rx.expected;
            h.sack = rx.sack();
            let len = wire::HEADERS + proto::LEN + p.payload.len();
            if !phy
                .tx_with(len, &mut |f| write_packet(f, &a, &h, &p.payload))
                .ok()?
            {
                return None;
            }
            rx.ack_due = None;
            p.sent_at = Some(now);
            p.tries += 1;
            p.resend = false;
            Some(())
        };
        for p in s.inflight.iter_mut().filter(|p| p.resend) {
            data(p, rx, phy)?;
            stats.retransmits += 1;
            sent += 1;
        }
        while (s.inflight.len() as u16) < s.peer_window.min(window) {
            let Some(mut p) = s.queued.pop_front() else {
                break;
            };
            if data(&mut p, rx, phy).is_none() {
                s.queued.push_front(p);
                return None;
            }
            s.inflight.push_back(p);
            sent += 1;
        }
        if sent > 0 && s.rto_at.is_none() && !s.inflight.is_empty() {
            s.rto_at = Some(now + s.rtt.rto);
        }
        if let Some(at) = s.rto_at {
            arm(&mut self.tx.next_timer, at);
        }
        if rx.ack_due.is_some_and(|d| now >= d) {
            let mut h = base;
            h.ack = rx.expected;
            h.sack = rx.sack();
            if !phy
                .tx_with(wire::HEADERS + proto::LEN, &mut |f| {
                    write_packet(f, &a, &h, &[])
                })
                .ok()?
            {
                return None;
            }
            rx.ack_due = None;
            stats.acks_out += 1;
            sent += 1;
        }
        if sent > 0 {
            s.last_sent = now;
            arm(&mut self.tx.next_timer, now + self.cfg.keepalive);
        }
        if s.closing && s.drained() {
            let h = Header::control(Type::Close, s.peer.sid, s.sid);
            if !phy
                .tx_with(wire::HEADERS + proto::LEN, &mut |f| {
                    write_packet(f, &a, &h, &[])
                })
                .ok()?
            {
                return None;
            }
            sent += 1;
            self.closed.push((key, CloseReason::Local));
        }
        let s = &mut self.tx.sessions[key];
        s.dirty = false;
        stats.frames_out += sent as u64;
        Some(sent)
    }
}

fn write_packet(frame: &mut [u8], a: &UdpAddrs, h: &Header, payload: &[u8]) {
    h.write(&mut frame[wire::HEADERS..wire::HEADERS + proto::LEN]);
    frame[wire::HEADERS + proto::LEN..].copy_from_slice(payload);
    wire::write_udp(frame, a);
}
