//! `neo-bench-nats`: the NATS JetStream peer of `neo bench e2e`, for
//! `scripts/bench.sh e2e`. Same modes, rate, size and JSON record:
//!
//! * latency (`--rate R`): a sender thread publishes one message at each
//!   scheduled time (spinning between them, as Neo's bench client does) to
//!   a file-storage stream; an ordered push consumer receives them. Each
//!   payload carries its scheduled send time, so latency includes any time
//!   the sender fell behind.
//! * throughput (`--rate 0`): publish as fast as acknowledgements allow,
//!   `--in-flight` acks outstanding; messages received per second.
//!
//! Publishes are acknowledged by the server (JetStream's PubAck) and the
//! consumer needs no acks (AckPolicy none), as Neo's consumer commits none.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer, stream};
use clap::Parser;
use futures_util::StreamExt;
use hdrhistogram::Histogram;

#[derive(Parser, Clone)]
#[command(about = "NATS JetStream produce→consume latency and throughput")]
struct Args {
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    url: String,
    /// Messages per second; 0 measures maximum throughput.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    #[arg(long, default_value_t = 1024)]
    size: usize,
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Publish acknowledgements outstanding at once.
    #[arg(long, default_value_t = 1024)]
    in_flight: usize,
    #[arg(long)]
    json: bool,
    /// Tokio worker threads (receiver and acknowledgements).
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

struct Shared {
    hist: Mutex<Histogram<u64>>,
    received: AtomicU64,
    measured: AtomicU64,
    in_window: AtomicU64,
    errors: AtomicU64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.size >= 8, "--size must be at least 8");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()?;
    let client = rt
        .block_on(async_nats::connect(&args.url))
        .with_context(|| format!("connecting to {}", args.url))?;
    let js = jetstream::new(client.clone());
    let name = format!("NEOBENCH{}", std::process::id());
    let subject = format!("neobench.{}", std::process::id());
    let s = rt.block_on(js.get_or_create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone()],
        storage: stream::StorageType::File,
        ..Default::default()
    }))?;
    let cons = rt.block_on(s.create_consumer(consumer::push::OrderedConfig {
        deliver_subject: client.new_inbox(),
        filter_subject: subject.clone(),
        ..Default::default()
    }))?;
    let mut messages = rt.block_on(cons.messages())?;

    let base = Instant::now();
    let warm_end = base + Duration::from_secs_f64(args.warmup);
    let end = warm_end + Duration::from_secs_f64(args.duration);
    let shared = Arc::new(Shared {
        hist: Mutex::new(Histogram::new_with_bounds(1, 120_000_000_000, 3)?),
        received: AtomicU64::new(0),
        measured: AtomicU64::new(0),
        in_window: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let sent = Arc::new(AtomicU64::new(0));

    let sh = shared.clone();
    let sent_count = sent.clone();
    rt.spawn(async move {
        while let Some(m) = messages.next().await {
            let arrived = Instant::now();
            let m = match m {
                Ok(m) => m,
                Err(_) => {
                    sh.errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            let Some(ns) = m
                .payload
                .get(..8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8")))
            else {
                sh.errors.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            sh.received.fetch_add(1, Ordering::Relaxed);
            if arrived >= warm_end && arrived < end {
                sh.in_window.fetch_add(1, Ordering::Relaxed);
            }
            let sent_at = base + Duration::from_nanos(ns);
            if sent_at >= warm_end && sent_at < end {
                sh.measured.fetch_add(1, Ordering::Relaxed);
                let lat = arrived.saturating_duration_since(sent_at).as_nanos().max(1) as u64;
                sh.hist.lock().expect("histogram").saturating_record(lat);
            }
        }
    });

    // Latency: a plain thread that spins to each scheduled time and
    // publishes through the runtime. Throughput: a task on the runtime, so
    // nothing but acknowledgements paces it.
    let limit = Arc::new(tokio::sync::Semaphore::new(args.in_flight.max(1)));
    let publish_one = {
        let (js, subject, sh, limit, sent) = (
            js.clone(),
            subject.clone(),
            shared.clone(),
            limit.clone(),
            sent.clone(),
        );
        move |payload: Vec<u8>| {
            let (js, subject, sh, limit, sent) = (
                js.clone(),
                subject.clone(),
                sh.clone(),
                limit.clone(),
                sent.clone(),
            );
            async move {
                let permit = limit.acquire_owned().await?;
                let ack = js.publish(subject, payload.into()).await?;
                sent.fetch_add(1, Ordering::Release);
                tokio::spawn(async move {
                    if ack.await.is_err() {
                        sh.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(permit);
                });
                anyhow::Ok(())
            }
        }
    };
    let stamp = move |payload: &mut Vec<u8>, at: Instant| {
        payload[..8].copy_from_slice(&(at.duration_since(base).as_nanos() as u64).to_le_bytes());
    };
    let handle = rt.handle().clone();
    let size = args.size;
    if args.rate > 0 {
        let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
        std::thread::spawn(move || -> anyhow::Result<()> {
            let mut payload = vec![0x5au8; size];
            let mut next = base;
            while next < end {
                while Instant::now() < next {
                    std::hint::spin_loop();
                }
                stamp(&mut payload, next);
                handle.block_on(publish_one(payload.clone()))?;
                next += interval;
            }
            Ok(())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    } else {
        rt.block_on(async move {
            let mut payload = vec![0x5au8; size];
            while Instant::now() < end {
                stamp(&mut payload, Instant::now());
                publish_one(payload.clone()).await?;
            }
            anyhow::Ok(())
        })?;
    }
    // Wait for the outstanding acknowledgements.
    let all = u32::try_from(args.in_flight.max(1)).unwrap_or(u32::MAX);
    drop(rt.block_on(limit.acquire_many(all))?);
    // Every message should arrive; wait up to 10 s for the last ones.
    let sent = sent_count.load(Ordering::Acquire);
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.received.load(Ordering::Relaxed) < sent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = rt.block_on(jetstream::new(client).delete_stream(&name));

    let h = shared.hist.lock().expect("histogram");
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    let msgs = shared.in_window.load(Ordering::Relaxed) as f64 / args.duration;
    let mode = if args.rate == 0 {
        "throughput"
    } else {
        "latency"
    };
    let received = shared.received.load(Ordering::Relaxed);
    println!("nats-jetstream e2e: mode={mode} rate={} size={}B duration={}s (file storage, PubAck before fsync, sync every 2 min)", args.rate, args.size, args.duration);
    println!(
        "  p50 {:.1} µs   p99 {:.1} µs   p99.9 {:.1} µs   max {:.1} µs   {msgs:.0} msgs/s   {:.1} MB/s   sent {sent} received {received}",
        q(0.5), q(0.99), q(0.999), h.max() as f64 / 1000.0, msgs * args.size as f64 / 1e6
    );
    let errors = shared.errors.load(Ordering::Relaxed);
    if args.json {
        let v = serde_json::json!({
            "bench": "e2e", "transport": "nats-jetstream", "mode": mode, "rate": args.rate, "size": args.size,
            "duration_s": args.duration, "sent": sent, "received": received,
            "measured": shared.measured.load(Ordering::Relaxed),
            "p50_us": q(0.5), "p99_us": q(0.99), "p999_us": q(0.999), "max_us": h.max() as f64 / 1000.0,
            "msgs_per_s": msgs, "mb_per_s": msgs * args.size as f64 / 1e6,
            "durability": "PubAck after the write to the file store; fsync every 2 min (nats-server 2.9 default)",
            "tool": "async-nats",
            "cdf": cdf(&h),
        });
        println!("{v}");
    }
    anyhow::ensure!(errors == 0, "{errors} publish or receive errors");
    anyhow::ensure!(
        received == sent,
        "{} of {sent} messages never arrived",
        sent - received
    );
    Ok(())
}

/// The latency CDF of the run, `[percentile, µs]` pairs at the same
/// percentiles as `neo bench`'s `cdf` (every percent to 90, ten points per
/// decade of the tail to 99.999, then the maximum), so the plots line up.
fn cdf(h: &Histogram<u64>) -> Vec<[f64; 2]> {
    let head = (0..=90).map(f64::from);
    let tail = (11..=50).map(|k| 100.0 * (1.0 - 10f64.powf(-f64::from(k) / 10.0)));
    head.chain(tail)
        .chain(std::iter::once(100.0))
        .map(|p| {
            let p = (p * 1e4).round() / 1e4;
            [p, h.value_at_quantile(p / 100.0) as f64 / 1000.0]
        })
        .collect()
}
