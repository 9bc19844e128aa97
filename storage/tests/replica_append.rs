//! What replication needs from a log: batches stamped with the leader epoch
//! they were appended in, and copied byte for byte into another replica's
//! log (`append_raw`), refused when they do not start at its end or fail
//! their checksum.

mod common;

use common::{check, meta, payload, small};
use neo_storage::{FsyncPolicy, Log, StorageError};

#[test]
fn a_follower_copies_batches_byte_for_byte_and_keeps_their_epochs() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut leader, _) = Log::open(a.path(), small(FsyncPolicy::Never)).unwrap();
    let (mut follower, _) = Log::open(b.path(), small(FsyncPolicy::Never)).unwrap();
    for seq in 0..40u64 {
        leader.set_leader_epoch(1 + (seq / 10) as u32);
        leader
            .append(&meta(seq, 1 + (seq % 3) as u32), &payload(seq, 300))
            .unwrap();
    }
    // Copy in chunks the way a follower's fetches would, across segment rolls.
    let r = leader.reader();
    let mut at = 0;
    while at < r.end_offset() {
        let view = r.fetch(at, 1500).unwrap();
        let mut pos = 0;
        let bytes = view.bytes();
        for (h, _) in view.batches() {
            let len = h.batch_len as usize;
            let info = follower.append_raw(&bytes[pos..pos + len]).unwrap();
            assert_eq!(info.base_offset, h.base_offset);
            pos += len;
            at = h.last_offset() + 1;
        }
    }
    assert_eq!(follower.end_offset(), leader.end_offset());
    let (fr, lr) = (follower.reader(), leader.reader());
    let (fv, lv) = (fr.fetch(0, 1 << 20).unwrap(), lr.fetch(0, 1 << 20).unwrap());
    assert_eq!(fv.bytes(), lv.bytes(), "the first segment differs");
    let mut seq = 0;
    let mut at = 0;
    while at < fr.end_offset() {
        for (h, p) in fr.fetch(at, 1 << 20).unwrap().batches() {
            assert_eq!(check(p), Some(seq));
            assert_eq!(h.leader_epoch, 1 + (seq / 10) as u32);
            seq += 1;
            at = h.last_offset() + 1;
        }
    }
    assert_eq!(seq, 40);
}

#[test]
fn a_batch_not_at_the_end_or_with_a_bad_checksum_is_refused() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut leader, _) = Log::open(a.path(), small(FsyncPolicy::Never)).unwrap();
    let (mut follower, _) = Log::open(b.path(), small(FsyncPolicy::Never)).unwrap();
    for seq in 0..3 {
        leader.append(&meta(seq, 2), &payload(seq, 100)).unwrap();
    }
    let r = leader.reader();
    let view = r.fetch(0, 1 << 20).unwrap();
    let lens: Vec<usize> = view.batches().map(|(h, _)| h.batch_len as usize).collect();
    let bytes = view.bytes();
    // The second batch first: a gap.
    let second = &bytes[lens[0]..lens[0] + lens[1]];
    match follower.append_raw(second) {
        Err(StorageError::OffsetMismatch {
            expected: 0,
            got: 2,
        }) => {}
        other => panic!("expected an offset mismatch, got {other:?}"),
    }
    // A flipped payload bit.
    let mut bad = bytes[..lens[0]].to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        follower.append_raw(&bad),
        Err(StorageError::InvalidBatch(_))
    ));
    // Two batches in one call, or a cut one.
    assert!(follower.append_raw(&bytes[..lens[0] + lens[1]]).is_err());
    assert!(follower.append_raw(&bytes[..lens[0] - 1]).is_err());
    assert!(follower.append_raw(&[]).is_err());
    assert_eq!(follower.end_offset(), 0, "nothing refused was appended");
    follower.append_raw(&bytes[..lens[0]]).unwrap();
    follower.append_raw(second).unwrap();
    assert_eq!(follower.end_offset(), 4);
}

#[test]
fn a_follower_behind_its_leaders_log_start_restarts_there_and_survives_reopen() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut leader, _) = Log::open(a.path(), small(FsyncPolicy::Always)).unwrap();
    let (mut follower, _) = Log::open(b.path(), small(FsyncPolicy::Always)).unwrap();
    for seq in 0..40u64 {
        leader.append(&meta(seq, 1), &payload(seq, 1000)).unwrap();
    }
    // The follower copied the first 5 batches, then fell behind; the
    // leader's retention moved its start past what the follower needs.
    let r = leader.reader();
    for (h, _) in r.fetch(0, 1 << 20).unwrap().batches().take(5) {
        let bytes = r.fetch(h.base_offset, 1).unwrap();
        follower.append_raw(bytes.bytes()).unwrap();
    }
    let old = follower.reader().fetch(0, 1 << 20).unwrap();
    let old_batches = old.batches().count();
    leader.delete_before(20).unwrap();
    let start = leader.start_offset();
    assert!(
        start > follower.end_offset(),
        "the leader's start {start} passed the follower"
    );

    // Not backwards: the follower's own data is never cut this way.
    assert!(matches!(
        follower.restart_at(3),
        Err(StorageError::OffsetMismatch {
            expected: 5,
            got: 3
        })
    ));
    follower.restart_at(start).unwrap();
    assert_eq!(
        (follower.start_offset(), follower.end_offset()),
        (start, start)
    );
    assert_eq!(follower.durable_end(), start);
    // A reader holding a view of the old log keeps it.
    assert_eq!(old.batches().count(), old_batches);
    assert!(follower.reader().fetch(start, 1 << 20).unwrap().is_empty());
    // It copies on from the leader's start, and all of it is there after a reopen.
    let mut at = start;
    while at < r.end_offset() {
        let view = r.fetch(at, 1).unwrap();
        let info = follower.append_raw(view.bytes()).unwrap();
        at = info.last_offset + 1;
    }
    follower
        .append_durable(
            &meta(99, 1),
            &payload(99, 10),
            std::time::Duration::from_secs(5),
        )
        .unwrap();
    drop(follower);
    let (follower, _) = Log::open(b.path(), small(FsyncPolicy::Always)).unwrap();
    assert_eq!(follower.start_offset(), start);
    assert_eq!(follower.end_offset(), r.end_offset() + 1);
    let mut seen = 0;
    let mut at = start;
    while at < r.end_offset() {
        for (h, p) in follower.reader().fetch(at, 1 << 20).unwrap().batches() {
            if h.base_offset < r.end_offset() {
                assert_eq!(check(p), Some(h.base_offset), "batch at {}", h.base_offset);
                seen += 1;
            }
            at = h.last_offset() + 1;
        }
    }
    assert_eq!(seen, (r.end_offset() - start) as usize);
}
