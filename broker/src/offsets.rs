//! Committed group offsets, kept durably in an internal log
//! (`<data>/__consumer_offsets/`, fsync `always`) and in memory. Each commit
//! is one batch; each entry one record with key `group \0 topic \0 partition`
//! and value `offset u64 LE | metadata`. On start the log is replayed; the
//! last entry per key wins.
//!
//! Compaction keeps the log proportional to the live set: once the records
//! written since the last snapshot exceed four times the live entries (and
//! 10 000), the log rolls, every live entry is written again as a snapshot
//! at the head of the new segment, synced, and the older segments are
//! deleted. A crash at any point leaves either the old entries or the old
//! entries plus a complete or torn snapshot — replay (last wins) reads the
//! same offsets from each.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use neo_storage::{BatchMeta, FsyncPolicy, Log, LogConfig, LogReader};

use crate::protocol::{BrokerError, CommittedOffset};
use crate::records::{for_each_record, BatchBuilder};

/// Most entries one commit may carry.
pub const MAX_ENTRIES: usize = 10_000;
/// Longest metadata string kept with an offset.
pub const MAX_METADATA: usize = 4096;

/// A group's committed offsets: (topic, partition) → (offset, metadata).
pub type GroupOffsets = BTreeMap<(String, u32), (u64, String)>;

pub struct OffsetStore {
    log: Log,
    committed: HashMap<String, GroupOffsets>,
    builder: BatchBuilder,
    /// Records written since the last snapshot (or replayed at open).
    since_snapshot: usize,
}

/// Compaction runs when this many records were written since the last
/// snapshot, or four times the live entries if that is more.
const COMPACT_MIN_RECORDS: usize = 10_000;
/// Largest snapshot batch, in bytes of records.
const SNAPSHOT_BATCH: usize = 1 << 20;

fn key(group: &str, topic: &str, partition: u32) -> Vec<u8> {
    format!("{group}\0{topic}\0{partition}").into_bytes()
}

fn parse_key(k: &[u8]) -> Option<(String, String, u32)> {
    let s = std::str::from_utf8(k).ok()?;
    let mut it = s.split('\0');
    let (g, t, p) = (it.next()?, it.next()?, it.next()?.parse().ok()?);
    Some((g.into(), t.into(), p))
}

impl OffsetStore {
    pub fn open(data_dir: &Path) -> Result<Self, BrokerError> {
        let cfg = LogConfig {
            segment_bytes: 64 << 20,
            fsync: FsyncPolicy::Always,
            retention_age: None,
            retention_bytes: None,
            segment_age: None,
            ..LogConfig::default()
        };
        let (log, report) = Log::open(data_dir.join("__consumer_offsets"), cfg)?;
        if !report.notes.is_empty() {
            tracing::warn!(notes = ?report.notes, "offsets log recovered with notes");
        }
        let mut store = Self {
            log,
            committed: HashMap::new(),
            builder: BatchBuilder::new(),
            since_snapshot: 0,
        };
        store.replay(store.log.reader())?;
        Ok(store)
    }

    fn replay(&mut self, reader: LogReader) -> Result<(), BrokerError> {
        let mut at = reader.start_offset();
        let mut entries = 0usize;
        while at < reader.end_offset() {
            let view = reader.fetch(at, 4 << 20)?;
            if view.is_empty() {
                break;
            }
            for (h, payload) in view.batches() {
                at = h.last_offset() + 1;
                let mut bad = None;
                let r = for_each_record(payload, h.meta.record_count, h.base_offset, 0, |r| {
                    let parsed = parse_key(r.key.unwrap_or_default());
                    let (Some((g, t, p)), Some(off)) = (parsed, r.value.get(..8)) else {
                        bad = Some(r.offset);
                        return;
                    };
                    let offset = u64::from_le_bytes(off.try_into().expect("8 bytes"));
                    let meta = String::from_utf8_lossy(&r.value[8..]).into_owned();
                    self.committed
                        .entry(g)
                        .or_default()
                        .insert((t, p), (offset, meta));
                    entries += 1;
                });
                if let Err(e) = r {
                    tracing::error!(offset = h.base_offset, error = %e, "skipping an unreadable offsets batch");
                }
                if let Some(o) = bad {
                    tracing::error!(
                        offset = o,
                        "skipping an offsets record with a bad key or value"
                    );
                }
            }
        }
        self.since_snapshot = entries;
        tracing::debug!(entries, groups = self.committed.len(), "offsets replayed");
        Ok(())
    }

    /// Appends a commit; returns the offset whose durability completes it.
    pub fn commit(&mut self, group: &str, offsets: &[CommittedOffset]) -> Result<u64, BrokerError> {
        if offsets.is_empty() || offsets.len() > MAX_ENTRIES {
            return Err(BrokerError::InvalidRequest(format!(
                "a commit carries 1..={MAX_ENTRIES} offsets, not {}",
                offsets.len()
            )));
        }
        if let Some(o) = offsets.iter().find(|o| o.metadata.len() > MAX_METADATA) {
            return Err(BrokerError::InvalidRequest(format!(
                "metadata for {}/{} is {} bytes; at most {MAX_METADATA}",
                o.topic,
                o.partition,
                o.metadata.len()
            )));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.builder.clear();
        let mut value = Vec::with_capacity(64);
        for o in offsets {
            value.clear();
            value.extend_from_slice(&o.offset.to_le_bytes());
            value.extend_from_slice(o.metadata.as_bytes());
            self.builder
                .push(Some(&key(group, &o.topic, o.partition)), &value, now)
                .map_err(BrokerError::InvalidRequest)?;
        }
        let meta = BatchMeta::simple(self.builder.count(), now);
        let info = self.log.append(&meta, self.builder.bytes())?;
        let g = self.committed.entry(group.to_string()).or_default();
        for o in offsets {
            g.insert(
                (o.topic.clone(), o.partition),
                (o.offset, o.metadata.clone()),
            );
        }
        self.since_snapshot += offsets.len();
        let mut last = info.last_offset;
        if self.since_snapshot > COMPACT_MIN_RECORDS.max(4 * self.live_entries()) {
            last = self.compact()?;
        }
        Ok(last)
    }

    /// Live (group, topic, partition) entries.
    pub fn live_entries(&self) -> usize {
        self.committed.values().map(BTreeMap::len).sum()
    }

    /// Writes every live entry again at the head of a fresh segment, syncs
    /// it, and deletes the segments before it. Returns the last offset
    /// written (durable on return).
    pub fn compact(&mut self) -> Result<u64, BrokerError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.log.roll()?;
        let head = self.log.end_offset();
        let mut last = head.saturating_sub(1);
        let entries: Vec<(Vec<u8>, Vec<u8>)> = self
            .committed
            .iter()
            .flat_map(|(g, m)| {
                m.iter().map(move |((t, p), (o, meta))| {
                    let mut v = o.to_le_bytes().to_vec();
                    v.extend_from_slice(meta.as_bytes());
                    (key(g, t, *p), v)
                })
            })
            .collect();
        self.builder.clear();
        for (i, (k, v)) in entries.iter().enumerate() {
            self.builder
                .push(Some(k), v, now)
                .map_err(BrokerError::Storage)?;
            if self.builder.len() >= SNAPSHOT_BATCH || i + 1 == entries.len() {
                let meta = BatchMeta::simple(self.builder.count(), now);
                last = self.log.append(&meta, self.builder.bytes())?.last_offset;
                self.builder.clear();
            }
        }
        self.log.sync()?;
        let report = self.log.delete_before(head)?;
        tracing::info!(
            entries = entries.len(),
            segments_deleted = report.segments_deleted,
            bytes_deleted = report.bytes_deleted,
            "offsets log compacted"
        );
        self.since_snapshot = entries.len();
        Ok(last)
    }

    /// The offsets log's first and end offsets (for tests and status).
    pub fn log_range(&self) -> (u64, u64) {
        (self.log.start_offset(), self.log.end_offset())
    }

    pub fn is_durable(&self, offset: u64) -> bool {
        self.log.durable_end() > offset
    }

    pub fn flush_error(&self) -> Option<String> {
        self.log.flush_error()
    }

    pub fn group(&self, group: &str) -> Option<&GroupOffsets> {
        self.committed.get(group)
    }

    /// Groups with committed offsets.
    pub fn groups(&self) -> impl Iterator<Item = &String> {
        self.committed.keys()
    }

    pub fn close(self) -> Result<(), BrokerError> {
        self.log.close().map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_survive_reopen_and_last_wins() {
        let dir = tempfile::tempdir().unwrap();
        let c = |t: &str, p, o| CommittedOffset {
            topic: t.into(),
            partition: p,
            offset: o,
            metadata: format!("m{o}"),
        };
        {
            let mut s = OffsetStore::open(dir.path()).unwrap();
            s.commit("g", &[c("a", 0, 5), c("a", 1, 7)]).unwrap();
            s.commit("g", &[c("a", 0, 9)]).unwrap();
            s.commit("h", &[c("b", 3, 1)]).unwrap();
            assert!(s.commit("g", &[]).is_err());
            s.close().unwrap();
        }
        let s = OffsetStore::open(dir.path()).unwrap();
        let g = s.group("g").unwrap();
        assert_eq!(g[&("a".into(), 0)], (9, "m9".into()));
        assert_eq!(g[&("a".into(), 1)], (7, "m7".into()));
        assert_eq!(s.group("h").unwrap()[&("b".into(), 3)].0, 1);
    }

    #[test]
    fn the_log_is_compacted_and_keeps_the_last_commit_of_each_key() {
        let dir = tempfile::tempdir().unwrap();
        let c = |p, o| CommittedOffset {
            topic: "t".into(),
            partition: p,
            offset: o,
            metadata: String::new(),
        };
        let rounds = 3 * COMPACT_MIN_RECORDS as u64 / 8;
        {
            let mut s = OffsetStore::open(dir.path()).unwrap();
            for round in 0..rounds {
                let batch: Vec<CommittedOffset> =
                    (0..8).map(|p| c(p, round * 10 + p as u64)).collect();
                let last = s.commit("g", &batch).unwrap();
                assert!(last < s.log_range().1);
            }
            let (start, end) = s.log_range();
            assert!(start > 0, "compaction moved the log start");
            assert!(
                end - start < 2 * COMPACT_MIN_RECORDS as u64,
                "{start}..{end}"
            );
            s.close().unwrap();
        }
        let s = OffsetStore::open(dir.path()).unwrap();
        let g = s.group("g").unwrap();
        assert_eq!(g.len(), 8);
        for p in 0..8u32 {
            assert_eq!(g[&("t".into(), p)].0, (rounds - 1) * 10 + p as u64);
        }
    }
}
