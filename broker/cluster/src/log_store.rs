//! The Raft log and vote on disk (openraft storage v2 `RaftLogStorage`).
//!
//! `vote.json` is replaced atomically. `raft.log` holds checksummed records
//! (see [`crate::fsutil`]): log entries appended and fsynced before openraft
//! is told they are durable, and a leading `Purged` marker after a purge.
//! Truncate and purge rewrite the file atomically (rare). On open a torn or
//! garbled tail is cut; a corrupt vote file is an error naming it.
//! `committed.json` is a hint only (a stale value is safe), written without
//! fsync.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{RaftLogReader, StorageError, StorageIOError, Vote};
use serde::{Deserialize, Serialize};

use crate::error::ClusterError;
use crate::fsutil::{atomic_write, decode_records, encode_record, sync_dir};
use crate::meta::NodeId;
use crate::types::{Entry, LogId, TypeConfig};

const LOG_FILE: &str = "raft.log";
const VOTE_FILE: &str = "vote.json";
const COMMITTED_FILE: &str = "committed.json";

#[derive(Serialize, Deserialize)]
enum Record {
    Purged(LogId),
    Entry(Entry),
}

struct Inner {
    dir: PathBuf,
    file: File,
    entries: BTreeMap<u64, Entry>,
    purged: Option<LogId>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId>,
}

/// The file-backed log store; clones share the same log (the clone is the
/// log reader).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Io(format!("{what} {}: {e}", path.display()))
}

fn sto_write(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_logs(&io::Error::other(e.to_string())).into()
}

impl LogStore {
    /// Opens (or creates) the log under `dir`, cutting a torn tail.
    pub fn open(dir: &Path) -> Result<LogStore, ClusterError> {
        fs::create_dir_all(dir).map_err(|e| io_err(dir, "creating", e))?;
        let vote_path = dir.join(VOTE_FILE);
        let vote = match fs::read(&vote_path) {
            Ok(b) => Some(
                serde_json::from_slice(&b)
                    .map_err(|e| io_err(&vote_path, "corrupt vote file", e))?,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&vote_path, "reading", e)),
        };
        let committed_path = dir.join(COMMITTED_FILE);
        let committed = fs::read(&committed_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Option<LogId>>(&b).ok())
            .flatten();
        let log_path = dir.join(LOG_FILE);
        let buf = match fs::read(&log_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&log_path, "reading", e)),
        };
        let (records, mut good) = decode_records(&buf);
        let mut entries = BTreeMap::new();
        let mut purged = None;
        let mut offset = 0usize;
        for payload in records {
            match serde_json::from_slice::<Record>(payload) {
                Ok(Record::Purged(id)) => purged = Some(id),
                Ok(Record::Entry(e)) => {
                    let _later = entries.split_off(&e.log_id.index);
                    entries.insert(e.log_id.index, e);
                }
                Err(e) => {
                    tracing::warn!(file = %log_path.display(), offset, "undecodable log record, cutting: {e}");
                    good = offset;
                    break;
                }
            }
            offset += 8 + payload.len();
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| io_err(&log_path, "opening", e))?;
        if good < buf.len() {
            tracing::warn!(file = %log_path.display(), kept = good, len = buf.len(), "cutting torn log tail");
            file.set_len(good as u64)
                .and_then(|_| file.sync_all())
                .map_err(|e| io_err(&log_path, "cutting", e))?;
        }
        // The hint can be ahead of a log cut above: entries up to a committed
        // index are never overwritten, so what survives of them is committed.
        let last = entries.values().next_back().map(|e| e.log_id).or(purged);
        let committed = match (committed, last) {
            (Some(c), Some(l)) if l.index < c.index => Some(l),
            (Some(_), None) => None,
            (c, _) => c,
        };
        Ok(LogStore {
            inner: Arc::new(Mutex::new(Inner {
                dir: dir.to_path_buf(),
                file,
                entries,
                purged,
                vote,
                committed,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The indexes of the entries held (for tests and diagnostics).
    pub fn indexes(&self) -> Vec<u64> {
        self.lock().entries.keys().copied().collect()
    }
}

impl Inner {
    /// Rewrites the whole log file from memory, atomically.
    fn rewrite(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        if let Some(p) = self.purged {
            encode_record(&mut buf, &serde_json::to_vec(&Record::Purged(p))?)?;
        }
        for e in self.entries.values() {
            encode_record(&mut buf, &serde_json::to_vec(&Record::Entry(e.clone()))?)?;
        }
        let path = self.dir.join(LOG_FILE);
        atomic_write(&path, &buf)?;
        self.file = OpenOptions::new().append(true).open(&path)?;
        sync_dir(&self.dir)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        Ok(self
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let inner = self.lock();
        let last = inner.entries.values().next_back().map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id: inner.purged,
            last_log_id: last.or(inner.purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        let bytes = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        atomic_write(&inner.dir.join(VOTE_FILE), &bytes)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        inner.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        inner.committed = committed;
        let path = inner.dir.join(COMMITTED_FILE);
        let tmp = path.with_extension("tmp");
        let res = serde_json::to_vec(&committed)
            .map_err(io::Error::other)
            .and_then(|b| fs::write(&tmp, b))
            .and_then(|_| fs::rename(&tmp, &path));
        if let Err(e) = res {
            tracing::warn!("saving committed hint {}: {e}", path.display());
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError<NodeId>> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.lock();
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut buf = Vec::new();
        let res = entries.iter().try_for_each(|e| {
            let json = serde_json::to_vec(&Record::Entry(e.clone())).map_err(io::Error::other)?;
            encode_record(&mut buf, &json)
        });
        let res = res
            .and_then(|_| inner.file.write_all(&buf))
            .and_then(|_| inner.file.sync_data());
        match res {
            Ok(()) => {
                for e in entries {
                    inner.entries.insert(e.log_id.index, e);
                }
                drop(inner);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let msg = e.to_string();
                callback.log_io_completed(Err(e));
                Err(sto_write(msg))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        let _removed = inner.entries.split_off(&log_id.index);
        inner.rewrite().map_err(sto_write)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.lock();
        inner.purged = Some(log_id);
        let keep = inner.entries.split_off(&(log_id.index + 1));
        inner.entries = keep;
        inner.rewrite().map_err(sto_write)
    }
}
