//! Committed consumer-group offsets in a cluster: agreed by the controller
//! quorum (`neo_cluster::Command::CommitOffsets`, kept in `ClusterMeta`), so
//! every node has every group's commits and a group coordinated by another
//! broker after a failover resumes where it was. A commit is answered once
//! the quorum applied it and this node's metadata holds it; reads come from
//! this node's metadata. Outside a cluster the broker's own offsets log
//! (`crate::offsets`) keeps them, as before.
//!
//! Commits are small and rare next to data (a consumer commits every few
//! seconds), which is what a Raft log carries well; they never block the
//! poll loop (Neo commits go through the link's worker thread, Kafka
//! commits are made on the Kafka connection's own thread).

use std::sync::Mutex;

use super::link::Job;
use crate::broker::Broker;
use crate::protocol::{BrokerError, CommittedOffset};
use neo_transports::rpc::Deferred;

/// A group's committed offsets: (topic, partition) → (offset, metadata).
pub use neo_cluster::GroupOffsets;

pub(crate) fn entries(offsets: &[CommittedOffset]) -> Vec<(String, u32, u64, String)> {
    offsets
        .iter()
        .map(|o| (o.topic.clone(), o.partition, o.offset, o.metadata.clone()))
        .collect()
}

impl Broker {
    /// Cluster mode: the quorum's committed offsets of `group` as this node
    /// applied them; `None` outside a cluster (the local log has them).
    pub(crate) fn cluster_offsets(&self, group: &str) -> Option<Option<GroupOffsets>> {
        let c = self.cluster.as_ref()?;
        Some(c.control.meta().offsets.get(group).cloned())
    }

    /// Cluster mode: the groups with committed offsets in the quorum's
    /// metadata; `None` outside a cluster.
    pub(crate) fn cluster_offset_groups(&self) -> Option<Vec<String>> {
        let c = self.cluster.as_ref()?;
        Some(c.control.meta().offsets.keys().cloned().collect())
    }

    /// Cluster mode: hands a Neo group's commit to the worker thread; the
    /// answer comes once the quorum applied it here.
    pub(crate) fn cluster_commit(
        &mut self,
        group: &str,
        offsets: &[CommittedOffset],
        call: Deferred,
    ) {
        if let Some(c) = &self.cluster {
            c.send(Job::CommitOffsets {
                group: group.to_string(),
                offsets: entries(offsets),
                call,
            });
        }
    }
}

/// For threads other than the poll loop (the Kafka listener's), cluster
/// mode: commits through the quorum — the broker's lock is not held while
/// waiting — and returns once the commit is readable on this node.
pub fn commit_blocking(
    broker: &Mutex<Broker>,
    group: &str,
    offsets: &[CommittedOffset],
) -> Result<(), BrokerError> {
    let (control, timeout) = {
        let b = crate::service::lock(broker);
        b.check_commit(group, offsets)?;
        let c = b
            .cluster
            .as_ref()
            .ok_or_else(|| BrokerError::Cluster("not in a cluster".into()))?;
        (c.control.clone(), c.cfg.controller_timeout)
    };
    control.commit_offsets(group, entries(offsets), timeout)?;
    crate::service::lock(broker).note_commit();
    Ok(())
}
