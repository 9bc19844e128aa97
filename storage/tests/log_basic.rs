//! Appends, fetches, indexes, rolling, retention, truncation, reopening and
//! recovery from torn tails and corrupt middles.

mod common;

use std::time::Duration;

use common::{check, meta, payload, small};
use neo_storage::{FsyncPolicy, Log, LogConfig, StorageError};

fn fill(log: &mut Log, n: u64) -> Vec<(u64, u64)> {
    (0..n)
        .map(|seq| {
            let records = 1 + (seq % 3) as u32;
            let info = log
                .append(
                    &meta(seq, records),
                    &payload(seq, 100 + (seq as usize * 37) % 900),
                )
                .unwrap();
            (info.base_offset, seq)
        })
        .collect()
}

fn count_segments(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count()
}

/// Reads every batch from the start and returns (base offset, seq).
fn read_all(log: &neo_storage::LogReader) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut off = log.start_offset();
    while off < log.end_offset() {
        let v = log.fetch(off, 3000).unwrap();
        assert!(!v.is_empty());
        for (h, p) in v.batches() {
            out.push((h.base_offset, check(p).expect("intact payload")));
            off = h.last_offset() + 1;
        }
    }
    out
}

#[test]
fn append_fetch_roll_and_reopen_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, rep) = Log::open(dir.path(), small(FsyncPolicy::Never)).unwrap();
    assert_eq!(rep.segments, 0);
    let written = fill(&mut log, 200);
    let r = log.reader();
    assert_eq!(read_all(&r), written);
    let segments = count_segments(dir.path());
    assert!(segments > 5, "rolled by size into {segments} segments");
    // Fetch from the middle of a multi-record batch returns that batch.
    let (base, _) = written[100];
    let v = r.fetch(base + 1, 1).unwrap();
    let first = v.batches().next().unwrap().0;
    assert!(first.base_offset <= base + 1 && first.last_offset() > base);
    assert_eq!(r.fetch(r.end_offset(), 100).unwrap().bytes().len(), 0);
    assert!(matches!(
        r.fetch(r.end_offset() + 1, 100),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    let end = log.end_offset();
    log.close().unwrap();
    let (log, rep) = Log::open(dir.path(), small(FsyncPolicy::Never)).unwrap();
    assert!(rep.clean_shutdown && rep.notes.is_empty(), "{rep:?}");
    assert_eq!(log.end_offset(), end);
    assert_eq!(read_all(&log.reader()), written);
}

#[test]
fn offsets_by_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), small(FsyncPolicy::Never)).unwrap();
    let written = fill(&mut log, 100);
    let r = log.reader();
    // meta(seq) stamps batch seq at 1000 + seq.
    assert_eq!(r.offset_for_timestamp(1_050).unwrap(), Some(written[50].0));
    assert_eq!(r.offset_for_timestamp(0).unwrap(), Some(0));
    assert_eq!(r.offset_for_timestamp(5_000).unwrap(), None);
}

#[test]
fn durability_follows_the_fsync_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), small(FsyncPolicy::Always)).unwrap();
    let info = log
        .append_durable(&meta(0, 1), &payload(0, 10), Duration::from_secs(10))
        .unwrap();
    assert!(log.durable_end() > info.last_offset);
    let info = log.append(&meta(1, 1), &payload(1, 10)).unwrap();
    assert!(log
        .durability()
        .wait_for(info.last_offset, Duration::from_secs(10)));

    let dir = tempfile::tempdir().unwrap();
    let cfg = small(FsyncPolicy::Interval(Duration::from_millis(5)));
    let (mut log, _) = Log::open(dir.path(), cfg).unwrap();
    let info = log.append(&meta(0, 1), &payload(0, 10)).unwrap();
    assert!(log
        .durability()
        .wait_for(info.last_offset, Duration::from_secs(10)));

    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), small(FsyncPolicy::Never)).unwrap();
    let info = log.append(&meta(0, 1), &payload(0, 10)).unwrap();
    assert_eq!(log.durable_end(), 0, "never: not durable until a sync");
    log.sync().unwrap();
    assert!(log.durable_end() > info.last_offset);
}

#[test]
fn close_does_not_wait_out_a_long_fsync_interval() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small(FsyncPolicy::Interval(Duration::from_secs(3600)));
    let (mut log, _) = Log::open(dir.path(), cfg).unwrap();
    log.append(&meta(0, 1), &payload(0, 10)).unwrap();
    // The flusher is inside its hour-long wait; close must cut it short
    // (before the fix it slept the whole interval). Bounded by a watchdog
    // rather than a timing assertion: the test fails instead of hanging.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(log.close().map_err(|e| e.to_string())));
    let closed = rx.recv_timeout(Duration::from_secs(120));
    assert!(
        matches!(closed, Ok(Ok(()))),
        "close did not return: {closed:?}"
    );
    let (log, report) = Log::open(dir.path(), small(FsyncPolicy::Never)).unwrap();
    assert!(report.clean_shutdown);
    assert_eq!(log.end_offset(), 1);
}

#[test]
fn bad_input_is_refused_with_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), small(FsyncPolicy::Never)).unwrap();
    assert!(matches!(
        log.append(&meta(0, 0), b"x"),
        Err(StorageError::InvalidBatch(_))
    ));
    assert!(matches!(
        log.append(&meta(0, 1), &vec![0u8; 5000]),
        Err(StorageError::BatchTooLarge {
            len: 5000,
            max: 4096
        })
    ));
    let bad = LogConfig {
        segment_bytes: 1 << 10,
        max_batch: 4 << 10,
        ..LogConfig::default()
    };
    assert!(matches!(
        Log::open(dir.path().join("x"), bad),
        Err(StorageError::Config(_))
    ));
    assert_eq!(log.end_offset(), 0, "nothing appended");
}

#[cfg(unix)]
#[test]
fn unwritable_directory_is_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    if unsafe_is_root() {
        eprintln!("SKIPPED permission check: running as root, which ignores file modes");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
    let r = Log::open(dir.path().join("p"), small(FsyncPolicy::Never));
    assert!(
        matches!(r, Err(StorageError::PermissionDenied { .. })),
        "{:?}",
        r.err()
    );
}

fn unsafe_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

#[test]
fn retention_by_size_keeps_readers_working() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        retention_bytes: Some(40 << 10),
        ..small(FsyncPolicy::Never)
    };
    let (mut log, _) = Log::open(dir.path(), cfg).unwrap();
    fill(&mut log, 300);
    let r = log.reader();
    let early = r.fetch(0, 1000).unwrap();
    let rep = log.apply_retention().unwrap();
    assert!(
        rep.segments_deleted > 0 && rep.new_start_offset > 0,
        "{rep:?}"
    );
    assert_eq!(r.start_offset(), rep.new_start_offset);
    // A view taken before retention still reads its (deleted) segment.
    assert_eq!(check(early.batches().next().unwrap().1), Some(0));
    assert!(matches!(
        r.fetch(0, 10),
        Err(StorageError::OffsetOutOfRange { .. })
    ));
    assert!(!read_all(&r).is_empty());
}

#[test]
fn delete_before_drops_whole_segments_below_an_offset_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), small(FsyncPolicy::Never)).unwrap();
    fill(&mut log, 300);
    assert!(count_segments(dir.path()) > 2);
    let cut = 200;
    let rep = log.delete_before(cut).unwrap();
    assert!(rep.segments_deleted > 0, "{rep:?}");
    // Only segments wholly below the cut go: the start is at or before it.
    assert!(
        rep.new_start_offset > 0 && rep.new_start_offset <= cut,
        "{rep:?}"
    );
    let r = log.reader();
    assert_eq!(r.start_offset(), rep.new_start_offset);
    assert!(r.fetch(cut, 100).is_ok());
    // Beyond the end, the active segment is never deleted.
    let end = log.end_offset();
    log.delete_before(u64::MAX).unwrap();
    assert_eq!(log.end_offset(), end);
    assert_eq!(count_segments(dir.path()), 1);
    let start = log.start_offset();
    assert!(start > rep.new_start_offset);
    log.close().unwrap();
    let (log, _) = Log::open(dir.path(), small(FsyncPolicy::Never)).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (start, end));
}

#[test]
fn truncate_to_an_offset_then_append_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), small(FsyncPolicy::Never)).unwrap();
    let written = fill(&mut log, 150);
    let r = log.reader();
    // Batch 121 holds two records: cutting between them drops the whole batch.
    let cut = written[121].0;
    assert_eq!(written[122].0, cut + 2);
    let held = r.fetch(written[125].0, 10).unwrap();
    let end = log.truncate_to(cut + 1).unwrap();
    assert_eq!(end, cut, "the batch straddling the point goes too");
    assert_eq!(read_all(&r), written[..121].to_vec());
    assert_eq!(
        check(held.batches().next().unwrap().1),
        Some(125),
        "old views keep old bytes"
    );
    let info = log.append(&meta(999, 1), &payload(999, 50)).unwrap();
    assert_eq!(info.base_offset, cut);
    log.close().unwrap();
    let (log, _) = Log::open(dir.path(), small(FsyncPolicy::Never)).unwrap();
    let all = read_all(&log.reader());
    assert_eq!(all.len(), 122);
    assert_eq!(all[121], (cut, 999));
}

#[test]
fn torn_tail_is_truncated_and_a_corrupt_middle_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = Log::open(dir.path(), small(FsyncPolicy::Never)).unwrap();
    let written = fill(&mut log, 200);
    log.sync().unwrap();
    drop(log); // no clean marker: the next open scans everything
    let mut logs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    // Tear the last batch of the last segment (its file is preallocated:
    // the data ends at the last non-zero byte).
    let last = logs.last().unwrap();
    let mut bytes = std::fs::read(last).unwrap();
    let end = bytes.iter().rposition(|b| *b != 0).unwrap() + 1;
    bytes[end - 10..end].fill(0xab);
    std::fs::write(last, &bytes).unwrap();
    // Flip a byte in the middle of the third segment.
    let mid = &logs[2];
    let mut bytes = std::fs::read(mid).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(mid, &bytes).unwrap();

    let (log, rep) = Log::open(dir.path(), small(FsyncPolicy::Never)).unwrap();
    assert!(rep.truncated_bytes > 0, "{rep:?}");
    assert_eq!(rep.quarantined.len(), 1, "{rep:?}");
    let (_, from, to) = rep.quarantined[0];
    let r = log.reader();
    assert!(matches!(
        r.fetch(from, 100),
        Err(StorageError::Quarantined { .. })
    ));
    // Everything outside the quarantined range and the torn tail reads back intact.
    let mut served = 0;
    for &(base, seq) in &written {
        if (from..to).contains(&base) || base >= log.end_offset() {
            continue;
        }
        let v = r.fetch(base, 1).unwrap();
        let (h, p) = v.batches().next().unwrap();
        assert_eq!((h.base_offset, check(p)), (base, Some(seq)));
        served += 1;
    }
    assert!(served > 150, "served {served}");
    assert_eq!(
        log.end_offset(),
        written.last().unwrap().0,
        "only the torn last batch is gone"
    );
}

#[test]
fn roll_by_age_and_retention_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_age: Some(Duration::from_millis(1)),
        retention_age: Some(Duration::from_secs(3600)),
        ..small(FsyncPolicy::Never)
    };
    let (mut log, _) = Log::open(dir.path(), cfg).unwrap();
    // Old timestamps (1970): past retention once their segment is sealed.
    log.append(&meta(0, 1), &payload(0, 10)).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let fresh = neo_storage::BatchMeta::simple(1, now);
    log.append(&fresh, &payload(1, 10)).unwrap();
    let logs = count_segments(dir.path());
    assert_eq!(logs, 2, "rolled by age");
    let rep = log.apply_retention().unwrap();
    assert_eq!(rep.segments_deleted, 1);
    assert_eq!(log.start_offset(), 1);
    assert!(log.reader().fetch(1, 100).is_ok());
}
