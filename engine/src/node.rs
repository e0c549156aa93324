//! [`Node`]: one running Raft member and everything the server asks of it.
//!
//! Writes, ReadIndex reads and membership changes go through
//! [`Node::on_leader`]: served here if this node leads, forwarded to the
//! leader otherwise, and retried while the leader is unknown or moves, until
//! the request deadline. A forwarded request is retried only when it
//! certainly did not arrive (the leader refused it, or no connection was
//! made), so a write is never proposed twice by the engine.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dsync_statemachine::store::Store;
use dsync_statemachine::{Command, Request, Response, State};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers, RaftMetrics, ServerState};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::config::EngineConfig;
use crate::error::EngineError;
use crate::forward::{ForwardRequest, ForwardResponse};
use crate::log_store::{LogReader, LogStore};
use crate::network::{self, NetworkFactory, TransportError};
use crate::sm_store::{ApplyObserver, EventRecord, StateMachineStore, StateReaders, EVENT_BUFFER};
use crate::types::{node_name, GroupId, LogId, NodeId, Raft};

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Reflects every write that completed before the read began (ReadIndex).
    #[default]
    Linearizable,
    /// This node's applied state as it is: fast, possibly stale.
    Local,
}

/// A node's Raft role, as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Leads the cluster.
    Leader,
    /// Votes and follows.
    Follower,
    /// Is running an election.
    Candidate,
    /// Receives the log but does not vote.
    Learner,
    /// Raft has stopped on this node.
    Shutdown,
}

/// This node's view of itself (`/health`, `/metrics`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// `nodeN`.
    pub node_id: String,
    /// Current role.
    pub role: Role,
    /// Current term.
    pub term: u64,
    /// The leader's name, if known.
    pub leader: Option<String>,
    /// Highest index known committed.
    pub commit_index: u64,
    /// Highest index applied to the state machine.
    pub applied_index: u64,
    /// Highest index in the log.
    pub last_log_index: u64,
    /// Index covered by the latest snapshot.
    pub snapshot_index: Option<u64>,
    /// Highest index removed from the log.
    pub purged_index: Option<u64>,
    /// Milliseconds since a quorum last acknowledged this leader.
    pub millis_since_quorum_ack: Option<u64>,
}

/// One member of the cluster (`/cluster`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberView {
    /// `nodeN`.
    pub node_id: String,
    /// Base URL.
    pub addr: String,
    /// Votes (true) or is a learner (false).
    pub voter: bool,
    /// Highest log index known replicated to it (known by the leader only).
    pub matched_index: Option<u64>,
}

/// The cluster's membership and leadership (`/cluster`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterView {
    /// The leader's name, if known.
    pub leader: Option<String>,
    /// Current term.
    pub term: u64,
    /// Voters and learners, by id.
    pub members: Vec<MemberView>,
}

/// A running Raft member.
pub struct Node {
    config: EngineConfig,
    raft: Raft,
    log: LogReader,
    state: StateReaders,
    commit_index: Arc<AtomicU64>,
    /// Pool for forwarded requests, apart from Raft's RPC pool.
    forward_client: reqwest::Client,
    /// Events of applied entries (subscribe before proposing to not miss any).
    events: broadcast::Sender<EventRecord>,
}

/// How often the leader checks whether a lease or a wait is due when none
/// is due sooner.
const TICK_POLL: Duration = Duration::from_millis(50);

impl Node {
    /// Opens storage, starts Raft and, on a pristine node listed in `peers`,
    /// bootstraps the cluster with those peers. `observer` hears of every
    /// entry this node applies, as it applies it.
    pub async fn start(config: EngineConfig, observer: Option<Arc<dyn ApplyObserver>>) -> io::Result<Arc<Node>> {
        let dir = config.group_dir();
        let log_store = LogStore::open(&dir)?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (log, commit_index) = (log_store.reader(), log_store.commit_index());
        let sm_store = StateMachineStore::open(&dir, &log, config.sled_cache_bytes, events.clone(), observer)?;
        let state = sm_store.readers();
        let raft_config = Arc::new(config.raft_config().map_err(io::Error::other)?);
        let network = NetworkFactory::new(config.group, config.node_id);
        let raft =
            Raft::new(config.node_id, raft_config, network, log_store, sm_store).await.map_err(io::Error::other)?;
        let forward_client = reqwest::Client::builder().tcp_nodelay(true).build().map_err(io::Error::other)?;
        let node = Arc::new(Node { config, raft, log, state, commit_index, forward_client, events });
        node.bootstrap().await?;
        tokio::spawn(propose_ticks(node.clone()));
        Ok(node)
    }

    async fn bootstrap(&self) -> io::Result<()> {
        let id = self.config.node_id;
        if !self.config.peers.contains_key(&id) {
            tracing::info!("{} is not in PEERS: waiting to be added with /cluster/add", node_name(id));
            return Ok(());
        }
        if self.raft.is_initialized().await.map_err(io::Error::other)? {
            return Ok(());
        }
        let members: BTreeMap<NodeId, BasicNode> =
            self.config.peers.iter().map(|(&id, addr)| (id, BasicNode::new(addr))).collect();
        match self.raft.initialize(members).await {
            Ok(()) => tracing::info!(peers = ?self.config.peers, "bootstrapped a new cluster"),
            // Another peer's log reached us first: the cluster exists already.
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
            Err(e) => return Err(io::Error::other(e)),
        }
        Ok(())
    }

    /// How long writes and reads may wait for a leader and a quorum.
    pub fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }

    /// The election timeout's upper bound: a leader that has not heard from
    /// a quorum for this long has most likely been replaced.
    pub fn election_timeout(&self) -> Duration {
        self.config.election_timeout
    }

    /// The openraft handle (for the internal RPC routes).
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The Raft group this node serves.
    pub fn group(&self) -> GroupId {
        self.config.group
    }

    /// This node's Raft id.
    pub fn id(&self) -> NodeId {
        self.config.node_id
    }

    /// Runs `read` on the applied state, its in-memory part and its store
    /// (after [`Node::read_barrier`] for a linearizable read).
    pub fn read_state<R>(&self, read: impl FnOnce(&State, &dyn Store) -> R) -> R {
        let applied = self.state.applied.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        read(&applied.state, &self.state.store)
    }

    /// Events of entries applied from now on, in log order.
    pub fn subscribe(&self) -> broadcast::Receiver<EventRecord> {
        self.events.subscribe()
    }

    /// A reader of this node's log (`/raft/log`).
    pub fn log(&self) -> &LogReader {
        &self.log
    }

    /// Raft's metrics channel (for gauges and leader-change counting).
    pub fn metrics(&self) -> tokio::sync::watch::Receiver<RaftMetrics<NodeId, BasicNode>> {
        self.raft.metrics()
    }

    /// The leader's id, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The base URL of member `id`, if it is in the membership.
    pub fn addr_of(&self, id: NodeId) -> Option<String> {
        let metrics = self.raft.metrics();
        let membership = metrics.borrow().membership_config.clone();
        membership.membership().get_node(&id).map(|n| n.addr.clone())
    }

    /// Names of every member (voters and learners) this node knows of.
    pub fn member_names(&self) -> Vec<String> {
        let membership = self.raft.metrics().borrow().membership_config.clone();
        membership.membership().nodes().map(|(&id, _)| node_name(id)).collect()
    }

    /// This node's status.
    pub fn status(&self) -> Status {
        let m = self.raft.metrics().borrow().clone();
        let role = match m.state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        };
        Status {
            node_id: node_name(m.id),
            role,
            term: m.current_term,
            leader: m.current_leader.map(node_name),
            commit_index: self.commit_index.load(Ordering::Relaxed),
            applied_index: m.last_applied.map_or(0, |l| l.index),
            last_log_index: m.last_log_index.unwrap_or(0),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            millis_since_quorum_ack: m.millis_since_quorum_ack,
        }
    }

    /// Proposes `command`; returns where it committed and what applying it
    /// answered. Any node may be asked: followers forward to the leader.
    pub async fn write(&self, command: Command) -> Result<(LogId, Response), EngineError> {
        match self.on_leader(ForwardRequest::Write(command)).await? {
            ForwardResponse::Written { log_id, response } => Ok((log_id, response)),
            other => Err(unexpected(other)),
        }
    }

    /// Waits until this node's applied state may serve a read of the given
    /// consistency: for `Linearizable`, until it has applied everything the
    /// leader had committed when the read began (ReadIndex).
    pub async fn read_barrier(&self, consistency: Consistency) -> Result<(), EngineError> {
        if consistency == Consistency::Local {
            return Ok(());
        }
        let index = match self.on_leader(ForwardRequest::ReadIndex).await? {
            ForwardResponse::ReadIndex(index) => index,
            other => return Err(unexpected(other)),
        };
        self.raft
            .wait(Some(self.config.request_timeout))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map(|_| ())
            .map_err(|e| EngineError::unavailable(format!("not caught up for a linearizable read: {e}"), self.leader()))
    }

    /// Waits up to `timeout` until this node has applied the entry at `index`
    /// (and so every [`ApplyObserver`] effect of it); false on timeout.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        self.raft.wait(Some(timeout)).applied_index_at_least(Some(index), "applied").await.is_ok()
    }

    /// Adds node `id` at `addr`: learner first, voter once caught up.
    pub async fn add_node(&self, id: NodeId, addr: String) -> Result<ClusterView, EngineError> {
        self.expect_cluster(ForwardRequest::AddNode { id, addr }).await
    }

    /// Removes node `id` from the membership.
    pub async fn remove_node(&self, id: NodeId) -> Result<ClusterView, EngineError> {
        self.expect_cluster(ForwardRequest::RemoveNode { id }).await
    }

    /// Asks the leader to send a heartbeat round now.
    pub async fn heartbeat(&self) -> Result<(), EngineError> {
        self.on_leader(ForwardRequest::Heartbeat).await.map(|_| ())
    }

    /// The cluster as the leader sees it (with replication progress), or as
    /// this node sees it when there is no leader.
    pub async fn cluster(&self) -> ClusterView {
        match self.expect_cluster(ForwardRequest::Cluster).await {
            Ok(view) => view,
            Err(_) => self.local_cluster_view(),
        }
    }

    /// Stops Raft (on shutdown).
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
    }

    async fn expect_cluster(&self, request: ForwardRequest) -> Result<ClusterView, EngineError> {
        match self.on_leader(request).await? {
            ForwardResponse::Cluster(view) => Ok(view),
            other => Err(unexpected(other)),
        }
    }

    /// Serves `request` on the leader: here, or forwarded. See module docs.
    async fn on_leader(&self, request: ForwardRequest) -> Result<ForwardResponse, EngineError> {
        let deadline = Instant::now() + self.config.request_timeout;
        let mut backoff = Duration::from_millis(10);
        loop {
            let leader = self.leader();
            let result = match leader {
                Some(id) if id == self.id() => self.handle_forward(request.clone()).await,
                Some(id) => self.forward_to(id, &request, deadline).await,
                None => Err(EngineError::NotLeader { leader: None }),
            };
            match result {
                Err(EngineError::NotLeader { .. }) if Instant::now() < deadline => {
                    // The leader is unknown or moved: wait for the next one.
                    tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now()))).await;
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
                Err(EngineError::NotLeader { leader }) => {
                    return Err(EngineError::unavailable("no leader elected right now", leader))
                }
                other => return other,
            }
        }
    }

    async fn forward_to(
        &self,
        leader: NodeId,
        request: &ForwardRequest,
        deadline: Instant,
    ) -> Result<ForwardResponse, EngineError> {
        let Some(addr) = self.addr_of(leader) else {
            return Err(EngineError::NotLeader { leader: None });
        };
        let url = format!("{}/internal/forward/{}", addr.trim_end_matches('/'), self.group());
        // The leader bounds its own work by its request timeout; leave room
        // for its answer to travel back.
        let timeout = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
        let reply: Result<ForwardResponse, EngineError> =
            network::call(&self.forward_client, &url, request, timeout).await.map_err(|e| match e {
                // Never delivered: safe to retry once a leader is known.
                TransportError::Unreachable(_) => EngineError::NotLeader { leader: None },
                other => EngineError::unavailable(
                    format!("leader {} did not answer: {other}", node_name(leader)),
                    Some(leader),
                ),
            })?;
        reply
    }

    /// Serves a request that needs the leader, on this node. Answers
    /// [`EngineError::NotLeader`] if this node does not lead.
    pub async fn handle_forward(&self, request: ForwardRequest) -> Result<ForwardResponse, EngineError> {
        let timeout = self.config.request_timeout;
        match request {
            ForwardRequest::Write(command) => {
                let request = Request { time_ms: now_ms(), command };
                let reply = tokio::time::timeout(timeout, self.raft.client_write(request))
                    .await
                    .map_err(|_| self.no_quorum("write not committed"))?
                    .map_err(|e| self.write_error(e))?;
                Ok(ForwardResponse::Written { log_id: reply.log_id, response: reply.data })
            }
            ForwardRequest::ReadIndex => {
                let (read_log_id, _) = tokio::time::timeout(timeout, self.raft.get_read_log_id())
                    .await
                    .map_err(|_| self.no_quorum("leadership not confirmed"))?
                    .map_err(|e| match e {
                        RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f)) => {
                            EngineError::NotLeader { leader: f.leader_id }
                        }
                        other => EngineError::unavailable(other.to_string(), self.leader()),
                    })?;
                Ok(ForwardResponse::ReadIndex(read_log_id.map_or(0, |l| l.index)))
            }
            ForwardRequest::AddNode { id, addr } => self.add_node_here(id, addr).await,
            ForwardRequest::RemoveNode { id } => self.remove_node_here(id).await,
            ForwardRequest::Heartbeat => {
                self.ensure_leader()?;
                self.raft.trigger().heartbeat().await.map_err(|e| EngineError::Internal(e.to_string()))?;
                Ok(ForwardResponse::Done)
            }
            ForwardRequest::Cluster => {
                self.ensure_leader()?;
                Ok(ForwardResponse::Cluster(self.local_cluster_view()))
            }
        }
    }

    async fn add_node_here(&self, id: NodeId, addr: String) -> Result<ForwardResponse, EngineError> {
        self.ensure_leader()?;
        if let Some(existing) = self.addr_of(id) {
            if existing != addr {
                return Err(EngineError::BadRequest(format!(
                    "{} is already a member at {existing}; remove it first",
                    node_name(id)
                )));
            }
        }
        let added =
            tokio::time::timeout(self.config.request_timeout, self.raft.add_learner(id, BasicNode::new(&addr), false))
                .await
                .map_err(|_| self.no_quorum("learner not committed"))?
                .map_err(|e| self.write_error(e))?;
        // Promote only a learner that has the log (openraft's own blocking
        // add_learner returns Ok even when the wait times out): an
        // unreachable voter would cost the cluster its quorum. Catching up
        // may take a while for a big log; bound it generously.
        let catch_up = self.config.request_timeout * 6;
        let target = added.log_id.index;
        self.raft
            .wait(Some(catch_up))
            .metrics(
                |m| {
                    let matched = m.replication.as_ref().and_then(|r| r.get(&id).copied().flatten());
                    matched.is_some_and(|log_id| log_id.index >= target)
                },
                "learner caught up",
            )
            .await
            .map_err(|_| {
                self.no_quorum(&format!(
                    "{} did not catch up within {catch_up:?}; it stays a learner (not a voter): fix its address or \
                     remove it with /cluster/remove",
                    node_name(id)
                ))
            })?;
        let voters = BTreeSet::from([id]);
        tokio::time::timeout(
            self.config.request_timeout,
            self.raft.change_membership(ChangeMembers::AddVoterIds(voters), false),
        )
        .await
        .map_err(|_| self.no_quorum("membership change not committed"))?
        .map_err(|e| self.write_error(e))?;
        tracing::info!(node = %node_name(id), %addr, "node added as voter");
        Ok(ForwardResponse::Cluster(self.local_cluster_view()))
    }

    async fn remove_node_here(&self, id: NodeId) -> Result<ForwardResponse, EngineError> {
        self.ensure_leader()?;
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let ids = BTreeSet::from([id]);
        let change = if membership.membership().voter_ids().any(|v| v == id) {
            ChangeMembers::RemoveVoters(ids)
        } else if membership.membership().get_node(&id).is_some() {
            ChangeMembers::RemoveNodes(ids)
        } else {
            return Err(EngineError::BadRequest(format!("{} is not a member", node_name(id))));
        };
        tokio::time::timeout(self.config.request_timeout, self.raft.change_membership(change, false))
            .await
            .map_err(|_| self.no_quorum("membership change not committed"))?
            .map_err(|e| self.write_error(e))?;
        tracing::info!(node = %node_name(id), "node removed");
        Ok(ForwardResponse::Cluster(self.local_cluster_view()))
    }

    fn ensure_leader(&self) -> Result<(), EngineError> {
        match self.leader() {
            Some(id) if id == self.id() => Ok(()),
            leader => Err(EngineError::NotLeader { leader }),
        }
    }

    fn no_quorum(&self, what: &str) -> EngineError {
        EngineError::unavailable(
            format!("{what} within {:?}: no quorum reachable", self.config.request_timeout),
            self.leader(),
        )
    }

    fn write_error(&self, e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> EngineError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => EngineError::NotLeader { leader: f.leader_id },
            RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => EngineError::BadRequest(e.to_string()),
            RaftError::Fatal(fatal) => {
                tracing::error!(error = %fatal, "raft stopped");
                EngineError::unavailable(format!("raft stopped on this node: {fatal}"), None)
            }
        }
    }

    fn local_cluster_view(&self) -> ClusterView {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(&id, node)| {
                let matched_index = if id == m.id && m.state == ServerState::Leader {
                    m.last_log_index
                } else {
                    m.replication.as_ref().and_then(|r| r.get(&id).copied().flatten()).map(|l| l.index)
                };
                MemberView {
                    node_id: node_name(id),
                    addr: node.addr.clone(),
                    voter: voters.contains(&id),
                    matched_index,
                }
            })
            .collect();
        ClusterView { leader: m.current_leader.map(node_name), term: m.current_term, members }
    }
}

/// The leader's clock for leases and waits: proposes a [`Command::Tick`]
/// whenever the applied state has a lease expiry or a wait deadline that is
/// due, so they take effect even when no client sends anything. Followers
/// only watch; the loop ends when Raft shuts down.
async fn propose_ticks(node: Arc<Node>) {
    loop {
        if node.raft.metrics().borrow().state == ServerState::Shutdown {
            return;
        }
        let due = node.read_state(|state, store| state.next_deadline_ms(store));
        let now = now_ms();
        match due {
            Some(deadline) if deadline <= now && node.ensure_leader().is_ok() => {
                if let Err(e) = node.handle_forward(ForwardRequest::Write(Command::Tick)).await {
                    tracing::debug!(error = %e, "tick not committed");
                }
            }
            Some(deadline) if deadline > now => {
                tokio::time::sleep(Duration::from_millis(deadline - now).min(TICK_POLL)).await;
            }
            _ => tokio::time::sleep(TICK_POLL).await,
        }
    }
}

fn unexpected(reply: ForwardResponse) -> EngineError {
    EngineError::Internal(format!("the leader answered with the wrong kind of reply: {reply:?}"))
}

/// Wall-clock milliseconds since the Unix epoch: the time a leader stamps on
/// the entries it proposes.
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
