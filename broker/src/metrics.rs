//! Prometheus metrics of the broker, in the text exposition format
//! (`prometheus` crate: its `TextEncoder` writes the classic 0.0.4 format
//! that Prometheus and `promtool check metrics` read).
//!
//! Two kinds of metric live here:
//! * [`Metrics`] — latency histograms observed on the request paths (Neo RPC
//!   handlers, Kafka requests), one process-wide set ([`global`]).
//! * [`Scrape`] — counters and gauges whose values are kept elsewhere (the
//!   broker's counters, partitions, groups, transports) and read at scrape
//!   time into families built for that one scrape.
//!
//! Labels are bounded by design: method and API names, transports, codecs,
//! topics × partitions, groups × partitions — never connections or clients.

use std::collections::HashMap;
use std::sync::OnceLock;

use prometheus::core::{MetricVec, MetricVecBuilder};
use prometheus::proto::MetricFamily;
use prometheus::{
    CounterVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use crate::Broker;

/// Histogram buckets in seconds: 10 µs to 30 s.
const BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide latency histograms.
pub struct Metrics {
    registry: Registry,
    /// Neo RPC: time in a broker handler until its answer (or its deferral), by method.
    pub rpc_seconds: HistogramVec,
    /// Kafka: from a whole request read to its response written, waits
    /// (acks=all, long-poll fetch, joins) included, by API.
    pub kafka_seconds: HistogramVec,
}

fn histogram(reg: &Registry, name: &str, help: &str, label: &str) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
        &[label],
    )
    .expect("static histogram options are valid");
    reg.register(Box::new(h.clone()))
        .expect("each histogram is registered once");
    h
}

/// The one set of histograms of this process.
pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let registry = Registry::new();
        Metrics {
            rpc_seconds: histogram(
                &registry,
                "neo_rpc_handler_duration_seconds",
                "Neo RPC broker handler time until the answer is sent or deferred, by method.",
                "method",
            ),
            kafka_seconds: histogram(
                &registry,
                "neo_kafka_request_duration_seconds",
                "Kafka request time from read to response written (waits included), by API.",
                "api",
            ),
            registry,
        }
    })
}

impl Metrics {
    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }
}

/// Families built for one scrape from values read now.
#[derive(Default)]
pub struct Scrape {
    reg: Registry,
    counters: HashMap<String, IntCounterVec>,
    gauges: HashMap<String, IntGaugeVec>,
    float_counters: HashMap<String, CounterVec>,
}

impl Scrape {
    pub fn new() -> Self {
        Self::default()
    }

    /// One sample of a counter (`name` ends in `_total`). A family keeps the
    /// label names of its first sample; a sample with other names (or a
    /// name Prometheus refuses) is skipped with a debug line — a programming
    /// error, not worth a panic in a scrape.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        if let Some(c) = sample(
            &self.reg,
            &mut self.counters,
            name,
            help,
            labels,
            IntCounterVec::new,
        ) {
            c.inc_by(value);
        }
    }

    /// One sample of a counter with a fractional value (seconds).
    pub fn counter_f64(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let vecs = &mut self.float_counters;
        if let Some(c) = sample(&self.reg, vecs, name, help, labels, CounterVec::new) {
            c.inc_by(value.max(0.0));
        }
    }

    /// One sample of a gauge.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: i64) {
        if let Some(g) = sample(
            &self.reg,
            &mut self.gauges,
            name,
            help,
            labels,
            IntGaugeVec::new,
        ) {
            g.set(value);
        }
    }

    /// The text exposition of these families and the process histograms.
    pub fn encode(self) -> String {
        let mut families = self.reg.gather();
        families.extend(global().gather());
        families.sort_by(|a, b| a.name().cmp(b.name()));
        prometheus::TextEncoder::new()
            .encode_to_string(&families)
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}

type Make<T> = fn(Opts, &[&str]) -> prometheus::Result<MetricVec<T>>;

/// The metric of one label set in the family `name`, made and registered
/// on first use.
fn sample<T: MetricVecBuilder + 'static>(
    reg: &Registry,
    vecs: &mut HashMap<String, MetricVec<T>>,
    name: &str,
    help: &str,
    labels: &[(&str, &str)],
    make: Make<T>,
) -> Option<T::M> {
    if !vecs.contains_key(name) {
        let names: Vec<&str> = labels.iter().map(|l| l.0).collect();
        let v = match make(Opts::new(name, help), &names) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(name, error = %e, "metric family refused");
                return None;
            }
        };
        if let Err(e) = reg.register(Box::new(v.clone())) {
            tracing::debug!(name, error = %e, "metric not registered");
        }
        vecs.insert(name.to_string(), v);
    }
    let values: Vec<&str> = labels.iter().map(|l| l.1).collect();
    match vecs[name].get_metric_with_label_values(&values) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::debug!(name, error = %e, "metric sample skipped");
            None
        }
    }
}

fn gauge_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The broker's counters, partitions, consumer lag and codecs.
pub fn observe_broker(b: &Broker, s: &mut Scrape) {
    let st = b.stats();
    for (name, help, v) in [
        (
            "neo_produce_requests_total",
            "Produce requests handled (Neo and Kafka).",
            st.produce_requests,
        ),
        (
            "neo_produce_errors_total",
            "Produce requests answered with an error.",
            st.produce_errors,
        ),
        (
            "neo_produce_duplicates_total",
            "Idempotent retries recognised and not stored again.",
            st.duplicates,
        ),
        ("neo_records_in_total", "Records appended.", st.records_in),
        (
            "neo_bytes_in_total",
            "Batch payload bytes appended.",
            st.bytes_in,
        ),
        (
            "neo_fetch_requests_total",
            "Fetch requests handled (Neo and Kafka).",
            st.fetch_requests,
        ),
        (
            "neo_fetches_held_total",
            "Fetches held waiting for data (long poll).",
            st.fetches_held,
        ),
        (
            "neo_bytes_out_total",
            "Bytes served to fetches.",
            st.bytes_out,
        ),
        (
            "neo_offset_commits_total",
            "Offset commit requests.",
            st.commits,
        ),
    ] {
        s.counter(name, help, &[], v);
    }
    let parts = b.partition_readings();
    s.gauge(
        "neo_partitions",
        "Partitions hosted by this broker.",
        &[],
        parts.len() as i64,
    );
    for p in &parts {
        let pn = p.partition.to_string();
        let l = [("topic", p.topic.as_str()), ("partition", pn.as_str())];
        s.counter(
            "neo_partition_bytes_in_total",
            "Payload bytes appended to the partition since start.",
            &l,
            p.bytes_in,
        );
        s.counter(
            "neo_partition_bytes_out_total",
            "Log bytes of the partition served to fetches since start.",
            &l,
            p.bytes_out,
        );
        s.gauge(
            "neo_partition_log_start_offset",
            "First offset still in the partition's log.",
            &l,
            gauge_u64(p.start_offset),
        );
        s.gauge(
            "neo_partition_log_end_offset",
            "Offset the next appended record gets.",
            &l,
            gauge_u64(p.end_offset),
        );
        s.gauge(
            "neo_partition_high_watermark",
            "Offset below which consumers may read (single node: the log end).",
            &l,
            gauge_u64(p.end_offset),
        );
        s.gauge(
            "neo_partition_durable_end_offset",
            "Offset below which the partition's records are fsynced.",
            &l,
            gauge_u64(p.durable_end),
        );
    }
    for g in b.lag_readings() {
        let pn = g.partition.to_string();
        let l = [
            ("group", g.group.as_str()),
            ("topic", g.topic.as_str()),
            ("partition", pn.as_str()),
        ];
        s.gauge(
            "neo_consumer_group_committed_offset",
            "A group's committed offset on a partition.",
            &l,
            gauge_u64(g.committed),
        );
        s.gauge(
            "neo_consumer_group_lag",
            "Records between a group's committed offset and the log end.",
            &l,
            gauge_u64(g.lag),
        );
    }
    let codecs = b.codecs();
    for c in codecs.registry().choices() {
        let backend = format!("{:?}", c.backend).to_lowercase();
        s.gauge(
            "neo_accel_backend_info",
            "The backend chosen for each codec (1 = in use).",
            &[
                ("codec", c.codec.name()),
                ("backend", backend.as_str()),
                ("implementation", c.implementation),
            ],
            1,
        );
    }
    // Every codec the node can use, zero until the broker uses it, so the
    // families exist from the first scrape.
    let ids: Vec<_> = codecs
        .registry()
        .choices()
        .iter()
        .map(|c| c.codec)
        .collect();
    for id in ids {
        let k = codecs
            .counters()
            .iter()
            .find(|(c, _)| *c == id)
            .map(|(_, k)| *k)
            .unwrap_or_default();
        let l = [("codec", id.name())];
        s.counter(
            "neo_accel_compress_input_bytes_total",
            "Bytes the broker compressed.",
            &l,
            k.compress_in,
        );
        s.counter(
            "neo_accel_compress_output_bytes_total",
            "Compressed bytes the broker produced.",
            &l,
            k.compress_out,
        );
        s.counter(
            "neo_accel_bytes_saved_total",
            "Bytes compression saved (input minus output).",
            &l,
            k.compress_in.saturating_sub(k.compress_out),
        );
        s.counter(
            "neo_accel_decompressed_bytes_total",
            "Bytes the broker decompressed.",
            &l,
            k.decompressed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_encode_in_the_text_format() {
        let mut s = Scrape::new();
        s.counter("neo_test_total", "A test counter.", &[("topic", "a\"b")], 3);
        s.counter("neo_test_total", "A test counter.", &[("topic", "c")], 4);
        // Wrong label names for an existing family: skipped, no panic.
        s.counter("neo_test_total", "A test counter.", &[("other", "x")], 1);
        s.gauge("neo_test_gauge", "A test gauge.", &[], -2);
        global()
            .rpc_seconds
            .with_label_values(&["Produce"])
            .observe(0.0003);
        let text = s.encode();
        assert!(text.contains("# TYPE neo_test_total counter"), "{text}");
        assert!(
            text.contains("neo_test_total{topic=\"a\\\"b\"} 3"),
            "{text}"
        );
        assert!(text.contains("neo_test_total{topic=\"c\"} 4"), "{text}");
        assert!(!text.contains("other=\"x\""), "{text}");
        assert!(text.contains("neo_test_gauge -2"), "{text}");
        assert!(
            text.contains(
                "neo_rpc_handler_duration_seconds_bucket{method=\"Produce\",le=\"0.0005\"} 1"
            ),
            "{text}"
        );
    }
}
