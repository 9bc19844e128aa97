//! The broker's side of a cluster: [`ClusterLink`] joins a [`Broker`] to the
//! controller quorum. On every tick the broker reconciles its partitions'
//! roles with the metadata applied on this node, serves and re-answers held
//! replica fetches, advances high watermarks, and sends ISR changes to the
//! controller through a worker thread (controller calls block; the poll loop
//! must not).

use std::collections::BTreeSet;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use neo_cluster::{ClusterMeta, PartitionState};
use neo_transports::rpc::Deferred;

use super::fetcher::Fetchers;
use super::wire::*;
use crate::broker::{Broker, FetchReply};
use crate::protocol::{decode_request, encode_result, BrokerError, TopicConfig};
use crate::replication::Role;

/// What the broker needs from the controller quorum (implemented by
/// `neo_cluster::Controller`). Calls other than `meta`/`meta_version` block
/// up to `timeout` and run on the link's worker thread.
pub trait ControlPlane: Send + Sync + 'static {
    /// The metadata image applied on this node.
    fn meta(&self) -> Arc<ClusterMeta>;
    /// Changes whenever [`ControlPlane::meta`] does (cheap).
    fn meta_version(&self) -> u64;
    /// Whether the metadata on this node is current (after a restart it
    /// is not until the node heard from the controller leader and caught
    /// up); partitions take no role before.
    fn caught_up(&self) -> bool;
    fn create_topic(
        &self,
        name: &str,
        config: &TopicConfig,
        timeout: Duration,
    ) -> Result<(), BrokerError>;
    fn delete_topic(&self, name: &str, timeout: Duration) -> Result<(), BrokerError>;
    /// The leader's request to set a partition's in-sync replicas.
    #[allow(clippy::too_many_arguments)]
    fn alter_isr(
        &self,
        topic: &str,
        partition: u32,
        leader: NodeId,
        leader_epoch: u32,
        partition_epoch: u32,
        isr: Vec<NodeId>,
        timeout: Duration,
    ) -> Result<(), BrokerError>;
    /// The quorum's view for `neo cluster status`, as JSON.
    fn status(&self, timeout: Duration) -> Result<serde_json::Value, BrokerError>;
    /// Commits a group's (topic, partition, offset, metadata) entries;
    /// returns once this node's metadata holds them.
    fn commit_offsets(
        &self,
        group: &str,
        offsets: Vec<(String, u32, u64, String)>,
        timeout: Duration,
    ) -> Result<(), BrokerError>;
}

/// Answers the worker thread finished, for the poll loop to send.
type Finished = Arc<Mutex<Vec<(Deferred, Vec<u8>)>>>;

/// Blocking controller work, done off the poll loop.
pub(crate) enum Job {
    AlterIsr {
        topic: String,
        partition: u32,
        state: PartitionState,
        leader: NodeId,
        isr: Vec<NodeId>,
    },
    CreateTopic {
        name: String,
        config: TopicConfig,
        call: Deferred,
    },
    DeleteTopic {
        name: String,
        call: Deferred,
    },
    Status {
        call: Deferred,
        lags: Vec<ReplicaLag>,
    },
    CommitOffsets {
        group: String,
        offsets: Vec<(String, u32, u64, String)>,
        call: Deferred,
    },
}

/// A follower's fetch held until data arrives or its wait ends.
pub(crate) struct HeldReplicaFetch {
    pub call: Deferred,
    pub req: ReplicaFetch,
    pub deadline: Instant,
}

/// Settings of a broker's cluster membership.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub node_id: NodeId,
    /// A follower that has not caught up for this long leaves the ISR.
    pub replica_lag_max: Duration,
    /// Controller calls give up after this.
    pub controller_timeout: Duration,
    /// What this node's fetch sessions authenticate with (SCRAM), for
    /// leaders that require authentication (`--neo-auth`).
    pub replication_auth: Option<crate::client::ClientAuth>,
}

impl LinkConfig {
    pub fn new(node_id: NodeId) -> Self {
        Self {
            node_id,
            replica_lag_max: Duration::from_secs(2),
            controller_timeout: Duration::from_secs(5),
            replication_auth: None,
        }
    }
}

pub struct ClusterLink {
    pub cfg: LinkConfig,
    pub control: Arc<dyn ControlPlane>,
    seen_version: u64,
    /// Topics the metadata has named: one that disappears was deleted.
    known_topics: BTreeSet<String>,
    jobs: mpsc::Sender<Job>,
    /// Answers the worker finished (creates, deletes, status).
    pub(crate) done: Finished,
    pub(crate) held: Vec<HeldReplicaFetch>,
    pub(crate) fetchers: Fetchers,
    last_upkeep: Instant,
}

/// How often leaders check their ISR and followers' fetchers are reviewed.
const UPKEEP: Duration = Duration::from_millis(20);

impl ClusterLink {
    /// Joins `broker` to the cluster: its partitions lose their single-node
    /// role until the metadata gives them one.
    pub fn install(
        broker: &Arc<Mutex<Broker>>,
        control: Arc<dyn ControlPlane>,
        cfg: LinkConfig,
    ) -> Result<(), BrokerError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let done = Arc::new(Mutex::new(Vec::new()));
        {
            let (control, done) = (control.clone(), done.clone());
            let timeout = cfg.controller_timeout;
            std::thread::Builder::new()
                .name("neo-controller-calls".into())
                .spawn(move || worker(rx, control, done, timeout))
                .map_err(|e| BrokerError::Cluster(format!("starting the worker thread: {e}")))?;
        }
        let auth = cfg.replication_auth.clone();
        let mut b = crate::service::lock(broker);
        b.join_cluster()?;
        b.cluster = Some(ClusterLink {
            cfg,
            control,
            seen_version: u64::MAX,
            known_topics: BTreeSet::new(),
            jobs: tx,
            done,
            held: Vec::new(),
            fetchers: Fetchers::new(auth),
            last_upkeep: Instant::now(),
        });
        Ok(())
    }

    pub(crate) fn send(&self, job: Job) {
        if self.jobs.send(job).is_err() {
            tracing::error!("the controller worker thread is gone");
        }
    }
}

fn worker(
    rx: mpsc::Receiver<Job>,
    control: Arc<dyn ControlPlane>,
    done: Finished,
    timeout: Duration,
) {
    let finish = |call: Deferred, body: Vec<u8>| {
        done.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((call, body));
    };
    while let Ok(job) = rx.recv() {
        match job {
            Job::AlterIsr {
                topic,
                partition,
                state,
                leader,
                isr,
            } => {
                let r = control.alter_isr(
                    &topic,
                    partition,
                    leader,
                    state.leader_epoch,
                    state.partition_epoch,
                    isr.clone(),
                    timeout,
                );
                match r {
                    Ok(()) => {
                        tracing::info!(%topic, partition, from = ?state.isr, to = ?isr, "ISR changed")
                    }
                    Err(e) => {
                        tracing::warn!(%topic, partition, to = ?isr, error = %e, "ISR change refused")
                    }
                }
            }
            Job::CreateTopic { name, config, call } => {
                let r = control
                    .create_topic(&name, &config, timeout)
                    .map(|()| config);
                finish(call, encode_result(&r));
            }
            Job::DeleteTopic { name, call } => {
                finish(call, encode_result(&control.delete_topic(&name, timeout)));
            }
            Job::CommitOffsets {
                group,
                offsets,
                call,
            } => {
                let r = control.commit_offsets(&group, offsets, timeout);
                finish(call, encode_result(&r));
            }
            Job::Status { call, lags } => {
                let r = control.status(timeout).map(|mut v| {
                    v["replica_lag"] = serde_json::to_value(&lags).unwrap_or_default();
                    v.to_string()
                });
                finish(call, encode_result(&r));
            }
        }
    }
}

impl Broker {
    /// Cluster mode: this node's id and the metadata applied on it.
    pub fn cluster_view(&self) -> Option<(NodeId, Arc<ClusterMeta>)> {
        let c = self.cluster.as_ref()?;
        Some((c.cfg.node_id, c.control.meta()))
    }

    /// Whether this node's cluster metadata is known to be current: it has
    /// heard from a controller leader since it started and applied what that
    /// leader had applied then. Until then a restarted node's replayed image
    /// may name leaders and ISRs that have changed since. `true` outside a
    /// cluster.
    pub fn metadata_current(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.control.caught_up())
    }

    /// Cluster mode: the broker that coordinates Kafka consumer group
    /// `group`, the same answer on every node of the cluster (a function of
    /// the metadata alone): of the unfenced brokers with a Kafka listener,
    /// the one [`group_rank`] ranks highest for the group — rendezvous
    /// hashing, so groups spread over the brokers and a broker that comes
    /// or goes moves only the groups it gains or had. As (id, its Kafka
    /// `host:port`); `None` outside a cluster, or when no broker qualifies.
    pub fn group_coordinator(&self, group: &str) -> Option<(NodeId, String)> {
        let c = self.cluster.as_ref()?;
        let meta = c.control.meta();
        meta.brokers
            .values()
            .filter(|b| !b.fenced)
            .filter_map(|b| Some((b.id, b.kafka_addr.clone()?)))
            .max_by_key(|(id, _)| group_rank(group, *id))
    }

    /// Whether this broker coordinates Kafka group `group`: always outside
    /// a cluster; in one, only the node [`Broker::group_coordinator`] names.
    pub fn is_group_coordinator(&self, group: &str) -> bool {
        match &self.cluster {
            None => true,
            Some(c) => self
                .group_coordinator(group)
                .is_some_and(|(id, _)| id == c.cfg.node_id),
        }
    }

    /// Cluster mode: this node's id, if the broker is in a cluster.
    pub fn node_id(&self) -> Option<NodeId> {
        self.cluster.as_ref().map(|c| c.cfg.node_id)
    }

    fn join_cluster(&mut self) -> Result<(), BrokerError> {
        for (_, t) in self.topics.iter_mut() {
            for p in t.partitions.iter_mut() {
                p.join_cluster()?;
            }
        }
        Ok(())
    }

    /// Cluster mode: hands a topic create to the controller; the answer
    /// comes once the quorum agreed (and this node made the topic).
    pub(crate) fn cluster_create(&mut self, name: String, config: TopicConfig, call: Deferred) {
        if let Some(c) = &self.cluster {
            c.send(Job::CreateTopic { name, config, call });
        }
    }

    pub(crate) fn cluster_delete(&mut self, name: String, call: Deferred) {
        if let Some(c) = &self.cluster {
            c.send(Job::DeleteTopic { name, call });
        }
    }

    /// `ClusterStatus`: the controller's view plus the replica lag of the
    /// partitions this node leads.
    pub fn cluster_status(&mut self, call: Deferred) -> Result<(), Vec<u8>> {
        let Some(c) = &self.cluster else {
            return Err(encode_result::<String>(&Err(BrokerError::Cluster(
                "this broker is not in a cluster".into(),
            ))));
        };
        let mut lags = Vec::new();
        for (name, t) in self.topics.iter() {
            for (i, p) in t.partitions.iter().enumerate() {
                if let Some(l) = p.replica.leadership() {
                    let leo = p.end_offset();
                    let mut replicas = vec![(c.cfg.node_id, Some(0))];
                    replicas.extend(
                        l.followers
                            .iter()
                            .map(|(id, f)| (*id, f.leo.map(|x| leo.saturating_sub(x)))),
                    );
                    lags.push(ReplicaLag {
                        topic: name.clone(),
                        partition: i as u32,
                        leader_epoch: l.epoch,
                        log_end: leo,
                        high_watermark: p.high_watermark(),
                        replicas,
                    });
                }
            }
        }
        c.send(Job::Status { call, lags });
        Ok(())
    }

    /// `Metadata`: partition leaders and broker addresses (on a single-node
    /// broker: every partition, no leader ids — use this broker).
    pub fn metadata(&self, req: &MetadataRequest) -> Metadata {
        let wanted = |n: &str| req.topics.is_empty() || req.topics.iter().any(|t| t == n);
        let Some(c) = &self.cluster else {
            let topics = self
                .topics
                .iter()
                .filter(|(n, _)| wanted(n))
                .map(|(n, t)| TopicLeaders {
                    name: n.clone(),
                    partitions: (0..t.partitions.len() as u32)
                        .map(|p| PartitionLeader {
                            partition: p,
                            leader: None,
                            leader_epoch: 0,
                            replicas: Vec::new(),
                            isr: Vec::new(),
                        })
                        .collect(),
                })
                .collect();
            return Metadata {
                node_id: None,
                brokers: Vec::new(),
                topics,
            };
        };
        let meta = c.control.meta();
        // Not caught up since a restart: name no leaders (clients retry)
        // rather than those of a possibly stale replayed image.
        let current = c.control.caught_up();
        Metadata {
            node_id: Some(c.cfg.node_id),
            brokers: meta
                .brokers
                .values()
                .map(|b| BrokerAddr {
                    id: b.id,
                    addr: b.addr.clone(),
                    fenced: b.fenced,
                })
                .collect(),
            topics: meta
                .topics
                .iter()
                .filter(|(n, _)| wanted(n))
                .map(|(n, t)| TopicLeaders {
                    name: n.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .enumerate()
                        .map(|(i, s)| PartitionLeader {
                            partition: i as u32,
                            leader: s.leader.filter(|_| current),
                            leader_epoch: s.leader_epoch,
                            replicas: s.replicas.clone(),
                            isr: s.isr.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The leader a partition's metadata names, for a not-leader error.
    pub(crate) fn known_leader(&self, topic: &str, partition: u32) -> Option<NodeId> {
        let c = self.cluster.as_ref()?;
        if !c.control.caught_up() {
            return None;
        }
        let meta = c.control.meta();
        meta.topics
            .get(topic)?
            .partitions
            .get(partition as usize)?
            .leader
    }

    /// A follower's fetch: answered now when any partition has data, a
    /// divergence or an error; else held up to its wait.
    pub fn replica_fetch(
        &mut self,
        body: &[u8],
        call: impl FnOnce() -> Deferred,
    ) -> Result<Option<FetchReply>, Vec<u8>> {
        let req = decode_request::<ReplicaFetch>(body, "ReplicaFetch")
            .and_then(|r| match self.cluster.is_some() {
                true => Ok(r),
                false => Err(BrokerError::Cluster(
                    "this broker is not in a cluster".into(),
                )),
            })
            .map_err(|e| encode_result::<ReplicaFetchHead>(&Err(e)))?;
        let now_only = req.max_wait_ms == 0;
        match self.gather_replica(&req, now_only, Instant::now()) {
            Some(r) => Ok(Some(r)),
            None => {
                let deadline =
                    Instant::now() + Duration::from_millis(req.max_wait_ms.min(5_000) as u64);
                let call = call();
                if let Some(c) = &mut self.cluster {
                    c.held.push(HeldReplicaFetch {
                        call,
                        req,
                        deadline,
                    });
                }
                Ok(None)
            }
        }
    }

    fn gather_replica(
        &mut self,
        req: &ReplicaFetch,
        must_answer: bool,
        now: Instant,
    ) -> Option<FetchReply> {
        let me = self.node_id()?;
        let mut parts = Vec::with_capacity(req.partitions.len());
        let mut views = Vec::new();
        let mut total = 0usize;
        let mut answer_now = must_answer;
        let mut hw_moved = false;
        for fp in &req.partitions {
            let mut entry = ReplicaFetched {
                error: None,
                diverging: None,
                high_watermark: 0,
                log_start: 0,
                len: 0,
            };
            let res = self.topics.partition_mut(&fp.topic, fp.partition).and_then(|p| {
                let epoch = p.replica.leader_epoch();
                match &p.replica.role {
                    Role::Leader(_) if fp.leader_epoch == epoch => {}
                    Role::Leader(_) if fp.leader_epoch < epoch => {
                        return Err(BrokerError::StaleLeaderEpoch {
                            topic: fp.topic.clone(),
                            partition: fp.partition,
                            current: epoch,
                            got: fp.leader_epoch,
                        })
                    }
                    _ => {
                        // The leader hint is looked up below, on this error
                        // path only: not per partition of every fetch.
                        return Err(BrokerError::NotLeader {
                            topic: fp.topic.clone(),
                            partition: fp.partition,
                            leader: None,
                        })
                    }
                }
                let leo = p.end_offset();
                if let Some(d) = p.replica.on_fetch(req.replica, fp.offset, fp.last_fetched_epoch, leo, now) {
                    tracing::debug!(topic = %fp.topic, partition = fp.partition, replica = req.replica, offset = fp.offset, last_epoch = ?fp.last_fetched_epoch, diverging = ?d, "follower diverges");
                    return Ok((Some(d), None));
                }
                if p.replica.advance_hw(me, leo) {
                    hw_moved = true;
                    tracing::trace!(topic = %fp.topic, partition = fp.partition, hw = p.high_watermark(), replica = req.replica, "high watermark moved");
                }
                let r = p.reader();
                let left = (req.max_bytes as usize).saturating_sub(total);
                let view = if fp.offset >= leo || (left == 0 && total > 0) {
                    None
                } else {
                    Some(r.fetch(fp.offset, left.max(1))?)
                };
                Ok((None, view))
            });
            match res {
                Ok((div, view)) => {
                    let p = self.topics.partition(&fp.topic, fp.partition).ok();
                    entry.high_watermark = p.map_or(0, |p| p.high_watermark());
                    entry.log_start = p.map_or(0, |p| p.reader().start_offset());
                    if div.is_some() {
                        answer_now = true;
                        entry.diverging = div;
                    }
                    if let Some(v) = view.filter(|v| !v.is_empty()) {
                        entry.len = v.bytes().len() as u32;
                        total += v.bytes().len();
                        answer_now = true;
                        views.push(v);
                    }
                }
                Err(mut e) => {
                    answer_now = true;
                    if let BrokerError::NotLeader { leader, .. } = &mut e {
                        *leader = self.known_leader(&fp.topic, fp.partition);
                    }
                    entry.error = Some(e);
                }
            }
            parts.push(entry);
        }
        if hw_moved {
            self.note_visible();
        }
        if !answer_now {
            return None;
        }
        let head = encode_result(&Ok(ReplicaFetchHead { partitions: parts }));
        Some(FetchReply { head, views })
    }

    /// Cluster upkeep for [`Broker::tick`]: roles from new metadata, held
    /// replica fetches, high watermarks, ISR changes, fetchers.
    pub(crate) fn cluster_tick(&mut self, now: Instant, out: &mut Vec<(Deferred, Vec<u8>)>) {
        let Some(c) = &mut self.cluster else { return };
        out.append(&mut c.done.lock().unwrap_or_else(|p| p.into_inner()));
        let version = c.control.meta_version();
        if version != c.seen_version && c.control.caught_up() {
            c.seen_version = version;
            let meta = c.control.meta();
            self.reconcile(&meta, now);
        }
        let Some(c) = &mut self.cluster else { return };
        if !c.held.is_empty() {
            let held = std::mem::take(&mut c.held);
            let mut keep = Vec::new();
            for h in held {
                let due = now >= h.deadline;
                match self.gather_replica(&h.req, due, now) {
                    Some(reply) => out.push((h.call, reply.to_vec())),
                    None => keep.push(h),
                }
            }
            if let Some(c) = &mut self.cluster {
                c.held.extend(keep);
            }
        }
        let Some(c) = &mut self.cluster else { return };
        if now.duration_since(c.last_upkeep) < UPKEEP {
            return;
        }
        c.last_upkeep = now;
        self.upkeep(now);
    }

    /// Leaders: high watermark and wanted ISR; followers: a fetcher per leader.
    fn upkeep(&mut self, now: Instant) {
        let Some(c) = &self.cluster else { return };
        let (me, lag_max) = (c.cfg.node_id, c.cfg.replica_lag_max);
        let mut jobs = Vec::new();
        let mut leaders = BTreeSet::new();
        let mut moved = false;
        let meta = c.control.meta();
        for (name, t) in self.topics.iter_mut() {
            for (i, p) in t.partitions.iter_mut().enumerate() {
                let leo = p.end_offset();
                moved |= p.replica.advance_hw(me, leo);
                if let Role::Follower { leader, .. } = p.replica.role {
                    leaders.insert(leader);
                }
                let eligible = |r: NodeId| meta.brokers.get(&r).is_some_and(|b| !b.fenced);
                if let Some(isr) = p.replica.wanted_isr(me, now, lag_max, eligible) {
                    let Some(state) = meta.topics.get(name).and_then(|t| t.partitions.get(i))
                    else {
                        continue;
                    };
                    p.replica.mark_alter_sent(now);
                    jobs.push(Job::AlterIsr {
                        topic: name.clone(),
                        partition: i as u32,
                        state: state.clone(),
                        leader: me,
                        isr,
                    });
                }
            }
        }
        if moved {
            self.note_visible();
        }
        let Some(c) = &mut self.cluster else { return };
        for j in jobs {
            c.send(j);
        }
        c.fetchers.want(&leaders, now);
    }

    /// Gives each partition the role the metadata says; makes topics the
    /// metadata names and removes those it no longer does.
    fn reconcile(&mut self, meta: &ClusterMeta, now: Instant) {
        let Some(me) = self.node_id() else { return };
        for (name, tm) in &meta.topics {
            if self.topics.get(name).is_err() {
                let made = serde_json::from_value::<TopicConfig>(tm.config.clone())
                    .map_err(|e| BrokerError::InvalidConfig(e.to_string()))
                    .and_then(|cfg| self.topics.create(name, cfg))
                    .and_then(|()| {
                        let t = self.topics.iter_mut().find(|(n, _)| *n == name);
                        t.into_iter()
                            .flat_map(|(_, t)| t.partitions.iter_mut())
                            .try_for_each(|p| p.join_cluster())
                    });
                match made {
                    Ok(()) => {
                        tracing::info!(topic = %name, "topic created from the cluster metadata")
                    }
                    Err(e) => {
                        tracing::error!(topic = %name, error = %e, "cannot create a topic the cluster has");
                        continue;
                    }
                }
            }
            for (i, s) in tm.partitions.iter().enumerate() {
                let Ok(p) = self.topics.partition_mut(name, i as u32) else {
                    continue;
                };
                let was_leader = p.replica.leadership().map(|l| l.epoch);
                let r = match s.leader {
                    Some(l) if l == me => {
                        if was_leader == Some(s.leader_epoch) {
                            p.replica.update_isr(s);
                            Ok(())
                        } else {
                            p.set_leader_epoch(s.leader_epoch);
                            let leo = p.end_offset();
                            tracing::info!(topic = %name, partition = i, epoch = s.leader_epoch, log_end = leo, isr = ?s.isr, "leading");
                            p.replica.become_leader(s, leo, now)
                        }
                    }
                    Some(l) if s.replicas.contains(&me) => {
                        if !matches!(p.replica.role, Role::Follower { leader, epoch } if leader == l && epoch == s.leader_epoch)
                        {
                            tracing::info!(topic = %name, partition = i, leader = l, epoch = s.leader_epoch, "following");
                            p.replica.role = Role::Follower {
                                leader: l,
                                epoch: s.leader_epoch,
                            };
                        }
                        Ok(())
                    }
                    _ => {
                        p.replica.role = Role::Offline {
                            epoch: s.leader_epoch,
                        };
                        Ok(())
                    }
                };
                if let Err(e) = r {
                    tracing::error!(topic = %name, partition = i, error = %e, "cannot take the partition's role");
                    p.replica.role = Role::Offline {
                        epoch: s.leader_epoch,
                    };
                }
            }
        }
        let gone: Vec<String> = match &self.cluster {
            Some(c) => c
                .known_topics
                .iter()
                .filter(|n| !meta.topics.contains_key(*n))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        for name in gone {
            match self.topics.delete(&name) {
                Ok(()) => tracing::info!(topic = %name, "topic deleted by the cluster"),
                Err(e) => {
                    tracing::warn!(topic = %name, error = %e, "deleting a topic the cluster dropped")
                }
            }
        }
        if let Some(c) = &mut self.cluster {
            c.known_topics = meta.topics.keys().cloned().collect();
        }
        self.fail_acks_not_led();
    }
}

/// Creates a topic from a thread off the poll loop (the Kafka listener's):
/// in a cluster through the controller quorum — blocking up to the
/// controller timeout, then until this node has made it — else locally.
pub fn create_topic_blocking(
    broker: &Mutex<Broker>,
    req: &crate::protocol::CreateTopic,
) -> Result<TopicConfig, BrokerError> {
    let (config, control, timeout) = {
        let mut b = crate::service::lock(broker);
        let Some(c) = &b.cluster else {
            return b.create_topic(req);
        };
        let (control, timeout) = (c.control.clone(), c.cfg.controller_timeout);
        crate::topics::validate_name(&req.name)?;
        (b.topic_config_for(req)?, control, timeout)
    };
    control.create_topic(&req.name, &config, timeout)?;
    wait_local(broker, timeout, |b| b.topic_config(&req.name).is_ok());
    Ok(config)
}

/// Deletes a topic like [`create_topic_blocking`] creates one.
pub fn delete_topic_blocking(broker: &Mutex<Broker>, name: &str) -> Result<(), BrokerError> {
    let (control, timeout) = {
        let mut b = crate::service::lock(broker);
        let Some(c) = &b.cluster else {
            return b.delete_topic(name);
        };
        (c.control.clone(), c.cfg.controller_timeout)
    };
    control.delete_topic(name, timeout)?;
    wait_local(broker, timeout, |b| b.topic_config(name).is_err());
    Ok(())
}

/// Waits (bounded) until the poll loop's reconcile made `done` true here.
fn wait_local(broker: &Mutex<Broker>, timeout: Duration, done: impl Fn(&Broker) -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && !done(&crate::service::lock(broker)) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A broker's rank for coordinating `group` (rendezvous hashing): CRC32C of
/// the name, mixed with the broker id by splitmix64. Stable across builds
/// and platforms — every node must compute the same ranks.
pub fn group_rank(group: &str, broker: NodeId) -> u64 {
    let h = u64::from(neo_storage::batch::crc32c_parts(&[group.as_bytes()]));
    let mut z = (h << 32 | h) ^ broker.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod group_rank_tests {
    use super::group_rank;

    fn pick(group: &str, brokers: &[u64]) -> u64 {
        *brokers
            .iter()
            .max_by_key(|&&b| group_rank(group, b))
            .unwrap()
    }

    #[test]
    fn groups_spread_and_a_departure_moves_only_its_own() {
        let names: Vec<String> = (0..3000).map(|i| format!("group-{i}")).collect();
        let mut per = [0usize; 4];
        for n in &names {
            per[pick(n, &[1, 2, 3]) as usize] += 1;
        }
        for b in 1..=3 {
            assert!((700..=1300).contains(&per[b]), "broker {b}: {per:?}");
        }
        // Broker 3 goes: its groups move, every other group stays put.
        for n in &names {
            let before = pick(n, &[1, 2, 3]);
            let after = pick(n, &[1, 2]);
            if before != 3 {
                assert_eq!(before, after, "{n} moved though its broker stayed");
            }
        }
    }

    #[test]
    fn ranks_are_the_same_on_every_build() {
        // Every node must compute the same coordinator: the function is
        // pinned (a change would move every group during a rolling upgrade).
        let crc = u64::from(crc32c::crc32c(b"orders"));
        assert_eq!(
            crc,
            u64::from(neo_storage::batch::crc32c_parts(&[b"orders"]))
        );
        assert_eq!(group_rank("orders", 1), group_rank("orders", 1));
        assert_ne!(group_rank("orders", 1), group_rank("orders", 2));
        assert_eq!(group_rank("orders", 1), PINNED);
    }

    /// `group_rank("orders", 1)` as first computed (2026-12-02).
    const PINNED: u64 = 355_622_308_708_820_348;
}
