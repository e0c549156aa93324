//! Rule (API.md, conventions and "Distributed locks"): a malformed, mistyped,
//! incomplete or out-of-range lock request gets the contract's 4xx error
//! body, never a 5xx or a panic, on a follower and on the leader alike; it
//! changes nothing (no lock is taken or queued); and the node keeps serving.
//! Values just inside the limits are accepted.
//!
//! Limits (decided for this server): names 1..=256 bytes of UTF-8 (bytes,
//! not characters); `ttl_ms` 1..=86400000; `wait_ms` 0..=300000; integers
//! only; `mode` is `shared` or `exclusive`.

use serde_json::{json, Value};

use crate::client::Acquire;
use crate::common::bad_input::Case;
use crate::common::fields::encode_query;
use crate::common::{Cluster, ClusterOptions};

/// The longest name the contract allows, in bytes.
const NAME_BYTES_MAX: usize = 256;

fn cases() -> Vec<Case> {
    let long = "x".repeat(NAME_BYTES_MAX + 44);
    let long_by_one = "y".repeat(NAME_BYTES_MAX + 1);
    // 129 two-byte characters: 129 characters, 258 bytes.
    let long_in_bytes = "é".repeat(NAME_BYTES_MAX / 2 + 1);
    let acquire = |what: &str, body: Value| Case::post(what, "/locks/acquire", body);
    let with = |field: &str, value: Value| {
        let mut body =
            json!({"resource": "bad:r", "owner": "bad-o", "mode": "exclusive", "ttl_ms": 1000, "wait_ms": 0});
        body[field] = value;
        body
    };
    vec![
        acquire("owner missing", json!({"resource": "bad:r"})),
        acquire("resource missing", json!({"owner": "bad-o"})),
        acquire("owner empty", with("owner", json!(""))),
        acquire("resource empty", with("resource", json!(""))),
        acquire("resource of 300 bytes", with("resource", json!(long))),
        acquire("owner of 257 bytes", with("owner", json!(long_by_one))),
        acquire("resource of 129 characters, 258 bytes", with("resource", json!(long_in_bytes))),
        acquire("unknown mode", with("mode", json!("banana"))),
        acquire("mode is a number", with("mode", json!(1))),
        acquire("ttl_ms negative", with("ttl_ms", json!(-1))),
        acquire("ttl_ms 0", with("ttl_ms", json!(0))),
        acquire("ttl_ms above one day", with("ttl_ms", json!(86_400_001))),
        acquire("ttl_ms not an integer", with("ttl_ms", json!(1.5))),
        acquire("ttl_ms a string", with("ttl_ms", json!("1000"))),
        acquire("wait_ms negative", with("wait_ms", json!(-1))),
        acquire("wait_ms above 300000", with("wait_ms", json!(300_001))),
        acquire("wait_ms not an integer", with("wait_ms", json!(2.5))),
        acquire("wait_ms a string", with("wait_ms", json!("10"))),
        acquire("resource is a number", with("resource", json!(42))),
        acquire("owner is a list", with("owner", json!(["bad-o"]))),
        acquire("body is an array", json!([{"resource": "bad:r", "owner": "bad-o"}])),
        Case::raw("truncated JSON", "/locks/acquire", r#"{"resource": "bad:r", "owner": "#.into()),
        Case::raw("empty body", "/locks/acquire", String::new()),
        Case::raw("unquoted keys", "/locks/acquire", "{resource: bad, owner: o}".into()),
        Case::post("owner missing", "/locks/release", json!({"resource": "bad:r"})),
        Case::post("resource missing", "/locks/release", json!({"owner": "bad-o"})),
        Case::post("resource of 300 bytes", "/locks/release", json!({"resource": long, "owner": "bad-o"})),
        Case::post("owner is a number", "/locks/release", json!({"resource": "bad:r", "owner": 7})),
        Case::raw("truncated JSON", "/locks/release", "{\"resource\"".into()),
        Case::post("owner missing", "/locks/renew", json!({"ttl_ms": 1000})),
        Case::post("owner of 300 bytes", "/locks/renew", json!({"owner": long, "ttl_ms": 1000})),
        Case::post("ttl_ms 0", "/locks/renew", json!({"owner": "bad-o", "ttl_ms": 0})),
        Case::post("ttl_ms negative", "/locks/renew", json!({"owner": "bad-o", "ttl_ms": -5})),
        Case::post("ttl_ms a string", "/locks/renew", json!({"owner": "bad-o", "ttl_ms": "soon"})),
        Case::raw("not JSON", "/locks/renew", "owner=bad-o".into()),
        Case::get("resource of 300 bytes", format!("/locks?resource={long}"), 400, "bad_request"),
        Case::get("resource empty", "/locks?resource=".into(), 400, "bad_request"),
        Case::get("unknown consistency", "/locks?resource=bad:r&consistency=sometimes".into(), 400, "bad_request"),
        Case::get("unknown consistency", "/locks?consistency=sometimes".into(), 400, "bad_request"),
        Case::get("unknown lock route", "/locks/no_such_thing".into(), 404, "not_found"),
        Case::get("GET on a POST route", "/locks/acquire".into(), 404, "not_found"),
    ]
}

#[tokio::test]
async fn bad_lock_requests_get_contract_4xx_errors_and_change_nothing() {
    let cluster = Cluster::start("t50_locks_bad_input", ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.followers_of(leader)[0];

    for id in [follower, leader] {
        let role = if id == leader { "leader" } else { "follower" };
        for case in cases() {
            case.expect_rejected(&cluster, id, role).await;
        }
        // Nothing was taken or queued by any of them.
        let held = cluster.held_locks(id, None).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(held.is_empty(), "rejected requests took locks (node{id} GET /locks): {held:?}");
        let state = cluster.lock_state(id, "bad:r").await.unwrap_or_else(|e| panic!("{e}"));
        assert!(state.is_free(), "rejected requests left state on bad:r: {}", state.raw);
    }

    limits_are_inclusive(&cluster, follower, leader).await;
    let held = cluster.held_locks(leader, None).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(held.is_empty(), "every accepted request was released, yet GET /locks lists {held:?}");
}

/// Values at the limits are accepted: the limits are not off by one, and
/// names count bytes, not characters. Unknown fields are ignored.
async fn limits_are_inclusive(cluster: &Cluster, follower: u64, leader: u64) {
    let longest = "r".repeat(NAME_BYTES_MAX);
    let longest_owner = "o".repeat(NAME_BYTES_MAX);
    let two_byte = "é".repeat(NAME_BYTES_MAX / 2);
    let requests = [
        Acquire::exclusive(&longest, &longest_owner),
        Acquire::shared(&two_byte, "limits-owner"),
        Acquire::exclusive("limits:max", "limits-owner").ttl_ms(86_400_000).wait_ms(300_000),
    ];
    for request in &requests {
        cluster.acquire_granted(follower, request).await;
        let state = cluster.lock_state(leader, &request.resource).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            state.holder_owners(),
            [request.owner.as_str()],
            "GET /locks?resource={}",
            encode_query(&request.resource)
        );
        cluster.release_expect(leader, &request.resource, &request.owner, true).await;
    }
    // An unknown field is ignored.
    let body = json!({"resource": "limits:extra", "owner": "limits-owner", "colour": "blue"});
    let reply = cluster.post(leader, "/locks/acquire", &body).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.status, 200, "acquire with an unknown field: {reply}");
    cluster.release_expect(follower, "limits:extra", "limits-owner", true).await;
}
