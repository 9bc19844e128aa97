//! The controller RPC listener: accepts connections and serves one request
//! per frame until the peer closes or stays idle too long.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::node::Node;
use crate::rpc::{read_frame, write_frame, Request, Response};

/// An idle connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on writing one response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections forever (until the runtime stops).
pub async fn serve(listener: TcpListener, node: Arc<Node>) {
    loop {
        match listener.accept().await {
            Ok((conn, _)) => {
                let node = node.clone();
                tokio::spawn(async move { connection(conn, node).await });
            }
            Err(e) => {
                tracing::warn!("controller accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(mut conn: TcpStream, node: Arc<Node>) {
    let _ = conn.set_nodelay(true);
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
