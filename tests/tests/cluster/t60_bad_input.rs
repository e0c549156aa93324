//! Rule (API.md, conventions): bad input never panics a node and never gets
//! a 5xx. Each bad request gets the contract's 4xx status and error body
//! `{"error":{"code":..,"message":..}}`, on the leader and on a follower
//! alike, and the node keeps serving afterwards.

use std::time::Duration;

use serde_json::json;

use crate::common::raw_http::post_raw;
use crate::common::{assert_contract_error, Cluster, ClusterOptions, Reply, CONVERGE_TIMEOUT};

/// The contract's largest `data`/message value, encoded.
const VALUE_BYTES_MAX: usize = 1024 * 1024;

/// Request bodies above about this size are refused whatever they contain.
const BODY_BYTES_MAX: usize = VALUE_BYTES_MAX + 64 * 1024;

/// Time allowed for a refused upload's response.
const RAW_TIMEOUT: Duration = Duration::from_secs(15);

/// A bad request and the contract's answer to it.
struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    body: &'static str,
    status: u16,
    code: &'static str,
}

/// Requests that are malformed, mistyped, incomplete or aimed nowhere.
#[rustfmt::skip]
const CASES: &[Case] = &[
    Case { what: "truncated JSON", method: "POST", path: "/raft/append", body: r#"{"data": "#, status: 400, code: "bad_request" },
    Case { what: "empty body", method: "POST", path: "/raft/append", body: "", status: 400, code: "bad_request" },
    Case { what: "unquoted keys", method: "POST", path: "/cluster/add", body: "{node_id: node4}", status: 400, code: "bad_request" },
    Case { what: "array instead of object", method: "POST", path: "/cluster/remove", body: r#"["node4"]"#, status: 400, code: "bad_request" },
    Case { what: "node_id is a number", method: "POST", path: "/cluster/add", body: r#"{"node_id": 5}"#, status: 400, code: "bad_request" },
    Case { what: "node_id is a number, addr given", method: "POST", path: "/cluster/add", body: r#"{"node_id": 5, "addr": "http://127.0.0.1:1"}"#, status: 400, code: "bad_request" },
    Case { what: "addr is a number", method: "POST", path: "/cluster/add", body: r#"{"node_id": "node9", "addr": 42}"#, status: 400, code: "bad_request" },
    Case { what: "node_id is not nodeN", method: "POST", path: "/cluster/add", body: r#"{"node_id": "banana", "addr": "http://127.0.0.1:1"}"#, status: 400, code: "bad_request" },
    Case { what: "node_id missing", method: "POST", path: "/cluster/add", body: r#"{"addr": "http://127.0.0.1:1"}"#, status: 400, code: "bad_request" },
    Case { what: "node_id missing", method: "POST", path: "/cluster/remove", body: "{}", status: 400, code: "bad_request" },
    Case { what: "node_id is a list", method: "POST", path: "/cluster/remove", body: r#"{"node_id": ["node4"]}"#, status: 400, code: "bad_request" },
    Case { what: "data missing", method: "POST", path: "/raft/append", body: r#"{"dta": 1}"#, status: 400, code: "bad_request" },
    Case { what: "from is not a number", method: "GET", path: "/raft/log?from=abc&limit=10", body: "", status: 400, code: "bad_request" },
    Case { what: "limit is negative", method: "GET", path: "/raft/log?from=1&limit=-3", body: "", status: 400, code: "bad_request" },
    Case { what: "unknown route", method: "GET", path: "/no/such/route", body: "", status: 404, code: "not_found" },
    Case { what: "unknown route", method: "POST", path: "/raft/no_such_thing", body: "{}", status: 404, code: "not_found" },
];

#[tokio::test]
async fn bad_requests_get_contract_4xx_errors_and_node_keeps_serving() {
    let cluster = Cluster::start("t60_bad_input", ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.followers_of(leader)[0];

    for id in [follower, leader] {
        let role = if id == leader { "leader" } else { "follower" };
        for case in CASES {
            let context = format!("{} {} ({}) on node{id} ({role})", case.method, case.path, case.what);
            let reply = match case.method {
                "GET" => cluster.get(id, case.path).await,
                _ => cluster.post_bytes(id, case.path, Some("application/json"), case.body.as_bytes().to_vec()).await,
            }
            .unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_contract_error(&reply, case.status, case.code, &context);
            still_serving(&cluster, id, &context).await;
        }
        oversized(&cluster, id, role).await;
    }

    // Writes still work after all that.
    cluster
        .append_retrying(&[follower, leader], &json!({"test": "t60", "after_bad_input": true}), CONVERGE_TIMEOUT)
        .await;
}

/// Too-large requests get 413 `too_large`; a large value under the limit is fine.
async fn oversized(cluster: &Cluster, id: u64, role: &str) {
    // A body far above the limit, sent so that an early 413 is still read.
    let filler = "x".repeat(2 * BODY_BYTES_MAX);
    let body = format!(r#"{{"data": "{filler}"}}"#).into_bytes();
    let context = format!("POST /raft/append with a {} byte body on node{id} ({role})", body.len());
    let reply = post_raw(cluster.port(id), "/raft/append", "application/json", body, RAW_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_contract_error(&reply, 413, "too_large", &context);
    still_serving(cluster, id, &context).await;

    // A body under the body limit whose `data` alone is above the value limit.
    let filler = "y".repeat(VALUE_BYTES_MAX + 1024);
    let context = format!("POST /raft/append with {} bytes of data on node{id} ({role})", filler.len() + 2);
    let reply: Reply =
        cluster.post(id, "/raft/append", &json!({ "data": filler })).await.unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_contract_error(&reply, 413, "too_large", &context);
    still_serving(cluster, id, &context).await;

    // A quarter of the value limit is an ordinary entry: the limit is not too low.
    let data = json!({"test": "t60", "filler": "z".repeat(VALUE_BYTES_MAX / 4)});
    cluster.append_retrying(&[id], &data, CONVERGE_TIMEOUT).await;
}

/// Asserts that node `id` still answers `/health` after `context`.
async fn still_serving(cluster: &Cluster, id: u64, context: &str) {
    if let Err(e) = cluster.health(id).await {
        panic!("node{id} stopped serving /health after {context}: {e}");
    }
}
