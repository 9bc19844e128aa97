//! Produce and fetch byte-rate quotas on the Kafka listener, the Kafka way
//! (KIP-219): the response goes out at once with `throttle_time_ms` set,
//! then the connection is muted for that long — the client is slowed, not
//! disconnected. Produce counts the record bytes sent (acks=0 included),
//! fetch the record bytes returned.

use std::time::Duration;

use kafka_protocol::messages::{ProduceRequest, ResponseKind};

use super::Ctx;
use crate::security::QuotaKind;

/// Record bytes in a produce request.
pub fn produced_bytes(r: &ProduceRequest) -> usize {
    r.topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
        .sum()
}

fn fetched_bytes(r: &kafka_protocol::messages::FetchResponse) -> usize {
    r.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
        .sum()
}

/// Charges the principal's quota; sets the throttle on the response and
/// returns how long to mute the connection.
pub fn apply(ctx: &Ctx<'_>, produced: Option<usize>, resp: Option<&mut ResponseKind>) -> Duration {
    let sec = &ctx.shared.security;
    let (kind, bytes) = match (&produced, &resp) {
        (Some(n), _) => (QuotaKind::Produce, *n),
        (None, Some(ResponseKind::Fetch(f))) => (QuotaKind::Fetch, fetched_bytes(f)),
        _ => return Duration::ZERO,
    };
    let d = sec.throttle(ctx.principal, kind, bytes);
    if d.is_zero() {
        return d;
    }
    let ms = d.as_millis().min(i32::MAX as u128) as i32;
    match resp {
        Some(ResponseKind::Produce(p)) => p.throttle_time_ms = ms,
        Some(ResponseKind::Fetch(f)) => f.throttle_time_ms = ms,
        _ => {}
    }
    tracing::debug!(principal = %ctx.principal, ?kind, bytes, throttle_ms = ms, "Kafka quota throttle");
    d
}
