//! `dsync serve` settings: every variable of the contract's configuration
//! table, each also a flag, resolved into an [`EngineConfig`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use std::num::NonZeroUsize;

use clap::Args;
use dsync_engine::{node_id_from_name, EngineConfig, NodeId};

use crate::cache::CacheSettings;

/// Settings of one node.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// This node's name, `nodeN` (N is its numeric Raft id).
    #[arg(long, env = "NODE_ID", default_value = "node1")]
    pub node_id: String,
    /// Initial members: `node1,node2,node3` (reached at http://<name>:<HTTP_PORT>)
    /// or `node1=127.0.0.1:8001,node2=...`.
    #[arg(long, env = "PEERS", default_value = "node1")]
    pub peers: String,
    /// API and internal port.
    #[arg(long, env = "HTTP_PORT", default_value_t = 8000)]
    pub http_port: u16,
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0")]
    pub listen_addr: String,
    /// WAL, sled and snapshots; default `./data/<NODE_ID>`.
    #[arg(long, env = "DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Serve `/metrics`.
    #[arg(long, env = "ENABLE_METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub enable_metrics: bool,
    /// tracing filter, e.g. `info` or `dsync_engine=debug,info`.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Also write `<node>.log` and `<node>_structured.log` (JSON lines) here.
    #[arg(long, env = "LOG_DIR")]
    pub log_dir: Option<PathBuf>,
    /// Seconds between leader heartbeats.
    #[arg(long, env = "HEARTBEAT_INTERVAL", default_value_t = 0.05)]
    pub heartbeat_interval: f64,
    /// Seconds without a leader before an election (randomised between half
    /// and all of it).
    #[arg(long, env = "HEARTBEAT_TIMEOUT", default_value_t = 0.3)]
    pub heartbeat_timeout: f64,
    /// Log entries since the last snapshot that trigger a new snapshot.
    #[arg(long, env = "SNAPSHOT_ENTRIES", default_value_t = 5000)]
    pub snapshot_entries: u64,
    /// Largest message or cache value, and `data` of `/raft/append`, in bytes.
    #[arg(long, env = "MAX_VALUE_BYTES", default_value_t = 1 << 20)]
    pub max_value_bytes: usize,
    /// Deliveries after which an unacknowledged message moves to `<queue>.dlq`
    /// (applies to messages produced through this node).
    #[arg(long, env = "MAX_DELIVERIES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_deliveries: u32,
    /// Memory (MiB) for sled's cache of the replicated store: bounds the
    /// process however large the queue backlogs grow.
    #[arg(long, env = "STORE_CACHE_MB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub store_cache_mb: u64,
    /// Milliseconds a write may wait for a leader and a quorum.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 5000)]
    pub request_timeout_ms: u64,
    /// `redis://host:6379/0`: the cache's backing memory and event pub/sub.
    /// Unset: the cluster's replicated store is the backing memory.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Cache lines per node.
    #[arg(long, env = "CACHE_CAPACITY", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub cache_capacity: u64,
    /// Milliseconds between the leader's write-backs of dirty cache lines.
    #[arg(long, env = "CACHE_FLUSH_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub cache_flush_ms: u64,
    /// URL of any member of a running cluster: this node asks it to add
    /// this node (as a learner that becomes a voter once caught up). `PEERS`
    /// is then not used to bootstrap anything.
    #[arg(long, env = "JOIN")]
    pub join: Option<String>,
    /// This node's base URL as the other members reach it (for `JOIN`);
    /// default `http://<NODE_ID>:<HTTP_PORT>`.
    #[arg(long, env = "ADVERTISE_ADDR")]
    pub advertise_addr: Option<String>,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl ServeArgs {
    /// The numeric Raft id of `node_id`.
    pub fn raft_id(&self) -> Result<NodeId, ConfigError> {
        node_id_from_name(&self.node_id)
            .ok_or_else(|| ConfigError(format!("NODE_ID must be nodeN with N >= 1, got {:?}", self.node_id)))
    }

    /// The member to ask for admission, if `JOIN` is set (and not blank).
    pub fn join_url(&self) -> Option<String> {
        let url = self.join.as_deref()?.trim().trim_end_matches('/');
        (!url.is_empty()).then(|| if url.contains("://") { url.to_string() } else { format!("http://{url}") })
    }

    /// This node's base URL as other members reach it.
    pub fn advertised_addr(&self) -> String {
        match self.advertise_addr.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            Some(addr) if addr.contains("://") => addr.trim_end_matches('/').to_string(),
            Some(addr) => format!("http://{}", addr.trim_end_matches('/')),
            None => format!("http://{}:{}", self.node_id, self.http_port),
        }
    }

    /// The data directory, defaulting to `./data/<NODE_ID>`.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from("data").join(&self.node_id))
    }

    /// Resolves these settings into the engine's configuration.
    pub fn engine_config(&self) -> Result<EngineConfig, ConfigError> {
        let mut config = EngineConfig::new(self.raft_id()?, self.data_dir());
        // A joining node never bootstraps: it waits to be added.
        if self.join_url().is_none() {
            config.peers = parse_peers(&self.peers, self.http_port)?;
        }
        config.heartbeat = seconds("HEARTBEAT_INTERVAL", self.heartbeat_interval)?;
        config.election_timeout = seconds("HEARTBEAT_TIMEOUT", self.heartbeat_timeout)?;
        if config.election_timeout < config.heartbeat * 4 {
            return Err(ConfigError(
                "HEARTBEAT_TIMEOUT must be at least 4 x HEARTBEAT_INTERVAL (its lower half must exceed a heartbeat)"
                    .into(),
            ));
        }
        if self.snapshot_entries == 0 {
            return Err(ConfigError("SNAPSHOT_ENTRIES must be at least 1".into()));
        }
        config.snapshot_entries = self.snapshot_entries;
        config.request_timeout = Duration::from_millis(self.request_timeout_ms.max(1));
        config.sled_cache_bytes = self.store_cache_mb << 20;
        Ok(config)
    }
}

impl ServeArgs {
    /// The cache settings. The read lease is the election timeout's lower
    /// bound less one heartbeat: shorter than any election, renewed every
    /// heartbeat.
    pub fn cache_settings(&self, engine: &EngineConfig) -> Result<CacheSettings, ConfigError> {
        let capacity = usize::try_from(self.cache_capacity)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| ConfigError(format!("CACHE_CAPACITY {} is out of range", self.cache_capacity)))?;
        let lease = (engine.election_timeout / 2).saturating_sub(engine.heartbeat);
        Ok(CacheSettings {
            capacity,
            lease,
            renew_every: engine.heartbeat,
            flush_every: Duration::from_millis(self.cache_flush_ms),
            redis_url: self.redis_url.clone().filter(|url| !url.trim().is_empty()),
        })
    }
}

fn seconds(name: &str, value: f64) -> Result<Duration, ConfigError> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| ConfigError(format!("{name} must be a positive number of seconds, got {value}")))
}

/// Parses `PEERS` into Raft ids and base URLs.
pub fn parse_peers(peers: &str, default_port: u16) -> Result<BTreeMap<NodeId, String>, ConfigError> {
    let mut parsed = BTreeMap::new();
    for item in peers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, addr) = match item.split_once('=') {
            Some((name, addr)) => (name.trim(), addr.trim().to_string()),
            None => (item, format!("{item}:{default_port}")),
        };
        let id = node_id_from_name(name)
            .ok_or_else(|| ConfigError(format!("PEERS entry {item:?}: name must be nodeN with N >= 1")))?;
        if addr.is_empty() {
            return Err(ConfigError(format!("PEERS entry {item:?} has an empty address")));
        }
        let url = if addr.contains("://") { addr } else { format!("http://{addr}") };
        if parsed.insert(id, url.trim_end_matches('/').to_string()).is_some() {
            return Err(ConfigError(format!("PEERS names {name} twice")));
        }
    }
    if parsed.is_empty() {
        return Err(ConfigError("PEERS is empty".into()));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_by_name_use_the_http_port() {
        let peers = parse_peers("node1,node2, node3", 8000).unwrap();
        assert_eq!(peers[&2], "http://node2:8000");
        assert_eq!(peers.len(), 3);
    }

    #[test]
    fn peers_with_addresses() {
        let peers = parse_peers("node1=127.0.0.1:8001,node2=http://h:9/", 8000).unwrap();
        assert_eq!(peers[&1], "http://127.0.0.1:8001");
        assert_eq!(peers[&2], "http://h:9");
    }

    #[test]
    fn bad_peers_are_rejected() {
        for bad in ["", "nodeX", "node1,node1", "node1="] {
            assert!(parse_peers(bad, 1).is_err(), "{bad:?}");
        }
    }
}
