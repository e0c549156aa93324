//! The openraft type configuration and how nodes are named.

use dsync_statemachine::{Request, Response};

/// Numeric Raft id of a node: `node7` has id 7.
pub type NodeId = u64;

/// Identifies one Raft group. dsync runs a single group (`0`) today; the id is
/// already in every RPC path and in the data directory layout so that sharding
/// into several groups later changes no format.
pub type GroupId = u32;

/// The group every node runs today.
pub const DEFAULT_GROUP: GroupId = 0;

openraft::declare_raft_types!(
    /// Types of dsync's Raft: entries carry a statemachine [`Request`] and
    /// answer a [`Response`]; a node is known by its HTTP base URL.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = tokio::fs::File,
);

/// A log entry of dsync's Raft.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id (term, leader, index).
pub type LogId = openraft::LogId<NodeId>;
/// A vote of dsync's Raft.
pub type Vote = openraft::Vote<NodeId>;
/// A storage error of dsync's Raft.
pub type StorageError = openraft::StorageError<NodeId>;
/// The running Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// The user-facing name of a node id (`7` -> `node7`).
pub fn node_name(id: NodeId) -> String {
    format!("node{id}")
}

/// Parses a node name `nodeN` into its Raft id `N` (N >= 1).
pub fn node_id_from_name(name: &str) -> Option<NodeId> {
    let digits = name.strip_prefix("node")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&id| id >= 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_round_trip() {
        assert_eq!(node_id_from_name("node12"), Some(12));
        assert_eq!(node_name(12), "node12");
        for bad in ["node", "node0", "nodex", "n1", "node-1", "node+1", ""] {
            assert_eq!(node_id_from_name(bad), None, "{bad}");
        }
    }
}
