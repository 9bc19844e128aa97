//! The replicated state machine's commands and their deterministic apply
//! rules on [`ClusterMeta`]: no clocks, no I/O, a typed result per command.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::AlterIsr;
use crate::error::ClusterError;
use crate::meta::{BrokerInfo, ClusterMeta, NodeId, PartitionState, TopicMeta};

/// A metadata change: the application data of the Raft log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Upsert a broker and unfence it; offline partitions whose ISR holds it
    /// get it as leader.
    RegisterBroker {
        id: NodeId,
        addr: String,
        kafka_addr: Option<String>,
    },
    /// Fence a broker: out of every ISR it is not the last member of, and
    /// its leaderships move to the next live ISR member (or offline).
    FenceBroker {
        id: NodeId,
    },
    CreateTopic {
        name: String,
        partitions: u32,
        replication_factor: u16,
        config: serde_json::Value,
    },
    DeleteTopic {
        name: String,
    },
    AlterIsr(AlterIsr),
    /// Give a partition back to its preferred replica (the first assigned)
    /// if that one is alive and in the ISR and does not lead it already:
    /// leadership drifts to the survivors with every failover, and this
    /// spreads it again once the preferred replica has caught up.
    ElectPreferred {
        topic: String,
        partition: u32,
    },
    /// A consumer group's offset commit: each (topic, partition, offset,
    /// metadata) replaces what the group had for that partition. Refused
    /// whole if it names a topic or partition that does not exist.
    CommitOffsets {
        group: String,
        offsets: Vec<(String, u32, u64, String)>,
    },
}

/// What a successfully applied command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Done,
    /// Applied at this log index (a node that must read its own write
    /// waits until its metadata reached it).
    Applied(u64),
    Topic(TopicMeta),
    Partition(PartitionState),
}

/// The state machine's response per log entry.
pub type ApplyResult = Result<Reply, ClusterError>;

/// Applies `cmd` at log `index`. A refused command changes nothing but the
/// applied index.
pub fn apply(meta: &mut ClusterMeta, index: u64, cmd: &Command) -> ApplyResult {
    meta.applied_index = index;
    match cmd {
        Command::RegisterBroker {
            id,
            addr,
            kafka_addr,
        } => {
            register(meta, *id, addr, kafka_addr);
            Ok(Reply::Done)
        }
        Command::FenceBroker { id } => fence(meta, *id),
        Command::CreateTopic {
            name,
            partitions,
            replication_factor,
            config,
        } => create_topic(meta, name, *partitions, *replication_factor, config),
        Command::DeleteTopic { name } => match meta.topics.remove(name) {
            Some(_) => {
                for o in meta.offsets.values_mut() {
                    o.retain(|(t, _), _| t != name);
                }
                meta.offsets.retain(|_, o| !o.is_empty());
                Ok(Reply::Done)
            }
            None => Err(ClusterError::UnknownTopic(name.clone())),
        },
        Command::CommitOffsets { group, offsets } => commit_offsets(meta, index, group, offsets),
        Command::AlterIsr(req) => alter_isr(meta, req),
        Command::ElectPreferred { topic, partition } => elect_preferred(meta, topic, *partition),
    }
}

/// The partitions whose preferred replica could lead them now (alive, in
/// the ISR) but does not: what the controller leader proposes
/// [`Command::ElectPreferred`] for. As Kafka's
/// `leader.imbalance.per.broker.percentage`: only for brokers that lead
/// fewer than they should by more than `imbalance_pct` percent of the
/// partitions they are preferred for (0: any imbalance), so one partition
/// out of place on a broker preferred for many does not move leaders.
pub fn preferred_elections(meta: &ClusterMeta, imbalance_pct: u32) -> Vec<(String, u32)> {
    let alive = alive_ids(meta);
    /// One preferred broker's partitions: how many, how many it does not
    /// lead, and those of them it could lead now.
    #[derive(Default)]
    struct Preferred {
        total: u64,
        off: u64,
        electable: Vec<(String, u32)>,
    }
    let mut per: BTreeMap<NodeId, Preferred> = BTreeMap::new();
    for (name, t) in &meta.topics {
        for (i, p) in t.partitions.iter().enumerate() {
            let Some(&first) = p.replicas.first() else {
                continue;
            };
            let e = per.entry(first).or_default();
            e.total += 1;
            if p.leader != Some(first) {
                e.off += 1;
                if p.isr.contains(&first) && alive.contains(&first) {
                    e.electable.push((name.clone(), i as u32));
                }
            }
        }
    }
    per.into_values()
        .filter(|b| b.off * 100 > u64::from(imbalance_pct) * b.total)
        .flat_map(|b| b.electable)
        .collect()
}

fn commit_offsets(
    meta: &mut ClusterMeta,
    index: u64,
    group: &str,
    offsets: &[(String, u32, u64, String)],
) -> ApplyResult {
    if group.is_empty() {
        return Err(ClusterError::InvalidRequest("empty group name".into()));
    }
    for (t, p, _, _) in offsets {
        let known = meta
            .topics
            .get(t)
            .ok_or_else(|| ClusterError::UnknownTopic(t.clone()))?;
        if *p as usize >= known.partitions.len() {
            return Err(ClusterError::UnknownPartition {
                topic: t.clone(),
                partition: *p,
            });
        }
    }
    let g = meta.offsets.entry(group.to_string()).or_default();
    for (t, p, o, md) in offsets {
        g.insert((t.clone(), *p), (*o, md.clone()));
    }
    Ok(Reply::Applied(index))
}

fn elect_preferred(meta: &mut ClusterMeta, topic: &str, partition: u32) -> ApplyResult {
    let alive = alive_ids(meta);
    let p = meta
        .topics
        .get_mut(topic)
        .ok_or_else(|| ClusterError::UnknownTopic(topic.to_string()))?
        .partitions
        .get_mut(partition as usize)
        .ok_or_else(|| ClusterError::UnknownPartition {
            topic: topic.to_string(),
            partition,
        })?;
    let Some(&first) = p.replicas.first() else {
        return Err(ClusterError::InvalidRequest(
            "a partition without replicas".into(),
        ));
    };
    if p.leader == Some(first) {
        return Ok(Reply::Partition(p.clone()));
    }
    if !p.isr.contains(&first) || !alive.contains(&first) {
        return Err(ClusterError::InvalidRequest(format!(
            "preferred replica {first} of {topic}/{partition} is not an alive member of the ISR"
        )));
    }
    p.leader = Some(first);
    p.leader_epoch = p.leader_epoch.saturating_add(1);
    p.partition_epoch = p.partition_epoch.saturating_add(1);
    Ok(Reply::Partition(p.clone()))
}

/// Registered, unfenced brokers, sorted by id.
fn alive_ids(meta: &ClusterMeta) -> Vec<NodeId> {
    meta.brokers
        .values()
        .filter(|b| !b.fenced)
        .map(|b| b.id)
        .collect()
}

fn register(meta: &mut ClusterMeta, id: NodeId, addr: &str, kafka_addr: &Option<String>) {
    meta.brokers.insert(
        id,
        BrokerInfo {
            id,
            addr: addr.to_string(),
            kafka_addr: kafka_addr.clone(),
            fenced: false,
        },
    );
    for p in meta
        .topics
        .values_mut()
        .flat_map(|t| t.partitions.iter_mut())
    {
        if p.leader.is_none() && p.isr.contains(&id) {
            p.leader = Some(id);
            p.leader_epoch = p.leader_epoch.saturating_add(1);
            p.partition_epoch = p.partition_epoch.saturating_add(1);
        }
    }
}

fn fence(meta: &mut ClusterMeta, id: NodeId) -> ApplyResult {
    match meta.brokers.get_mut(&id) {
        Some(b) => b.fenced = true,
        None => return Err(ClusterError::InvalidRequest(format!("unknown broker {id}"))),
    }
    let alive = alive_ids(meta);
    for p in meta
        .topics
        .values_mut()
        .flat_map(|t| t.partitions.iter_mut())
    {
        let mut changed = false;
        if p.isr.len() > 1 && p.isr.contains(&id) {
            p.isr.retain(|&r| r != id);
            changed = true;
        }
        if p.leader == Some(id) {
            p.leader = p.isr.iter().copied().find(|r| alive.contains(r));
            p.leader_epoch = p.leader_epoch.saturating_add(1);
            changed = true;
        }
        if changed {
            p.partition_epoch = p.partition_epoch.saturating_add(1);
        }
    }
    Ok(Reply::Done)
}

fn create_topic(
    meta: &mut ClusterMeta,
    name: &str,
    partitions: u32,
    rf: u16,
    config: &serde_json::Value,
) -> ApplyResult {
    if name.is_empty() {
        return Err(ClusterError::InvalidRequest("empty topic name".into()));
    }
    if partitions == 0 || rf == 0 {
        return Err(ClusterError::InvalidRequest(
            "partitions and replication factor must be at least 1".into(),
        ));
    }
    if meta.topics.contains_key(name) {
        return Err(ClusterError::TopicExists(name.to_string()));
    }
    let alive = alive_ids(meta);
    let needed = usize::from(rf);
    if alive.len() < needed {
        return Err(ClusterError::NotEnoughBrokers {
            alive: alive.len(),
            needed,
        });
    }
    let n = alive.len();
    let parts = (0..partitions as usize)
        .map(|p| {
            let replicas: Vec<NodeId> = (0..needed).map(|j| alive[(p + j) % n]).collect();
            PartitionState {
                leader: replicas.first().copied(),
                isr: replicas.clone(),
                replicas,
                leader_epoch: 0,
                partition_epoch: 0,
            }
        })
        .collect();
    let topic = TopicMeta {
        partitions: parts,
        config: config.clone(),
    };
    meta.topics.insert(name.to_string(), topic.clone());
    Ok(Reply::Topic(topic))
}

fn alter_isr(meta: &mut ClusterMeta, req: &AlterIsr) -> ApplyResult {
    let alive = alive_ids(meta);
    let topic = meta
        .topics
        .get_mut(&req.topic)
        .ok_or_else(|| ClusterError::UnknownTopic(req.topic.clone()))?;
    let p = topic
        .partitions
        .get_mut(req.partition as usize)
        .ok_or_else(|| ClusterError::UnknownPartition {
            topic: req.topic.clone(),
            partition: req.partition,
        })?;
    if p.leader != Some(req.leader)
        || p.leader_epoch != req.leader_epoch
        || p.partition_epoch != req.partition_epoch
    {
        return Err(ClusterError::StaleEpoch {
            expected_leader: p.leader,
            expected_leader_epoch: p.leader_epoch,
            expected_partition_epoch: p.partition_epoch,
            got_leader: req.leader,
            got_leader_epoch: req.leader_epoch,
            got_partition_epoch: req.partition_epoch,
        });
    }
    if !req.isr.contains(&req.leader) {
        return Err(ClusterError::InvalidIsr(
            "the ISR must contain the leader".into(),
        ));
    }
    for (i, r) in req.isr.iter().enumerate() {
        if req.isr[..i].contains(r) {
            return Err(ClusterError::InvalidIsr(format!("broker {r} listed twice")));
        }
        if !p.replicas.contains(r) {
            return Err(ClusterError::InvalidIsr(format!(
                "broker {r} is not a replica"
            )));
        }
        if !alive.contains(r) {
            return Err(ClusterError::InvalidIsr(format!(
                "broker {r} is not registered or is fenced"
            )));
        }
    }
    p.isr = req.isr.clone();
    p.partition_epoch = p.partition_epoch.saturating_add(1);
    Ok(Reply::Partition(p.clone()))
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
