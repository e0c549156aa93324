//! The Raft RPC client: AppendEntries, Vote and InstallSnapshot sent as
//! bincode over HTTP to `<peer>/internal/raft/<group>/<rpc>`, through a pooled
//! keep-alive connection per peer (reqwest's pool).
//!
//! A peer that cannot be connected to is reported as `Unreachable`, so
//! openraft backs off instead of retrying hot and logging on every tick.

use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::types::{GroupId, NodeId, TypeConfig};

/// Why an internal HTTP call failed before an answer arrived.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No connection could be made: the request was certainly not delivered.
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// The call ran out of time: it may or may not have been delivered.
    #[error("peer did not answer within {0:?}")]
    Timeout(Duration),
    /// Any other failure (bad status, broken body, undecodable reply).
    #[error("peer call failed: {0}")]
    Failed(String),
}

/// POSTs a bincode body to `url` and decodes a bincode reply.
pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    request: &Req,
    timeout: Duration,
) -> Result<Resp, TransportError> {
    let body = codec::encode(request).map_err(|e| TransportError::Failed(e.to_string()))?;
    let reply = client
        .post(url)
        .header("content-type", "application/octet-stream")
        .body(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| classify(e, timeout))?;
    if !reply.status().is_success() {
        return Err(TransportError::Failed(format!("{url} answered {}", reply.status())));
    }
    let bytes = reply.bytes().await.map_err(|e| classify(e, timeout))?;
    codec::decode(&bytes).map_err(|e| TransportError::Failed(format!("undecodable reply from {url}: {e}")))
}

fn classify(e: reqwest::Error, timeout: Duration) -> TransportError {
    if e.is_connect() {
        TransportError::Unreachable(e.to_string())
    } else if e.is_timeout() {
        TransportError::Timeout(timeout)
    } else {
        TransportError::Failed(e.to_string())
    }
}

/// Makes one [`PeerClient`] per target; all share one connection pool.
#[derive(Clone)]
pub struct NetworkFactory {
    client: reqwest::Client,
    group: GroupId,
    source: NodeId,
}

impl NetworkFactory {
    /// A factory for `group`'s RPCs, with its own pool (kept apart from the
    /// client-forwarding pool so a burst of client traffic cannot delay
    /// heartbeats).
    pub fn new(group: GroupId, source: NodeId) -> NetworkFactory {
        let client = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .expect("a plain HTTP client always builds");
        NetworkFactory { client, group, source }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            client: self.client.clone(),
            source: self.source,
            target,
            base: format!("{}/internal/raft/{}", node.addr.trim_end_matches('/'), self.group),
        }
    }
}

/// Sends Raft RPCs to one peer.
pub struct PeerClient {
    client: reqwest::Client,
    source: NodeId,
    target: NodeId,
    base: String,
}

impl PeerClient {
    async fn rpc<Req, Resp, E>(
        &self,
        action: RPCTypes,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let rpc = match action {
            RPCTypes::Vote => "vote",
            RPCTypes::AppendEntries => "append",
            RPCTypes::InstallSnapshot => "snapshot",
        };
        let url = format!("{}/{rpc}", self.base);
        let reply: Result<Resp, RaftError<NodeId, E>> =
            call(&self.client, &url, request, option.hard_ttl()).await.map_err(|e| match e {
                TransportError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&e)),
                TransportError::Timeout(timeout) => {
                    RPCError::Timeout(Timeout { action, id: self.source, target: self.target, timeout })
                }
                TransportError::Failed(_) => RPCError::Network(NetworkError::new(&e)),
            })?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc(RPCTypes::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        self.rpc(RPCTypes::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc(RPCTypes::Vote, &rpc, &option).await
    }
}
