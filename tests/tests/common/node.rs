//! One `dsync serve` process of a test cluster: spawn, SIGKILL, SIGSTOP and
//! SIGCONT, respawn with the same settings, and the captured output that
//! explains a failure.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Lines of each captured file shown when a test fails.
const TAIL_LINES: usize = 40;

/// Longest log line shown when a test fails (structured logs are wide).
const TAIL_LINE_BYTES_MAX: usize = 400;

/// Server settings a developer's shell may carry: removed from every node's
/// environment, so a node runs with the server defaults plus exactly what
/// the fixture sets.
const SCRUBBED_ENV: [&str; 17] = [
    "NODE_ID",
    "PEERS",
    "HTTP_PORT",
    "LISTEN_ADDR",
    "DATA_DIR",
    "LOG_LEVEL",
    "LOG_DIR",
    "REDIS_URL",
    "CACHE_CAPACITY",
    "ENABLE_METRICS",
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_TIMEOUT",
    "SNAPSHOT_ENTRIES",
    "MAX_VALUE_BYTES",
    "REQUEST_TIMEOUT_MS",
    "MAX_DELIVERIES",
    "RUST_LOG",
];

/// The slot of node `nodeN`: fixed port, environment and files, and while it
/// runs, its child process. A restart is another spawn of the same slot.
pub struct NodeProcess {
    /// `N` of `nodeN`.
    pub id: u64,
    /// HTTP port (API and internal), the same across restarts.
    pub port: u16,
    /// Environment of every spawn: a restart reuses it unchanged.
    env: Vec<(String, String)>,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    /// `<log-dir>/nodeN.log`, written by the server itself.
    log_path: PathBuf,
    /// `Some` from spawn until killed, or until it is seen to have exited.
    child: Option<Child>,
    /// How the last process ended on its own, if it did (a crash, a bind error).
    exit: Option<String>,
    spawns: u32,
    /// True between [`NodeProcess::pause`] and [`NodeProcess::resume`].
    paused: bool,
}

impl NodeProcess {
    /// A slot whose captured stdout/stderr go to `root/nodeN.{stdout,stderr}`
    /// and whose server log is `log_dir/nodeN.log`. Nothing runs yet.
    pub fn new(id: u64, port: u16, env: Vec<(String, String)>, root: &Path, log_dir: &Path) -> Self {
        NodeProcess {
            id,
            port,
            env,
            stdout_path: root.join(format!("node{id}.stdout")),
            stderr_path: root.join(format!("node{id}.stderr")),
            log_path: log_dir.join(format!("node{id}.log")),
            child: None,
            exit: None,
            spawns: 0,
            paused: false,
        }
    }

    /// Starts `bin serve --log-dir log_dir` with this slot's environment.
    pub fn spawn(&mut self, bin: &Path, log_dir: &Path) {
        assert!(self.child.is_none(), "node{} is already running", self.id);
        self.spawns += 1;
        self.exit = None;
        note(&self.stderr_path, &format!("spawn #{} of node{}", self.spawns, self.id));
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg("--log-dir")
            .arg(log_dir)
            .stdin(Stdio::null())
            .stdout(append_to(&self.stdout_path))
            .stderr(append_to(&self.stderr_path));
        for name in SCRUBBED_ENV {
            command.env_remove(name);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        // SAFETY: the closure runs in the forked child before exec and only
        // calls prctl(2), which is async-signal-safe. PDEATHSIG makes the
        // kernel SIGKILL the node if the thread that spawned it dies without
        // running Drop (harness killed, abort), so no node outlives its test.
        // Tests run the cluster on their own thread (current-thread tokio
        // runtime), which lives as long as the cluster does.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().unwrap_or_else(|e| panic!("spawn {} for node{}: {e}", bin.display(), self.id));
        self.child = Some(child);
    }

    /// SIGKILLs the process and reaps it. Panics if it is not running.
    pub fn kill(&mut self) {
        let mut child = self.child.take().unwrap_or_else(|| panic!("kill node{}: it is not running", self.id));
        // kill() is SIGKILL on Unix; it fails only if the child was reaped.
        // SIGKILL ends a stopped (SIGSTOPped) process too.
        let _ = child.kill();
        let status = child.wait().map_or_else(|e| e.to_string(), |s| s.to_string());
        let was = if std::mem::take(&mut self.paused) { " while paused" } else { "" };
        note(&self.stderr_path, &format!("killed by the test with SIGKILL{was} ({status})"));
    }

    /// SIGSTOPs the process: it keeps its sockets and state but does nothing
    /// (no heartbeats, no answers) until [`NodeProcess::resume`]. Panics if
    /// it is not running or already paused.
    pub fn pause(&mut self) {
        assert!(!self.paused, "pause node{}: it is already paused", self.id);
        self.signal(libc::SIGSTOP, "SIGSTOP");
        self.paused = true;
    }

    /// SIGCONTs a paused process. Panics if it is not paused.
    pub fn resume(&mut self) {
        assert!(self.paused, "resume node{}: it is not paused", self.id);
        self.signal(libc::SIGCONT, "SIGCONT");
        self.paused = false;
    }

    /// True while the process is stopped by [`NodeProcess::pause`].
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn signal(&mut self, signal: libc::c_int, name: &str) {
        let child = self.child.as_ref().unwrap_or_else(|| panic!("{name} node{}: it is not running", self.id));
        let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
        // SAFETY: kill(2) on the pid of our own unreaped child: the pid cannot
        // have been reused by another process while the Child is not waited.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "{name} node{} (pid {pid}): {}", self.id, std::io::Error::last_os_error());
        note(&self.stderr_path, &format!("{name} by the test"));
    }

    /// True while a process of this slot runs (as far as the test knows).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// If the process exited on its own, reaps it, remembers how, and
    /// returns that; `None` while it runs (or when none was started).
    pub fn check_exited(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        let text = status.to_string();
        note(&self.stderr_path, &format!("exited on its own: {text}"));
        self.exit = Some(text.clone());
        Some(text)
    }

    /// The process state and the tails of its stderr, stdout and log file.
    pub fn report(&mut self) -> String {
        self.check_exited();
        let state = match (&self.child, &self.exit) {
            (Some(child), _) if self.paused => format!("PAUSED (SIGSTOP), pid {}", child.id()),
            (Some(child), _) => format!("running, pid {}", child.id()),
            (None, Some(exit)) => format!("EXITED on its own: {exit}"),
            (None, None) => "not running (killed by the test)".to_owned(),
        };
        let mut text = format!("---- node{} (port {}, {} spawns): {state}\n", self.id, self.port, self.spawns);
        for path in [&self.stderr_path, &self.stdout_path, &self.log_path] {
            text.push_str(&tail(path));
        }
        text
    }
}

impl Drop for NodeProcess {
    /// A node never outlives its slot, whatever path drops it.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL also ends a paused (stopped) process.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Opens `path` for appending, so captured output survives restarts.
fn append_to(path: &Path) -> File {
    OpenOptions::new().create(true).append(true).open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// Writes a fixture marker line into a node's captured stderr, so a reader
/// of the tail can tell spawns, kills and crashes apart.
fn note(path: &Path, what: &str) {
    let _ = writeln!(append_to(path), "==== [test fixture] {what} ====");
}

/// The last [`TAIL_LINES`] lines of `path` under a header; nothing if the
/// file is missing or empty.
fn tail(path: &Path) -> String {
    let Ok(bytes) = fs::read(path) else {
        return String::new();
    };
    if bytes.is_empty() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let shown = &lines[lines.len().saturating_sub(TAIL_LINES)..];
    let mut out = format!("  -- last {} of {} lines of {}\n", shown.len(), lines.len(), path.display());
    for line in shown {
        let mut end = line.len().min(TAIL_LINE_BYTES_MAX);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&format!("  | {}\n", &line[..end]));
    }
    out
}
