//! Settings of one Raft member, as the server resolved them from the
//! environment and flags.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::types::{GroupId, NodeId, DEFAULT_GROUP};

/// Everything a [`crate::Node`] needs to start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's Raft id (`nodeN` -> N).
    pub node_id: NodeId,
    /// The Raft group this node serves.
    pub group: GroupId,
    /// Root of this node's data: the group's files go in `group-<id>/`.
    pub data_dir: PathBuf,
    /// Initial members and their base URLs. A pristine node listed here
    /// bootstraps the cluster with exactly this set; a node not listed waits
    /// to be added through `/cluster/add`.
    pub peers: BTreeMap<NodeId, String>,
    /// Leader heartbeat period.
    pub heartbeat: Duration,
    /// Election timeout upper bound; the lower bound is half of it.
    pub election_timeout: Duration,
    /// Entries since the last snapshot that trigger a new snapshot (and the
    /// number of entries kept in the log behind it for lagging followers).
    pub snapshot_entries: u64,
    /// How long a write or linearizable read may wait for a leader and a
    /// quorum before it fails as unavailable.
    pub request_timeout: Duration,
    /// Memory sled may use to cache the state machine's store: the bound
    /// that keeps a huge queue backlog from growing the process.
    pub sled_cache_bytes: u64,
}

impl EngineConfig {
    /// Defaults (the contract's) for node `node_id` keeping its data in `data_dir`.
    pub fn new(node_id: NodeId, data_dir: impl Into<PathBuf>) -> EngineConfig {
        EngineConfig {
            node_id,
            group: DEFAULT_GROUP,
            data_dir: data_dir.into(),
            peers: BTreeMap::new(),
            heartbeat: Duration::from_millis(50),
            election_timeout: Duration::from_millis(300),
            snapshot_entries: 5000,
            request_timeout: Duration::from_secs(5),
            sled_cache_bytes: 64 << 20,
        }
    }

    /// Directory of this node's files for its group.
    pub fn group_dir(&self) -> PathBuf {
        self.data_dir.join(format!("group-{}", self.group))
    }

    /// The openraft configuration these settings imply.
    pub fn raft_config(&self) -> Result<openraft::Config, openraft::ConfigError> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let election_max = millis(self.election_timeout);
        let config = openraft::Config {
            cluster_name: "dsync".into(),
            heartbeat_interval: millis(self.heartbeat),
            election_timeout_min: election_max / 2,
            election_timeout_max: election_max,
            // Each snapshot chunk must fit in this; the default 200 ms makes
            // large snapshots resend forever on a loaded machine.
            install_snapshot_timeout: 10_000,
            // openraft 0.9 gives each AppendEntries one heartbeat interval
            // (50 ms) to complete; 300 entries of a 1 MiB batch produce would
            // never make it. 64 keeps a round small while still batching.
            max_payload_entries: 64,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_entries),
            max_in_snapshot_log_to_keep: self.snapshot_entries,
            replication_lag_threshold: self.snapshot_entries.saturating_mul(2),
            ..Default::default()
        };
        config.validate()
    }
}
