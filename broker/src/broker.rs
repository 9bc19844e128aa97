//! The broker's state and request logic, free of transport: topics, groups,
//! committed offsets, producer ids, and the answers it owes (produce acks
//! waiting for durability, fetches waiting for data, joins waiting for a
//! rebalance). [`crate::service`] puts it on an RPC server's poll loop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use neo_storage::{BatchMeta, FetchView};
use neo_transports::rpc::Deferred;

use crate::groups::{Completion, Group, JoinOutcome};
use crate::offsets::OffsetStore;
use crate::producer_ids::ProducerIds;
use crate::protocol::*;
use crate::records::{for_each_record, Codecs};
use crate::topics::Topics;

/// Broker-wide settings.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub data_dir: PathBuf,
    /// Settings a created topic starts from.
    pub topic_defaults: TopicConfig,
    /// Longest a fetch may ask to wait.
    pub max_fetch_wait: Duration,
    /// Largest uncompressed batch the broker decompresses to check it.
    pub max_uncompressed: usize,
    /// How often retention runs.
    pub retention_check: Duration,
    /// Codec backends (IAA/QAT/software) for checking compressed batches;
    /// `None`: software codecs without detection.
    pub accel: Option<neo_accel::Registry>,
}

impl BrokerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            topic_defaults: TopicConfig::default(),
            max_fetch_wait: Duration::from_secs(30),
            max_uncompressed: 64 << 20,
            retention_check: Duration::from_secs(5),
            accel: None,
        }
    }
}

/// Counters, for status and tests.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BrokerStats {
    pub produce_requests: u64,
    pub produce_errors: u64,
    pub duplicates: u64,
    pub records_in: u64,
    pub bytes_in: u64,
    pub fetch_requests: u64,
    pub fetches_held: u64,
    pub bytes_out: u64,
    pub commits: u64,
}

enum AckOn {
    Partition { topic: String, partition: u32 },
    Offsets,
}

struct PendingAck {
    call: Deferred,
    on: AckOn,
    last_offset: u64,
    body: Vec<u8>,
}

struct PendingFetch {
    call: Deferred,
    req: Fetch,
    deadline: Instant,
}

/// One partition's offsets and traffic (see [`Broker::partition_readings`]).
#[derive(Debug, Clone)]
pub struct PartitionReading {
    pub topic: String,
    pub partition: u32,
    pub start_offset: u64,
    pub end_offset: u64,
    pub durable_end: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A group's position on one partition (see [`Broker::lag_readings`]).
#[derive(Debug, Clone)]
pub struct LagReading {
    pub group: String,
    pub topic: String,
    pub partition: u32,
    pub committed: u64,
    pub lag: u64,
}

/// What a handler produced: an answer now, or a promise kept by [`Broker::tick`].
pub enum Answer<'a> {
    /// The body to send now, lent from the broker's reply buffer.
    Now(&'a [u8]),
    Held,
}

/// Where a checked Neo commit goes.
enum Commit {
    /// The local offsets log took it; durable at this offset.
    Local(u64),
    /// The controller quorum is asked (cluster mode).
    Cluster(CommitOffsets),
}

/// A fetch ready to write: the head and the views whose bytes follow it.
pub struct FetchReply {
    pub head: Vec<u8>,
    pub views: Vec<FetchView>,
}

impl FetchReply {
    pub fn len(&self) -> usize {
        self.head.len() + self.views.iter().map(|v| v.bytes().len()).sum::<usize>()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Writes head and batches into `buf` (exactly [`FetchReply::len`] bytes).
    pub fn write(&self, buf: &mut [u8]) {
        let mut at = self.head.len();
        buf[..at].copy_from_slice(&self.head);
        for v in &self.views {
            let b = v.bytes();
            buf[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        }
    }
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        self.write(&mut v);
        v
    }
}

pub struct Broker {
    cfg: BrokerConfig,
    pub(crate) topics: Topics,
    /// Cluster mode: the controller link and replication upkeep.
    pub(crate) cluster: Option<crate::replication::ClusterLink>,
    groups: HashMap<String, Group>,
    offsets: OffsetStore,
    producer_ids: ProducerIds,
    codecs: Codecs,
    acks: Vec<PendingAck>,
    fetches: Vec<PendingFetch>,
    joins: Vec<Completion>,
    /// Answers to held calls that are ready now (e.g. a refused join).
    ready: Vec<(Deferred, Vec<u8>)>,
    /// Reused for answers sent at once (no allocation per produce).
    reply: Vec<u8>,
    appends: u64,
    appends_seen: u64,
    last_retention: Instant,
    last_group_tick: Instant,
    stats: BrokerStats,
}

/// How often group sessions and rebalance deadlines are checked.
const GROUP_TICK: Duration = Duration::from_millis(5);

fn validate_group(name: &str) -> Result<(), BrokerError> {
    if name.is_empty() || name.len() > 249 || name.chars().any(|c| c.is_control()) {
        return Err(BrokerError::InvalidRequest(
            "a group name is 1 to 249 characters, none of them control characters".into(),
        ));
    }
    Ok(())
}

impl Broker {
    /// Opens the data directory, recovering every partition and the offsets log.
    pub fn open(cfg: BrokerConfig) -> Result<Self, BrokerError> {
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
            BrokerError::Storage(format!("creating {}: {e}", cfg.data_dir.display()))
        })?;
        Ok(Self {
            topics: Topics::open(&cfg.data_dir)?,
            offsets: OffsetStore::open(&cfg.data_dir)?,
            producer_ids: ProducerIds::open(&cfg.data_dir)?,
            codecs: match &cfg.accel {
                Some(r) => Codecs::new(r.clone()),
                None => Codecs::software(),
            },
            groups: HashMap::new(),
            cluster: None,
            acks: Vec::new(),
            fetches: Vec::new(),
            joins: Vec::new(),
            ready: Vec::new(),
            reply: Vec::new(),
            appends: 0,
            appends_seen: 0,
            last_retention: Instant::now(),
            last_group_tick: Instant::now(),
            stats: BrokerStats::default(),
            cfg,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.cfg.data_dir
    }
    pub fn stats(&self) -> &BrokerStats {
        &self.stats
    }
    /// Answers are owed: the poll loop must not sleep long.
    pub fn has_pending(&self) -> bool {
        !self.acks.is_empty()
            || self.cluster.as_ref().is_some_and(|c| !c.held.is_empty())
            || !self.fetches.is_empty()
            || !self.joins.is_empty()
            || !self.ready.is_empty()
    }

    /// Creates a topic: the broker's defaults changed by the request's settings.
    pub fn create_topic(&mut self, req: &CreateTopic) -> Result<TopicConfig, BrokerError> {
        let config = self.topic_config_for(req)?;
        self.topics.create(&req.name, config.clone())?;
        tracing::info!(topic = %req.name, partitions = config.partitions, fsync = %config.fsync, "topic created");
        Ok(config)
    }

    /// The broker's defaults changed by a create request's settings, checked.
    pub fn topic_config_for(&self, req: &CreateTopic) -> Result<TopicConfig, BrokerError> {
        let mut config = self.cfg.topic_defaults.clone();
        if let Some(n) = req.partitions {
            config.partitions = n;
        }
        for (k, v) in &req.configs {
            config.set(k, v).map_err(BrokerError::InvalidConfig)?;
        }
        crate::topics::validate_config(&config)?;
        Ok(config)
    }

    pub fn delete_topic(&mut self, name: &str) -> Result<(), BrokerError> {
        self.topics.delete(name)?;
        tracing::info!(topic = %name, "topic deleted");
        Ok(())
    }

    pub fn topic_defaults(&self) -> &TopicConfig {
        &self.cfg.topic_defaults
    }

    pub fn list_topics(&self) -> Vec<String> {
        self.topics.iter().map(|(n, _)| n.clone()).collect()
    }

    pub fn describe_topic(&self, name: &str) -> Result<TopicDescription, BrokerError> {
        let t = self.topics.get(name)?;
        Ok(TopicDescription {
            name: name.into(),
            config: t.config.clone(),
            partitions: t
                .partitions
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let r = p.reader();
                    PartitionInfo {
                        partition: i as u32,
                        start_offset: r.start_offset(),
                        end_offset: r.end_offset(),
                        durable_end: r.durable_end(),
                    }
                })
                .collect(),
        })
    }

    fn check_batch(&mut self, req: &Produce<'_>) -> Result<(), BrokerError> {
        let max = self.topics.get(req.topic)?.config.max_batch_bytes as usize;
        if req.records.len() > max {
            return Err(BrokerError::BatchTooLarge {
                len: req.records.len(),
                max,
            });
        }
        if req.record_count == 0 {
            return Err(BrokerError::CorruptBatch(
                "a batch has at least one record".into(),
            ));
        }
        if req.max_timestamp < req.first_timestamp {
            return Err(BrokerError::CorruptBatch(format!(
                "max timestamp {} before the first {}",
                req.max_timestamp, req.first_timestamp
            )));
        }
        let records = self
            .codecs
            .records(req.codec, req.records, self.cfg.max_uncompressed)
            .map_err(BrokerError::CorruptBatch)?;
        let mut max_ts = i64::MIN;
        for_each_record(records, req.record_count, 0, req.first_timestamp, |r| {
            max_ts = max_ts.max(r.timestamp)
        })
        .map_err(BrokerError::CorruptBatch)?;
        if max_ts != req.max_timestamp {
            return Err(BrokerError::CorruptBatch(format!(
                "records' newest timestamp {max_ts} is not the batch's max {}",
                req.max_timestamp
            )));
        }
        Ok(())
    }

    /// A produce: validated, deduplicated, appended; answered now or once durable.
    fn now<T: serde::Serialize>(&mut self, r: &Result<T, BrokerError>) -> Answer<'_> {
        encode_result_into(r, &mut self.reply);
        Answer::Now(&self.reply)
    }

    pub fn produce(&mut self, body: &[u8], call: impl FnOnce() -> Deferred) -> Answer<'_> {
        self.stats.produce_requests += 1;
        let result = decode_request::<Produce>(body, "Produce").and_then(|req| {
            let min_isr = self.topics.get(req.topic)?.config.min_insync_replicas;
            self.topics
                .partition(req.topic, req.partition)?
                .replica
                .check_produce(req.topic, req.partition, req.acks == Acks::All, min_isr)?;
            self.check_batch(&req)?;
            let me = self.node_id();
            let part = self.topics.partition_mut(req.topic, req.partition)?;
            let out = part.produce(&req)?;
            if let Some(me) = me {
                // A leader alone in its ISR commits at once.
                let leo = part.end_offset();
                part.replica.advance_hw(me, leo);
            }
            let durable = part.is_committed(out.last_offset);
            Ok((req, out, durable))
        });
        match result {
            Err(e) => {
                self.stats.produce_errors += 1;
                self.now::<Produced>(&Err(e))
            }
            Ok((req, out, durable)) => {
                if out.duplicate {
                    self.stats.duplicates += 1;
                } else {
                    self.appends += 1;
                    self.stats.records_in += req.record_count as u64;
                    self.stats.bytes_in += req.records.len() as u64;
                }
                if req.acks != Acks::All || durable {
                    return self.now::<Produced>(&Ok(out));
                }
                let body = encode_result::<Produced>(&Ok(out));
                self.acks.push(PendingAck {
                    call: call(),
                    on: AckOn::Partition {
                        topic: req.topic.into(),
                        partition: req.partition,
                    },
                    last_offset: out.last_offset,
                    body,
                });
                Answer::Held
            }
        }
    }

    /// Gathers what a fetch can answer now; `None` when it should wait.
    fn gather(&self, req: &Fetch, must_answer: bool) -> Option<FetchReply> {
        let mut parts = Vec::with_capacity(req.partitions.len());
        let mut views = Vec::new();
        let mut total = 0usize;
        let mut any_error = false;
        for fp in &req.partitions {
            let res = self
                .topics
                .partition(&fp.topic, fp.partition)
                .and_then(|p| {
                    p.replica.check_leads(&fp.topic, fp.partition)?;
                    let r = p.reader();
                    let left = (req.max_bytes as usize).saturating_sub(total);
                    // Past the byte budget, later partitions get nothing this time
                    // (but the first partition with data always gets a batch).
                    let hw = p.high_watermark();
                    // Consumers read below the high watermark only.
                    // Between the watermark and the log end: nothing yet (past
                    // the log end the fetch below says out of range).
                    let waiting = fp.offset >= hw && fp.offset <= r.end_offset();
                    let view = if (left == 0 && total > 0) || waiting {
                        None
                    } else {
                        Some(r.fetch(fp.offset, left.max(1))?.below(hw))
                    };
                    Ok((r, view, hw))
                });
            match res {
                Ok((r, view, hw)) => {
                    let len = view.as_ref().map_or(0, |v| v.bytes().len());
                    total += len;
                    parts.push(FetchedPartition {
                        error: None,
                        high_watermark: hw,
                        log_start: r.start_offset(),
                        len: len as u32,
                    });
                    views.extend(view.filter(|v| !v.is_empty()));
                }
                Err(e) => {
                    any_error = true;
                    parts.push(FetchedPartition {
                        error: Some(e),
                        high_watermark: 0,
                        log_start: 0,
                        len: 0,
                    });
                }
            }
        }
        if !must_answer && !any_error && total < (req.min_bytes.max(1) as usize) {
            return None;
        }
        for (fp, part) in req.partitions.iter().zip(&parts) {
            if let Ok(p) = self.topics.partition(&fp.topic, fp.partition) {
                p.note_fetched(part.len as usize);
            }
        }
        let head = encode_result(&Ok(FetchHead { partitions: parts }));
        Some(FetchReply { head, views })
    }

    /// A fetch: answered now when `min_bytes` are there (or on any error),
    /// else held up to `max_wait_ms`.
    pub fn fetch(
        &mut self,
        body: &[u8],
        call: impl FnOnce() -> Deferred,
    ) -> Result<Option<FetchReply>, Vec<u8>> {
        self.stats.fetch_requests += 1;
        let req = decode_request::<Fetch>(body, "Fetch").and_then(|r| {
            if r.partitions.is_empty() || r.partitions.len() > 10_000 {
                return Err(BrokerError::InvalidRequest(format!(
                    "a fetch names 1..=10000 partitions, not {}",
                    r.partitions.len()
                )));
            }
            if Duration::from_millis(r.max_wait_ms as u64) > self.cfg.max_fetch_wait {
                return Err(BrokerError::InvalidRequest(format!(
                    "max_wait_ms {} exceeds the broker's limit of {:?}",
                    r.max_wait_ms, self.cfg.max_fetch_wait
                )));
            }
            Ok(r)
        });
        let req = req.map_err(|e| encode_result::<FetchHead>(&Err(e)))?;
        let now_only = req.max_wait_ms == 0;
        match self.gather(&req, now_only) {
            Some(reply) => {
                self.stats.bytes_out += reply.len() as u64;
                Ok(Some(reply))
            }
            None => {
                self.stats.fetches_held += 1;
                let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms as u64);
                self.fetches.push(PendingFetch {
                    call: call(),
                    req,
                    deadline,
                });
                Ok(None)
            }
        }
    }

    pub fn list_offsets(&self, req: &ListOffsets) -> Result<ListedOffset, BrokerError> {
        let p = self.topics.partition(&req.topic, req.partition)?;
        let r = p.reader();
        let offset = match req.spec {
            OffsetSpec::Earliest => Some(r.start_offset()),
            OffsetSpec::Latest => Some(p.high_watermark()),
            OffsetSpec::Timestamp(ts) => r.offset_for_timestamp(ts)?,
        };
        Ok(ListedOffset { offset })
    }

    /// A new producer id. In a cluster each node hands out ids with its
    /// node id in the top bits (`node << 40 | local`), so ids from different
    /// brokers never collide on a partition.
    pub fn init_producer(&mut self) -> Result<ProducerIdentity, BrokerError> {
        let local = self.producer_ids.next()?;
        let producer_id = match self.node_id() {
            Some(node) if local < (1 << 40) && node < (1 << 22) => ((node as i64) << 40) | local,
            Some(_) => {
                return Err(BrokerError::Storage(
                    "producer ids exhausted for this node id".into(),
                ))
            }
            None => local,
        };
        Ok(ProducerIdentity {
            producer_id,
            epoch: 0,
        })
    }

    fn partition_counts(topics: &Topics) -> impl Fn(&str) -> Option<u32> + '_ {
        move |t| topics.get(t).ok().map(|t| t.partitions.len() as u32)
    }

    /// A join; always answered through [`Broker::tick`] (at once when refused).
    pub fn join_group(&mut self, req: &JoinGroup, call: Deferred) {
        if let Err(e) = validate_group(&req.group) {
            self.ready.push((call, encode_result::<Joined>(&Err(e))));
            return;
        }
        let counts = Self::partition_counts(&self.topics);
        let group = self
            .groups
            .entry(req.group.clone())
            .or_insert_with(|| Group::new(&req.group));
        if let JoinOutcome::Now(r, call) =
            group.join(req, call, Instant::now(), &counts, &mut self.joins)
        {
            self.ready.push((call, encode_result(&r)));
        }
    }

    fn group_mut(&mut self, name: &str) -> Result<&mut Group, BrokerError> {
        validate_group(name)?;
        self.groups
            .get_mut(name)
            .ok_or_else(|| BrokerError::UnknownMember(format!("(group `{name}` has no members)")))
    }

    pub fn sync_group(&mut self, m: &MemberRef) -> Result<Assignment, BrokerError> {
        self.group_mut(&m.group)?.sync(m, Instant::now())
    }

    pub fn heartbeat(&mut self, m: &MemberRef) -> Result<(), BrokerError> {
        self.group_mut(&m.group)?.heartbeat(m, Instant::now())
    }

    pub fn leave_group(&mut self, m: &MemberRef) -> Result<(), BrokerError> {
        let counts = Self::partition_counts(&self.topics);
        validate_group(&m.group)?;
        let group = self
            .groups
            .get_mut(&m.group)
            .ok_or_else(|| BrokerError::UnknownMember(m.member_id.clone()))?;
        group.leave(m, Instant::now(), &counts, &mut self.joins)
    }

    /// An offset commit: checked against the group's generation, appended to
    /// the offsets log, answered once durable.
    pub fn commit(&mut self, body: &[u8], call: impl FnOnce() -> Deferred) -> Answer<'_> {
        let res = decode_request::<CommitOffsets>(body, "OffsetCommit").and_then(|req| {
            validate_group(&req.member.group)?;
            match self.groups.get(&req.member.group) {
                Some(g) => g.may_commit(&req.member)?,
                None if req.member.generation < 0 => {}
                None => return Err(BrokerError::UnknownMember(req.member.member_id.clone())),
            }
            for o in &req.offsets {
                self.topics.partition(&o.topic, o.partition)?;
            }
            if self.cluster.is_some() {
                return Ok(Commit::Cluster(req));
            }
            self.offsets
                .commit(&req.member.group, &req.offsets)
                .map(Commit::Local)
        });
        let res = match res {
            Ok(Commit::Cluster(req)) => {
                self.stats.commits += 1;
                self.cluster_commit(&req.member.group, &req.offsets, call());
                return Answer::Held;
            }
            Ok(Commit::Local(last)) => Ok(last),
            Err(e) => Err(e),
        };
        match res {
            Err(e) => self.now::<()>(&Err(e)),
            Ok(last) => {
                self.stats.commits += 1;
                if self.offsets.is_durable(last) {
                    return self.now::<()>(&Ok(()));
                }
                self.acks.push(PendingAck {
                    call: call(),
                    on: AckOn::Offsets,
                    last_offset: last,
                    body: encode_result::<()>(&Ok(())),
                });
                Answer::Held
            }
        }
    }

    fn lag(&self, topic: &str, partition: u32, committed: Option<u64>) -> Option<u64> {
        let end = self
            .topics
            .partition(topic, partition)
            .ok()?
            .reader()
            .end_offset();
        Some(end.saturating_sub(committed.unwrap_or(0)))
    }

    /// Every partition's offsets and traffic, for metrics.
    pub fn partition_readings(&self) -> Vec<PartitionReading> {
        let mut out = Vec::new();
        for (name, t) in self.topics.iter() {
            for (i, p) in t.partitions.iter().enumerate() {
                let r = p.reader();
                let (bytes_in, bytes_out) = p.traffic();
                out.push(PartitionReading {
                    topic: name.clone(),
                    partition: i as u32,
                    start_offset: r.start_offset(),
                    end_offset: r.end_offset(),
                    durable_end: r.durable_end(),
                    bytes_in,
                    bytes_out,
                });
            }
        }
        out
    }

    /// Each group's committed offset and lag per partition it committed
    /// for (partitions since deleted are left out), for metrics.
    pub fn lag_readings(&self) -> Vec<LagReading> {
        let mut out = Vec::new();
        for g in self.offset_groups() {
            let Some(committed) = self.group_offsets(&g) else {
                continue;
            };
            for ((topic, partition), (offset, _)) in &committed {
                if let Some(lag) = self.lag(topic, *partition, Some(*offset)) {
                    out.push(LagReading {
                        group: g.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                        committed: *offset,
                        lag,
                    });
                }
            }
        }
        out
    }

    /// The compression backend per codec and the bytes through each.
    pub fn codecs(&self) -> &Codecs {
        &self.codecs
    }

    pub fn fetch_offsets(&self, req: &FetchOffsets) -> Result<Vec<PartitionOffset>, BrokerError> {
        validate_group(&req.group)?;
        let committed = self.group_offsets(&req.group);
        let committed = committed.as_ref();
        let wanted: Vec<(String, u32)> = if req.partitions.is_empty() {
            committed
                .map(|g| g.keys().cloned().collect())
                .unwrap_or_default()
        } else {
            req.partitions
                .iter()
                .flat_map(|tp| tp.partitions.iter().map(|p| (tp.topic.clone(), *p)))
                .collect()
        };
        Ok(wanted
            .into_iter()
            .map(|(topic, partition)| {
                let c = committed.and_then(|g| g.get(&(topic.clone(), partition)));
                PartitionOffset {
                    lag: self.lag(&topic, partition, c.map(|c| c.0)),
                    committed: c.map(|c| c.0),
                    metadata: c.map(|c| c.1.clone()).unwrap_or_default(),
                    topic,
                    partition,
                }
            })
            .collect())
    }

    pub fn describe_group(&self, name: &str) -> Result<GroupDescription, BrokerError> {
        validate_group(name)?;
        let mut d = match self.groups.get(name) {
            Some(g) => g.describe(),
            None if self.group_offsets(name).is_some() => Group::new(name).describe(),
            None => return Err(BrokerError::InvalidRequest(format!("no group `{name}`"))),
        };
        d.offsets = self.fetch_offsets(&FetchOffsets {
            group: name.into(),
            partitions: Vec::new(),
        })?;
        Ok(d)
    }

    pub fn list_groups(&self) -> Vec<String> {
        let mut g: Vec<String> = self
            .groups
            .keys()
            .cloned()
            .chain(self.offset_groups())
            .collect();
        g.sort();
        g.dedup();
        g
    }

    /// Appends a batch described by `meta` (the Kafka listener's, whose
    /// payload layout its attributes name), deduplicating retries of an
    /// idempotent producer like [`Broker::produce`]. Durability is the
    /// caller's to wait for ([`Broker::is_durable`]).
    pub fn append_batch(
        &mut self,
        topic: &str,
        partition: u32,
        meta: &BatchMeta,
        payload: &[u8],
    ) -> Result<Produced, BrokerError> {
        self.stats.produce_requests += 1;
        let me = self.node_id();
        let res = self.topics.partition_mut(topic, partition).and_then(|p| {
            p.replica.check_produce(topic, partition, false, 1)?;
            let out = p.append(meta, payload)?;
            if let Some(me) = me {
                let leo = p.end_offset();
                p.replica.advance_hw(me, leo);
            }
            Ok(out)
        });
        match &res {
            Err(_) => self.stats.produce_errors += 1,
            Ok(out) if out.duplicate => self.stats.duplicates += 1,
            Ok(_) => {
                self.appends += 1;
                self.stats.records_in += meta.record_count as u64;
                self.stats.bytes_in += payload.len() as u64;
            }
        }
        res
    }

    /// Whether `offset` of a partition may be acknowledged to an `acks=all`
    /// producer; a sync failure is an error.
    pub fn is_durable(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<bool, BrokerError> {
        let p = self.topics.partition(topic, partition)?;
        if p.is_committed(offset) {
            return Ok(true);
        }
        match p.flush_error() {
            Some(why) => Err(BrokerError::Storage(format!("not durable: {why}"))),
            None => Ok(false),
        }
    }

    /// A partition's batches from `offset` (at most `max_bytes`, but at
    /// least one batch), with its log start and end.
    pub fn read(
        &mut self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: usize,
    ) -> Result<(FetchView, u64, u64), BrokerError> {
        let p = self.topics.partition(topic, partition)?;
        p.replica.check_leads(topic, partition)?;
        let r = p.reader();
        let hw = p.high_watermark();
        // Between the watermark and the log end: an empty view (the fetch at
        // the log end); past the log end: out of range, from the fetch.
        let at = match offset >= hw && offset <= r.end_offset() {
            true => r.end_offset(),
            false => offset,
        };
        let view = r.fetch(at, max_bytes.max(1))?.below(hw);
        p.note_fetched(view.bytes().len());
        self.stats.fetch_requests += 1;
        self.stats.bytes_out += view.bytes().len() as u64;
        Ok((view, r.start_offset(), hw))
    }

    pub fn topic_config(&self, topic: &str) -> Result<&TopicConfig, BrokerError> {
        Ok(&self.topics.get(topic)?.config)
    }

    /// A partition's log start and end offsets.
    pub fn log_bounds(&self, topic: &str, partition: u32) -> Result<(u64, u64), BrokerError> {
        let p = self.topics.partition(topic, partition)?;
        Ok((p.reader().start_offset(), p.high_watermark()))
    }

    /// Largest uncompressed batch the broker inflates to check it.
    pub fn max_uncompressed(&self) -> usize {
        self.cfg.max_uncompressed
    }

    /// Number of partitions of `topic`, if it exists.
    pub fn partition_count(&self, topic: &str) -> Option<u32> {
        self.topics
            .get(topic)
            .ok()
            .map(|t| t.partitions.len() as u32)
    }

    /// Batches appended since open: a waiting reader re-reads when it moves.
    pub fn appends(&self) -> u64 {
        self.appends
    }

    /// Checks a commit of a group whose membership is kept elsewhere (the
    /// Kafka listener's coordinator): the group's name, every partition.
    pub(crate) fn check_commit(
        &self,
        group: &str,
        offsets: &[CommittedOffset],
    ) -> Result<(), BrokerError> {
        validate_group(group)?;
        for o in offsets {
            self.topics.partition(&o.topic, o.partition)?;
        }
        Ok(())
    }

    pub(crate) fn note_commit(&mut self) {
        self.stats.commits += 1;
    }

    /// A group's committed offsets: the quorum's in a cluster, else the
    /// local offsets log's.
    fn group_offsets(&self, group: &str) -> Option<crate::offsets::GroupOffsets> {
        match self.cluster_offsets(group) {
            Some(o) => o,
            None => self.offsets.group(group).cloned(),
        }
    }

    /// Groups with committed offsets (the quorum's in a cluster), for the
    /// Kafka listener's ListGroups.
    pub(crate) fn offset_group_names(&self) -> Vec<String> {
        self.offset_groups()
    }

    /// Groups with committed offsets (the quorum's in a cluster).
    fn offset_groups(&self) -> Vec<String> {
        match self.cluster_offset_groups() {
            Some(g) => g,
            None => self.offsets.groups().cloned().collect(),
        }
    }

    /// Commits offsets for a group whose membership is kept elsewhere (the
    /// Kafka listener's coordinator), outside a cluster (in one, see
    /// `replication::offsets::commit_blocking`). Returns the offset whose durability
    /// completes it ([`Broker::offsets_durable`]).
    pub fn commit_offsets(
        &mut self,
        group: &str,
        offsets: &[CommittedOffset],
    ) -> Result<u64, BrokerError> {
        validate_group(group)?;
        for o in offsets {
            self.topics.partition(&o.topic, o.partition)?;
        }
        let last = self.offsets.commit(group, offsets)?;
        self.stats.commits += 1;
        Ok(last)
    }

    pub fn offsets_durable(&self, last: u64) -> Result<bool, BrokerError> {
        if self.offsets.is_durable(last) {
            return Ok(true);
        }
        match self.offsets.flush_error() {
            Some(why) => Err(BrokerError::Storage(format!("not durable: {why}"))),
            None => Ok(false),
        }
    }

    /// Collects answers that became due: durable acks, fetches with data or
    /// past their wait, completed rebalances. Also expires group sessions
    /// and runs retention.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<(Deferred, Vec<u8>)>) {
        out.append(&mut self.ready);
        self.cluster_tick(now, out);
        let topics = &self.topics;
        let offsets = &self.offsets;
        let mut i = 0;
        while i < self.acks.len() {
            let a = &self.acks[i];
            let (durable, failed) = match &a.on {
                AckOn::Offsets => (offsets.is_durable(a.last_offset), offsets.flush_error()),
                AckOn::Partition { topic, partition } => {
                    match topics.partition(topic, *partition) {
                        Ok(p) => (p.is_committed(a.last_offset), p.flush_error()),
                        Err(e) => (false, Some(e.to_string())),
                    }
                }
            };
            if durable || failed.is_some() {
                let a = self.acks.swap_remove(i);
                let body = match failed.filter(|_| !durable) {
                    None => a.body,
                    Some(why) => encode_result::<()>(&Err(BrokerError::Storage(format!(
                        "not durable: {why}"
                    )))),
                };
                out.push((a.call, body));
            } else {
                i += 1;
            }
        }
        let data_arrived = self.appends != self.appends_seen;
        self.appends_seen = self.appends;
        let mut i = 0;
        while i < self.fetches.len() {
            let f = &self.fetches[i];
            let due = now >= f.deadline;
            if !(due || data_arrived) {
                i += 1;
                continue;
            }
            match self.gather(&f.req, due) {
                Some(reply) => {
                    let f = self.fetches.swap_remove(i);
                    self.stats.bytes_out += reply.len() as u64;
                    out.push((f.call, reply.to_vec()));
                }
                None => i += 1,
            }
        }
        if now.duration_since(self.last_group_tick) >= GROUP_TICK {
            self.last_group_tick = now;
            let counts = Self::partition_counts(&self.topics);
            for g in self.groups.values_mut() {
                g.tick(now, &counts, &mut self.joins);
            }
            self.groups.retain(|_, g| !g.is_empty() || g.has_held());
        }
        for (call, r) in self.joins.drain(..) {
            out.push((call, encode_result(&r)));
        }
        if now.duration_since(self.last_retention) >= self.cfg.retention_check {
            self.last_retention = now;
            self.run_retention();
        }
    }

    /// Something new became visible to consumers (an append, or a high
    /// watermark that moved): held fetches look again.
    pub(crate) fn note_visible(&mut self) {
        self.appends += 1;
    }

    /// Answers `acks=all` produces waiting on partitions this broker no
    /// longer leads: whether their batches survive is the new leader's to
    /// say, so the producer retries there (idempotence dedups).
    pub(crate) fn fail_acks_not_led(&mut self) {
        let mut i = 0;
        while i < self.acks.len() {
            let lost = match &self.acks[i].on {
                AckOn::Partition { topic, partition } => self
                    .topics
                    .partition(topic, *partition)
                    .ok()
                    .filter(|p| {
                        !matches!(
                            p.replica.role,
                            crate::replication::Role::Leader(_) | crate::replication::Role::Single
                        )
                    })
                    .map(|p| (topic.clone(), *partition, p.replica.leader_epoch())),
                AckOn::Offsets => None,
            };
            match lost {
                Some((topic, partition, _)) => {
                    let a = self.acks.swap_remove(i);
                    let leader = self.known_leader(&topic, partition);
                    let e = BrokerError::NotLeader {
                        topic,
                        partition,
                        leader,
                    };
                    self.ready
                        .push((a.call, encode_result::<Produced>(&Err(e))));
                }
                None => i += 1,
            }
        }
    }

    fn run_retention(&mut self) {
        for (name, t) in self.topics.iter_mut() {
            for (i, p) in t.partitions.iter_mut().enumerate() {
                match p.log_mut().apply_retention() {
                    Ok(r) if r.segments_deleted > 0 => {
                        tracing::info!(topic = %name, partition = i, segments = r.segments_deleted, bytes = r.bytes_deleted, start = r.new_start_offset, "retention")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(topic = %name, partition = i, error = %e, "retention failed")
                    }
                }
            }
        }
    }

    /// Seals and syncs every log.
    pub fn close(self) -> Result<(), BrokerError> {
        let t = self.topics.close();
        let o = self.offsets.close();
        t.and(o)
    }
}
