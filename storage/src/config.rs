//! Configuration of one partition log.

use std::time::Duration;

use crate::error::{Result, StorageError};
use crate::flusher::FsyncPolicy;

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Segment capacity in bytes (at most 4 GiB: index positions are u32).
    pub segment_bytes: u64,
    /// Roll the active segment when it is older than this.
    pub segment_age: Option<Duration>,
    /// Largest batch payload accepted.
    pub max_batch: usize,
    /// One sparse index entry per this many bytes of log.
    pub index_interval: u64,
    pub fsync: FsyncPolicy,
    /// Delete the oldest sealed segments while the log is larger than this.
    pub retention_bytes: Option<u64>,
    /// Delete sealed segments whose newest record is older than this.
    pub retention_age: Option<Duration>,
    /// Check each batch's CRC when it is fetched (a corrupt batch is never served).
    pub verify_on_fetch: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_age: Some(Duration::from_secs(7 * 24 * 3600)),
            max_batch: 8 << 20,
            index_interval: 4096,
            fsync: FsyncPolicy::Interval(Duration::from_millis(5)),
            retention_bytes: None,
            retention_age: Some(Duration::from_secs(7 * 24 * 3600)),
            verify_on_fetch: true,
        }
    }
}

impl LogConfig {
    pub fn validate(&self) -> Result<()> {
        if self.segment_bytes > u32::MAX as u64 {
            return Err(StorageError::Config(format!(
                "segment_bytes {} exceeds 4 GiB",
                self.segment_bytes
            )));
        }
        if (self.max_batch as u64 + crate::batch::HEADER_LEN as u64) > self.segment_bytes {
            return Err(StorageError::Config(format!(
                "max_batch {} plus its header does not fit in a segment of {} bytes",
                self.max_batch, self.segment_bytes
            )));
        }
        if self.index_interval == 0 {
            return Err(StorageError::Config("index_interval must be > 0".into()));
        }
        Ok(())
    }
}
