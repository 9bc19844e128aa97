//! `table.md`: the machine, then one markdown table per group of comparable
//! rows (RPC round trips per size; broker e2e per fixed rate, and maximum
//! throughput) with ratios to the baseline measured in the same run, the
//! plots of each group under it, and every skipped or failed row with its
//! reason.

use std::fmt::Write;

use crate::model::{Record, Run};
use crate::plot::Plot;

/// Machine fields in the order they are shown; others follow sorted.
const MACHINE_ORDER: &[&str] = &[
    "cpu",
    "cores",
    "kernel",
    "os",
    "virtualization",
    "memory",
    "nic",
    "xdp_mode",
    "dpdk",
    "rdma",
    "pinning",
    "sockperf",
    "nats_server",
    "perftest",
    "mode",
    "started",
    "host",
];

pub fn render(run: &Run, plots: &[Plot]) -> String {
    let mut md = String::new();
    let quick = run.machine.get("mode").is_some_and(|m| m.contains("quick"));
    let _ = writeln!(md, "# Neo benchmark results: run {}\n", run.name);
    if quick {
        md.push_str("**A `--quick` run: tiny counts that prove the plumbing. No figure here means anything.**\n\n");
    }
    md.push_str("Produced by `scripts/bench.sh`; every ratio is Neo ÷ its baseline, both measured in this run ");
    md.push_str("(latency: below 1 is faster than the baseline; throughput: above 1 is more). ");
    md.push_str(
        "Latencies are in µs; RPC rows are full round trips.\n\n## Machine\n\n| | |\n|---|---|\n",
    );
    let mut keys: Vec<&String> = run.machine.keys().collect();
    keys.sort_by_key(|k| {
        (
            MACHINE_ORDER.iter().position(|o| o == k).unwrap_or(99),
            (*k).clone(),
        )
    });
    for k in keys {
        let _ = writeln!(md, "| {k} | {} |", cell(&run.machine[k]));
    }

    let measured: Vec<&Record> = run.records.iter().filter(|r| r.measured()).collect();
    let mut sizes: Vec<u64> = measured
        .iter()
        .filter(|r| r.bench == "rtt")
        .filter_map(|r| r.size)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    if !sizes.is_empty() {
        md.push_str("\n## RPC round trips (one call in flight)\n");
    }
    for size in sizes {
        let _ = write!(
            md,
            "\n### {size} B\n\n| transport | path | tool | p50 | p99 | p99.9 | samples | vs baseline: p50 / p99 | note |\n|---|---|---|---:|---:|---:|---:|---|---|\n"
        );
        for r in measured
            .iter()
            .filter(|r| r.bench == "rtt" && r.size == Some(size))
        {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.transport,
                path(r),
                r.tool.as_deref().unwrap_or(""),
                us(r.p50_us),
                us(r.p99_us),
                us(r.p999_us),
                r.count.map_or("".into(), |c| c.to_string()),
                latency_ratio(run, r),
                cell(&r.note)
            );
        }
        images(&mut md, plots, &format!("rtt/{size}"));
    }

    let mut rates: Vec<u64> = measured
        .iter()
        .filter(|r| r.bench == "e2e" && r.mode.as_deref() == Some("latency"))
        .filter_map(|r| r.rate)
        .collect();
    rates.sort_unstable();
    rates.dedup();
    let e2e_size = measured
        .iter()
        .find(|r| r.bench == "e2e")
        .and_then(|r| r.size);
    if let Some(size) = e2e_size {
        let _ = writeln!(
            md,
            "\n## Broker end to end: produce → broker → consume, {size} B messages"
        );
    }
    for rate in rates {
        let _ = write!(
            md,
            "\n### Fixed rate: {rate} msg/s\n\n| transport | path | p50 | p99 | p99.9 | msgs/s | vs baseline: p50 / p99 | note |\n|---|---|---:|---:|---:|---:|---|---|\n"
        );
        for r in measured.iter().filter(|r| {
            r.bench == "e2e" && r.mode.as_deref() == Some("latency") && r.rate == Some(rate)
        }) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.transport,
                path(r),
                us(r.p50_us),
                us(r.p99_us),
                us(r.p999_us),
                count(r.msgs_per_s),
                latency_ratio(run, r),
                cell(&r.note)
            );
        }
        images(&mut md, plots, &format!("e2e/latency/{rate}"));
    }
    let tput: Vec<&&Record> = measured
        .iter()
        .filter(|r| r.bench == "e2e" && r.mode.as_deref() == Some("throughput"))
        .collect();
    if !tput.is_empty() {
        md.push_str("\n### Maximum throughput (closed loop)\n\n| transport | path | msgs/s | MB/s | p50 | p99 | vs baseline: msgs/s | note |\n|---|---|---:|---:|---:|---:|---|---|\n");
        for r in tput {
            let ratio = match (run.baseline_of(r), r.msgs_per_s) {
                (Some(b), Some(m)) if b.msgs_per_s.is_some_and(|x| x > 0.0) => {
                    format!("{:.2}× {}", m / b.msgs_per_s.unwrap_or(1.0), b.transport)
                }
                _ => "—".into(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.transport,
                path(r),
                count(r.msgs_per_s),
                r.mb_per_s.map_or("".into(), |m| format!("{m:.1}")),
                us(r.p50_us),
                us(r.p99_us),
                ratio,
                cell(&r.note)
            );
        }
        images(&mut md, plots, "e2e/throughput");
    }

    for (title, pick) in [("Skipped rows", 0), ("Failed rows", 1)] {
        let rows: Vec<&Record> = run
            .records
            .iter()
            .filter(|r| {
                if pick == 0 {
                    r.skipped.is_some()
                } else {
                    r.failed.is_some()
                }
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = write!(md, "\n## {title}\n\n| row | reason |\n|---|---|\n");
        for r in rows {
            let why = r.skipped.as_deref().or(r.failed.as_deref()).unwrap_or("");
            let _ = writeln!(md, "| {} | {} |", r.row, cell(why));
        }
    }
    md
}

fn path(r: &Record) -> String {
    if r.emulated {
        format!("{} (**TCG-emulated guest CPU, soft-RoCE**)", r.path)
    } else {
        r.path.clone()
    }
}

fn latency_ratio(run: &Run, r: &Record) -> String {
    let Some(b) = run.baseline_of(r) else {
        return "—".into();
    };
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "?".into(),
    };
    format!(
        "{} / {} × {}",
        ratio(r.p50_us, b.p50_us),
        ratio(r.p99_us, b.p99_us),
        b.transport
    )
}

fn images(md: &mut String, plots: &[Plot], key: &str) {
    for p in plots.iter().filter(|p| p.key == key) {
        let _ = write!(md, "\n![{}](./{})\n", p.title, p.file);
    }
}

pub fn us(v: Option<f64>) -> String {
    match v {
        None => String::new(),
        Some(v) if v < 10.0 => format!("{v:.2}"),
        Some(v) if v < 1000.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
    }
}

fn count(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.0}"))
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(json: &str) -> Record {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn ratios_against_the_same_group_and_skips_listed() {
        let run = Run {
            records: vec![
                rec(
                    r#"{"bench":"rtt","row":"rtt/tcp/64","transport":"tcp","path":"loopback","size":64,"p50_us":6.0,"p99_us":20.0,"baseline":"sp"}"#,
                ),
                rec(
                    r#"{"bench":"rtt","row":"rtt/sp/64","transport":"sp","path":"loopback","size":64,"p50_us":5.0,"p99_us":10.0}"#,
                ),
                rec(
                    r#"{"bench":"rtt","row":"rtt/sp/1024","transport":"sp","path":"loopback","size":1024,"p50_us":50.0,"p99_us":100.0}"#,
                ),
                rec(
                    r#"{"bench":"e2e","row":"e2e/iggy/throughput","transport":"iggy","mode":"throughput","rate":0,"skipped":"not on crates.io"}"#,
                ),
            ],
            machine: [("mode".to_string(), "full".to_string())].into(),
            name: "t".into(),
        };
        let md = render(&run, &[]);
        assert!(
            md.contains("| tcp | loopback |  | 6.00 | 20.0 |  |  | 1.20 / 2.00 × sp |"),
            "{md}"
        );
        assert!(md.contains("| e2e/iggy/throughput | not on crates.io |"));
        assert!(!md.contains("--quick"));
    }
}
