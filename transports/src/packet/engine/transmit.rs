//! The engine's output: ARP, loose control packets and each dirty session's
//! control, retransmitted, new and acknowledgement packets, written straight
//! into the device's lent transmit buffers.

use std::time::Instant;

use super::{arm, Engine};
use crate::packet::proto::{self, Header, Type};
use crate::packet::session::{Packet, RxSession, State};
use crate::packet::wire::{self, UdpAddrs};
use crate::phy::Phy;
use crate::transport::CloseReason;

impl Engine {
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
