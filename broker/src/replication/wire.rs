//! The replication and cluster requests of the Neo protocol: a follower's
//! fetch from its leader (`ReplicaFetch`), and the partition metadata
//! clients use to find leaders (`Metadata`).

use serde::{Deserialize, Serialize};

use crate::protocol::BrokerError;

pub type NodeId = u64;

/// A follower's fetch: for each partition it follows from this leader, the
/// offset it wants next and the epoch of the last batch it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaFetch {
    pub replica: NodeId,
    /// Held up to this long while no partition has data past its offset.
    pub max_wait_ms: u32,
    pub max_bytes: u32,
    pub partitions: Vec<ReplicaFetchPartition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaFetchPartition {
    pub topic: String,
    pub partition: u32,
    /// The leader epoch the follower believes current.
    pub leader_epoch: u32,
    /// The follower's log end: the next offset it wants.
    pub offset: u64,
    /// Epoch of the follower's last batch (`None`: its log is empty).
    pub last_fetched_epoch: Option<u32>,
}

/// The head of a replica-fetch answer; the batches of each partition follow
/// it, `len` bytes each, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaFetchHead {
    pub partitions: Vec<ReplicaFetched>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaFetched {
    pub error: Option<BrokerError>,
    /// The follower's log diverges from the leader's: `(epoch, end)`, the
    /// largest epoch the leader has at or below the follower's last one and
    /// where it ends on the leader. The follower truncates to that end (or
    /// to where that epoch ends in its own log, if earlier), then fetches
    /// again.
    pub diverging: Option<(u32, u64)>,
    pub high_watermark: u64,
    pub log_start: u64,
    pub len: u32,
}

/// Which topics' partition leaders a client wants (empty: every topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataRequest {
    pub topics: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// `None` on a single-node broker.
    pub node_id: Option<NodeId>,
    pub brokers: Vec<BrokerAddr>,
    pub topics: Vec<TopicLeaders>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerAddr {
    pub id: NodeId,
    pub addr: String,
    pub fenced: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicLeaders {
    pub name: String,
    pub partitions: Vec<PartitionLeader>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLeader {
    pub partition: u32,
    pub leader: Option<NodeId>,
    pub leader_epoch: u32,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
}

/// What `neo cluster status` shows about one partition, as its leader sees
/// it: the high watermark and each replica's lag behind the log end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaLag {
    pub topic: String,
    pub partition: u32,
    pub leader_epoch: u32,
    pub log_end: u64,
    pub high_watermark: u64,
    /// `(replica, records behind the leader's log end)`; `None`: not heard from.
    pub replicas: Vec<(NodeId, Option<u64>)>,
}
