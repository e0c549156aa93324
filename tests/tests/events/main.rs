//! Black-box tests of `GET /events` (Server-Sent Events of committed
//! events): real `dsync serve` processes on 127.0.0.1.
//!
//! - `t10_stream`: a follower's stream carries the lock and queue events of
//!   writes sent through other nodes, in log order, each named by its type
//!   and carrying its entry's index; after the leader is SIGKILLed it
//!   carries `leader.changed` naming the new leader.

// Each topic binary uses a different part of the shared fixture.
#[allow(dead_code, unused_imports)]
#[path = "../common/mod.rs"]
mod common;

mod t10_stream;
