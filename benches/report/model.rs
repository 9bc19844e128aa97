//! The results directory as `bench-report` reads it: the records of
//! `summary.json` (one per row: measured, skipped with a reason, or failed),
//! each measured row's latency CDF from its raw JSON, and `machine.json`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// One row of `summary.json`. Fields the script leaves out are `None`.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub bench: String,
    pub row: String,
    pub transport: String,
    #[serde(default)]
    pub path: String,
    pub size: Option<u64>,
    pub mode: Option<String>,
    pub rate: Option<u64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub count: Option<u64>,
    pub msgs_per_s: Option<f64>,
    pub mb_per_s: Option<f64>,
    pub tool: Option<String>,
    #[serde(default)]
    pub note: String,
    /// The transport name of the row this one is compared with.
    pub baseline: Option<String>,
    /// The raw JSON of the run, relative to the results directory.
    pub raw: Option<String>,
    pub skipped: Option<String>,
    pub failed: Option<String>,
    /// Measured on an emulated CPU (the TCG guest): never a performance figure.
    #[serde(default)]
    pub emulated: bool,
    /// `[percentile, µs]` points from the raw JSON's `cdf`.
    #[serde(skip)]
    pub cdf: Vec<[f64; 2]>,
}

impl Record {
    pub fn measured(&self) -> bool {
        self.skipped.is_none() && self.failed.is_none()
    }

    /// Rows comparable with this one: same bench and size, and for e2e the
    /// same mode and rate.
    pub fn same_group(&self, o: &Record) -> bool {
        self.bench == o.bench && self.size == o.size && self.mode == o.mode && self.rate == o.rate
    }
}

pub struct Run {
    pub records: Vec<Record>,
    pub machine: BTreeMap<String, String>,
    /// The results directory's name (the run's timestamp).
    pub name: String,
}

impl Run {
    pub fn load(dir: &Path) -> anyhow::Result<Run> {
        let text = std::fs::read_to_string(dir.join("summary.json"))
            .with_context(|| format!("reading {}/summary.json", dir.display()))?;
        let mut records: Vec<Record> =
            serde_json::from_str(&text).context("parsing summary.json")?;
        for r in &mut records {
            if let Some(raw) = &r.raw {
                r.cdf = read_cdf(&dir.join(raw))
                    .with_context(|| format!("row {}: reading {raw}", r.row))?;
            }
        }
        let machine = match std::fs::read_to_string(dir.join("machine.json")) {
            Ok(t) => {
                let v: BTreeMap<String, serde_json::Value> =
                    serde_json::from_str(&t).context("parsing machine.json")?;
                v.into_iter()
                    .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect()
            }
            Err(_) => BTreeMap::new(),
        };
        let name = std::fs::canonicalize(dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        Ok(Run {
            records,
            machine,
            name,
        })
    }

    /// The measured baseline row `r` names, in `r`'s group.
    pub fn baseline_of(&self, r: &Record) -> Option<&Record> {
        let b = r.baseline.as_deref()?;
        self.records
            .iter()
            .find(|o| o.transport == b && o.measured() && r.same_group(o))
    }
}

/// The `cdf` array of a raw JSON file (its last JSON line; sockperf and
/// perftest rows have theirs written by the script).
fn read_cdf(path: &Path) -> anyhow::Result<Vec<[f64; 2]>> {
    let text = std::fs::read_to_string(path)?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or("{}");
    let v: serde_json::Value = serde_json::from_str(line)?;
    Ok(v["cdf"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some([p[0].as_f64()?, p[1].as_f64()?]))
                .collect()
        })
        .unwrap_or_default())
}
