//! Rules (API.md, conventions and "Coherent cache (MESI)"): cache keys are
//! 1..=256 bytes of UTF-8 strings; a value is any JSON value of at most
//! `MAX_VALUE_BYTES` encoded; a bad request gets the contract's error (400
//! `bad_request`, 413 `too_large`, 404 `not_found` for a key that exists
//! nowhere), never a 5xx, and changes nothing. The limits are inclusive.

use serde_json::json;

use crate::client::KEY_BYTES_MAX;
use crate::common::bad_input::Case;
use crate::common::fields::encode_query;
use crate::common::{assert_contract_error, Cluster, ClusterOptions};

/// `MAX_VALUE_BYTES` of this test: small, so the limit is cheap to cross.
const VALUE_BYTES_MAX: usize = 1024;

/// A key that is never put.
const UNKNOWN: &str = "never-put";

fn cases() -> Vec<Case> {
    let long = "x".repeat(KEY_BYTES_MAX + 1);
    // 129 two-byte characters: 258 bytes.
    let long_in_bytes = "é".repeat(KEY_BYTES_MAX / 2 + 1);
    let mut cases = vec![
        Case::post("key missing", "/cache/put", json!({"value": 1})),
        Case::post("key is a number", "/cache/put", json!({"key": 5, "value": 1})),
        Case::post("key is null", "/cache/put", json!({"key": null, "value": 1})),
        Case::post("key is an array", "/cache/put", json!({"key": ["a"], "value": 1})),
        Case::post("key empty", "/cache/put", json!({"key": "", "value": 1})),
        Case::post("key of 257 bytes", "/cache/put", json!({"key": long, "value": 1})),
        Case::post("key of 129 characters, 258 bytes", "/cache/put", json!({"key": long_in_bytes, "value": 1})),
        Case::post("value missing", "/cache/put", json!({"key": "bad-no-value"})),
        Case::post("body is an array", "/cache/put", json!([{"key": "bad-array", "value": 1}])),
        Case::raw("truncated JSON", "/cache/put", r#"{"key": "bad-truncated", "value": "#.into()),
        Case::raw("empty body", "/cache/put", String::new()),
        Case::raw("not JSON", "/cache/put", "key=bad&value=1".into()),
        Case::post(
            &format!("value of {} bytes encoded", VALUE_BYTES_MAX + 1),
            "/cache/put",
            json!({"key": "bad-big", "value": "v".repeat(VALUE_BYTES_MAX - 1)}),
        )
        .answer(413, "too_large"),
        Case::post(
            "object value above the limit",
            "/cache/put",
            json!({"key": "bad-big", "value": {"a": "w".repeat(4 * VALUE_BYTES_MAX)}}),
        )
        .answer(413, "too_large"),
        Case::get("key missing", "/cache/get".into(), 400, "bad_request"),
        Case::get("key empty", "/cache/get?key=".into(), 400, "bad_request"),
        Case::get("key of 257 bytes", format!("/cache/get?key={long}"), 400, "bad_request"),
        Case::get(
            "key of 258 bytes in 129 characters",
            format!("/cache/get?key={}", encode_query(&long_in_bytes)),
            400,
            "bad_request",
        ),
        Case::get("unknown key", format!("/cache/get?key={UNKNOWN}"), 404, "not_found"),
        Case::get("unknown cache route", "/cache/no_such_thing".into(), 404, "not_found"),
        Case::get("GET on a POST route", "/cache/put".into(), 404, "not_found"),
    ];
    for path in ["/cache/invalidate", "/cache/delete"] {
        cases.extend([
            Case::post("key missing", path, json!({})),
            Case::post("key is a number", path, json!({"key": 7})),
            Case::post("key empty", path, json!({"key": ""})),
            Case::post("key of 257 bytes", path, json!({"key": long})),
            Case::raw("truncated JSON", path, r#"{"key": "#.into()),
            Case::raw("not JSON", path, "key=x".into()),
            Case::post("unknown key", path, json!({"key": UNKNOWN})).answer(404, "not_found"),
        ]);
    }
    cases
}

#[tokio::test]
async fn bad_cache_requests_get_contract_errors_and_change_nothing() {
    let options = ClusterOptions::default().env("MAX_VALUE_BYTES", VALUE_BYTES_MAX);
    let cluster = Cluster::start("t60_cache_bad_input", options).await;
    let nodes = cluster.nodes_by_role().await;
    let kept = json!({"kept": true});
    let written = cluster.cache_put(nodes.a, "bad-kept", &kept).await.unwrap_or_else(|e| panic!("{e}"));

    for id in [nodes.a, nodes.leader] {
        let role = if id == nodes.leader { "leader" } else { "follower" };
        for case in cases() {
            case.expect_rejected(&cluster, id, role).await;
        }
    }
    // Nothing was created, and the existing key is unchanged.
    for id in 1..=3 {
        let state = cluster.cache_state_ok(id, "after the bad requests").await;
        let strays: Vec<&str> = state.keys().into_iter().filter(|k| *k != "bad-kept").collect();
        assert!(strays.is_empty(), "node{id} holds lines of rejected requests: {}", state.shown());
        for name in ["bad-no-value", "bad-array", "bad-truncated", "bad-big", UNKNOWN] {
            let reply = cluster.cache_get_reply(id, name).await.unwrap_or_else(|e| panic!("{e}"));
            assert_contract_error(
                &reply,
                404,
                "not_found",
                &format!("get of {name} (only rejected requests named it)"),
            );
        }
        let read = cluster.cache_get(id, "bad-kept").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((&read.value, read.version), (&kept, written.version), "node{id}: bad-kept changed: {read:?}");
    }

    limits_are_inclusive(&cluster, nodes.b).await;
}

/// A 256-byte key, a 128-character two-byte key and a value of exactly
/// `MAX_VALUE_BYTES` encoded are accepted and read back unchanged; unknown
/// fields are ignored.
async fn limits_are_inclusive(cluster: &Cluster, id: u64) {
    let value = json!("m".repeat(VALUE_BYTES_MAX - 2));
    assert_eq!(value.to_string().len(), VALUE_BYTES_MAX);
    for name in ["k".repeat(KEY_BYTES_MAX), "é".repeat(KEY_BYTES_MAX / 2)] {
        let written = cluster
            .cache_put(id, &name, &value)
            .await
            .unwrap_or_else(|e| panic!("put with a {}-byte key and a {VALUE_BYTES_MAX}-byte value: {e}", name.len()));
        for reader in 1..=3 {
            let read = cluster.cache_get(reader, &name).await.unwrap_or_else(|e| panic!("{e}"));
            assert!(
                read.value == value && read.version == written.version,
                "the largest key and value come back whole"
            );
        }
        cluster
            .cache_invalidate(id, &name)
            .await
            .unwrap_or_else(|e| panic!("invalidate a {}-byte key: {e}", name.len()));
        cluster.cache_delete(id, &name).await.unwrap_or_else(|e| panic!("delete a {}-byte key: {e}", name.len()));
    }
    let body = json!({"key": "bad-extra", "value": 1, "colour": "blue"});
    let reply = cluster.post(id, "/cache/put", &body).await.unwrap_or_else(|e| panic!("{e}"));
    crate::client::parse_written(&reply, "bad-extra").unwrap_or_else(|e| panic!("put with an unknown field: {e}"));
}
