//! Opening a log directory: find the segments, validate them batch by batch
//! (every segment after an unclean shutdown, only the last after a clean one),
//! truncate a torn tail, quarantine the corrupt part of a middle segment, and
//! rebuild indexes that are missing or wrong. See `docs/storage.md`.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::LogConfig;
use crate::error::{Ctx, Result};
use crate::index::{IndexWriter, Indexes};
use crate::segment::{file_name, scan, Segment};

pub const CLEAN_MARKER: &str = ".clean-shutdown";

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub clean_shutdown: bool,
    /// Bytes cut from the end of the last segment (a torn tail).
    pub truncated_bytes: u64,
    /// Segments whose bad part was moved aside: (file kept, offsets lost from, to).
    pub quarantined: Vec<(PathBuf, u64, u64)>,
    pub indexes_rebuilt: usize,
    /// Human-readable notes, one per problem.
    pub notes: Vec<String>,
}

/// A recovered segment ready for use; the last one becomes the active segment.
pub struct Recovered {
    pub segment: Arc<Segment>,
    pub len: u64,
}

fn segment_bases(dir: &Path) -> Result<Vec<u64>> {
    let mut bases = Vec::new();
    for e in fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
        let e = e.ctx(|| format!("listing {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".log") {
            if let Ok(b) = stem.parse::<u64>() {
                bases.push(b);
            }
        } else if name.ends_with(".tmp") {
            // Left by an interrupted truncation: the rename never happened.
            let _ = fs::remove_file(e.path());
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

pub fn recover(dir: &Path, cfg: &LogConfig) -> Result<(Vec<Recovered>, RecoveryReport)> {
    fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    let marker = dir.join(CLEAN_MARKER);
    let mut report = RecoveryReport {
        clean_shutdown: marker.exists(),
        ..Default::default()
    };
    if report.clean_shutdown {
        fs::remove_file(&marker).ctx(|| format!("removing {}", marker.display()))?;
    }
    let bases = segment_bases(dir)?;
    let mut out: Vec<Recovered> = Vec::with_capacity(bases.len());
    let mut expected: Option<u64> = None;
    for (i, &base) in bases.iter().enumerate() {
        let last = i + 1 == bases.len();
        let log_path = dir.join(file_name(base, "log"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .ctx(|| format!("opening {}", log_path.display()))?;
        let file_len = file
            .metadata()
            .ctx(|| format!("reading {}", log_path.display()))?
            .len();
        if let Some(e) = expected {
            if base < e {
                report.notes.push(format!(
                    "{} starts at {base}, below the previous segment's end {e}",
                    log_path.display()
                ));
            }
        }
        let bytes = crate::mmap::Map::new(&file, file_len as usize)
            .ctx(|| format!("mapping {}", log_path.display()))?;
        let all = bytes.bytes();
        let (idx, tidx) = (
            dir.join(file_name(base, "index")),
            dir.join(file_name(base, "timeindex")),
        );
        // After a clean shutdown sealed segments are trusted up to their
        // indexes' last entry; everything else is scanned.
        let loaded = if report.clean_shutdown && !last {
            Indexes::load(&idx, &tidx, file_len).filter(|l| l.points_at_batches(all, base))
        } else {
            None
        };
        let (start_pos, start_off) = match loaded.as_ref().and_then(|l| l.last_offset_entry()) {
            Some((rel, pos)) => (pos as u64, base + rel as u64),
            None => (0, base),
        };
        let s = scan(
            all,
            base,
            start_pos,
            start_off,
            cfg.max_batch,
            cfg.index_interval,
        );
        let mut valid = s.valid_len;
        if let Some((pos, why)) = s.stopped {
            if last {
                report.truncated_bytes = file_len.saturating_sub(pos);
                report.notes.push(format!(
                    "{}: {} at byte {pos}; torn tail of {} bytes truncated",
                    log_path.display(),
                    why.describe(),
                    report.truncated_bytes
                ));
            } else {
                // Keep the bad bytes for inspection; serve what precedes them.
                let kept = dir.join(format!("{}.quarantined-{pos}", file_name(base, "log")));
                fs::write(&kept, &all[pos as usize..])
                    .ctx(|| format!("writing {}", kept.display()))?;
                let to = bases[i + 1];
                report.notes.push(format!(
                    "{}: {} at byte {pos}; offsets [{}, {to}) quarantined in {}",
                    log_path.display(),
                    why.describe(),
                    s.next_offset,
                    kept.display()
                ));
                report.quarantined.push((kept, s.next_offset, to));
            }
            valid = pos;
        } else if !last && s.valid_len < file_len {
            // Sealed segments end exactly at their last batch; zeros past it
            // mean an unsynced roll. Nothing was lost that was durable.
            report.notes.push(format!(
                "{}: {} unwritten bytes after the last batch",
                log_path.display(),
                file_len - s.valid_len
            ));
        }
        drop(bytes);
        // Cut everything past the last valid batch, so the zeros the writer
        // preallocates later can never resurrect an old, unacknowledged batch.
        if valid < file_len {
            file.set_len(valid)
                .ctx(|| format!("truncating {}", log_path.display()))?;
        }
        let indexes = match loaded {
            Some(l) if s.stopped.is_none() => {
                for (rel, pos, ts) in s.entries.iter().skip(1) {
                    l.push_offset(*rel, *pos);
                    if l.last_time().is_none_or(|t| *ts > t) {
                        l.push_time(*ts, *rel);
                    }
                }
                l
            }
            _ => {
                report.indexes_rebuilt += 1;
                let l = Indexes::default();
                for (rel, pos, ts) in &s.entries {
                    l.push_offset(*rel, *pos);
                    if l.last_time().is_none_or(|t| *ts > t) {
                        l.push_time(*ts, *rel);
                    }
                }
                l
            }
        };
        IndexWriter::create(&idx, &tidx, &indexes)?.sync()?;
        // Sealed segments are mapped at their length; the last is remapped by
        // the writer at its capacity.
        let mapped = if last { 0 } else { valid };
        let seg = Segment::new(base, dir, &file, mapped, indexes)
            .ctx(|| format!("mapping {}", log_path.display()))?;
        let max_ts = s
            .max_timestamp
            .max(seg.indexes.last_time().unwrap_or(i64::MIN));
        seg.publish(valid, s.next_offset, max_ts);
        expected = Some(s.next_offset);
        out.push(Recovered {
            segment: Arc::new(seg),
            len: valid,
        });
    }
    report.segments = out.len();
    for n in &report.notes {
        tracing::warn!(dir = %dir.display(), "{n}");
    }
    Ok((out, report))
}

/// Opens `file` of a new or recovered active segment for writing at `len`.
pub fn open_active(path: &Path, len: u64, capacity: u64) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .ctx(|| format!("opening {}", path.display()))?;
    file.set_len(capacity.max(len))
        .ctx(|| format!("preallocating {}", path.display()))?;
    Ok(file)
}
