//! `neo consume TOPIC`: prints records, from an offset (`--offset`) on given
//! or all partitions, or as a member of a group (`--group`, with commits).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use neo_broker::client::{Consumer, ConsumerConfig, OffsetReset, StartAt};
use neo_broker::protocol::Assignor;
use neo_broker::records::RecordView;

use super::BrokerArgs;

#[derive(clap::Args)]
pub struct Args {
    topic: String,
    /// Partition to read (repeatable) [default: all]. Not with --group.
    #[arg(long, short = 'p')]
    partition: Vec<u32>,
    /// Where to start: beginning, end, an offset, or @<ms since the epoch>.
    /// With --group: where to start when the group has no committed offset
    /// (beginning or end).
    #[arg(long, short = 'o', default_value = "beginning")]
    offset: String,
    /// Consume as a member of this group, committing as it goes.
    #[arg(long, short = 'g')]
    group: Option<String>,
    /// Group assignor: range, roundrobin, sticky.
    #[arg(long, default_value = "range")]
    assignor: String,
    /// Exit after this many records.
    #[arg(long, short = 'c')]
    count: Option<u64>,
    /// Exit when no record arrives for this long (ms) [default: never].
    #[arg(long)]
    idle_exit_ms: Option<u64>,
    /// Output format: %t topic, %p partition, %o offset, %T timestamp (ms),
    /// %k key, %s value, %S value size, %h headers (name=value,...), \n newline, \t tab.
    #[arg(long, short = 'f', default_value = "%s\\n")]
    format: String,
}

fn start_at(s: &str) -> anyhow::Result<StartAt> {
    Ok(match s {
        "beginning" | "earliest" => StartAt::Earliest,
        "end" | "latest" => StartAt::Latest,
        _ => match s.strip_prefix('@') {
            Some(ts) => StartAt::Timestamp(
                ts.parse()
                    .with_context(|| format!("--offset {s}: bad timestamp"))?,
            ),
            None => StartAt::Offset(s.parse().with_context(|| {
                format!("--offset `{s}`: expected beginning, end, an offset or @<ms>")
            })?),
        },
    })
}

fn render(fmt: &str, topic: &str, partition: u32, r: &RecordView<'_>, out: &mut Vec<u8>) {
    let mut chars = fmt.as_bytes().iter().copied().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            (b'%', Some(k)) => {
                chars.next();
                match k {
                    b't' => out.extend_from_slice(topic.as_bytes()),
                    b'p' => out.extend_from_slice(partition.to_string().as_bytes()),
                    b'o' => out.extend_from_slice(r.offset.to_string().as_bytes()),
                    b'T' => out.extend_from_slice(r.timestamp.to_string().as_bytes()),
                    b'k' => out.extend_from_slice(r.key.unwrap_or_default()),
                    b's' => out.extend_from_slice(r.value),
                    b'S' => out.extend_from_slice(r.value.len().to_string().as_bytes()),
                    b'h' => {
                        for (i, (n, v)) in r.headers().enumerate() {
                            if i > 0 {
                                out.push(b',');
                            }
                            out.extend_from_slice(n);
                            if let Some(v) = v {
                                out.push(b'=');
                                out.extend_from_slice(v);
                            }
                        }
                    }
                    b'%' => out.push(b'%'),
                    other => out.extend_from_slice(&[b'%', other]),
                }
            }
            (b'\\', Some(b'n')) => {
                chars.next();
                out.push(b'\n');
            }
            (b'\\', Some(b't')) => {
                chars.next();
                out.push(b'\t');
            }
            (c, _) => out.push(c),
        }
    }
}

pub fn run(args: Args, b: &BrokerArgs) -> anyhow::Result<()> {
    let start = start_at(&args.offset)?;
    let mut cfg = ConsumerConfig {
        reset: match start {
            StartAt::Latest => OffsetReset::Latest,
            _ => OffsetReset::Earliest,
        },
        max_wait: Duration::from_millis(500),
        ..Default::default()
    };
    let mut c = match &args.group {
        Some(g) => {
            if !args.partition.is_empty() {
                bail!("--partition and --group do not go together: the group assigns partitions");
            }
            if matches!(start, StartAt::Offset(_) | StartAt::Timestamp(_)) {
                bail!(
                    "with --group, --offset is beginning or end (used when nothing is committed)"
                );
            }
            cfg.group = Some(g.clone());
            cfg.topics = vec![args.topic.clone()];
            cfg.assignor = args.assignor.parse().map_err(anyhow::Error::msg)?;
            Consumer::subscribe(b.tcp()?, b.connect_config()?, cfg)?
        }
        None => {
            let _: Assignor = args.assignor.parse().map_err(anyhow::Error::msg)?;
            let parts = match args.partition.is_empty() {
                true => {
                    let d = b.admin()?.describe_topic(&args.topic)?;
                    (0..d.partitions.len() as u32).collect()
                }
                false => args.partition.clone(),
            };
            let list: Vec<(&str, u32, StartAt)> = parts
                .iter()
                .map(|p| (args.topic.as_str(), *p, start))
                .collect();
            Consumer::assign(b.tcp()?, b.connect_config()?, cfg, &list)?
        }
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let mut seen = 0u64;
    let mut last = Instant::now();
    let mut out = Vec::with_capacity(64 << 10);
    let stdout = std::io::stdout();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let want = args.count.map_or(u64::MAX, |n| n - seen);
        if want == 0 {
            break;
        }
        let mut taken = 0u64;
        let mut rewind: Vec<(String, u32, u64)> = Vec::new();
        c.poll_each(Duration::from_millis(500), |topic, p, r| {
            if taken < want {
                render(&args.format, topic, p, &r, &mut out);
                taken += 1;
            } else if !rewind.iter().any(|(t, q, _)| t == topic && *q == p) {
                rewind.push((topic.to_string(), p, r.offset));
            }
        })?;
        // Records fetched past --count are not consumed: the position (and
        // so the group's commit) goes back to the first of them.
        for (t, p, o) in rewind {
            c.seek(&t, p, o);
        }
        seen += taken;
        if taken > 0 {
            last = Instant::now();
            let mut lock = stdout.lock();
            if lock.write_all(&out).and_then(|()| lock.flush()).is_err() {
                break; // stdout closed (e.g. piped into head)
            }
            out.clear();
        } else if args
            .idle_exit_ms
            .is_some_and(|ms| last.elapsed() >= Duration::from_millis(ms))
        {
            break;
        }
    }
    c.close()?;
    eprintln!("neo consume: {seen} records");
    Ok(())
}
