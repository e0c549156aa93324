//! Rule (API.md, conventions and "Distributed queue"): a malformed,
//! mistyped, incomplete, out-of-range or oversized queue request gets the
//! contract's 4xx error body, never a 5xx or a panic, on a follower and on
//! the leader alike; it changes nothing (no message produced, consumed,
//! acked or requeued, no queue created: every queue's stats are unchanged);
//! the node keeps serving. Values just inside the limits are accepted.
//!
//! Limits (decided for this server): queue, consumer and key names
//! 1..=256 bytes; `max` 1..=1000; `visibility_ms` 1..=43200000; `wait_ms`
//! 0..=300000; `delay_ms` >= 0; integers only; ids are 24 lowercase hex
//! characters, 1..=1000 per ack or nack; a message is at most
//! `MAX_VALUE_BYTES` (1 MiB) encoded, a body at most that plus 64 KiB;
//! `messages` is a non-empty array, given instead of (never with)
//! `message`. Ack/nack of an unknown queue is 404.

use std::time::Duration;

use serde_json::{json, Value};

use crate::client::{ids_of, Consume, Stats};
use crate::common::bad_input::Case;
use crate::common::fields::encode_query;
use crate::common::raw_http::post_raw;
use crate::common::{assert_contract_error, Cluster, ClusterOptions};

/// The longest name the contract allows, in bytes.
const NAME_BYTES_MAX: usize = 256;

/// The contract's largest message, encoded (`MAX_VALUE_BYTES` default).
const VALUE_BYTES_MAX: usize = 1024 * 1024;

/// Request bodies above this are refused whatever they contain.
const BODY_BYTES_MAX: usize = VALUE_BYTES_MAX + 64 * 1024;

/// Time allowed for a refused upload's response.
const RAW_TIMEOUT: Duration = Duration::from_secs(15);

/// The queue whose content must survive every bad request.
const Q: &str = "bad";

/// A queue that rejected requests name and must never come to exist.
const NEVER: &str = "bad.never";

/// A well-formed id that no message has.
const UNKNOWN_ID: &str = "0123456789abcdef01234567";

/// The bad requests; `leased` is the id of a message of `Q` in flight.
fn cases(leased: &str) -> Vec<Case> {
    let long = "x".repeat(NAME_BYTES_MAX + 1);
    // 129 two-byte characters: 129 characters, 258 bytes.
    let long_in_bytes = "é".repeat(NAME_BYTES_MAX / 2 + 1);
    let produce = |what: &str, body: Value| Case::post(what, "/queue/produce", body);
    let consume = |what: &str, field: &str, value: Value| {
        let mut body = json!({"queue": Q, "consumer": "bad-c", "max": 1, "visibility_ms": 1000, "wait_ms": 0});
        body[field] = value;
        Case::post(what, "/queue/consume", body)
    };
    let consume_without = |what: &str, field: &str| {
        let mut body = json!({"queue": Q, "consumer": "bad-c"});
        body.as_object_mut().expect("an object").remove(field);
        Case::post(what, "/queue/consume", body)
    };
    let ack = |what: &str, body: Value| Case::post(what, "/queue/ack", body);
    let nack = |what: &str, body: Value| Case::post(what, "/queue/nack", body);
    let bad_ids = [
        ("id of 3 characters", json!(["xyz"])),
        ("id of 23 hex characters", json!(["0123456789abcdef0123456"])),
        ("id of 25 hex characters", json!(["0123456789abcdef012345678"])),
        ("id in uppercase hex", json!(["0123456789ABCDEF01234567"])),
        ("id of 24 non-hex characters", json!(["ghijklmnopqrstuvwxyzghij"])),
        ("id is a number", json!([5])),
        ("the leased id and a malformed one", json!([leased, "nope"])),
        ("ids empty", json!([])),
        ("1001 ids", json!(vec![UNKNOWN_ID; 1001])),
        ("ids is a string", json!(leased)),
    ];
    let mut cases = vec![
        produce("queue missing", json!({"message": 1})),
        produce("queue empty", json!({"queue": "", "message": 1})),
        produce("queue of 257 bytes", json!({"queue": long, "message": 1})),
        produce("queue of 129 characters, 258 bytes", json!({"queue": long_in_bytes, "message": 1})),
        produce("queue is a number", json!({"queue": 7, "message": 1})),
        produce("neither message nor messages", json!({"queue": NEVER})),
        produce("both message and messages", json!({"queue": NEVER, "message": 1, "messages": [2]})),
        produce("messages empty", json!({"queue": NEVER, "messages": []})),
        produce("messages is a string", json!({"queue": NEVER, "messages": "one"})),
        produce("messages is an object", json!({"queue": NEVER, "messages": {"a": 1}})),
        produce("key empty", json!({"queue": NEVER, "message": 1, "key": ""})),
        produce("key of 257 bytes", json!({"queue": NEVER, "message": 1, "key": long})),
        produce("key is a number", json!({"queue": NEVER, "message": 1, "key": 5})),
        produce("body is an array", json!([{"queue": NEVER, "message": 1}])),
        Case::raw("truncated JSON", "/queue/produce", format!(r#"{{"queue": "{NEVER}", "message": "#)),
        Case::raw("empty body", "/queue/produce", String::new()),
        Case::raw("not JSON", "/queue/produce", "queue=bad&message=1".into()),
        consume_without("queue missing", "queue"),
        consume_without("consumer missing", "consumer"),
        consume("queue empty", "queue", json!("")),
        consume("queue of 257 bytes", "queue", json!(long)),
        consume("consumer empty", "consumer", json!("")),
        consume("consumer of 257 bytes", "consumer", json!(long)),
        consume("consumer is a number", "consumer", json!(3)),
        consume("max 0", "max", json!(0)),
        consume("max 1001", "max", json!(1001)),
        consume("max negative", "max", json!(-1)),
        consume("max not an integer", "max", json!(2.5)),
        consume("max a string", "max", json!("5")),
        consume("visibility_ms 0", "visibility_ms", json!(0)),
        consume("visibility_ms above 12 hours", "visibility_ms", json!(43_200_001)),
        consume("visibility_ms negative", "visibility_ms", json!(-1000)),
        consume("visibility_ms a string", "visibility_ms", json!("1000")),
        consume("wait_ms negative", "wait_ms", json!(-1)),
        consume("wait_ms above 300000", "wait_ms", json!(300_001)),
        consume("wait_ms not an integer", "wait_ms", json!(1.5)),
        Case::raw("truncated JSON", "/queue/consume", r#"{"queue": "bad", "consumer""#.into()),
        ack("queue missing", json!({"ids": [UNKNOWN_ID]})),
        ack("ids missing", json!({"queue": Q})),
        ack("queue of 257 bytes", json!({"queue": long, "ids": [UNKNOWN_ID]})),
        ack("unknown queue", json!({"queue": NEVER, "ids": [UNKNOWN_ID]})).answer(404, "not_found"),
        Case::raw("truncated JSON", "/queue/ack", r#"{"queue": "bad", "ids": ["#.into()),
        nack("queue missing", json!({"ids": [leased]})),
        nack("ids missing", json!({"queue": Q})),
        nack("unknown queue", json!({"queue": NEVER, "ids": [UNKNOWN_ID]})).answer(404, "not_found"),
        nack("delay_ms negative", json!({"queue": Q, "ids": [leased], "delay_ms": -1})),
        nack("delay_ms a string", json!({"queue": Q, "ids": [leased], "delay_ms": "10"})),
        nack("delay_ms not an integer", json!({"queue": Q, "ids": [leased], "delay_ms": 0.5})),
        Case::raw("not JSON", "/queue/nack", "ids=1".into()),
        Case::get("queue empty", "/queue/stats?queue=".into(), 400, "bad_request"),
        Case::get("queue of 257 bytes", format!("/queue/stats?queue={long}"), 400, "bad_request"),
        Case::get("unknown consistency", format!("/queue/stats?queue={Q}&consistency=sometimes"), 400, "bad_request"),
        Case::get("unknown consistency", "/queue/stats?consistency=sometimes".into(), 400, "bad_request"),
        Case::get("unknown queue", format!("/queue/stats?queue={NEVER}"), 404, "not_found"),
        Case::get("unknown queue route", "/queue/no_such_thing".into(), 404, "not_found"),
        Case::get("GET on a POST route", "/queue/produce".into(), 404, "not_found"),
    ];
    for (what, ids) in bad_ids {
        cases.push(ack(what, json!({"queue": Q, "ids": ids})));
        cases.push(nack(what, json!({"queue": Q, "ids": ids, "delay_ms": 0})));
    }
    cases
}

#[tokio::test]
async fn bad_queue_requests_get_contract_4xx_errors_and_change_nothing() {
    let cluster = Cluster::start("t60_queues_bad_input", ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader().await;
    let follower = cluster.followers_of(leader)[0];

    // Q: 3 messages, the first leased (in flight) for longer than the test.
    let ids = cluster.produce_batch_ok(follower, Q, &[json!(1), json!(2), json!(3)], Some("bad-key")).await;
    let leased = cluster.consume_ok(leader, &Consume::new(Q, "holder").visibility_ms(600_000)).await;
    assert_eq!(ids_of(&leased), ids[..1], "FIFO");
    let before = cluster.all_queue_stats(leader, None).await.unwrap_or_else(|e| panic!("{e}"));

    for id in [follower, leader] {
        let role = if id == leader { "leader" } else { "follower" };
        for case in cases(&ids[0]) {
            case.expect_rejected(&cluster, id, role).await;
        }
        oversized(&cluster, id, role).await;
        unchanged(&cluster, id, &before, &format!("after the bad requests on node{id} ({role})")).await;
    }
    // Nothing was taken either: the 2 ready messages come, in order.
    let got = cluster.consume_ok(follower, &Consume::new(Q, "after").max(10).visibility_ms(600_000)).await;
    assert_eq!(ids_of(&got), ids[1..], "the ready messages of {Q} after the bad requests");
    cluster.ack_expect(leader, Q, &ids, 3).await;

    limits_are_inclusive(&cluster, follower, leader).await;
}

/// Oversized messages and bodies get 413 `too_large` and produce nothing.
async fn oversized(cluster: &Cluster, id: u64, role: &str) {
    let big = "y".repeat(VALUE_BYTES_MAX + 1024);
    let single = json!({"queue": Q, "message": big});
    let context = format!("produce of a {} byte message on node{id} ({role})", big.len() + 2);
    let reply = cluster.post(id, "/queue/produce", &single).await.unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_contract_error(&reply, 413, "too_large", &context);
    still_serving(cluster, id, &context).await;

    // One message too large in a batch: the whole batch is refused.
    let batch = json!({"queue": Q, "messages": ["small", "z".repeat(VALUE_BYTES_MAX)]});
    let context = format!("produce of a batch with one message of {} bytes on node{id} ({role})", VALUE_BYTES_MAX + 2);
    let reply = cluster.post(id, "/queue/produce", &batch).await.unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_contract_error(&reply, 413, "too_large", &context);
    still_serving(cluster, id, &context).await;

    // A body far above the body limit, sent so that an early 413 is still read.
    let filler = "x".repeat(2 * BODY_BYTES_MAX);
    let body = format!(r#"{{"queue": "{Q}", "message": "{filler}"}}"#).into_bytes();
    let context = format!("POST /queue/produce with a {} byte body on node{id} ({role})", body.len());
    let reply = post_raw(cluster.port(id), "/queue/produce", "application/json", body, RAW_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_contract_error(&reply, 413, "too_large", &context);
    still_serving(cluster, id, &context).await;
}

/// Every queue's stats on node `id` equal `before`, and no queue was added.
async fn unchanged(cluster: &Cluster, id: u64, before: &std::collections::BTreeMap<String, Stats>, context: &str) {
    let now = cluster.all_queue_stats(id, None).await.unwrap_or_else(|e| panic!("{context}: {e}"));
    assert_eq!(
        now.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "{context}: the queues listed by node{id} changed"
    );
    for (q, stats) in &now {
        assert_eq!(
            stats.counts(),
            before[q].counts(),
            "{context}: {q} changed: {} (before {})",
            stats.raw,
            before[q].raw
        );
    }
    let reply = cluster.get(id, &format!("/queue/stats?queue={NEVER}")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_contract_error(&reply, 404, "not_found", &format!("{context}: stats of {NEVER}"));
}

/// Values at the limits are accepted: the limits are not off by one, and
/// names count bytes, not characters. Unknown fields are ignored.
async fn limits_are_inclusive(cluster: &Cluster, follower: u64, leader: u64) {
    let longest = "q".repeat(NAME_BYTES_MAX);
    let longest_key = "k".repeat(NAME_BYTES_MAX);
    let two_byte = "é".repeat(NAME_BYTES_MAX / 2);
    for (q, key) in [(&longest, Some(longest_key.as_str())), (&two_byte, None)] {
        let id = cluster.produce_ok(follower, q, &json!({"limits": true}), key).await;
        let request = Consume::new(q, &"c".repeat(NAME_BYTES_MAX)).max(1000).visibility_ms(43_200_000).wait_ms(300_000);
        let got = cluster.consume_ok(leader, &request).await;
        assert_eq!(
            ids_of(&got),
            std::slice::from_ref(&id),
            "consume with every limit at its maximum from {}",
            encode_query(q)
        );
        assert_eq!(got[0].key.as_deref(), key, "the 256-byte key comes back");
        cluster.nack_expect(follower, q, std::slice::from_ref(&id), Some(0), 1).await;
        cluster.ack_expect(leader, q, &[id], 1).await;
    }

    // A message of exactly MAX_VALUE_BYTES encoded is accepted and comes back whole.
    let q = "limits.big";
    let message = json!("m".repeat(VALUE_BYTES_MAX - 2));
    assert_eq!(message.to_string().len(), VALUE_BYTES_MAX);
    let id = cluster.produce_ok(follower, q, &message, None).await;
    let got = cluster.consume_ok(follower, &Consume::new(q, "big").visibility_ms(60_000)).await;
    assert_eq!(ids_of(&got), std::slice::from_ref(&id), "the largest allowed message");
    assert!(got[0].message == message, "the largest allowed message comes back unchanged");
    cluster.ack_expect(leader, q, &[id], 1).await;
    // 1000 ids in one ack or nack are fine (well-formed, unknown: they count 0).
    let many = vec![UNKNOWN_ID.to_owned(); 1000];
    cluster.ack_expect(follower, q, &many, 0).await;
    cluster.nack_expect(leader, q, &many, Some(0), 0).await;

    // An unknown field is ignored.
    let body = json!({"queue": "limits.extra", "message": 1, "colour": "blue"});
    let reply = cluster.post(leader, "/queue/produce", &body).await.unwrap_or_else(|e| panic!("{e}"));
    crate::client::parse_produced(&reply, "limits.extra", 1)
        .unwrap_or_else(|e| panic!("produce with an unknown field: {e}"));
}

/// Asserts that node `id` still answers `/health` after `context`.
async fn still_serving(cluster: &Cluster, id: u64, context: &str) {
    if let Err(e) = cluster.health(id).await {
        panic!("node{id} stopped serving /health after {context}: {e}");
    }
}
