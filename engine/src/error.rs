//! Errors of the engine, typed by what the caller does next.

use serde::{Deserialize, Serialize};

use crate::types::NodeId;

/// Why a write, read or membership change did not happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum EngineError {
    /// No leader or no quorum right now: retry later, maybe at `leader`. A
    /// write that timed out this way may still commit later.
    #[error("unavailable: {reason}")]
    Unavailable {
        /// Human explanation.
        reason: String,
        /// The leader, if one is known.
        leader: Option<NodeId>,
    },
    /// This node is not the leader (used between nodes; the forwarding loop
    /// turns it into a retry at the leader).
    #[error("not the leader; leader is {leader:?}")]
    NotLeader {
        /// The leader, if known.
        leader: Option<NodeId>,
    },
    /// The request is invalid for the current cluster (e.g. unknown member).
    #[error("{0}")]
    BadRequest(String),
    /// A bug or a broken disk: logged with its cause.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// An [`EngineError::Unavailable`] with a reason.
    pub fn unavailable(reason: impl Into<String>, leader: Option<NodeId>) -> EngineError {
        EngineError::Unavailable { reason: reason.into(), leader }
    }
}
