//! The broker's request and response types on Neo RPC, and its typed errors.
//!
//! Every method lives in service [`SERVICE`]. Bodies are postcard-encoded.
//! A response body is `Result<Response, BrokerError>`: broker failures are
//! typed values the client matches on, while transport-level failures
//! (deadline, overload, unknown method) stay RPC error frames. A fetch
//! response is followed by the raw batches it announces (see [`FetchHead`]).

use serde::{Deserialize, Serialize};

/// Service name of every broker method.
pub const SERVICE: &str = "neo.broker";

/// Method names (`neo.broker/<name>`).
pub mod method {
    pub const CREATE_TOPIC: &str = "CreateTopic";
    pub const DELETE_TOPIC: &str = "DeleteTopic";
    pub const LIST_TOPICS: &str = "ListTopics";
    pub const DESCRIBE_TOPIC: &str = "DescribeTopic";
    pub const PRODUCE: &str = "Produce";
    pub const FETCH: &str = "Fetch";
    pub const LIST_OFFSETS: &str = "ListOffsets";
    pub const INIT_PRODUCER: &str = "InitProducerId";
    pub const JOIN_GROUP: &str = "JoinGroup";
    pub const SYNC_GROUP: &str = "SyncGroup";
    pub const HEARTBEAT: &str = "Heartbeat";
    pub const LEAVE_GROUP: &str = "LeaveGroup";
    pub const COMMIT_OFFSETS: &str = "OffsetCommit";
    pub const FETCH_OFFSETS: &str = "OffsetFetch";
    pub const DESCRIBE_GROUP: &str = "DescribeGroup";
    pub const LIST_GROUPS: &str = "ListGroups";
    /// One step of a SASL exchange ([`super::AuthStep`]).
    pub const AUTHENTICATE: &str = "Authenticate";
    /// Every method, for registration and tests.
    pub const ALL: [&str; 17] = [
        CREATE_TOPIC,
        DELETE_TOPIC,
        LIST_TOPICS,
        DESCRIBE_TOPIC,
        PRODUCE,
        FETCH,
        LIST_OFFSETS,
        INIT_PRODUCER,
        JOIN_GROUP,
        SYNC_GROUP,
        HEARTBEAT,
        LEAVE_GROUP,
        COMMIT_OFFSETS,
        FETCH_OFFSETS,
        DESCRIBE_GROUP,
        LIST_GROUPS,
        AUTHENTICATE,
    ];
}

/// What the broker answers instead of a result. Stable names: clients match
/// on the variant, operators read the `Display` text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum BrokerError {
    #[error("unknown topic `{0}`")]
    UnknownTopic(String),
    #[error("topic `{topic}` has no partition {partition} (it has {count})")]
    UnknownPartition {
        topic: String,
        partition: u32,
        count: u32,
    },
    #[error("topic `{0}` already exists")]
    TopicExists(String),
    #[error("invalid topic name `{name}`: {why}")]
    InvalidTopicName { name: String, why: String },
    #[error("invalid topic configuration: {0}")]
    InvalidConfig(String),
    #[error("offset {offset} is outside the partition's log [{start}, {end})")]
    OffsetOutOfRange { offset: u64, start: u64, end: u64 },
    #[error("batch of {len} bytes exceeds the topic's limit of {max}")]
    BatchTooLarge { len: usize, max: usize },
    #[error("corrupt or inconsistent batch: {0}")]
    CorruptBatch(String),
    #[error("producer {producer_id}: sequence {got} out of order (expected {expected})")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    #[error("producer {producer_id}: epoch {got} is older than the current {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        current: i16,
        got: i16,
    },
    #[error("unknown member `{0}` of the group")]
    UnknownMember(String),
    #[error("generation {got} is not the group's current generation {current}")]
    IllegalGeneration { current: i32, got: i32 },
    #[error("the group is rebalancing; rejoin")]
    RebalanceInProgress,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("storage failure: {0}")]
    Storage(String),
    /// Authentication is required, or the exchange failed.
    #[error("authentication: {0}")]
    Authentication(String),
    /// The principal may not do this (ACLs).
    #[error("not authorized: {principal} may not {operation} {resource}")]
    NotAuthorized {
        principal: String,
        operation: String,
        resource: String,
    },
    /// This broker does not lead the partition (now); `leader` is the one
    /// it knows of. Refresh the metadata and retry there.
    #[error("this broker does not lead {topic}/{partition} (leader: {leader:?})")]
    NotLeader {
        topic: String,
        partition: u32,
        leader: Option<u64>,
    },
    /// `acks=all` needs more in-sync replicas than the partition has now.
    #[error("{topic}/{partition} has {in_sync} in-sync replicas; acks=all needs {required}")]
    NotEnoughReplicas {
        topic: String,
        partition: u32,
        in_sync: u32,
        required: u32,
    },
    /// A replica fetch for another leader epoch than the leader's.
    #[error("{topic}/{partition}: leader epoch {got}, the partition is at {current}")]
    StaleLeaderEpoch {
        topic: String,
        partition: u32,
        current: u32,
        got: u32,
    },
    /// The controller quorum refused or could not be reached.
    #[error("cluster: {0}")]
    Cluster(String),
}

impl BrokerError {
    /// Whether retrying the same request later can succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            Self::RebalanceInProgress
                | Self::Storage(_)
                | Self::OutOfOrderSequence { .. }
                | Self::NotLeader { .. }
                | Self::NotEnoughReplicas { .. }
                | Self::StaleLeaderEpoch { .. }
                | Self::Cluster(_)
        )
    }
}

impl From<neo_storage::StorageError> for BrokerError {
    fn from(e: neo_storage::StorageError) -> Self {
        use neo_storage::StorageError as S;
        match e {
            S::OffsetOutOfRange { offset, start, end } => {
                Self::OffsetOutOfRange { offset, start, end }
            }
            S::BatchTooLarge { len, max } => Self::BatchTooLarge { len, max },
            S::InvalidBatch(why) => Self::CorruptBatch(why.into()),
            other => Self::Storage(other.to_string()),
        }
    }
}

/// One client message of a SASL exchange over Neo RPC. The first names
/// the mechanism (`SCRAM-SHA-256`, `SCRAM-SHA-512`, `PLAIN`); later ones
/// may leave it empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthStep {
    pub mechanism: String,
    pub message: Vec<u8>,
}

/// The broker's answer to an [`AuthStep`]: the server's message, and
/// whether the exchange is complete (authenticated as `principal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthReply {
    pub message: Vec<u8>,
    pub done: bool,
    pub principal: String,
}

/// When data reaches the disk, per topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fsync {
    /// Only when a segment is sealed, and on close.
    Never,
    /// Group commit at most this many milliseconds after an append.
    IntervalMs(u64),
    /// Group commit after every append.
    Always,
}

impl std::str::FromStr for Fsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "never" => Ok(Self::Never),
            "always" => Ok(Self::Always),
            _ => s
                .strip_prefix("interval:")
                .and_then(|ms| ms.parse().ok())
                .filter(|&ms| ms > 0)
                .map(Self::IntervalMs)
                .ok_or_else(|| {
                    format!("fsync policy `{s}`: expected never, always or interval:<ms>")
                }),
        }
    }
}

impl std::fmt::Display for Fsync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Never => f.write_str("never"),
            Self::Always => f.write_str("always"),
            Self::IntervalMs(ms) => write!(f, "interval:{ms}"),
        }
    }
}

/// A topic's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    pub partitions: u32,
    /// Delete the oldest segments while a partition is larger than this.
    pub retention_bytes: Option<u64>,
    /// Delete segments whose newest record is older than this.
    pub retention_ms: Option<u64>,
    pub segment_bytes: u64,
    /// Roll the active segment when it is older than this.
    pub segment_ms: Option<u64>,
    /// Largest batch payload accepted (bytes, after compression).
    pub max_batch_bytes: u32,
    /// Codec Neo's producer uses for this topic: none, lz4, zstd, deflate.
    /// The broker accepts a batch in any codec it knows and checks it.
    pub codec: String,
    pub fsync: Fsync,
    /// Copies of each partition (a cluster's brokers; 1 on a single node).
    #[serde(default = "one")]
    pub replication_factor: u16,
    /// In-sync replicas an `acks=all` produce needs, the leader included.
    #[serde(default = "one")]
    pub min_insync_replicas: u16,
}

fn one() -> u16 {
    1
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            partitions: 1,
            retention_bytes: None,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            segment_bytes: 1 << 30,
            segment_ms: Some(7 * 24 * 3600 * 1000),
            max_batch_bytes: 8 << 20,
            codec: "none".into(),
            fsync: Fsync::IntervalMs(5),
            replication_factor: 1,
            min_insync_replicas: 1,
        }
    }
}

/// Creates a topic from the broker's defaults, changed by `configs`
/// (`key=value` pairs as [`TopicConfig::set`] reads them; Kafka's names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTopic {
    pub name: String,
    pub partitions: Option<u32>,
    pub configs: Vec<(String, String)>,
}

/// Topic setting names, as Kafka spells them where Kafka has one.
pub const TOPIC_KEYS: [&str; 10] = [
    "partitions",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.ms",
    "max.message.bytes",
    "compression.type",
    "fsync",
    "replication.factor",
    "min.insync.replicas",
];

fn opt_u64(v: &str) -> Result<Option<u64>, String> {
    match v {
        "-1" | "none" | "unlimited" => Ok(None),
        _ => v.parse().map(Some).map_err(|e| format!("`{v}`: {e}")),
    }
}

fn show(v: Option<u64>) -> String {
    v.map_or("-1".into(), |v| v.to_string())
}

impl TopicConfig {
    /// Changes one setting by name (see [`TOPIC_KEYS`]); `-1` means no limit.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("{key}=`{v}`: {e}"));
        match key {
            "partitions" => {
                self.partitions = num(value)?.try_into().map_err(|_| "too many partitions")?
            }
            "retention.bytes" => self.retention_bytes = opt_u64(value)?,
            "retention.ms" => self.retention_ms = opt_u64(value)?,
            "segment.bytes" => self.segment_bytes = num(value)?,
            "segment.ms" => self.segment_ms = opt_u64(value)?,
            "max.message.bytes" => {
                self.max_batch_bytes = num(value)?
                    .try_into()
                    .map_err(|_| "max.message.bytes over 4 GiB")?
            }
            // Kafka's `producer` (keep what the producer sent) and
            // `uncompressed` are Neo's `none`: the broker never recompresses.
            "compression.type" => {
                self.codec = match value {
                    "producer" | "uncompressed" => "none".into(),
                    v => v.into(),
                }
            }
            "fsync" => self.fsync = value.parse()?,
            "replication.factor" => {
                self.replication_factor = num(value)?
                    .try_into()
                    .map_err(|_| "replication.factor over 65535")?
            }
            "min.insync.replicas" => {
                self.min_insync_replicas = num(value)?
                    .try_into()
                    .map_err(|_| "min.insync.replicas over 65535")?
            }
            _ => {
                return Err(format!(
                    "unknown topic setting `{key}` (known: {})",
                    TOPIC_KEYS.join(", ")
                ))
            }
        }
        Ok(())
    }

    /// Every setting as `key=value` pairs, in [`TOPIC_KEYS`] order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let v = [
            self.partitions.to_string(),
            show(self.retention_bytes),
            show(self.retention_ms),
            self.segment_bytes.to_string(),
            show(self.segment_ms),
            self.max_batch_bytes.to_string(),
            self.codec.clone(),
            self.fsync.to_string(),
            self.replication_factor.to_string(),
            self.min_insync_replicas.to_string(),
        ];
        TOPIC_KEYS.iter().map(|k| k.to_string()).zip(v).collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicName {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    pub partition: u32,
    pub start_offset: u64,
    pub end_offset: u64,
    /// Offsets below this are on disk.
    pub durable_end: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicDescription {
    pub name: String,
    pub config: TopicConfig,
    pub partitions: Vec<PartitionInfo>,
}

/// Acknowledgement level of a produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Acks {
    /// The producer does not wait (the broker still answers; errors are logged).
    None,
    /// Answered once the batch is in the log (page cache).
    Leader,
    /// Answered once the batch is durable under the topic's fsync policy.
    All,
}

/// One batch for one partition. `records` is in the [`crate::records`]
/// layout, compressed per `codec` (see `neo_accel::payload`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Produce<'a> {
    pub topic: &'a str,
    pub partition: u32,
    pub acks: Acks,
    /// -1 without idempotence.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: u32,
    pub codec: u8,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
    #[serde(borrow, with = "serde_bytes_slice")]
    pub records: &'a [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Produced {
    pub base_offset: u64,
    pub last_offset: u64,
    /// A retry of a batch already in the log: these are its original offsets.
    pub duplicate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchPartition {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    /// Longest the broker holds the request waiting for `min_bytes`.
    pub max_wait_ms: u32,
    pub min_bytes: u32,
    /// Bytes of batches in the whole answer (at least one batch is served
    /// even when it alone is larger, so a consumer never stalls).
    pub max_bytes: u32,
    pub partitions: Vec<FetchPartition>,
}

/// Per partition: an error, or `len` bytes of whole batches that follow the
/// head in the order of the request's partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedPartition {
    pub error: Option<BrokerError>,
    pub high_watermark: u64,
    pub log_start: u64,
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchHead {
    pub partitions: Vec<FetchedPartition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetSpec {
    Earliest,
    Latest,
    /// The first offset whose batch timestamp is at or after this (ms).
    Timestamp(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffsets {
    pub topic: String,
    pub partition: u32,
    pub spec: OffsetSpec,
}

/// `None` when no batch has a timestamp that late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedOffset {
    pub offset: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerIdentity {
    pub producer_id: i64,
    pub epoch: i16,
}

/// How a group's partitions are spread over its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assignor {
    Range,
    RoundRobin,
    Sticky,
}

impl std::str::FromStr for Assignor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "range" => Ok(Self::Range),
            "roundrobin" | "round-robin" => Ok(Self::RoundRobin),
            "sticky" => Ok(Self::Sticky),
            _ => Err(format!(
                "assignor `{s}`: expected range, roundrobin or sticky"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinGroup {
    pub group: String,
    /// Empty on the first join; the broker assigns one.
    pub member_id: String,
    pub topics: Vec<String>,
    pub assignor: Assignor,
    pub session_timeout_ms: u32,
    pub rebalance_timeout_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub generation: i32,
    pub member_id: String,
    pub members: Vec<String>,
}

/// Names a member of a group in a generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRef {
    pub group: String,
    pub member_id: String,
    pub generation: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub generation: i32,
    pub partitions: Vec<TopicPartitions>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: u32,
    /// The next offset to consume.
    pub offset: u64,
    pub metadata: String,
}

/// A commit from a group member (`generation` current), or from a client
/// outside group management (`member_id` empty, `generation` -1) while the
/// group has no members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitOffsets {
    pub member: MemberRef,
    pub offsets: Vec<CommittedOffset>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchOffsets {
    pub group: String,
    /// Empty: every partition the group has committed.
    pub partitions: Vec<TopicPartitions>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionOffset {
    pub topic: String,
    pub partition: u32,
    pub committed: Option<u64>,
    pub metadata: String,
    /// End of the partition's log minus the committed offset.
    pub lag: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberDescription {
    pub member_id: String,
    pub assignment: Vec<TopicPartitions>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDescription {
    pub group: String,
    /// Empty, PreparingRebalance or Stable.
    pub state: String,
    pub generation: i32,
    pub assignor: Option<Assignor>,
    pub members: Vec<MemberDescription>,
    pub offsets: Vec<PartitionOffset>,
}

/// postcard writes `&[u8]` as a length-prefixed byte string only through
/// serde's bytes methods; this borrows it back without a copy.
mod serde_bytes_slice {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'de [u8], D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = &'de [u8];
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a borrowed byte string")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Encodes a response body: `Ok(value)` or the typed error.
pub fn encode_result<T: Serialize>(r: &Result<T, BrokerError>) -> Vec<u8> {
    let mut out = Vec::new();
    encode_result_into(r, &mut out);
    out
}

/// [`encode_result`] into `out` (cleared first), reusing its memory.
pub fn encode_result_into<T: Serialize>(r: &Result<T, BrokerError>, out: &mut Vec<u8>) {
    out.clear();
    match postcard::to_extend(r, std::mem::take(out)) {
        Ok(v) => *out = v,
        Err(e) => {
            // Serializing plain data into a Vec cannot fail; if it ever does,
            // the client still gets a typed answer.
            let err: Result<(), BrokerError> = Err(BrokerError::InvalidRequest(format!(
                "response could not be encoded: {e}"
            )));
            *out = postcard::to_stdvec(&err).unwrap_or_default();
        }
    }
}

/// Decodes a request body, naming the method on failure.
pub fn decode_request<'a, T: Deserialize<'a>>(
    body: &'a [u8],
    method: &str,
) -> Result<T, BrokerError> {
    match postcard::take_from_bytes::<T>(body) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(BrokerError::InvalidRequest(format!(
            "{method}: {} trailing bytes after the request",
            rest.len()
        ))),
        Err(e) => Err(BrokerError::InvalidRequest(format!(
            "{method}: undecodable request: {e}"
        ))),
    }
}
