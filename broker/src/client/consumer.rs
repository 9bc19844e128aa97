//! The consumer: fetches with long-poll from its partitions, either assigned
//! by hand or given by a consumer group. With a group it heartbeats from
//! [`Consumer::poll_each`]; when the group rebalances it commits what it has
//! consumed (accepted in the current generation while the group prepares),
//! rejoins, and resumes from the committed offsets of its new partitions.
//! Consumption is exactly once per group as long as members leave with
//! [`Consumer::close`]; a member that dies between processing and commit
//! is at-least-once, as in Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use neo_transports::Transport;

use super::{decode_answer, ClientError, ConnectConfig, Connection};
use crate::protocol::*;
use crate::records::{Codecs, RecordView};

/// Where to start when no committed offset exists (or it fell out of the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// Fail the poll with `OffsetOutOfRange`.
    Error,
}

/// Where a hand-assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Earliest,
    Latest,
    Offset(u64),
    /// The first batch at or after this time (ms); the log end if none.
    Timestamp(i64),
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub group: Option<String>,
    pub topics: Vec<String>,
    pub assignor: Assignor,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub rebalance_timeout: Duration,
    pub reset: OffsetReset,
    /// Longest a fetch waits on the broker for `min_bytes`.
    pub max_wait: Duration,
    pub min_bytes: u32,
    pub max_bytes: u32,
    /// Commit consumed positions this often from `poll` (group only).
    pub auto_commit: Option<Duration>,
}

impl ConsumerConfig {
    /// A group member subscribed to `topics`.
    pub fn group(group: &str, topics: &[&str]) -> Self {
        Self {
            group: Some(group.into()),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            ..Self::default()
        }
    }
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            group: None,
            topics: Vec::new(),
            assignor: Assignor::Range,
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(1),
            rebalance_timeout: Duration::from_secs(30),
            reset: OffsetReset::Earliest,
            max_wait: Duration::from_millis(100),
            min_bytes: 1,
            max_bytes: 4 << 20,
            auto_commit: Some(Duration::from_secs(1)),
        }
    }
}

/// An owned record, from [`Consumer::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub topic: Arc<str>,
    pub partition: u32,
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

type Tp = (Arc<str>, u32);

pub struct Consumer<T: Transport> {
    conn: Connection<T>,
    cfg: ConsumerConfig,
    member: Option<MemberRef>,
    positions: BTreeMap<Tp, u64>,
    committed: BTreeMap<Tp, u64>,
    last_heartbeat: Instant,
    last_commit: Instant,
    codecs: Codecs,
    body: Vec<u8>,
}

const MAX_REJOINS: usize = 50;

impl<T: Transport> Consumer<T> {
    fn new(transport: T, connect: ConnectConfig, cfg: ConsumerConfig) -> Result<Self, ClientError> {
        Ok(Self {
            conn: Connection::connect(transport, connect)?,
            cfg,
            member: None,
            positions: BTreeMap::new(),
            committed: BTreeMap::new(),
            last_heartbeat: Instant::now(),
            last_commit: Instant::now(),
            codecs: Codecs::software(),
            body: Vec::new(),
        })
    }

    /// Joins `cfg.group` for `cfg.topics` and waits for the first assignment.
    pub fn subscribe(
        transport: T,
        connect: ConnectConfig,
        cfg: ConsumerConfig,
    ) -> Result<Self, ClientError> {
        if cfg.group.is_none() || cfg.topics.is_empty() {
            return Err(ClientError::Invalid(
                "subscribe needs a group and at least one topic".into(),
            ));
        }
        let mut c = Self::new(transport, connect, cfg)?;
        c.rejoin()?;
        Ok(c)
    }

    /// Reads the given partitions without a group (commits go to
    /// `cfg.group` if set, outside group management).
    pub fn assign(
        transport: T,
        connect: ConnectConfig,
        cfg: ConsumerConfig,
        partitions: &[(&str, u32, StartAt)],
    ) -> Result<Self, ClientError> {
        let mut c = Self::new(transport, connect, cfg)?;
        for &(topic, p, start) in partitions {
            let spec = match start {
                StartAt::Offset(o) => {
                    c.positions.insert((Arc::from(topic), p), o);
                    continue;
                }
                StartAt::Earliest => OffsetSpec::Earliest,
                StartAt::Latest => OffsetSpec::Latest,
                StartAt::Timestamp(ts) => OffsetSpec::Timestamp(ts),
            };
            let at = match c.conn.list_offset(topic, p, spec)? {
                Some(o) => o,
                None => c
                    .conn
                    .list_offset(topic, p, OffsetSpec::Latest)?
                    .unwrap_or(0),
            };
            c.positions.insert((Arc::from(topic), p), at);
        }
        Ok(c)
    }

    /// The partitions this consumer reads now.
    pub fn assignment(&self) -> Vec<(String, u32)> {
        self.positions
            .keys()
            .map(|(t, p)| (t.to_string(), *p))
            .collect()
    }

    /// The group generation and member id, when in a group.
    pub fn member(&self) -> Option<&MemberRef> {
        self.member.as_ref()
    }

    /// Moves the position of an assigned partition (no effect otherwise).
    pub fn seek(&mut self, topic: &str, partition: u32, offset: u64) {
        if let Some(at) = self.positions.get_mut(&(Arc::from(topic), partition)) {
            *at = offset;
        }
    }

    pub fn position(&self, topic: &str, partition: u32) -> Option<u64> {
        self.positions.get(&(Arc::from(topic), partition)).copied()
    }

    fn rejoin(&mut self) -> Result<(), ClientError> {
        let group = self.cfg.group.clone().expect("rejoin is for group members");
        self.positions.clear();
        self.committed.clear();
        for _ in 0..MAX_REJOINS {
            let req = JoinGroup {
                group: group.clone(),
                member_id: self
                    .member
                    .as_ref()
                    .map(|m| m.member_id.clone())
                    .unwrap_or_default(),
                topics: self.cfg.topics.clone(),
                assignor: self.cfg.assignor,
                session_timeout_ms: self.cfg.session_timeout.as_millis() as u32,
                rebalance_timeout_ms: self.cfg.rebalance_timeout.as_millis() as u32,
            };
            let body =
                postcard::to_stdvec(&req).map_err(|e| ClientError::Invalid(e.to_string()))?;
            let wait = self.cfg.rebalance_timeout + self.conn.config().request_timeout;
            let joined = self
                .conn
                .call_raw(method::JOIN_GROUP, &body, wait, &mut self.body)
                .and_then(|()| decode_answer::<Joined>(&self.body));
            let joined = match joined {
                Ok(j) => j,
                Err(ClientError::Broker(BrokerError::UnknownMember(_))) => {
                    self.member = None;
                    continue;
                }
                Err(e) if e.is_retriable() => continue,
                Err(e) => return Err(e),
            };
            let me = MemberRef {
                group: group.clone(),
                member_id: joined.member_id,
                generation: joined.generation,
            };
            self.member = Some(me.clone());
            match self.conn.call::<_, Assignment>(method::SYNC_GROUP, &me) {
                Ok(a) => return self.take_assignment(&group, a),
                Err(ClientError::Broker(BrokerError::UnknownMember(_))) => self.member = None,
                Err(ClientError::Broker(
                    BrokerError::RebalanceInProgress | BrokerError::IllegalGeneration { .. },
                )) => {}
                Err(e) => return Err(e),
            }
        }
        Err(ClientError::Timeout(format!(
            "group `{group}` did not settle after {MAX_REJOINS} joins"
        )))
    }

    fn take_assignment(&mut self, group: &str, a: Assignment) -> Result<(), ClientError> {
        self.last_heartbeat = Instant::now();
        if a.partitions.is_empty() {
            return Ok(()); // more members than partitions: this one idles
        }
        let req = FetchOffsets {
            group: group.into(),
            partitions: a.partitions.clone(),
        };
        let offsets: Vec<PartitionOffset> = self.conn.call(method::FETCH_OFFSETS, &req)?;
        for o in offsets {
            let tp: Tp = (Arc::from(o.topic.as_str()), o.partition);
            let at = match o.committed {
                Some(c) => {
                    self.committed.insert(tp.clone(), c);
                    c
                }
                None => self.reset_position(&o.topic, o.partition)?,
            };
            self.positions.insert(tp, at);
        }
        self.last_heartbeat = Instant::now();
        Ok(())
    }

    fn reset_position(&mut self, topic: &str, partition: u32) -> Result<u64, ClientError> {
        let spec = match self.cfg.reset {
            OffsetReset::Earliest => OffsetSpec::Earliest,
            OffsetReset::Latest => OffsetSpec::Latest,
            OffsetReset::Error => {
                return Err(ClientError::Invalid(format!(
                    "{topic}/{partition}: no committed offset and the reset policy is `error`"
                )))
            }
        };
        Ok(self.conn.list_offset(topic, partition, spec)?.unwrap_or(0))
    }

    /// Commits the consumed positions that moved since the last commit.
    pub fn commit(&mut self) -> Result<(), ClientError> {
        let Some(group) = self.cfg.group.clone() else {
            return Err(ClientError::Invalid("commit needs a group".into()));
        };
        let offsets: Vec<CommittedOffset> = self
            .positions
            .iter()
            .filter(|(tp, at)| self.committed.get(*tp) != Some(at))
            .map(|((t, p), at)| CommittedOffset {
                topic: t.to_string(),
                partition: *p,
                offset: *at,
                metadata: String::new(),
            })
            .collect();
        self.last_commit = Instant::now();
        if offsets.is_empty() {
            return Ok(());
        }
        let member = self.member.clone().unwrap_or(MemberRef {
            group,
            member_id: String::new(),
            generation: -1,
        });
        self.conn.call::<_, ()>(
            method::COMMIT_OFFSETS,
            &CommitOffsets {
                member,
                offsets: offsets.clone(),
            },
        )?;
        for o in offsets {
            self.committed
                .insert((Arc::from(o.topic.as_str()), o.partition), o.offset);
        }
        Ok(())
    }

    fn heartbeat(&mut self) -> Result<(), ClientError> {
        let Some(me) = self.member.clone() else {
            return Ok(());
        };
        self.last_heartbeat = Instant::now();
        match self.conn.call::<_, ()>(method::HEARTBEAT, &me) {
            Ok(()) => Ok(()),
            Err(ClientError::Broker(BrokerError::RebalanceInProgress)) => {
                // Our generation is still current: hand over what we consumed.
                match self.commit() {
                    Ok(()) => {}
                    Err(ClientError::Broker(
                        e @ (BrokerError::IllegalGeneration { .. } | BrokerError::UnknownMember(_)),
                    )) => {
                        tracing::warn!(group = %me.group, error = %e, "commit before rejoin refused; uncommitted records will be read again");
                    }
                    Err(e) => return Err(e),
                }
                self.rejoin()
            }
            Err(ClientError::Broker(
                BrokerError::IllegalGeneration { .. } | BrokerError::UnknownMember(_),
            )) => {
                tracing::warn!(group = %me.group, member = %me.member_id, "fenced out of the group; rejoining (uncommitted records will be read again)");
                self.member = None;
                self.rejoin()
            }
            Err(e) => Err(e),
        }
    }

    /// Waits up to `timeout` for records and calls `each` for every one
    /// (topic, partition, record); returns how many. Heartbeats and
    /// auto-commits as due.
    pub fn poll_each(
        &mut self,
        timeout: Duration,
        mut each: impl FnMut(&str, u32, RecordView<'_>),
    ) -> Result<usize, ClientError> {
        let start = Instant::now();
        if self.member.is_some() {
            if start.duration_since(self.last_heartbeat) >= self.cfg.heartbeat_interval {
                self.heartbeat()?;
            }
            if self
                .cfg
                .auto_commit
                .is_some_and(|every| start.duration_since(self.last_commit) >= every)
            {
                self.commit()?;
            }
        }
        if self.positions.is_empty() {
            std::thread::sleep(timeout.min(self.cfg.heartbeat_interval));
            return Ok(0);
        }
        let mut wait = timeout.min(self.cfg.max_wait);
        if self.member.is_some() {
            wait = wait.min(self.cfg.heartbeat_interval);
        }
        let req = Fetch {
            max_wait_ms: wait.as_millis() as u32,
            min_bytes: self.cfg.min_bytes,
            max_bytes: self.cfg.max_bytes,
            partitions: self
                .positions
                .iter()
                .map(|((t, p), at)| FetchPartition {
                    topic: t.to_string(),
                    partition: *p,
                    offset: *at,
                })
                .collect(),
        };
        let body = postcard::to_stdvec(&req).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let rpc_timeout = wait + self.conn.config().request_timeout;
        let mut answer = std::mem::take(&mut self.body);
        let r = self
            .conn
            .call_raw(method::FETCH, &body, rpc_timeout, &mut answer);
        let n = r.and_then(|()| self.deliver(&req, &answer, &mut each));
        self.body = answer;
        n
    }

    fn deliver(
        &mut self,
        req: &Fetch,
        answer: &[u8],
        each: &mut impl FnMut(&str, u32, RecordView<'_>),
    ) -> Result<usize, ClientError> {
        let parts = super::fetched::fetch_parts(answer, req.partitions.len())?;
        let mut n = 0;
        for (fp, (got, bytes)) in req.partitions.iter().zip(parts) {
            let tp: Tp = (Arc::from(fp.topic.as_str()), fp.partition);
            if let Some(e) = got.error {
                match e {
                    BrokerError::OffsetOutOfRange { .. }
                        if self.cfg.reset != OffsetReset::Error =>
                    {
                        let at = self.reset_position(&fp.topic, fp.partition)?;
                        tracing::warn!(topic = %fp.topic, partition = fp.partition, from = fp.offset, to = at, "offset out of range; reset");
                        self.positions.insert(tp, at);
                        continue;
                    }
                    // Leadership moved: the next fetch goes to the new leader
                    // (all assigned partitions follow it: one connection).
                    BrokerError::NotLeader { .. } => {
                        self.conn.follow_leader(&fp.topic, fp.partition);
                        continue;
                    }
                    e => return Err(e.into()),
                }
            }
            let mut pos = fp.offset;
            n += super::fetched::for_each_fetched_record(bytes, &mut self.codecs, &mut pos, |r| {
                each(&fp.topic, fp.partition, r)
            })?;
            self.positions.insert(tp, pos);
        }
        Ok(n)
    }

    /// [`Consumer::poll_each`] collecting owned records.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<Received>, ClientError> {
        let mut out = Vec::new();
        self.poll_each(timeout, |topic, partition, r| {
            out.push(Received {
                topic: Arc::from(topic),
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.to_vec(),
                headers: r
                    .headers()
                    .map(|(n, v)| (n.to_vec(), v.map(<[u8]>::to_vec)))
                    .collect(),
            })
        })?;
        Ok(out)
    }

    /// Commits (with a group) and leaves the group.
    pub fn close(mut self) -> Result<(), ClientError> {
        if self.cfg.group.is_some() && !self.positions.is_empty() {
            self.commit()?;
        }
        if let Some(me) = self.member.take() {
            self.conn.call::<_, ()>(method::LEAVE_GROUP, &me)?;
        }
        Ok(())
    }
}
