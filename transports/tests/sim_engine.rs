//! The packet engine on the simulated link, through the same `Transport` the
//! AF_XDP and DPDK backends use. Tests named `sim_` run many seeds each with
//! loss, duplication and reordering and check that every message arrives
//! exactly once, intact and in order, in both directions at once.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use neo_transports::packet::sim::{SimClock, SimConfig, SimNet, SimPhy, SimStats};
use neo_transports::packet::{Engine, EngineConfig, EngineTransport};
use neo_transports::transport::CloseReason;
use neo_transports::{ConnId, Event, Transport, Tx};

type SimTransport = EngineTransport<SimPhy, SimClock>;

const A_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 2);
const PORT: u16 = 7000;

fn engine(side: usize, ip: Ipv4Addr, tune: &dyn Fn(&mut EngineConfig)) -> Engine {
    let mut cfg = EngineConfig::new(SimPhy::mac_of(side), ip, PORT);
    cfg.mtu = 1500;
    tune(&mut cfg);
    Engine::new(cfg)
}

fn pair(
    seed: u64,
    link: SimConfig,
    tune: &dyn Fn(&mut EngineConfig),
) -> (SimNet, SimClock, SimTransport, SimTransport) {
    let (net, pa, pb, clock) = SimNet::new(seed, link);
    let a = EngineTransport::new("sim", engine(0, A_IP, tune), pa, clock.clone());
    let b = EngineTransport::new("sim", engine(1, B_IP, tune), pb, clock.clone());
    (net, clock, a, b)
}

/// Message `idx` of direction `dir`: a header naming it, then a pattern.
fn message(dir: u8, idx: u32, len: usize) -> Vec<u8> {
    let mut m: Vec<u8> = (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(idx) as u8 ^ dir)
        .collect();
    if len >= 5 {
        m[0] = dir;
        m[1..5].copy_from_slice(&idx.to_le_bytes());
    }
    m
}

struct Side {
    dir: u8,
    sizes: Vec<usize>,
    sent: usize,
    received: usize,
    peer_sizes: Vec<usize>,
    conn: Option<ConnId>,
    closed: Option<CloseReason>,
    error: Option<String>,
}

impl Side {
    fn on_event(&mut self, ev: Event<'_>) {
        match ev {
            Event::Accepted { conn, .. } | Event::Connected { conn } => self.conn = Some(conn),
            Event::Message { data, .. } => {
                let idx = self.received;
                match self.peer_sizes.get(idx) {
                    Some(&len) if data == message(1 - self.dir, idx as u32, len).as_slice() => {
                        self.received += 1
                    }
                    Some(&len) => {
                        self.error.get_or_insert(format!("dir {} message {idx}: got {} bytes, want {len} (wrong content or order)", self.dir, data.len()));
                    }
                    None => {
                        self.error.get_or_insert(format!(
                            "dir {}: extra message of {} bytes",
                            self.dir,
                            data.len()
                        ));
                    }
                }
            }
            Event::Closed { reason, .. } => self.closed = Some(reason),
        }
    }

    fn send_some(&mut self, tx: &mut dyn Tx) {
        let Some(conn) = self.conn else { return };
        while self.sent < self.sizes.len() {
            let m = message(self.dir, self.sent as u32, self.sizes[self.sent]);
            if tx.send_parts(conn, &[&m]).is_err() {
                return;
            }
            self.sent += 1;
        }
    }
}

/// Sizes: mostly one fragment, some a few, some many (up to 30 fragments).
fn sizes(seed: u64, n: usize) -> Vec<usize> {
    let mut x = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match x % 10 {
                0..=5 => (x >> 8) as usize % 300,
                6..=8 => 1000 + (x >> 8) as usize % 4000,
                _ => 10_000 + (x >> 8) as usize % 30_000,
            }
        })
        .collect()
}

/// Runs one seed: connect (with ARP), both sides send `n` messages at once,
/// then the client closes gracefully. Returns simulated time taken.
fn run_seed(
    seed: u64,
    link: SimConfig,
    n: usize,
    tune: &dyn Fn(&mut EngineConfig),
) -> Result<(Duration, SimStats), String> {
    let (net, clock, mut a, mut b) = pair(seed, link, tune);
    let start = clock.now_for_test();
    b.listen(SocketAddr::V4(SocketAddrV4::new(B_IP, PORT)))
        .map_err(|e| e.to_string())?;
    let mut sa = Side {
        dir: 0,
        sizes: sizes(seed, n),
        sent: 0,
        received: 0,
        peer_sizes: sizes(seed ^ 0xb, n),
        conn: None,
        closed: None,
        error: None,
    };
    let mut sb = Side {
        dir: 1,
        sizes: sizes(seed ^ 0xb, n),
        sent: 0,
        received: 0,
        peer_sizes: sizes(seed, n),
        conn: None,
        closed: None,
        error: None,
    };
    let conn = a
        .connect(SocketAddr::V4(SocketAddrV4::new(B_IP, PORT)))
        .map_err(|e| e.to_string())?;
    let mut closing = false;
    for step in 0..3_000_000u64 {
        a.poll(&mut |ev: Event<'_>, _: &mut dyn Tx| sa.on_event(ev))
            .map_err(|e| e.to_string())?;
        b.poll(&mut |ev: Event<'_>, _: &mut dyn Tx| sb.on_event(ev))
            .map_err(|e| e.to_string())?;
        if let Some(e) = sa.error.take().or(sb.error.take()) {
            return Err(e);
        }
        if let Some(r) = sa.closed.as_ref().filter(|_| !closing) {
            return Err(format!("client session closed early: {r}; a got {}/{n} sent {}; b got {}/{n} sent {}; a {:?}; b {:?}; link {:?}", sa.received, sa.sent, sb.received, sb.sent, a.stats(), b.stats(), net.stats()));
        }
        sa.send_some(a.tx());
        sb.send_some(b.tx());
        let done = sa.received == n && sb.received == n && sa.sent == n && sb.sent == n;
        if done && !closing {
            a.tx().close(conn);
            closing = true;
        }
        if closing && sa.closed.is_some() && sb.closed.is_some() {
            if sa.closed != Some(CloseReason::Local) {
                return Err(format!("client closed with {:?}", sa.closed));
            }
            return Ok((clock.now_for_test() - start, net.stats()));
        }
        let now = clock.now_for_test();
        let next = [
            net.next_delivery(),
            a.engine().next_timer(),
            b.engine().next_timer(),
        ]
        .into_iter()
        .flatten()
        .min();
        clock.set(next.unwrap_or(now).max(now + Duration::from_micros(1)));
        if now - start > Duration::from_secs(300) {
            return Err(format!(
                "stuck after {step} steps: a got {}/{n}, b got {}/{n}; a {:?}; b {:?}",
                sa.received,
                sb.received,
                a.stats(),
                b.stats()
            ));
        }
    }
    Err("step limit".into())
}

trait NowForTest {
    fn now_for_test(&self) -> Instant;
}
impl NowForTest for SimClock {
    fn now_for_test(&self) -> Instant {
        neo_transports::packet::Clock::now(self)
    }
}

/// Polls `t` alone, advancing the clock by `step`, until its session closes.
fn poll_until_closed(
    t: &mut SimTransport,
    clock: &SimClock,
    step: Duration,
    steps: usize,
) -> Option<CloseReason> {
    let mut closed = None;
    for _ in 0..steps {
        t.poll(&mut |ev: Event<'_>, _: &mut dyn Tx| {
            if let Event::Closed { reason, .. } = ev {
                closed = Some(reason);
            }
        })
        .unwrap();
        if closed.is_some() {
            break;
        }
        clock.advance(step);
    }
    closed
}

fn seeds(default: u64) -> u64 {
    std::env::var("NEO_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn lossy() -> SimConfig {
    SimConfig {
        loss: 0.10,
        duplicate: 0.05,
        reorder: 0.20,
        ..SimConfig::default()
    }
}

#[test]
fn sim_lossy_link_delivers_every_message_once_in_order_both_ways() {
    let n_seeds = seeds(1000);
    let mut worst = Duration::ZERO;
    let mut total = SimStats::default();
    for seed in 0..n_seeds {
        match run_seed(seed, lossy(), 12, &|_| {}) {
            Ok((t, s)) => {
                worst = worst.max(t);
                total.sent += s.sent;
                total.lost += s.lost;
                total.duplicated += s.duplicated;
                total.reordered += s.reordered;
            }
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
    // The faults really happened, at about the configured rates.
    let lost = total.lost as f64 / total.sent as f64;
    assert!((0.08..0.12).contains(&lost), "loss rate {lost}");
    assert!(total.duplicated > 0 && total.reordered > 0);
    println!("seeds={n_seeds} loss=10% dup=5% reorder=20% frames={} lost={} dup={} reordered={} worst_sim_time={worst:?}", total.sent, total.lost, total.duplicated, total.reordered);
}

#[test]
fn sim_small_credit_window_under_heavy_loss() {
    let n_seeds = seeds(300);
    let link = SimConfig {
        loss: 0.20,
        duplicate: 0.10,
        reorder: 0.30,
        ..SimConfig::default()
    };
    for seed in 0..n_seeds {
        if let Err(e) = run_seed(seed + 10_000, link.clone(), 8, &|c| c.window = 4) {
            panic!("seed {}: {e}", seed + 10_000);
        }
    }
    println!("seeds={n_seeds} loss=20% dup=10% reorder=30% window=4");
}

#[test]
fn sim_connect_to_a_host_that_does_not_listen_is_refused() {
    let (net, clock, mut a, mut b) = pair(1, SimConfig::default(), &|_| {});
    a.connect(SocketAddr::V4(SocketAddrV4::new(B_IP, PORT)))
        .unwrap();
    let mut closed = None;
    for _ in 0..10_000 {
        a.poll(&mut |ev: Event<'_>, _: &mut dyn Tx| {
            if let Event::Closed { reason, .. } = ev {
                closed = Some(reason);
            }
        })
        .unwrap();
        b.poll(&mut |_: Event<'_>, _: &mut dyn Tx| {}).unwrap();
        if closed.is_some() {
            break;
        }
        let next = net
            .next_delivery()
            .unwrap_or(clock.now_for_test() + Duration::from_millis(1));
        clock.set(next);
    }
    assert_eq!(
        closed,
        Some(CloseReason::ConnectFailed(
            std::io::ErrorKind::ConnectionRefused
        ))
    );
}

#[test]
fn sim_unreachable_host_fails_arp_and_a_silent_peer_times_out() {
    // All frames lost: ARP never resolves.
    let (_net, clock, mut a, _b) = pair(
        2,
        SimConfig {
            loss: 1.0,
            ..SimConfig::default()
        },
        &|_| {},
    );
    a.connect(SocketAddr::V4(SocketAddrV4::new(B_IP, PORT)))
        .unwrap();
    let closed = poll_until_closed(&mut a, &clock, Duration::from_millis(50), 1000);
    assert_eq!(
        closed,
        Some(CloseReason::ConnectFailed(
            std::io::ErrorKind::HostUnreachable
        ))
    );
}

#[test]
fn sim_peer_that_vanishes_is_timed_out() {
    let (net, clock, mut a, mut b) = pair(3, SimConfig::default(), &|c| {
        c.idle_timeout = Duration::from_secs(2)
    });
    b.listen(SocketAddr::V4(SocketAddrV4::new(B_IP, PORT)))
        .unwrap();
    a.connect(SocketAddr::V4(SocketAddrV4::new(B_IP, PORT)))
        .unwrap();
    let mut connected = false;
    for _ in 0..1000 {
        a.poll(&mut |ev: Event<'_>, _: &mut dyn Tx| {
            connected |= matches!(ev, Event::Connected { .. })
        })
        .unwrap();
        b.poll(&mut |_: Event<'_>, _: &mut dyn Tx| {}).unwrap();
        if connected {
            break;
        }
        clock.set(
            net.next_delivery()
                .unwrap_or(clock.now_for_test() + Duration::from_millis(1)),
        );
    }
    assert!(connected);
    // b stops polling (the process died): a must give up by itself.
    let closed = poll_until_closed(&mut a, &clock, Duration::from_millis(10), 10_000);
    assert_eq!(closed, Some(CloseReason::Io(std::io::ErrorKind::TimedOut)));
}

#[test]
fn garbage_frames_are_counted_and_dropped() {
    let (_net, clock, mut a, _b) = pair(4, SimConfig::default(), &|_| {});
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut frame = Vec::new();
    for i in 0..20_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        frame.clear();
        frame.extend((0..(x % 200) as usize).map(|j| (x >> (j % 56)) as u8));
        // Some frames look like IPv4/UDP to our address and port, to get deeper.
        if i % 2 == 0 && frame.len() > 42 {
            frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            frame[14] = 0x45;
            frame[30..34].copy_from_slice(&A_IP.octets());
            frame[36..38].copy_from_slice(&PORT.to_be_bytes());
        }
        let now = clock.now_for_test();
        a.engine()
            .handle_frame(now, &frame, &mut |_: Event<'_>, _: &mut dyn Tx| {
                panic!("garbage produced an event")
            });
    }
    let s = a.stats().clone();
    assert_eq!(s.frames_in, 20_000);
    let dropped = s.malformed
        + s.bad_checksum
        + s.not_for_us
        + s.ip_fragments
        + s.bad_protocol
        + s.unknown_session
        + s.arp_in;
    assert_eq!(dropped, 20_000, "{s:?}");
}

#[test]
fn sim_lossless_link_baseline() {
    let n_seeds = seeds(50);
    for seed in 0..n_seeds {
        if let Err(e) = run_seed(seed, SimConfig::default(), 12, &|_| {}) {
            panic!("seed {seed}: {e}");
        }
    }
    println!("seeds={n_seeds} loss=0%");
}
