//! The Kafka wire protocol on its own TCP listener, over the same [`Broker`]
//! as Neo RPC: existing Kafka clients (librdkafka, the Java client, aiokafka,
//! kcat) produce, fetch, commit and join groups with no Neo library.
//!
//! Requests and responses are the generated codecs of `kafka-protocol`;
//! this module owns the connection handling and the answers:
//! * [`versions`] — the API keys and versions served.
//! * `data` — Metadata, Produce, Fetch, ListOffsets.
//! * `admin` — topics, configs, cluster, producer ids.
//! * `coordinator` — Kafka's classic group protocol (client-side
//!   assignment), with offsets in the broker's offsets log.
//! * `conn` — accepting, TLS, and each connection's request loop.
//! * `session` — a connection's identity and SASL exchange.
//! * `quota` — byte-rate throttling (KIP-219).
//!
//! Threading: one thread per connection, each request answered before the
//! next is read — the order Kafka itself keeps per connection (clients put
//! their group coordinator on a connection of its own for that reason). A
//! request that waits (a long-poll fetch, acks=all, a join) waits on its own
//! thread; the broker's lock is held only while a request reads or changes
//! state. This is the compatibility path: Neo's own transports keep the
//! poll-mode data path.

mod admin;
mod conn;
mod coordinator;
mod data;
mod group_admin;
mod guard;
mod quota;
mod session;
#[cfg(test)]
mod tests;
pub mod versions;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::protocol::BrokerError;
use crate::security::{Listener, Operation, Principal, ResourceType, Security};
use crate::service::{lock, SharedBroker};
use crate::Broker;
use session::Session;

/// Listener settings.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub listen: SocketAddr,
    /// Host and port clients are told to connect to; default: the address
    /// each client reached this listener at.
    pub advertised: Option<(String, u16)>,
    /// Create a topic (broker defaults) when a client produces to or asks
    /// metadata for one that does not exist, as Kafka does by default.
    pub auto_create_topics: bool,
    pub max_connections: usize,
    /// Largest request accepted (Kafka's `socket.request.max.bytes`).
    pub max_request_bytes: usize,
    /// Kafka's `group.initial.rebalance.delay.ms`: how long a new group
    /// waits for more members before its first generation.
    pub initial_rebalance_delay: Duration,
    pub cluster_id: String,
    /// TLS on this listener (SSL / SASL_SSL); with a client CA, a verified
    /// client certificate's CN is the connection's principal.
    pub tls: Option<neo_transports::tls::ServerTls>,
}

impl KafkaConfig {
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            advertised: None,
            auto_create_topics: true,
            max_connections: 1024,
            max_request_bytes: 100 << 20,
            initial_rebalance_delay: Duration::from_millis(500),
            cluster_id: "neo-cluster".into(),
            tls: None,
        }
    }
}

/// Counters for status and tests.
#[derive(Debug, Default)]
pub struct KafkaStats {
    pub connections: AtomicUsize,
    pub requests: AtomicU64,
    /// Connections closed because a request could not be served (an unknown
    /// key or version, an undecodable body, an oversize frame).
    pub refused: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub tls_failures: AtomicU64,
}

/// A reading of [`KafkaStats`], for `/status`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct KafkaCounters {
    pub connections: usize,
    pub requests: u64,
    pub refused: u64,
    pub tls_failures: u64,
}

impl KafkaStats {
    pub fn snapshot(&self) -> KafkaCounters {
        KafkaCounters {
            connections: self.connections.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            tls_failures: self.tls_failures.load(Ordering::Relaxed),
        }
    }
}

/// What every connection thread shares.
pub(crate) struct Shared {
    pub cfg: KafkaConfig,
    pub broker: SharedBroker,
    pub groups: coordinator::Coordinator,
    pub stop: AtomicBool,
    pub stats: Arc<KafkaStats>,
    pub security: Arc<Security>,
    /// Latency histogram per served API key.
    timers: Vec<(i16, prometheus::Histogram)>,
}

/// The name of the one cluster resource in ACLs, as Kafka's.
pub const CLUSTER: &str = "kafka-cluster";

/// The node id this single broker answers as.
pub const NODE_ID: i32 = 0;
/// How often a waiting request looks again (acks=all, long-poll fetch).
pub(crate) const WAIT_STEP: Duration = Duration::from_micros(500);
/// Longest any request may make its thread wait.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(30);

impl Shared {
    pub(crate) fn new(cfg: KafkaConfig, broker: SharedBroker, security: Arc<Security>) -> Self {
        Shared {
            security,
            groups: coordinator::Coordinator::new(cfg.initial_rebalance_delay),
            cfg,
            broker,
            stop: AtomicBool::new(false),
            stats: Arc::default(),
            timers: versions::SUPPORTED
                .iter()
                .map(|&(k, _, _)| {
                    let h = crate::metrics::global()
                        .kafka_seconds
                        .with_label_values(&[&format!("{k:?}")]);
                    (k as i16, h)
                })
                .collect(),
        }
    }

    /// Records a served request's time in its API's histogram.
    fn observe(&self, key: i16, started: Instant) {
        if let Some((_, h)) = self.timers.iter().find(|(k, _)| *k == key) {
            h.observe(started.elapsed().as_secs_f64());
        }
    }

    pub fn broker(&self) -> std::sync::MutexGuard<'_, Broker> {
        lock(&self.broker)
    }

    /// Calls `check` under the broker's lock until it answers or `deadline`
    /// (or shutdown) passes; `None` then.
    pub fn wait_for<T>(
        &self,
        deadline: Instant,
        mut check: impl FnMut(&mut Broker) -> Option<T>,
    ) -> Option<T> {
        loop {
            if let Some(t) = check(&mut self.broker()) {
                return Some(t);
            }
            if Instant::now() >= deadline || self.stop.load(Ordering::Relaxed) {
                return None;
            }
            std::thread::sleep(WAIT_STEP);
        }
    }
}

/// A running listener; [`KafkaListener::stop`] closes it and its connections.
pub struct KafkaListener {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl KafkaListener {
    pub fn start(
        cfg: KafkaConfig,
        broker: SharedBroker,
        security: Arc<Security>,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(cfg.listen)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(cfg, broker, security));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (s, c) = (shared.clone(), conns.clone());
        let accept = std::thread::Builder::new()
            .name("kafka-accept".into())
            .spawn(move || conn::accept_loop(listener, s, c))?;
        tracing::info!(%addr, "Kafka listener up");
        Ok(Self {
            shared,
            addr,
            accept: Some(accept),
            conns,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listener's counters (shared: they outlive nothing but the process).
    pub fn stats(&self) -> Arc<KafkaStats> {
        self.shared.stats.clone()
    }

    /// Stops accepting, closes every connection and waits for their threads
    /// (so the broker is no longer shared through them).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.accept.take() {
            // Wake the blocking accept with a connection of our own.
            let mut wake = self.addr;
            if wake.ip().is_unspecified() {
                wake.set_ip(match wake {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
            let _ = a.join();
        }
        let conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|p| p.into_inner()));
        for c in conns {
            let _ = c.join();
        }
    }
}

impl Drop for KafkaListener {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Per-connection context handed to the handlers.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub version: i16,
    pub client_id: String,
    /// Host and port this connection should be told to use.
    pub advertised: (String, u16),
    pub principal: &'a Principal,
    pub peer: SocketAddr,
}

impl Ctx<'_> {
    /// Whether this connection's principal may do `op` (audited).
    pub fn allowed(&self, op: Operation, rtype: ResourceType, name: &str) -> bool {
        self.shared
            .security
            .authorize(self.principal, self.peer, Listener::Kafka, op, rtype, name)
    }

    /// Create on the cluster or on the topic itself, as Kafka asks for
    /// CreateTopics and auto-creation.
    pub fn may_create_topic(&self, name: &str) -> bool {
        self.allowed(Operation::Create, ResourceType::Cluster, CLUSTER)
            || self.allowed(Operation::Create, ResourceType::Topic, name)
    }

    /// [`Self::may_create_topic`], asked only when the topic is missing (so
    /// produce and metadata on existing topics do not audit a Create).
    pub fn may_create_topic_if_missing(&self, name: &str) -> bool {
        self.shared.broker().partition_count(name).is_some() || self.may_create_topic(name)
    }
}

/// Decodes one request and encodes its response into `out` (header and
/// body). `Ok(false)`: nothing to send. `Err`: the connection must close —
/// Kafka's answer to a request it cannot parse — with the reason logged.
pub(crate) fn answer(
    shared: &Shared,
    session: &mut Session,
    mut body: Bytes,
    out: &mut BytesMut,
) -> Result<bool, String> {
    if body.len() < 8 {
        return Err(format!("a {}-byte request has no header", body.len()));
    }
    let key = i16::from_be_bytes([body[0], body[1]]);
    let version = i16::from_be_bytes([body[2], body[3]]);
    let correlation = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
    let api = ApiKey::try_from(key).map_err(|_| format!("unknown API key {key}"))?;
    if api == ApiKey::ApiVersions && !versions::is_supported(api, version) {
        // KIP-511: answer in v0 with UNSUPPORTED_VERSION and the ranges, so
        // the client can pick a version both sides speak.
        ResponseHeader::default()
            .with_correlation_id(correlation)
            .encode(out, 0)
            .map_err(|e| e.to_string())?;
        let mut r = api_versions();
        r.error_code = crate::kafka_batch::code::UNSUPPORTED_VERSION;
        r.encode(out, 0).map_err(|e| e.to_string())?;
        return Ok(true);
    }
    if !versions::is_supported(api, version) {
        return Err(format!(
            "{api:?} v{version} is not served (ApiVersions advertises {:?})",
            versions::range(api)
        ));
    }
    session.gate(api)?;
    let header = RequestHeader::decode(&mut body, api.request_header_version(version))
        .map_err(|e| format!("{api:?} v{version} header: {e:#}"))?;
    match guard::check(api, version, &body) {
        Ok(0) => {}
        Ok(n) => return Err(format!("{api:?} v{version}: {n} bytes after the request")),
        Err(e) => return Err(format!("{api:?} v{version} body: {e}")),
    }
    let req = RequestKind::decode(api, &mut body, version)
        .map_err(|e| format!("{api:?} v{version} body: {e:#}"))?;
    if body.has_remaining() {
        return Err(format!(
            "{api:?} v{version}: {} bytes after the request",
            body.remaining()
        ));
    }
    let resp = match req {
        RequestKind::SaslHandshake(r) => Some(session.handshake(shared, r).into()),
        RequestKind::SaslAuthenticate(r) => Some(session.authenticate(shared, r).into()),
        req => {
            let ctx = Ctx {
                shared,
                version,
                client_id: header
                    .client_id
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                advertised: session.advertised.clone(),
                principal: &session.principal,
                peer: session.peer,
            };
            let produced = match &req {
                RequestKind::Produce(r) => Some(quota::produced_bytes(r)),
                _ => None,
            };
            let mut resp = dispatch(&ctx, req)?;
            session.mute = quota::apply(&ctx, produced, resp.as_mut());
            resp
        }
    };
    let Some(resp) = resp else {
        return Ok(false);
    };
    ResponseHeader::default()
        .with_correlation_id(correlation)
        .encode(out, api.response_header_version(version))
        .map_err(|e| e.to_string())?;
    resp.encode(out, version)
        .map_err(|e| format!("{api:?} v{version} response: {e:#}"))?;
    Ok(true)
}

fn dispatch(ctx: &Ctx<'_>, req: RequestKind) -> Result<Option<ResponseKind>, String> {
    use coordinator as g;
    Ok(Some(match req {
        RequestKind::ApiVersions(_) => api_versions().into(),
        RequestKind::Metadata(r) => data::metadata(ctx, r).into(),
        RequestKind::Produce(r) => return Ok(data::produce(ctx, r).map(Into::into)),
        RequestKind::Fetch(r) => data::fetch(ctx, r).into(),
        RequestKind::ListOffsets(r) => data::list_offsets(ctx, r).into(),
        RequestKind::FindCoordinator(r) => admin::find_coordinator(ctx, r).into(),
        RequestKind::CreateTopics(r) => admin::create_topics(ctx, r).into(),
        RequestKind::DeleteTopics(r) => admin::delete_topics(ctx, r).into(),
        RequestKind::InitProducerId(r) => admin::init_producer_id(ctx, r).into(),
        RequestKind::DescribeConfigs(r) => admin::describe_configs(ctx, r).into(),
        RequestKind::DescribeCluster(_) => admin::describe_cluster(ctx).into(),
        RequestKind::JoinGroup(r) => g::join_group(ctx, r).into(),
        RequestKind::SyncGroup(r) => g::sync_group(ctx, r).into(),
        RequestKind::Heartbeat(r) => g::heartbeat(ctx, r).into(),
        RequestKind::LeaveGroup(r) => g::leave_group(ctx, r).into(),
        RequestKind::OffsetCommit(r) => g::offset_commit(ctx, r).into(),
        RequestKind::OffsetFetch(r) => g::offset_fetch(ctx, r).into(),
        RequestKind::ListGroups(r) => group_admin::list_groups(ctx, r).into(),
        RequestKind::DescribeGroups(r) => group_admin::describe_groups(ctx, r).into(),
        // `answer` refuses unserved keys before this; kept as a refusal.
        other => return Err(format!("{:?} is not served", other)),
    }))
}

fn api_versions() -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.api_keys = versions::SUPPORTED
        .iter()
        .map(|&(k, lo, hi)| {
            ApiVersion::default()
                .with_api_key(k as i16)
                .with_min_version(lo)
                .with_max_version(hi)
        })
        .collect();
    r.finalized_features_epoch = -1;
    r
}

/// The Kafka error code for a broker error.
pub(crate) fn error_code(e: &BrokerError) -> i16 {
    match e {
        BrokerError::UnknownTopic(_) | BrokerError::UnknownPartition { .. } => 3,
        BrokerError::OffsetOutOfRange { .. } => 1,
        BrokerError::CorruptBatch(_) => 2,
        BrokerError::BatchTooLarge { .. } => 10,
        BrokerError::InvalidTopicName { .. } => 17,
        BrokerError::IllegalGeneration { .. } => 22,
        BrokerError::UnknownMember(_) => 25,
        BrokerError::RebalanceInProgress => 27,
        BrokerError::TopicExists(_) => 36,
        BrokerError::InvalidConfig(_) => 40,
        BrokerError::InvalidRequest(_) => 42,
        BrokerError::OutOfOrderSequence { .. } => 45,
        BrokerError::InvalidProducerEpoch { .. } => 47,
        BrokerError::Storage(_) => 56,
        BrokerError::Authentication(_) => 58,
        BrokerError::NotAuthorized { .. } => 29,
        // NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, FENCED_LEADER_EPOCH,
        // and the controller unreachable: REQUEST_TIMED_OUT (retriable).
        BrokerError::NotLeader { .. } => 6,
        BrokerError::NotEnoughReplicas { .. } => 19,
        BrokerError::StaleLeaderEpoch { .. } => 74,
        BrokerError::Cluster(_) => 7,
    }
}
