//! A controller member's configuration and its defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::ClusterError;
use crate::meta::NodeId;

/// How to run one controller member.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub node_id: NodeId,
    /// This member's controller RPC address (bound here).
    pub listen: SocketAddr,
    /// Every member's controller address (`host:port`, resolved at each
    /// dial, so a member may come back at another IP under the same name),
    /// this one included. Fixed: adding or removing voters is not supported.
    pub voters: BTreeMap<NodeId, String>,
    /// Raft log, vote and snapshots live here.
    pub dir: PathBuf,
    /// Registered as `BrokerInfo::addr`.
    pub broker_addr: String,
    /// Registered as `BrokerInfo::kafka_addr`.
    pub kafka_addr: Option<String>,
    /// Broker heartbeat period to the controller leader (default 200 ms).
    pub heartbeat_interval: Duration,
    /// No heartbeat this long: the broker is fenced (default 1500 ms).
    pub session_timeout: Duration,
    /// Raft leader heartbeat period (default 100 ms).
    pub raft_heartbeat_interval: Duration,
    /// Raft election timeout range (default 500..1000 ms).
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Build a snapshot every this many applied entries (default 500); the
    /// log is purged behind it.
    pub snapshot_every: u64,
    /// Worker threads of the controller's internal runtime (default 2).
    pub worker_threads: usize,
    /// How often the controller leader gives partitions back to their
    /// preferred replicas ([`crate::apply::Command::ElectPreferred`]);
    /// `None`: never (default 30 s).
    pub preferred_leader_check: Option<Duration>,
    /// A broker's leaderships go back to it only when it leads fewer than
    /// it is preferred for by more than this percentage (Kafka's
    /// `leader.imbalance.per.broker.percentage`; default 10, 0: always).
    pub leader_imbalance_pct: u32,
    /// Mutual TLS on the controller RPC, both ways; `None`: plain TCP
    /// (default; only on a trusted network).
    pub tls: Option<crate::tls::ControllerTls>,
}

impl ControllerConfig {
    /// A configuration with the default timings.
    pub fn new(
        node_id: NodeId,
        listen: SocketAddr,
        voters: BTreeMap<NodeId, String>,
        dir: impl Into<PathBuf>,
        broker_addr: impl Into<String>,
    ) -> ControllerConfig {
        ControllerConfig {
            node_id,
            listen,
            voters,
            dir: dir.into(),
            broker_addr: broker_addr.into(),
            kafka_addr: None,
            heartbeat_interval: Duration::from_millis(200),
            session_timeout: Duration::from_millis(1500),
            raft_heartbeat_interval: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(500),
            election_timeout_max: Duration::from_millis(1000),
            snapshot_every: 500,
            worker_threads: 2,
            preferred_leader_check: Some(Duration::from_secs(30)),
            leader_imbalance_pct: 10,
            tls: None,
        }
    }

    /// Checks the configuration is usable.
    pub fn validate(&self) -> Result<(), ClusterError> {
        let bad = |m: String| Err(ClusterError::InvalidRequest(m));
        if !self.voters.contains_key(&self.node_id) {
            return bad(format!("node {} is not among the voters", self.node_id));
        }
        if self.heartbeat_interval.is_zero() || self.session_timeout <= self.heartbeat_interval {
            return bad("session_timeout must exceed a non-zero heartbeat_interval".into());
        }
        if self.raft_heartbeat_interval.is_zero()
            || self.election_timeout_min <= self.raft_heartbeat_interval
            || self.election_timeout_max <= self.election_timeout_min
        {
            return bad(
                "need 0 < raft heartbeat < election_timeout_min < election_timeout_max".into(),
            );
        }
        if self.preferred_leader_check.is_some_and(|d| d.is_zero()) {
            return bad("preferred_leader_check must be positive (None turns it off)".into());
        }
        if self.leader_imbalance_pct > 100 {
            return bad("leader_imbalance_pct is a percentage: 0 to 100".into());
        }
        if self.snapshot_every == 0 || self.worker_threads == 0 {
            return bad("snapshot_every and worker_threads must be at least 1".into());
        }
        Ok(())
    }
}
