//! Three-member controller quorums on 127.0.0.1: convergence, forwarding,
//! ISR changes, failover, restart and controlled shutdown.

mod common;

use std::time::{Duration, Instant};

use common::*;
use neo_cluster::{AlterIsr, ClusterError, Controller, NodeId};

#[test]
fn three_nodes_converge_forward_and_alter_isr() {
    let root = tempfile::tempdir().unwrap();
    let (_, nodes) = start_three(root.path());
    let leader = leader_of(&nodes);
    // Create on a non-leader: forwarded to the leader.
    let follower = nodes.keys().copied().find(|&id| id != leader).unwrap();
    let t = nodes[&follower]
        .create_topic(
            "orders",
            3,
            3,
            serde_json::json!({"segment_bytes": 1024}),
            T,
        )
        .unwrap();
    assert_eq!(t.partitions.len(), 3);
    let meta = wait_converged(&nodes);
    let topic = &meta.topics["orders"];
    let mut leaders: Vec<NodeId> = topic.partitions.iter().map(|p| p.leader.unwrap()).collect();
    leaders.sort();
    assert_eq!(leaders, vec![1, 2, 3], "leaders spread over brokers");
    assert!(topic.partitions.iter().all(|p| p.isr.len() == 3));
    assert_eq!(
        nodes[&follower].create_topic("orders", 1, 1, serde_json::Value::Null, T),
        Err(ClusterError::TopicExists("orders".into()))
    );
    assert_eq!(
        nodes[&leader].meta_version(),
        nodes[&leader].meta().applied_index
    );

    // ISR changes: stale refused, shrink then expand accepted.
    let p = &topic.partitions[0];
    let l = p.leader.unwrap();
    let req = |isr: Vec<NodeId>, pe: u32| AlterIsr {
        topic: "orders".into(),
        partition: 0,
        leader: l,
        leader_epoch: p.leader_epoch,
        partition_epoch: pe,
        isr,
    };
    let stale = nodes[&follower].alter_isr(req(vec![l], p.partition_epoch + 1), T);
    assert!(
        matches!(stale, Err(ClusterError::StaleEpoch { .. })),
        "{stale:?}"
    );
    let shrunk = nodes[&follower]
        .alter_isr(req(vec![l], p.partition_epoch), T)
        .unwrap();
    assert_eq!(
        (shrunk.isr.clone(), shrunk.partition_epoch),
        (vec![l], p.partition_epoch + 1)
    );
    let grown = nodes[&l]
        .alter_isr(req(p.replicas.clone(), shrunk.partition_epoch), T)
        .unwrap();
    assert_eq!(grown.isr, p.replicas);
    let status = nodes[&follower].status(T).unwrap();
    assert_eq!(status.controller_leader, Some(leader));
    assert_eq!(status.voters.len(), 3);
    assert_eq!(status.brokers.len(), 3);
    assert!(status.voters.iter().all(|v| v.matched_index.is_some()));
    nodes[&leader].delete_topic("orders", T).unwrap();
    assert_eq!(
        nodes[&follower].delete_topic("orders", T),
        Err(ClusterError::UnknownTopic("orders".into()))
    );
    for (_, c) in nodes {
        c.shutdown();
    }
}

#[test]
fn leader_failover_fences_reelects_and_restart_rejoins() {
    let root = tempfile::tempdir().unwrap();
    let (v, mut nodes) = start_three(root.path());
    let killed = leader_of(&nodes);
    nodes[&killed]
        .create_topic("t", 3, 3, serde_json::Value::Null, T)
        .unwrap();
    let before = wait_converged(&nodes);
    let led: Vec<usize> = before.topics["t"]
        .partitions
        .iter()
        .enumerate()
        .filter(|(_, p)| p.leader == Some(killed))
        .map(|(i, _)| i)
        .collect();
    assert!(!led.is_empty(), "the raft leader leads a partition");

    let stopped_at = Instant::now();
    nodes.remove(&killed).unwrap().shutdown();
    let survivor = nodes.keys().copied().next().unwrap();
    let moved = |m: &neo_cluster::ClusterMeta| {
        led.iter().all(|&i| {
            let p = &m.topics["t"].partitions[i];
            p.leader.is_some_and(|l| l != killed)
        })
    };
    assert!(wait_until(Duration::from_secs(10), || moved(
        &nodes[&survivor].meta()
    )));
    let failover = stopped_at.elapsed();
    println!("failover: partition leader moved {failover:?} after stopping node {killed}");
    let new_leader = leader_of(&nodes);
    assert_ne!(new_leader, killed);
    let after = wait_converged(&nodes);
    assert!(after.brokers[&killed].fenced);
    for (i, p) in after.topics["t"].partitions.iter().enumerate() {
        let old = &before.topics["t"].partitions[i];
        assert!(!p.isr.contains(&killed), "fenced broker left in ISR {i}");
        if led.contains(&i) {
            assert_eq!(p.leader_epoch, old.leader_epoch + 1);
            assert!(old.isr.contains(&p.leader.unwrap()));
        }
    }

    // Restart from the same dir: rejoins, unfenced, topics intact.
    let restarted = Controller::start(config(killed, &v, root.path())).unwrap();
    nodes.insert(killed, restarted);
    wait_registered(&nodes, &[1, 2, 3]);
    let m = wait_converged(&nodes);
    assert_eq!(m.topics["t"].partitions.len(), 3);
    assert!(!m.brokers[&killed].fenced);
    for (_, c) in nodes {
        c.shutdown();
    }
}

#[test]
fn whole_cluster_restart_recovers_from_log_and_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let v = voters(3);
    let start = |v: &std::collections::BTreeMap<NodeId, String>| {
        v.keys()
            .map(|&id| {
                let mut cfg = config(id, v, root.path());
                cfg.snapshot_every = 5;
                (id, Controller::start(cfg).unwrap())
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let nodes = start(&v);
    wait_registered(&nodes, &[1, 2, 3]);
    for i in 0..12 {
        nodes[&1]
            .create_topic(&format!("topic-{i}"), 1, 2, serde_json::Value::Null, T)
            .unwrap();
    }
    let before = wait_converged(&nodes);
    for (_, c) in nodes {
        c.shutdown();
    }
    assert!(
        root.path().join("n1/snapshot.json").exists(),
        "a snapshot was written"
    );
    let nodes = start(&v);
    let ok = wait_until(T, || {
        nodes.values().all(|c| c.meta().topics == before.topics)
    });
    assert!(ok, "metadata not recovered: {:?}", nodes[&1].meta());
    for (_, c) in nodes {
        c.shutdown();
    }
}

#[test]
fn controlled_shutdown_moves_leadership_first() {
    let root = tempfile::tempdir().unwrap();
    let (_, mut nodes) = start_three(root.path());
    nodes[&2]
        .create_topic("c", 3, 3, serde_json::Value::Null, T)
        .unwrap();
    wait_converged(&nodes);
    let leaving: NodeId = 3;
    nodes[&leaving].controlled_shutdown(T).unwrap();
    // Committed before returning: the leader's image already shows it.
    let check = |m: &neo_cluster::ClusterMeta| {
        m.brokers[&leaving].fenced
            && m.topics["c"].partitions.iter().all(|p| {
                p.leader.is_some() && p.leader != Some(leaving) && !p.isr.contains(&leaving)
            })
    };
    assert!(wait_until(T, || nodes.values().all(|c| check(&c.meta()))));
    // Its heartbeats do not unfence it while it is still running.
    std::thread::sleep(Duration::from_millis(800));
    assert!(nodes.values().all(|c| check(&c.meta())));
    nodes.remove(&leaving).unwrap().shutdown();
    for (_, c) in nodes {
        c.shutdown();
    }
}

#[test]
fn a_restarted_preferred_replica_gets_its_partitions_back_once_in_sync() {
    let root = tempfile::tempdir().unwrap();
    let v = voters(3);
    let cfg = |id| {
        let mut c = config(id, &v, root.path());
        c.preferred_leader_check = Some(Duration::from_millis(200));
        c
    };
    let mut nodes: std::collections::BTreeMap<NodeId, Controller> = v
        .keys()
        .map(|&id| (id, Controller::start(cfg(id)).unwrap()))
        .collect();
    wait_registered(&nodes, &[1, 2, 3]);
    let any = *nodes.keys().next().unwrap();
    nodes[&any]
        .create_topic("t", 3, 3, serde_json::Value::Null, T)
        .unwrap();
    let before = wait_converged(&nodes);
    let (i, p) = before.topics["t"]
        .partitions
        .iter()
        .enumerate()
        .find(|(_, p)| p.leader == Some(2))
        .expect("broker 2 leads a partition");
    assert_eq!(
        p.replicas[0], 2,
        "a new partition's leader is its preferred replica"
    );

    nodes.remove(&2).unwrap().shutdown();
    let survivor = 1;
    let moved = |m: &neo_cluster::ClusterMeta| {
        let p = &m.topics["t"].partitions[i];
        p.leader.is_some_and(|l| l != 2) && !p.isr.contains(&2)
    };
    assert!(wait_until(Duration::from_secs(10), || moved(
        &nodes[&survivor].meta()
    )));

    // Back, but not in the ISR: it must not lead yet.
    nodes.insert(2, Controller::start(cfg(2)).unwrap());
    wait_registered(&nodes, &[1, 2, 3]);
    std::thread::sleep(Duration::from_millis(800));
    let m = nodes[&survivor].meta();
    let p = m.topics["t"].partitions[i].clone();
    assert_ne!(
        p.leader,
        Some(2),
        "a replica out of the ISR was made leader"
    );

    // Its leader takes it back into the ISR (as the data plane does once it
    // caught up): within a few checks it leads its partition again.
    let mut isr = p.isr.clone();
    isr.push(2);
    let grow = AlterIsr {
        topic: "t".into(),
        partition: i as u32,
        leader: p.leader.unwrap(),
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        isr,
    };
    nodes[&survivor].alter_isr(grow, T).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || {
            nodes[&survivor].meta().topics["t"].partitions[i].leader == Some(2)
        }),
        "the preferred replica did not get its partition back"
    );
    let after = wait_converged(&nodes);
    let q = &after.topics["t"].partitions[i];
    assert_eq!(q.leader_epoch, p.leader_epoch + 1);
    for (_, c) in nodes {
        c.shutdown();
    }
}

/// Once a member has caught up it stays "caught up" while the metadata
/// moves on (here: offset commits through the leader for 3 s), though a
/// follower is always a moment behind: brokers gate what they tell clients
/// on it, and a flapping answer would hide every leader from clients again
/// and again. Every member is sampled continuously meanwhile.
#[test]
fn caught_up_stays_true_while_commits_flow() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let root = tempfile::tempdir().unwrap();
    let (_, nodes) = start_three(root.path());
    nodes[&1]
        .create_topic("c", 1, 3, serde_json::Value::Null, T)
        .unwrap();
    wait_converged(&nodes);
    assert!(
        wait_until(T, || nodes.values().all(Controller::caught_up)),
        "every member catches up"
    );
    let leader = leader_of(&nodes);
    let (done, samples, behind) = (AtomicBool::new(false), AtomicU64::new(0), AtomicU64::new(0));
    let commits = std::thread::scope(|s| {
        for c in nodes.values() {
            let (done, samples, behind) = (&done, &samples, &behind);
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    samples.fetch_add(1, Ordering::Relaxed);
                    if !c.caught_up() {
                        behind.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            });
        }
        let end = Instant::now() + Duration::from_secs(3);
        let mut i = 0u64;
        while Instant::now() < end {
            nodes[&leader]
                .commit_offsets("g", vec![("c".into(), 0, i, String::new())], T)
                .unwrap();
            i += 1;
        }
        done.store(true, Ordering::Relaxed);
        i
    });
    let (samples, behind) = (samples.into_inner(), behind.into_inner());
    assert!(
        commits > 10 && samples > 1000,
        "{commits} commits, {samples} samples"
    );
    assert_eq!(
        behind, 0,
        "{behind} of {samples} samples not caught up during {commits} commits"
    );
    for (_, c) in nodes {
        c.shutdown();
    }
}
