//! A real `redis-server` process for the tests that use Redis as the cache's
//! backing memory and event channel (never a mock).
//!
//! Each [`RedisServer`] runs on its own free port on 127.0.0.1 with its own
//! temporary directory, with the append-only file fsynced on every write and
//! RDB snapshots off, so [`RedisServer::kill`] (SIGKILL) followed by
//! [`RedisServer::start_again`] (same port, same directory) keeps every write
//! Redis acknowledged. Dropping it SIGKILLs the process; a failing test first
//! prints the tail of its log.
//!
//! `redis-server` must be on `PATH`; `scripts/test.sh` installs it
//! (`apt-get install redis-server`) when it is missing.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::mpsc;

use super::poll::poll_until;
use super::ports::free_port;

/// Time for a started `redis-server` to answer `PING` (AOF replay included).
pub const REDIS_STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Time allowed for one command sent by a test to Redis.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Lines of the Redis log shown when a test fails.
const LOG_TAIL_LINES: usize = 30;

/// Prefix of the keys the cache writes back into Redis (`dsync:cache:<key>`).
pub const CACHE_KEY_PREFIX: &str = "dsync:cache:";

/// The Redis channel every committed event is published on.
pub const EVENTS_CHANNEL: &str = "dsync.events";

/// One `redis-server` process slot: fixed port and directory, restartable.
pub struct RedisServer {
    port: u16,
    bin: PathBuf,
    dir: Option<TempDir>,
    root: PathBuf,
    child: Option<Child>,
    spawns: u32,
}

impl RedisServer {
    /// Starts `redis-server` on a free port with a fresh directory and
    /// waits until it answers `PING`. `name` (the test's) labels the dir.
    pub async fn start(name: &str) -> RedisServer {
        let bin = redis_server_bin();
        let dir = tempfile::Builder::new()
            .prefix(&format!("dsync-redis-{name}-"))
            .tempdir()
            .expect("create the Redis temp dir");
        let root = dir.path().to_path_buf();
        let mut redis = RedisServer { port: free_port(), bin, dir: Some(dir), root, child: None, spawns: 0 };
        redis.spawn();
        redis.wait_ready().await;
        redis
    }

    /// `redis://127.0.0.1:PORT/0`, the value for the nodes' `REDIS_URL`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The TCP port, the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// True while the process the test started runs (not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILLs the server and reaps it; its directory and port stay.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("kill redis-server: it is not running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again on the same port and directory (replaying its
    /// append-only file) and waits until it answers `PING`.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "start_again: redis-server is still running");
        self.spawn();
        self.wait_ready().await;
    }

    /// `GET key`; `None` when the key does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<String>, String> {
        let mut connection = self.connect().await?;
        let mut command = redis::cmd("GET");
        command.arg(key);
        match tokio::time::timeout(COMMAND_TIMEOUT, command.query_async::<Option<String>>(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(format!("redis GET {key}: {e}")),
            Err(_) => Err(format!("redis GET {key}: no answer within {COMMAND_TIMEOUT:?}")),
        }
    }

    /// The cache's write-back of `key`: `dsync:cache:<key>` parsed as JSON
    /// (`{"version":N,"value":..}`); `None` when Redis has no such key.
    pub async fn cache_entry(&self, key: &str) -> Result<Option<Value>, String> {
        let name = format!("{CACHE_KEY_PREFIX}{key}");
        match self.get(&name).await? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("redis {name} holds {text:?}, which is not JSON: {e}")),
        }
    }

    /// Subscribes to `channel` and returns once the subscription is active;
    /// every message's payload is forwarded as text, in order.
    pub async fn subscribe(&self, channel: &str) -> mpsc::UnboundedReceiver<String> {
        let client = redis::Client::open(self.url()).unwrap_or_else(|e| panic!("redis URL {}: {e}", self.url()));
        let mut pubsub = tokio::time::timeout(COMMAND_TIMEOUT, client.get_async_pubsub())
            .await
            .unwrap_or_else(|_| panic!("redis pub/sub connection: no answer within {COMMAND_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("redis pub/sub connection: {e}"));
        pubsub.subscribe(channel).await.unwrap_or_else(|e| panic!("redis SUBSCRIBE {channel}: {e}"));
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let payload = message.get_payload::<String>().unwrap_or_else(|e| format!("<unreadable payload: {e}>"));
                if tx.send(payload).is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let path = self.root.join("redis.log");
        let text = fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let shown = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        format!("  -- last {} lines of {}\n  | {}\n", shown.len(), path.display(), shown.join("\n  | "))
    }

    async fn connect(&self) -> Result<redis::aio::MultiplexedConnection, String> {
        let client = redis::Client::open(self.url()).map_err(|e| format!("redis URL {}: {e}", self.url()))?;
        match tokio::time::timeout(COMMAND_TIMEOUT, client.get_multiplexed_async_connection()).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(format!("connect to redis at {}: {e}", self.url())),
            Err(_) => Err(format!("connect to redis at {}: no answer within {COMMAND_TIMEOUT:?}", self.url())),
        }
    }

    fn spawn(&mut self) {
        self.spawns += 1;
        let log = self.root.join("redis.log");
        let mut command = Command::new(&self.bin);
        command
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("yes")
            .arg("--appendfsync")
            .arg("always")
            .arg("--dir")
            .arg(&self.root)
            .arg("--logfile")
            .arg(&log)
            .arg("--daemonize")
            .arg("no")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: as for the nodes (node.rs): prctl(2) is async-signal-safe;
        // PDEATHSIG kills redis-server if the spawning thread dies without Drop.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin.display()));
        self.child = Some(child);
    }

    /// Waits until the server answers `PING` with `PONG`; panics with its log
    /// if it exits or does not answer in time.
    async fn wait_ready(&mut self) {
        let result = poll_until(REDIS_STARTUP_TIMEOUT, async || {
            if let Some(status) = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten()) {
                return Ok(Err(format!("redis-server exited: {status}")));
            }
            let mut connection = self.connect().await?;
            let command = redis::cmd("PING");
            match tokio::time::timeout(COMMAND_TIMEOUT, command.query_async::<String>(&mut connection)).await {
                Ok(Ok(reply)) if reply == "PONG" => Ok(Ok(())),
                Ok(Ok(reply)) => Err(format!("PING answered {reply:?}")),
                Ok(Err(e)) => Err(format!("PING: {e}")),
                Err(_) => Err("PING: no answer".to_owned()),
            }
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(exit)) | Err(exit) => panic!(
                "redis-server (spawn #{}) on port {} did not become ready within {REDIS_STARTUP_TIMEOUT:?}: {exit}\n{}",
                self.spawns,
                self.port,
                self.log_tail()
            ),
        }
    }
}

impl Drop for RedisServer {
    /// Kills the server; a failing test keeps the directory and shows the log.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("==== redis-server on port {} ====\n{}", self.port, self.log_tail());
            if let Some(dir) = self.dir.take() {
                eprintln!("kept {} for inspection", dir.keep().display());
            }
        }
    }
}

/// `redis-server` from `PATH`; panics saying how to install it.
fn redis_server_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("redis-server"))
        .find(|candidate| is_executable(candidate))
        .unwrap_or_else(|| {
            panic!(
                "redis-server is not on PATH: the cache tests run a real Redis. Install it with \
                 `apt-get install redis-server` (scripts/test.sh does this when it is missing)"
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
