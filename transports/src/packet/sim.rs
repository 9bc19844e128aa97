//! A simulated link for the packet engine: two [`SimPhy`] ends joined by a
//! queue that loses, duplicates, delays and reorders frames under a seeded
//! generator, and a [`SimClock`] the test advances. Everything is
//! deterministic for a given seed, so a failing seed replays exactly.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::transport::Clock;
use crate::phy::Phy;

/// Fault rates and delays of the link.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Probability a frame is lost.
    pub loss: f64,
    /// Probability a frame is delivered twice.
    pub duplicate: f64,
    /// Probability a frame gets an extra random delay (so it overtakes or is
    /// overtaken).
    pub reorder: f64,
    pub delay: Duration,
    /// Extra delay of a reordered frame: uniform in `0..jitter`.
    pub jitter: Duration,
    pub mtu: usize,
    pub ring: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: Duration::from_micros(10),
            jitter: Duration::from_micros(100),
            mtu: 1514,
            ring: 4096,
        }
    }
}

/// SplitMix64: small, fast, and enough for fault injection.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

/// Frames delivered, lost and duplicated so far.
#[derive(Debug, Clone, Default)]
pub struct SimStats {
    pub sent: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

/// Frames in flight to one side, earliest delivery first: (deliver at,
/// tie-break, frame).
type InFlight = BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>;

struct Net {
    cfg: SimConfig,
    rng: Rng,
    queues: [InFlight; 2],
    order: u64,
    stats: SimStats,
    /// Frame buffers for reuse, so a fault-free link allocates nothing.
    spare: Vec<Vec<u8>>,
}

/// The simulated clock, shared by both ends and the test.
#[derive(Clone)]
pub struct SimClock(Rc<Cell<Instant>>);

impl Clock for SimClock {
    fn now(&self) -> Instant {
        self.0.get()
    }
}

impl SimClock {
    pub fn advance(&self, by: Duration) {
        self.0.set(self.0.get() + by);
    }
    pub fn set(&self, to: Instant) {
        if to > self.0.get() {
            self.0.set(to);
        }
    }
}

/// The link, from the test's side.
#[derive(Clone)]
pub struct SimNet(Rc<RefCell<Net>>);

impl SimNet {
    /// A link and its two ends; end 0 has MAC 02:..:01, end 1 02:..:02.
    pub fn new(seed: u64, cfg: SimConfig) -> (Self, SimPhy, SimPhy, SimClock) {
        let clock = SimClock(Rc::new(Cell::new(Instant::now())));
        let net = Rc::new(RefCell::new(Net {
            cfg,
            rng: Rng(seed),
            queues: [BinaryHeap::new(), BinaryHeap::new()],
            order: 0,
            stats: SimStats::default(),
            spare: Vec::new(),
        }));
        let end = |side: usize| SimPhy {
            side,
            net: net.clone(),
            clock: clock.clone(),
            posted: Vec::new(),
        };
        (Self(net.clone()), end(0), end(1), clock)
    }

    /// When the next frame in flight arrives, if any.
    pub fn next_delivery(&self) -> Option<Instant> {
        let n = self.0.borrow();
        n.queues
            .iter()
            .filter_map(|q| q.peek().map(|Reverse((t, _, _))| *t))
            .min()
    }

    pub fn stats(&self) -> SimStats {
        self.0.borrow().stats.clone()
    }
}

/// One end of the simulated link.
pub struct SimPhy {
    side: usize,
    net: Rc<RefCell<Net>>,
    clock: SimClock,
    posted: Vec<Vec<u8>>,
}

impl SimPhy {
    pub fn mac_of(side: usize) -> [u8; 6] {
        [0x02, 0, 0, 0, 0, side as u8 + 1]
    }
}

impl Phy for SimPhy {
    fn mtu(&self) -> usize {
        self.net.borrow().cfg.mtu
    }

    fn mac(&self) -> [u8; 6] {
        Self::mac_of(self.side)
    }

    fn rx_burst(&mut self, max: usize, on_frame: &mut dyn FnMut(&[u8])) -> io::Result<usize> {
        let now = self.clock.now();
        let mut n = 0;
        while n < max {
            let frame = {
                let mut net = self.net.borrow_mut();
                let q = &mut net.queues[self.side];
                match q.peek() {
                    Some(Reverse((t, _, _))) if *t <= now => q.pop().map(|Reverse((_, _, f))| f),
                    _ => None,
                }
            };
            let Some(frame) = frame else { break };
            on_frame(&frame);
            self.net.borrow_mut().spare.push(frame);
            n += 1;
        }
        Ok(n)
    }

    fn tx_with(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> io::Result<bool> {
        let (mtu, ring) = {
            let n = self.net.borrow();
            (n.cfg.mtu, n.cfg.ring)
        };
        if len > mtu {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("frame of {len} bytes over MTU {mtu}"),
            ));
        }
        if self.posted.len() >= ring {
            return Ok(false);
        }
        let mut f = self.net.borrow_mut().spare.pop().unwrap_or_default();
        f.clear();
        f.resize(len, 0);
        fill(&mut f);
        self.posted.push(f);
        Ok(true)
    }

    fn flush(&mut self) -> io::Result<()> {
        let now = self.clock.now();
        let mut net = self.net.borrow_mut();
        let to = 1 - self.side;
        for frame in self.posted.drain(..) {
            let net = &mut *net;
            net.stats.sent += 1;
            if net.rng.chance(net.cfg.loss) {
                net.stats.lost += 1;
                net.spare.push(frame);
                continue;
            }
            let copies = if net.rng.chance(net.cfg.duplicate) {
                2
            } else {
                1
            };
            net.stats.duplicated += copies - 1;
            let mut frame = Some(frame);
            for copy in 0..copies {
                let mut at = now + net.cfg.delay;
                if net.rng.chance(net.cfg.reorder) {
                    net.stats.reordered += 1;
                    let j = net.cfg.jitter.as_nanos() as u64;
                    at += Duration::from_nanos(if j == 0 { 0 } else { net.rng.next() % j });
                }
                net.order += 1;
                let order = net.order;
                let f = if copy + 1 == copies {
                    frame.take().expect("last copy")
                } else {
                    frame.clone().expect("earlier copy")
                };
                net.queues[to].push(Reverse((at, order, f)));
            }
        }
        Ok(())
    }

    fn wait(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(()) // the test drives simulated time
    }
}
