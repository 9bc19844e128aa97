//! Partition replication the Kafka way, on a controller quorum's metadata
//! (`neo-cluster`): the leader of a partition takes produces and serves its
//! followers' fetches (`ReplicaFetch`); followers copy its batches byte for
//! byte; the high watermark is the smallest log end among the in-sync
//! replicas, consumers read below it and `acks=all` waits for it. Leaders
//! ask the controller to shrink the ISR when a follower falls behind for
//! the lag limit and to grow it when one catches up; a follower whose log
//! diverged (it led an epoch whose tail was never committed) truncates to
//! the end of the last epoch it shares with the leader.
//!
//! - [`epochs`]: the leader-epoch history of a partition.
//! - [`replica`]: a partition's role, high watermark and followers, no I/O.
//! - [`wire`]: the requests and answers.
//! - [`link`]: the broker's side — reconciling roles with the metadata,
//!   serving replica fetches, keeping the ISR; [`fetcher`]: the follower's
//!   fetch sessions, run by the broker's poll loop over its own transport;
//!   [`follow`]: what a follower asks for and how it applies the answer.

pub mod control;
pub mod epochs;
pub mod fetch_auth;
pub mod fetcher;
pub mod follow;
pub mod link;
pub mod offsets;
pub mod replica;
pub mod resolver;
pub mod wire;

pub use epochs::EpochCache;

/// A follower's fetch from its leader.
pub const METHOD_REPLICA_FETCH: &str = "ReplicaFetch";
/// Partition leaders and broker addresses, for clients.
pub const METHOD_METADATA: &str = "Metadata";
/// The controller quorum's view plus replica lag, for `neo cluster status`.
pub const METHOD_CLUSTER_STATUS: &str = "ClusterStatus";
pub use link::{ClusterLink, ControlPlane};
pub use replica::{Replica, Role};
