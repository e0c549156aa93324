//! The command-line client of the `dsync` binary: `dsync status`, `dsync lock
//! ...`, `dsync queue ...` and `dsync cache ...` each make one or a few HTTP
//! calls to a running cluster and print the answer, for people (a sentence or
//! a table, the default) or for scripts (`--json`: the server's JSON answer
//! as is, on one line of stdout).
//!
//! Every command takes `--endpoint URL`, repeatable: on a connection error or
//! a 503 the next endpoint is tried (see [`client`] for the exact rule), so a
//! script can list every node and survive one being down.
//!
//! Exit codes (so scripts can branch without parsing output):
//! - 0: success (an empty consume and releasing an unheld lock are successes);
//! - 1: refused: 409 `conflict`/`deadlock`, 408 `timeout`, 404 `not_found`;
//! - 2: usage: bad arguments, or 400/413 from the server;
//! - 3: unavailable: no endpoint reachable, 503 from every endpoint, or a 5xx.
//!
//! Errors go to stderr as `dsync: <code>: <message>`; with `--json` the error
//! body (`{"error":{"code","message"}}`) goes to stdout instead.
//!
//! Modules: [`client`] (HTTP with failover, exit codes), [`render`] (human output).

pub mod client;
pub mod render;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use client::{Client, Failure, Request};

/// The exit codes, as shown at the end of `dsync --help` and of each client
/// command's help (see the module doc).
pub const EXIT_CODES_HELP: &str = "\
Exit codes of status, lock, queue and cache:
  0  success (an empty consume is a success)
  1  not granted or not found: 409 conflict/deadlock, 408 timeout, 404 not_found
  2  usage error: bad arguments, or 400/413 from the server
  3  unavailable: no endpoint reachable, 503 from every endpoint, or another 5xx";

/// Where to send requests and how to print answers; shared by every client
/// command and accepted anywhere on its command line (`global`).
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Node to talk to; repeat the flag to give fallbacks, tried in order on
    /// a connection error or a 503.
    #[arg(long = "endpoint", value_name = "URL", default_value = "http://127.0.0.1:8001", global = true)]
    pub endpoints: Vec<String>,
    /// Print the server's JSON answer (or error body) on stdout, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The client commands, flattened into the binary's top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the node answering, the leader and the members' progress.
    #[command(after_help = EXIT_CODES_HELP)]
    Status {
        /// Endpoints and output format.
        #[command(flatten)]
        conn: Connection,
    },
    /// Acquire, release, renew and inspect distributed locks.
    #[command(after_help = EXIT_CODES_HELP)]
    Lock {
        /// Endpoints and output format.
        #[command(flatten)]
        conn: Connection,
        /// What to do.
        #[command(subcommand)]
        op: LockOp,
    },
    /// Produce, consume, ack and inspect durable queues.
    #[command(after_help = EXIT_CODES_HELP)]
    Queue {
        /// Endpoints and output format.
        #[command(flatten)]
        conn: Connection,
        /// What to do.
        #[command(subcommand)]
        op: QueueOp,
    },
    /// Read, write and inspect the coherent cache.
    #[command(after_help = EXIT_CODES_HELP)]
    Cache {
        /// Endpoints and output format.
        #[command(flatten)]
        conn: Connection,
        /// What to do.
        #[command(subcommand)]
        op: CacheOp,
    },
}

/// `dsync lock ...`.
#[derive(Debug, Subcommand)]
pub enum LockOp {
    /// Acquire a lock; without --wait-ms a taken lock fails at once (exit 1).
    Acquire {
        /// The resource to lock, e.g. `acct:42`.
        resource: String,
        /// Who holds the lock (a client or transaction id).
        #[arg(long)]
        owner: String,
        /// `shared` (many holders) or `exclusive` (one holder).
        #[arg(long, default_value = "exclusive", value_parser = ["shared", "exclusive"])]
        mode: String,
        /// Lease: the cluster releases the lock if not renewed within this.
        #[arg(long, default_value_t = 30_000)]
        ttl_ms: u64,
        /// How long to wait for a taken lock (0: fail at once with `conflict`).
        #[arg(long, default_value_t = 0)]
        wait_ms: u64,
    },
    /// Release a lock (not holding it is reported, not an error).
    Release {
        /// The locked resource.
        resource: String,
        /// The holder.
        #[arg(long)]
        owner: String,
    },
    /// Extend the lease of every lock an owner holds (its keepalive).
    Renew {
        /// The holder.
        #[arg(long)]
        owner: String,
        /// The new lease, from now.
        #[arg(long, default_value_t = 30_000)]
        ttl_ms: u64,
    },
    /// Show one lock's holders and waiters, or every held lock.
    List {
        /// The resource (all held locks if omitted).
        resource: Option<String>,
    },
    /// Show the wait-for graph and how many deadlocks were resolved.
    WaitFor,
}

/// `dsync queue ...`.
#[derive(Debug, Subcommand)]
pub enum QueueOp {
    /// Produce one message; prints its id.
    Produce {
        /// The queue (created on first use).
        queue: String,
        /// The message: JSON if it parses as JSON (`{"n":1}`, `42`), else sent as a string.
        #[arg(value_parser = json_or_string, allow_hyphen_values = true)]
        message: Value,
        /// Messages with the same key keep their order.
        #[arg(long)]
        key: Option<String>,
    },
    /// Lease up to --max messages; prints one line per message, id first.
    Consume {
        /// The queue.
        queue: String,
        /// Who consumes (for the server's bookkeeping).
        #[arg(long)]
        consumer: String,
        /// Most messages to lease.
        #[arg(long, default_value_t = 1)]
        max: u32,
        /// How long the messages stay invisible to others unless acked.
        #[arg(long, default_value_t = 30_000)]
        visibility_ms: u64,
        /// Long poll: how long to wait for a message if none is ready.
        #[arg(long, default_value_t = 0)]
        wait_ms: u64,
    },
    /// Acknowledge (remove) processed messages.
    Ack {
        /// The queue.
        queue: String,
        /// Ids of the messages, as printed by consume.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Show depths and totals of one queue, or of every queue.
    Stats {
        /// The queue (all queues if omitted).
        queue: Option<String>,
    },
}

/// `dsync cache ...`.
#[derive(Debug, Subcommand)]
pub enum CacheOp {
    /// Read a key (exit 1 if it exists nowhere).
    Get {
        /// The key.
        key: String,
    },
    /// Write a key; every other copy is dropped before it returns.
    Put {
        /// The key.
        key: String,
        /// The value: JSON if it parses as JSON, else sent as a string.
        #[arg(value_parser = json_or_string, allow_hyphen_values = true)]
        value: Value,
    },
    /// Drop every node's copy; the value stays in backing memory.
    Invalidate {
        /// The key.
        key: String,
    },
    /// Remove a key from every cache and from backing memory.
    Delete {
        /// The key.
        key: String,
    },
    /// Show the answering node's cache lines, lease and counters.
    State {
        /// Show only this key's line.
        #[arg(long)]
        key: Option<String>,
    },
}

/// Parses a message or cache value: JSON when the text is JSON, otherwise the
/// text itself as a JSON string, so `hello` needs no quoting while `42`,
/// `true` and `{"a":1}` keep their types (quote to force a string: `'"42"'`).
pub fn json_or_string(text: &str) -> Result<Value, std::convert::Infallible> {
    Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())))
}

/// Turns an answer body into the human output.
type Render = Box<dyn Fn(&Value) -> String>;

/// Milliseconds since the Unix epoch, to show leases as "expires in".
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl LockOp {
    fn plan(self) -> (Request, Render) {
        match self {
            LockOp::Acquire { resource, owner, mode, ttl_ms, wait_ms } => (
                Request::post(
                    "/locks/acquire",
                    json!({"resource": resource, "owner": owner, "mode": mode, "ttl_ms": ttl_ms, "wait_ms": wait_ms}),
                )
                .waiting(wait_ms),
                Box::new(|body| render::acquired(body, now_ms())),
            ),
            LockOp::Release { resource, owner } => (
                Request::post("/locks/release", json!({"resource": resource, "owner": owner})),
                Box::new(move |body| render::released(body, &resource, &owner)),
            ),
            LockOp::Renew { owner, ttl_ms } => (
                Request::post("/locks/renew", json!({"owner": owner, "ttl_ms": ttl_ms})),
                Box::new(move |body| render::renewed(body, &owner)),
            ),
            LockOp::List { resource } => {
                let request = Request::get("/locks");
                let request = match &resource {
                    Some(resource) => request.query("resource", resource),
                    None => request,
                };
                (request, Box::new(|body| render::locks(body, now_ms())))
            }
            LockOp::WaitFor => (Request::get("/locks/wait_for"), Box::new(render::wait_for)),
        }
    }
}

impl QueueOp {
    fn plan(self) -> (Request, Render) {
        match self {
            QueueOp::Produce { queue, message, key } => {
                let mut body = json!({"queue": queue, "message": message});
                if let Some(key) = key {
                    body["key"] = json!(key);
                }
                (Request::post("/queue/produce", body), Box::new(render::produced))
            }
            QueueOp::Consume { queue, consumer, max, visibility_ms, wait_ms } => (
                Request::post(
                    "/queue/consume",
                    json!({"queue": queue, "consumer": consumer, "max": max,
                           "visibility_ms": visibility_ms, "wait_ms": wait_ms}),
                )
                .waiting(wait_ms),
                Box::new(render::consumed),
            ),
            QueueOp::Ack { queue, ids } => {
                (Request::post("/queue/ack", json!({"queue": queue, "ids": ids})), Box::new(render::acked))
            }
            QueueOp::Stats { queue } => {
                let request = Request::get("/queue/stats");
                let request = match &queue {
                    Some(queue) => request.query("queue", queue),
                    None => request,
                };
                (request, Box::new(render::queue_stats))
            }
        }
    }
}

impl CacheOp {
    fn plan(self) -> (Request, Render) {
        match self {
            CacheOp::Get { key } => (Request::get("/cache/get").query("key", &key), Box::new(render::cache_value)),
            CacheOp::Put { key, value } => {
                (Request::post("/cache/put", json!({"key": key, "value": value})), Box::new(render::cache_put))
            }
            CacheOp::Invalidate { key } => (
                Request::post("/cache/invalidate", json!({"key": key})),
                Box::new(|body| render::cache_done(body, "invalidated")),
            ),
            CacheOp::Delete { key } => (
                Request::post("/cache/delete", json!({"key": key})),
                Box::new(|body| render::cache_done(body, "deleted")),
            ),
            CacheOp::State { key } => {
                let request = Request::get("/cache/state");
                let request = match &key {
                    Some(key) => request.query("key", key),
                    None => request,
                };
                (request, Box::new(render::cache_state))
            }
        }
    }
}

/// `dsync status`: `/health` of the answering node, then `/cluster` and
/// `/raft/leader` from the same node. With `--json`, the three answers as
/// one object `{"endpoint", "health", "cluster", "leader"}`.
async fn status(client: &Client, json: bool) -> Result<String, Failure> {
    let health = client.call(&Request::get("/health")).await?;
    let cluster = client.call(&Request::get("/cluster")).await?;
    let leader = client.call(&Request::get("/raft/leader")).await?;
    let endpoint = client.current_endpoint();
    Ok(if json {
        json!({"endpoint": endpoint, "health": health, "cluster": cluster, "leader": leader}).to_string()
    } else {
        render::status(endpoint, &health, &cluster, &leader)
    })
}

/// Runs a client command: prints its output (stdout) or error (stderr, or
/// stdout with `--json`) and returns the documented exit code.
pub async fn run(command: Command) -> ExitCode {
    let (conn, plan) = match command {
        Command::Status { conn } => (conn, None),
        Command::Lock { conn, op } => (conn, Some(op.plan())),
        Command::Queue { conn, op } => (conn, Some(op.plan())),
        Command::Cache { conn, op } => (conn, Some(op.plan())),
    };
    let outcome = match (Client::new(&conn.endpoints), plan) {
        (Err(failure), _) => Err(failure),
        (Ok(client), None) => status(&client, conn.json).await,
        (Ok(client), Some((request, render))) => {
            client.call(&request).await.map(|body| if conn.json { body.to_string() } else { render(&body) })
        }
    };
    match outcome {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            if conn.json {
                println!("{}", failure.body);
            } else {
                let (code, message) = failure.code_and_message();
                eprintln!("dsync: {code}: {message}");
            }
            ExitCode::from(failure.exit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_json_when_they_parse_and_strings_otherwise() {
        let parse = |text| json_or_string(text).unwrap();
        assert_eq!(parse(r#"{"n": 1}"#), json!({"n": 1}));
        assert_eq!(parse("42"), json!(42));
        assert_eq!(parse("true"), json!(true));
        assert_eq!(parse(r#""42""#), json!("42"));
        assert_eq!(parse("hello world"), json!("hello world"));
        assert_eq!(parse("{not json"), json!("{not json"));
        assert_eq!(parse(""), json!(""));
    }

    /// The commands as the binary mounts them (flattened into its own).
    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[test]
    fn command_line_is_consistent_and_flags_go_anywhere() {
        use clap::{CommandFactory, Parser};
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["dsync", "lock", "--json", "acquire", "r", "--owner", "o", "--endpoint", "a"])
            .unwrap();
        let Command::Lock { conn, op: LockOp::Acquire { mode, ttl_ms, wait_ms, .. } } = cli.command else {
            panic!("not a lock acquire");
        };
        assert!(conn.json);
        assert_eq!(conn.endpoints, ["a"]);
        assert_eq!((mode.as_str(), ttl_ms, wait_ms), ("exclusive", 30_000, 0));
        let cli = Cli::try_parse_from(["dsync", "queue", "produce", "q", "-5"]).unwrap();
        assert!(
            matches!(cli.command, Command::Queue { op: QueueOp::Produce { message, .. }, .. } if message == json!(-5))
        );
        assert!(Cli::try_parse_from(["dsync", "lock", "acquire", "r", "--owner", "o", "--mode", "both"]).is_err());
        assert!(Cli::try_parse_from(["dsync", "queue", "ack", "q"]).is_err());
    }
}
