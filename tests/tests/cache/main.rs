//! Black-box tests of dsync's coherent MESI cache: real `dsync serve`
//! processes on 127.0.0.1 and, where the backing memory is Redis, a real
//! `redis-server` (`common::redis`), observed only through the HTTP API of
//! `shared/API.md` ("Coherent cache (MESI)", "Events and metrics") and
//! through Redis itself (`dsync:cache:<key>` write-backs, the `dsync.events`
//! channel).
//!
//! Build the server first (`cargo build -p dsync-server`) or set `DSYNC_BIN`;
//! `redis-server` must be on `PATH` (`scripts/test.sh` installs it).
//!
//! - `client`: typed calls of the cache routes with strict parsing, and the
//!   Prometheus sample reader.
//! - `t10_mesi_walk`: the M/E/S/I walk of one key over three nodes (put,
//!   peer reads, hits, a put elsewhere invalidating every copy, exclusive
//!   reads, invalidate, delete), with the embedded backing and with Redis
//!   (which ends up holding the latest value); the cache's Prometheus
//!   families.
//! - `t20_no_stale_read`: concurrent writers and readers through every node;
//!   no read returns a version older than a put that had returned before the
//!   read began, also while a follower and then the leader are SIGSTOPped
//!   and after they are SIGCONTed.
//! - `t30_kill_holder`: SIGKILL of the node holding a line in M right after
//!   its put: the others read the value, Redis gets it.
//! - `t40_lru`: with `CACHE_CAPACITY=3`, the least recently used line is
//!   evicted and written back, and stays readable.
//! - `t50_redis_outage`: Redis SIGKILLed during traffic: puts and reads go
//!   on, locks and queues too; after Redis restarts it receives the latest
//!   value of every key written during the outage.
//! - `t60_bad_input`: bad cache requests get the contract's 4xx errors.
//! - `t70_events`: `/events` and the Redis channel `dsync.events` carry
//!   `cache.invalidated` and `cache.written_back`.

// Each topic binary uses a different part of the shared fixture.
#[allow(dead_code, unused_imports)]
#[path = "../common/mod.rs"]
mod common;

#[allow(dead_code)]
mod client;

mod t10_mesi_walk;
mod t20_no_stale_read;
mod t30_kill_holder;
mod t40_lru;
mod t50_redis_outage;
mod t60_bad_input;
mod t70_events;
