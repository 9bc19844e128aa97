//! One controller member at run time: serves controller RPCs, forwards
//! requests to the raft leader, sends its broker's heartbeats and, while it
//! leads, registers and fences brokers by liveness.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::ServerState;

use crate::api::{BrokerStatus, ClusterStatus, VoterStatus};
use crate::apply::{ApplyResult, Command};
use crate::config::ControllerConfig;
use crate::error::ClusterError;
use crate::liveness::Liveness;
use crate::meta::NodeId;
use crate::rpc::{Forwarded, Heartbeat, Request, Response, RpcClient};
use crate::sm_store::Published;
use crate::types::Raft;

/// Pause between attempts while there is no (reachable) leader.
const RETRY_BACKOFF: Duration = Duration::from_millis(75);
/// Period of the leader's fencing check.
const LIVENESS_TICK: Duration = Duration::from_millis(100);

/// The shared state of a running controller member.
pub struct Node {
    pub cfg: ControllerConfig,
    pub raft: Raft,
    pub published: Arc<Published>,
    pub rpc: Arc<RpcClient>,
    pub shutting_down: AtomicBool,
    liveness: Mutex<Liveness>,
    /// The leader's applied index in its latest heartbeat answer (0: none
    /// yet): this node's metadata is current once it has applied that far.
    pub leader_applied: AtomicU64,
    /// [`Node::caught_up`] has been true once: it stays so.
    caught_up_once: AtomicBool,
    /// After a restart, the term restored from disk: leading in it (a vote
    /// held before the restart) does not vouch for this node's metadata.
    restart_term: Option<u64>,
}

impl Node {
    pub fn new(
        cfg: ControllerConfig,
        raft: Raft,
        published: Arc<Published>,
        rpc: Arc<RpcClient>,
        restart_term: Option<u64>,
    ) -> Node {
        Node {
            restart_term,
            cfg,
            raft,
            published,
            rpc,
            shutting_down: AtomicBool::new(false),
            leader_applied: AtomicU64::new(0),
            caught_up_once: AtomicBool::new(false),
            liveness: Mutex::new(Liveness::new(Instant::now())),
        }
    }

    fn liveness(&self) -> MutexGuard<'_, Liveness> {
        self.liveness.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The current term if this node leads, after syncing liveness with it.
    fn leading(&self) -> Option<u64> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let term = (m.state == ServerState::Leader && m.current_leader == Some(self.cfg.node_id))
            .then_some(m.current_term)?;
        self.liveness().on_leader(term, Instant::now());
        Some(term)
    }

    /// Leading and confirmed by a quorum: an entry of this term is applied
    /// (openraft commits a blank one when a term starts). A node restarted
    /// from a vote it held as leader may call itself leader before it learns
    /// of a later term; its heartbeat answers must not vouch for its
    /// metadata then.
    fn confirmed_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader
            && m.current_leader == Some(self.cfg.node_id)
            && m.last_applied
                .is_some_and(|l| l.leader_id.term == m.current_term)
    }

    /// Serves one controller RPC.
    pub async fn handle(self: &Arc<Self>, req: Request) -> Response {
        match req {
            Request::Append(r) => Response::Append(self.raft.append_entries(r).await),
            Request::Vote(r) => Response::Vote(self.raft.vote(r).await),
            Request::Snapshot(r) => Response::Snapshot(self.raft.install_snapshot(r).await),
            Request::Write(cmd) => Response::Write(self.local_write(cmd).await),
            Request::Heartbeat(hb) => Response::Heartbeat(self.on_heartbeat(hb)),
            Request::Status => Response::Status(self.local_status()),
        }
    }

    async fn local_write(&self, cmd: Command) -> Forwarded<ApplyResult> {
        match self.raft.client_write(cmd).await {
            Ok(resp) => Forwarded::Done(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Forwarded::NotLeader(f.leader_id)
            }
            Err(e) => Forwarded::Failed(ClusterError::Raft(e.to_string())),
        }
    }

    fn voter_addr(&self, id: NodeId) -> Result<String, ClusterError> {
        self.cfg
            .voters
            .get(&id)
            .cloned()
            .ok_or_else(|| ClusterError::Raft(format!("leader {id} is not a configured voter")))
    }

    /// Serves `req` on the leader, forwarding it there when that is not this
    /// node, retrying with a short backoff until `timeout`.
    async fn forward(
        self: &Arc<Self>,
        req: Request,
        timeout: Duration,
    ) -> Result<Response, ClusterError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = String::from("no leader elected");
        let mut reached = false;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                return Err(if reached {
                    ClusterError::Timeout(format!("after {timeout:?}: {last}"))
                } else {
                    ClusterError::NoLeader(format!("after {timeout:?}: {last}"))
                });
            }
            let attempt = match self.leader() {
                None => None,
                Some(l) if l == self.cfg.node_id => {
                    let local = async {
                        match &req {
                            Request::Write(cmd) => {
                                Response::Write(self.local_write(cmd.clone()).await)
                            }
                            Request::Heartbeat(hb) => {
                                Response::Heartbeat(self.on_heartbeat(hb.clone()))
                            }
                            _ => Response::Status(self.local_status()),
                        }
                    };
                    Some(
                        tokio::time::timeout(remaining, local)
                            .await
                            .map_err(|_| "leader did not answer in time".to_string()),
                    )
                }
                Some(l) => {
                    let addr = self.voter_addr(l)?;
                    Some(
                        self.rpc
                            .call(&addr, &req, remaining)
                            .await
                            .map_err(|e| format!("leader {l} at {addr}: {e}")),
                    )
                }
            };
            match attempt {
                Some(Ok(resp)) if !not_leader(&resp) => return Ok(resp),
                Some(Ok(_)) => last = "leader changed".into(),
                Some(Err(e)) => {
                    reached = true;
                    last = e;
                }
                None => {}
            }
            tokio::time::sleep(RETRY_BACKOFF.min(remaining)).await;
        }
    }

    /// Applies `cmd` through the leader and returns its typed result.
    pub async fn write(self: &Arc<Self>, cmd: Command, timeout: Duration) -> ApplyResult {
        match self.forward(Request::Write(cmd), timeout).await? {
            Response::Write(Forwarded::Done(r)) => r,
            Response::Write(Forwarded::Failed(e)) => Err(e),
            other => Err(ClusterError::Raft(format!("unexpected response {other:?}"))),
        }
    }

    pub async fn status(
        self: &Arc<Self>,
        timeout: Duration,
    ) -> Result<ClusterStatus, ClusterError> {
        match self.forward(Request::Status, timeout).await? {
            Response::Status(Forwarded::Done(s)) => Ok(s),
            Response::Status(Forwarded::Failed(e)) => Err(e),
            other => Err(ClusterError::Raft(format!("unexpected response {other:?}"))),
        }
    }

    fn local_status(&self) -> Forwarded<ClusterStatus> {
        if self.leading().is_none() {
            return Forwarded::NotLeader(self.leader());
        }
        let m = self.raft.metrics().borrow().clone();
        let meta = (*self.published.meta()).clone();
        let voters = self
            .cfg
            .voters
            .iter()
            .map(|(&id, addr)| VoterStatus {
                id,
                addr: addr.to_string(),
                matched_index: match (&m.replication, id == self.cfg.node_id) {
                    (_, true) => m.last_log_index,
                    (Some(r), false) => r.get(&id).copied().flatten().map(|l| l.index),
                    (None, false) => None,
                },
                is_leader: m.current_leader == Some(id),
            })
            .collect();
        let now = Instant::now();
        let live = self.liveness();
        let brokers = meta
            .brokers
            .values()
            .map(|b| BrokerStatus {
                info: b.clone(),
                last_heartbeat_ms_ago: live.heard_ago(b.id, now).map(|d| d.as_millis() as u64),
            })
            .collect();
        drop(live);
        Forwarded::Done(ClusterStatus {
            controller_leader: m.current_leader,
            term: m.current_term,
            commit_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            voters,
            brokers,
            meta,
        })
    }

    /// The leader's side of a heartbeat: note it, and (re)register a broker
    /// that is unknown, fenced or moved, unless it is shutting down.
    fn on_heartbeat(self: &Arc<Self>, hb: Heartbeat) -> Forwarded<u64> {
        // Every member keeps liveness, leader or not (see `Liveness`).
        self.liveness().heard(hb.id, Instant::now());
        if self.leading().is_none() || !self.confirmed_leader() {
            return Forwarded::NotLeader(self.leader());
        }
        let meta = self.published.meta();
        let current = meta
            .brokers
            .get(&hb.id)
            .is_some_and(|b| !b.fenced && b.addr == hb.addr && b.kafka_addr == hb.kafka_addr);
        if !current && !hb.shutting_down && self.liveness().begin(hb.id) {
            let cmd = Command::RegisterBroker {
                id: hb.id,
                addr: hb.addr,
                kafka_addr: hb.kafka_addr,
            };
            self.propose_in_background(hb.id, cmd);
        }
        Forwarded::Done(meta.applied_index.max(1))
    }

    /// Notes the leader's applied index from a heartbeat answer.
    fn note_leader_applied(&self, index: u64) {
        self.leader_applied.fetch_max(index, Ordering::AcqRel);
    }

    /// Whether this node has heard from a leader since it started and has
    /// applied the metadata that leader had then: before that, a restarted
    /// node's replayed metadata may be stale (it may name it a leader it no
    /// longer is). Once true it stays true: afterwards a member is only ever
    /// the usual moment behind its leader (the next heartbeat answer names
    /// an index it applies a few milliseconds later), which must not make
    /// the broker hide its leaders from clients every time.
    pub fn caught_up(&self) -> bool {
        if self.caught_up_once.load(Ordering::Acquire) {
            return true;
        }
        let want = self.leader_applied.load(Ordering::Acquire);
        let now = want > 0 && self.published.meta().applied_index >= want;
        if now {
            self.caught_up_once.store(true, Ordering::Release);
        }
        now
    }

    fn propose_in_background(self: &Arc<Self>, id: NodeId, cmd: Command) {
        let node = self.clone();
        tokio::spawn(async move {
            let r = node.raft.client_write(cmd.clone()).await;
            if let Err(e) = r {
                tracing::debug!("liveness proposal {cmd:?} failed: {e}");
            }
            node.liveness().end(id);
        });
    }

    /// Sends this node's broker heartbeat to every voter each interval (so
    /// a member that becomes leader already knows who went silent), each
    /// call on its own task so a voter cut off delays no other.
    pub async fn heartbeat_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.cfg.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let rpc_timeout = (self.cfg.session_timeout / 2).min(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let hb = Heartbeat {
                id: self.cfg.node_id,
                addr: self.cfg.broker_addr.clone(),
                kafka_addr: self.cfg.kafka_addr.clone(),
                shutting_down: self.shutting_down.load(Ordering::Acquire),
            };
            for (&id, addr) in &self.cfg.voters {
                if id == self.cfg.node_id {
                    let answered = self.on_heartbeat(hb.clone());
                    let term = self.raft.metrics().borrow().current_term;
                    let elected_since_start = self.restart_term.is_none_or(|t| term > t);
                    if let (Forwarded::Done(i), true) = (answered, elected_since_start) {
                        self.note_leader_applied(i);
                    }
                    continue;
                }
                let (node, hb, addr) = (self.clone(), hb.clone(), addr.clone());
                tokio::spawn(async move {
                    match node
                        .rpc
                        .call(&addr, &Request::Heartbeat(hb), rpc_timeout)
                        .await
                    {
                        Ok(Response::Heartbeat(Forwarded::Done(i))) => node.note_leader_applied(i),
                        Ok(_) => {}
                        Err(e) => tracing::debug!("heartbeat to voter {id}: {e}"),
                    }
                });
            }
        }
    }

    /// While leading, fences brokers silent for the session timeout.
    pub async fn liveness_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(LIVENESS_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.leading().is_none() {
                continue;
            }
            let meta = self.published.meta();
            let expired =
                self.liveness()
                    .take_expired(&meta, Instant::now(), self.cfg.session_timeout);
            for id in expired {
                tracing::info!(
                    broker = id,
                    "fencing broker: no heartbeat within the session timeout"
                );
                self.propose_in_background(id, Command::FenceBroker { id });
            }
        }
    }

    /// While leading, every `preferred_leader_check`, gives partitions back
    /// to their preferred replicas where those are alive and in sync.
    pub async fn rebalance_loop(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if self.leading().is_none() || !self.confirmed_leader() {
                continue;
            }
            let meta = self.published.meta();
            let pct = self.cfg.leader_imbalance_pct;
            for (topic, partition) in crate::apply::preferred_elections(&meta, pct) {
                tracing::info!(%topic, partition, "giving the partition back to its preferred replica");
                let cmd = Command::ElectPreferred { topic, partition };
                if let Err(e) = self.raft.client_write(cmd).await {
                    tracing::debug!("preferred leader election failed: {e}");
                }
            }
        }
    }
}

fn not_leader(resp: &Response) -> bool {
    matches!(
        resp,
        Response::Write(Forwarded::NotLeader(_))
            | Response::Heartbeat(Forwarded::NotLeader(_))
            | Response::Status(Forwarded::NotLeader(_))
    )
}
