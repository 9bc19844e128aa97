//! Tests of the apply rules, directly on [`apply`].

use proptest::prelude::*;

use super::*;

fn reg(id: NodeId) -> Command {
    Command::RegisterBroker {
        id,
        addr: format!("10.0.0.{id}:9000"),
        kafka_addr: None,
    }
}

fn create(name: &str, partitions: u32, rf: u16) -> Command {
    Command::CreateTopic {
        name: name.into(),
        partitions,
        replication_factor: rf,
        config: serde_json::json!({"retention": 1}),
    }
}

fn cluster(n: u64) -> (ClusterMeta, u64) {
    let mut m = ClusterMeta::default();
    for id in 1..=n {
        assert_eq!(apply(&mut m, id, &reg(id)), Ok(Reply::Done));
    }
    (m, n)
}

fn part<'a>(m: &'a ClusterMeta, t: &str, p: usize) -> &'a PartitionState {
    &m.topics[t].partitions[p]
}

#[test]
fn committed_offsets_are_kept_per_group_survive_json_and_go_with_their_topic() {
    let (mut m, _) = cluster(3);
    apply(&mut m, 10, &create("t", 2, 3)).unwrap();
    apply(&mut m, 11, &create("u", 1, 1)).unwrap();
    let commit = |g: &str, o: Vec<(&str, u32, u64)>| Command::CommitOffsets {
        group: g.into(),
        offsets: o
            .into_iter()
            .map(|(t, p, off)| (t.to_string(), p, off, format!("md{off}")))
            .collect(),
    };
    assert_eq!(
        apply(
            &mut m,
            12,
            &commit("g", vec![("t", 0, 5), ("t", 1, 7), ("u", 0, 1)])
        ),
        Ok(Reply::Applied(12))
    );
    // A later commit replaces per partition (also backwards: a seek).
    apply(&mut m, 13, &commit("g", vec![("t", 0, 3)])).unwrap();
    apply(&mut m, 14, &commit("h", vec![("t", 1, 9)])).unwrap();
    assert_eq!(
        m.offsets["g"][&("t".to_string(), 0)],
        (3, "md3".to_string())
    );
    assert_eq!(
        m.offsets["g"][&("t".to_string(), 1)],
        (7, "md7".to_string())
    );
    assert_eq!(m.offsets["h"].len(), 1);
    // Unknown topic or partition, or no group: refused whole.
    let before = m.offsets.clone();
    assert!(matches!(
        apply(&mut m, 15, &commit("g", vec![("t", 0, 100), ("x", 0, 1)])),
        Err(ClusterError::UnknownTopic(_))
    ));
    assert!(matches!(
        apply(&mut m, 16, &commit("g", vec![("t", 2, 1)])),
        Err(ClusterError::UnknownPartition { .. })
    ));
    assert!(matches!(
        apply(&mut m, 17, &commit("", vec![("t", 0, 1)])),
        Err(ClusterError::InvalidRequest(_))
    ));
    assert_eq!(m.offsets, before);
    // Snapshots are JSON: the offsets make the round trip.
    let json = serde_json::to_vec(&m).unwrap();
    let back: ClusterMeta = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, m);
    // An image written before offsets existed still loads.
    let mut old: serde_json::Value = serde_json::from_slice(&json).unwrap();
    old.as_object_mut().unwrap().remove("offsets");
    let back: ClusterMeta = serde_json::from_value(old).unwrap();
    assert!(back.offsets.is_empty());
    // Deleting a topic drops its offsets; a group left with none goes.
    apply(&mut m, 18, &Command::DeleteTopic { name: "t".into() }).unwrap();
    assert_eq!(m.offsets["g"].len(), 1);
    assert!(!m.offsets.contains_key("h"));
}

#[test]
fn the_preferred_replica_gets_its_partition_back_once_alive_and_in_sync() {
    let (mut m, _) = cluster(3);
    apply(&mut m, 10, &create("t", 1, 3)).unwrap();
    let elect = Command::ElectPreferred {
        topic: "t".into(),
        partition: 0,
    };
    assert!(
        preferred_elections(&m, 0).is_empty(),
        "broker 1 leads already"
    );
    // Broker 1 fails: 2 leads, 1 leaves the ISR.
    apply(&mut m, 11, &Command::FenceBroker { id: 1 }).unwrap();
    assert_eq!(part(&m, "t", 0).leader, Some(2));
    assert!(preferred_elections(&m, 0).is_empty(), "1 is fenced");
    assert!(matches!(
        apply(&mut m, 12, &elect),
        Err(ClusterError::InvalidRequest(_))
    ));
    // Back, but not in sync yet: still no election.
    apply(&mut m, 13, &reg(1)).unwrap();
    assert!(preferred_elections(&m, 0).is_empty(), "1 is not in the ISR");
    assert!(matches!(
        apply(&mut m, 14, &elect),
        Err(ClusterError::InvalidRequest(_))
    ));
    // Caught up: the leader takes it back into the ISR, and 1 is elected.
    let p = part(&m, "t", 0).clone();
    let grow = AlterIsr {
        topic: "t".into(),
        partition: 0,
        leader: 2,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        isr: vec![2, 3, 1],
    };
    apply(&mut m, 15, &Command::AlterIsr(grow)).unwrap();
    assert_eq!(preferred_elections(&m, 0), vec![("t".to_string(), 0)]);
    let before = part(&m, "t", 0).clone();
    let Ok(Reply::Partition(after)) = apply(&mut m, 16, &elect) else {
        panic!("election refused")
    };
    assert_eq!(after.leader, Some(1));
    assert_eq!(after.leader_epoch, before.leader_epoch + 1);
    assert_eq!(after.partition_epoch, before.partition_epoch + 1);
    assert_eq!(after.isr, before.isr, "the ISR is unchanged");
    // Applied again (a retry): nothing changes.
    assert_eq!(
        apply(&mut m, 17, &elect),
        Ok(Reply::Partition(after.clone()))
    );
    assert_eq!(part(&m, "t", 0), &after);
    assert!(preferred_elections(&m, 0).is_empty());
    assert!(matches!(
        apply(
            &mut m,
            18,
            &Command::ElectPreferred {
                topic: "t".into(),
                partition: 9
            }
        ),
        Err(ClusterError::UnknownPartition { .. })
    ));
}

#[test]
fn create_spreads_leaders_and_refuses_duplicates_and_too_few_brokers() {
    let (mut m, _) = cluster(3);
    let Ok(Reply::Topic(t)) = apply(&mut m, 10, &create("t", 3, 3)) else {
        panic!("create failed")
    };
    let leaders: Vec<_> = t.partitions.iter().map(|p| p.leader).collect();
    assert_eq!(leaders, vec![Some(1), Some(2), Some(3)]);
    assert_eq!(t.partitions[1].replicas, vec![2, 3, 1]);
    assert_eq!(t.partitions[1].isr, vec![2, 3, 1]);
    assert_eq!(m.applied_index, 10);
    assert_eq!(
        apply(&mut m, 11, &create("t", 1, 1)),
        Err(ClusterError::TopicExists("t".into()))
    );
    assert_eq!(
        apply(&mut m, 12, &create("u", 1, 4)),
        Err(ClusterError::NotEnoughBrokers {
            alive: 3,
            needed: 4
        })
    );
    assert!(matches!(
        apply(&mut m, 13, &create("u", 0, 1)),
        Err(ClusterError::InvalidRequest(_))
    ));
    assert_eq!(m.applied_index, 13);
    assert_eq!(
        apply(&mut m, 14, &Command::DeleteTopic { name: "t".into() }),
        Ok(Reply::Done)
    );
    assert_eq!(
        apply(&mut m, 15, &Command::DeleteTopic { name: "t".into() }),
        Err(ClusterError::UnknownTopic("t".into()))
    );
}

#[test]
fn fence_moves_leadership_within_isr_and_register_restores_offline_leader() {
    let (mut m, _) = cluster(3);
    apply(&mut m, 4, &create("t", 3, 2)).unwrap();
    // p0: [1,2], p1: [2,3], p2: [3,1]
    apply(&mut m, 5, &Command::FenceBroker { id: 1 }).unwrap();
    assert!(m.brokers[&1].fenced);
    let p0 = part(&m, "t", 0);
    assert_eq!(
        (
            p0.leader,
            p0.isr.clone(),
            p0.leader_epoch,
            p0.partition_epoch
        ),
        (Some(2), vec![2], 1, 1)
    );
    let p2 = part(&m, "t", 2);
    assert_eq!(
        (
            p2.leader,
            p2.isr.clone(),
            p2.leader_epoch,
            p2.partition_epoch
        ),
        (Some(3), vec![3], 0, 1)
    );
    assert_eq!(
        part(&m, "t", 1).partition_epoch,
        0,
        "untouched partition keeps its epoch"
    );
    // Fencing the last ISR member takes the partition offline, ISR kept.
    apply(&mut m, 6, &Command::FenceBroker { id: 2 }).unwrap();
    let p0 = part(&m, "t", 0);
    assert_eq!(
        (p0.leader, p0.isr.clone(), p0.leader_epoch),
        (None, vec![2], 2)
    );
    // Broker 1 comes back: not in p0's ISR, so p0 stays offline (no unclean election).
    apply(&mut m, 7, &reg(1)).unwrap();
    assert_eq!(part(&m, "t", 0).leader, None);
    // Broker 2 comes back: leads p0 again with a new epoch.
    apply(&mut m, 8, &reg(2)).unwrap();
    let p0 = part(&m, "t", 0);
    assert_eq!(
        (p0.leader, p0.leader_epoch, p0.partition_epoch),
        (Some(2), 3, 3)
    );
    assert!(!m.brokers[&2].fenced);
    assert!(matches!(
        apply(&mut m, 9, &Command::FenceBroker { id: 42 }),
        Err(ClusterError::InvalidRequest(_))
    ));
}

#[test]
fn alter_isr_checks_epochs_and_membership() {
    let (mut m, _) = cluster(3);
    apply(&mut m, 4, &create("t", 1, 3)).unwrap();
    let req = |isr: Vec<NodeId>, le, pe| AlterIsr {
        topic: "t".into(),
        partition: 0,
        leader: 1,
        leader_epoch: le,
        partition_epoch: pe,
        isr,
    };
    assert!(matches!(
        apply(&mut m, 5, &Command::AlterIsr(req(vec![1, 2], 0, 7))),
        Err(ClusterError::StaleEpoch { .. })
    ));
    assert!(matches!(
        apply(&mut m, 5, &Command::AlterIsr(req(vec![1, 2], 3, 0))),
        Err(ClusterError::StaleEpoch { .. })
    ));
    assert!(matches!(
        apply(&mut m, 5, &Command::AlterIsr(req(vec![2, 3], 0, 0))),
        Err(ClusterError::InvalidIsr(_))
    ));
    assert!(matches!(
        apply(&mut m, 5, &Command::AlterIsr(req(vec![1, 1], 0, 0))),
        Err(ClusterError::InvalidIsr(_))
    ));
    assert!(matches!(
        apply(&mut m, 5, &Command::AlterIsr(req(vec![1, 9], 0, 0))),
        Err(ClusterError::InvalidIsr(_))
    ));
    let Ok(Reply::Partition(p)) = apply(&mut m, 6, &Command::AlterIsr(req(vec![1, 2], 0, 0)))
    else {
        panic!("shrink refused")
    };
    assert_eq!(
        (p.isr, p.partition_epoch, p.leader_epoch),
        (vec![1, 2], 1, 0)
    );
    apply(&mut m, 7, &Command::FenceBroker { id: 3 }).unwrap();
    assert_eq!(part(&m, "t", 0).partition_epoch, 1, "3 was not in the ISR");
    assert!(matches!(
        apply(&mut m, 8, &Command::AlterIsr(req(vec![1, 2, 3], 0, 1))),
        Err(ClusterError::InvalidIsr(_))
    ));
    apply(&mut m, 9, &reg(3)).unwrap();
    apply(&mut m, 10, &Command::AlterIsr(req(vec![1, 2, 3], 0, 1))).unwrap();
    assert_eq!(part(&m, "t", 0).isr, vec![1, 2, 3]);
    let unknown = AlterIsr {
        topic: "x".into(),
        ..req(vec![1], 0, 2)
    };
    assert_eq!(
        apply(&mut m, 11, &Command::AlterIsr(unknown)),
        Err(ClusterError::UnknownTopic("x".into()))
    );
    let bad_part = AlterIsr {
        partition: 5,
        ..req(vec![1], 0, 2)
    };
    assert!(matches!(
        apply(&mut m, 12, &Command::AlterIsr(bad_part)),
        Err(ClusterError::UnknownPartition { .. })
    ));
}

fn arb_command() -> impl Strategy<Value = Command> {
    let id = 1u64..=5;
    prop_oneof![
        id.clone().prop_map(reg),
        id.clone().prop_map(|id| Command::FenceBroker { id }),
        (0u8..3, 1u32..4, 1u16..4).prop_map(|(t, p, rf)| create(&format!("t{t}"), p, rf)),
        (0u8..3).prop_map(|t| Command::DeleteTopic {
            name: format!("t{t}")
        }),
        (
            0u8..3,
            0u32..3,
            id.clone(),
            0u32..4,
            0u32..6,
            proptest::collection::vec(id, 0..4)
        )
            .prop_map(
                |(t, partition, leader, leader_epoch, partition_epoch, isr)| {
                    Command::AlterIsr(AlterIsr {
                        topic: format!("t{t}"),
                        partition,
                        leader,
                        leader_epoch,
                        partition_epoch,
                        isr,
                    })
                }
            ),
        (0u8..3, 0u32..3).prop_map(|(t, partition)| Command::ElectPreferred {
            topic: format!("t{t}"),
            partition,
        }),
    ]
}

proptest! {
    #[test]
    fn random_commands_keep_invariants(cmds in proptest::collection::vec(arb_command(), 1..80)) {
        let mut m = ClusterMeta::default();
        for (i, cmd) in cmds.iter().enumerate() {
            let before = m.clone();
            let _ = apply(&mut m, i as u64 + 1, cmd);
            prop_assert_eq!(m.applied_index, i as u64 + 1);
            for (name, t) in &m.topics {
                for (pi, p) in t.partitions.iter().enumerate() {
                    prop_assert!(!p.isr.is_empty());
                    if let Some(l) = p.leader {
                        prop_assert!(p.isr.contains(&l), "leader {} not in isr {:?}", l, p.isr);
                        prop_assert!(!m.brokers[&l].fenced, "fenced leader {}", l);
                    }
                    prop_assert!(p.isr.iter().all(|r| p.replicas.contains(r)));
                    let Some(old) = before.topics.get(name).and_then(|t| t.partitions.get(pi)) else { continue };
                    prop_assert!(p.leader_epoch >= old.leader_epoch && p.partition_epoch >= old.partition_epoch);
                    prop_assert_eq!(p.leader_epoch != old.leader_epoch, p.leader != old.leader);
                    if p != old {
                        prop_assert!(p.partition_epoch > old.partition_epoch);
                    }
                }
            }
        }
    }
}

#[test]
fn leaders_move_back_only_past_the_imbalance_threshold() {
    // 20 partitions on 2 brokers: each preferred for 10.
    let (mut m, _) = cluster(2);
    apply(&mut m, 10, &create("t", 20, 2)).unwrap();
    let preferred_1: Vec<u32> = (0..20u32)
        .filter(|&i| part(&m, "t", i as usize).replicas[0] == 1)
        .collect();
    assert_eq!(preferred_1.len(), 10);
    // Broker 2 takes over broker 1's partitions one by one (1 stays in sync).
    let hand_over = |m: &mut ClusterMeta, i: u32| {
        let p = &mut m.topics.get_mut("t").unwrap().partitions[i as usize];
        p.leader = Some(2);
        p.leader_epoch += 1;
    };
    hand_over(&mut m, preferred_1[0]);
    // 1 of 10 (10 %) is not over 10 %: nothing moves; at 0 % it does.
    assert!(preferred_elections(&m, 10).is_empty());
    assert_eq!(
        preferred_elections(&m, 0),
        vec![("t".to_string(), preferred_1[0])]
    );
    hand_over(&mut m, preferred_1[1]);
    // 2 of 10 (20 %) is over: both go back.
    let mut got = preferred_elections(&m, 10);
    got.sort();
    let mut want = vec![
        ("t".to_string(), preferred_1[0]),
        ("t".to_string(), preferred_1[1]),
    ];
    want.sort();
    assert_eq!(got, want);
    // Over the threshold but out of the ISR: counted, not elected.
    let p = m
        .topics
        .get_mut("t")
        .unwrap()
        .partitions
        .get_mut(preferred_1[1] as usize)
        .unwrap();
    p.isr.retain(|&r| r != 1);
    assert_eq!(
        preferred_elections(&m, 10),
        vec![("t".to_string(), preferred_1[0])]
    );
    // At 100 % nothing ever moves.
    assert!(preferred_elections(&m, 100).is_empty());
}
