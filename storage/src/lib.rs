//! `neo-storage` owns the partition log: segments of checksummed record
//! batches with sparse offset and time indexes, appends with group-commit
//! fsync and a durability watermark, zero-copy fetches from memory maps,
//! crash recovery, retention and truncation. `docs/storage.md` specifies the
//! format and the durability contract.

pub mod batch;
pub mod config;
pub mod error;
mod flusher;
mod index;
pub mod log;
mod mmap;
mod recovery;
mod segment;

pub use batch::{BatchHeader, BatchMeta};
pub use config::LogConfig;
pub use error::{Result, StorageError};
pub use flusher::{Durability, FsyncPolicy};
pub use log::{AppendInfo, FetchView, Log, LogReader, RetentionReport};
pub use recovery::RecoveryReport;
