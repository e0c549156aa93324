//! Rule: the CLI speaks the HTTP contract for the user. Success exits 0,
//! "not granted" and "not found" exit 1, bad input exits 2, an unreachable
//! cluster exits 3; `--json` prints the server's answer for scripts; several
//! `--endpoint`s fail over past a dead one; `dsync bench` reports its
//! figures as JSON with `--json`.

use std::process::Output;

use serde_json::Value;

use crate::common::cluster::dsync_bin;
use crate::common::ports::free_port;
use crate::common::{Cluster, ClusterOptions};

/// Runs `dsync <args>` to completion (off the async runtime's threads).
async fn dsync(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(dsync_bin()).args(&args).output().expect("run the dsync binary")
    })
    .await
    .expect("the CLI process finished")
}

/// Runs a client command against `endpoints` and returns (exit code, stdout).
async fn run(endpoints: &[String], args: &[&str]) -> (i32, String) {
    let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    for endpoint in endpoints {
        full.push("--endpoint".into());
        full.push(endpoint.clone());
    }
    let output = dsync(full).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code().unwrap_or(-1);
    eprintln!("dsync {args:?} -> exit {code}\n{stdout}{stderr}");
    (code, stdout)
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("--json printed non-JSON {stdout:?}: {e}"))
}

#[tokio::test]
async fn cli_commands_print_answers_and_exit_codes_scripts_can_rely_on() {
    let cluster = Cluster::start("cli_t10_commands", ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.followers_of(leader)[0];
    let dead = format!("http://127.0.0.1:{}", free_port());
    // A dead endpoint first: every command must fail over to the live one.
    let endpoints = [dead.clone(), cluster.api().addr(follower)];

    let (code, out) = run(&endpoints, &["status"]).await;
    assert_eq!(code, 0, "status through a dead then a live endpoint: {out}");
    assert!(out.contains(&format!("node{leader}")), "status names the leader node{leader}: {out}");

    // Locks: granted (0), taken by someone else (1), bad input (2).
    let (code, out) = run(&endpoints, &["lock", "acquire", "acct:42", "--owner", "txn-17", "--json"]).await;
    assert_eq!(code, 0, "a free lock is granted: {out}");
    let grant = json(&out);
    assert_eq!(grant["granted"], true, "{grant}");
    assert!(grant["fencing_token"].as_u64().is_some(), "the grant carries a fencing token: {grant}");
    let (code, out) = run(&endpoints, &["lock", "acquire", "acct:42", "--owner", "txn-18"]).await;
    assert_eq!(code, 1, "a held lock without waiting is 'not granted': {out}");
    let (code, _) = run(&endpoints, &["lock", "acquire", "acct:42", "--owner", "o", "--ttl-ms", "0"]).await;
    assert_eq!(code, 2, "ttl_ms 0 is bad input");
    let (code, out) = run(&endpoints, &["lock", "release", "acct:42", "--owner", "txn-17", "--json"]).await;
    assert_eq!((code, json(&out)["released"].clone()), (0, Value::Bool(true)), "release: {out}");

    // Queues: produce, consume what was produced, ack it.
    let (code, out) = run(&endpoints, &["queue", "produce", "orders", r#"{"order":1}"#, "--json"]).await;
    assert_eq!(code, 0, "produce: {out}");
    let id = json(&out)["ids"][0].as_str().map(str::to_owned).unwrap_or_else(|| panic!("produce ids: {out}"));
    let (code, out) = run(&endpoints, &["queue", "consume", "orders", "--consumer", "w1", "--json"]).await;
    assert_eq!(code, 0, "consume: {out}");
    let consumed = json(&out);
    assert_eq!(consumed["messages"][0]["id"], Value::String(id.clone()), "{consumed}");
    assert_eq!(consumed["messages"][0]["message"], serde_json::json!({"order": 1}), "{consumed}");
    let (code, out) = run(&endpoints, &["queue", "ack", "orders", &id, "--json"]).await;
    assert_eq!((code, json(&out)["acked"].clone()), (0, Value::from(1)), "ack: {out}");

    // Cache: put, get (human output shows the value), missing key (1).
    let (code, out) = run(&endpoints, &["cache", "put", "user:1", r#"{"name":"ada"}"#]).await;
    assert_eq!(code, 0, "cache put: {out}");
    let (code, out) = run(&endpoints, &["cache", "get", "user:1"]).await;
    assert_eq!(code, 0, "cache get: {out}");
    assert!(out.contains(r#"{"name":"ada"}"#), "the human output shows the value: {out}");
    let (code, out) = run(&endpoints, &["cache", "get", "nobody", "--json"]).await;
    assert_eq!(code, 1, "a missing key is 'not found': {out}");
    assert_eq!(json(&out)["error"]["code"], "not_found", "--json prints the error body: {out}");

    // The load generator: a short cache run, its figures as JSON.
    let bench = ["bench", "cache", "--duration", "1", "--clients", "2", "--keys", "20", "--json"];
    let (code, out) = run(&endpoints[1..], &bench).await;
    assert_eq!(code, 0, "dsync bench cache: {out}");
    let figures = json(&out);
    assert!(figures["completed"].as_u64().is_some_and(|n| n > 0), "the bench completed operations: {figures}");
    assert_eq!(figures["errors"], 0, "no operation failed on a healthy cluster: {figures}");
    assert!(figures["hit_ratio"].as_f64().is_some(), "the cache bench reports its hit ratio: {figures}");
    assert!(figures["latency_ms"]["get"]["p99"].as_f64().is_some(), "get latency quantiles: {figures}");

    // Nothing reachable: 3.
    let (code, out) = run(&[dead], &["cache", "get", "user:1", "--json"]).await;
    assert_eq!(code, 3, "no endpoint reachable is 'unavailable': {out}");
    assert_eq!(json(&out)["error"]["code"], "unavailable", "{out}");
}
