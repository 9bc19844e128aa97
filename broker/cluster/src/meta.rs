//! The cluster metadata the controller quorum agrees on, as the data plane
//! reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A node's id: the same for its controller member and its broker.
pub type NodeId = u64;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub id: NodeId,
    /// Where clients and followers reach its Neo listener (`host:port`).
    pub addr: String,
    /// Its Kafka listener, if it has one.
    pub kafka_addr: Option<String>,
    /// Fenced: missed heartbeats for the session timeout; it leads nothing
    /// and is in no ISR until it heartbeats again.
    pub fenced: bool,
}

/// One partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<NodeId>,
    /// `None`: offline (no in-sync replica is alive).
    pub leader: Option<NodeId>,
    /// Bumped on every leader change (including to and from `None`).
    pub leader_epoch: u32,
    /// In-sync replicas, the leader included. Never empty: when the last
    /// member is fenced it stays here (and the partition goes offline), so
    /// only a replica that has every acknowledged record can lead again.
    pub isr: Vec<NodeId>,
    /// Bumped on every change of this state (leader or ISR); an ISR change
    /// request names the epoch it was based on and is refused if stale.
    pub partition_epoch: u32,
}

/// A topic: its partitions, indexed by partition number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub partitions: Vec<PartitionState>,
    /// The topic's settings as the broker's `TopicConfig` serializes them
    /// (opaque here).
    pub config: serde_json::Value,
}

/// A consumer group's committed offsets: (topic, partition) → (offset,
/// metadata).
pub type GroupOffsets = BTreeMap<(String, u32), (u64, String)>;

/// The whole metadata image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMeta {
    pub brokers: BTreeMap<NodeId, BrokerInfo>,
    pub topics: BTreeMap<String, TopicMeta>,
    /// Consumer groups' committed offsets, by group: agreed by the quorum
    /// like the rest, so whichever broker coordinates a group next has them.
    #[serde(default, with = "offsets_serde")]
    pub offsets: BTreeMap<String, GroupOffsets>,
    /// Raft log index of the last applied change (0: nothing applied).
    pub applied_index: u64,
}

/// JSON maps need string keys: each group's offsets travel as a list.
mod offsets_serde {
    use super::GroupOffsets;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    type Entry = (String, u32, u64, String);

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<String, GroupOffsets>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let flat: BTreeMap<&String, Vec<Entry>> = m
            .iter()
            .map(|(g, o)| {
                let list = o
                    .iter()
                    .map(|((t, p), (off, md))| (t.clone(), *p, *off, md.clone()))
                    .collect();
                (g, list)
            })
            .collect();
        flat.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, GroupOffsets>, D::Error> {
        let flat = BTreeMap::<String, Vec<Entry>>::deserialize(d)?;
        Ok(flat
            .into_iter()
            .map(|(g, list)| {
                let o = list
                    .into_iter()
                    .map(|(t, p, off, md)| ((t, p), (off, md)))
                    .collect();
                (g, o)
            })
            .collect())
    }
}
