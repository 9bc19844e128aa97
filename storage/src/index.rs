//! Sparse indexes of a segment, in memory and on disk.
//!
//! * Offset index (`.index`): 8-byte entries `relative offset u32 LE |
//!   position u32 LE`, one per `index_interval` bytes of log, pointing at the
//!   start of a batch.
//! * Time index (`.timeindex`): 12-byte entries `max timestamp i64 LE |
//!   relative offset u32 LE`, added with each offset-index entry when the
//!   segment's maximum timestamp grew.
//!
//! Both are rebuilt from the log whenever they are missing, torn, out of
//! order or behind (recovery), so they are never fsynced on the append path.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::RwLock;

use crate::error::{Ctx, Result};

pub const OFFSET_ENTRY: usize = 8;
pub const TIME_ENTRY: usize = 12;

/// The in-memory indexes, shared by the writer and readers.
#[derive(Default)]
pub struct Indexes {
    offsets: RwLock<Vec<(u32, u32)>>,
    times: RwLock<Vec<(i64, u32)>>,
}

impl Indexes {
    /// Position of the last indexed batch at or before `rel`.
    pub fn position_for(&self, rel: u32) -> u32 {
        let o = self.offsets.read().unwrap_or_else(|p| p.into_inner());
        match o.partition_point(|(r, _)| *r <= rel) {
            0 => 0,
            i => o[i - 1].1,
        }
    }

    /// Relative offset to start a timestamp search from: the last entry whose
    /// max timestamp is below `ts` (earlier batches cannot match).
    pub fn rel_for_timestamp(&self, ts: i64) -> u32 {
        let t = self.times.read().unwrap_or_else(|p| p.into_inner());
        match t.partition_point(|(m, _)| *m < ts) {
            0 => 0,
            i => t[i - 1].1,
        }
    }

    /// Whether every offset entry points at a batch header carrying the
    /// offset it claims (checked before trusting an index loaded from disk).
    pub fn points_at_batches(&self, bytes: &[u8], base: u64) -> bool {
        let o = self.offsets.read().unwrap_or_else(|p| p.into_inner());
        o.iter().all(|(rel, pos)| {
            crate::batch::parse_header(bytes.get(*pos as usize..).unwrap_or(&[]), usize::MAX / 2)
                .is_ok_and(|h| h.base_offset == base + *rel as u64)
        })
    }

    pub fn last_offset_entry(&self) -> Option<(u32, u32)> {
        self.offsets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .copied()
    }

    pub fn last_time(&self) -> Option<i64> {
        self.times
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .map(|(t, _)| *t)
    }

    pub fn push_offset(&self, rel: u32, pos: u32) {
        self.offsets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((rel, pos));
    }

    pub fn push_time(&self, ts: i64, rel: u32) {
        self.times
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((ts, rel));
    }

    /// Loads both files; `None` when either is missing or not well-formed
    /// (torn, out of order, pointing past `valid_len`): then rebuild.
    pub fn load(index: &Path, timeindex: &Path, valid_len: u64) -> Option<Self> {
        let o = std::fs::read(index).ok()?;
        let t = std::fs::read(timeindex).ok()?;
        if o.len() % OFFSET_ENTRY != 0 || t.len() % TIME_ENTRY != 0 {
            return None;
        }
        let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let offsets: Vec<(u32, u32)> = o
            .chunks_exact(OFFSET_ENTRY)
            .map(|c| (le32(&c[0..4]), le32(&c[4..8])))
            .collect();
        let times: Vec<(i64, u32)> = t
            .chunks_exact(TIME_ENTRY)
            .map(|c| {
                (
                    i64::from_le_bytes(c[0..8].try_into().expect("8 bytes")),
                    le32(&c[8..12]),
                )
            })
            .collect();
        let increasing = offsets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && times
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
        let in_bounds = offsets.iter().all(|(_, p)| (*p as u64) < valid_len.max(1));
        (increasing && in_bounds).then(|| Self {
            offsets: RwLock::new(offsets),
            times: RwLock::new(times),
        })
    }
}

/// The writer's handles on the two index files. Entries are buffered and
/// written in 4 KiB chunks (and on sync): the indexes are rebuilt from the
/// log if the tail of an index is lost, so they cost no syscall per append.
pub struct IndexWriter {
    offsets: File,
    times: File,
    offsets_buf: Vec<u8>,
    times_buf: Vec<u8>,
}

const FLUSH_AT: usize = 4096;

impl IndexWriter {
    /// Opens (truncating) both files and writes `current` into them.
    pub fn create(index: &Path, timeindex: &Path, current: &Indexes) -> Result<Self> {
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(p)
                .ctx(|| format!("creating {}", p.display()))
        };
        let mut w = Self {
            offsets: open(index)?,
            times: open(timeindex)?,
            offsets_buf: Vec::with_capacity(FLUSH_AT),
            times_buf: Vec::with_capacity(FLUSH_AT),
        };
        let mut buf = Vec::new();
        for (r, p) in current
            .offsets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            buf.extend_from_slice(&r.to_le_bytes());
            buf.extend_from_slice(&p.to_le_bytes());
        }
        w.offsets
            .write_all(&buf)
            .ctx(|| format!("writing {}", index.display()))?;
        buf.clear();
        for (t, r) in current
            .times
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            buf.extend_from_slice(&t.to_le_bytes());
            buf.extend_from_slice(&r.to_le_bytes());
        }
        w.times
            .write_all(&buf)
            .ctx(|| format!("writing {}", timeindex.display()))?;
        Ok(w)
    }

    pub fn append_offset(&mut self, rel: u32, pos: u32) -> Result<()> {
        self.offsets_buf.extend_from_slice(&rel.to_le_bytes());
        self.offsets_buf.extend_from_slice(&pos.to_le_bytes());
        if self.offsets_buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    pub fn append_time(&mut self, ts: i64, rel: u32) -> Result<()> {
        self.times_buf.extend_from_slice(&ts.to_le_bytes());
        self.times_buf.extend_from_slice(&rel.to_le_bytes());
        if self.times_buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes buffered entries to the files.
    pub fn flush(&mut self) -> Result<()> {
        self.offsets
            .write_all(&self.offsets_buf)
            .ctx(|| "writing an offset index".into())?;
        self.offsets_buf.clear();
        self.times
            .write_all(&self.times_buf)
            .ctx(|| "writing a time index".into())?;
        self.times_buf.clear();
        Ok(())
    }

    pub fn sync(&mut self) -> Result<()> {
        self.flush()?;
        self.offsets
            .sync_data()
            .ctx(|| "syncing an offset index".into())?;
        self.times.sync_data().ctx(|| "syncing a time index".into())
    }
}
