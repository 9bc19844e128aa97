//! The producer: records accumulate per partition into a batch that is sent
//! when it reaches `batch_bytes` or has waited `linger`; up to
//! `max_in_flight` batches per partition are outstanding, in order. Failed
//! sends are retried in order with back-off; with idempotence (the default)
//! the broker recognises a retried batch by producer id and sequence and
//! answers with its original offsets, so a retry never duplicates.
//!
//! Nothing runs in the background: call [`Producer::poll`] (which
//! [`Producer::send`] also does) to move batches and collect [`Delivery`]
//! reports, and [`Producer::flush`] before dropping it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use neo_accel::CodecId;
use neo_transports::rpc::{CallId, RpcError};
use neo_transports::Transport;

use super::{decode_answer, method_id, ClientError, ConnectConfig, Connection};
use crate::protocol::*;
use crate::records::{BatchBuilder, Codecs};

#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub acks: Acks,
    /// Longest a record waits for its batch to fill.
    pub linger: Duration,
    /// A batch is sent once its records reach this many bytes.
    pub batch_bytes: usize,
    /// Batches outstanding per partition.
    pub max_in_flight: usize,
    /// Bytes buffered (unsent and unacknowledged) before `send` waits.
    pub buffer_bytes: usize,
    /// Give up on a batch this long after it was first sent.
    pub delivery_timeout: Duration,
    pub retry_backoff: Duration,
    pub idempotent: bool,
    /// Codec for every topic; `None`: each topic's configured codec.
    pub codec: Option<CodecId>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: Acks::All,
            linger: Duration::from_millis(1),
            batch_bytes: 64 << 10,
            max_in_flight: 5,
            buffer_bytes: 32 << 20,
            delivery_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(50),
            idempotent: true,
            codec: None,
        }
    }
}

/// The fate of one batch of records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub topic: Arc<str>,
    pub partition: u32,
    pub records: u32,
    /// Offsets assigned, or why the batch was given up.
    pub result: Result<(u64, u64), ClientError>,
    /// The broker had the batch already (a retry): offsets are the original ones.
    pub duplicate: bool,
    /// The tags given to [`Producer::send_tagged`], one per record in order
    /// (0 for records sent without one): record `i` has offset `base + i`.
    /// Empty when no record of the batch was tagged.
    pub tags: Vec<u64>,
}

struct TopicMeta {
    partitions: u32,
    codec: CodecId,
    sticky: u32,
}

struct Batch {
    producer_id: i64,
    epoch: i16,
    seq: i32,
    count: u32,
    first_ts: i64,
    max_ts: i64,
    codec: CodecId,
    payload: Vec<u8>,
    /// Uncompressed bytes, as counted against `buffer_bytes`.
    raw: usize,
    call: Option<CallId>,
    first_sent: Option<Instant>,
    retry_at: Instant,
    tags: Vec<u64>,
}

struct Part {
    topic: Arc<str>,
    partition: u32,
    open: BatchBuilder,
    open_tags: Vec<u64>,
    opened: Instant,
    next_seq: i32,
    queue: VecDeque<Batch>,
}

pub struct Producer<T: Transport> {
    conn: Connection<T>,
    cfg: ProducerConfig,
    identity: Option<ProducerIdentity>,
    topics: HashMap<String, TopicMeta>,
    parts: Vec<Part>,
    index: HashMap<(Arc<str>, u32), usize>,
    calls: HashMap<CallId, usize>,
    deliveries: Vec<Delivery>,
    codecs: Codecs,
    buffered: usize,
    body: Vec<u8>,
    /// Produce answers reaped while a blocking control call waited.
    backlog: Vec<(CallId, Result<Produced, ClientError>)>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl<T: Transport> Producer<T> {
    pub fn connect(
        transport: T,
        connect: ConnectConfig,
        cfg: ProducerConfig,
    ) -> Result<Self, ClientError> {
        if cfg.max_in_flight == 0 || cfg.batch_bytes == 0 {
            return Err(ClientError::Invalid(
                "max_in_flight and batch_bytes must be > 0".into(),
            ));
        }
        let mut conn = Connection::connect(transport, connect)?;
        let identity = match cfg.idempotent {
            true => Some(conn.call(method::INIT_PRODUCER, &())?),
            false => None,
        };
        Ok(Self {
            conn,
            cfg,
            identity,
            topics: HashMap::new(),
            parts: Vec::new(),
            index: HashMap::new(),
            calls: HashMap::new(),
            deliveries: Vec::new(),
            codecs: Codecs::software(),
            buffered: 0,
            body: Vec::new(),
            backlog: Vec::new(),
        })
    }

    /// The producer id and epoch in use (with idempotence).
    pub fn identity(&self) -> Option<ProducerIdentity> {
        self.identity
    }

    fn topic(&mut self, topic: &str) -> Result<&mut TopicMeta, ClientError> {
        if !self.topics.contains_key(topic) {
            let d: TopicDescription =
                self.call_sync(method::DESCRIBE_TOPIC, &TopicName { name: topic.into() })?;
            let codec = match self.cfg.codec {
                Some(c) => c,
                None => codec_by_name(&d.config.codec)?,
            };
            let meta = TopicMeta {
                partitions: d.config.partitions,
                codec,
                sticky: 0,
            };
            self.topics.insert(topic.into(), meta);
        }
        Ok(self.topics.get_mut(topic).expect("inserted above"))
    }

    fn part(&mut self, topic: &str, partition: u32) -> usize {
        let key: (Arc<str>, u32) = (Arc::from(topic), partition);
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.parts.push(Part {
            topic: key.0.clone(),
            partition,
            open: BatchBuilder::new(),
            open_tags: Vec::new(),
            opened: Instant::now(),
            next_seq: 0,
            queue: VecDeque::new(),
        });
        self.index.insert(key, self.parts.len() - 1);
        self.parts.len() - 1
    }

    /// Queues a record. `partition`: explicit, else by key hash, else the
    /// topic's current sticky partition (which moves on with each batch).
    /// Waits (polling) while `buffer_bytes` are already buffered.
    pub fn send(
        &mut self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<(), ClientError> {
        self.send_with_headers(topic, partition, key, value, &[])
    }

    /// [`Producer::send`] with record headers (name, optional value).
    pub fn send_with_headers(
        &mut self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[crate::records::Header<'_>],
    ) -> Result<(), ClientError> {
        self.send_tagged(topic, partition, key, value, headers, 0)
    }

    /// [`Producer::send_with_headers`] with a caller's tag that comes back in
    /// the record's [`Delivery`] (per-record delivery reports: the C ABI).
    pub fn send_tagged(
        &mut self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[crate::records::Header<'_>],
        tag: u64,
    ) -> Result<(), ClientError> {
        let len = BatchBuilder::record_len(key, value, headers);
        let meta = self.topic(topic)?;
        let p = match (partition, key) {
            (Some(p), _) if p < meta.partitions => p,
            (Some(p), _) => {
                return Err(ClientError::Broker(BrokerError::UnknownPartition {
                    topic: topic.into(),
                    partition: p,
                    count: meta.partitions,
                }))
            }
            (None, Some(k)) => crc32c::crc32c(k) % meta.partitions,
            (None, None) => meta.sticky % meta.partitions,
        };
        let deadline = Instant::now() + self.cfg.delivery_timeout;
        while self.buffered + len > self.cfg.buffer_bytes && self.buffered > 0 {
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout(format!(
                    "{} bytes buffered for longer than the delivery timeout",
                    self.buffered
                )));
            }
            if self.poll()? == 0 {
                self.conn
                    .rpc()
                    .transport()
                    .wait(Some(Duration::from_micros(100)))?;
            }
        }
        let i = self.part(topic, p);
        let part = &mut self.parts[i];
        if part.open.is_empty() {
            part.opened = Instant::now();
        }
        part.open
            .push_with_headers(key, value, headers, now_ms())
            .map_err(ClientError::Invalid)?;
        // Tags are kept only once a record is tagged: untagged batches (the
        // Rust client's own use) allocate nothing for them.
        if tag != 0 || !part.open_tags.is_empty() {
            part.open_tags.resize(part.open.count() as usize - 1, 0);
            part.open_tags.push(tag);
        }
        self.buffered += len;
        let full = part.open.len() >= self.cfg.batch_bytes;
        // The record is queued: its fate comes in a delivery report. A
        // broker out of reach now is retried by later polls; returning that
        // as this send's error would make the caller send the record twice.
        let moved = match full {
            true => self.seal(i),
            false => Ok(()),
        }
        .and_then(|()| self.poll().map(drop));
        match moved {
            Err(e) if !e.is_retriable() => Err(e),
            _ => Ok(()),
        }
    }

    fn seal(&mut self, i: usize) -> Result<(), ClientError> {
        let codec = self.topics[&*self.parts[i].topic].codec;
        let part = &mut self.parts[i];
        if part.open.is_empty() {
            return Ok(());
        }
        let mut payload = Vec::new();
        self.codecs
            .compress(codec, part.open.bytes(), &mut payload)
            .map_err(ClientError::Invalid)?;
        let (pid, epoch) = self
            .identity
            .map_or((-1, -1), |id| (id.producer_id, id.epoch));
        let count = part.open.count();
        let seq = if pid >= 0 { part.next_seq } else { -1 };
        if pid >= 0 {
            part.next_seq = ((part.next_seq as i64 + count as i64) % (i32::MAX as i64 + 1)) as i32;
        }
        part.queue.push_back(Batch {
            producer_id: pid,
            epoch,
            seq,
            count,
            first_ts: part.open.first_timestamp(),
            max_ts: part.open.max_timestamp(),
            codec,
            payload,
            raw: part.open.len(),
            call: None,
            first_sent: None,
            retry_at: Instant::now(),
            tags: std::mem::take(&mut part.open_tags),
        });
        part.open.clear();
        if let Some(meta) = self.topics.get_mut(&*part.topic) {
            meta.sticky = meta.sticky.wrapping_add(1);
        }
        Ok(())
    }

    /// Sends the ready batches of partition `i`, in order.
    fn dispatch(&mut self, i: usize, now: Instant) -> Result<(), ClientError> {
        let in_flight = self.parts[i]
            .queue
            .iter()
            .filter(|b| b.call.is_some())
            .count();
        let mut room = self.cfg.max_in_flight.saturating_sub(in_flight);
        let mut k = 0;
        while room > 0 && k < self.parts[i].queue.len() {
            let b = &self.parts[i].queue[k];
            if b.call.is_some() {
                k += 1;
                continue;
            }
            if b.retry_at > now {
                break; // later batches wait: order is kept
            }
            let part = &self.parts[i];
            let req = Produce {
                topic: &part.topic,
                partition: part.partition,
                acks: self.cfg.acks,
                producer_id: b.producer_id,
                producer_epoch: b.epoch,
                base_sequence: b.seq,
                record_count: b.count,
                codec: b.codec as u8,
                first_timestamp: b.first_ts,
                max_timestamp: b.max_ts,
                records: &b.payload,
            };
            self.body.clear();
            let body = postcard::to_extend(&req, std::mem::take(&mut self.body))
                .map_err(|e| ClientError::Invalid(e.to_string()))?;
            let conn = self.conn.ensure_async()?;
            let timeout = self.conn.config().request_timeout;
            let started =
                self.conn
                    .rpc()
                    .start(conn, method_id(method::PRODUCE), &body, Some(timeout));
            self.body = body;
            match started {
                Ok(id) => {
                    let b = &mut self.parts[i].queue[k];
                    b.call = Some(id);
                    b.first_sent.get_or_insert(now);
                    self.calls.insert(id, i);
                    room -= 1;
                    k += 1;
                }
                Err(RpcError::NoCredit(_)) => break,
                Err(e) => {
                    self.conn.note_error(&e);
                    self.parts[i].queue[k].retry_at = now + self.cfg.retry_backoff;
                    break;
                }
            }
        }
        Ok(())
    }

    /// A control call (describe, new producer id) while produce calls may be
    /// in flight: their answers, reaped meanwhile, wait in the backlog for
    /// the next [`Producer::poll`] instead of being lost.
    fn call_sync<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &mut self,
        method: &str,
        req: &Req,
    ) -> Result<Resp, ClientError> {
        let body = postcard::to_stdvec(req).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let conn = self.conn.ensure()?;
        let timeout = self.conn.config().request_timeout;
        let mut out = Vec::new();
        let backlog = &mut self.backlog;
        let r = self.conn.rpc().call_into_with(
            conn,
            method_id(method),
            &body,
            Some(timeout),
            &mut out,
            &mut |id, r| {
                let r = r
                    .map_err(ClientError::Rpc)
                    .and_then(decode_answer::<Produced>);
                backlog.push((id, r));
            },
        );
        if let Err(e) = &r {
            self.conn.note_error(e);
        }
        r?;
        decode_answer(&out)
    }

    /// Moves batches along: seals lingered ones, sends, reaps answers,
    /// retries failures. Returns the number of answers reaped.
    pub fn poll(&mut self) -> Result<usize, ClientError> {
        let now = Instant::now();
        for i in 0..self.parts.len() {
            let p = &self.parts[i];
            if !p.open.is_empty() && now.duration_since(p.opened) >= self.cfg.linger {
                self.seal(i)?;
            }
        }
        for i in 0..self.parts.len() {
            if !self.parts[i].queue.is_empty() {
                self.dispatch(i, now)?;
            }
        }
        let mut done: Vec<(CallId, Result<Produced, ClientError>)> =
            std::mem::take(&mut self.backlog);
        for (id, r) in self.conn.take_stray() {
            let r = r
                .map_err(ClientError::Rpc)
                .and_then(|b| decode_answer::<Produced>(&b));
            done.push((id, r));
        }
        let polled = self.conn.rpc().poll(&mut |id, r| {
            let r = r
                .map_err(ClientError::Rpc)
                .and_then(decode_answer::<Produced>);
            done.push((id, r));
        });
        if let Err(e) = polled {
            self.conn.note_error(&e);
        }
        let n = done.len();
        for (id, r) in done {
            self.answered(id, r, now)?;
        }
        Ok(n)
    }

    fn answered(
        &mut self,
        id: CallId,
        r: Result<Produced, ClientError>,
        now: Instant,
    ) -> Result<(), ClientError> {
        let Some(i) = self.calls.remove(&id) else {
            return Ok(());
        };
        let part = &mut self.parts[i];
        let Some(k) = part.queue.iter().position(|b| b.call == Some(id)) else {
            return Ok(());
        };
        if let Err(ClientError::Rpc(e)) = &r {
            self.conn.note_error(e);
        }
        if let Err(ClientError::Broker(BrokerError::NotLeader { .. })) = &r {
            let part = &self.parts[i];
            let (t, p) = (part.topic.to_string(), part.partition);
            self.conn.follow_leader(&t, p);
        }
        let part = &mut self.parts[i];
        let b = &mut part.queue[k];
        let expired = b
            .first_sent
            .is_some_and(|t| now.duration_since(t) >= self.cfg.delivery_timeout);
        match r {
            Err(e) if e.is_retriable() && !expired => {
                b.call = None;
                b.retry_at = now + self.cfg.retry_backoff;
                // Later batches were sent after this one; they must go again
                // after it (the broker refuses them out of order anyway).
                for later in part.queue.iter_mut().skip(k + 1) {
                    if let Some(c) = later.call.take() {
                        self.calls.remove(&c);
                    }
                    later.retry_at = now + self.cfg.retry_backoff;
                }
            }
            r => {
                let b = part.queue.remove(k).expect("index found above");
                self.buffered = self.buffered.saturating_sub(b.raw);
                let failed = r.is_err();
                self.deliveries.push(Delivery {
                    topic: part.topic.clone(),
                    partition: part.partition,
                    records: b.count,
                    duplicate: r.as_ref().is_ok_and(|p| p.duplicate),
                    result: r.map(|p| (p.base_offset, p.last_offset)),
                    tags: b.tags,
                });
                if failed && b.producer_id >= 0 {
                    self.restart_sequences(i)?;
                }
            }
        }
        Ok(())
    }

    /// After a batch is given up, its partition's sequence has a gap the
    /// broker would refuse forever: take a new producer id and renumber the
    /// partition's waiting batches from 0.
    fn restart_sequences(&mut self, i: usize) -> Result<(), ClientError> {
        let id: ProducerIdentity = self.call_sync(method::INIT_PRODUCER, &())?;
        self.identity = Some(id);
        for (j, part) in self.parts.iter_mut().enumerate() {
            part.next_seq = 0;
            if j != i {
                continue;
            }
            for b in part.queue.iter_mut() {
                if let Some(c) = b.call.take() {
                    self.calls.remove(&c);
                }
                b.producer_id = id.producer_id;
                b.epoch = id.epoch;
                b.seq = part.next_seq;
                part.next_seq += b.count as i32;
            }
        }
        Ok(())
    }

    /// Delivery reports gathered so far.
    pub fn take_deliveries(&mut self) -> Vec<Delivery> {
        std::mem::take(&mut self.deliveries)
    }

    /// Records queued or in flight, not yet reported.
    pub fn pending(&self) -> usize {
        self.parts
            .iter()
            .map(|p| {
                p.open.count() as usize + p.queue.iter().map(|b| b.count as usize).sum::<usize>()
            })
            .sum()
    }

    /// Sends everything buffered and waits until each batch is reported.
    pub fn flush(&mut self, timeout: Duration) -> Result<(), ClientError> {
        for i in 0..self.parts.len() {
            self.seal(i)?;
        }
        let deadline = Instant::now() + timeout;
        while self.pending() > 0 {
            if Instant::now() >= deadline {
                return Err(ClientError::Timeout(format!(
                    "{} records still unacknowledged",
                    self.pending()
                )));
            }
            if self.poll()? == 0 {
                self.conn
                    .rpc()
                    .transport()
                    .wait(Some(Duration::from_micros(100)))?;
            }
        }
        Ok(())
    }
}

pub(crate) fn codec_by_name(name: &str) -> Result<CodecId, ClientError> {
    [CodecId::None, CodecId::Lz4, CodecId::Zstd, CodecId::Deflate]
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or_else(|| ClientError::Invalid(format!("unknown codec `{name}`")))
}
