//! Black-box tests of dsync's distributed locks: real `dsync serve`
//! processes on 127.0.0.1, observed only through the HTTP API of
//! `shared/API.md` ("Distributed locks", conventions and error codes).
//!
//! Build the server first (`cargo build -p dsync-server`) or set `DSYNC_BIN`.
//! `DSYNC_TEST_LOG_LEVEL` sets the nodes' `LOG_LEVEL`; `DSYNC_KEEP_TEST_DIRS`
//! keeps every test's directory (a failing test always keeps its own).
//!
//! Each topic starts its own 3-node cluster and sends requests to followers
//! as well as to the leader (followers forward).
//!
//! - `client`: typed calls of the lock routes on the fixture's `Api`, with
//!   strict parsing of the contract's shapes.
//! - `t10_basics`: try-lock conflict, shared/exclusive compatibility, FIFO
//!   order, no writer starvation, idempotent retries, hand-over on release,
//!   upgrades, renew, wait timeout, `GET /locks` shapes, metrics.
//! - `t20_deadlock`: a request that closes a wait-for cycle (two or three
//!   owners) aborts exactly the youngest owner with 409 `deadlock`; the
//!   others proceed; the graph is empty afterwards.
//! - `t30_failover_mutual_exclusion`: six clients doing fenced
//!   read-modify-writes under one lock while the leader is SIGKILLed: no two
//!   critical sections overlap, tokens only grow, no increment is lost.
//! - `t40_lease_expiry`: an unrenewed lease is released by the cluster on its
//!   own and a waiter gets the lock; a renewed one is kept.
//! - `t50_bad_input`: bad lock requests get 4xx contract errors, change
//!   nothing, and the node keeps serving.

// Each topic binary uses a different part of the shared fixture.
#[allow(dead_code, unused_imports)]
#[path = "../common/mod.rs"]
mod common;

#[allow(dead_code)]
mod client;

mod t10_basics;
mod t20_deadlock;
mod t30_failover_mutual_exclusion;
mod t40_lease_expiry;
mod t50_bad_input;
