//! Black-box tests of the `dsync` command-line client (`dsync status`,
//! `lock`, `queue`, `cache`) against a real 3-node cluster: what a user
//! types, what it prints, and the exit codes scripts rely on (0 success,
//! 1 not granted / not found, 2 bad input, 3 unavailable).
//!
//! - `t10_commands`: every command family, `--json`, endpoint failover past
//!   a dead endpoint, and each exit code.

// Each topic binary uses a different part of the shared fixture.
#[allow(dead_code, unused_imports)]
#[path = "../common/mod.rs"]
mod common;

mod t10_commands;
