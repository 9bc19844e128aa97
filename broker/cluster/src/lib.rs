//! Neo's controller quorum, the KRaft design on openraft 0.9: the cluster
//! metadata ([`ClusterMeta`]: registered brokers and whether they are fenced,
//! topics, and per partition its replicas, leader, leader epoch and in-sync
//! replica set) is a replicated state machine agreed by Raft. The data plane
//! (`neo-broker`) reads the image applied on its own node ([`Controller::meta`])
//! and asks the controller to change ISRs; the controller leader fences
//! brokers that stop heartbeating and elects partition leaders from the ISR.
//!
//! **Combined mode.** Every Neo node runs one controller member (a Raft
//! voter) next to its broker, with the same [`NodeId`]. [`Controller`] runs
//! its own small tokio runtime; its methods block and are meant for the
//! broker's plain threads (called from inside a tokio runtime they return
//! an error instead of panicking). A mutating call on a follower is
//! forwarded to the leader over the controller RPC, retried with a short
//! backoff while there is no leader, until its timeout.
//!
//! **Commands** ([`Command`], the Raft log's data), applied deterministically
//! by [`apply`] (no clocks, no I/O), each with a typed result:
//! `RegisterBroker` (upsert + unfence; offline partitions whose ISR holds it
//! get it as leader), `FenceBroker` (out of every ISR it is not the last
//! member of; its leaderships move to the first live ISR member, or offline:
//! never an unclean election), `CreateTopic` (replicas round-robin over the
//! unfenced brokers, shifted per partition so leaders spread), `DeleteTopic`,
//! `AlterIsr` (refused on a stale leader/epoch; the new ISR must hold the
//! leader and only live assigned replicas). Leader changes bump the leader
//! epoch; every change bumps the partition epoch.
//!
//! **Liveness** (leader only, in memory, not replicated): each member sends
//! its broker's heartbeat to the leader every `heartbeat_interval`; the
//! leader registers unknown or fenced brokers that heartbeat and fences
//! registered ones silent for `session_timeout`. A new leader gives every
//! broker a full session of grace. After [`Controller::controlled_shutdown`]
//! heartbeats carry a shutting-down flag and never unfence the broker.
//!
//! **Persisted** under `ControllerConfig::dir`: `vote.json` (atomic replace
//! with fsyncs), `raft.log` (checksummed length-prefixed JSON records,
//! fsynced before openraft is told; a torn tail is cut on open; truncate and
//! purge rewrite it atomically), `snapshot.json` (image + last applied log
//! id + membership, atomic; built every `snapshot_every` entries, the log is
//! purged behind it) and `committed.json` (a hint). Corrupt vote or
//! snapshot files make [`Controller::start`] fail with an error naming them.
//!
//! **Network:** Raft RPCs and the controller's own (forwarded writes,
//! heartbeats, status) share one TCP listener: frames of u32 length + JSON,
//! capped at 64 MiB, connections cached per peer, every connect (500 ms),
//! RPC (1 s raft, 10 s snapshot chunks) and forwarded call time-bounded.
//! With a [`ControllerTls`] in the config, every connection is mutual TLS
//! and the peer's certificate must be admitted ([`tls`]), both ways.
//!
//! **Out of scope:** membership changes (voters are fixed at bootstrap: on a
//! fresh directory every member initializes the same voter set), and
//! exactly-once forwarding (a write retried after a
//! lost response can answer e.g. `TopicExists` for its own first attempt).

pub mod api;
pub mod apply;
pub mod config;
pub mod controller;
pub mod error;
mod fsutil;
mod liveness;
pub mod log_store;
pub mod meta;
mod network;
mod node;
mod rpc;
mod server;
pub mod sm_store;
pub mod tls;
pub mod types;

pub use api::{AlterIsr, BrokerStatus, ClusterStatus, VoterStatus};
pub use apply::{apply, ApplyResult, Command, Reply};
pub use config::ControllerConfig;
pub use controller::Controller;
pub use error::ClusterError;
pub use meta::{BrokerInfo, ClusterMeta, GroupOffsets, NodeId, PartitionState, TopicMeta};
pub use tls::ControllerTls;
