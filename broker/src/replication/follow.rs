//! A follower's side of a replica fetch: what to ask a leader for (each
//! followed partition's log end and last epoch), and applying the answer —
//! truncate a diverged log, append the leader's batches byte for byte, note
//! the leader's high watermark. The fetches themselves are made by
//! [`super::fetcher`].

use super::wire::*;
use crate::broker::Broker;
use crate::protocol::BrokerError;
use crate::replication::Role;

impl Broker {
    /// The leader's address and, for each partition this node follows from
    /// `leader`, where to fetch from; `None` when there are none.
    pub(crate) fn follow_request(
        &self,
        leader: NodeId,
    ) -> Option<(String, Vec<ReplicaFetchPartition>)> {
        let c = self.cluster.as_ref()?;
        let addr = c.control.meta().brokers.get(&leader)?.addr.clone();
        let mut parts = Vec::new();
        for (name, t) in self.topics.iter() {
            for (i, p) in t.partitions.iter().enumerate() {
                if let Role::Follower { leader: l, epoch } = p.replica.role {
                    if l == leader {
                        parts.push(ReplicaFetchPartition {
                            topic: name.clone(),
                            partition: i as u32,
                            leader_epoch: epoch,
                            offset: p.end_offset(),
                            last_fetched_epoch: p.last_epoch(),
                        });
                    }
                }
            }
        }
        (!parts.is_empty()).then_some((addr, parts))
    }

    /// Applies a replica-fetch answer to the partitions that still follow
    /// `leader` at the epoch and offset the fetch was made for.
    pub(crate) fn apply_replica(
        &mut self,
        leader: NodeId,
        asked: &[ReplicaFetchPartition],
        answer: &[u8],
    ) -> Result<(), String> {
        let (head, mut rest) =
            postcard::take_from_bytes::<Result<ReplicaFetchHead, BrokerError>>(answer)
                .map_err(|e| format!("undecodable answer: {e}"))?;
        let head = head.map_err(|e| e.to_string())?;
        if head.partitions.len() != asked.len() {
            return Err("the answer names a different number of partitions".into());
        }
        for (fp, got) in asked.iter().zip(head.partitions) {
            let bytes = rest
                .get(..got.len as usize)
                .ok_or("the answer is shorter than its head says")?;
            rest = &rest[got.len as usize..];
            let Ok(p) = self.topics.partition_mut(&fp.topic, fp.partition) else {
                continue;
            };
            let same = matches!(p.replica.role, Role::Follower { leader: l, epoch } if l == leader && epoch == fp.leader_epoch);
            if !same || p.end_offset() != fp.offset {
                continue;
            }
            if let Some(BrokerError::OffsetOutOfRange { start, .. }) = got.error {
                if fp.offset < start {
                    p.restart_replica(start).map_err(|e| {
                        format!("restarting {}/{} at {start}: {e}", fp.topic, fp.partition)
                    })?;
                    tracing::warn!(topic = %fp.topic, partition = fp.partition, from = fp.offset, to = start, "behind the leader's log start (its retention deleted what this replica needs): log emptied, restarting at the leader's start");
                    continue;
                }
            }
            if let Some(e) = got.error {
                tracing::debug!(topic = %fp.topic, partition = fp.partition, error = %e, "leader refused the fetch");
                continue;
            }
            if let Some((epoch, end)) = got.diverging {
                let leo = p.end_offset();
                let own = p.replica.epochs.end_of(epoch, leo).map_or(end, |(_, e)| e);
                let to = end.min(own).min(leo);
                match p.truncate_replica(to) {
                    Ok(now) => {
                        tracing::warn!(topic = %fp.topic, partition = fp.partition, from = leo, to = now, leader_epoch = epoch, "log diverged from the leader's: truncated")
                    }
                    Err(e) => return Err(format!("truncating {}/{}: {e}", fp.topic, fp.partition)),
                }
                continue;
            }
            let mut at = 0usize;
            while at < bytes.len() {
                let h = neo_storage::batch::parse_header(&bytes[at..], usize::MAX / 2)
                    .map_err(|e| format!("batch from the leader: {}", e.describe()))?;
                let len = h.batch_len as usize;
                let batch = bytes.get(at..at + len).ok_or("a batch cut short")?;
                at += len;
                if h.last_offset() < p.end_offset() {
                    continue;
                }
                p.append_replicated(batch)
                    .map_err(|e| format!("appending to {}/{}: {e}", fp.topic, fp.partition))?;
            }
            let leo = p.end_offset();
            p.replica.follow_hw(got.high_watermark, leo);
        }
        Ok(())
    }
}
