//! The controller RPC listener: accepts connections (completing the mutual
//! TLS handshake and admitting the peer's certificate first, when the
//! controller has a [`ControllerTls`]) and serves one request per frame
//! until the peer closes or stays idle too long.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::node::Node;
use crate::rpc::{read_frame, write_frame, Request, Response, Stream};
use crate::tls::ControllerTls;

/// An idle connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on writing one response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a peer's TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections forever (until the runtime stops).
pub async fn serve(listener: TcpListener, node: Arc<Node>, tls: Option<ControllerTls>) {
    loop {
        match listener.accept().await {
            Ok((conn, peer)) => {
                let node = node.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _ = conn.set_nodelay(true);
                    match tls {
                        None => connection(conn, node).await,
                        Some(tls) => {
                            if let Some(conn) = handshake(conn, peer, &tls).await {
                                connection(conn, node).await
                            }
                        }
                    }
                });
            }
            Err(e) => {
                tracing::warn!("controller accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The TLS side of an accepted connection, once the peer is admitted; a
/// refusal is logged with the peer's address and why.
async fn handshake(
    conn: TcpStream,
    peer: SocketAddr,
    tls: &ControllerTls,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let accepted = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        TlsAcceptor::from(tls.server.clone()).accept(conn),
    )
    .await;
    let conn = match accepted {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::warn!(%peer, "controller connection refused: TLS handshake failed: {e}");
            return None;
        }
        Err(_) => {
            tracing::warn!(%peer, "controller connection refused: no TLS handshake within {HANDSHAKE_TIMEOUT:?}");
            return None;
        }
    };
    match tls.check_peer(conn.get_ref().1.peer_certificates()) {
        Ok(()) => Some(conn),
        Err(e) => {
            tracing::warn!(%peer, "controller connection refused: {e}");
            None
        }
    }
}

async fn connection<S: Stream>(mut conn: S, node: Arc<Node>) {
    loop {
        let body = match tokio::time::timeout(IDLE_TIMEOUT, read_frame(&mut conn)).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) | Err(_) => return,
        };
        let resp = match serde_json::from_slice::<Request>(&body) {
            Ok(req) => node.handle(req).await,
            Err(e) => Response::Error(format!("undecodable request: {e}")),
        };
        let out = match serde_json::to_vec(&resp) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!("encoding controller response: {e}");
                return;
            }
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write_frame(&mut conn, &out)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
    }
}
