//! Request and report types of the controller's public API: ISR change
//! requests and the cluster status report.

use serde::{Deserialize, Serialize};

use crate::meta::{BrokerInfo, ClusterMeta, NodeId};

/// A partition leader's request to change its in-sync replica set. It names
/// the leader and epochs it was based on; a stale request is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterIsr {
    pub topic: String,
    pub partition: u32,
    pub leader: NodeId,
    pub leader_epoch: u32,
    pub partition_epoch: u32,
    /// The new ISR, the leader included.
    pub isr: Vec<NodeId>,
}

/// One voter of the controller quorum as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoterStatus {
    pub id: NodeId,
    pub addr: String,
    /// Highest log index known replicated on it (leader's view).
    pub matched_index: Option<u64>,
    pub is_leader: bool,
}

/// One registered broker with its liveness as the controller leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStatus {
    pub info: BrokerInfo,
    /// `None`: not heard from since this leader took over.
    pub last_heartbeat_ms_ago: Option<u64>,
}

/// The controller quorum's state, reported by its leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub controller_leader: Option<NodeId>,
    pub term: u64,
    /// The leader's last applied (hence committed) log index.
    pub commit_index: u64,
    pub voters: Vec<VoterStatus>,
    pub brokers: Vec<BrokerStatus>,
    pub meta: ClusterMeta,
}
