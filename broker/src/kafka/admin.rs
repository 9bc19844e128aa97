//! FindCoordinator, CreateTopics, DeleteTopics, InitProducerId,
//! DescribeConfigs and DescribeCluster for Kafka clients.

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{error_code, Ctx, NODE_ID};
use crate::kafka_batch::code::*;
use crate::protocol::{BrokerError, CreateTopic};
use crate::security::{Operation, ResourceType};
use crate::topics::validate_name;

/// DescribeConfigs resource types.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// FindCoordinator's error message: null without an error (the codec's
/// default is an empty string, which clients print as the reason).
fn message(code: i16) -> Option<StrBytes> {
    match code {
        0 => None,
        GROUP_AUTHORIZATION_FAILED => Some(s("Group authorization failed")),
        _ => Some(s("coordinator not available for this key type")),
    }
}

pub fn find_coordinator(ctx: &Ctx<'_>, r: FindCoordinatorRequest) -> FindCoordinatorResponse {
    // Key type 0 is a group; 1 (transactions) is not served. Each key gets
    // this broker, or in a cluster the broker that coordinates that group
    // (the same answer from every node, so a group never splits).
    let answer = |key: &str| -> (i32, StrBytes, i32, i16) {
        let mut at = (NODE_ID, s(&ctx.advertised.0), ctx.advertised.1 as i32);
        if r.key_type != 0 {
            return (at.0, at.1, at.2, COORDINATOR_NOT_AVAILABLE);
        }
        let broker = ctx.shared.broker();
        if broker.node_id().is_some() {
            let parsed = broker.group_coordinator(key).and_then(|(id, addr)| {
                let (h, p) = addr.rsplit_once(':')?;
                Some((id as i32, s(h), p.parse().ok()?))
            });
            match parsed {
                Some(p) => at = p,
                None => return (at.0, at.1, at.2, COORDINATOR_NOT_AVAILABLE),
            }
        }
        drop(broker);
        let code = if ctx.allowed(Operation::Describe, ResourceType::Group, key) {
            0
        } else {
            GROUP_AUTHORIZATION_FAILED
        };
        (at.0, at.1, at.2, code)
    };
    let mut resp = FindCoordinatorResponse::default();
    if ctx.version >= 4 {
        resp.coordinators = r
            .coordinator_keys
            .iter()
            .map(|k| {
                let (node, host, port, code) = answer(k.as_str());
                Coordinator::default()
                    .with_key(k.clone())
                    .with_node_id(node.into())
                    .with_host(host)
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message(code))
            })
            .collect();
    } else {
        let (node, host, port, code) = answer(r.key.as_str());
        resp.error_code = code;
        resp.error_message = message(code);
        resp.node_id = node.into();
        resp.host = host;
        resp.port = port;
    }
    resp
}

pub fn create_topics(ctx: &Ctx<'_>, r: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut resp = CreateTopicsResponse::default();
    for t in &r.topics {
        let name = t.name.0.to_string();
        let mut tr = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        let configs: Vec<(String, String)> = t
            .configs
            .iter()
            .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
            .collect();
        let refused = if t.num_partitions == 0 || t.num_partitions < -1 {
            Some((
                INVALID_PARTITIONS,
                format!("{} partitions", t.num_partitions),
            ))
        } else if !(t.replication_factor == -1
            || t.replication_factor == 1
            || (t.replication_factor > 1 && ctx.shared.broker().node_id().is_some()))
        {
            Some((
                INVALID_REPLICATION_FACTOR,
                format!(
                    "replication factor {}: this broker has no replicas (1 node)",
                    t.replication_factor
                ),
            ))
        } else if !t.assignments.is_empty() {
            Some((
                INVALID_REQUEST,
                "manual replica assignment is not served".into(),
            ))
        } else if !ctx.may_create_topic(&name) {
            Some((
                TOPIC_AUTHORIZATION_FAILED,
                "not authorized to create this topic".into(),
            ))
        } else {
            None
        };
        let mut configs = configs;
        if t.replication_factor > 1 {
            configs.push((
                "replication.factor".into(),
                t.replication_factor.to_string(),
            ));
        }
        let req = CreateTopic {
            name: name.clone(),
            partitions: (t.num_partitions > 0).then_some(t.num_partitions as u32),
            configs,
        };
        let res = match refused {
            Some(r) => Err(r),
            None if r.validate_only => validate_only(ctx, &req),
            None => crate::replication::link::create_topic_blocking(&ctx.shared.broker, &req)
                .map_err(|e| (error_code(&e), e.to_string())),
        };
        match res {
            Ok(c) => {
                tr.num_partitions = c.partitions as i32;
                tr.replication_factor = c.replication_factor as i16;
                tr.configs = Some(
                    c.pairs()
                        .into_iter()
                        .map(|(k, v)| {
                            CreatableTopicConfigs::default()
                                .with_name(s(&k))
                                .with_value(Some(s(&v)))
                                .with_config_source(5)
                        })
                        .collect(),
                );
            }
            Err((code, why)) => {
                tr.error_code = code;
                tr.error_message = Some(s(&why));
            }
        }
        resp.topics.push(tr);
    }
    resp
}

/// What a create would make, made nowhere.
fn validate_only(
    ctx: &Ctx<'_>,
    req: &CreateTopic,
) -> Result<crate::protocol::TopicConfig, (i16, String)> {
    let e = |e: BrokerError| (error_code(&e), e.to_string());
    validate_name(&req.name).map_err(e)?;
    let b = ctx.shared.broker();
    if b.partition_count(&req.name).is_some() {
        return Err(e(BrokerError::TopicExists(req.name.clone())));
    }
    let mut c = b.topic_defaults().clone();
    if let Some(n) = req.partitions {
        c.partitions = n;
    }
    for (k, v) in &req.configs {
        c.set(k, v).map_err(|m| e(BrokerError::InvalidConfig(m)))?;
    }
    crate::topics::validate_config(&c).map_err(e)?;
    Ok(c)
}

pub fn delete_topics(ctx: &Ctx<'_>, r: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let names: Vec<Option<TopicName>> = if ctx.version >= 6 {
        r.topics.iter().map(|t| t.name.clone()).collect()
    } else {
        r.topic_names.iter().cloned().map(Some).collect()
    };
    let mut resp = DeleteTopicsResponse::default();
    for n in names {
        let mut tr = DeletableTopicResult::default().with_name(n.clone());
        match n {
            None => {
                tr.error_code = UNKNOWN_TOPIC_OR_PARTITION;
                tr.error_message = Some(s("topics are named, not given by id, here"));
            }
            Some(n) if !ctx.allowed(Operation::Delete, ResourceType::Topic, n.0.as_str()) => {
                tr.error_code = TOPIC_AUTHORIZATION_FAILED;
            }
            Some(n) => {
                let deleted = crate::replication::link::delete_topic_blocking(
                    &ctx.shared.broker,
                    n.0.as_str(),
                );
                if let Err(e) = deleted {
                    tr.error_code = error_code(&e);
                    tr.error_message = Some(s(&e.to_string()));
                }
            }
        }
        resp.responses.push(tr);
    }
    resp
}

/// A producer id for an idempotent producer (epoch 0). Transactional ids
/// are refused: Neo has no transactions.
pub fn init_producer_id(ctx: &Ctx<'_>, r: InitProducerIdRequest) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse::default()
        .with_producer_id((-1).into())
        .with_producer_epoch(-1);
    match &r.transactional_id {
        None => {}
        // As Kafka: an empty transactional id is an invalid request.
        Some(t) if t.0.is_empty() => {
            resp.error_code = INVALID_REQUEST;
            return resp;
        }
        Some(_) => {
            resp.error_code = TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            return resp;
        }
    }
    match ctx.shared.broker().init_producer() {
        Ok(id) => {
            resp.producer_id = id.producer_id.into();
            resp.producer_epoch = id.epoch;
        }
        Err(e) => resp.error_code = error_code(&e),
    }
    resp
}

pub fn describe_configs(ctx: &Ctx<'_>, r: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut resp = DescribeConfigsResponse::default();
    for res in &r.resources {
        let mut out = DescribeConfigsResult::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        let pairs = match res.resource_type {
            TOPIC
                if !ctx.allowed(
                    Operation::DescribeConfigs,
                    ResourceType::Topic,
                    res.resource_name.as_str(),
                ) =>
            {
                out.error_code = TOPIC_AUTHORIZATION_FAILED;
                Vec::new()
            }
            TOPIC => match ctx.shared.broker().topic_config(&res.resource_name) {
                Ok(c) => c.pairs(),
                Err(e) => {
                    out.error_code = error_code(&e);
                    out.error_message = Some(s(&e.to_string()));
                    Vec::new()
                }
            },
            // The broker's settings are its serve configuration, not Kafka's.
            BROKER => Vec::new(),
            t => {
                out.error_code = INVALID_REQUEST;
                out.error_message = Some(s(&format!("resource type {t} is not served")));
                Vec::new()
            }
        };
        let wanted = |k: &str| {
            res.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|w| w.as_str() == k))
        };
        out.configs = pairs
            .into_iter()
            .filter(|(k, _)| wanted(k))
            .map(|(k, v)| {
                DescribeConfigsResourceResult::default()
                    .with_name(s(&k))
                    .with_value(Some(s(&v)))
                    .with_config_source(1)
            })
            .collect();
        resp.results.push(out);
    }
    resp
}

pub fn describe_cluster(ctx: &Ctx<'_>) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default();
    resp.cluster_id = s(&ctx.shared.cfg.cluster_id);
    resp.controller_id = NODE_ID.into();
    resp.cluster_authorized_operations = i32::MIN;
    resp.brokers = vec![DescribeClusterBroker::default()
        .with_broker_id(NODE_ID.into())
        .with_host(s(&ctx.advertised.0))
        .with_port(ctx.advertised.1 as i32)];
    resp
}
