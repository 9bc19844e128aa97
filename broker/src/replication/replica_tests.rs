//! The leader's bookkeeping: high watermark, divergence, ISR changes.

use super::*;

fn state(leader: NodeId, epoch: u32, isr: &[NodeId]) -> PartitionState {
    PartitionState {
        replicas: vec![1, 2, 3],
        leader: Some(leader),
        leader_epoch: epoch,
        isr: isr.to_vec(),
        partition_epoch: 0,
    }
}

fn leader(epochs: &[(u32, u64)], leo: u64, now: Instant) -> Replica {
    let mut r = Replica::clustered(EpochCache::memory());
    for &(e, s) in epochs {
        r.epochs.assign(e, s).unwrap();
    }
    let last = epochs.last().map_or(0, |x| x.0);
    r.become_leader(&state(1, last, &[1, 2, 3]), leo, now)
        .unwrap();
    r
}

#[test]
fn the_high_watermark_waits_for_every_in_sync_replica_and_never_goes_back() {
    let t = Instant::now();
    let mut r = leader(&[(0, 0)], 10, t);
    assert!(!r.advance_hw(1, 10), "no follower heard from yet");
    assert_eq!(r.high_watermark(10), 0);
    assert_eq!(r.on_fetch(2, 7, Some(0), 10, t), None);
    assert!(!r.advance_hw(1, 10), "follower 3 not heard from");
    assert_eq!(r.on_fetch(3, 4, Some(0), 10, t), None);
    assert!(r.advance_hw(1, 10));
    assert_eq!(r.high_watermark(10), 4);
    r.on_fetch(3, 10, Some(0), 10, t);
    r.advance_hw(1, 10);
    assert_eq!(r.high_watermark(10), 7, "the slowest in-sync replica");
    // A follower behind the watermark (after its restart) cannot pull it back.
    r.on_fetch(2, 2, Some(0), 10, t);
    r.advance_hw(1, 10);
    assert_eq!(r.high_watermark(10), 7);
}

#[test]
fn a_follower_with_a_tail_from_an_older_epoch_is_told_where_to_truncate() {
    let t = Instant::now();
    // Leader history: epoch 1 from 0, epoch 3 from 10; log end 15.
    let mut r = leader(&[(1, 0), (3, 10)], 15, t);
    // Same history, behind: fine.
    assert_eq!(r.on_fetch(2, 12, Some(3), 15, t), None);
    assert_eq!(r.on_fetch(2, 8, Some(1), 15, t), None);
    // It led epoch 2 past offset 10 (never committed): truncate to 10.
    assert_eq!(r.on_fetch(2, 13, Some(2), 15, t), Some((1, 10)));
    // Its epoch-1 tail runs past where epoch 1 ended here.
    assert_eq!(r.on_fetch(2, 11, Some(1), 15, t), Some((1, 10)));
    // Ahead of the leader within the current epoch cannot happen, but is
    // still refused rather than served.
    assert_eq!(r.on_fetch(2, 16, Some(3), 15, t), Some((3, 15)));
    // A history entirely before the leader's first epoch.
    let mut r = leader(&[(4, 5)], 8, t);
    assert_eq!(r.on_fetch(3, 7, Some(2), 8, t), Some((0, 5)));
}

#[test]
fn a_lagging_follower_leaves_the_isr_and_joins_again_once_caught_up() {
    let t = Instant::now();
    let lag = Duration::from_secs(2);
    let mut r = leader(&[(0, 0)], 10, t);
    r.on_fetch(2, 10, Some(0), 10, t);
    r.on_fetch(3, 10, Some(0), 10, t);
    r.advance_hw(1, 10);
    assert_eq!(
        r.wanted_isr(1, t + Duration::from_secs(1), lag, |_| true),
        None
    );
    // 3 keeps fetching but stays behind the log end; 2 is caught up.
    let later = t + Duration::from_secs(3);
    r.on_fetch(2, 20, Some(0), 20, later);
    r.on_fetch(3, 12, Some(0), 20, later);
    assert_eq!(r.wanted_isr(1, later, lag, |_| true), Some(vec![1, 2]));
    r.mark_alter_sent(later);
    assert_eq!(
        r.wanted_isr(1, later, lag, |_| true),
        None,
        "one change at a time"
    );
    r.update_isr(&PartitionState {
        isr: vec![1, 2],
        partition_epoch: 1,
        ..state(1, 0, &[1, 2])
    });
    r.advance_hw(1, 20);
    assert_eq!(r.high_watermark(20), 20, "3 no longer holds it back");
    // 3 catches up to the watermark: it may join.
    let later2 = later + Duration::from_secs(1);
    r.on_fetch(3, 20, Some(0), 20, later2);
    assert_eq!(r.wanted_isr(1, later2, lag, |_| true), Some(vec![1, 2, 3]));
    // Not while the metadata has it fenced, nor once it stopped fetching.
    assert_eq!(r.wanted_isr(1, later2, lag, |b| b != 3), None);
    let later3 = later2 + Duration::from_millis(1500);
    r.on_fetch(2, 20, Some(0), 20, later3);
    assert_eq!(r.wanted_isr(1, later3, lag, |_| true), None);
}

#[test]
fn a_refused_isr_change_is_not_resent_on_every_metadata_change() {
    let t = Instant::now();
    let lag = Duration::from_secs(2);
    let mut r = leader(&[(0, 0)], 10, t);
    r.on_fetch(2, 10, Some(0), 10, t);
    let later = t + Duration::from_secs(3);
    r.on_fetch(2, 10, Some(0), 10, later);
    assert_eq!(r.wanted_isr(1, later, lag, |_| true), Some(vec![1, 2]));
    r.mark_alter_sent(later);
    // Another command was applied (say, the refusal itself): same epochs.
    r.update_isr(&state(1, 0, &[1, 2, 3]));
    assert_eq!(r.wanted_isr(1, later, lag, |_| true), None);
    // The ISR really changed: a new request may go.
    r.update_isr(&PartitionState {
        partition_epoch: 1,
        ..state(1, 0, &[1, 2, 3])
    });
    assert_eq!(r.wanted_isr(1, later, lag, |_| true), Some(vec![1, 2]));
}

#[test]
fn only_the_leader_takes_produces_and_acks_all_needs_min_isr() {
    let t = Instant::now();
    let mut r = leader(&[(0, 0)], 0, t);
    assert!(r.check_produce("t", 0, true, 3).is_ok());
    r.update_isr(&state(1, 0, &[1]));
    assert!(matches!(
        r.check_produce("t", 0, true, 2),
        Err(BrokerError::NotEnoughReplicas {
            in_sync: 1,
            required: 2,
            ..
        })
    ));
    assert!(
        r.check_produce("t", 0, false, 2).is_ok(),
        "acks=1 still goes"
    );
    r.role = Role::Follower {
        leader: 2,
        epoch: 1,
    };
    assert!(matches!(
        r.check_produce("t", 0, false, 1),
        Err(BrokerError::NotLeader {
            leader: Some(2),
            ..
        })
    ));
    assert!(Replica::single().check_produce("t", 0, true, 1).is_ok());
}
