//! One partition's replication state on one node, free of I/O: its role
//! (leader, follower, offline, or the only replica of a single-node broker),
//! the high watermark, and on a leader each follower's progress — from
//! which it computes the high watermark, finds diverging followers, and
//! decides when the in-sync replica set should shrink or grow.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use neo_cluster::PartitionState;

use super::epochs::EpochCache;
use super::wire::NodeId;
use crate::protocol::BrokerError;

/// A follower as its leader sees it.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Its log end, from its last consistent fetch (`None`: not yet).
    pub leo: Option<u64>,
    /// Last time it had everything the leader had.
    pub caught_up_at: Instant,
    last_fetch_at: Instant,
    /// The leader's log end when that fetch arrived.
    last_fetch_leader_leo: u64,
}

#[derive(Debug, Clone)]
pub struct Leadership {
    pub epoch: u32,
    pub partition_epoch: u32,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub followers: BTreeMap<NodeId, Progress>,
    /// Where this epoch's first batch goes (the log end on election).
    pub epoch_start: u64,
    /// An ISR change sent to the controller and not yet answered.
    pub alter_sent: Option<Instant>,
}

#[derive(Debug, Clone)]
pub enum Role {
    /// The only replica (a broker without a cluster): the log end is committed.
    Single,
    Leader(Leadership),
    Follower {
        leader: NodeId,
        epoch: u32,
    },
    /// No leader, or this node no longer holds a replica.
    Offline {
        epoch: u32,
    },
}

#[derive(Debug)]
pub struct Replica {
    pub role: Role,
    /// Records below it are on every in-sync replica; consumers read only
    /// below it. Never goes back.
    hw: u64,
    pub epochs: EpochCache,
}

impl Replica {
    pub fn single() -> Self {
        Self {
            role: Role::Single,
            hw: 0,
            epochs: EpochCache::memory(),
        }
    }

    /// A replica of a cluster, with no role until the metadata gives it one.
    pub fn clustered(epochs: EpochCache) -> Self {
        Self {
            role: Role::Offline { epoch: 0 },
            hw: 0,
            epochs,
        }
    }

    pub fn high_watermark(&self, leo: u64) -> u64 {
        match self.role {
            Role::Single => leo,
            _ => self.hw.min(leo),
        }
    }

    pub fn leader_epoch(&self) -> u32 {
        match &self.role {
            Role::Single => 0,
            Role::Leader(l) => l.epoch,
            Role::Follower { epoch, .. } | Role::Offline { epoch } => *epoch,
        }
    }

    pub fn leadership(&self) -> Option<&Leadership> {
        match &self.role {
            Role::Leader(l) => Some(l),
            _ => None,
        }
    }

    /// Whether this node takes produces for the partition, and for
    /// `acks=all` whether enough replicas are in sync.
    pub fn check_produce(
        &self,
        topic: &str,
        partition: u32,
        acks_all: bool,
        min_isr: u16,
    ) -> Result<(), BrokerError> {
        match &self.role {
            Role::Single => Ok(()),
            Role::Leader(l) if acks_all && l.isr.len() < min_isr as usize => {
                Err(BrokerError::NotEnoughReplicas {
                    topic: topic.into(),
                    partition,
                    in_sync: l.isr.len() as u32,
                    required: min_isr as u32,
                })
            }
            Role::Leader(_) => Ok(()),
            Role::Follower { leader, .. } => Err(BrokerError::NotLeader {
                topic: topic.into(),
                partition,
                leader: Some(*leader),
            }),
            Role::Offline { .. } => Err(BrokerError::NotLeader {
                topic: topic.into(),
                partition,
                leader: None,
            }),
        }
    }

    /// Whether this node serves the partition's clients (produce and fetch):
    /// `NotLeader` on a follower or an offline partition.
    pub fn check_leads(&self, topic: &str, partition: u32) -> Result<(), BrokerError> {
        self.check_produce(topic, partition, false, 1)
    }

    /// Takes the leadership `state` gives `me`, at log end `leo`.
    pub fn become_leader(
        &mut self,
        state: &PartitionState,
        leo: u64,
        now: Instant,
    ) -> Result<(), BrokerError> {
        self.epochs.assign(state.leader_epoch, leo)?;
        let followers = state
            .replicas
            .iter()
            .filter(|r| Some(**r) != state.leader)
            .map(|&r| {
                let p = Progress {
                    leo: None,
                    // A new leader gives every follower a full lag period.
                    caught_up_at: now,
                    last_fetch_at: now,
                    last_fetch_leader_leo: leo,
                };
                (r, p)
            })
            .collect();
        self.role = Role::Leader(Leadership {
            epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            replicas: state.replicas.clone(),
            isr: state.isr.clone(),
            followers,
            epoch_start: leo,
            alter_sent: None,
        });
        Ok(())
    }

    /// The same leadership with the controller's newer ISR.
    /// Only a changed partition epoch ends a pending ISR request: every
    /// applied command (a refused one too) changes the metadata's version,
    /// and re-sending on each would loop.
    pub fn update_isr(&mut self, state: &PartitionState) {
        if let Role::Leader(l) = &mut self.role {
            if l.partition_epoch != state.partition_epoch {
                l.alter_sent = None;
            }
            l.isr = state.isr.clone();
            l.partition_epoch = state.partition_epoch;
        }
    }

    /// A follower fetched at `offset` after a batch of `last_epoch`. Returns
    /// the divergence `(epoch, end)` if its log is not a prefix of ours;
    /// otherwise records its progress.
    pub fn on_fetch(
        &mut self,
        replica: NodeId,
        offset: u64,
        last_epoch: Option<u32>,
        leo: u64,
        now: Instant,
    ) -> Option<(u32, u64)> {
        if let Some(e) = last_epoch {
            match self.epochs.end_of(e, leo) {
                Some((ce, end)) if ce == e && end >= offset => {}
                Some((ce, end)) => return Some((ce, end.min(offset))),
                None => {
                    let first = self.epochs.first().map_or(0, |(_, s)| s);
                    return Some((0, first.min(offset)));
                }
            }
        }
        if offset > leo {
            return Some((self.leader_epoch(), leo));
        }
        let Role::Leader(l) = &mut self.role else {
            return None;
        };
        if let Some(p) = l.followers.get_mut(&replica) {
            if offset >= leo {
                p.caught_up_at = now;
            } else if offset >= p.last_fetch_leader_leo {
                p.caught_up_at = p.caught_up_at.max(p.last_fetch_at);
            }
            p.leo = Some(offset);
            p.last_fetch_at = now;
            p.last_fetch_leader_leo = leo;
        }
        None
    }

    /// Leader: moves the high watermark to the smallest log end among the
    /// in-sync replicas (ours included). Returns whether it moved.
    pub fn advance_hw(&mut self, me: NodeId, leo: u64) -> bool {
        let Role::Leader(l) = &self.role else {
            return false;
        };
        let mut min = leo;
        for r in l.isr.iter().filter(|r| **r != me) {
            match l.followers.get(r).and_then(|p| p.leo) {
                Some(x) => min = min.min(x),
                None => return false,
            }
        }
        if min > self.hw {
            self.hw = min;
            return true;
        }
        false
    }

    /// Follower: the leader's high watermark, capped at our log end.
    pub fn follow_hw(&mut self, leader_hw: u64, leo: u64) {
        self.hw = self.hw.max(leader_hw.min(leo));
    }

    /// After a truncation the watermark cannot exceed the log end.
    pub fn cap_hw(&mut self, leo: u64) {
        self.hw = self.hw.min(leo);
    }

    /// Leader: the ISR the controller should get, if it should change —
    /// members that have not caught up for `lag_max` leave; replicas that
    /// reached the high watermark (and this epoch) join.
    /// `eligible(r)`: whether broker `r` may be in an ISR at all (registered
    /// and not fenced, as the metadata says).
    pub fn wanted_isr(
        &self,
        me: NodeId,
        now: Instant,
        lag_max: Duration,
        eligible: impl Fn(NodeId) -> bool,
    ) -> Option<Vec<NodeId>> {
        let Role::Leader(l) = &self.role else {
            return None;
        };
        if l.alter_sent
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(5))
        {
            return None;
        }
        let lagging = |r: &NodeId| {
            *r != me
                && l.followers
                    .get(r)
                    .is_none_or(|p| now.duration_since(p.caught_up_at) > lag_max)
        };
        if l.isr.iter().any(lagging) {
            return Some(l.isr.iter().copied().filter(|r| !lagging(r)).collect());
        }
        let hw = self.hw;
        let joining: Vec<NodeId> = l
            .replicas
            .iter()
            .copied()
            .filter(|r| *r != me && !l.isr.contains(r) && eligible(*r))
            .filter(|r| {
                // Caught up, and still fetching: a replica that stopped
                // (died) keeps its last progress but is not taken back.
                l.followers.get(r).is_some_and(|p| {
                    p.leo.is_some_and(|x| x >= hw && x >= l.epoch_start)
                        && !lagging(r)
                        && now.duration_since(p.last_fetch_at) <= lag_max / 2
                })
            })
            .collect();
        if joining.is_empty() {
            return None;
        }
        let mut isr = l.isr.clone();
        isr.extend(joining);
        Some(isr)
    }

    pub fn mark_alter_sent(&mut self, now: Instant) {
        if let Role::Leader(l) = &mut self.role {
            l.alter_sent = Some(now);
        }
    }
}

#[cfg(test)]
#[path = "replica_tests.rs"]
mod tests;
