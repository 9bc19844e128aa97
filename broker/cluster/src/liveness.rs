//! Broker liveness, in memory only: when each broker was last heard (every
//! member hears every broker's heartbeats, so a member that becomes leader
//! knows who went silent before it led), a short grace from the start of
//! each leadership term, and which brokers have a proposal in flight.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::meta::{ClusterMeta, NodeId};

/// At the start of a leadership term every broker gets at least this long
/// to reach the new leader before it can be fenced (a member that was cut
/// off itself heard nobody meanwhile).
pub const NEW_TERM_GRACE: Duration = Duration::from_millis(600);

/// The liveness tracker.
#[derive(Debug)]
pub struct Liveness {
    term: Option<u64>,
    grace_start: Instant,
    last: HashMap<NodeId, Instant>,
    inflight: HashSet<NodeId>,
}

impl Liveness {
    pub fn new(now: Instant) -> Liveness {
        Liveness {
            term: None,
            grace_start: now,
            last: HashMap::new(),
            inflight: HashSet::new(),
        }
    }

    /// Called while this node leads in `term`: a new term starts a short
    /// grace ([`NEW_TERM_GRACE`]); what was heard before is kept.
    pub fn on_leader(&mut self, term: u64, now: Instant) {
        if self.term != Some(term) {
            self.term = Some(term);
            self.grace_start = now;
            self.inflight.clear();
        }
    }

    pub fn heard(&mut self, id: NodeId, now: Instant) {
        self.last.insert(id, now);
    }

    /// How long ago `id` was last heard in this term, if it was.
    pub fn heard_ago(&self, id: NodeId, now: Instant) -> Option<Duration> {
        self.last
            .get(&id)
            .map(|t| now.saturating_duration_since(*t))
    }

    /// Registered unfenced brokers silent for longer than `session`, with no
    /// proposal in flight; they are marked in flight.
    pub fn take_expired(
        &mut self,
        meta: &ClusterMeta,
        now: Instant,
        session: Duration,
    ) -> Vec<NodeId> {
        let mut out = Vec::new();
        // As if heard so that the grace has just run out at `grace_start +
        // NEW_TERM_GRACE` (or at the term's start, with a short session).
        let floor = self
            .grace_start
            .checked_sub(session.saturating_sub(NEW_TERM_GRACE))
            .unwrap_or(self.grace_start);
        for b in meta.brokers.values().filter(|b| !b.fenced) {
            let last = self
                .last
                .get(&b.id)
                .copied()
                .map_or(floor, |t| t.max(floor));
            if now.saturating_duration_since(last) > session && self.inflight.insert(b.id) {
                out.push(b.id);
            }
        }
        out
    }

    /// Marks a proposal for `id` in flight; false if one already is.
    pub fn begin(&mut self, id: NodeId) -> bool {
        self.inflight.insert(id)
    }

    pub fn end(&mut self, id: NodeId) {
        self.inflight.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::BrokerInfo;

    fn meta_with(ids: &[(NodeId, bool)]) -> ClusterMeta {
        let mut m = ClusterMeta::default();
        for &(id, fenced) in ids {
            let addr = format!("h:{id}");
            m.brokers.insert(
                id,
                BrokerInfo {
                    id,
                    addr,
                    kafka_addr: None,
                    fenced,
                },
            );
        }
        m
    }

    #[test]
    fn grace_then_expiry_of_silent_brokers_only() {
        let t0 = Instant::now();
        let s = Duration::from_millis(100);
        let meta = meta_with(&[(1, false), (2, false), (3, true)]);
        let mut l = Liveness::new(t0);
        l.on_leader(5, t0);
        assert!(l
            .take_expired(&meta, t0 + Duration::from_millis(50), s)
            .is_empty());
        l.heard(1, t0 + Duration::from_millis(90));
        assert_eq!(
            l.take_expired(&meta, t0 + Duration::from_millis(150), s),
            vec![2]
        );
        // In flight: not proposed twice.
        assert!(l
            .take_expired(&meta, t0 + Duration::from_millis(160), s)
            .is_empty());
        l.end(2);
        assert_eq!(
            l.take_expired(&meta, t0 + Duration::from_millis(170), s),
            vec![2]
        );
        // A new term starts a grace period; what was heard is kept.
        l.on_leader(6, t0 + Duration::from_millis(200));
        assert!(l
            .take_expired(&meta, t0 + Duration::from_millis(250), s)
            .is_empty());
        assert_eq!(
            l.heard_ago(1, t0 + Duration::from_millis(250)),
            Some(Duration::from_millis(160))
        );
    }

    #[test]
    fn a_new_leader_fences_a_broker_silent_before_its_term_after_the_short_grace() {
        let t0 = Instant::now();
        let s = Duration::from_millis(1500);
        let ms = Duration::from_millis;
        let meta = meta_with(&[(1, false), (2, false)]);
        let mut l = Liveness::new(t0);
        // Heard as a follower; 2 goes silent at t0.
        l.heard(2, t0);
        l.heard(1, t0 + ms(900));
        l.on_leader(7, t0 + ms(1000));
        // 2's session ran out at t0+1500, but the new term's grace holds
        // until t0+1600.
        assert!(l.take_expired(&meta, t0 + ms(1550), s).is_empty());
        assert_eq!(l.take_expired(&meta, t0 + ms(1650), s), vec![2]);
        // 1 was heard at t0+900: its session runs to t0+2400.
        assert!(l.take_expired(&meta, t0 + ms(2300), s).is_empty());
        assert_eq!(l.take_expired(&meta, t0 + ms(2450), s), vec![1]);
    }
}
