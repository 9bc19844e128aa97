//! A partition's leader-epoch history: for each leader epoch, the offset its
//! first batch got. Replicas compare histories to find where their logs
//! diverge (Kafka's KIP-101/KIP-595): the end of epoch `e` on the leader is
//! the start of the first later epoch, or the leader's log end.
//!
//! Kept in `<partition>/leader-epochs` (one `epoch start` pair per line,
//! replaced atomically) and written *before* the first batch of an epoch is
//! appended, so after a crash the file may name an epoch whose batches never
//! landed — harmless: that epoch simply ends where it starts.

use std::path::{Path, PathBuf};

use crate::protocol::BrokerError;

pub const FILE: &str = "leader-epochs";

/// Epoch entries in increasing order of epoch and start offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochCache {
    path: Option<PathBuf>,
    entries: Vec<(u32, u64)>,
}

impl EpochCache {
    /// An in-memory history (a single node's partitions: epoch 0 throughout).
    pub fn memory() -> Self {
        Self {
            path: None,
            entries: Vec::new(),
        }
    }

    /// Loads the history in `dir`, dropping entries at or past `log_end`
    /// that a truncation left behind (an entry starting exactly at the end
    /// stays: its epoch began there).
    pub fn load(dir: &Path, log_end: u64) -> Result<Self, BrokerError> {
        let path = dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(BrokerError::Storage(format!(
                    "reading {}: {e}",
                    path.display()
                )))
            }
        };
        let mut entries: Vec<(u32, u64)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let bad = || {
                BrokerError::Storage(format!(
                    "{} line {}: expected `epoch start_offset`, found {line:?}",
                    path.display(),
                    n + 1
                ))
            };
            let mut it = line.split_whitespace();
            let (Some(e), Some(s), None) = (it.next(), it.next(), it.next()) else {
                return Err(bad());
            };
            let (e, s) = (
                e.parse::<u32>().map_err(|_| bad())?,
                s.parse::<u64>().map_err(|_| bad())?,
            );
            if entries.last().is_some_and(|&(pe, ps)| e <= pe || s < ps) {
                return Err(bad());
            }
            entries.push((e, s));
        }
        entries.retain(|&(_, s)| s <= log_end);
        Ok(Self {
            path: Some(path),
            entries,
        })
    }

    pub fn first(&self) -> Option<(u32, u64)> {
        self.entries.first().copied()
    }

    pub fn latest(&self) -> Option<(u32, u64)> {
        self.entries.last().copied()
    }

    /// The epoch the batch at `offset` was appended in, as far as this
    /// history knows (`None` before the first entry).
    pub fn epoch_at(&self, offset: u64) -> Option<u32> {
        self.entries
            .iter()
            .rev()
            .find(|&&(_, s)| s <= offset)
            .map(|&(e, _)| e)
    }

    /// Records that `epoch` starts at `start` (no-op if it is already the
    /// latest). A later epoch only; written to disk before returning.
    pub fn assign(&mut self, epoch: u32, start: u64) -> Result<(), BrokerError> {
        if let Some((e, s)) = self.latest() {
            if e == epoch {
                return Ok(());
            }
            if epoch < e || start < s {
                return Err(BrokerError::Storage(format!(
                    "leader epoch {epoch} at offset {start} would go back from epoch {e} at {s}"
                )));
            }
        }
        self.entries.push((epoch, start));
        self.save()
    }

    /// Drops what starts at or above `end` (after the log was truncated there).
    pub fn truncate(&mut self, end: u64) -> Result<(), BrokerError> {
        let before = self.entries.len();
        self.entries.retain(|&(_, s)| s < end);
        if self.entries.len() != before {
            self.save()?;
        }
        Ok(())
    }

    /// Where `epoch` ends in a log ending at `log_end`: the largest epoch
    /// `<= epoch` in this history and the start of the next one (or
    /// `log_end`). `None` when every entry is later than `epoch` — the
    /// asker's whole history diverges, so it keeps nothing past the start.
    pub fn end_of(&self, epoch: u32, log_end: u64) -> Option<(u32, u64)> {
        let i = self.entries.iter().rposition(|&(e, _)| e <= epoch)?;
        let end = self.entries.get(i + 1).map_or(log_end, |&(_, s)| s);
        Some((self.entries[i].0, end))
    }

    fn save(&self) -> Result<(), BrokerError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let text: String = self
            .entries
            .iter()
            .map(|(e, s)| format!("{e} {s}\n"))
            .collect();
        let tmp = path.with_extension("tmp");
        let io = |what: &str, e: std::io::Error| {
            BrokerError::Storage(format!("{what} {}: {e}", path.display()))
        };
        std::fs::write(&tmp, text).map_err(|e| io("writing", e))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("syncing", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("replacing", e))?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|f| f.sync_all())
                .map_err(|e| io("syncing the directory of", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_an_epoch_is_the_start_of_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = EpochCache::load(dir.path(), 0).unwrap();
        assert_eq!(c.end_of(3, 0), None);
        c.assign(1, 0).unwrap();
        c.assign(1, 5).unwrap(); // same epoch: kept at 0
        c.assign(3, 10).unwrap();
        c.assign(4, 25).unwrap();
        assert_eq!(c.end_of(0, 30), None);
        assert_eq!(c.end_of(1, 30), Some((1, 10)));
        assert_eq!(c.end_of(2, 30), Some((1, 10)));
        assert_eq!(c.end_of(3, 30), Some((3, 25)));
        assert_eq!(c.end_of(9, 30), Some((4, 30)));
        assert_eq!(c.epoch_at(9), Some(1));
        assert_eq!(c.epoch_at(10), Some(3));
        assert!(c.assign(2, 40).is_err(), "an older epoch is refused");
        // Survives a reopen; a truncation drops later entries.
        let mut c = EpochCache::load(dir.path(), 30).unwrap();
        assert_eq!(c.latest(), Some((4, 25)));
        c.truncate(12).unwrap();
        assert_eq!(
            EpochCache::load(dir.path(), 30).unwrap().latest(),
            Some((3, 10))
        );
        // Entries past the log end (a crash before the batch landed) go.
        assert_eq!(
            EpochCache::load(dir.path(), 9).unwrap().latest(),
            Some((1, 0))
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        for text in [
            "x y\n",
            "1\n",
            "3 10\n2 20\n",
            "1 10\n2 5\n",
            "1 2 3\n",
            "\u{0}\u{ff}",
        ] {
            std::fs::write(dir.path().join(FILE), text).unwrap();
            assert!(EpochCache::load(dir.path(), 100).is_err(), "{text:?}");
        }
    }
}
