//! `neo bench e2e`: produce → broker → consume latency at a fixed rate, or
//! maximum throughput, over any transport.
//!
//! One client thread holds one connection and drives both sides: produce
//! calls (one record each at a fixed rate; pipelined batches in throughput
//! mode) and one long-poll fetch always outstanding. Each value carries its
//! *scheduled* send time, so latency includes any time the sender fell
//! behind (no coordinated omission). Latency is recorded when the record
//! arrives in a fetch answer; p50/p99/p999 come from an HDR histogram.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use neo_broker::client::fetched::{fetch_parts, for_each_fetched_record};
use neo_broker::client::{decode_answer, method_id};
use neo_broker::protocol::*;
use neo_broker::records::{BatchBuilder, Codecs, RECORD_OVERHEAD};
use neo_transports::rpc::{CallId, Client, ClientConfig, Server, ServerConfig};
use neo_transports::tcp::{TcpConfig, TcpTransport};
use neo_transports::Transport;

#[derive(clap::Args)]
pub struct E2eArgs {
    /// Transport to measure: tcp, af-xdp, dpdk.
    #[arg(long, default_value = "tcp")]
    transport: String,
    /// Messages per second; 0 measures maximum throughput instead.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Message size, bytes (at least 8: the send time).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unrecorded seconds first.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Produce acknowledgement: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Fsync policy of the bench topic: never, always, interval:<ms>.
    #[arg(long, default_value = "interval:5")]
    fsync: String,
    /// Batch bytes per produce in throughput mode.
    #[arg(long, default_value_t = 256 << 10)]
    batch_bytes: usize,
    /// Produce calls in flight (a producer's max in flight).
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Broker to measure; without it one runs in this process (TCP loopback).
    #[arg(long)]
    connect: Option<SocketAddr>,
    /// The client's own address (raw-frame transports).
    #[arg(long)]
    local: Option<SocketAddr>,
    /// Print one JSON record as the last line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    fast: neo::fast::FastArgs,
}

/// A broker on a loopback poll-loop thread with a temporary data directory.
struct LocalBroker {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    dir: std::path::PathBuf,
}

impl LocalBroker {
    fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("neo-bench-e2e-{}", std::process::id()));
        let broker = neo_broker::Broker::open(neo_broker::BrokerConfig::new(&dir))
            .map_err(anyhow::Error::msg)?;
        let mut server = Server::new(
            TcpTransport::new(TcpConfig::default())?,
            ServerConfig::default(),
        );
        let addr = server.transport().listen("127.0.0.1:0".parse()?)?;
        let mut svc = neo_broker::BrokerService::new(server, Arc::new(Mutex::new(broker)))
            .map_err(anyhow::Error::msg)?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("neo-bench-broker".into())
            .spawn(move || {
                if let Err(e) = svc.run(&s) {
                    eprintln!("neo: bench broker failed: {e}");
                }
                let _ = svc.shutdown();
            })?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
            dir,
        })
    }
}

impl Drop for LocalBroker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn e2e(args: E2eArgs) -> anyhow::Result<()> {
    if args.size < 8 {
        bail!("--size must be at least 8 (the value carries its send time)");
    }
    if args.duration <= 0.0 {
        bail!("--duration must be positive");
    }
    check_durability(&args)?;
    match args.transport.as_str() {
        "tcp" => {
            let local = match args.connect {
                Some(_) => None,
                None => Some(LocalBroker::start()?),
            };
            let addr = args
                .connect
                .or(local.as_ref().map(|l| l.addr))
                .expect("one of them");
            run_on(TcpTransport::new(TcpConfig::default())?, addr, &args)
        }
        #[cfg(feature = "af-xdp")]
        "af-xdp" => {
            let (peer, local) = raw(&args)?;
            run_on(
                neo::fast::af_xdp(&args.fast, local, Some(peer), 16 << 20)?,
                SocketAddr::V4(peer),
                &args,
            )
        }
        #[cfg(feature = "dpdk")]
        "dpdk" => {
            let (peer, local) = raw(&args)?;
            run_on(
                neo::fast::dpdk(&args.fast, local, 16 << 20)?,
                SocketAddr::V4(peer),
                &args,
            )
        }
        #[cfg(feature = "rdma")]
        "rdma" => {
            let Some(addr) = args.connect else {
                bail!("--connect is required with --transport rdma");
            };
            run_on(neo::fast::rdma(16 << 20)?, addr, &args)
        }
        other => bail!("transport `{other}` is not available in this build (see `neo doctor`)"),
    }
}

fn check_durability(args: &E2eArgs) -> anyhow::Result<()> {
    crate::cmd::produce::parse_acks(&args.acks)?;
    args.fsync.parse::<Fsync>().map_err(anyhow::Error::msg)?;
    Ok(())
}

#[cfg(any(feature = "af-xdp", feature = "dpdk"))]
fn raw(args: &E2eArgs) -> anyhow::Result<(std::net::SocketAddrV4, std::net::SocketAddrV4)> {
    let (Some(c), Some(l)) = (args.connect, args.local) else {
        bail!(
            "--connect (the broker's engine address) and --local are required with --transport {}",
            args.transport
        );
    };
    Ok((
        neo::fast::engine_addr(c, "--connect")?,
        neo::fast::engine_addr(l, "--local")?,
    ))
}

struct Run {
    hist: Histogram<u64>,
    sent: u64,
    received: u64,
    measured: u64,
    /// Records that arrived inside the measured window.
    in_window: u64,
    errors: u64,
    first_error: Option<String>,
}

fn run_on<T: Transport>(transport: T, addr: SocketAddr, args: &E2eArgs) -> anyhow::Result<()> {
    let mut c = Client::new(transport, ClientConfig::default());
    let conn = c
        .connect(addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    let topic = format!(
        "bench-e2e-{}-{}",
        std::process::id(),
        Instant::now().elapsed().subsec_nanos()
    );
    let call = |c: &mut Client<T>, m: &str, body: Vec<u8>| -> anyhow::Result<Vec<u8>> {
        Ok(c.call(conn, method_id(m), &body, Some(Duration::from_secs(10)))?)
    };
    let create = CreateTopic {
        name: topic.clone(),
        partitions: Some(1),
        configs: vec![
            ("fsync".into(), args.fsync.clone()),
            (
                "max.message.bytes".into(),
                (args.batch_bytes.max(args.size) + 4096).to_string(),
            ),
        ],
    };
    decode_answer::<TopicConfig>(&call(
        &mut c,
        method::CREATE_TOPIC,
        postcard::to_stdvec(&create)?,
    )?)?;
    let acks = crate::cmd::produce::parse_acks(&args.acks)?;
    let result = drive(&mut c, conn, &topic, acks, args);
    let _ = call(
        &mut c,
        method::DELETE_TOPIC,
        postcard::to_stdvec(&TopicName {
            name: topic.clone(),
        })?,
    );
    // Close the session and let the close go out (a raw-frame transport
    // sends it from its poll), so the next run from this address starts clean.
    c.close(conn);
    let t = Instant::now();
    while c.poll(&mut |_, _| {}).is_ok() && t.elapsed() < Duration::from_millis(50) {}
    let transport_stats = c.transport().stats_line();
    if !transport_stats.is_empty() {
        eprintln!(
            "neo bench e2e: {} counters: {transport_stats}",
            c.transport().name()
        );
    }
    let (run, wall) = result?;
    report(args, &run, wall);
    if run.errors > 0 {
        bail!(
            "{} produce or fetch errors; first: {}",
            run.errors,
            run.first_error.unwrap_or_default()
        );
    }
    Ok(())
}

/// The send loop and the fetch loop, interleaved on one thread.
fn drive<T: Transport>(
    c: &mut Client<T>,
    conn: neo_transports::ConnId,
    topic: &str,
    acks: Acks,
    args: &E2eArgs,
) -> anyhow::Result<(Run, Duration)> {
    let base = Instant::now();
    let warm_end = base + Duration::from_secs_f64(args.warmup);
    let end = warm_end + Duration::from_secs_f64(args.duration);
    let throughput = args.rate == 0;
    let per_batch = if throughput {
        (args.batch_bytes / (args.size + RECORD_OVERHEAD)).max(1)
    } else {
        1
    };
    let interval = if throughput {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(1.0 / args.rate as f64)
    };
    let mut run = Run {
        hist: Histogram::new_with_bounds(1, 120_000_000_000, 3)?,
        sent: 0,
        received: 0,
        measured: 0,
        in_window: 0,
        errors: 0,
        first_error: None,
    };
    let mut builder = BatchBuilder::new();
    let mut value = vec![0x5au8; args.size];
    let mut body = Vec::new();
    let mut produces: Vec<CallId> = Vec::new();
    let mut fetch: Option<CallId> = None;
    let mut position = 0u64;
    let mut codecs = Codecs::software();
    let mut next_send = base;
    let drain_deadline = end + Duration::from_secs(10);
    loop {
        let now = Instant::now();
        let sending = now < end;
        if !sending && run.received >= run.sent && produces.is_empty() {
            break;
        }
        if now >= drain_deadline {
            bail!(
                "{} of {} records never arrived within 10 s of the end",
                run.sent - run.received,
                run.sent
            );
        }
        // Send what is due: one record per call at a fixed rate; when the
        // calls in flight are at the limit, records that fall due meanwhile
        // go together in the next call (as a producer's batch would).
        if sending && produces.len() < args.in_flight && now >= next_send {
            builder.clear();
            loop {
                let scheduled = if throughput { now } else { next_send };
                let ns = scheduled.duration_since(base).as_nanos() as u64;
                value[..8].copy_from_slice(&ns.to_le_bytes());
                builder.push(None, &value, 0).map_err(anyhow::Error::msg)?;
                next_send += interval;
                let full = builder.len() + args.size + RECORD_OVERHEAD
                    > args.batch_bytes.max(args.size + RECORD_OVERHEAD);
                let more_due = !throughput && next_send <= now && next_send < end;
                if full || !(throughput && builder.count() < per_batch as u32 || more_due) {
                    break;
                }
            }
            let req = Produce {
                topic,
                partition: 0,
                acks,
                producer_id: -1,
                producer_epoch: -1,
                base_sequence: -1,
                record_count: builder.count(),
                codec: 0,
                first_timestamp: 0,
                max_timestamp: 0,
                records: builder.bytes(),
            };
            body.clear();
            body = postcard::to_extend(&req, std::mem::take(&mut body))?;
            produces.push(c.start(
                conn,
                method_id(method::PRODUCE),
                &body,
                Some(Duration::from_secs(30)),
            )?);
            run.sent += builder.count() as u64;
        }
        if fetch.is_none() {
            let req = Fetch {
                max_wait_ms: 100,
                min_bytes: 1,
                max_bytes: 4 << 20,
                partitions: vec![FetchPartition {
                    topic: topic.into(),
                    partition: 0,
                    offset: position,
                }],
            };
            fetch = Some(c.start(
                conn,
                method_id(method::FETCH),
                &postcard::to_stdvec(&req)?,
                Some(Duration::from_secs(30)),
            )?);
        }
        let fail = |run: &mut Run, e: String| {
            run.errors += 1;
            run.first_error.get_or_insert(e);
        };
        c.poll(&mut |id, r| {
            if Some(id) == fetch {
                fetch = None;
                let arrived = Instant::now();
                let in_window = arrived >= warm_end && arrived < end;
                match r.map_err(|e| e.to_string()).and_then(|b| {
                    fetched(b, &mut codecs, &mut position, |ns| {
                        run.received += 1;
                        run.in_window += in_window as u64;
                        let sent_at = base + Duration::from_nanos(ns);
                        if sent_at >= warm_end && sent_at < end {
                            run.measured += 1;
                            run.hist.saturating_record(
                                arrived.saturating_duration_since(sent_at).as_nanos().max(1) as u64,
                            );
                        }
                    })
                }) {
                    Ok(()) => {}
                    Err(e) => fail(&mut run, e),
                }
            } else if let Some(i) = produces.iter().position(|p| *p == id) {
                produces.swap_remove(i);
                if let Err(e) = r.map_err(|e| e.to_string()).and_then(|b| {
                    decode_answer::<Produced>(b)
                        .map(drop)
                        .map_err(|e| e.to_string())
                }) {
                    fail(&mut run, e);
                }
            }
        })?;
    }
    Ok((run, Duration::from_secs_f64(args.duration)))
}

/// Walks a fetch answer of one partition, calling `each` with every
/// record's send time (ns after the bench's start).
fn fetched(
    answer: &[u8],
    codecs: &mut Codecs,
    position: &mut u64,
    mut each: impl FnMut(u64),
) -> Result<(), String> {
    let parts = fetch_parts(answer, 1).map_err(|e| e.to_string())?;
    let (p, bytes) = &parts[0];
    if let Some(e) = &p.error {
        return Err(e.to_string());
    }
    for_each_fetched_record(bytes, codecs, position, |r| {
        each(u64::from_le_bytes(
            r.value[..8].try_into().expect("8 bytes"),
        ))
    })
    .map(drop)
    .map_err(|e| e.to_string())
}

fn report(args: &E2eArgs, run: &Run, wall: Duration) {
    let h = &run.hist;
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    let mode = if args.rate == 0 {
        "throughput"
    } else {
        "latency"
    };
    let msgs = run.in_window as f64 / wall.as_secs_f64();
    let durability = format!("acks={} fsync={}", args.acks, args.fsync);
    println!(
        "neo bench e2e: transport={} mode={mode} rate={} size={}B duration={}s ({durability})",
        args.transport, args.rate, args.size, args.duration
    );
    println!(
        "  p50 {:.1} µs   p99 {:.1} µs   p99.9 {:.1} µs   max {:.1} µs   {:.0} msgs/s   {:.1} MB/s   sent {} received {}",
        q(0.5), q(0.99), q(0.999), h.max() as f64 / 1000.0, msgs, msgs * args.size as f64 / 1e6, run.sent, run.received
    );
    if args.json {
        let v = serde_json::json!({
            "bench": "e2e", "transport": args.transport, "mode": mode, "rate": args.rate, "size": args.size,
            "duration_s": args.duration, "sent": run.sent, "received": run.received, "measured": run.measured,
            "p50_us": q(0.5), "p99_us": q(0.99), "p999_us": q(0.999), "max_us": h.max() as f64 / 1000.0,
            "msgs_per_s": msgs, "mb_per_s": msgs * args.size as f64 / 1e6, "durability": durability, "tool": "neo",
            "cdf": crate::bench::cdf(h),
        });
        println!("{v}");
    }
}
