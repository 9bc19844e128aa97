//! The state machine (openraft storage v2 `RaftStateMachine`): the
//! [`ClusterMeta`] image in memory, published to readers after every applied
//! batch, and its snapshot (`snapshot.json`: image, last applied log id, last
//! membership) written atomically whenever openraft builds or installs one.

use std::fs;
use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{
    BasicNode, EntryPayload, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};

use crate::apply::{apply, ApplyResult, Reply};
use crate::error::ClusterError;
use crate::fsutil::atomic_write;
use crate::meta::{ClusterMeta, NodeId};
use crate::types::{Entry, LogId, TypeConfig};

const SNAPSHOT_FILE: &str = "snapshot.json";

/// The latest applied image, shared with readers.
#[derive(Default)]
pub struct Published {
    meta: RwLock<Arc<ClusterMeta>>,
    version: AtomicU64,
}

impl Published {
    pub fn meta(&self) -> Arc<ClusterMeta> {
        self.meta.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    fn publish(&self, meta: &ClusterMeta) {
        *self.meta.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(meta.clone());
        self.version.store(meta.applied_index, Ordering::Release);
    }
}

#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: ClusterMeta,
}

struct Inner {
    path: PathBuf,
    meta: ClusterMeta,
    last_applied: Option<LogId>,
    membership: StoredMembership<NodeId, BasicNode>,
    snapshot: Option<StoredSnapshot>,
    seq: u64,
}

/// The state machine store; clones share state (a clone is the snapshot
/// builder).
#[derive(Clone)]
pub struct SmStore {
    inner: Arc<Mutex<Inner>>,
    published: Arc<Published>,
}

fn snap_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write_snapshot(None, &io::Error::other(e.to_string())).into()
}

impl SmStore {
    /// Opens the state machine under `dir`, starting from its snapshot if any.
    pub fn open(dir: &Path, published: Arc<Published>) -> Result<SmStore, ClusterError> {
        let path = dir.join(SNAPSHOT_FILE);
        let snapshot: Option<StoredSnapshot> = match fs::read(&path) {
            Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| {
                ClusterError::Io(format!("corrupt snapshot file {}: {e}", path.display()))
            })?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(ClusterError::Io(format!("reading {}: {e}", path.display()))),
        };
        let (meta, last_applied, membership) = match &snapshot {
            Some(s) => (
                s.data.clone(),
                s.meta.last_log_id,
                s.meta.last_membership.clone(),
            ),
            None => Default::default(),
        };
        published.publish(&meta);
        Ok(SmStore {
            inner: Arc::new(Mutex::new(Inner {
                path,
                meta,
                last_applied,
                membership,
                snapshot,
                seq: 0,
            })),
            published,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn to_snapshot(s: &StoredSnapshot) -> Result<Snapshot<TypeConfig>, serde_json::Error> {
    let bytes = serde_json::to_vec(&s.data)?;
    Ok(Snapshot {
        meta: s.meta.clone(),
        snapshot: Box::new(Cursor::new(bytes)),
    })
}

impl Inner {
    fn store(&mut self, s: StoredSnapshot) -> io::Result<()> {
        let bytes = serde_json::to_vec(&s)?;
        atomic_write(&self.path, &bytes)?;
        self.snapshot = Some(s);
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SmStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let mut inner = self.lock();
        inner.seq += 1;
        let snapshot_id = match inner.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, inner.seq),
            None => format!("none-{}", inner.seq),
        };
        let s = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: inner.last_applied,
                last_membership: inner.membership.clone(),
                snapshot_id,
            },
            data: inner.meta.clone(),
        };
        let snap = to_snapshot(&s).map_err(snap_err)?;
        inner.store(s).map_err(snap_err)?;
        Ok(snap)
    }
}

impl RaftStateMachine<TypeConfig> for SmStore {
    type SnapshotBuilder = SmStore;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        let inner = self.lock();
        Ok((inner.last_applied, inner.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<ApplyResult>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.lock();
        let mut out = Vec::new();
        for e in entries {
            inner.last_applied = Some(e.log_id);
            let index = e.log_id.index;
            out.push(match e.payload {
                EntryPayload::Blank => {
                    inner.meta.applied_index = index;
                    Ok(Reply::Done)
                }
                EntryPayload::Normal(cmd) => apply(&mut inner.meta, index, &cmd),
                EntryPayload::Membership(m) => {
                    inner.membership = StoredMembership::new(Some(e.log_id), m);
                    inner.meta.applied_index = index;
                    Ok(Reply::Done)
                }
            });
        }
        self.published.publish(&inner.meta);
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let mut data: ClusterMeta = serde_json::from_slice(snapshot.get_ref()).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), &io::Error::other(e.to_string()))
        })?;
        data.applied_index = meta.last_log_id.map(|l| l.index).unwrap_or(0);
        let mut inner = self.lock();
        inner.meta = data.clone();
        inner.last_applied = meta.last_log_id;
        inner.membership = meta.last_membership.clone();
        inner
            .store(StoredSnapshot {
                meta: meta.clone(),
                data,
            })
            .map_err(snap_err)?;
        self.published.publish(&inner.meta);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let inner = self.lock();
        inner
            .snapshot
            .as_ref()
            .map(to_snapshot)
            .transpose()
            .map_err(snap_err)
    }
}
