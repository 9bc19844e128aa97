//! The engine's input: one frame at a time — ARP, session setup (CONNECT,
//! ACCEPT), acknowledgements and data — delivering whole messages in order.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use super::{arm, Engine};
use crate::packet::proto::{Header, Type};
use crate::packet::session::{Peer, State, Violation};
use crate::packet::wire::{self, Arp, Parsed, ARP_REPLY, ARP_REQUEST};
use crate::transport::{CloseReason, Event, EventSink};

/// Where a packet came from.
#[derive(Clone, Copy)]
struct Source {
    mac: [u8; 6],
    ip: Ipv4Addr,
    port: u16,
}

impl Engine {
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
                Some((h, data)) => self.on_packet(
                    now,
                    Source {
                        mac: src_mac,
                        ip: src,
                        port: src_port,
                    },
                    h,
                    data,
                    sink,
                ),
            },
        }
    }

    fn on_arp(&mut self, arp: Arp, now: Instant) {
        self.stats.arp_in += 1;
        if arp.target_ip != self.cfg.ip {
            return;
        }
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
        self.learn(arp.sender_ip, arp.sender_mac, now);
    }

    fn on_packet(
        &mut self,
        now: Instant,
        from: Source,
        h: Header,
        data: &[u8],
        sink: &mut dyn EventSink,
    ) {
        let Source {
            mac: src_mac,
            ip: src,
            port,
        } = from;
        if h.ty == Type::Connect {
            return self.on_connect(now, from, h, sink);
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

    fn on_connect(&mut self, now: Instant, from: Source, h: Header, sink: &mut dyn EventSink) {
        let Source {
            mac: src_mac,
            ip: src,
            port,
        } = from;
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
}
