//! The controller's error type: every refusal and failure a caller can see,
//! serializable so it crosses the controller RPC unchanged.

use serde::{Deserialize, Serialize};

use crate::meta::NodeId;

/// Why a controller call failed.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterError {
    /// No controller leader was reachable before the timeout.
    #[error("no controller leader: {0}")]
    NoLeader(String),
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    #[error("unknown partition {topic:?}/{partition}")]
    UnknownPartition { topic: String, partition: u32 },
    #[error("not enough unfenced brokers: {alive} alive, {needed} needed")]
    NotEnoughBrokers { alive: usize, needed: usize },
    /// An ISR change based on a state that is no longer current.
    #[error(
        "stale epoch: partition has leader {expected_leader:?} epoch {expected_leader_epoch} \
         partition epoch {expected_partition_epoch}, request had leader {got_leader} epoch \
         {got_leader_epoch} partition epoch {got_partition_epoch}"
    )]
    StaleEpoch {
        expected_leader: Option<NodeId>,
        expected_leader_epoch: u32,
        expected_partition_epoch: u32,
        got_leader: NodeId,
        got_leader_epoch: u32,
        got_partition_epoch: u32,
    },
    #[error("invalid ISR: {0}")]
    InvalidIsr(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("I/O error: {0}")]
    Io(String),
    #[error("raft error: {0}")]
    Raft(String),
    #[error("timed out: {0}")]
    Timeout(String),
}
