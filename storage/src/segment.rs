//! One segment: `<base offset>.log` with its indexes. Readers share a
//! `Segment` through an `Arc`; its mapping stays valid for as long as any
//! reader holds it, even after retention or truncation removed the file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::batch::{self, BatchError, BatchHeader};
use crate::index::Indexes;
use crate::mmap::Map;

/// File names of the segment starting at `base`.
pub fn file_name(base: u64, ext: &str) -> String {
    format!("{base:020}.{ext}")
}

pub struct Segment {
    pub base: u64,
    pub dir: PathBuf,
    map: Map,
    /// Bytes of whole, written batches: readers never look further.
    committed: AtomicU64,
    /// Offset after the last batch.
    next_offset: AtomicU64,
    max_timestamp: AtomicI64,
    pub indexes: Indexes,
}

impl Segment {
    pub fn new(
        base: u64,
        dir: &Path,
        file: &File,
        mapped_len: u64,
        indexes: Indexes,
    ) -> std::io::Result<Self> {
        Ok(Self {
            base,
            dir: dir.to_path_buf(),
            map: Map::new(file, mapped_len as usize)?,
            committed: AtomicU64::new(0),
            next_offset: AtomicU64::new(base),
            max_timestamp: AtomicI64::new(i64::MIN),
            indexes,
        })
    }

    pub fn path(&self, ext: &str) -> PathBuf {
        self.dir.join(file_name(self.base, ext))
    }

    /// Published by the writer after the bytes are written.
    pub fn publish(&self, committed: u64, next_offset: u64, max_ts: i64) {
        self.max_timestamp.fetch_max(max_ts, Ordering::AcqRel);
        self.next_offset.store(next_offset, Ordering::Release);
        self.committed.store(committed, Ordering::Release);
    }

    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }
    pub fn next_offset(&self) -> u64 {
        self.next_offset.load(Ordering::Acquire)
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    /// The committed bytes, lent from the mapping.
    pub fn bytes(&self) -> &[u8] {
        let c = self.committed() as usize;
        &self.map.bytes()[..c.min(self.map.bytes().len())]
    }
}

/// What scanning a segment's bytes found.
pub struct Scan {
    /// Bytes of valid, contiguous batches from the start.
    pub valid_len: u64,
    pub next_offset: u64,
    pub max_timestamp: i64,
    /// The first problem, if the scan stopped before the end of `bytes`.
    pub stopped: Option<(u64, BatchError)>,
    /// (relative offset, position, max timestamp so far) of batches at index
    /// intervals, to rebuild the indexes.
    pub entries: Vec<(u32, u32, i64)>,
}

/// Validates batches from `start` (a batch boundary at offset `offset`) to the
/// end of `bytes`: checksums, lengths and offset continuity.
pub fn scan(
    bytes: &[u8],
    base: u64,
    start: u64,
    offset: u64,
    max_batch: usize,
    interval: u64,
) -> Scan {
    let mut pos = start as usize;
    let mut next = offset;
    let mut max_ts = i64::MIN;
    let mut since = interval; // index the first batch scanned
    let mut entries = Vec::new();
    let mut stopped = None;
    while pos < bytes.len() {
        match batch::validate(&bytes[pos..], max_batch) {
            Ok(h) if h.base_offset == next => {
                if since >= interval {
                    max_ts = max_ts.max(h.meta.max_timestamp);
                    entries.push(((next - base) as u32, pos as u32, max_ts));
                    since = 0;
                }
                max_ts = max_ts.max(h.meta.max_timestamp);
                pos += h.batch_len as usize;
                since += h.batch_len as u64;
                next = h.last_offset() + 1;
            }
            Ok(_) => {
                stopped = Some((pos as u64, BatchError::BadLength));
                break;
            }
            // Preallocated space never written: the end (torn writes leave
            // non-zero bytes somewhere in the next stretch).
            Err(BatchError::Empty)
                if bytes[pos..bytes.len().min(pos + (1 << 20))]
                    .iter()
                    .all(|b| *b == 0) =>
            {
                break
            }
            Err(e) => {
                stopped = Some((pos as u64, e));
                break;
            }
        }
    }
    Scan {
        valid_len: pos as u64,
        next_offset: next,
        max_timestamp: max_ts,
        stopped,
        entries,
    }
}

/// Iterates whole batches of a byte range known to be valid.
pub fn batches(bytes: &[u8]) -> impl Iterator<Item = (BatchHeader, &[u8])> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let h = batch::parse_header(bytes.get(pos..)?, usize::MAX - batch::HEADER_LEN).ok()?;
        let end = pos + h.batch_len as usize;
        let payload = bytes.get(pos + batch::HEADER_LEN..end)?;
        pos = end;
        Some((h, payload))
    })
}
