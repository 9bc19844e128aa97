//! Consumer groups: membership, generations and rebalances, decided on the
//! broker (assignment is computed here when a rebalance completes, as in
//! Kafka's KIP-848, so clients stay thin).
//!
//! A rebalance starts when a member joins, leaves, or misses its session
//! timeout. Existing members learn of it from their heartbeat
//! (`RebalanceInProgress`), commit what they processed (commits from the
//! current generation are accepted while the group prepares), and rejoin.
//! The rebalance completes when every member has rejoined, or when the
//! rebalance timeout drops those that did not; the generation then advances,
//! the assignor runs, and every held join is answered.

pub mod assign;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use neo_transports::rpc::Deferred;

use crate::protocol::{
    Assignment, Assignor, BrokerError, GroupDescription, JoinGroup, Joined, MemberDescription,
    MemberRef,
};
use assign::Plan;

/// Bounds on what a member may ask for.
pub const SESSION_TIMEOUT_MS: std::ops::RangeInclusive<u32> = 100..=300_000;
pub const REBALANCE_TIMEOUT_MS: std::ops::RangeInclusive<u32> = 100..=600_000;
/// Most members in one group.
pub const MAX_MEMBERS: usize = 1000;
/// Most topics one member may subscribe to.
pub const MAX_TOPICS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Empty,
    Preparing { deadline: Instant },
    Stable,
}

struct Member {
    topics: Vec<String>,
    assignor: Assignor,
    session: Duration,
    rebalance: Duration,
    last_seen: Instant,
    rejoined: bool,
}

/// A held join and the member it is for.
type HeldJoin = (String, Deferred);

/// One group's membership.
pub struct Group {
    name: String,
    state: State,
    generation: i32,
    assignor: Option<Assignor>,
    members: BTreeMap<String, Member>,
    held: Vec<HeldJoin>,
    plan: Plan,
    next_member: u64,
}

/// An answer for a held join, ready to send.
pub type Completion = (Deferred, Result<Joined, BrokerError>);

/// The outcome of a join: answered now, or held until the rebalance completes.
pub enum JoinOutcome {
    Held,
    Now(Result<Joined, BrokerError>, Deferred),
}

impl Group {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            state: State::Empty,
            generation: 0,
            assignor: None,
            members: BTreeMap::new(),
            held: Vec::new(),
            plan: Plan::new(),
            next_member: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Joins are held, waiting for the rebalance.
    pub fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Topics some member subscribes to.
    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self
            .members
            .values()
            .flat_map(|m| m.topics.clone())
            .collect();
        t.sort();
        t.dedup();
        t
    }

    fn start_rebalance(&mut self, now: Instant) {
        if self.members.is_empty() {
            self.state = State::Empty;
            return;
        }
        if !matches!(self.state, State::Preparing { .. }) {
            let longest = self
                .members
                .values()
                .map(|m| m.rebalance)
                .max()
                .unwrap_or_default();
            self.state = State::Preparing {
                deadline: now + longest,
            };
            for m in self.members.values_mut() {
                m.rejoined = false;
            }
        }
    }

    /// Handles a join; `partitions` gives topic → partition count.
    pub fn join(
        &mut self,
        req: &JoinGroup,
        call: Deferred,
        now: Instant,
        partitions: &dyn Fn(&str) -> Option<u32>,
        out: &mut Vec<Completion>,
    ) -> JoinOutcome {
        if !SESSION_TIMEOUT_MS.contains(&req.session_timeout_ms)
            || !REBALANCE_TIMEOUT_MS.contains(&req.rebalance_timeout_ms)
        {
            let why = format!(
                "session timeout must be {SESSION_TIMEOUT_MS:?} ms and rebalance timeout {REBALANCE_TIMEOUT_MS:?} ms"
            );
            return JoinOutcome::Now(Err(BrokerError::InvalidRequest(why)), call);
        }
        if req.topics.is_empty() || req.topics.len() > MAX_TOPICS {
            let why = format!("a member subscribes to 1..={MAX_TOPICS} topics");
            return JoinOutcome::Now(Err(BrokerError::InvalidRequest(why)), call);
        }
        let id = if req.member_id.is_empty() {
            if self.members.len() >= MAX_MEMBERS {
                let why = format!("group `{}` already has {MAX_MEMBERS} members", self.name);
                return JoinOutcome::Now(Err(BrokerError::InvalidRequest(why)), call);
            }
            self.next_member += 1;
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            format!("member-{}-{nanos:08x}", self.next_member)
        } else if self.members.contains_key(&req.member_id) {
            req.member_id.clone()
        } else {
            return JoinOutcome::Now(Err(BrokerError::UnknownMember(req.member_id.clone())), call);
        };
        self.start_rebalance_with(&id, req, now);
        // A member that joins again while held: the older join is answered.
        if let Some(i) = self.held.iter().position(|(m, _)| *m == id) {
            let (_, old) = self.held.swap_remove(i);
            out.push((old, Err(BrokerError::RebalanceInProgress)));
        }
        self.held.push((id, call));
        self.try_complete(now, partitions, out);
        JoinOutcome::Held
    }

    fn start_rebalance_with(&mut self, id: &str, req: &JoinGroup, now: Instant) {
        let member = Member {
            topics: req.topics.clone(),
            assignor: req.assignor,
            session: Duration::from_millis(req.session_timeout_ms as u64),
            rebalance: Duration::from_millis(req.rebalance_timeout_ms as u64),
            last_seen: now,
            rejoined: false,
        };
        self.members.insert(id.to_string(), member);
        self.start_rebalance(now);
        if let Some(m) = self.members.get_mut(id) {
            m.rejoined = true;
        }
    }

    fn try_complete(
        &mut self,
        now: Instant,
        partitions: &dyn Fn(&str) -> Option<u32>,
        out: &mut Vec<Completion>,
    ) {
        let State::Preparing { deadline } = self.state else {
            return;
        };
        if now >= deadline {
            let gone: Vec<String> = self
                .members
                .iter()
                .filter(|(_, m)| !m.rejoined)
                .map(|(id, _)| id.clone())
                .collect();
            for id in gone {
                tracing::info!(group = %self.name, member = %id, "member did not rejoin within the rebalance timeout; removed");
                self.members.remove(&id);
            }
        }
        if !self.members.values().all(|m| m.rejoined) {
            return;
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.plan.clear();
            return;
        }
        self.state = State::Stable;
        let assignor = self
            .members
            .values()
            .next()
            .map_or(Assignor::Range, |m| m.assignor);
        self.assignor = Some(assignor);
        let subs: BTreeMap<String, Vec<String>> = self
            .members
            .iter()
            .map(|(id, m)| (id.clone(), m.topics.clone()))
            .collect();
        let counts: BTreeMap<String, u32> = self
            .topics()
            .into_iter()
            .filter_map(|t| partitions(&t).map(|n| (t, n)))
            .collect();
        self.plan = assign::assign(assignor, &subs, &counts, &self.plan);
        let members: Vec<String> = self.members.keys().cloned().collect();
        for m in self.members.values_mut() {
            m.last_seen = now;
        }
        tracing::info!(group = %self.name, generation = self.generation, members = members.len(), ?assignor, "rebalance complete");
        for (id, call) in self.held.drain(..) {
            let joined = Joined {
                generation: self.generation,
                member_id: id,
                members: members.clone(),
            };
            out.push((call, Ok(joined)));
        }
    }

    /// Expires sessions and rebalance deadlines.
    pub fn tick(
        &mut self,
        now: Instant,
        partitions: &dyn Fn(&str) -> Option<u32>,
        out: &mut Vec<Completion>,
    ) {
        let held: Vec<&String> = self.held.iter().map(|(m, _)| m).collect();
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(id, m)| !held.contains(id) && now.duration_since(m.last_seen) > m.session)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.name, member = %id, "session timed out; rebalancing");
            self.members.remove(id);
        }
        if !expired.is_empty() {
            self.start_rebalance(now);
        }
        self.try_complete(now, partitions, out);
    }

    fn member(&mut self, m: &MemberRef) -> Result<&mut Member, BrokerError> {
        self.members
            .get_mut(&m.member_id)
            .ok_or_else(|| BrokerError::UnknownMember(m.member_id.clone()))
    }

    fn check_generation(&self, got: i32) -> Result<(), BrokerError> {
        if got != self.generation {
            return Err(BrokerError::IllegalGeneration {
                current: self.generation,
                got,
            });
        }
        Ok(())
    }

    /// The member's partitions in the current generation.
    pub fn sync(&mut self, m: &MemberRef, now: Instant) -> Result<Assignment, BrokerError> {
        self.member(m)?.last_seen = now;
        if matches!(self.state, State::Preparing { .. }) {
            return Err(BrokerError::RebalanceInProgress);
        }
        self.check_generation(m.generation)?;
        Ok(Assignment {
            generation: self.generation,
            partitions: self
                .plan
                .get(&m.member_id)
                .map(assign::to_wire)
                .unwrap_or_default(),
        })
    }

    pub fn heartbeat(&mut self, m: &MemberRef, now: Instant) -> Result<(), BrokerError> {
        self.member(m)?.last_seen = now;
        if matches!(self.state, State::Preparing { .. }) {
            return Err(BrokerError::RebalanceInProgress);
        }
        self.check_generation(m.generation)
    }

    pub fn leave(
        &mut self,
        m: &MemberRef,
        now: Instant,
        partitions: &dyn Fn(&str) -> Option<u32>,
        out: &mut Vec<Completion>,
    ) -> Result<(), BrokerError> {
        if self.members.remove(&m.member_id).is_none() {
            return Err(BrokerError::UnknownMember(m.member_id.clone()));
        }
        if let Some(i) = self.held.iter().position(|(id, _)| *id == m.member_id) {
            let (_, call) = self.held.swap_remove(i);
            out.push((call, Err(BrokerError::UnknownMember(m.member_id.clone()))));
        }
        tracing::info!(group = %self.name, member = %m.member_id, "member left");
        self.plan.remove(&m.member_id);
        self.start_rebalance(now);
        self.try_complete(now, partitions, out);
        Ok(())
    }

    /// Whether an offset commit from `m` is accepted: a current member in the
    /// current generation (also while the group prepares a rebalance), or a
    /// client outside group management while the group has no members.
    pub fn may_commit(&self, m: &MemberRef) -> Result<(), BrokerError> {
        if m.member_id.is_empty() && m.generation < 0 {
            return match self.members.is_empty() {
                true => Ok(()),
                false => Err(BrokerError::IllegalGeneration {
                    current: self.generation,
                    got: m.generation,
                }),
            };
        }
        if !self.members.contains_key(&m.member_id) {
            return Err(BrokerError::UnknownMember(m.member_id.clone()));
        }
        self.check_generation(m.generation)
    }

    pub fn describe(&self) -> GroupDescription {
        GroupDescription {
            group: self.name.clone(),
            state: match self.state {
                State::Empty => "Empty",
                State::Preparing { .. } => "PreparingRebalance",
                State::Stable => "Stable",
            }
            .into(),
            generation: self.generation,
            assignor: self.assignor,
            members: self
                .members
                .keys()
                .map(|id| MemberDescription {
                    member_id: id.clone(),
                    assignment: self.plan.get(id).map(assign::to_wire).unwrap_or_default(),
                })
                .collect(),
            offsets: Vec::new(),
        }
    }
}
