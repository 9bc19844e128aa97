//! Neo's controller quorum, the KRaft design on openraft: every node runs a
//! controller member; the replicated state machine is the cluster metadata
//! ([`ClusterMeta`]): registered brokers and whether they are fenced, topics,
//! and per partition its replicas, leader, leader epoch and in-sync replica
//! set. The data plane (`neo-broker`) reads the metadata applied on its own
//! node and asks the controller to change ISRs; the controller leader fences
//! brokers that stop heartbeating and elects partition leaders from the ISR.

pub mod meta;

pub use meta::{BrokerInfo, ClusterMeta, NodeId, PartitionState, TopicMeta};
