//! `neo produce TOPIC`: records from standard input, one per line (with
//! `--key-delimiter`, `key<delim>value`), or generated load with `--count`.

use std::io::BufRead;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use neo_broker::client::{Delivery, Producer, ProducerConfig};
use neo_broker::protocol::Acks;

use super::BrokerArgs;

#[derive(clap::Args)]
pub struct Args {
    topic: String,
    /// Partition for every record [default: by key hash, else sticky].
    #[arg(long, short = 'p')]
    partition: Option<u32>,
    /// Split each input line at the first occurrence into key and value.
    #[arg(long, short = 'K')]
    key_delimiter: Option<String>,
    /// Header for every record, name=value (repeatable), as kcat -H.
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// 0 (do not wait), 1 (in the log), all (durable under the topic's fsync policy).
    #[arg(long, default_value = "all")]
    acks: String,
    /// Codec: none, lz4, zstd, deflate [default: the topic's].
    #[arg(long)]
    codec: Option<String>,
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    #[arg(long, default_value_t = 64 << 10)]
    batch_bytes: usize,
    /// Generate this many records instead of reading standard input.
    #[arg(long)]
    count: Option<u64>,
    /// Size of each generated value, bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Generated records per second (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    rate: u64,
}

pub fn parse_acks(s: &str) -> anyhow::Result<Acks> {
    Ok(match s {
        "0" | "none" => Acks::None,
        "1" | "leader" => Acks::Leader,
        "all" | "-1" => Acks::All,
        _ => bail!("--acks `{s}`: expected 0, 1 or all"),
    })
}

pub fn run(args: Args, b: &BrokerArgs) -> anyhow::Result<()> {
    let codec = match &args.codec {
        Some(c) => Some(
            [
                neo_accel::CodecId::None,
                neo_accel::CodecId::Lz4,
                neo_accel::CodecId::Zstd,
                neo_accel::CodecId::Deflate,
            ]
            .into_iter()
            .find(|id| id.name() == c)
            .with_context(|| format!("--codec `{c}`: expected none, lz4, zstd or deflate"))?,
        ),
        None => None,
    };
    let cfg = ProducerConfig {
        acks: parse_acks(&args.acks)?,
        linger: Duration::from_millis(args.linger_ms),
        batch_bytes: args.batch_bytes.max(1),
        codec,
        ..Default::default()
    };
    let headers: Vec<(Vec<u8>, Option<Vec<u8>>)> = args
        .headers
        .iter()
        .map(|h| match h.split_once('=') {
            Some((n, v)) => (n.as_bytes().to_vec(), Some(v.as_bytes().to_vec())),
            None => (h.as_bytes().to_vec(), None),
        })
        .collect();
    let headers: Vec<neo_broker::records::Header<'_>> = headers
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_deref()))
        .collect();
    let mut p = Producer::connect(b.tcp()?, b.connect_config()?, cfg)
        .with_context(|| format!("connecting to the broker at {}", b.broker))?;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut report = Report::default();
    match args.count {
        Some(n) => {
            let mut value = vec![b'x'; args.size.max(20)];
            for i in 0..n {
                let tag = format!("{i:020}");
                value[..20].copy_from_slice(tag.as_bytes());
                p.send(
                    &args.topic,
                    args.partition,
                    None,
                    &value[..args.size.max(20)],
                )?;
                sent += 1;
                if args.rate > 0 {
                    let due = started + Duration::from_secs_f64(sent as f64 / args.rate as f64);
                    while Instant::now() < due {
                        p.poll()?;
                    }
                }
                report.add(p.take_deliveries());
            }
        }
        None => {
            let stdin = std::io::stdin();
            for line in stdin.lock().split(b'\n') {
                let mut line = line.context("reading standard input")?;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let (key, value) = match &args.key_delimiter {
                    Some(d) => match find(&line, d.as_bytes()) {
                        Some(at) => (Some(&line[..at]), &line[at + d.len()..]),
                        None => (None, &line[..]),
                    },
                    None => (None, &line[..]),
                };
                p.send_with_headers(&args.topic, args.partition, key, value, &headers)?;
                sent += 1;
                report.add(p.take_deliveries());
            }
        }
    }
    p.flush(Duration::from_secs(60))?;
    report.add(p.take_deliveries());
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "neo produce: {} of {sent} records acknowledged to {} in {secs:.2} s ({:.0} records/s){}",
        report.ok,
        args.topic,
        report.ok as f64 / secs.max(1e-9),
        if report.duplicates > 0 {
            format!(", {} retried batches deduplicated", report.duplicates)
        } else {
            String::new()
        }
    );
    if report.failed > 0 {
        bail!(
            "{} records were not delivered; first error: {}",
            report.failed,
            report.first_error
        );
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[derive(Default)]
struct Report {
    ok: u64,
    failed: u64,
    duplicates: u64,
    first_error: String,
}

impl Report {
    fn add(&mut self, ds: Vec<Delivery>) {
        for d in ds {
            match &d.result {
                Ok(_) => self.ok += d.records as u64,
                Err(e) => {
                    if self.failed == 0 {
                        self.first_error = format!("{}/{}: {e}", d.topic, d.partition);
                    }
                    self.failed += d.records as u64;
                }
            }
            self.duplicates += d.duplicate as u64;
        }
    }
}
