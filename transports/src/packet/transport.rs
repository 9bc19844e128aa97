//! A [`Transport`] made of the packet [`Engine`] and any [`Phy`]: the RPC layer
//! runs over AF_XDP, DPDK or the simulator without knowing which.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::engine::{Engine, EngineStats};
use crate::phy::Phy;
use crate::transport::{ConnId, Event, EventSink, Transport, Tx};

/// Where the engine's time comes from: the system clock in production, a
/// simulated clock in tests.
pub trait Clock {
    fn now(&self) -> Instant;
}

/// `Instant::now()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Frames taken from the device per poll round.
const RX_BURST: usize = 64;

/// The packet engine driven over a device.
pub struct EngineTransport<P: Phy, C: Clock = SystemClock> {
    name: &'static str,
    engine: Engine,
    phy: P,
    clock: C,
    /// When to next ask the phy for the neighbours the engine is resolving.
    next_lookup: Option<std::time::Instant>,
}

/// How often a phy that keeps neighbours outside the engine (AF_XDP: the
/// kernel's table) is asked for the ones a connect waits on.
const NEIGHBOUR_LOOKUP_EVERY: Duration = Duration::from_millis(20);

struct Counting<'a> {
    inner: &'a mut dyn EventSink,
    n: usize,
}

impl EventSink for Counting<'_> {
    fn on_event(&mut self, event: Event<'_>, tx: &mut dyn Tx) {
        self.n += 1;
        self.inner.on_event(event, tx);
    }
}

impl<P: Phy, C: Clock> EngineTransport<P, C> {
    /// `name` is what reports call this transport ("af-xdp", "dpdk", "sim").
    pub fn new(name: &'static str, engine: Engine, phy: P, clock: C) -> Self {
        Self {
            name,
            engine,
            phy,
            clock,
            next_lookup: None,
        }
    }
    /// Connects waiting on ARP: asks the phy (every
    /// [`NEIGHBOUR_LOOKUP_EVERY`]) whether it knows their neighbours.
    fn look_up_neighbours(&mut self, now: std::time::Instant) {
        if !self.engine.is_resolving() {
            self.next_lookup = None;
            return;
        }
        if self.next_lookup.is_some_and(|t| now < t) {
            return;
        }
        self.next_lookup = Some(now + NEIGHBOUR_LOOKUP_EVERY);
        for ip in self.engine.resolving_ips() {
            if let Some(mac) = self.phy.neighbour(ip) {
                self.engine.learn(ip, mac, now);
            }
        }
    }
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }
    pub fn stats(&self) -> &EngineStats {
        self.engine.stats()
    }
    pub fn phy(&mut self) -> &mut P {
        &mut self.phy
    }
}

impl<P: Phy, C: Clock> Transport for EngineTransport<P, C> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn stats_line(&self) -> String {
        format!("{:?}", self.engine.stats())
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let s = self.engine.stats();
        vec![
            ("frames_in", s.frames_in),
            ("frames_out", s.frames_out),
            ("frames_malformed", s.malformed),
            ("frames_bad_checksum", s.bad_checksum),
            ("frames_other_destination", s.not_for_us),
            ("frames_unknown_session", s.unknown_session),
            ("data_frames_in", s.data_in),
            ("duplicates", s.duplicates),
            ("out_of_order", s.out_of_order),
            ("beyond_window_drops", s.beyond_window),
            ("retransmits", s.retransmits),
            ("acks_out", s.acks_out),
            ("resets_out", s.resets_out),
            ("sessions_opened", s.sessions_opened),
            ("sessions_closed", s.sessions_closed),
            ("tx_ring_full_drops", s.tx_ring_full),
        ]
    }

    fn open_connections(&self) -> Option<usize> {
        Some(self.engine.sessions())
    }

    fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let cfg = self.engine.config();
        let own = SocketAddr::V4(SocketAddrV4::new(cfg.ip, cfg.port));
        let ip_ok = addr.ip().is_unspecified() || addr.ip() == own.ip();
        let port_ok = addr.port() == 0 || addr.port() == cfg.port;
        if !(ip_ok && port_ok) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "this {} transport is bound to {own} by its configuration, not {addr}",
                    self.name
                ),
            ));
        }
        self.engine.listen();
        Ok(own)
    }

    fn connect(&mut self, addr: SocketAddr) -> io::Result<ConnId> {
        let SocketAddr::V4(v4) = addr else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the packet engine speaks IPv4 only",
            ));
        };
        let now = self.clock.now();
        if !self.engine.knows(*v4.ip()) {
            if let Some(mac) = self.phy.neighbour(*v4.ip()) {
                self.engine.add_neighbour(*v4.ip(), mac);
            }
        }
        self.engine.connect(v4, now)
    }

    fn poll(&mut self, sink: &mut dyn EventSink) -> io::Result<usize> {
        let now = self.clock.now();
        let mut counting = Counting { inner: sink, n: 0 };
        let engine = &mut self.engine;
        self.phy.rx_burst(RX_BURST, &mut |frame| {
            engine.handle_frame(now, frame, &mut counting)
        })?;
        self.engine.poll_timers(now);
        self.look_up_neighbours(now);
        if self.engine.poll_transmit(now, &mut self.phy) > 0 {
            self.phy.flush()?;
        }
        self.engine.reap(&mut counting);
        Ok(counting.n)
    }

    fn tx(&mut self) -> &mut dyn Tx {
        self.engine.tx()
    }

    fn flush(&mut self) -> io::Result<()> {
        let now = self.clock.now();
        if self.engine.poll_transmit(now, &mut self.phy) > 0 {
            self.phy.flush()?;
        }
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let now = self.clock.now();
        let timer = self
            .engine
            .next_timer()
            .map(|t| t.saturating_duration_since(now));
        let t = match (timeout, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.phy.wait(t)
    }
}
