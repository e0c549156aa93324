//! Black-box tests of dsync's durable work queues: real `dsync serve`
//! processes on 127.0.0.1, observed only through the HTTP API of
//! `shared/API.md` ("Distributed queue", conventions and error codes).
//!
//! Build the server first (`cargo build -p dsync-server`) or set `DSYNC_BIN`.
//! `DSYNC_TEST_LOG_LEVEL` sets the nodes' `LOG_LEVEL`; `DSYNC_KEEP_TEST_DIRS`
//! keeps every test's directory (a failing test always keeps its own).
//!
//! Each topic starts its own 3-node cluster and sends requests to followers
//! as well as to the leader (followers forward).
//!
//! - `client`: typed calls of the queue routes on the fixture's `Api`, with
//!   strict parsing of the contract's shapes, and the stats/metrics checks.
//! - `t10_basics`: single and batch produce with unique ids; FIFO first
//!   deliveries across nodes (and per key); `max`; ack counts; stats and
//!   placement; unknown queues; metrics.
//! - `t20_redelivery_and_dead_letters`: an unacked message comes back after
//!   its lease with a higher delivery count, never before; after
//!   `MAX_DELIVERIES` it moves to `<queue>.dlq` with its id, body and key;
//!   nack with and without delay; a long poll wakes on a produce elsewhere.
//! - `t30_at_least_once_under_failover`: numbered produce streams and acking
//!   consumers while the leader is SIGKILLed and restarted: every
//!   acknowledged message is delivered, duplicates are only redeliveries,
//!   acked messages stay acked, and the queue drains.
//! - `t40_restart_all`: SIGKILL of every node keeps each queue's ready and
//!   in-flight messages (which come back after their lease) and totals.
//! - `t50_snapshot_catchup`: a node that missed thousands of queue operations
//!   behind a purged log catches up by snapshot, then serves the queue.
//! - `t60_bad_input`: bad queue requests get 4xx contract errors and change
//!   nothing; the limits are inclusive.

// Each topic binary uses a different part of the shared fixture.
#[allow(dead_code, unused_imports)]
#[path = "../common/mod.rs"]
mod common;

#[allow(dead_code)]
mod client;

mod t10_basics;
mod t20_redelivery_and_dead_letters;
mod t30_at_least_once_under_failover;
mod t40_restart_all;
mod t50_snapshot_catchup;
mod t60_bad_input;
