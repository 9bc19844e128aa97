//! Metadata, Produce, Fetch and ListOffsets for Kafka clients.

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use neo_storage::FetchView;

use super::{error_code, Ctx, MAX_WAIT, NODE_ID};
use crate::kafka_batch::code::*;
use crate::kafka_batch::{self, check_produced, write_batch, KAFKA_LAYOUT};
use crate::protocol::{BrokerError, CreateTopic};
use crate::records::Codecs;
use crate::security::{Operation, ResourceType};

/// "Authorized operations not requested".
const NO_OPERATIONS: i32 = i32::MIN;
/// Largest fetch answer built, whatever the client asks.
const MAX_FETCH_BYTES: usize = 64 << 20;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Creates `topic` with the broker's defaults when auto-creation is on and
/// it does not exist; `Ok(false)` when it does not exist and may not be made.
fn ensure_topic(ctx: &Ctx<'_>, topic: &str, allowed: bool) -> Result<bool, BrokerError> {
    if ctx.shared.broker().partition_count(topic).is_some() {
        return Ok(true);
    }
    if !(allowed && ctx.shared.cfg.auto_create_topics) {
        return Ok(false);
    }
    let req = CreateTopic {
        name: topic.into(),
        partitions: None,
        configs: Vec::new(),
    };
    match crate::replication::link::create_topic_blocking(&ctx.shared.broker, &req) {
        Ok(_) | Err(BrokerError::TopicExists(_)) => Ok(true),
        Err(e) => Err(e),
    }
}

pub fn metadata(ctx: &Ctx<'_>, r: MetadataRequest) -> MetadataResponse {
    let allow = ctx.version < 4 || r.allow_auto_topic_creation;
    let names: Vec<String> = match &r.topics {
        // v0 asks for every topic with an empty list, later versions with null.
        Some(t) if !(t.is_empty() && ctx.version == 0) => t
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect(),
        _ => ctx.shared.broker().list_topics(),
    };
    let mut resp = MetadataResponse::default();
    // In a cluster: every broker with a Kafka listener, and the partitions'
    // real leaders, epochs and ISRs, so Kafka clients go to the leader.
    let cluster = ctx.shared.broker().cluster_view();
    // A node that has not caught up with the controller quorum since it
    // started names no leaders (LEADER_NOT_AVAILABLE, which clients retry)
    // rather than the ones its replayed, possibly stale, metadata holds.
    let current = ctx.shared.broker().metadata_current();
    resp.brokers = match &cluster {
        Some((me, meta)) => {
            let mut v: Vec<MetadataResponseBroker> = meta
                .brokers
                .values()
                .filter(|b| !b.fenced)
                .filter_map(|b| {
                    let (h, p) = b.kafka_addr.as_deref()?.rsplit_once(':')?;
                    Some(
                        MetadataResponseBroker::default()
                            .with_node_id((b.id as i32).into())
                            .with_host(s(h))
                            .with_port(p.parse().ok()?),
                    )
                })
                .collect();
            if !v.iter().any(|b| b.node_id.0 == *me as i32) {
                v.push(
                    MetadataResponseBroker::default()
                        .with_node_id((*me as i32).into())
                        .with_host(s(&ctx.advertised.0))
                        .with_port(ctx.advertised.1 as i32),
                );
            }
            v
        }
        None => vec![MetadataResponseBroker::default()
            .with_node_id(NODE_ID.into())
            .with_host(s(&ctx.advertised.0))
            .with_port(ctx.advertised.1 as i32)],
    };
    resp.cluster_id = Some(s(&ctx.shared.cfg.cluster_id));
    resp.controller_id = cluster
        .as_ref()
        .map_or(NODE_ID, |(me, _)| *me as i32)
        .into();
    resp.cluster_authorized_operations = NO_OPERATIONS;
    let listing_all = !matches!(&r.topics, Some(t) if !(t.is_empty() && ctx.version == 0));
    for name in names {
        let mut t = MetadataResponseTopic::default()
            .with_name(Some(TopicName(s(&name))))
            .with_topic_authorized_operations(NO_OPERATIONS);
        if !ctx.allowed(Operation::Describe, ResourceType::Topic, &name) {
            // As Kafka: topics the principal may not describe are left out
            // of a listing, and refused when named.
            if !listing_all {
                t.error_code = TOPIC_AUTHORIZATION_FAILED;
                resp.topics.push(t);
            }
            continue;
        }
        let may_create = allow && ctx.may_create_topic_if_missing(&name);
        match ensure_topic(ctx, &name, may_create) {
            Ok(true) if cluster.is_some() => {
                let ps = cluster
                    .as_ref()
                    .and_then(|(_, m)| m.topics.get(&name))
                    .map(|t| t.partitions.clone())
                    .unwrap_or_default();
                let ids = |v: &[u64]| v.iter().map(|i| (*i as i32).into()).collect::<Vec<_>>();
                t.partitions = ps
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let mut m = MetadataResponsePartition::default()
                            .with_partition_index(i as i32)
                            .with_leader_id(p.leader.map_or(-1, |l| l as i32).into())
                            .with_leader_epoch(p.leader_epoch as i32)
                            .with_replica_nodes(ids(&p.replicas))
                            .with_isr_nodes(ids(&p.isr));
                        if p.leader.is_none() || !current {
                            m.leader_id = (-1).into();
                            m.error_code = LEADER_NOT_AVAILABLE;
                        }
                        m
                    })
                    .collect();
                if ps.is_empty() {
                    // Made here but not yet in the cluster's metadata.
                    t.error_code = LEADER_NOT_AVAILABLE;
                }
            }
            Ok(true) => {
                let count = ctx.shared.broker().partition_count(&name).unwrap_or(0);
                t.partitions = (0..count as i32)
                    .map(|p| {
                        MetadataResponsePartition::default()
                            .with_partition_index(p)
                            .with_leader_id(NODE_ID.into())
                            .with_leader_epoch(-1)
                            .with_replica_nodes(vec![NODE_ID.into()])
                            .with_isr_nodes(vec![NODE_ID.into()])
                    })
                    .collect();
            }
            Ok(false) => t.error_code = UNKNOWN_TOPIC_OR_PARTITION,
            Err(e) => t.error_code = error_code(&e),
        }
        resp.topics.push(t);
    }
    resp
}

struct Appended {
    topic: usize,
    partition: usize,
    name: String,
    index: u32,
    last_offset: u64,
}

/// A produce: each partition's batch checked (outside the broker's lock),
/// appended, and with acks=all answered once durable. `None` for acks=0.
pub fn produce(ctx: &Ctx<'_>, r: ProduceRequest) -> Option<ProduceResponse> {
    let started = Instant::now();
    let mut resp = ProduceResponse::default();
    let mut waits = Vec::new();
    let mut scratch = Vec::new();
    let refuse_all = if r.transactional_id.is_some() {
        Some(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    } else if ![-1, 0, 1].contains(&r.acks) {
        Some(INVALID_REQUIRED_ACKS)
    } else {
        None
    };
    for (ti, td) in r.topic_data.iter().enumerate() {
        let name = td.name.0.to_string();
        let mut tr = TopicProduceResponse::default().with_name(td.name.clone());
        let refuse_all = refuse_all.or_else(|| {
            (!ctx.allowed(Operation::Write, ResourceType::Topic, &name))
                .then_some(TOPIC_AUTHORIZATION_FAILED)
        });
        let exists = refuse_all
            .is_none()
            .then(|| ensure_topic(ctx, &name, ctx.may_create_topic_if_missing(&name)));
        for (pi, pd) in td.partition_data.iter().enumerate() {
            let mut pr = PartitionProduceResponse::default()
                .with_index(pd.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let res = match (&exists, refuse_all) {
                (_, Some(code)) => Err((code, None)),
                (Some(Ok(false)), _) => Err((UNKNOWN_TOPIC_OR_PARTITION, None)),
                (Some(Err(e)), _) => Err((error_code(e), Some(e.to_string()))),
                _ => append(ctx, &name, pd.index, pd.records.as_ref(), &mut scratch),
            };
            match res {
                Ok((base, last, log_start)) => {
                    pr.base_offset = base as i64;
                    pr.log_start_offset = log_start as i64;
                    waits.push(Appended {
                        topic: ti,
                        partition: pi,
                        name: name.clone(),
                        index: pd.index as u32,
                        last_offset: last,
                    });
                }
                Err((code, message)) => {
                    pr.error_code = code;
                    pr.error_message = message.map(|m| s(&m));
                }
            }
            tr.partition_responses.push(pr);
        }
        resp.responses.push(tr);
    }
    if r.acks == 0 {
        return None;
    }
    if r.acks == -1 && !waits.is_empty() {
        let timeout = Duration::from_millis(r.timeout_ms.max(0) as u64).min(MAX_WAIT);
        let deadline = started + timeout;
        let mut pending = waits;
        ctx.shared.wait_for(deadline, |b| {
            pending.retain(|w| match b.is_durable(&w.name, w.index, w.last_offset) {
                Ok(true) => false,
                Ok(false) => true,
                Err(e) => {
                    let p = &mut resp.responses[w.topic].partition_responses[w.partition];
                    p.error_code = error_code(&e);
                    p.error_message = Some(s(&e.to_string()));
                    false
                }
            });
            pending.is_empty().then_some(())
        });
        for w in pending {
            let p = &mut resp.responses[w.topic].partition_responses[w.partition];
            p.error_code = REQUEST_TIMED_OUT;
            p.error_message = Some(s("not durable within the request's timeout"));
        }
    }
    Some(resp)
}

type Refusal = (i16, Option<String>);

fn append(
    ctx: &Ctx<'_>,
    topic: &str,
    partition: i32,
    records: Option<&Bytes>,
    scratch: &mut Vec<u8>,
) -> Result<(u64, u64, u64), Refusal> {
    let records = records.ok_or((kafka_batch::code::CORRUPT_MESSAGE, None))?;
    let partition =
        u32::try_from(partition).map_err(|_| (UNKNOWN_TOPIC_OR_PARTITION, None::<String>))?;
    let broker_err = |e: BrokerError| (error_code(&e), Some(e.to_string()));
    let (max, max_uncompressed) = {
        let b = ctx.shared.broker();
        let c = b.topic_config(topic).map_err(broker_err)?;
        (c.max_batch_bytes as usize, b.max_uncompressed())
    };
    // Checked (CRC, decompression, every record) before the lock is taken.
    let (meta, payload) = check_produced(records, max, max_uncompressed, scratch)
        .map_err(|r| (r.code, Some(r.message)))?;
    let mut b = ctx.shared.broker();
    let out = b
        .append_batch(topic, partition, &meta, payload)
        .map_err(broker_err)?;
    let (start, _) = b.log_bounds(topic, partition).map_err(broker_err)?;
    Ok((out.base_offset, out.last_offset, start))
}

/// One partition's stored batches as Kafka batches: Kafka-produced ones
/// rebuilt around their stored bytes, Neo ones converted.
fn kafka_records(view: &FetchView, codecs: &mut Codecs) -> Result<Bytes, String> {
    let mut out = Vec::with_capacity(view.bytes().len());
    for (h, payload) in view.batches() {
        if h.meta.attributes & KAFKA_LAYOUT != 0 {
            write_batch(h.base_offset, payload, &mut out);
        } else {
            let records = codecs.records(
                h.meta.codec,
                payload,
                crate::client::fetched::MAX_UNCOMPRESSED,
            )?;
            kafka_batch::neo_to_kafka(h.base_offset, &h.meta, records, &mut out)?;
        }
    }
    Ok(Bytes::from(out))
}

/// Builds the whole answer once; returns it with the record bytes in it.
fn gather(
    ctx: &Ctx<'_>,
    r: &FetchRequest,
    denied: &[bool],
    codecs: &mut Codecs,
) -> (FetchResponse, usize, bool) {
    let max_total = if r.max_bytes <= 0 {
        MAX_FETCH_BYTES
    } else {
        (r.max_bytes as usize).min(MAX_FETCH_BYTES)
    };
    let mut total = 0usize;
    let mut any_error = false;
    let mut resp = FetchResponse::default();
    for (ti, t) in r.topics.iter().enumerate() {
        let name = t.topic.0.to_string();
        let mut tr = FetchableTopicResponse::default().with_topic(t.topic.clone());
        let topic_denied = denied.get(ti).copied().unwrap_or(true);
        for p in &t.partitions {
            let mut pd = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica((-1).into())
                .with_records(Some(Bytes::new()));
            let left = max_total.saturating_sub(total);
            let want = (p.partition_max_bytes.max(0) as usize).min(left);
            // Past the byte budget later partitions get only their bounds
            // this time; the first with data always gets its batch.
            let spent = left == 0 && total > 0;
            let res = match (u32::try_from(p.partition), u64::try_from(p.fetch_offset)) {
                _ if topic_denied => Err((TOPIC_AUTHORIZATION_FAILED, "not authorized".into())),
                (Err(_), _) => Err((UNKNOWN_TOPIC_OR_PARTITION, String::new())),
                (_, Err(_)) => Err((OFFSET_OUT_OF_RANGE, String::new())),
                (Ok(part), Ok(offset)) => {
                    let mut b = ctx.shared.broker();
                    let read = match spent {
                        true => b.log_bounds(&name, part).map(|(s, e)| (None, s, e)),
                        false => b
                            .read(&name, part, offset, want)
                            .map(|(v, s, e)| (Some(v), s, e)),
                    };
                    read.map_err(|e| (error_code(&e), e.to_string()))
                }
            };
            match res {
                Ok((view, start, end)) => {
                    pd.high_watermark = end as i64;
                    pd.last_stable_offset = end as i64;
                    pd.log_start_offset = start as i64;
                    if let Some(view) = view {
                        match kafka_records(&view, codecs) {
                            Ok(bytes) => {
                                total += bytes.len();
                                pd.records = Some(bytes);
                            }
                            Err(e) => {
                                tracing::error!(topic = %name, partition = p.partition, error = %e, "stored batch unreadable for a Kafka fetch");
                                pd.error_code = kafka_batch::code::CORRUPT_MESSAGE;
                                any_error = true;
                            }
                        }
                    }
                }
                Err((code, why)) => {
                    tracing::debug!(topic = %name, partition = p.partition, code, %why, "Kafka fetch error");
                    pd.error_code = code;
                    any_error = true;
                }
            }
            tr.partitions.push(pd);
        }
        resp.responses.push(tr);
    }
    (resp, total, any_error)
}

/// A fetch: answered when `min_bytes` are there, on an error, or when
/// `max_wait_ms` (at most 30 s) has passed.
pub fn fetch(ctx: &Ctx<'_>, r: FetchRequest) -> FetchResponse {
    let deadline =
        Instant::now() + Duration::from_millis(r.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let mut codecs = Codecs::software();
    // Decided (and audited) once per request, not per long-poll round.
    let denied: Vec<bool> = r
        .topics
        .iter()
        .map(|t| !ctx.allowed(Operation::Read, ResourceType::Topic, t.topic.0.as_str()))
        .collect();
    loop {
        let seen = ctx.shared.broker().appends();
        let (resp, total, any_error) = gather(ctx, &r, &denied, &mut codecs);
        if any_error || total >= r.min_bytes.max(0) as usize || Instant::now() >= deadline {
            return resp;
        }
        ctx.shared
            .wait_for(deadline, |b| (b.appends() != seen).then_some(()));
    }
}

pub fn list_offsets(ctx: &Ctx<'_>, r: ListOffsetsRequest) -> ListOffsetsResponse {
    use crate::protocol::{ListOffsets, OffsetSpec};
    let mut resp = ListOffsetsResponse::default();
    for t in &r.topics {
        let name = t.name.0.to_string();
        let mut tr = ListOffsetsTopicResponse::default().with_name(t.name.clone());
        let topic_denied = !ctx.allowed(Operation::Describe, ResourceType::Topic, &name);
        for p in &t.partitions {
            let mut pr = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let spec = match p.timestamp {
                -1 => Some(OffsetSpec::Latest),
                // -2 earliest; -4 earliest local and -5 earliest pending
                // upload are the same here (no tiered storage).
                -2 | -4 | -5 => Some(OffsetSpec::Earliest),
                ts if ts >= 0 => Some(OffsetSpec::Timestamp(ts)),
                _ => None,
            };
            match (spec, u32::try_from(p.partition_index)) {
                _ if topic_denied => pr.error_code = TOPIC_AUTHORIZATION_FAILED,
                (None, _) => pr.error_code = INVALID_REQUEST,
                (_, Err(_)) => pr.error_code = UNKNOWN_TOPIC_OR_PARTITION,
                (Some(spec), Ok(partition)) => {
                    let req = ListOffsets {
                        topic: name.clone(),
                        partition,
                        spec,
                    };
                    match ctx.shared.broker().list_offsets(&req) {
                        Ok(l) => pr.offset = l.offset.map_or(-1, |o| o as i64),
                        Err(e) => pr.error_code = error_code(&e),
                    }
                }
            }
            tr.partitions.push(pr);
        }
        resp.topics.push(tr);
    }
    resp
}
