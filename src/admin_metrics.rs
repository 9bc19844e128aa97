//! `/metrics` of the admin endpoint: the broker's readings
//! ([`neo_broker::metrics::observe_broker`]), the Kafka listener's and the
//! poll loop's (RPC server and transport counters, published by the loop),
//! and the process-wide latency histograms, in Prometheus' text format.

use neo_broker::metrics::{observe_broker, Scrape};
use neo_broker::Broker;

use crate::admin_http::AdminInfo;

/// The whole scrape. `broker` is `None` while the broker is stopping.
pub fn render(broker: Option<&Broker>, info: &AdminInfo) -> String {
    let mut s = Scrape::new();
    s.gauge(
        "neo_build_info",
        "The running Neo version (always 1).",
        &[("version", env!("NEO_VERSION"))],
        1,
    );
    s.gauge(
        "neo_uptime_seconds",
        "Seconds since neo serve started.",
        &[],
        info.started.elapsed().as_secs() as i64,
    );
    if let Some(b) = broker {
        observe_broker(b, &mut s);
    }
    let loop_ = info
        .published
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    s.gauge(
        "neo_serving",
        "1 while the broker's poll loop serves, else 0.",
        &[],
        loop_.serving as i64,
    );
    let t = [("transport", info.transport)];
    let r = &loop_.rpc;
    for (name, help, v) in [
        (
            "neo_rpc_connections_accepted_total",
            "Neo RPC connections accepted.",
            r.connections_accepted,
        ),
        (
            "neo_rpc_connections_closed_total",
            "Neo RPC connections closed.",
            r.connections_closed,
        ),
        ("neo_rpc_calls_total", "Neo RPC calls received.", r.calls),
        (
            "neo_rpc_errors_sent_total",
            "Neo RPC calls answered with an error.",
            r.errors_sent,
        ),
        (
            "neo_rpc_malformed_frames_total",
            "Neo RPC frames that could not be parsed.",
            r.malformed_frames,
        ),
        (
            "neo_rpc_unknown_methods_total",
            "Neo RPC calls to methods not served.",
            r.unknown_methods,
        ),
        (
            "neo_rpc_overloaded_total",
            "Neo RPC calls refused for lack of credits.",
            r.overloaded,
        ),
        (
            "neo_rpc_replies_dropped_total",
            "Neo RPC answers that could not be sent.",
            r.replies_dropped,
        ),
    ] {
        s.counter(name, help, &t, v);
    }
    for (name, v) in &loop_.transport_counters {
        s.counter(
            &format!("neo_transport_{name}_total"),
            "A transport counter (see docs/observability.md).",
            &t,
            *v,
        );
    }
    if let Some(open) = loop_.open_connections {
        s.gauge(
            "neo_transport_open_connections",
            "Connections or sessions the transport has open.",
            &t,
            open as i64,
        );
    }
    if let Some((_, k)) = &info.kafka {
        let c = k.snapshot();
        s.gauge(
            "neo_kafka_connections",
            "Kafka client connections open.",
            &[],
            c.connections as i64,
        );
        s.counter(
            "neo_kafka_requests_total",
            "Kafka requests received.",
            &[],
            c.requests,
        );
        s.counter(
            "neo_kafka_refused_total",
            "Kafka connections closed because a request could not be served.",
            &[],
            c.refused,
        );
        s.counter(
            "neo_kafka_tls_handshake_failures_total",
            "Kafka TLS handshakes that failed or timed out.",
            &[],
            c.tls_failures,
        );
    }
    observe_security(&info.security, &mut s);
    s.encode()
}

fn observe_security(sec: &neo_broker::security::Security, s: &mut Scrape) {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &sec.counters;
    for (i, listener) in ["kafka", "neo"].into_iter().enumerate() {
        for (outcome, v) in [
            ("success", &c.auth_success[i]),
            ("failure", &c.auth_failure[i]),
        ] {
            s.counter(
                "neo_authentications_total",
                "Authentications (SASL, client certificates) by listener and outcome.",
                &[("listener", listener), ("outcome", outcome)],
                v.load(Relaxed),
            );
        }
        for (result, v) in [
            ("allowed", &c.authz_allowed[i]),
            ("denied", &c.authz_denied[i]),
        ] {
            s.counter(
                "neo_authorization_decisions_total",
                "ACL decisions by listener and result (none while the authorizer is off).",
                &[("listener", listener), ("result", result)],
                v.load(Relaxed),
            );
        }
    }
    for (i, kind) in ["produce", "fetch"].into_iter().enumerate() {
        s.counter_f64(
            "neo_quota_throttle_seconds_total",
            "Throttle time imposed by byte-rate quotas, by kind.",
            &[("kind", kind)],
            c.throttle_us[i].load(Relaxed) as f64 / 1e6,
        );
    }
    let a = sec.audit.stats();
    s.counter(
        "neo_audit_events_total",
        "Events written to the audit log.",
        &[],
        a.events_written,
    );
    s.counter(
        "neo_audit_write_errors_total",
        "Audit log writes that failed.",
        &[],
        a.write_errors,
    );
}
