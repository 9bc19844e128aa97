//! Neo's Rust client, over any [`Transport`]: [`Admin`] (topics, offsets,
//! groups), [`Producer`] (batching, linger, compression, retries,
//! idempotence) and [`Consumer`] (assigned partitions or a consumer group
//! with commits). Each is driven by the caller's thread: no background
//! threads, so the fast transports' busy-polling stays on the caller's core.

mod admin;
mod consumer;
pub mod fetched;
mod producer;
pub mod sasl;

pub use admin::Admin;
pub use consumer::{Consumer, ConsumerConfig, OffsetReset, Received, StartAt};
pub use producer::{Delivery, Producer, ProducerConfig};

use std::net::SocketAddr;
use std::time::Duration;

use neo_transports::rpc::{Client, ClientConfig, MethodId, RpcError};
use neo_transports::{ConnId, Transport};
use serde::{de::DeserializeOwned, Serialize};

use crate::protocol::{BrokerError, SERVICE};
use crate::security::SaslMechanism;

/// Why a client operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("undecodable answer from the broker: {0}")]
    Decode(String),
    #[error("{0}")]
    Invalid(String),
    #[error("timed out: {0}")]
    Timeout(String),
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        Self::Rpc(RpcError::from(e))
    }
}

impl ClientError {
    /// Whether the same request may succeed if sent again.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Broker(e) => e.is_retriable(),
            Self::Rpc(e) => rpc_retriable(e),
            _ => false,
        }
    }
}

pub(crate) fn rpc_retriable(e: &RpcError) -> bool {
    use neo_transports::rpc::ErrorCode;
    match e {
        RpcError::ConnectionClosed(_)
        | RpcError::DeadlineExceeded
        | RpcError::NoCredit(_)
        | RpcError::NotConnected
        | RpcError::Io(_) => true,
        RpcError::Send(s) => matches!(s, neo_transports::SendError::Full { .. }),
        RpcError::Remote { code, .. } => {
            matches!(code, ErrorCode::Overloaded | ErrorCode::DeadlineExceeded)
        }
        RpcError::Malformed(_) => false,
    }
}

/// Wire id of a broker method.
pub fn method_id(name: &str) -> MethodId {
    MethodId::new(SERVICE, name)
}

/// Decodes a `Result<T, BrokerError>` answer body.
pub fn decode_answer<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    let r: Result<T, BrokerError> =
        postcard::from_bytes(body).map_err(|e| ClientError::Decode(e.to_string()))?;
    r.map_err(ClientError::Broker)
}

/// How a client reaches the broker.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    pub addr: SocketAddr,
    pub connect_timeout: Duration,
    /// Deadline of each request (long-poll fetches add their wait).
    pub request_timeout: Duration,
    /// Calls in flight on the connection; match the server's credits.
    pub credits: u32,
    /// Authenticate each new connection with SASL before any other call.
    pub auth: Option<ClientAuth>,
    /// Other brokers of a cluster, tried in turn when `addr` cannot be reached.
    pub bootstrap: Vec<SocketAddr>,
}

/// SASL credentials for the Neo protocol (SCRAM keeps the password off the
/// wire; PLAIN sends it, so use it only under TLS).
#[derive(Clone)]
pub struct ClientAuth {
    pub mechanism: SaslMechanism,
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("mechanism", &self.mechanism)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ConnectConfig {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            credits: 64,
            auth: None,
            bootstrap: Vec::new(),
        }
    }
}

/// One RPC connection to the broker that reconnects when it drops.
pub struct Connection<T: Transport> {
    rpc: Client<T>,
    cfg: ConnectConfig,
    conn: Option<ConnId>,
    scratch: Vec<u8>,
    /// A partition whose leader the next connection should reach (after a
    /// not-leader answer): the metadata says where it is.
    find_leader: Option<(String, u32)>,
    /// Which of `addr` + `bootstrap` the next connect tries.
    next_addr: usize,
    /// Answers to pipelined calls that finished while this connection
    /// waited for something else (a connect, a metadata lookup).
    stray: Vec<Stray>,
}

/// A call's outcome taken while the caller was not polling.
pub type Stray = (neo_transports::rpc::CallId, Result<Vec<u8>, RpcError>);

/// Closing on drop lets the close reach the broker: over the raw-frame
/// transports the engine sends it from its poll, and a client that reuses
/// the same address next must not meet the old session.
impl<T: Transport> Drop for Connection<T> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        self.rpc.close(conn);
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
        let mut gone = false;
        while !gone && std::time::Instant::now() < deadline {
            let polled = self.rpc.transport().poll(
                &mut |ev: neo_transports::Event<'_>, _: &mut dyn neo_transports::Tx| {
                    if matches!(ev, neo_transports::Event::Closed { conn: c, .. } if c == conn) {
                        gone = true;
                    }
                },
            );
            if polled.is_err() {
                break;
            }
        }
    }
}

impl<T: Transport> Connection<T> {
    /// Connects, waiting up to the connect timeout.
    pub fn connect(transport: T, cfg: ConnectConfig) -> Result<Self, ClientError> {
        let rpc = Client::new(
            transport,
            ClientConfig {
                credits: cfg.credits,
                default_timeout: cfg.request_timeout,
                ..Default::default()
            },
        );
        let mut c = Self {
            rpc,
            cfg,
            conn: None,
            scratch: Vec::new(),
            find_leader: None,
            next_addr: 0,
            stray: Vec::new(),
        };
        c.ensure()?;
        Ok(c)
    }

    /// After a not-leader answer for `topic`/`partition`: the connection is
    /// dropped, and the next one asks the metadata for the leader and goes
    /// there.
    pub fn follow_leader(&mut self, topic: &str, partition: u32) {
        self.find_leader = Some((topic.into(), partition));
        if let Some(c) = self.conn.take() {
            self.rpc.close(c);
        }
    }

    /// The connection, reconnecting first if it dropped: to the broker it
    /// used, else to the next of the bootstrap brokers; then, if a leader is
    /// wanted, to the broker the metadata names.
    pub fn ensure(&mut self) -> Result<ConnId, ClientError> {
        if let Some(c) = self.conn {
            return Ok(c);
        }
        self.open_any()?;
        if let Some((topic, partition)) = self.find_leader.take() {
            if let Some(addr) = self.leader_addr(&topic, partition) {
                if addr != self.cfg.addr {
                    if let Some(c) = self.conn.take() {
                        self.rpc.close(c);
                    }
                    self.cfg.addr = addr;
                    self.next_addr = 0;
                    self.open_one(addr)?;
                }
            }
        }
        self.conn.ok_or(ClientError::Rpc(RpcError::NotConnected))
    }

    /// Where the metadata says a partition's leader is.
    fn leader_addr(&mut self, topic: &str, partition: u32) -> Option<SocketAddr> {
        use crate::replication::wire::{Metadata, MetadataRequest};
        let req = MetadataRequest {
            topics: vec![topic.into()],
        };
        let body = postcard::to_stdvec(&req).ok()?;
        let conn = self.conn?;
        let mut out = Vec::new();
        let stray = &mut self.stray;
        let r = self.rpc.call_into_with(
            conn,
            method_id(crate::replication::METHOD_METADATA),
            &body,
            Some(self.cfg.request_timeout),
            &mut out,
            &mut |id, r| stray.push((id, r.map(<[u8]>::to_vec))),
        );
        if let Err(e) = &r {
            self.note_error(e);
        }
        r.ok()?;
        let md: Metadata = decode_answer(&out).ok()?;
        let leader = md
            .topics
            .iter()
            .find(|t| t.name == topic)?
            .partitions
            .get(partition as usize)?
            .leader?;
        let b = md.brokers.iter().find(|b| b.id == leader)?;
        std::net::ToSocketAddrs::to_socket_addrs(&b.addr)
            .ok()?
            .next()
    }

    /// Connects to `addr`, then each bootstrap broker in turn.
    fn open_any(&mut self) -> Result<(), ClientError> {
        let mut all = vec![self.cfg.addr];
        all.extend(self.cfg.bootstrap.iter().filter(|a| **a != self.cfg.addr));
        let mut last = None;
        for k in 0..all.len() {
            let addr = all[(self.next_addr + k) % all.len()];
            match self.open_one(addr) {
                Ok(()) => {
                    self.next_addr = (self.next_addr + k) % all.len();
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        self.next_addr = (self.next_addr + 1) % all.len();
        Err(last.unwrap_or(ClientError::Rpc(RpcError::NotConnected)))
    }

    /// Outcomes of pipelined calls that finished while this connection
    /// waited (see [`Stray`]); a pipelining caller reaps them with its own.
    pub fn take_stray(&mut self) -> Vec<Stray> {
        std::mem::take(&mut self.stray)
    }

    fn open_one(&mut self, addr: SocketAddr) -> Result<(), ClientError> {
        tracing::debug!(%addr, leader_for = ?self.find_leader, "connecting");
        let stray = &mut self.stray;
        let c = self
            .rpc
            .connect_with(addr, self.cfg.connect_timeout, &mut |id, r| {
                stray.push((id, r.map(<[u8]>::to_vec)))
            })?;
        self.conn = Some(c);
        if let Some(auth) = self.cfg.auth.clone() {
            if let Err(e) = self.authenticate(&auth) {
                if let Some(c) = self.conn.take() {
                    self.rpc.close(c);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Runs a SASL exchange on the new connection.
    fn authenticate(&mut self, auth: &ClientAuth) -> Result<(), ClientError> {
        use crate::protocol::{method, AuthReply, AuthStep};
        let mut sasl = sasl::SaslClient::new(auth).map_err(ClientError::Invalid)?;
        loop {
            let step = AuthStep {
                mechanism: sasl.mechanism().to_string(),
                message: sasl.next_message().map_err(ClientError::Invalid)?,
            };
            let r: AuthReply = self.call(method::AUTHENTICATE, &step)?;
            if sasl.on_reply(r).map_err(ClientError::Invalid)? {
                return Ok(());
            }
        }
    }

    /// Starts connecting without waiting (calls queue behind the connect).
    pub fn ensure_async(&mut self) -> Result<ConnId, ClientError> {
        if let Some(c) = self.conn {
            return Ok(c);
        }
        if self.cfg.auth.is_some() || self.find_leader.is_some() || !self.cfg.bootstrap.is_empty() {
            // Authentication, a leader lookup or a bootstrap list: connect
            // now, before any call is sent.
            return self.ensure();
        }
        let c = self.rpc.connect_async(self.cfg.addr)?;
        self.conn = Some(c);
        Ok(c)
    }

    /// Forgets a connection that failed, so the next call reconnects.
    pub fn note_error(&mut self, e: &RpcError) {
        if matches!(e, RpcError::ConnectionClosed(_) | RpcError::NotConnected) {
            if let Some(c) = self.conn.take() {
                self.rpc.close(c);
            }
        }
    }

    pub fn config(&self) -> &ConnectConfig {
        &self.cfg
    }

    pub fn rpc(&mut self) -> &mut Client<T> {
        &mut self.rpc
    }

    /// A blocking call returning the raw answer body in `out`.
    pub fn call_raw(
        &mut self,
        method: &str,
        body: &[u8],
        timeout: Duration,
        out: &mut Vec<u8>,
    ) -> Result<(), ClientError> {
        let conn = self.ensure()?;
        let r = self
            .rpc
            .call_into(conn, method_id(method), body, Some(timeout), out);
        if let Err(e) = &r {
            self.note_error(e);
        }
        r.map_err(ClientError::Rpc)
    }

    /// The offset `spec` names in a partition (`None`: no batch that late).
    pub fn list_offset(
        &mut self,
        topic: &str,
        partition: u32,
        spec: crate::protocol::OffsetSpec,
    ) -> Result<Option<u64>, ClientError> {
        let req = crate::protocol::ListOffsets {
            topic: topic.into(),
            partition,
            spec,
        };
        let r: crate::protocol::ListedOffset =
            self.call(crate::protocol::method::LIST_OFFSETS, &req)?;
        Ok(r.offset)
    }

    /// A blocking call with a typed request and answer.
    pub fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        method: &str,
        req: &Req,
    ) -> Result<Resp, ClientError> {
        let body = postcard::to_stdvec(req).map_err(|e| ClientError::Invalid(e.to_string()))?;
        let mut out = std::mem::take(&mut self.scratch);
        let timeout = self.cfg.request_timeout;
        let r = self
            .call_raw(method, &body, timeout, &mut out)
            .and_then(|()| decode_answer(&out));
        self.scratch = out;
        r
    }
}
