//! A follower's replica fetchers: one session per leader this node follows
//! partitions of, each a connection of the broker's own transport, driven
//! from its poll loop. Replication therefore runs over whatever the broker
//! serves on — TCP, RDMA, or the packet engine on AF_XDP or DPDK (a NIC
//! queue, a DPDK port, an RDMA device belong to one loop; no other thread
//! could open a second one).
//!
//! A session connects to the leader's advertised address, authenticates
//! when the node has replication credentials (SCRAM, [`super::fetch_auth`]:
//! a leader running `--neo-auth` requires it), sends one
//! long-polling `ReplicaFetch` at a time ([`Broker::follow_request`]) and
//! applies the answer when it comes ([`Broker::apply_replica`]), then asks
//! again at once. A connect, call or answer that fails, or one that takes
//! longer than its limit, closes the connection; the session retries after
//! [`BACKOFF`]. Sessions come and go with the leaders the metadata names
//! (see `link::upkeep`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound::{Excluded, Unbounded};
use std::time::{Duration, Instant};

use neo_transports::rpc::{Outcome, Server};
use neo_transports::{ConnId, Transport};

use super::fetch_auth::FetchAuth;
use super::resolver::{Lookup, Resolver};
use super::wire::*;
use crate::broker::Broker;
use crate::client::ClientAuth;

/// How long a leader may hold a fetch while it has nothing new.
pub const MAX_WAIT_MS: u32 = 500;
/// Bytes per fetch answer.
const MAX_BYTES: u32 = 8 << 20;
/// Pause after a failure before the next connect or call.
pub const BACKOFF: Duration = Duration::from_millis(100);
/// A connect that has not completed by then is given up.
const CONNECT_LIMIT: Duration = Duration::from_secs(2);
/// Beyond the leader's hold, how long an answer may take.
const ANSWER_SLACK: Duration = Duration::from_secs(2);
/// How long an authentication step may take.
const AUTH_LIMIT: Duration = Duration::from_secs(2);
/// Pause after the leader refused this node's credentials.
const AUTH_BACKOFF: Duration = Duration::from_secs(1);
/// How often a session waiting for its leader's name to resolve looks again.
const RESOLVE_POLL: Duration = Duration::from_millis(5);

enum State {
    /// No connection.
    Idle,
    Connecting {
        since: Instant,
    },
    /// Connected; the SCRAM exchange runs (`call`: the step awaiting its
    /// answer, `None` when the next one is due).
    Authenticating {
        auth: Box<FetchAuth>,
        call: Option<u64>,
        since: Instant,
    },
    /// Connected, no call outstanding.
    Ready,
    InFlight {
        call: u64,
        sent: Instant,
        asked: Vec<ReplicaFetchPartition>,
    },
}

struct Session {
    conn: Option<ConnId>,
    /// The leader's address `conn` was made to.
    addr: String,
    state: State,
    /// No connect or call before this (after a failure).
    not_before: Instant,
}

/// The sessions, by leader.
#[derive(Default)]
pub(crate) struct Fetchers {
    /// This node's replication credentials, if leaders require them.
    auth: Option<ClientAuth>,
    sessions: BTreeMap<NodeId, Session>,
    by_conn: HashMap<ConnId, NodeId>,
    /// Connections of sessions that ended, to close on the next drive.
    closing: Vec<ConnId>,
    /// Leaders' host names, resolved off the poll loop.
    resolver: Resolver,
}

impl Fetchers {
    pub(crate) fn new(auth: Option<ClientAuth>) -> Self {
        Self {
            auth,
            ..Self::default()
        }
    }

    /// Keeps a session for each of `leaders` and no other.
    pub(crate) fn want(&mut self, leaders: &BTreeSet<NodeId>, now: Instant) {
        let Self {
            sessions,
            by_conn,
            closing,
            ..
        } = self;
        sessions.retain(|id, s| {
            let keep = leaders.contains(id);
            if !keep {
                if let Some(c) = s.conn.take() {
                    by_conn.remove(&c);
                    closing.push(c);
                }
            }
            keep
        });
        for id in leaders {
            sessions.entry(*id).or_insert_with(|| Session {
                conn: None,
                addr: String::new(),
                state: State::Idle,
                not_before: now,
            });
        }
    }

    /// Drops `leader`'s connection (closed on the next drive) and waits
    /// `wait` before connecting again.
    fn reset(&mut self, leader: NodeId, now: Instant, wait: Duration) {
        let Some(s) = self.sessions.get_mut(&leader) else {
            return;
        };
        if let Some(c) = s.conn.take() {
            self.by_conn.remove(&c);
            self.closing.push(c);
        }
        // A leader that moved is found under its name on the next connect.
        self.resolver.forget(&s.addr);
        s.state = State::Idle;
        s.not_before = now + wait;
    }
}

impl Broker {
    /// Moves every fetch session on: connect, send the next fetch, give up
    /// on what took too long. Returns how many things it did.
    pub(crate) fn drive_fetchers<T: Transport>(
        &mut self,
        now: Instant,
        dial: &mut Server<T>,
    ) -> usize {
        let Some(c) = &mut self.cluster else { return 0 };
        let mut done = 0;
        for conn in c.fetchers.closing.drain(..) {
            dial.close(conn);
            done += 1;
        }
        // Each session in turn, without allocating (this runs every round).
        let mut next = c.fetchers.sessions.keys().next().copied();
        while let Some(leader) = next {
            done += self.drive_one(leader, now, dial);
            next = self.cluster.as_ref().and_then(|c| {
                c.fetchers
                    .sessions
                    .range((Excluded(leader), Unbounded))
                    .next()
                    .map(|(k, _)| *k)
            });
        }
        done
    }

    fn drive_one<T: Transport>(
        &mut self,
        leader: NodeId,
        now: Instant,
        dial: &mut Server<T>,
    ) -> usize {
        let Some(c) = &mut self.cluster else { return 0 };
        let me = c.cfg.node_id;
        let Some(s) = c.fetchers.sessions.get_mut(&leader) else {
            return 0;
        };
        if now < s.not_before {
            return 0;
        }
        match &s.state {
            State::Idle => {
                let Some(b) = c.control.meta().brokers.get(&leader).cloned() else {
                    s.not_before = now + BACKOFF;
                    return 0;
                };
                let sa = match c.fetchers.resolver.lookup(&b.addr, now) {
                    Lookup::Ready(sa) => sa,
                    Lookup::Pending => {
                        s.not_before = now + RESOLVE_POLL;
                        return 0;
                    }
                    Lookup::Failed(why) => {
                        tracing::warn!(leader, addr = %b.addr, "cannot resolve the leader's address: {why}");
                        s.not_before = now + BACKOFF;
                        return 0;
                    }
                };
                match dial.connect(sa) {
                    Ok(conn) => {
                        s.conn = Some(conn);
                        s.addr = b.addr;
                        s.state = State::Connecting { since: now };
                        c.fetchers.by_conn.insert(conn, leader);
                    }
                    Err(e) => {
                        tracing::debug!(leader, addr = %sa, error = %e, "cannot connect to the leader");
                        s.not_before = now + BACKOFF;
                    }
                }
                1
            }
            State::Connecting { since } => {
                if now.duration_since(*since) < CONNECT_LIMIT {
                    return 0;
                }
                tracing::debug!(leader, addr = %s.addr, "connecting to the leader timed out");
                c.fetchers.reset(leader, now, BACKOFF);
                1
            }
            State::Authenticating {
                call: Some(_),
                since,
                ..
            } => {
                if now.duration_since(*since) < AUTH_LIMIT {
                    return 0;
                }
                tracing::warn!(leader, "authenticating to the leader timed out");
                c.fetchers.reset(leader, now, BACKOFF);
                1
            }
            State::Authenticating { call: None, .. } => {
                let State::Authenticating { auth, call, since } = &mut s.state else {
                    return 0;
                };
                let Some(conn) = s.conn else { return 0 };
                let sent = auth.next_step().and_then(|body| {
                    let method = crate::client::method_id(crate::protocol::method::AUTHENTICATE);
                    dial.call(conn, method, &body, AUTH_LIMIT)
                        .map_err(|e| e.to_string())
                });
                match sent {
                    Ok(id) => {
                        *call = Some(id);
                        *since = now;
                    }
                    Err(e) => {
                        tracing::warn!(leader, error = %e, "cannot authenticate to the leader");
                        c.fetchers.reset(leader, now, AUTH_BACKOFF);
                    }
                }
                1
            }
            State::InFlight { sent, .. } => {
                let limit = Duration::from_millis(MAX_WAIT_MS as u64) + ANSWER_SLACK;
                if now.duration_since(*sent) < limit {
                    return 0;
                }
                tracing::debug!(leader, "replica fetch unanswered; reconnecting");
                c.fetchers.reset(leader, now, BACKOFF);
                1
            }
            State::Ready => {
                let Some((addr, partitions)) = self.follow_request(leader) else {
                    return 0;
                };
                let Some(c) = &mut self.cluster else { return 0 };
                let Some(s) = c.fetchers.sessions.get_mut(&leader) else {
                    return 0;
                };
                let Some(conn) = s.conn else { return 0 };
                if addr != s.addr {
                    tracing::info!(leader, from = %s.addr, to = %addr, "the leader's address changed; reconnecting");
                    c.fetchers.reset(leader, now, BACKOFF);
                    return 1;
                }
                let req = ReplicaFetch {
                    replica: me,
                    max_wait_ms: MAX_WAIT_MS,
                    max_bytes: MAX_BYTES,
                    partitions,
                };
                let body = match postcard::to_stdvec(&req) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "encoding a replica fetch");
                        s.not_before = now + BACKOFF;
                        return 0;
                    }
                };
                let method = crate::client::method_id(super::METHOD_REPLICA_FETCH);
                let budget = Duration::from_millis(MAX_WAIT_MS as u64) + ANSWER_SLACK;
                match dial.call(conn, method, &body, budget) {
                    Ok(call) => {
                        s.state = State::InFlight {
                            call,
                            sent: now,
                            asked: req.partitions,
                        }
                    }
                    Err(e) => {
                        tracing::debug!(leader, error = %e, "cannot send a replica fetch");
                        c.fetchers.reset(leader, now, BACKOFF);
                    }
                }
                1
            }
        }
    }

    /// What became of a fetch session's connection or call.
    pub(crate) fn on_fetch_outcome(&mut self, conn: ConnId, outcome: Outcome<'_>) {
        let now = Instant::now();
        let Some(c) = &mut self.cluster else { return };
        let Some(&leader) = c.fetchers.by_conn.get(&conn) else {
            return;
        };
        let Some(s) = c.fetchers.sessions.get_mut(&leader) else {
            return;
        };
        match outcome {
            Outcome::Connected => {
                if !matches!(s.state, State::Connecting { .. }) {
                    return;
                }
                s.state = match c.fetchers.auth.as_ref().map(FetchAuth::new) {
                    None => State::Ready,
                    Some(Ok(auth)) => State::Authenticating {
                        auth: Box::new(auth),
                        call: None,
                        since: now,
                    },
                    Some(Err(e)) => {
                        tracing::error!(leader, error = %e, "replication credentials unusable");
                        c.fetchers.reset(leader, now, AUTH_BACKOFF);
                        return;
                    }
                };
            }
            Outcome::Closed(reason) => {
                tracing::debug!(leader, %reason, "connection to the leader closed");
                c.fetchers.by_conn.remove(&conn);
                s.conn = None;
                s.state = State::Idle;
                s.not_before = now + BACKOFF;
            }
            Outcome::Failed { call, error } if matches!(s.state, State::Authenticating { call: Some(k), .. } if k == call) =>
            {
                tracing::warn!(leader, %error, "the leader refused this node's authentication");
                c.fetchers.reset(leader, now, AUTH_BACKOFF);
            }
            Outcome::Answer { call, body } if matches!(s.state, State::Authenticating { call: Some(k), .. } if k == call) =>
            {
                let State::Authenticating { auth, call, .. } = &mut s.state else {
                    return;
                };
                match auth.on_reply(body) {
                    Ok(true) => {
                        tracing::debug!(leader, "authenticated to the leader");
                        s.state = State::Ready;
                    }
                    Ok(false) => *call = None,
                    Err(e) => {
                        tracing::warn!(leader, error = %e, "the leader refused this node's replication credentials");
                        c.fetchers.reset(leader, now, AUTH_BACKOFF);
                    }
                }
            }
            Outcome::Failed { call, error } => {
                if matches!(s.state, State::InFlight { call: k, .. } if k == call) {
                    tracing::debug!(leader, %error, "replica fetch failed");
                    s.state = State::Ready;
                    s.not_before = now + BACKOFF;
                }
            }
            Outcome::Answer { call, body } => {
                let State::InFlight { call: k, .. } = s.state else {
                    return;
                };
                if k != call {
                    return;
                }
                let State::InFlight { asked, .. } = std::mem::replace(&mut s.state, State::Ready)
                else {
                    return;
                };
                if let Err(e) = self.apply_replica(leader, &asked, body) {
                    tracing::warn!(leader, error = %e, "replica fetch answer not applied");
                    if let Some(s) = self
                        .cluster
                        .as_mut()
                        .and_then(|c| c.fetchers.sessions.get_mut(&leader))
                    {
                        s.not_before = now + BACKOFF;
                    }
                }
            }
        }
    }
}
