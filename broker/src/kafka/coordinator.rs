//! Kafka's classic consumer-group protocol for Kafka clients: members join
//! with the assignors they support, the coordinator picks one both sides
//! know and a leader, the leader computes the assignment and hands it back
//! in its SyncGroup, and every member gets its share from its own SyncGroup.
//!
//! States as Kafka's: `Empty` → `Preparing` (a rebalance: members must
//! rejoin; completes when all have, or at the rebalance deadline without
//! the missing) → `Completing` (waiting for the leader's SyncGroup) →
//! `Stable`. A member silent past its session timeout is removed. Committed
//! offsets go to the broker's offsets log (so `neo groups` shows them; in a
//! cluster, to the controller quorum: `replication::offsets`); the
//! membership here is separate from Neo's broker-side-assigned groups.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::{error_code, Ctx, MAX_WAIT};
use crate::kafka_batch::code::*;
use crate::protocol::{CommittedOffset, FetchOffsets, TopicPartitions};
use crate::security::{Operation, ResourceType};

/// Session timeouts accepted (Kafka's group.min/max.session.timeout.ms is
/// 6 s..30 min; the floor is lower here so tests can expire members fast).
const SESSION_RANGE: std::ops::RangeInclusive<i32> = 1_000..=1_800_000;
/// How often a waiting join or sync looks at the clock.
const WAIT_TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    Preparing,
    Completing,
    Stable,
}

struct Member {
    instance_id: Option<StrBytes>,
    /// The client id and host of its last join, for DescribeGroups.
    client_id: String,
    client_host: String,
    session: Duration,
    rebalance: Duration,
    protocols: Vec<(StrBytes, Bytes)>,
    last_seen: Instant,
    /// Has joined the rebalance in progress.
    joined: bool,
    /// Requests of this member now waiting (a waiting member is alive).
    waiting: u32,
    join_result: Option<JoinGroupResponse>,
    assignment: Bytes,
}

struct Group {
    state: State,
    generation: i32,
    protocol_type: StrBytes,
    protocol: Option<StrBytes>,
    leader: Option<StrBytes>,
    members: BTreeMap<StrBytes, Member>,
    earliest: Instant,
    deadline: Instant,
}

#[derive(Default)]
struct Groups {
    map: HashMap<String, Group>,
    next_member: u64,
}

/// Every Kafka group of this broker.
pub struct Coordinator {
    groups: Mutex<Groups>,
    changed: Condvar,
    initial_delay: Duration,
    /// Makes member ids unique across broker restarts: a client still
    /// holding an id from before a restart is never taken for a new member.
    incarnation: u64,
}

impl Group {
    fn new(now: Instant) -> Self {
        Self {
            state: State::Empty,
            generation: 0,
            protocol_type: StrBytes::default(),
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            earliest: now,
            deadline: now,
        }
    }

    /// Starts a rebalance: every member must join again.
    fn prepare(&mut self, now: Instant, delay: Duration) {
        if self.state == State::Preparing {
            return;
        }
        self.state = State::Preparing;
        self.earliest = now + delay;
        let longest = self.members.values().map(|m| m.rebalance).max();
        self.deadline = now + longest.unwrap_or(Duration::ZERO).max(delay);
        for m in self.members.values_mut() {
            m.joined = false;
            m.join_result = None;
        }
    }

    /// Ends the rebalance when everyone has joined, or at the deadline
    /// without those who did not.
    fn try_complete(&mut self, now: Instant) {
        if self.state != State::Preparing {
            return;
        }
        let all = self.members.values().all(|m| m.joined);
        if !((all && now >= self.earliest) || now >= self.deadline) {
            return;
        }
        self.members.retain(|_, m| m.joined);
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.leader = None;
            return;
        }
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        let leader = self.leader.clone().unwrap_or_default();
        let chosen = self.members[&leader]
            .protocols
            .iter()
            .map(|(n, _)| n)
            .find(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(p, _)| p == *n))
            })
            .cloned();
        self.protocol = chosen.clone();
        self.state = State::Completing;
        let list: Vec<JoinGroupResponseMember> = self
            .members
            .iter()
            .map(|(id, m)| {
                let meta = m
                    .protocols
                    .iter()
                    .find(|(p, _)| Some(p) == chosen.as_ref())
                    .map(|(_, d)| d.clone())
                    .unwrap_or_default();
                JoinGroupResponseMember::default()
                    .with_member_id(id.clone())
                    .with_group_instance_id(m.instance_id.clone())
                    .with_metadata(meta)
            })
            .collect();
        for (id, m) in self.members.iter_mut() {
            m.assignment = Bytes::new();
            let mut r = JoinGroupResponse::default()
                .with_generation_id(self.generation)
                .with_protocol_type(Some(self.protocol_type.clone()))
                .with_protocol_name(chosen.clone())
                .with_leader(leader.clone())
                .with_member_id(id.clone());
            if *id == leader {
                r.members = list.clone();
            }
            m.join_result = Some(r);
        }
    }

    /// Removes members whose session ran out; a change starts a rebalance.
    fn expire(&mut self, now: Instant) {
        let before = self.members.len();
        self.members
            .retain(|_, m| m.waiting > 0 || now.duration_since(m.last_seen) <= m.session);
        if self.members.len() != before {
            tracing::info!(
                removed = before - self.members.len(),
                "Kafka group members expired"
            );
            self.after_departure(now);
        }
    }

    fn after_departure(&mut self, now: Instant) {
        if self.members.is_empty() && self.state != State::Preparing {
            self.state = State::Empty;
            self.leader = None;
        } else if matches!(self.state, State::Stable | State::Completing) {
            self.prepare(now, Duration::ZERO);
        }
    }
}

impl Coordinator {
    pub fn new(initial_delay: Duration) -> Self {
        Self {
            groups: Mutex::new(Groups::default()),
            changed: Condvar::new(),
            initial_delay,
            incarnation: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Groups> {
        let mut g = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for group in g.map.values_mut() {
            group.expire(now);
            group.try_complete(now);
        }
        g.map
            .retain(|_, gr| gr.state != State::Empty || !gr.members.is_empty());
        g
    }

    /// Waits for a change (or a tick), then re-checks the clocks.
    fn wait<'a>(&'a self, g: MutexGuard<'a, Groups>) -> MutexGuard<'a, Groups> {
        let (mut g, _) = self
            .changed
            .wait_timeout(g, WAIT_TICK)
            .unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        for group in g.map.values_mut() {
            group.expire(now);
            if group.state == State::Preparing {
                group.try_complete(now);
                if group.state != State::Preparing {
                    self.changed.notify_all();
                }
            }
        }
        g
    }
}

/// What DescribeGroups and ListGroups show of a group.
pub(super) struct GroupView {
    pub name: String,
    /// Kafka's name of the state: `Empty`, `PreparingRebalance`,
    /// `CompletingRebalance`, `Stable`.
    pub state: &'static str,
    pub protocol_type: StrBytes,
    /// The chosen protocol (assignor), empty before one is chosen.
    pub protocol: StrBytes,
    pub members: Vec<MemberView>,
}

pub(super) struct MemberView {
    pub id: StrBytes,
    pub instance_id: Option<StrBytes>,
    pub client_id: String,
    pub client_host: String,
    /// The member's metadata for the chosen protocol.
    pub metadata: Bytes,
    pub assignment: Bytes,
}

impl Coordinator {
    /// Every group with members, as DescribeGroups and ListGroups show it.
    pub(super) fn views(&self) -> Vec<GroupView> {
        let g = self.lock();
        g.map
            .iter()
            .map(|(name, gr)| {
                let protocol = gr.protocol.clone().unwrap_or_default();
                GroupView {
                    name: name.clone(),
                    state: match gr.state {
                        State::Empty => "Empty",
                        State::Preparing => "PreparingRebalance",
                        State::Completing => "CompletingRebalance",
                        State::Stable => "Stable",
                    },
                    protocol_type: gr.protocol_type.clone(),
                    members: gr
                        .members
                        .iter()
                        .map(|(id, m)| MemberView {
                            id: id.clone(),
                            instance_id: m.instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            metadata: m
                                .protocols
                                .iter()
                                .find(|(n, _)| *n == protocol)
                                .map(|(_, b)| b.clone())
                                .unwrap_or_default(),
                            assignment: m.assignment.clone(),
                        })
                        .collect(),
                    protocol,
                }
            })
            .collect()
    }
}

fn join_error(code: i16, member: StrBytes) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code)
        .with_generation_id(-1)
        .with_member_id(member)
}

/// Why a group request is refused before it is looked at, if it is: this
/// broker does not coordinate `group` (in a cluster each group has one
/// coordinator, see `Broker::group_coordinator`; clients ask
/// FindCoordinator again),
/// or the connection's principal may not use `group` (Read, as Kafka asks
/// of every group request but OffsetFetch and FindCoordinator).
pub(super) fn group_gate(ctx: &Ctx<'_>, group: &str, op: Operation) -> Option<i16> {
    if !ctx.shared.broker().is_group_coordinator(group) {
        return Some(NOT_COORDINATOR);
    }
    (!ctx.allowed(op, ResourceType::Group, group)).then_some(GROUP_AUTHORIZATION_FAILED)
}

pub fn join_group(ctx: &Ctx<'_>, r: JoinGroupRequest) -> JoinGroupResponse {
    let c = &ctx.shared.groups;
    let name = r.group_id.0.to_string();
    if name.is_empty() {
        return join_error(INVALID_GROUP_ID, r.member_id);
    }
    if let Some(code) = group_gate(ctx, &name, Operation::Read) {
        return join_error(code, r.member_id);
    }
    if !SESSION_RANGE.contains(&r.session_timeout_ms) {
        return join_error(INVALID_SESSION_TIMEOUT, r.member_id);
    }
    if r.protocols.is_empty() || r.protocol_type.is_empty() {
        return join_error(INCONSISTENT_GROUP_PROTOCOL, r.member_id);
    }
    let now = Instant::now();
    let mut g = c.lock();
    let next = g.next_member;
    let group = g.map.entry(name.clone()).or_insert_with(|| Group::new(now));
    if !group.members.is_empty() {
        let common = r.protocols.iter().any(|p| {
            group
                .members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| *n == p.name))
        });
        if group.protocol_type != r.protocol_type || !common {
            return join_error(INCONSISTENT_GROUP_PROTOCOL, r.member_id);
        }
    }
    let id = if r.member_id.is_empty() {
        StrBytes::from_string(format!("{}-{:x}-{next}", ctx.client_id, c.incarnation))
    } else if group.members.contains_key(&r.member_id) {
        r.member_id.clone()
    } else {
        return join_error(UNKNOWN_MEMBER_ID, r.member_id);
    };
    let rebalance = Duration::from_millis(r.rebalance_timeout_ms.max(r.session_timeout_ms) as u64)
        .min(MAX_WAIT * 10);
    let first = group.members.is_empty();
    group.protocol_type = r.protocol_type.clone();
    let delay = if first && group.state == State::Empty {
        c.initial_delay
    } else {
        Duration::ZERO
    };
    group.prepare(now, delay);
    let m = group.members.entry(id.clone()).or_insert_with(|| Member {
        instance_id: r.group_instance_id.clone(),
        client_id: String::new(),
        client_host: String::new(),
        session: Duration::ZERO,
        rebalance,
        protocols: Vec::new(),
        last_seen: now,
        joined: false,
        waiting: 0,
        join_result: None,
        assignment: Bytes::new(),
    });
    m.session = Duration::from_millis(r.session_timeout_ms as u64);
    m.rebalance = rebalance;
    m.client_id = ctx.client_id.clone();
    // Kafka shows the host as `/<ip>`.
    m.client_host = format!("/{}", ctx.peer.ip());
    m.protocols = r
        .protocols
        .iter()
        .map(|p| (p.name.clone(), p.metadata.clone()))
        .collect();
    m.last_seen = now;
    m.joined = true;
    m.waiting += 1;
    g.next_member += 1;
    c.changed.notify_all();
    loop {
        let group = g.map.get_mut(&name);
        let Some(m) = group.and_then(|gr| gr.members.get_mut(&id)) else {
            return join_error(UNKNOWN_MEMBER_ID, id);
        };
        if let Some(res) = m.join_result.take() {
            m.waiting -= 1;
            m.last_seen = Instant::now();
            return res;
        }
        if ctx.shared.stop.load(std::sync::atomic::Ordering::Relaxed) {
            m.waiting -= 1;
            return join_error(REBALANCE_IN_PROGRESS, id);
        }
        g = c.wait(g);
    }
}

fn sync_error(code: i16) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(code)
}

pub fn sync_group(ctx: &Ctx<'_>, r: SyncGroupRequest) -> SyncGroupResponse {
    let c = &ctx.shared.groups;
    let name = r.group_id.0.to_string();
    if let Some(code) = group_gate(ctx, &name, Operation::Read) {
        return sync_error(code);
    }
    let mut g = c.lock();
    let Some(group) = g.map.get_mut(&name) else {
        return sync_error(UNKNOWN_MEMBER_ID);
    };
    let Some(m) = group.members.get_mut(&r.member_id) else {
        return sync_error(UNKNOWN_MEMBER_ID);
    };
    m.last_seen = Instant::now();
    if r.generation_id != group.generation {
        return sync_error(ILLEGAL_GENERATION);
    }
    if group.state == State::Preparing {
        return sync_error(REBALANCE_IN_PROGRESS);
    }
    if group.state == State::Completing && group.leader.as_ref() == Some(&r.member_id) {
        for a in &r.assignments {
            if let Some(m) = group.members.get_mut(&a.member_id) {
                m.assignment = a.assignment.clone();
            }
        }
        group.state = State::Stable;
        c.changed.notify_all();
    }
    let generation = group.generation;
    if let Some(m) = group.members.get_mut(&r.member_id) {
        m.waiting += 1;
    }
    loop {
        let group = g.map.get_mut(&name);
        let Some(group) = group.filter(|gr| gr.generation == generation) else {
            return sync_error(REBALANCE_IN_PROGRESS);
        };
        let state = group.state;
        let protocol = group.protocol.clone();
        let ptype = group.protocol_type.clone();
        let Some(m) = group.members.get_mut(&r.member_id) else {
            return sync_error(UNKNOWN_MEMBER_ID);
        };
        let stop = ctx.shared.stop.load(std::sync::atomic::Ordering::Relaxed);
        if state != State::Completing || stop {
            m.waiting -= 1;
            m.last_seen = Instant::now();
            if state != State::Stable {
                return sync_error(REBALANCE_IN_PROGRESS);
            }
            return SyncGroupResponse::default()
                .with_protocol_type(Some(ptype))
                .with_protocol_name(protocol)
                .with_assignment(m.assignment.clone());
        }
        g = c.wait(g);
    }
}

pub fn heartbeat(ctx: &Ctx<'_>, r: HeartbeatRequest) -> HeartbeatResponse {
    if let Some(code) = group_gate(ctx, r.group_id.0.as_str(), Operation::Read) {
        return HeartbeatResponse::default().with_error_code(code);
    }
    let mut g = ctx.shared.groups.lock();
    let code = match g
        .map
        .get_mut(r.group_id.0.as_str())
        .and_then(|gr| Some((gr.state, gr.generation, gr.members.get_mut(&r.member_id)?)))
    {
        None => UNKNOWN_MEMBER_ID,
        Some((state, generation, m)) => {
            m.last_seen = Instant::now();
            if state == State::Preparing {
                REBALANCE_IN_PROGRESS
            } else if generation != r.generation_id {
                ILLEGAL_GENERATION
            } else {
                0
            }
        }
    };
    HeartbeatResponse::default().with_error_code(code)
}

pub fn leave_group(ctx: &Ctx<'_>, r: LeaveGroupRequest) -> LeaveGroupResponse {
    let c = &ctx.shared.groups;
    let leaving: Vec<StrBytes> = if ctx.version >= 3 {
        r.members.iter().map(|m| m.member_id.clone()).collect()
    } else {
        vec![r.member_id.clone()]
    };
    let mut resp = LeaveGroupResponse::default();
    if let Some(code) = group_gate(ctx, r.group_id.0.as_str(), Operation::Read) {
        resp.error_code = code;
        return resp;
    }
    let mut g = c.lock();
    let group = g.map.get_mut(r.group_id.0.as_str());
    let Some(group) = group else {
        resp.error_code = UNKNOWN_MEMBER_ID;
        return resp;
    };
    let mut codes = Vec::new();
    for id in &leaving {
        let code = match group.members.remove(id) {
            Some(_) => 0,
            None => UNKNOWN_MEMBER_ID,
        };
        codes.push(code);
    }
    group.after_departure(Instant::now());
    group.try_complete(Instant::now());
    c.changed.notify_all();
    if ctx.version >= 3 {
        resp.members = leaving
            .into_iter()
            .zip(codes)
            .map(|(id, code)| {
                MemberResponse::default()
                    .with_member_id(id)
                    .with_error_code(code)
            })
            .collect();
    } else {
        resp.error_code = codes[0];
    }
    resp
}

/// Checks that a commit comes from the current generation (or, for a
/// simple commit with no member, that the group has no members).
fn may_commit(ctx: &Ctx<'_>, r: &OffsetCommitRequest) -> i16 {
    let mut g = ctx.shared.groups.lock();
    let group = g.map.get_mut(r.group_id.0.as_str());
    let generation = r.generation_id_or_member_epoch;
    if generation < 0 && r.member_id.is_empty() {
        return match group {
            Some(gr) if !gr.members.is_empty() => ILLEGAL_GENERATION,
            _ => 0,
        };
    }
    let Some(group) = group else {
        return UNKNOWN_MEMBER_ID;
    };
    let state = group.state;
    let Some(m) = group.members.get_mut(&r.member_id) else {
        return UNKNOWN_MEMBER_ID;
    };
    m.last_seen = Instant::now();
    if generation != group.generation {
        ILLEGAL_GENERATION
    } else if state == State::Completing {
        REBALANCE_IN_PROGRESS
    } else {
        0
    }
}

pub fn offset_commit(ctx: &Ctx<'_>, r: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = r.group_id.0.to_string();
    let verdict = if group.is_empty() {
        INVALID_GROUP_ID
    } else if let Some(code) = group_gate(ctx, &group, Operation::Read) {
        code
    } else {
        may_commit(ctx, &r)
    };
    let mut codes: Vec<Vec<i16>> = r
        .topics
        .iter()
        .map(|t| {
            let code = match verdict == 0
                && !ctx.allowed(Operation::Read, ResourceType::Topic, t.name.0.as_str())
            {
                true => TOPIC_AUTHORIZATION_FAILED,
                false => verdict,
            };
            vec![code; t.partitions.len()]
        })
        .collect();
    let mut offsets = Vec::new();
    let mut at = Vec::new();
    if verdict == 0 {
        let b = ctx.shared.broker();
        for (ti, t) in r.topics.iter().enumerate() {
            let count = b.partition_count(t.name.0.as_str());
            for (pi, p) in t.partitions.iter().enumerate() {
                if codes[ti][pi] != 0 {
                    continue;
                }
                let exists =
                    count.is_some_and(|n| (0..n as i64).contains(&(p.partition_index as i64)));
                if !exists {
                    codes[ti][pi] = UNKNOWN_TOPIC_OR_PARTITION;
                } else if p.committed_offset < 0 {
                    codes[ti][pi] = INVALID_COMMIT_OFFSET_SIZE;
                } else {
                    offsets.push(CommittedOffset {
                        topic: t.name.0.to_string(),
                        partition: p.partition_index as u32,
                        offset: p.committed_offset as u64,
                        metadata: p
                            .committed_metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default(),
                    });
                    at.push((ti, pi));
                }
            }
        }
    }
    if !offsets.is_empty() && ctx.shared.broker().node_id().is_some() {
        // A cluster: through the controller quorum, answered once applied here.
        let code =
            crate::replication::offsets::commit_blocking(&ctx.shared.broker, &group, &offsets)
                .map_or_else(|e| error_code(&e), |()| 0);
        for (ti, pi) in std::mem::take(&mut at) {
            codes[ti][pi] = code;
        }
    }
    if !offsets.is_empty() && !at.is_empty() {
        let committed = ctx.shared.broker().commit_offsets(&group, &offsets);
        let outcome = committed.and_then(|last| {
            let deadline = Instant::now() + MAX_WAIT;
            let done = ctx
                .shared
                .wait_for(deadline, |b| match b.offsets_durable(last) {
                    Ok(false) => None,
                    other => Some(other),
                });
            match done {
                Some(r) => r.map(drop).map(|_| 0),
                None => Ok(REQUEST_TIMED_OUT),
            }
        });
        let code = outcome.unwrap_or_else(|e| error_code(&e));
        for (ti, pi) in at {
            codes[ti][pi] = code;
        }
    }
    let mut resp = OffsetCommitResponse::default();
    for (t, codes) in r.topics.iter().zip(codes) {
        resp.topics.push(
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .zip(codes)
                        .map(|(p, code)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                ),
        );
    }
    resp
}

/// Committed offsets of one group: (topic, [(partition, offset, metadata)]).
type Committed = BTreeMap<String, Vec<(i32, i64, Option<StrBytes>)>>;

fn committed(
    ctx: &Ctx<'_>,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Committed, i16> {
    if let Some(code) = group_gate(ctx, group, Operation::Describe) {
        return Err(code);
    }
    let partitions = wanted
        .unwrap_or_default()
        .into_iter()
        .map(|(topic, ps)| TopicPartitions {
            topic,
            partitions: ps
                .into_iter()
                .filter_map(|p| u32::try_from(p).ok())
                .collect(),
        })
        .collect();
    let list = ctx
        .shared
        .broker()
        .fetch_offsets(&FetchOffsets {
            group: group.into(),
            partitions,
        })
        .map_err(|e| error_code(&e))?;
    let mut out = Committed::new();
    for o in list {
        out.entry(o.topic).or_default().push((
            o.partition as i32,
            o.committed.map_or(-1, |c| c as i64),
            Some(StrBytes::from_string(o.metadata)),
        ));
    }
    Ok(out)
}

/// Committed offsets as a response's topic list (`$T` topics of `$P`
/// partitions: the v1–7 and v8+ shapes are distinct generated types).
macro_rules! topics_of {
    ($c:expr, $T:ty, $P:ty) => {
        $c.into_iter()
            .map(|(t, ps)| {
                <$T>::default()
                    .with_name(TopicName(StrBytes::from_string(t)))
                    .with_partitions(
                        ps.into_iter()
                            .map(|(p, o, m)| {
                                <$P>::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(o)
                                    .with_committed_leader_epoch(-1)
                                    .with_metadata(m)
                            })
                            .collect(),
                    )
            })
            .collect()
    };
}

pub fn offset_fetch(ctx: &Ctx<'_>, r: OffsetFetchRequest) -> OffsetFetchResponse {
    let mut resp = OffsetFetchResponse::default();
    if ctx.version >= 8 {
        for gr in &r.groups {
            let wanted = gr.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let mut out = OffsetFetchResponseGroup::default().with_group_id(gr.group_id.clone());
            match committed(ctx, gr.group_id.0.as_str(), wanted) {
                Ok(c) => {
                    out.topics =
                        topics_of!(c, OffsetFetchResponseTopics, OffsetFetchResponsePartitions)
                }
                Err(code) => out.error_code = code,
            }
            resp.groups.push(out);
        }
        return resp;
    }
    let wanted = r.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    match committed(ctx, r.group_id.0.as_str(), wanted) {
        Ok(c) => {
            resp.topics = topics_of!(c, OffsetFetchResponseTopic, OffsetFetchResponsePartition)
        }
        Err(code) => resp.error_code = code,
    }
    resp
}
