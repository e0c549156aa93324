//! The dsync server: everything the `dsync` binary runs, as a library so
//! benches can measure its hot parts (the node-local cache) directly.
//!
//! Modules: [`config`] (settings), [`serve`] (one node), [`api`] (HTTP
//! routes), [`cache`] (the node's side of the coherent cache: its LRU, read
//! lease, backing memory and pub/sub), [`metrics`], [`logging`],
//! [`local_cluster`] (`dsync cluster`), [`bench`] (`dsync bench`), [`cli`]
//! (the client commands `dsync status|lock|queue|cache`).

pub mod api;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod config;
pub mod local_cluster;
pub mod logging;
pub mod metrics;
pub mod serve;
