//! `neo bench`: latency measurements of Neo's own paths, recorded in HDR
//! histograms. `scripts/bench.sh` runs these beside the raw baselines (sockperf,
//! peers) in the same invocation and reports ratios.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use neo_transports::rpc::{Client, ClientConfig, MethodId, RpcError, Server, ServerConfig};
use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::Transport;

#[derive(clap::Subcommand)]
pub enum Bench {
    /// Request/response round trips over Neo RPC (echo), one call in flight.
    Rtt(RttArgs),
    /// Broker produce→consume latency at a fixed rate, or maximum throughput.
    E2e(crate::bench_e2e::E2eArgs),
}

#[derive(clap::Args)]
pub struct RttArgs {
    /// Transport to measure.
    #[arg(long, default_value = "tcp")]
    transport: String,
    /// Request and response body size, bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Measured round trips.
    #[arg(long, default_value_t = 20_000)]
    count: u64,
    /// Unrecorded round trips first.
    #[arg(long, default_value_t = 2_000)]
    warmup: u64,
    /// Server to measure against; without it, one is started on loopback.
    #[arg(long)]
    connect: Option<SocketAddr>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// The client's own address (af-xdp: the engine's IPv4 address and port).
    #[arg(long)]
    local: Option<SocketAddr>,
    #[command(flatten)]
    fast: neo::fast::FastArgs,
}

pub fn run(b: Bench) -> anyhow::Result<()> {
    match b {
        Bench::Rtt(args) => rtt(args),
        Bench::E2e(args) => crate::bench_e2e::e2e(args),
    }
}

/// A loopback echo server on its own poll loop thread, for the duration of a bench.
struct LocalServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl LocalServer {
    fn start(max_message: usize) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("neo-bench-server".into())
            .spawn(move || {
                let tcp = TcpTransport::new(TcpConfig {
                    max_message,
                    ..Default::default()
                })?;
                let mut server = Server::new(tcp, ServerConfig::default());
                crate::serve::register_builtin(&mut server)?;
                let bound = server.transport().listen("127.0.0.1:0".parse()?);
                let ok = bound.is_ok();
                tx.send(bound).ok();
                if ok {
                    server.run(&stop2)?;
                }
                Ok(())
            })?;
        let addr = rx.recv().context("bench server thread died")??;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Err(e)) => eprintln!("neo: bench server failed: {e:#}"),
                Err(_) => eprintln!("neo: bench server panicked"),
                Ok(Ok(())) => {}
            }
        }
    }
}

/// One round trip with a single call in flight, spinning on the poll.
fn round_trip<T: Transport>(
    c: &mut Client<T>,
    conn: neo_transports::ConnId,
    method: MethodId,
    body: &[u8],
) -> Result<(), RpcError> {
    let id = c.start(conn, method, body, Some(Duration::from_secs(10)))?;
    let mut result = None;
    while result.is_none() {
        c.poll(&mut |done, r| {
            if done == id {
                result = Some(r.map(|b| b.len()));
            }
        })?;
    }
    let len = result.expect("set")?;
    if len != body.len() {
        return Err(RpcError::Remote {
            code: neo_transports::rpc::ErrorCode::Internal,
            message: format!("echo returned {len} bytes, sent {}", body.len()),
        });
    }
    Ok(())
}

fn rtt(args: RttArgs) -> anyhow::Result<()> {
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    let max_message = (args.size + 64).max(1 << 20);
    match args.transport.as_str() {
        "tcp" => {
            let local = match args.connect {
                Some(_) => None,
                None => Some(LocalServer::start(max_message)?),
            };
            let addr = args
                .connect
                .or(local.as_ref().map(|l| l.addr))
                .expect("one of them");
            let tcp = TcpTransport::new(TcpConfig {
                max_message,
                ..Default::default()
            })?;
            let result = rtt_on(tcp, addr, &args);
            drop(local);
            result
        }
        #[cfg(feature = "af-xdp")]
        "af-xdp" => {
            let (peer, local) = raw_endpoints(&args, "af-xdp")?;
            rtt_on(
                neo::fast::af_xdp(&args.fast, local, Some(peer), max_message)?,
                SocketAddr::V4(peer),
                &args,
            )
        }
        #[cfg(not(feature = "af-xdp"))]
        "af-xdp" => Err(neo::fast::af_xdp_unavailable()),
        #[cfg(feature = "dpdk")]
        "dpdk" => {
            let (peer, local) = raw_endpoints(&args, "dpdk")?;
            rtt_on(
                neo::fast::dpdk(&args.fast, local, max_message)?,
                SocketAddr::V4(peer),
                &args,
            )
        }
        #[cfg(not(feature = "dpdk"))]
        "dpdk" => Err(neo::fast::dpdk_unavailable()),
        #[cfg(feature = "rdma")]
        "rdma" => {
            let Some(addr) = args.connect else {
                bail!("--connect is required with --transport rdma (a `neo serve --transport rdma`)");
            };
            rtt_on(neo::fast::rdma(max_message)?, addr, &args)
        }
        #[cfg(not(feature = "rdma"))]
        "rdma" => Err(neo::fast::rdma_unavailable()),
        other => bail!(
            "transport `{other}` is not available in this build (tcp, af-xdp, dpdk, rdma; see `neo doctor`)"
        ),
    }
}

/// The server and the client's own engine address of a raw-frame transport:
/// both are required and must be concrete IPv4 addresses.
#[cfg(any(feature = "af-xdp", feature = "dpdk"))]
fn raw_endpoints(
    args: &RttArgs,
    transport: &str,
) -> anyhow::Result<(std::net::SocketAddrV4, std::net::SocketAddrV4)> {
    let Some(addr) = args.connect else {
        bail!("--connect is required with --transport {transport} (the server runs on another interface)");
    };
    let Some(local) = args.local else {
        bail!("--local is required with --transport {transport}");
    };
    Ok((
        neo::fast::engine_addr(addr, "--connect")?,
        neo::fast::engine_addr(local, "--local")?,
    ))
}

fn rtt_on<T: Transport>(transport: T, addr: SocketAddr, args: &RttArgs) -> anyhow::Result<()> {
    let mut c = Client::new(transport, ClientConfig::default());
    let conn = c
        .connect(addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    let echo = MethodId::new("echo", "Echo");
    let body = vec![0xa5u8; args.size];
    for _ in 0..args.warmup {
        round_trip(&mut c, conn, echo, &body)?;
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let wall = Instant::now();
    for _ in 0..args.count {
        let t = Instant::now();
        round_trip(&mut c, conn, echo, &body)?;
        hist.saturating_record(t.elapsed().as_nanos() as u64);
    }
    let wall = wall.elapsed();
    c.close(conn);
    // Let the close go out (a raw-frame transport sends it from its poll).
    let t = Instant::now();
    while c
        .transport()
        .poll(&mut |_: neo_transports::Event<'_>, _: &mut dyn neo_transports::Tx| {})
        .is_ok()
        && t.elapsed() < Duration::from_millis(50)
    {}
    report(args, &hist, wall);
    Ok(())
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The percentiles `cdf` reports: every percent up to 90, then ten points
/// per decade of the tail (92.06 … 99.999), then 100 (the maximum).
fn cdf_percentiles() -> impl Iterator<Item = f64> {
    let head = (0..=90).map(f64::from);
    let tail = (11..=50).map(|k| 100.0 * (1.0 - 10f64.powf(-f64::from(k) / 10.0)));
    head.chain(tail).chain(std::iter::once(100.0))
}

/// A latency CDF out of an HDR histogram of nanoseconds, for plotting:
/// `[percentile, µs]` pairs at `cdf_percentiles`.
pub(crate) fn cdf(h: &Histogram<u64>) -> Vec<[f64; 2]> {
    cdf_percentiles()
        .map(|p| {
            let p = (p * 1e4).round() / 1e4;
            [p, us(h.value_at_quantile(p / 100.0))]
        })
        .collect()
}

fn report(args: &RttArgs, h: &Histogram<u64>, wall: Duration) {
    let q = |p: f64| us(h.value_at_quantile(p));
    println!(
        "neo bench rtt: transport={} size={}B count={} (after {} warm-up) over {}",
        args.transport,
        args.size,
        args.count,
        args.warmup,
        args.connect
            .map_or("loopback (own server)".to_string(), |a| a.to_string())
    );
    println!(
        "  p50 {:.2} µs   p99 {:.2} µs   p99.9 {:.2} µs   max {:.2} µs   mean {:.2} µs   ({:.0} round trips/s)",
        q(0.5),
        q(0.99),
        q(0.999),
        us(h.max()),
        h.mean() / 1000.0,
        args.count as f64 / wall.as_secs_f64()
    );
    if args.json {
        let obj = serde_json::json!({
            "bench": "rtt",
            "transport": args.transport,
            "size": args.size,
            "count": args.count,
            "warmup": args.warmup,
            "p50_us": q(0.5),
            "p99_us": q(0.99),
            "p999_us": q(0.999),
            "max_us": us(h.max()),
            "mean_us": h.mean() / 1000.0,
            "min_us": us(h.min()),
            "rps": args.count as f64 / wall.as_secs_f64(),
            "tool": "neo",
            "cdf": cdf(h),
        });
        println!("{obj}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_is_monotone_from_min_to_max() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for ns in (1..=10_000u64).map(|i| i * 1_000) {
            h.record(ns).unwrap();
        }
        let c = cdf(&h);
        assert_eq!(c.first().unwrap()[0], 0.0);
        assert_eq!(c.last().unwrap(), &[100.0, us(h.max())]);
        assert!(c
            .windows(2)
            .all(|w| w[0][0] < w[1][0] && w[0][1] <= w[1][1]));
        assert!(c.iter().any(|p| p[0] == 99.9) && c.iter().any(|p| p[0] == 99.999));
        let p50 = c.iter().find(|p| p[0] == 50.0).unwrap()[1];
        assert!((p50 - 5_000.0).abs() < 10.0, "p50 {p50}");
    }
}
