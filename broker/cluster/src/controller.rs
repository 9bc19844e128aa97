//! The public controller handle: starts a member (storage, raft, RPC server,
//! heartbeat and liveness tasks) on its own small tokio runtime and exposes
//! blocking calls for the broker's plain threads.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::InitializeError;
use openraft::{BasicNode, Config, SnapshotPolicy};

use crate::api::{AlterIsr, ClusterStatus};
use crate::apply::{Command, Reply};
use crate::config::ControllerConfig;
use crate::error::ClusterError;
use crate::log_store::LogStore;
use crate::meta::{ClusterMeta, NodeId, PartitionState, TopicMeta};
use crate::network::Network;
use crate::node::Node;
use crate::rpc::RpcClient;
use crate::sm_store::{Published, SmStore};
use crate::types::Raft;

/// A running controller member.
pub struct Controller {
    rt: Option<tokio::runtime::Runtime>,
    node: Arc<Node>,
}

fn raft_config(cfg: &ControllerConfig) -> Result<Config, ClusterError> {
    let ms = |d: Duration| d.as_millis() as u64;
    Config {
        cluster_name: "neo-controller".into(),
        heartbeat_interval: ms(cfg.raft_heartbeat_interval),
        election_timeout_min: ms(cfg.election_timeout_min),
        election_timeout_max: ms(cfg.election_timeout_max),
        install_snapshot_timeout: 10_000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every),
        max_in_snapshot_log_to_keep: 100,
        ..Default::default()
    }
    .validate()
    .map_err(|e| ClusterError::InvalidRequest(format!("raft config: {e}")))
}

impl Controller {
    /// Opens storage under `cfg.dir`, binds `cfg.listen`, starts raft (and
    /// bootstraps the voter set on a fresh directory) and the background
    /// tasks. Returns once started; a leader is elected shortly after.
    pub fn start(cfg: ControllerConfig) -> Result<Controller, ClusterError> {
        cfg.validate()?;
        no_runtime_here()?;
        let raft_cfg = Arc::new(raft_config(&cfg)?);
        let log = LogStore::open(&cfg.dir)?;
        let published = Arc::new(Published::default());
        let sm = SmStore::open(&cfg.dir, published.clone())?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.worker_threads)
            .thread_name(format!("neo-ctrl-{}", cfg.node_id))
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Io(format!("controller runtime: {e}")))?;
        let tls = cfg.tls.clone();
        let rpc = Arc::new(RpcClient::new(tls.clone()));
        let node = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(cfg.listen)
                .await
                .map_err(|e| ClusterError::Io(format!("binding {}: {e}", cfg.listen)))?;
            let network = Network { rpc: rpc.clone() };
            let raft = Raft::new(cfg.node_id, raft_cfg, network, log, sm)
                .await
                .map_err(|e| ClusterError::Raft(e.to_string()))?;
            let restored_term = raft.metrics().borrow().current_term;
            let fresh = !raft
                .is_initialized()
                .await
                .map_err(|e| ClusterError::Raft(e.to_string()))?;
            if fresh {
                let members: std::collections::BTreeMap<NodeId, BasicNode> = cfg
                    .voters
                    .iter()
                    .map(|(&id, a)| (id, BasicNode::new(a.to_string())))
                    .collect();
                match raft.initialize(members).await {
                    Ok(()) => {}
                    Err(openraft::error::RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                    Err(e) => return Err(ClusterError::Raft(e.to_string())),
                }
            }
            let restart_term = (!fresh).then_some(restored_term);
            let rebalance = cfg.preferred_leader_check;
            let node = Arc::new(Node::new(cfg, raft, published, rpc, restart_term));
            tokio::spawn(crate::server::serve(listener, node.clone(), tls));
            tokio::spawn(node.clone().heartbeat_loop());
            tokio::spawn(node.clone().liveness_loop());
            if let Some(every) = rebalance {
                tokio::spawn(node.clone().rebalance_loop(every));
            }
            Ok::<_, ClusterError>(node)
        })?;
        Ok(Controller { rt: Some(rt), node })
    }

    fn block_on<F: Future>(&self, f: F) -> Result<F::Output, ClusterError> {
        no_runtime_here()?;
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| ClusterError::InvalidRequest("controller is shut down".into()))?;
        Ok(rt.block_on(f))
    }

    /// The latest metadata image applied on this node.
    pub fn meta(&self) -> Arc<ClusterMeta> {
        self.node.published.meta()
    }

    /// `meta().applied_index`, read atomically.
    pub fn meta_version(&self) -> u64 {
        self.node.published.version()
    }

    /// The controller leader as this node knows it.
    pub fn leader(&self) -> Option<NodeId> {
        self.node.leader()
    }

    /// Whether this node's metadata is current: it heard from a leader since
    /// it started and applied what that leader had. A broker takes
    /// partition roles only then.
    pub fn caught_up(&self) -> bool {
        self.node.caught_up()
    }

    /// This member's node id.
    pub fn node_id(&self) -> NodeId {
        self.node.cfg.node_id
    }

    fn write(&self, cmd: Command, timeout: Duration) -> Result<Reply, ClusterError> {
        let node = self.node.clone();
        self.block_on(async move { node.write(cmd, timeout).await })?
    }

    /// Creates a topic; replicas are spread over the unfenced brokers.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        replication_factor: u16,
        config: serde_json::Value,
        timeout: Duration,
    ) -> Result<TopicMeta, ClusterError> {
        let cmd = Command::CreateTopic {
            name: name.to_string(),
            partitions,
            replication_factor,
            config,
        };
        match self.write(cmd, timeout)? {
            Reply::Topic(t) => Ok(t),
            other => Err(ClusterError::Raft(format!("unexpected reply {other:?}"))),
        }
    }

    pub fn delete_topic(&self, name: &str, timeout: Duration) -> Result<(), ClusterError> {
        self.write(
            Command::DeleteTopic {
                name: name.to_string(),
            },
            timeout,
        )
        .map(|_| ())
    }

    /// Commits a consumer group's offsets through the quorum and returns
    /// once this node's metadata holds them (so a read here right after
    /// sees them), or fails after `timeout`.
    pub fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<(String, u32, u64, String)>,
        timeout: Duration,
    ) -> Result<(), ClusterError> {
        let start = std::time::Instant::now();
        let cmd = Command::CommitOffsets {
            group: group.to_string(),
            offsets,
        };
        let index = match self.write(cmd, timeout)? {
            Reply::Applied(i) => i,
            other => return Err(ClusterError::Raft(format!("unexpected reply {other:?}"))),
        };
        while self.meta_version() < index {
            if start.elapsed() >= timeout {
                return Err(ClusterError::Raft(format!(
                    "committed at index {index}, not yet applied on this node after {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// Changes a partition's ISR (the partition leader's request).
    pub fn alter_isr(
        &self,
        req: AlterIsr,
        timeout: Duration,
    ) -> Result<PartitionState, ClusterError> {
        match self.write(Command::AlterIsr(req), timeout)? {
            Reply::Partition(p) => Ok(p),
            other => Err(ClusterError::Raft(format!("unexpected reply {other:?}"))),
        }
    }

    /// Fences this node's broker now (its leaderships move to other ISR
    /// members) and keeps it fenced until this process stops: later
    /// heartbeats carry the shutting-down flag.
    pub fn controlled_shutdown(&self, timeout: Duration) -> Result<(), ClusterError> {
        self.node.shutting_down.store(true, Ordering::Release);
        let id = self.node.cfg.node_id;
        self.write(Command::FenceBroker { id }, timeout).map(|_| ())
    }

    /// The quorum's state as its leader reports it.
    pub fn status(&self, timeout: Duration) -> Result<ClusterStatus, ClusterError> {
        let node = self.node.clone();
        self.block_on(async move { node.status(timeout).await })?
    }

    /// Stops raft, the RPC server and the heartbeats; returns when done.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(rt) = self.rt.take() {
            let raft = self.node.raft.clone();
            if tokio::runtime::Handle::try_current().is_err() {
                if let Err(e) = rt.block_on(raft.shutdown()) {
                    tracing::warn!("raft shutdown: {e}");
                }
            }
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.stop();
    }
}

fn no_runtime_here() -> Result<(), ClusterError> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Err(ClusterError::InvalidRequest(
            "blocking controller call made from inside a tokio runtime".into(),
        )),
        Err(_) => Ok(()),
    }
}
