//! Raft for dsync: openraft 0.9 over our own WAL (the log and the vote) and
//! sled (the state machine's snapshots), plus the node-to-node network.
//!
//! A client request travels: server route -> [`Node::write`] -> (forwarded to
//! the leader if needed, [`forward`]) -> `openraft::Raft::client_write` ->
//! replicated by [`network`] -> applied by [`sm_store`] through the pure
//! `dsync_statemachine::State::apply` -> the response comes back the same way.
//!
//! Modules:
//! - [`types`]: the openraft type configuration and node naming (`nodeN`).
//! - [`codec`]: bincode encoding shared by storage and the wire.
//! - [`meta`]: the small fsynced files that hold the vote and the purge point.
//! - [`log_store`]: `RaftLogStorage` on the WAL.
//! - [`sm_store`]: `RaftStateMachine`: in-memory state plus a sled store,
//!   point-in-time snapshot files.
//! - [`network`]: Raft RPC client (`/internal/raft/...`, pooled keep-alive).
//! - [`rpc`]: the `/internal/` HTTP routes that receive those RPCs.
//! - [`forward`]: follower-to-leader forwarding of writes, reads and
//!   membership changes.
//! - [`node`]: [`Node`], the running Raft member the server talks to.
//! - [`ring`]: consistent hashing of queue names onto members (placement).
//! - [`config`] and [`error`]: settings and the errors callers act on.
//!
//! Every RPC path and the on-disk layout carry a Raft group id
//! ([`types::GroupId`]); today there is one group, `0`.

#![warn(missing_docs)]
// openraft's StorageError (224 bytes) and ConfigError are large by design, and
// the storage traits make us return them; boxing at every call would only add
// allocations on the log's read path.
#![allow(clippy::result_large_err)]

pub mod codec;
pub mod config;
pub mod error;
pub mod forward;
pub mod log_store;
pub mod meta;
pub mod network;
pub mod node;
pub mod ring;
pub mod rpc;
pub mod sm_store;
pub mod types;

pub use config::EngineConfig;
pub use error::EngineError;
pub use node::{ClusterView, Consistency, MemberView, Node, Role, Status};
pub use sm_store::ApplyObserver;
pub use types::{node_id_from_name, node_name, GroupId, NodeId, TypeConfig};
