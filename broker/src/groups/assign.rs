//! Partition assignors, run by the broker when a rebalance completes: range
//! (contiguous runs per topic, Kafka's default), round-robin (all partitions
//! dealt in turn) and sticky (keep what each member had, within balance, and
//! deal out the rest). Pure functions over sorted inputs: deterministic.

use std::collections::{BTreeMap, BTreeSet};

use crate::protocol::{Assignor, TopicPartitions};

/// member id → its (topic, partition) set.
pub type Plan = BTreeMap<String, BTreeSet<(String, u32)>>;

/// Assigns every partition of every subscribed topic to exactly one member
/// subscribed to it. `members`: member id → subscribed topics; `partitions`:
/// topic → partition count (topics that do not exist are absent);
/// `previous`: the last plan (used by sticky).
pub fn assign(
    assignor: Assignor,
    members: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, u32>,
    previous: &Plan,
) -> Plan {
    let mut plan: Plan = members
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    let subscribers = |topic: &str| -> Vec<&String> {
        members
            .iter()
            .filter(|(_, t)| t.iter().any(|x| x == topic))
            .map(|(m, _)| m)
            .collect()
    };
    match assignor {
        Assignor::Range => {
            for (topic, &count) in partitions {
                let subs = subscribers(topic);
                if subs.is_empty() {
                    continue;
                }
                let (per, extra) = (count / subs.len() as u32, count % subs.len() as u32);
                let mut next = 0;
                for (i, m) in subs.iter().enumerate() {
                    let n = per + u32::from((i as u32) < extra);
                    let set = plan.get_mut(*m).expect("every member has an entry");
                    set.extend((next..next + n).map(|p| (topic.clone(), p)));
                    next += n;
                }
            }
        }
        Assignor::RoundRobin => {
            let ids: Vec<&String> = members.keys().collect();
            let mut turn = 0usize;
            for (topic, &count) in partitions {
                for p in 0..count {
                    // The next member in turn that subscribes to this topic.
                    for k in 0..ids.len() {
                        let m = ids[(turn + k) % ids.len()];
                        if members[m].iter().any(|t| t == topic) {
                            plan.get_mut(m).expect("member").insert((topic.clone(), p));
                            turn = (turn + k + 1) % ids.len();
                            break;
                        }
                    }
                }
            }
        }
        Assignor::Sticky => sticky(members, partitions, previous, &mut plan),
    }
    plan
}

fn sticky(
    members: &BTreeMap<String, Vec<String>>,
    partitions: &BTreeMap<String, u32>,
    previous: &Plan,
    plan: &mut Plan,
) {
    let all: Vec<(String, u32)> = partitions
        .iter()
        .flat_map(|(t, &n)| (0..n).map(move |p| (t.clone(), p)))
        .filter(|(t, _)| members.values().any(|subs| subs.contains(t)))
        .collect();
    if members.is_empty() {
        return;
    }
    // No member holds more than its fair share, rounded up.
    let quota = all.len().div_ceil(members.len());
    let mut unowned = Vec::new();
    for tp in &all {
        let keeper = previous.iter().find(|(m, set)| {
            set.contains(tp) && members.get(*m).is_some_and(|subs| subs.contains(&tp.0))
        });
        match keeper {
            Some((m, _)) if plan[m].len() < quota => {
                plan.get_mut(m).expect("member").insert(tp.clone());
            }
            _ => unowned.push(tp.clone()),
        }
    }
    for tp in unowned {
        let least = plan
            .iter()
            .filter(|(m, _)| members[*m].contains(&tp.0))
            .min_by_key(|(m, set)| (set.len(), (*m).clone()))
            .map(|(m, _)| m.clone());
        if let Some(m) = least {
            plan.get_mut(&m).expect("member").insert(tp);
        }
    }
}

/// A member's share as the wire lists it.
pub fn to_wire(set: &BTreeSet<(String, u32)>) -> Vec<TopicPartitions> {
    let mut out: Vec<TopicPartitions> = Vec::new();
    for (t, p) in set {
        match out.last_mut() {
            Some(last) if &last.topic == t => last.partitions.push(*p),
            _ => out.push(TopicPartitions {
                topic: t.clone(),
                partitions: vec![*p],
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn members(ids: &[&str], topics: &[&str]) -> BTreeMap<String, Vec<String>> {
        ids.iter()
            .map(|m| {
                (
                    m.to_string(),
                    topics.iter().map(|t| t.to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn range_gives_contiguous_runs() {
        let parts = BTreeMap::from([("t".to_string(), 7)]);
        let plan = assign(
            Assignor::Range,
            &members(&["a", "b", "c"], &["t"]),
            &parts,
            &Plan::new(),
        );
        let got: Vec<Vec<u32>> = plan
            .values()
            .map(|s| s.iter().map(|x| x.1).collect())
            .collect();
        assert_eq!(got, vec![vec![0, 1, 2], vec![3, 4], vec![5, 6]]);
    }

    #[test]
    fn round_robin_deals_in_turn() {
        let parts = BTreeMap::from([("t".to_string(), 5)]);
        let plan = assign(
            Assignor::RoundRobin,
            &members(&["a", "b"], &["t"]),
            &parts,
            &Plan::new(),
        );
        let got: Vec<Vec<u32>> = plan
            .values()
            .map(|s| s.iter().map(|x| x.1).collect())
            .collect();
        assert_eq!(got, vec![vec![0, 2, 4], vec![1, 3]]);
    }

    #[test]
    fn sticky_keeps_owners_when_a_member_leaves() {
        let parts = BTreeMap::from([("t".to_string(), 6)]);
        let before = assign(
            Assignor::Sticky,
            &members(&["a", "b", "c"], &["t"]),
            &parts,
            &Plan::new(),
        );
        let after = assign(
            Assignor::Sticky,
            &members(&["a", "c"], &["t"]),
            &parts,
            &before,
        );
        for m in ["a", "c"] {
            assert!(before[m].is_subset(&after[m]), "{m} kept its partitions");
        }
        assert_eq!(after["a"].len() + after["c"].len(), 6);
    }

    proptest! {
        /// Every assignor: each partition exactly once, only to a subscriber,
        /// and (range per topic, the others overall) balanced within one.
        #[test]
        fn every_partition_exactly_once(
            n_members in 1usize..6,
            counts in proptest::collection::vec(0u32..9, 1..4),
            which in 0u8..3,
            prev_seed in any::<u64>(),
        ) {
            let ids: Vec<String> = (0..n_members).map(|i| format!("m{i}")).collect();
            let topics: Vec<String> = (0..counts.len()).map(|i| format!("t{i}")).collect();
            // Member i subscribes to every topic j with (i + j) % 3 != 2, and to t0.
            let members: BTreeMap<String, Vec<String>> = ids.iter().enumerate().map(|(i, m)| {
                (m.clone(), topics.iter().enumerate()
                    .filter(|(j, _)| *j == 0 || (i + j) % 3 != 2).map(|(_, t)| t.clone()).collect())
            }).collect();
            let parts: BTreeMap<String, u32> = topics.iter().cloned().zip(counts.iter().copied()).collect();
            let assignor = [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky][which as usize];
            let prev = assign(Assignor::RoundRobin, &members, &parts, &Plan::new());
            let prev = if prev_seed % 2 == 0 { prev } else { Plan::new() };
            let plan = assign(assignor, &members, &parts, &prev);
            let mut seen = BTreeSet::new();
            for (m, set) in &plan {
                for tp in set {
                    prop_assert!(members[m].contains(&tp.0), "{m} got {tp:?} without subscribing");
                    prop_assert!(seen.insert(tp.clone()), "{tp:?} assigned twice");
                }
            }
            let total: u32 = parts.iter()
                .filter(|(t, _)| members.values().any(|subs| subs.contains(t)))
                .map(|(_, n)| n).sum();
            prop_assert_eq!(seen.len() as u32, total);
        }
    }
}
