//! Shared fixture of the black-box integration tests: real `dsync serve`
//! processes on 127.0.0.1, real disks, SIGKILL, and plain HTTP.
//!
//! Each topic binary (`cluster`, `locks`, `queues`, `events`, `cache`)
//! includes this module with
//! `#[path = "../common/mod.rs"] mod common;`.
//!
//! - [`cluster`]: starts, kills, pauses (SIGSTOP/SIGCONT) and restarts a
//!   cluster's nodes; reports node state and log tails when a test fails.
//! - [`node`]: one `dsync serve` process slot (env, port, captured output).
//! - [`waits`]: waits for an agreed leader, an applied index, a membership,
//!   and checks that acknowledged entries are in a node's log.
//! - [`api`]: an HTTP client addressed by node number, with typed helpers
//!   for the Health/Raft/cluster routes of `shared/API.md` and for reading
//!   one metric family (per node, summed over nodes, or only the samples
//!   with given labels) and the Prometheus text. Topic binaries add their
//!   own route helpers as `impl Api` blocks in their own modules (e.g.
//!   `locks/client.rs`, `queues/client.rs`).
//! - [`bad_input`]: bad requests, their contract errors, and the check that
//!   a node rejects each and keeps serving.
//! - [`poll`]: re-check a condition until a deadline; never a fixed sleep.
//! - [`ports`]: free TCP ports that cannot collide with the nodes' own
//!   outgoing connections.
//! - [`redis`]: a real `redis-server` on its own port and directory (the
//!   cache's backing memory and event channel), killable and restartable
//!   with its data; reads cache write-backs and subscribes to channels.
//! - [`raw_http`]: a POST whose response is read even if the server refuses
//!   the body before reading it (413 tests).
//!
//! What it never does: share a process, port or directory between tests,
//! talk to the `/internal/` routes, or mock anything.

pub mod api;
pub mod bad_input;
pub mod cluster;
pub mod fields;
pub mod node;
pub mod poll;
pub mod ports;
pub mod raw_http;
pub mod redis;
pub mod sse;
pub mod waits;

pub use api::{Api, Appended, Reply};
pub use cluster::{Cluster, ClusterOptions};
pub use poll::eventually;
pub use waits::CONVERGE_TIMEOUT;

/// Asserts that `reply` is the contract's error: HTTP `status`, a JSON
/// content type, and a body `{"error":{"code":code,"message":<non-empty>}}`.
/// `context` says which request this was, for the failure message.
pub fn assert_contract_error(reply: &Reply, status: u16, code: &str, context: &str) {
    assert_eq!(reply.status, status, "{context}: expected HTTP {status} `{code}`, got {reply}");
    assert_eq!(reply.error_code(), Some(code), "{context}: expected error.code `{code}`, got {reply}");
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.trim().is_empty(), "{context}: error.message must be a non-empty string, got {reply}");
    let content_type = reply.content_type.as_deref().unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{context}: error bodies are JSON, got Content-Type {content_type:?} for {reply}"
    );
}
