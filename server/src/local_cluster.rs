//! `dsync cluster`: a local cluster of `dsync serve` child processes on
//! 127.0.0.1, data under `./data`, stopped cleanly on Ctrl-C.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::Value;

/// Settings of the local cluster.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=9))]
    pub nodes: u16,
    /// Port of node1; node N listens on base-port + N - 1.
    #[arg(long, default_value_t = 8001)]
    pub base_port: u16,
    /// Each node keeps its data in `<data-dir>/nodeN`, its logs in `<data-dir>/logs`.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// tracing filter for the nodes.
    #[arg(long, default_value = "info")]
    pub log_level: String,
}

/// How long the nodes may take to elect a first leader.
const ELECTION_WAIT: Duration = Duration::from_secs(30);
/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Starts the nodes, reports the leader, and waits for Ctrl-C.
pub async fn run(args: ClusterArgs) -> Result<(), Box<dyn std::error::Error>> {
    let exe = std::env::current_exe()?;
    let log_dir = args.data_dir.join("logs");
    std::fs::create_dir_all(&log_dir)?;
    let ports: Vec<u16> = (0..args.nodes).map(|i| args.base_port + i).collect();
    let peers: Vec<String> =
        ports.iter().enumerate().map(|(i, port)| format!("node{}=127.0.0.1:{port}", i + 1)).collect();

    let mut children = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let name = format!("node{}", i + 1);
        let stderr = File::create(log_dir.join(format!("{name}.stderr")))?;
        let mut command = Command::new(&exe);
        command
            .arg("serve")
            .env("NODE_ID", &name)
            .env("PEERS", peers.join(","))
            .env("HTTP_PORT", port.to_string())
            .env("LISTEN_ADDR", "127.0.0.1")
            .env("DATA_DIR", args.data_dir.join(&name))
            .env("LOG_DIR", &log_dir)
            .env("LOG_LEVEL", &args.log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        // SAFETY: prctl is async-signal-safe; it only asks the kernel to send
        // SIGTERM to the child if this launcher dies, so no node outlives it.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        children.push((name.clone(), command.spawn()?));
        println!("{name}  http://127.0.0.1:{port}  data {}", args.data_dir.join(&name).display());
    }
    println!("logs  {}", log_dir.display());

    let result = match wait_for_leader(args.base_port).await {
        Some((leader, term)) => {
            println!("leader {leader} (term {term})");
            println!("Ctrl-C stops the cluster");
            watch(&mut children).await
        }
        None => Err(format!("no leader within {ELECTION_WAIT:?}; see the logs in {}", log_dir.display()).into()),
    };
    stop(&mut children);
    result
}

/// Polls node1 (then the others) for a leader.
async fn wait_for_leader(base_port: u16) -> Option<(String, u64)> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + ELECTION_WAIT;
    while Instant::now() < deadline {
        let url = format!("http://127.0.0.1:{base_port}/raft/leader");
        if let Ok(reply) = client.get(&url).timeout(Duration::from_secs(1)).send().await {
            if let Ok(body) = reply.json::<Value>().await {
                if let (Some(leader), Some(term)) = (body["leader"].as_str(), body["term"].as_u64()) {
                    return Some((leader.to_string(), term));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Waits for Ctrl-C (or SIGTERM), or for a node to exit on its own.
async fn watch(children: &mut [(String, Child)]) -> Result<(), Box<dyn std::error::Error>> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
            _ = tick.tick() => {
                for (name, child) in children.iter_mut() {
                    if let Some(status) = child.try_wait()? {
                        return Err(format!("{name} exited ({status}); stopping the cluster").into());
                    }
                }
            }
        }
    }
}

/// Sends SIGTERM to every node, then SIGKILL to any still running later.
fn stop(children: &mut [(String, Child)]) {
    println!("stopping...");
    for (_, child) in children.iter() {
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    let deadline = Instant::now() + STOP_WAIT;
    for (name, child) in children.iter_mut() {
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    eprintln!("{name} did not stop in {STOP_WAIT:?}; killing it");
                    drop(child.kill());
                    drop(child.wait());
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    println!("stopped");
}
