//! The file plumbing shared by the credential and ACL stores: an atomic
//! save ([`write_atomic`]: temporary file in the same directory, fsync,
//! rename, fsync of the directory, mode 0600) and [`Watched`], a value loaded
//! from a file and reloaded when the file changes.
//!
//! [`Watched`] checks the file's identity (device, inode, length, mtime) at
//! most once per [`RELOAD_CHECK_INTERVAL`] when read. A changed file that
//! does not load, or a file that was deleted, keeps the old contents, with a
//! `tracing::warn!`. Readers get
//! an `Arc` snapshot, so many connection threads share one copy and a reload
//! never changes a value under a reader.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, TryLockError};
use std::time::{Duration, Instant, SystemTime};

/// How often a [`Watched`] looks at its file, at most.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Why a store file could not be read, parsed or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not valid JSON for this store: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl StoreError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
        move |source| StoreError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Reads `path`, `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path)(e)),
    }
}

/// Reads a store's JSON file: `None` when it is missing, else the parsed
/// contents after checking their format version (`version_of`) is `want`.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    version_of: impl FnOnce(&T) -> u32,
    want: u32,
) -> Result<Option<T>, StoreError> {
    let Some(bytes) = read_optional(path)? else {
        return Ok(None);
    };
    let file: T = serde_json::from_slice(&bytes).map_err(|source| StoreError::Parse {
        path: path.to_owned(),
        source,
    })?;
    let got = version_of(&file);
    if got != want {
        return Err(StoreError::Invalid {
            path: path.to_owned(),
            reason: format!("unknown version {got}"),
        });
    }
    Ok(Some(file))
}

/// Replaces `path` with `bytes` atomically: a temporary file in the same
/// directory (mode 0600) is written and fsynced, renamed over `path`, and the
/// directory is fsynced so the rename survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let err = StoreError::io;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| StoreError::Invalid {
        path: path.to_owned(),
        reason: "not a file path".into(),
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp.{}.{}",
        file_name.to_string_lossy(),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(err(&tmp)(e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(err(path)(e));
    }
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(err(&dir))
}

/// A value kept in a file: how to load it (a missing file is the empty
/// value) and save it back.
pub trait FileBacked: Sized + Send + Sync + 'static {
    /// Loads from `path`; a missing file gives the empty value.
    fn load(path: &Path) -> Result<Self, StoreError>;
    /// Saves to the path it was loaded from, atomically.
    fn save(&self) -> Result<(), StoreError>;
}

/// What identifies one version of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    fs::metadata(path).ok().map(|m| Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: m.modified().ok(),
    })
}

struct Check {
    last: Option<Instant>,
    stamp: Option<Stamp>,
}

struct Inner<T> {
    path: PathBuf,
    current: RwLock<Arc<T>>,
    check: Mutex<Check>,
    interval: Duration,
}

/// A [`FileBacked`] value reloaded when its file changes. Cheap to clone;
/// clones share the value.
pub struct Watched<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Watched<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: FileBacked> Watched<T> {
    /// Loads `path` (a missing file is the empty value); a file that does
    /// not load is an error here, unlike on a later reload.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        Self::open_with_interval(path, RELOAD_CHECK_INTERVAL)
    }

    /// [`Watched::open`] checking the file at most once per `interval`.
    pub fn open_with_interval(
        path: impl Into<PathBuf>,
        interval: Duration,
    ) -> Result<Self, StoreError> {
        let path = path.into();
        let before = stamp(&path);
        let value = T::load(&path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                current: RwLock::new(Arc::new(value)),
                check: Mutex::new(Check {
                    last: Some(Instant::now()),
                    stamp: before,
                }),
                interval,
            }),
        })
    }

    /// The file this value is loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The current value, after reloading it if the check interval has
    /// passed and the file changed.
    pub fn get(&self) -> Arc<T> {
        self.get_at(Instant::now())
    }

    /// [`Watched::get`] with the clock given (tests).
    pub fn get_at(&self, now: Instant) -> Arc<T> {
        // A reader never waits for another's check or reload: the one
        // holding the lock does it, the others read the current value.
        let guard = match self.inner.check.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        if let Some(mut check) = guard {
            let due = check
                .last
                .is_none_or(|last| now.saturating_duration_since(last) >= self.inner.interval);
            if due {
                check.last = Some(now);
                let _ = self.reload_locked(&mut check);
            }
        }
        self.snapshot()
    }

    /// The current value, without looking at the file.
    pub fn snapshot(&self) -> Arc<T> {
        let guard = match self.inner.current.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        Arc::clone(&guard)
    }

    /// Reloads now if the file changed since the last load. `Ok(true)` when
    /// a new value was loaded; on `Err` the old value is kept (and a warning
    /// logged).
    pub fn reload_if_changed(&self) -> Result<bool, StoreError> {
        let mut check = self.lock_check();
        self.reload_locked(&mut check)
    }

    fn reload_locked(&self, check: &mut Check) -> Result<bool, StoreError> {
        let now = stamp(&self.inner.path);
        if now == check.stamp {
            return Ok(false);
        }
        // Remember this version even when it does not load, so a broken file
        // is not re-parsed (and re-logged) every second; the next change is
        // tried again.
        check.stamp = now;
        if now.is_none() {
            // Deleted: most likely an editor replacing it. The next version
            // to appear is loaded.
            tracing::warn!(path = %self.inner.path.display(), "file gone; kept the previous contents");
            return Ok(false);
        }
        match T::load(&self.inner.path) {
            Ok(value) => {
                self.set(value);
                tracing::info!(path = %self.inner.path.display(), "reloaded");
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(error = %e, "kept the previous contents: the changed file does not load");
                Err(e)
            }
        }
    }

    /// Changes the value with `f`, saves it, and makes it current. The
    /// value is cloned first, so readers keep their snapshot; when the save
    /// fails nothing changes.
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, StoreError>
    where
        T: Clone,
    {
        let mut check = self.lock_check();
        let mut value = T::clone(&self.snapshot());
        let r = f(&mut value);
        value.save()?;
        check.stamp = stamp(&self.inner.path);
        self.set(value);
        Ok(r)
    }

    fn set(&self, value: T) {
        let mut guard = match self.inner.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(value);
    }

    fn lock_check(&self) -> MutexGuard<'_, Check> {
        match self.inner.check.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
#[path = "watched_tests.rs"]
mod tests;
