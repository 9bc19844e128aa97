//! The controller RPC wire: one request and one response per frame (u32 BE
//! length + JSON body, capped at 64 MiB) over TCP, or over mutual TLS 1.3
//! when the controller has a [`ControllerTls`], and a client that caches
//! idle connections per peer, re-dials after errors and bounds every
//! connect, handshake, write and read by a timeout.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::api::ClusterStatus;
use crate::apply::{ApplyResult, Command};
use crate::error::ClusterError;
use crate::fsutil::MAX_RECORD;
use crate::meta::NodeId;
use crate::tls::ControllerTls;
use crate::types::TypeConfig;

/// Connect timeout for every dial.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const MAX_IDLE_PER_PEER: usize = 4;

/// A broker's liveness report to the controller leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub id: NodeId,
    pub addr: String,
    pub kafka_addr: Option<String>,
    /// Set after `controlled_shutdown`: never unfence this broker.
    pub shutting_down: bool,
}

/// A controller RPC request.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    Write(Command),
    Heartbeat(Heartbeat),
    Status,
}

/// The answer of a request only the controller leader serves.
#[derive(Debug, Serialize, Deserialize)]
pub enum Forwarded<T> {
    Done(T),
    /// Not the leader; the leader it knows of, if any.
    NotLeader(Option<NodeId>),
    Failed(ClusterError),
}

/// A controller RPC response.
#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    Write(Forwarded<ApplyResult>),
    /// Done: the leader's applied log index when it answered.
    Heartbeat(Forwarded<u64>),
    Status(Forwarded<ClusterStatus>),
    /// The request could not be decoded or served.
    Error(String),
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l as usize <= MAX_RECORD)
        .ok_or_else(|| {
            io::Error::other(format!("frame of {} bytes over the 64 MiB cap", body.len()))
        })?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(body);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one frame; a length over the cap is an error.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_RECORD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes over the 64 MiB cap"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(body)
}

/// A byte stream the RPC runs over: TCP, or TLS over TCP.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

type Conn = Box<dyn Stream>;

/// A client with cached idle connections per peer.
#[derive(Default)]
pub struct RpcClient {
    idle: Mutex<HashMap<String, Vec<Conn>>>,
    tls: Option<ControllerTls>,
}

impl RpcClient {
    /// A client dialling with `tls` (mutual TLS), or plain TCP.
    pub fn new(tls: Option<ControllerTls>) -> RpcClient {
        RpcClient {
            idle: Mutex::default(),
            tls,
        }
    }

    fn take(&self, addr: &str) -> Option<Conn> {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(addr)
            .and_then(Vec::pop)
    }

    fn put(&self, addr: &str, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let v = idle.entry(addr.to_string()).or_default();
        if v.len() < MAX_IDLE_PER_PEER {
            v.push(conn);
        }
    }

    /// A new connection to `addr`: TCP within [`CONNECT_TIMEOUT`], then the
    /// TLS handshake (bounded by the caller's timeout) and the check of the
    /// member's certificate.
    async fn dial(&self, addr: &str) -> io::Result<Conn> {
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {addr} timed out"),
                )
            })??;
        tcp.set_nodelay(true)?;
        let Some(tls) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let name = tls.name_for(addr)?;
        let conn = TlsConnector::from(tls.client.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("TLS to {addr}: {e}")))?;
        tls.check_peer(conn.get_ref().1.peer_certificates())
            .map_err(|e| io::Error::new(e.kind(), format!("controller {addr}: {e}")))?;
        Ok(Box::new(conn))
    }

    /// Sends `req` to `addr` (`host:port`, resolved when a connection is
    /// made) and waits for the response, all within `timeout` (the connect
    /// within [`CONNECT_TIMEOUT`] too).
    pub async fn call(&self, addr: &str, req: &Request, timeout: Duration) -> io::Result<Response> {
        let body = serde_json::to_vec(req).map_err(io::Error::other)?;
        let exchange = async {
            let mut conn = match self.take(addr) {
                Some(c) => c,
                None => self.dial(addr).await?,
            };
            write_frame(&mut conn, &body).await?;
            let resp = read_frame(&mut conn).await?;
            Ok::<_, io::Error>((conn, resp))
        };
        let (conn, resp) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, format!("rpc to {addr} timed out"))
            })??;
        let resp: Response = serde_json::from_slice(&resp)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.put(addr, conn);
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_lengths_are_refused() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").await.unwrap();
        assert_eq!(read_frame(&mut buf.as_slice()).await.unwrap(), b"hello");
        let huge = (MAX_RECORD as u32 + 1).to_be_bytes();
        let err = read_frame(&mut huge.as_slice()).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("64 MiB"));
        // A truncated frame is an error, not a hang or panic.
        let mut short = Vec::new();
        write_frame(&mut short, b"abcdef").await.unwrap();
        short.truncate(7);
        assert!(read_frame(&mut short.as_slice()).await.is_err());
    }

    #[tokio::test]
    async fn call_to_a_silent_peer_times_out() {
        // A listener that accepts but never answers.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((c, _)) = l.accept().await {
                held.push(c);
            }
        });
        let client = RpcClient::default();
        let t0 = std::time::Instant::now();
        let err = client
            .call(
                &addr.to_string(),
                &Request::Status,
                Duration::from_millis(300),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
}
