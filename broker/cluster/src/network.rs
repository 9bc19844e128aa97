//! openraft's network: Raft RPCs (append entries, vote, install snapshot
//! chunks) sent over the controller RPC client, each bounded by a timeout.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

use crate::meta::NodeId;
use crate::rpc::{Request, Response, RpcClient};
use crate::types::TypeConfig;

/// Timeout of an append-entries or vote RPC.
pub const RAFT_RPC_TIMEOUT: Duration = Duration::from_secs(1);
/// Timeout of one snapshot chunk RPC.
pub const SNAPSHOT_RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates a [`Peer`] per target.
pub struct Network {
    pub rpc: Arc<RpcClient>,
}

/// A connection to one peer's controller RPC listener.
pub struct Peer {
    target: NodeId,
    addr: String,
    rpc: Arc<RpcClient>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            rpc: self.rpc.clone(),
        }
    }
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl Peer {
    async fn call<E: std::error::Error>(
        &self,
        req: Request,
        timeout: Duration,
    ) -> Result<Response, RpcErr<E>> {
        self.rpc
            .call(&self.addr, &req, timeout)
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
    }

    fn unexpected<E: std::error::Error>(&self, resp: Response) -> RpcErr<E> {
        let e = io::Error::other(format!(
            "unexpected response from node {}: {resp:?}",
            self.target
        ));
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let timeout = option.hard_ttl().min(RAFT_RPC_TIMEOUT);
        match self.call(Request::Append(rpc), timeout).await? {
            Response::Append(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        match self
            .call(Request::Snapshot(rpc), SNAPSHOT_RPC_TIMEOUT)
            .await?
        {
            Response::Snapshot(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr> {
        let timeout = option.hard_ttl().min(RAFT_RPC_TIMEOUT);
        match self.call(Request::Vote(rpc), timeout).await? {
            Response::Vote(r) => {
                r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            other => Err(self.unexpected(other)),
        }
    }
}
