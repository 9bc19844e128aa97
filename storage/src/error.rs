//! Typed storage errors. Every I/O failure is classified so a broker can tell
//! a full disk from a permission problem from corrupt data.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("disk full while {context}")]
    DiskFull { context: String },
    #[error("permission denied while {context}")]
    PermissionDenied { context: String },
    #[error("corrupt data in {}: {reason} (at byte {position})", segment.display())]
    Corrupt {
        segment: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("offset {offset} is outside the log [{start}, {end})")]
    OffsetOutOfRange { offset: u64, start: u64, end: u64 },
    #[error("offsets [{from}, {to}) were in a quarantined segment")]
    Quarantined { from: u64, to: u64 },
    #[error("batch of {len} bytes exceeds the maximum of {max}")]
    BatchTooLarge { len: usize, max: usize },
    #[error("a replicated batch starts at offset {got}, not at the log end {expected}")]
    OffsetMismatch { expected: u64, got: u64 },
    #[error("invalid batch: {0}")]
    InvalidBatch(&'static str),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("I/O error while {context}: {source}")]
    Io { context: String, source: io::Error },
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// Classifies an I/O error, naming what was being done.
pub fn io_err(context: impl Into<String>, e: io::Error) -> StorageError {
    let context = context.into();
    match e.raw_os_error() {
        Some(28) | Some(122) => StorageError::DiskFull { context }, // ENOSPC, EDQUOT
        _ if e.kind() == io::ErrorKind::PermissionDenied => {
            StorageError::PermissionDenied { context }
        }
        _ => StorageError::Io { context, source: e },
    }
}

/// `result.ctx("doing X")` turns an I/O error into a typed one.
pub trait Ctx<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Ctx<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| io_err(context(), e))
    }
}
