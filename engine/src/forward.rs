//! Follower-to-leader forwarding. Any node accepts client requests; those
//! that only the leader can serve travel to it as a [`ForwardRequest`] over
//! `POST <leader>/internal/forward/<group>` (bincode), using a connection pool
//! of their own, apart from Raft's.
//!
//! The leader stamps writes with its clock, so a forwarded write carries only
//! the command.

use serde::{Deserialize, Serialize};

use dsync_statemachine::{Command, Response};

use crate::node::ClusterView;
use crate::types::{LogId, NodeId};

/// Something only the leader can do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardRequest {
    /// Propose `Command` and wait until it is committed and applied.
    Write(Command),
    /// Confirm leadership with a heartbeat quorum and return the index a
    /// linearizable read must wait for (Raft's ReadIndex).
    ReadIndex,
    /// Add a node as a learner, let it catch up, then make it a voter.
    AddNode {
        /// The new node's Raft id.
        id: NodeId,
        /// Its base URL.
        addr: String,
    },
    /// Remove a voter or learner from the cluster.
    RemoveNode {
        /// The node's Raft id.
        id: NodeId,
    },
    /// Send a heartbeat round to every follower now.
    Heartbeat,
    /// The leader's view of the cluster (with replication progress).
    Cluster,
}

/// The leader's answer to a [`ForwardRequest`] of the same name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardResponse {
    /// The write committed at `log_id` and applying it answered `response`.
    Written {
        /// Where the entry sits in the log.
        log_id: LogId,
        /// What the state machine answered.
        response: Response,
    },
    /// Reads at this index or later are linearizable.
    ReadIndex(u64),
    /// The cluster after the change, or as it is.
    Cluster(ClusterView),
    /// The heartbeat round was started.
    Done,
}
