//! A cluster of real `dsync serve` processes on 127.0.0.1, one per test.
//!
//! Each [`Cluster`] owns a temporary directory (data dirs, logs, captured
//! stdout/stderr), its own ports and its child processes, so tests can run in
//! parallel threads without sharing anything. Dropping it SIGKILLs every
//! child; if the test is failing at that moment it first prints each node's
//! state and log tails, and keeps the directory for inspection.
//!
//! Lifecycle lives here; waiting for convergence is in `waits.rs`.

use std::collections::BTreeMap;
use std::fs;
use std::ops::Deref;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::api::Api;
use super::node::NodeProcess;
use super::poll::poll_until;
use super::ports::free_port;

/// Time for a spawned node to answer `/health` (process start, WAL recovery).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Times a node is respawned when it exits before serving (port still busy).
const RESPAWNS_MAX: u32 = 5;

/// How a test cluster is configured; each field maps to one server setting.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of initial members (`node1..=nodeN`, all in `PEERS`).
    pub size: u64,
    /// `HEARTBEAT_INTERVAL` in seconds; `None` keeps the server default.
    pub heartbeat_interval_s: Option<f64>,
    /// `HEARTBEAT_TIMEOUT` in seconds; `None` keeps the server default.
    pub heartbeat_timeout_s: Option<f64>,
    /// `SNAPSHOT_ENTRIES`; `None` keeps the server default (5000).
    pub snapshot_entries: Option<u64>,
    /// Any other environment variables for every node.
    pub extra_env: Vec<(String, String)>,
}

impl Default for ClusterOptions {
    /// Three nodes with timing that tolerates a loaded 2-core CI box: the
    /// server's 0.3 s election timeout can fire spuriously when fsyncs and a
    /// compiler compete for the CPU, turning unrelated tests flaky. Tests
    /// about failover timing use [`ClusterOptions::server_timing`].
    fn default() -> ClusterOptions {
        ClusterOptions {
            size: 3,
            heartbeat_interval_s: Some(0.1),
            heartbeat_timeout_s: Some(1.0),
            snapshot_entries: None,
            extra_env: Vec::new(),
        }
    }
}

impl ClusterOptions {
    /// Uses the server's own default heartbeat interval and timeout.
    pub fn server_timing(mut self) -> ClusterOptions {
        self.heartbeat_interval_s = None;
        self.heartbeat_timeout_s = None;
        self
    }

    /// Sets `SNAPSHOT_ENTRIES` (entries since the last snapshot that trigger
    /// a new snapshot and a log purge).
    pub fn snapshot_entries(mut self, entries: u64) -> ClusterOptions {
        self.snapshot_entries = Some(entries);
        self
    }

    /// Sets any other server setting `name` (e.g. `MAX_DELIVERIES`) to
    /// `value` in every node's environment, restarts included.
    pub fn env(mut self, name: &str, value: impl ToString) -> ClusterOptions {
        self.extra_env.push((name.to_owned(), value.to_string()));
        self
    }
}

/// A running test cluster. Dereferences to [`Api`], so `cluster.append(2, ..)`
/// talks to node2.
pub struct Cluster {
    /// The test's name: labels the temp dir and every failure message.
    pub(super) name: String,
    bin: PathBuf,
    /// `None` only after `Drop` decided to keep it.
    dir: Option<TempDir>,
    root: PathBuf,
    log_dir: PathBuf,
    /// `PEERS` of the initial members; a joining node gets the same value.
    peers: String,
    options: ClusterOptions,
    nodes: BTreeMap<u64, NodeProcess>,
    api: Api,
}

impl Deref for Cluster {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Cluster {
    /// Starts `options.size` nodes that bootstrap one cluster, waits until
    /// each serves `/health` and all agree on a leader. `name` (the test's
    /// name) labels the temp dir and failure reports.
    pub async fn start(name: &str, options: ClusterOptions) -> Cluster {
        let bin = dsync_bin();
        let dir =
            tempfile::Builder::new().prefix(&format!("dsync-{name}-")).tempdir().expect("create the test's temp dir");
        let root = dir.path().to_path_buf();
        let log_dir = root.join("logs");
        fs::create_dir_all(&log_dir).expect("create the log dir");
        let ports: BTreeMap<u64, u16> = (1..=options.size).map(|id| (id, free_port())).collect();
        let peers = ports.iter().map(|(id, port)| format!("node{id}=127.0.0.1:{port}")).collect::<Vec<_>>().join(",");
        let mut cluster = Cluster {
            name: name.to_owned(),
            bin,
            dir: Some(dir),
            root,
            log_dir,
            peers,
            options,
            nodes: BTreeMap::new(),
            api: Api::new(ports.clone()),
        };
        for (&id, &port) in &ports {
            cluster.add_node(id, port, Vec::new());
        }
        for &id in ports.keys() {
            cluster.wait_serving(id).await;
        }
        cluster.wait_for_leader().await;
        cluster
    }

    /// Starts node `id` outside the initial `PEERS` (it is given the initial
    /// members' `PEERS`, which do not name it), so it waits to be added with
    /// `POST /cluster/add`. Returns once it serves `/health`.
    pub async fn start_joining_node(&mut self, id: u64) {
        assert!(!self.nodes.contains_key(&id), "node{id} already exists in this cluster");
        self.add_node(id, free_port(), Vec::new());
        self.wait_serving(id).await;
    }

    /// Starts node `id` with `JOIN` set to member `via`'s URL (and its own
    /// URL as `ADVERTISE_ADDR`): it asks to be added by itself. Returns once
    /// it serves `/health`.
    pub async fn start_auto_joining_node(&mut self, id: u64, via: u64) {
        assert!(!self.nodes.contains_key(&id), "node{id} already exists in this cluster");
        let port = free_port();
        let env = vec![
            ("JOIN".to_string(), self.api.addr(via)),
            ("ADVERTISE_ADDR".to_string(), format!("http://127.0.0.1:{port}")),
        ];
        self.add_node(id, port, env);
        self.wait_serving(id).await;
    }

    /// SIGKILLs node `id` and reaps it. Its data dir and port stay reserved
    /// for [`Cluster::restart`].
    pub fn kill(&mut self, id: u64) {
        self.node_mut(id).kill();
    }

    /// SIGSTOPs node `id`: it stays a member and keeps its port, but sends
    /// and answers nothing (a long GC pause, a frozen VM) until
    /// [`Cluster::resume`]. Requests sent to it meanwhile hang; a paused
    /// node can still be killed, and is killed when the cluster drops.
    pub fn pause(&mut self, id: u64) {
        self.node_mut(id).pause();
    }

    /// SIGCONTs node `id`, paused by [`Cluster::pause`].
    pub fn resume(&mut self, id: u64) {
        self.node_mut(id).resume();
    }

    /// True while node `id` is paused by [`Cluster::pause`].
    pub fn is_paused(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(NodeProcess::is_paused)
    }

    /// Starts node `id` again with the same environment, data dir and port,
    /// and waits until it serves `/health`.
    pub async fn restart(&mut self, id: u64) {
        let (bin, log_dir) = (self.bin.clone(), self.log_dir.clone());
        self.node_mut(id).spawn(&bin, &log_dir);
        self.wait_serving(id).await;
    }

    /// Starts the killed nodes `ids` again together, each as in
    /// [`Cluster::restart`], and waits until every one serves `/health`: a
    /// whole-cluster restart in which no node waits for another to start.
    pub async fn restart_all(&mut self, ids: &[u64]) {
        let (bin, log_dir) = (self.bin.clone(), self.log_dir.clone());
        for &id in ids {
            self.node_mut(id).spawn(&bin, &log_dir);
        }
        for &id in ids {
            self.wait_serving(id).await;
        }
    }

    /// The HTTP client of this cluster, to clone into spawned client tasks.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// True while node `id` is a process the test started and has not killed.
    pub fn is_running(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(NodeProcess::is_running)
    }

    /// Numbers of the nodes currently running, ascending.
    pub fn running(&self) -> Vec<u64> {
        self.nodes.values().filter(|node| node.is_running()).map(|node| node.id).collect()
    }

    /// Running nodes that were in the initial `PEERS`.
    pub fn running_members(&self) -> Vec<u64> {
        self.running().into_iter().filter(|&id| id <= self.options.size).collect()
    }

    /// Running initial members other than `leader`.
    pub fn followers_of(&self, leader: u64) -> Vec<u64> {
        self.running_members().into_iter().filter(|&id| id != leader).collect()
    }

    /// A readable account of every node: process state and the tails of its
    /// stderr, stdout and log files. Printed automatically when a test fails.
    pub fn report(&mut self) -> String {
        let mut text = format!("==== {} cluster report (dir {}) ====\n", self.name, self.root.display());
        for node in self.nodes.values_mut() {
            text.push_str(&node.report());
        }
        text
    }

    /// Creates the slot of node `id` (environment from the options) and
    /// spawns it.
    fn add_node(&mut self, id: u64, port: u16, node_env: Vec<(String, String)>) {
        let data_dir = self.root.join(format!("node{id}"));
        let log_level = std::env::var("DSYNC_TEST_LOG_LEVEL").unwrap_or_else(|_| "info".into());
        let mut env: Vec<(String, String)> = vec![
            ("NODE_ID".into(), format!("node{id}")),
            ("PEERS".into(), self.peers.clone()),
            ("HTTP_PORT".into(), port.to_string()),
            ("DATA_DIR".into(), data_dir.display().to_string()),
            ("LISTEN_ADDR".into(), "127.0.0.1".into()),
            ("LOG_LEVEL".into(), log_level),
            ("RUST_BACKTRACE".into(), "1".into()),
        ];
        let options = &self.options;
        let optional = [
            ("HEARTBEAT_INTERVAL", options.heartbeat_interval_s.map(|s| s.to_string())),
            ("HEARTBEAT_TIMEOUT", options.heartbeat_timeout_s.map(|s| s.to_string())),
            ("SNAPSHOT_ENTRIES", options.snapshot_entries.map(|n| n.to_string())),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                env.push((name.into(), value));
            }
        }
        env.extend(options.extra_env.iter().cloned());
        env.extend(node_env);
        let mut node = NodeProcess::new(id, port, env, &self.root, &self.log_dir);
        node.spawn(&self.bin, &self.log_dir);
        self.nodes.insert(id, node);
        let ports = self.nodes.values().map(|n| (n.id, n.port)).collect();
        self.api = Api::new(ports);
    }

    /// Waits until node `id` answers `GET /health` with 200. A node that
    /// exits first (typically: its port is not free yet after a kill) is
    /// respawned, up to [`RESPAWNS_MAX`] times.
    async fn wait_serving(&mut self, id: u64) {
        let start = Instant::now();
        let mut respawns = 0;
        loop {
            if let Some(exit) = self.node_mut(id).check_exited() {
                assert!(
                    respawns < RESPAWNS_MAX && start.elapsed() < STARTUP_TIMEOUT,
                    "{}: node{id} keeps exiting before it serves (last: {exit}); see its stderr below",
                    self.name
                );
                respawns += 1;
                tokio::time::sleep(Duration::from_millis(200 * u64::from(respawns))).await;
                let (bin, log_dir) = (self.bin.clone(), self.log_dir.clone());
                self.node_mut(id).spawn(&bin, &log_dir);
                continue;
            }
            let remaining = STARTUP_TIMEOUT.saturating_sub(start.elapsed());
            assert!(!remaining.is_zero(), "{}: node{id} did not serve /health within {STARTUP_TIMEOUT:?}", self.name);
            // Look at the process again at least every second while polling.
            let api = self.api.clone();
            let health = poll_until(remaining.min(Duration::from_secs(1)), async || api.health(id).await);
            if health.await.is_ok() {
                return;
            }
        }
    }

    fn node_mut(&mut self, id: u64) -> &mut NodeProcess {
        self.nodes.get_mut(&id).unwrap_or_else(|| panic!("node{id} is not part of this test cluster"))
    }
}

impl Drop for Cluster {
    /// Reports if the test is failing, kills every node, then deletes the
    /// directory unless the test failed or `DSYNC_KEEP_TEST_DIRS` is set.
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        if failing {
            eprintln!("{}", self.report());
        }
        // Kill before the directory goes: a live node would write into it.
        self.nodes.clear();
        if failing || std::env::var_os("DSYNC_KEEP_TEST_DIRS").is_some() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("{}: kept {} for inspection", self.name, kept.display());
            }
        }
    }
}

/// The `dsync` binary: `$DSYNC_BIN`, else `dsync` in the cargo profile dir
/// this test binary was built into (`target/debug/deps/cluster-*` ->
/// `target/debug/dsync`). Panics with the build command when it is missing.
pub fn dsync_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("DSYNC_BIN") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "DSYNC_BIN={} is not a file", path.display());
        return path;
    }
    let exe = std::env::current_exe().expect("locate the test binary");
    let mut dir = exe.parent().expect("the test binary has a parent dir").to_path_buf();
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir.pop();
    }
    let bin = dir.join(format!("dsync{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "dsync binary not found at {}: build it first: cargo build -p dsync-server \
         (with the same CARGO_TARGET_DIR and profile), or set DSYNC_BIN",
        bin.display()
    );
    bin
}

/// A 3-node cluster's nodes by role, so a test can send each step to the
/// leader and to both followers.
#[derive(Debug, Clone, Copy)]
pub struct Nodes {
    /// The leader when the roles were read.
    pub leader: u64,
    /// One follower.
    pub a: u64,
    /// The other follower.
    pub b: u64,
}

impl Cluster {
    /// Waits for a leader and names the nodes by role.
    pub async fn nodes_by_role(&self) -> Nodes {
        let leader = self.wait_for_leader().await;
        let followers = self.followers_of(leader);
        Nodes { leader, a: followers[0], b: followers[1] }
    }
}
