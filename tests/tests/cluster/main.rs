//! Black-box tests of a dsync Raft cluster: real `dsync serve` processes on
//! 127.0.0.1 with real data dirs, killed with SIGKILL, observed only through
//! the HTTP API of `shared/API.md` ("Health, Raft, cluster").
//!
//! Build the server first (`cargo build -p dsync-server`) or set `DSYNC_BIN`.
//! `DSYNC_TEST_LOG_LEVEL` sets the nodes' `LOG_LEVEL`; `DSYNC_KEEP_TEST_DIRS`
//! keeps every test's directory (a failing test always keeps its own).
//!
//! - `t10_replication`: one agreed leader; an append sent to a follower is
//!   committed and reaches every node.
//! - `t20_leader_failover`: after the leader is killed a new one serves
//!   appends within 5 s, and no acknowledged entry is lost.
//! - `t30_crash_all`: acknowledged appends survive SIGKILL of every node.
//! - `t40_snapshot_catchup`: a node behind the leader's purged log catches up
//!   by snapshot install.
//! - `t50_membership`: a fourth node joins as voter and leaves again.
//! - `t60_bad_input`: bad requests get 4xx contract errors; the node keeps serving.
//! - `t70_no_quorum`: without a quorum, writes fail with 503 `unavailable`.

// Each topic binary uses a different part of the shared fixture.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;

mod t10_replication;
mod t20_leader_failover;
mod t30_crash_all;
mod t40_snapshot_catchup;
mod t50_membership;
mod t60_bad_input;
mod t70_no_quorum;
mod t80_auto_join;
