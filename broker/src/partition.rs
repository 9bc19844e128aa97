//! One partition: its log, and the idempotent-producer state that dedups
//! retried batches. The state is rebuilt from the batch headers on open, so
//! a retry that arrives after a restart still gets its original offsets.
//!
//! Producer state expires after [`PRODUCER_EXPIRY`] without a batch (Kafka's
//! `producer.id.expiration.ms` default): the table stays bounded, and on open
//! only the batches of that last day are read (through the time index), not
//! the whole log.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use neo_storage::{BatchMeta, FsyncPolicy, Log, LogConfig, LogReader};

use crate::protocol::{BrokerError, Produce, Produced};
use crate::replication::{EpochCache, Replica};

/// Batches remembered per producer for dedup (Kafka keeps five too: a
/// producer has at most five batches in flight per partition).
pub const DEDUP_WINDOW: usize = 5;
/// A producer silent this long is forgotten (as Kafka's default).
pub const PRODUCER_EXPIRY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    first_seq: i32,
    last_seq: i32,
    base_offset: u64,
    last_offset: u64,
}

#[derive(Debug, Default)]
struct ProducerState {
    epoch: i16,
    recent: VecDeque<Seen>,
    /// When the producer was last heard of (ms; batch time on replay).
    last_ms: i64,
}

/// A partition's log plus its producer table and replication state.
pub struct Partition {
    log: Log,
    dir: PathBuf,
    /// Its role in the cluster and high watermark ([`Replica::single`] on a
    /// broker without a cluster: the log end is the high watermark).
    pub replica: Replica,
    producers: HashMap<i64, ProducerState>,
    fsync: FsyncPolicy,
    appends: u64,
    /// Payload bytes appended (duplicates not counted), for metrics.
    bytes_in: u64,
    /// Log bytes served to fetches; fetches read through `&self`.
    bytes_out: std::sync::atomic::AtomicU64,
}

fn last_seq(base: i32, count: u32) -> i32 {
    // Sequences wrap at i32::MAX to 0, as Kafka's do.
    ((base as i64 + count as i64 - 1) % (i32::MAX as i64 + 1)) as i32
}

fn next_seq(last: i32) -> i32 {
    if last == i32::MAX {
        0
    } else {
        last + 1
    }
}

impl Partition {
    /// Opens (recovering) the log in `dir` and replays producer state from
    /// its batch headers.
    pub fn open(dir: &Path, cfg: LogConfig) -> Result<Self, BrokerError> {
        let fsync = cfg.fsync;
        let (log, report) = Log::open(dir, cfg)?;
        if report.truncated_bytes > 0 || !report.quarantined.is_empty() {
            tracing::warn!(dir = %dir.display(), ?report, "partition recovered with losses of an unacknowledged tail or corrupt data");
        }
        let mut p = Self {
            log,
            dir: dir.to_path_buf(),
            replica: Replica::single(),
            producers: HashMap::new(),
            fsync,
            appends: 0,
            bytes_in: 0,
            bytes_out: Default::default(),
        };
        p.replay_producers()?;
        Ok(p)
    }

    fn replay_producers(&mut self) -> Result<(), BrokerError> {
        let reader = self.log.reader();
        let end = reader.end_offset();
        let horizon = now_ms() - PRODUCER_EXPIRY.as_millis() as i64;
        let mut at = match reader.offset_for_timestamp(horizon)? {
            Some(o) => o.max(reader.start_offset()),
            None => end,
        };
        while at < end {
            let view = match reader.fetch(at, 1 << 20) {
                Ok(v) => v,
                // A quarantined range is skipped: its producers start afresh.
                Err(neo_storage::StorageError::Quarantined { to, .. }) => {
                    at = to;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if view.is_empty() {
                break;
            }
            for (h, _) in view.batches() {
                at = h.last_offset() + 1;
                if h.meta.producer_id >= 0 {
                    self.remember(
                        &h.meta,
                        h.base_offset,
                        h.last_offset(),
                        h.meta.max_timestamp,
                    );
                }
            }
        }
        Ok(())
    }

    fn remember(&mut self, meta: &BatchMeta, base_offset: u64, last_offset: u64, when_ms: i64) {
        let st = self.producers.entry(meta.producer_id).or_default();
        st.last_ms = st.last_ms.max(when_ms);
        if meta.producer_epoch != st.epoch {
            st.epoch = meta.producer_epoch;
            st.recent.clear();
        }
        if st.recent.len() == DEDUP_WINDOW {
            st.recent.pop_front();
        }
        st.recent.push_back(Seen {
            first_seq: meta.base_sequence,
            last_seq: last_seq(meta.base_sequence, meta.record_count),
            base_offset,
            last_offset,
        });
    }

    /// Checks idempotence, then appends. A retry of a remembered batch gets
    /// its original offsets and is not appended again.
    pub fn produce(&mut self, req: &Produce<'_>) -> Result<Produced, BrokerError> {
        let meta = BatchMeta {
            record_count: req.record_count,
            first_timestamp: req.first_timestamp,
            max_timestamp: req.max_timestamp,
            producer_id: req.producer_id,
            producer_epoch: req.producer_epoch,
            base_sequence: req.base_sequence,
            codec: req.codec,
            attributes: 0,
        };
        self.append(&meta, req.records)
    }

    /// [`Partition::produce`] for a batch already described by `meta` (the
    /// Kafka listener's batches, whose payload layout `meta.attributes` names).
    pub fn append(&mut self, meta: &BatchMeta, records: &[u8]) -> Result<Produced, BrokerError> {
        let req = meta;
        if req.producer_id >= 0 {
            if req.base_sequence < 0 {
                return Err(BrokerError::InvalidRequest(format!(
                    "producer {} sent base sequence {}",
                    req.producer_id, req.base_sequence
                )));
            }
            if let Some(st) = self.producers.get(&req.producer_id) {
                if req.producer_epoch < st.epoch {
                    return Err(BrokerError::InvalidProducerEpoch {
                        producer_id: req.producer_id,
                        current: st.epoch,
                        got: req.producer_epoch,
                    });
                }
                if req.producer_epoch == st.epoch {
                    let last = last_seq(req.base_sequence, req.record_count);
                    if let Some(seen) = st
                        .recent
                        .iter()
                        .find(|s| s.first_seq == req.base_sequence && s.last_seq == last)
                    {
                        return Ok(Produced {
                            base_offset: seen.base_offset,
                            last_offset: seen.last_offset,
                            duplicate: true,
                        });
                    }
                    if let Some(prev) = st.recent.back() {
                        let expected = next_seq(prev.last_seq);
                        if req.base_sequence != expected {
                            return Err(BrokerError::OutOfOrderSequence {
                                producer_id: req.producer_id,
                                expected,
                                got: req.base_sequence,
                            });
                        }
                    }
                } else if req.base_sequence != 0 {
                    return Err(BrokerError::OutOfOrderSequence {
                        producer_id: req.producer_id,
                        expected: 0,
                        got: req.base_sequence,
                    });
                }
            }
        }
        let info = self.log.append(meta, records)?;
        self.bytes_in += records.len() as u64;
        if req.producer_id >= 0 {
            self.remember(meta, info.base_offset, info.last_offset, now_ms());
        }
        self.appends += 1;
        if self.appends.is_multiple_of(4096) {
            let horizon = now_ms() - PRODUCER_EXPIRY.as_millis() as i64;
            self.producers.retain(|_, st| st.last_ms >= horizon);
        }
        Ok(Produced {
            base_offset: info.base_offset,
            last_offset: info.last_offset,
            duplicate: false,
        })
    }

    /// Counts `n` bytes of this log served to a fetch.
    pub fn note_fetched(&self, n: usize) {
        self.bytes_out
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Payload bytes appended and log bytes fetched since the broker started.
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.bytes_in,
            self.bytes_out.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Whether `last_offset` is durable here under the fsync policy (with
    /// `never`, once written).
    pub fn is_durable(&self, last_offset: u64) -> bool {
        self.fsync == FsyncPolicy::Never || self.log.durable_end() > last_offset
    }

    /// Whether `last_offset` may be acknowledged to an `acks=all` producer:
    /// durable here and below the high watermark (on every in-sync replica).
    pub fn is_committed(&self, last_offset: u64) -> bool {
        self.is_durable(last_offset) && self.high_watermark() > last_offset
    }

    /// Consumers read below this offset.
    pub fn high_watermark(&self) -> u64 {
        self.replica.high_watermark(self.log.end_offset())
    }

    pub fn end_offset(&self) -> u64 {
        self.log.end_offset()
    }

    /// Makes this partition a cluster replica: its epoch history is loaded
    /// from its directory; the metadata then gives it a role.
    pub fn join_cluster(&mut self) -> Result<(), BrokerError> {
        let epochs = EpochCache::load(&self.dir, self.log.end_offset())?;
        self.replica = Replica::clustered(epochs);
        Ok(())
    }

    /// Follower: appends a batch copied from the leader's log, recording a
    /// new leader epoch first, and replays its producer state so a retry
    /// reaching this replica once it leads is still recognised.
    pub fn append_replicated(&mut self, batch: &[u8]) -> Result<(), BrokerError> {
        let h = neo_storage::batch::validate(batch, usize::MAX / 2)
            .map_err(|e| BrokerError::CorruptBatch(e.describe().into()))?;
        if self
            .replica
            .epochs
            .latest()
            .is_none_or(|(e, _)| h.leader_epoch > e)
        {
            self.replica.epochs.assign(h.leader_epoch, h.base_offset)?;
        }
        self.log.append_raw(batch)?;
        self.bytes_in += (batch.len() - neo_storage::batch::HEADER_LEN) as u64;
        if h.meta.producer_id >= 0 {
            self.remember(&h.meta, h.base_offset, h.last_offset(), now_ms());
        }
        Ok(())
    }

    /// Follower: cuts the log at `offset` where it diverged from the leader's;
    /// the producer table is rebuilt from what remains.
    pub fn truncate_replica(&mut self, offset: u64) -> Result<u64, BrokerError> {
        let end = self.log.truncate_to(offset)?;
        self.replica.epochs.truncate(end)?;
        self.replica.cap_hw(end);
        self.producers.clear();
        self.replay_producers()?;
        Ok(end)
    }

    /// Follower: its log ends below the leader's log start (retention
    /// deleted what it needs next): empties the log and restarts it at
    /// `offset`, the leader's log start. Producer state goes with the log.
    pub fn restart_replica(&mut self, offset: u64) -> Result<(), BrokerError> {
        self.log.restart_at(offset)?;
        self.producers.clear();
        Ok(())
    }

    /// The epoch of the last batch in the log, for a follower's fetch.
    pub fn last_epoch(&self) -> Option<u32> {
        let end = self.log.end_offset();
        (end > self.log.start_offset()).then(|| self.replica.epochs.epoch_at(end - 1).unwrap_or(0))
    }

    /// Leader: stamps batches appended from now on with `epoch`.
    pub fn set_leader_epoch(&mut self, epoch: u32) {
        self.log.set_leader_epoch(epoch);
    }

    /// A sync failure that stops the durable end from advancing.
    pub fn flush_error(&self) -> Option<String> {
        self.log.flush_error()
    }

    pub fn reader(&self) -> LogReader {
        self.log.reader()
    }

    pub fn log_mut(&mut self) -> &mut Log {
        &mut self.log
    }

    /// Seals and syncs the log.
    pub fn close(self) -> Result<(), BrokerError> {
        self.log.close().map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Acks;
    use crate::records::BatchBuilder;

    fn produce(p: &mut Partition, pid: i64, seq: i32, ts: i64) -> Produced {
        let mut b = BatchBuilder::new();
        b.push(None, b"v", ts).unwrap();
        let req = Produce {
            topic: "t",
            partition: 0,
            acks: Acks::Leader,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: seq,
            record_count: 1,
            codec: 0,
            first_timestamp: ts,
            max_timestamp: ts,
            records: b.bytes(),
        };
        p.produce(&req).unwrap()
    }

    #[test]
    fn producer_state_older_than_the_expiry_is_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = || LogConfig {
            fsync: FsyncPolicy::Never,
            ..LogConfig::default()
        };
        let old = now_ms() - PRODUCER_EXPIRY.as_millis() as i64 - 60_000;
        {
            let mut p = Partition::open(dir.path(), cfg()).unwrap();
            produce(&mut p, 1, 0, old);
            produce(&mut p, 2, 0, now_ms());
            p.close().unwrap();
        }
        let mut p = Partition::open(dir.path(), cfg()).unwrap();
        // The recent producer's retry is recognised ...
        assert!(produce(&mut p, 2, 0, now_ms()).duplicate);
        // ... the expired one is a new producer: its batch is appended.
        assert!(!produce(&mut p, 1, 0, now_ms()).duplicate);
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(last_seq(0, 1), 0);
        assert_eq!(last_seq(i32::MAX, 1), i32::MAX);
        assert_eq!(last_seq(i32::MAX, 2), 0);
        assert_eq!(next_seq(i32::MAX), 0);
        assert_eq!(next_seq(4), 5);
    }
}
