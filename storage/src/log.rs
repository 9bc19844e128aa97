//! The partition log: one writer ([`Log`]) and any number of readers
//! ([`LogReader`], cheap to clone, `Send + Sync`) over a directory of segments.

use std::fs::{self, File};
use std::io::{IoSlice, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::batch::{self, BatchHeader, BatchMeta, HEADER_LEN};
use crate::config::LogConfig;
use crate::error::{Ctx, Result, StorageError};
use crate::flusher::{Durability, Flusher, FsyncPolicy};
use crate::index::{IndexWriter, Indexes};
use crate::recovery::{open_active, recover, RecoveryReport, CLEAN_MARKER};
use crate::segment::{batches, file_name, Segment};

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: u64,
    pub last_offset: u64,
}

/// What retention removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    pub new_start_offset: u64,
}

struct Shared {
    dir: PathBuf,
    cfg: LogConfig,
    segments: RwLock<Vec<Arc<Segment>>>,
    start: AtomicU64,
    end: AtomicU64,
    durability: Arc<Durability>,
    quarantined: Mutex<Vec<(u64, u64)>>,
}

/// A cloneable read handle: fetches and lookups, from any thread.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

/// Whole batches read from one segment, lent from its memory map.
pub struct FetchView {
    segment: Option<Arc<Segment>>,
    start: usize,
    end: usize,
}

impl FetchView {
    /// The batches' bytes (headers included), as stored.
    pub fn bytes(&self) -> &[u8] {
        self.segment
            .as_ref()
            .map_or(&[], |s| &s.bytes()[self.start..self.end])
    }
    /// Each batch's header and payload.
    pub fn batches(&self) -> impl Iterator<Item = (BatchHeader, &[u8])> + '_ {
        batches(self.bytes())
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    /// Only the batches that end below `limit` (a replicated partition's
    /// high watermark: consumers never see past it).
    pub fn below(mut self, limit: u64) -> Self {
        let mut keep = 0;
        for (h, _) in self.batches() {
            if h.last_offset() >= limit {
                break;
            }
            keep += h.batch_len as usize;
        }
        self.end = self.start + keep;
        self
    }
}

struct Active {
    segment: Arc<Segment>,
    file: Arc<File>,
    index: IndexWriter,
    pos: u64,
    since_index: u64,
    max_ts: i64,
    opened: Instant,
}

/// The single writer of a partition log.
pub struct Log {
    reader: LogReader,
    active: Active,
    flusher: Flusher,
    /// Stamped into every batch [`Log::append`] writes.
    leader_epoch: u32,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, recovering it first.
    pub fn open(dir: impl AsRef<Path>, cfg: LogConfig) -> Result<(Self, RecoveryReport)> {
        cfg.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let (mut segs, report) = recover(&dir, &cfg)?;
        let quarantined: Vec<(u64, u64)> = report
            .quarantined
            .iter()
            .map(|(_, a, b)| (*a, *b))
            .collect();
        let (active_seg, active_len) = match segs.pop() {
            Some(r) => (r.segment, r.len),
            None => {
                let p = dir.join(file_name(0, "log"));
                File::create(&p).ctx(|| format!("creating {}", p.display()))?;
                (
                    Arc::new(
                        Segment::new(
                            0,
                            &dir,
                            &File::open(&p).ctx(|| "opening new segment".into())?,
                            0,
                            Indexes::default(),
                        )
                        .ctx(|| "mapping".into())?,
                    ),
                    0,
                )
            }
        };
        let start = segs.first().map_or(active_seg.base, |s| s.segment.base);
        let end = active_seg.next_offset();
        let durability = Arc::new(Durability::new(end));
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            segments: RwLock::new(segs.into_iter().map(|r| r.segment).collect()),
            start: AtomicU64::new(start),
            end: AtomicU64::new(end),
            durability: durability.clone(),
            quarantined: Mutex::new(quarantined),
            cfg: cfg.clone(),
        });
        let active = Self::activate(&shared, &active_seg, active_len)?;
        shared
            .segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(active.segment.clone());
        let flusher = Flusher::start(cfg.fsync, durability);
        Ok((
            Self {
                reader: LogReader { shared },
                active,
                flusher,
                leader_epoch: 0,
            },
            report,
        ))
    }

    /// Opens segment `seg` (recovered with `len` valid bytes) for appending:
    /// preallocated to capacity and mapped whole.
    fn activate(shared: &Shared, seg: &Segment, len: u64) -> Result<Active> {
        let path = seg.path("log");
        let mut file = open_active(&path, len, shared.cfg.segment_bytes)?;
        file.seek(SeekFrom::Start(len))
            .ctx(|| format!("seeking {}", path.display()))?;
        let cap = shared.cfg.segment_bytes.max(len);
        let mapped = Segment::new(seg.base, &shared.dir, &file, cap, Indexes::default())
            .ctx(|| format!("mapping {}", path.display()))?;
        mapped.publish(len, seg.next_offset(), seg.max_timestamp());
        // Index what the segment already holds.
        let scan = crate::segment::scan(
            mapped.bytes(),
            seg.base,
            0,
            seg.base,
            shared.cfg.max_batch,
            shared.cfg.index_interval,
        );
        let mut last_pos = None;
        for (rel, pos, ts) in scan.entries {
            mapped.indexes.push_offset(rel, pos);
            if mapped.indexes.last_time().is_none_or(|t| ts > t) {
                mapped.indexes.push_time(ts, rel);
            }
            last_pos = Some(pos);
        }
        let index =
            IndexWriter::create(&seg.path("index"), &seg.path("timeindex"), &mapped.indexes)?;
        let since_index = last_pos.map_or(shared.cfg.index_interval, |p| len - p as u64);
        Ok(Active {
            segment: Arc::new(mapped),
            file: Arc::new(file),
            index,
            pos: len,
            since_index,
            max_ts: seg.max_timestamp(),
            opened: Instant::now(),
        })
    }

    pub fn reader(&self) -> LogReader {
        self.reader.clone()
    }
    pub fn durability(&self) -> Arc<Durability> {
        self.reader.shared.durability.clone()
    }
    /// Offsets below this are on disk.
    pub fn durable_end(&self) -> u64 {
        self.reader.shared.durability.end()
    }
    pub fn end_offset(&self) -> u64 {
        self.reader.end_offset()
    }
    pub fn start_offset(&self) -> u64 {
        self.reader.start_offset()
    }
    /// The last fsync failure, if the durable offset is stuck.
    pub fn flush_error(&self) -> Option<String> {
        self.flusher.error()
    }

    /// The partition leader epoch stamped into batches appended from now on
    /// (a replica's own appends; [`Log::append_raw`] keeps the leader's).
    pub fn set_leader_epoch(&mut self, epoch: u32) {
        self.leader_epoch = epoch;
    }

    /// Appends one batch; the log assigns its offsets. No allocation.
    pub fn append(&mut self, meta: &BatchMeta, payload: &[u8]) -> Result<AppendInfo> {
        if meta.record_count == 0 {
            return Err(StorageError::InvalidBatch(
                "a batch needs at least one record",
            ));
        }
        let max = self.reader.shared.cfg.max_batch;
        if payload.len() > max {
            return Err(StorageError::BatchTooLarge {
                len: payload.len(),
                max,
            });
        }
        let base = self.reader.shared.end.load(Ordering::Acquire);
        let header = batch::encode_header(base, self.leader_epoch, meta, payload);
        self.write_batch(&header, payload, meta.record_count, meta.max_timestamp)
    }

    /// Appends a batch exactly as another replica's log holds it (header
    /// included: offsets, leader epoch and CRC are kept). It must start at
    /// this log's end and pass its checksum.
    pub fn append_raw(&mut self, bytes: &[u8]) -> Result<AppendInfo> {
        let max = self.reader.shared.cfg.max_batch;
        let h =
            batch::validate(bytes, max).map_err(|e| StorageError::InvalidBatch(e.describe()))?;
        if h.batch_len as usize != bytes.len() {
            return Err(StorageError::InvalidBatch(
                "bytes after the batch's declared length",
            ));
        }
        let end = self.reader.shared.end.load(Ordering::Acquire);
        if h.base_offset != end {
            return Err(StorageError::OffsetMismatch {
                expected: end,
                got: h.base_offset,
            });
        }
        let (header, payload) = bytes.split_at(HEADER_LEN);
        let header: &[u8; HEADER_LEN] = header.try_into().expect("split at the header length");
        self.write_batch(header, payload, h.meta.record_count, h.meta.max_timestamp)
    }

    /// Writes a batch whose header is made, at the log's end, and publishes it.
    fn write_batch(
        &mut self,
        header: &[u8; HEADER_LEN],
        payload: &[u8],
        record_count: u32,
        max_timestamp: i64,
    ) -> Result<AppendInfo> {
        let len = (HEADER_LEN + payload.len()) as u64;
        self.maybe_roll(len)?;
        let shared = &self.reader.shared;
        let a = &mut self.active;
        let base = shared.end.load(Ordering::Acquire);
        if let Err(e) = write_all_vectored(&a.file, header, payload) {
            // Nothing was published; rewind so the next append overwrites.
            let _ = (&*a.file).seek(SeekFrom::Start(a.pos));
            return Err(crate::error::io_err(
                format!("appending to {}", a.segment.path("log").display()),
                e,
            ));
        }
        let rel = (base - a.segment.base) as u32;
        if a.since_index >= shared.cfg.index_interval {
            a.index.append_offset(rel, a.pos as u32)?;
            a.segment.indexes.push_offset(rel, a.pos as u32);
            if max_timestamp > a.max_ts {
                a.index.append_time(max_timestamp, rel)?;
                a.segment.indexes.push_time(max_timestamp, rel);
            }
            a.since_index = 0;
        }
        a.pos += len;
        a.since_index += len;
        a.max_ts = a.max_ts.max(max_timestamp);
        let next = base + record_count as u64;
        a.segment.publish(a.pos, next, a.max_ts);
        shared.end.store(next, Ordering::Release);
        self.flusher.written(&a.file, next);
        Ok(AppendInfo {
            base_offset: base,
            last_offset: next - 1,
        })
    }

    /// Appends and waits until the batch is durable (fsync `always` or
    /// `interval`); with `never` it syncs itself.
    pub fn append_durable(
        &mut self,
        meta: &BatchMeta,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<AppendInfo> {
        let info = self.append(meta, payload)?;
        if self.reader.shared.cfg.fsync == FsyncPolicy::Never {
            self.sync()?;
        } else if !self
            .reader
            .shared
            .durability
            .wait_for(info.last_offset, timeout)
        {
            let why = self
                .flush_error()
                .unwrap_or_else(|| format!("not durable within {timeout:?}"));
            return Err(StorageError::Io {
                context: "waiting for durability".into(),
                source: std::io::Error::other(why),
            });
        }
        Ok(info)
    }

    /// Syncs the active segment now and advances the durable offset.
    pub fn sync(&mut self) -> Result<()> {
        let a = &self.active;
        a.file
            .sync_data()
            .ctx(|| format!("syncing {}", a.segment.path("log").display()))?;
        self.reader.shared.durability.advance(self.end_offset());
        Ok(())
    }

    fn maybe_roll(&mut self, len: u64) -> Result<()> {
        let cfg = &self.reader.shared.cfg;
        let full = self.active.pos + len > cfg.segment_bytes;
        let old = cfg
            .segment_age
            .is_some_and(|age| self.active.opened.elapsed() >= age)
            && self.active.pos > 0;
        if full || old {
            self.roll()?;
        }
        Ok(())
    }

    /// Seals the active segment and starts a new one at the log end.
    pub fn roll(&mut self) -> Result<()> {
        let shared = self.reader.shared.clone();
        let a = &self.active;
        let path = a.segment.path("log");
        // Shrink to the committed length: readers never read past it. No
        // fsync here: under `always`/`interval` the flusher already holds this
        // file and syncs it before the durable offset passes its end; under
        // `never` nothing is synced until `sync` or `close`.
        a.file
            .set_len(a.pos)
            .ctx(|| format!("sealing {}", path.display()))?;
        self.active.index.flush()?;
        let base = shared.end.load(Ordering::Acquire);
        let p = shared.dir.join(file_name(base, "log"));
        File::create(&p).ctx(|| format!("creating {}", p.display()))?;
        let fresh = Segment::new(
            base,
            &shared.dir,
            &File::open(&p).ctx(|| format!("opening {}", p.display()))?,
            0,
            Indexes::default(),
        )
        .ctx(|| format!("mapping {}", p.display()))?;
        fresh.publish(0, base, i64::MIN);
        self.active = Self::activate(&shared, &fresh, 0)?;
        shared
            .segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(self.active.segment.clone());
        Ok(())
    }

    /// Deletes sealed segments beyond the retention limits (never the active
    /// one). Readers holding a deleted segment keep reading it.
    pub fn apply_retention(&mut self) -> Result<RetentionReport> {
        let shared = &self.reader.shared;
        let now = now_ms();
        let n = {
            let segs = shared.segments.read().unwrap_or_else(|p| p.into_inner());
            let mut total: u64 = segs.iter().map(|s| s.committed()).sum();
            let mut n = 0;
            while n + 1 < segs.len() {
                let s = &segs[n];
                let too_big = shared.cfg.retention_bytes.is_some_and(|b| total > b);
                let too_old = shared
                    .cfg
                    .retention_age
                    .is_some_and(|a| s.max_timestamp() < now - a.as_millis() as i64);
                if !(too_big || too_old) {
                    break;
                }
                total -= s.committed();
                n += 1;
            }
            n
        };
        self.drop_front(n)
    }

    /// Deletes the sealed segments whose every offset is below `offset`
    /// (never the active one), moving the log start: how a compacted log
    /// drops what a newer snapshot has superseded.
    pub fn delete_before(&mut self, offset: u64) -> Result<RetentionReport> {
        let n = {
            let segs = self
                .reader
                .shared
                .segments
                .read()
                .unwrap_or_else(|p| p.into_inner());
            // Segment i holds [base_i, base_{i+1}).
            (0..segs.len().saturating_sub(1))
                .take_while(|&i| segs[i + 1].base <= offset)
                .count()
        };
        self.drop_front(n)
    }

    /// Removes the first `n` segments (the caller keeps the active one).
    fn drop_front(&mut self, n: usize) -> Result<RetentionReport> {
        let shared = &self.reader.shared;
        let mut report = RetentionReport::default();
        let doomed: Vec<Arc<Segment>> = shared
            .segments
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..n)
            .collect();
        for s in &doomed {
            report.segments_deleted += 1;
            report.bytes_deleted += s.committed();
            for ext in ["log", "index", "timeindex"] {
                let p = s.path(ext);
                fs::remove_file(&p).ctx(|| format!("deleting {}", p.display()))?;
            }
        }
        if let Some(first) = shared
            .segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .first()
        {
            shared.start.store(first.base, Ordering::Release);
            report.new_start_offset = first.base;
        }
        Ok(report)
    }

    /// Removes every batch with an offset at or above `offset` (whole batches:
    /// a batch straddling `offset` goes too). Returns the new end offset.
    /// Readers holding views of removed data keep the old bytes.
    pub fn truncate_to(&mut self, offset: u64) -> Result<u64> {
        let shared = self.reader.shared.clone();
        if offset >= shared.end.load(Ordering::Acquire) {
            return Ok(shared.end.load(Ordering::Acquire));
        }
        let mut segs = shared.segments.write().unwrap_or_else(|p| p.into_inner());
        // Drop whole segments at or above the offset (keep at least one).
        while segs.len() > 1 && segs.last().is_some_and(|s| s.base >= offset) {
            let s = segs.pop().expect("non-empty");
            for ext in ["log", "index", "timeindex"] {
                let _ = fs::remove_file(s.path(ext));
            }
        }
        let seg = segs.pop().expect("at least one segment");
        // Keep the batches that end below `offset`.
        let mut keep = 0usize;
        let mut end = seg.base;
        for (h, _) in batches(seg.bytes()) {
            if h.last_offset() >= offset {
                break;
            }
            keep += h.batch_len as usize;
            end = h.last_offset() + 1;
        }
        // Write the kept prefix to a new file and rename it over the old one:
        // readers of the old inode are unaffected.
        let path = seg.path("log");
        let tmp = shared
            .dir
            .join(format!("{}.tmp", file_name(seg.base, "log")));
        fs::write(&tmp, &seg.bytes()[..keep]).ctx(|| format!("writing {}", tmp.display()))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .ctx(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, &path).ctx(|| format!("replacing {}", path.display()))?;
        let f = File::open(&path).ctx(|| format!("opening {}", path.display()))?;
        let fresh = Segment::new(seg.base, &shared.dir, &f, keep as u64, Indexes::default())
            .ctx(|| format!("mapping {}", path.display()))?;
        let max_ts = batches(fresh_bytes(&fresh, keep))
            .map(|(h, _)| h.meta.max_timestamp)
            .max()
            .unwrap_or(i64::MIN);
        fresh.publish(keep as u64, end, max_ts);
        self.active = Self::activate(&shared, &fresh, keep as u64)?;
        segs.push(self.active.segment.clone());
        drop(segs);
        shared.end.store(end, Ordering::Release);
        shared.durability.reset(shared.durability.end().min(end));
        self.sync()?;
        Ok(end)
    }

    /// Empties the log and makes `offset` (at or past its end) both its
    /// start and its end: a replica so far behind that its leader no longer
    /// has the next offset (retention took it) starts over at the leader's
    /// log start. Readers holding old segments keep reading them.
    pub fn restart_at(&mut self, offset: u64) -> Result<()> {
        let shared = self.reader.shared.clone();
        let end = shared.end.load(Ordering::Acquire);
        if offset < end {
            return Err(StorageError::OffsetMismatch {
                expected: end,
                got: offset,
            });
        }
        if offset == end && shared.start.load(Ordering::Acquire) == end {
            return Ok(());
        }
        // Sealing the active segment and starting one at `offset` is a roll
        // with the end moved; then every older segment goes.
        self.sync()?;
        shared.end.store(offset, Ordering::Release);
        if let Err(e) = self.roll() {
            shared.end.store(end, Ordering::Release);
            return Err(e);
        }
        let older = shared
            .segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
            - 1;
        self.drop_front(older)?;
        shared.start.store(offset, Ordering::Release);
        shared.durability.reset(offset);
        Ok(())
    }

    /// Syncs everything and marks the shutdown clean, so the next open skips
    /// scanning sealed segments.
    pub fn close(mut self) -> Result<()> {
        self.active.index.flush()?;
        let a = &self.active;
        a.file
            .set_len(a.pos)
            .ctx(|| "sealing the active segment".into())?;
        self.sync()?;
        self.active.index.sync()?;
        let marker = self.reader.shared.dir.join(CLEAN_MARKER);
        File::create(&marker)
            .and_then(|f| f.sync_all())
            .ctx(|| format!("writing {}", marker.display()))?;
        Ok(())
    }
}

fn fresh_bytes(seg: &Segment, keep: usize) -> &[u8] {
    &seg.bytes()[..keep.min(seg.bytes().len())]
}

/// Writes header and payload with `writev`, looping over short writes.
fn write_all_vectored(mut file: &File, header: &[u8], payload: &[u8]) -> std::io::Result<()> {
    let total = header.len() + payload.len();
    let mut done = 0;
    while done < total {
        let n = if done < header.len() {
            file.write_vectored(&[IoSlice::new(&header[done..]), IoSlice::new(payload)])?
        } else {
            file.write(&payload[done - header.len()..])?
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        done += n;
    }
    Ok(())
}

impl LogReader {
    pub fn start_offset(&self) -> u64 {
        self.shared.start.load(Ordering::Acquire)
    }
    pub fn end_offset(&self) -> u64 {
        self.shared.end.load(Ordering::Acquire)
    }
    pub fn durable_end(&self) -> u64 {
        self.shared.durability.end()
    }

    fn segment_for(&self, offset: u64) -> Option<Arc<Segment>> {
        let segs = self
            .shared
            .segments
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let i = segs.partition_point(|s| s.base <= offset);
        (i > 0).then(|| segs[i - 1].clone())
    }

    /// Whole batches from the one containing `offset`, up to `max_bytes` (at
    /// least one batch, however large), from one segment. An empty view at
    /// the log end. Every batch is checksummed before it is served.
    pub fn fetch(&self, offset: u64, max_bytes: usize) -> Result<FetchView> {
        let (start, end) = (self.start_offset(), self.end_offset());
        if offset == end {
            return Ok(FetchView {
                segment: None,
                start: 0,
                end: 0,
            });
        }
        if offset < start || offset > end {
            return Err(StorageError::OffsetOutOfRange { offset, start, end });
        }
        if let Some(&(from, to)) = self
            .shared
            .quarantined
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(a, b)| (*a..*b).contains(&offset))
        {
            return Err(StorageError::Quarantined { from, to });
        }
        let seg = self
            .segment_for(offset)
            .ok_or(StorageError::OffsetOutOfRange { offset, start, end })?;
        let bytes = seg.bytes();
        let corrupt = |pos: usize, why: &str| StorageError::Corrupt {
            segment: seg.path("log"),
            position: pos as u64,
            reason: why.into(),
        };
        let mut pos = seg.indexes.position_for((offset - seg.base) as u32) as usize;
        // Find the batch containing `offset`.
        loop {
            let h = batch::parse_header(bytes.get(pos..).unwrap_or(&[]), self.shared.cfg.max_batch)
                .map_err(|e| corrupt(pos, e.describe()))?;
            if h.last_offset() >= offset {
                break;
            }
            pos += h.batch_len as usize;
        }
        let first = pos;
        let mut stop = pos;
        while stop < bytes.len() {
            let rest = &bytes[stop..];
            let h = if self.shared.cfg.verify_on_fetch {
                batch::validate(rest, self.shared.cfg.max_batch)
            } else {
                batch::parse_header(rest, self.shared.cfg.max_batch)
            }
            .map_err(|e| corrupt(stop, e.describe()))?;
            if stop > first && stop - first + h.batch_len as usize > max_bytes {
                break;
            }
            stop += h.batch_len as usize;
        }
        Ok(FetchView {
            segment: Some(seg.clone()),
            start: first,
            end: stop,
        })
    }

    /// Base offset of the first batch whose max timestamp is at or after `ts`.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<u64>> {
        let segs: Vec<Arc<Segment>> = self
            .shared
            .segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for seg in segs.iter().filter(|s| s.max_timestamp() >= ts) {
            let rel = seg.indexes.rel_for_timestamp(ts);
            let pos = seg.indexes.position_for(rel) as usize;
            if let Some((h, _)) = batches(&seg.bytes()[pos.min(seg.bytes().len())..])
                .find(|(h, _)| h.meta.max_timestamp >= ts)
            {
                return Ok(Some(h.base_offset));
            }
        }
        Ok(None)
    }

    /// Offset ranges lost to quarantined segment parts.
    pub fn quarantined(&self) -> Vec<(u64, u64)> {
        self.shared
            .quarantined
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
