//! The engine's clock-driven work: retransmission timeouts, owed and
//! keepalive acknowledgements, idle and connect timeouts, ARP retries.

use std::time::Instant;

use super::{arm, Engine};
use crate::packet::proto::Type;
use crate::packet::session::State;
use crate::packet::wire::{Arp, ARP_REQUEST, BROADCAST};
use crate::transport::CloseReason;

impl Engine {
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
                            // RFC 6298 5.4: resend the earliest unacknowledged
                            // packet only. Resending the whole window turned a
                            // spurious timeout (a peer descheduled for a moment
                            // under load) into a storm of duplicates; packets
                            // really lost behind it are recovered by selective
                            // acks (fast retransmit) or by the next timeout.
                            if let Some(p) = s.inflight.iter_mut().find(|p| !p.sacked) {
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
}
