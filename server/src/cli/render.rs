//! Human output of the command-line client: one short sentence or a small
//! table per answer body. Pure functions of the JSON the server sent (and
//! the current time where a lease is shown as "expires in"), so they are
//! tested on sample bodies; `--json` bypasses them entirely.
//!
//! Fields are read leniently (a missing one shows as `?` or empty) so that a
//! newer or older server never makes the client fail after the request
//! itself succeeded.

use serde_json::Value;

/// A JSON value for a person: strings without quotes, anything else compact
/// JSON (`null` for a missing field).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A duration in milliseconds as seconds with one decimal: `30.0 s`.
fn seconds(ms: i64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// Time left until `at_ms` (a `*_ms` timestamp of the leader's clock).
fn until(at: &Value, now_ms: u64) -> String {
    at.as_i64().map_or_else(|| "?".to_string(), |at| seconds(at - now_ms as i64))
}

/// Time since `since_ms`.
fn since(at: &Value, now_ms: u64) -> String {
    at.as_i64().map_or_else(|| "?".to_string(), |at| seconds(now_ms as i64 - at))
}

/// The elements of an array field (none if absent or not an array).
fn items<'a>(body: &'a Value, field: &str) -> &'a [Value] {
    body[field].as_array().map_or(&[], Vec::as_slice)
}

/// Left-aligned columns separated by two spaces, with a header row.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:width$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut lines = vec![line(header.to_vec())];
    lines.extend(rows.iter().map(|row| line(row.iter().map(String::as_str).collect())));
    lines.join("\n")
}

/// `dsync status`: which node answered and how it is doing, the leader, and
/// the members with their replication progress (known on the leader only).
pub fn status(endpoint: &str, health: &Value, cluster: &Value, leader: &Value) -> String {
    let leader_name = match &leader["leader"] {
        Value::Null => "none (no leader known)".to_string(),
        name => format!("{} at {}", text(name), text(&leader["leader_addr"])),
    };
    let rows: Vec<Vec<String>> = items(cluster, "members")
        .iter()
        .map(|m| {
            let voter = if m["voter"].as_bool() == Some(true) { "yes" } else { "no (learner)" };
            let matched = if m["matched_index"].is_null() { "-".to_string() } else { text(&m["matched_index"]) };
            vec![text(&m["node_id"]), text(&m["addr"]), voter.to_string(), matched]
        })
        .collect();
    format!(
        "endpoint  {endpoint}: {} is {} ({}), commit {}, applied {}\nleader    {leader_name}, term {}\n\n{}",
        text(&health["node_id"]),
        text(&health["role"]),
        text(&health["status"]),
        text(&health["commit_index"]),
        text(&health["applied_index"]),
        text(&leader["term"]),
        table(&["NODE", "ADDR", "VOTER", "MATCHED"], &rows),
    )
}

/// `dsync lock acquire`: the grant, its fencing token and remaining lease.
pub fn acquired(body: &Value, now_ms: u64) -> String {
    format!(
        "granted {} to {} ({}), fencing token {}, expires in {}",
        text(&body["resource"]),
        text(&body["owner"]),
        text(&body["mode"]),
        text(&body["fencing_token"]),
        until(&body["expires_at_ms"], now_ms),
    )
}

/// `dsync lock release`: whether the owner held the lock (not holding it is
/// not an error: release is idempotent).
pub fn released(body: &Value, resource: &str, owner: &str) -> String {
    if body["released"].as_bool() == Some(true) {
        format!("released {resource} (held by {owner})")
    } else {
        format!("{owner} did not hold {resource}; nothing released")
    }
}

/// `dsync lock renew`: how many leases the keepalive extended.
pub fn renewed(body: &Value, owner: &str) -> String {
    format!("renewed {} lock(s) of {owner}", text(&body["renewed"]))
}

/// `dsync lock list`: one lock (`GET /locks?resource=`) or every held lock
/// (`{"locks": [...]}`), each with its holders and waiters.
pub fn locks(body: &Value, now_ms: u64) -> String {
    let one_lock = |lock: &Value| {
        let mut lines = match &lock["mode"] {
            Value::Null => vec![format!("{}: free", text(&lock["resource"]))],
            mode => vec![format!("{}: {}", text(&lock["resource"]), text(mode))],
        };
        for h in items(lock, "holders") {
            let (owner, token, expiry) =
                (text(&h["owner"]), text(&h["fencing_token"]), until(&h["expires_at_ms"], now_ms));
            lines.push(format!("  holder {owner}  token {token}  expires in {expiry}"));
        }
        for w in items(lock, "waiters") {
            let (owner, mode, waited) = (text(&w["owner"]), text(&w["mode"]), since(&w["since_ms"], now_ms));
            lines.push(format!("  waiter {owner} ({mode})  waiting {waited}"));
        }
        lines.join("\n")
    };
    match body.get("locks") {
        Some(Value::Array(all)) if all.is_empty() => "no locks held".to_string(),
        Some(Value::Array(all)) => all.iter().map(one_lock).collect::<Vec<_>>().join("\n"),
        _ => one_lock(body),
    }
}

/// `dsync lock wait-for`: the wait-for graph as `waiter -> holder (resource)`.
pub fn wait_for(body: &Value) -> String {
    let mut lines: Vec<String> = items(body, "edges")
        .iter()
        .map(|e| format!("{} -> {} ({})", text(&e["waiter"]), text(&e["holder"]), text(&e["resource"])))
        .collect();
    if lines.is_empty() {
        lines.push("no one is waiting".to_string());
    }
    lines.push(format!("deadlocks resolved: {}", text(&body["deadlocks_resolved"])));
    lines.join("\n")
}

/// `dsync queue produce`: the ids of the new messages.
pub fn produced(body: &Value) -> String {
    let ids: Vec<String> = items(body, "ids").iter().map(text).collect();
    format!("produced {} message(s) to {}: {}", ids.len(), text(&body["queue"]), ids.join(" "))
}

/// `dsync queue consume`: one line per leased message, id first (what `ack`
/// takes), then its delivery count, key if any, and the message as JSON.
pub fn consumed(body: &Value) -> String {
    let messages = items(body, "messages");
    if messages.is_empty() {
        return "no messages".to_string();
    }
    let line = |m: &Value| {
        let key = m["key"].as_str().map(|k| format!("  key {k}")).unwrap_or_default();
        format!("{}  delivery {}{key}  {}", text(&m["id"]), text(&m["delivery_count"]), m["message"])
    };
    messages.iter().map(line).collect::<Vec<_>>().join("\n")
}

/// `dsync queue ack`: how many messages were really removed.
pub fn acked(body: &Value) -> String {
    format!("acked {}", text(&body["acked"]))
}

/// `dsync queue stats`: one row per queue (one queue, or `{"queues": [...]}`).
pub fn queue_stats(body: &Value) -> String {
    let queues = match body.get("queues") {
        Some(Value::Array(all)) if all.is_empty() => return "no queues".to_string(),
        Some(Value::Array(all)) => all.as_slice(),
        _ => std::slice::from_ref(body),
    };
    let fields = ["ready", "in_flight", "delayed", "dead_lettered", "produced_total", "acked_total"];
    let rows: Vec<Vec<String>> = queues
        .iter()
        .map(|q| std::iter::once(&q["queue"]).chain(fields.iter().map(|f| &q[*f])).map(text).collect())
        .collect();
    table(&["QUEUE", "READY", "IN_FLIGHT", "DELAYED", "DEAD", "PRODUCED", "ACKED"], &rows)
}

/// `dsync cache get`: the value and where it came from (this node's line or not).
pub fn cache_value(body: &Value) -> String {
    let source = if body["hit"].as_bool() == Some(true) { "hit" } else { "miss" };
    format!(
        "{} = {}  (version {}, state {}, {source})",
        text(&body["key"]),
        body["value"],
        text(&body["version"]),
        text(&body["state"])
    )
}

/// `dsync cache put`: the new version.
pub fn cache_put(body: &Value) -> String {
    format!("put {} version {} (state {})", text(&body["key"]), text(&body["version"]), text(&body["state"]))
}

/// `dsync cache invalidate` and `delete`: `<done> <key>`, e.g. `deleted k`.
pub fn cache_done(body: &Value, done: &str) -> String {
    format!("{done} {}", text(&body["key"]))
}

/// `dsync cache state`: this node's cache summary, its lines and counters.
pub fn cache_state(body: &Value) -> String {
    let lease = match body["lease_valid"].as_bool() {
        Some(true) => format!("lease valid ({} ms left)", text(&body["lease_remaining_ms"])),
        _ => "no read lease".to_string(),
    };
    let rows: Vec<Vec<String>> =
        items(body, "lines").iter().map(|l| vec![text(&l["key"]), text(&l["state"]), text(&l["version"])]).collect();
    let m = &body["metrics"];
    format!(
        "{}: {}/{} lines, backing {}, {lease}\n{}\nhits {}  misses {}  hit ratio {}  evictions {}  writebacks {}  invalidations {}",
        text(&body["node_id"]),
        text(&body["size"]),
        text(&body["capacity"]),
        text(&body["backing"]),
        table(&["KEY", "STATE", "VERSION"], &rows),
        text(&m["hits"]),
        text(&m["misses"]),
        text(&m["hit_ratio"]),
        text(&m["evictions"]),
        text(&m["writebacks"]),
        text(&m["invalidations"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn acquire_shows_token_and_remaining_lease() {
        let body = json!({"granted": true, "resource": "acct:42", "owner": "txn-17", "mode": "exclusive",
            "fencing_token": 7, "expires_at_ms": 1_000_030_000u64});
        assert_eq!(
            acquired(&body, 1_000_000_000),
            "granted acct:42 to txn-17 (exclusive), fencing token 7, expires in 30.0 s"
        );
    }

    #[test]
    fn lock_list_shows_holders_waiters_and_free_locks() {
        let lock = json!({"resource": "acct:42", "mode": "exclusive",
            "holders": [{"owner": "txn-17", "mode": "exclusive", "fencing_token": 7, "expires_at_ms": 12_500}],
            "waiters": [{"owner": "txn-9", "mode": "shared", "since_ms": 9_000}]});
        assert_eq!(
            locks(&lock, 10_000),
            "acct:42: exclusive\n  holder txn-17  token 7  expires in 2.5 s\n  waiter txn-9 (shared)  waiting 1.0 s"
        );
        let free = json!({"resource": "r", "mode": null, "holders": [], "waiters": []});
        assert_eq!(locks(&free, 0), "r: free");
        assert_eq!(locks(&json!({"locks": []}), 0), "no locks held");
        assert_eq!(locks(&json!({"locks": [free.clone(), free]}), 0), "r: free\nr: free");
    }

    #[test]
    fn status_has_node_leader_and_members_table() {
        let health = json!({"status": "healthy", "node_id": "node1", "role": "leader", "term": 2,
            "leader": "node1", "commit_index": 12, "applied_index": 12});
        let cluster = json!({"leader": "node1", "term": 2, "members": [
            {"node_id": "node1", "addr": "http://127.0.0.1:9301", "voter": true, "matched_index": 12},
            {"node_id": "node2", "addr": "http://127.0.0.1:9302", "voter": false, "matched_index": null}]});
        let leader = json!({"leader": "node1", "leader_addr": "http://127.0.0.1:9301", "term": 2});
        assert_eq!(
            status("http://127.0.0.1:9301", &health, &cluster, &leader),
            "endpoint  http://127.0.0.1:9301: node1 is leader (healthy), commit 12, applied 12\n\
             leader    node1 at http://127.0.0.1:9301, term 2\n\n\
             NODE   ADDR                   VOTER         MATCHED\n\
             node1  http://127.0.0.1:9301  yes           12\n\
             node2  http://127.0.0.1:9302  no (learner)  -"
        );
        let no_leader = json!({"leader": null, "leader_addr": null, "term": 3});
        assert!(status("e", &health, &json!({}), &no_leader).contains("leader    none (no leader known), term 3"));
    }

    #[test]
    fn consume_lists_ids_first_and_says_when_empty() {
        let body = json!({"messages": [
            {"id": "aaaaaaaaaaaaaaaaaaaaaaaa", "message": {"n": 1}, "delivery_count": 1},
            {"id": "bbbbbbbbbbbbbbbbbbbbbbbb", "message": "hi", "delivery_count": 2, "key": "k"}]});
        assert_eq!(
            consumed(&body),
            "aaaaaaaaaaaaaaaaaaaaaaaa  delivery 1  {\"n\":1}\nbbbbbbbbbbbbbbbbbbbbbbbb  delivery 2  key k  \"hi\""
        );
        assert_eq!(consumed(&json!({"messages": []})), "no messages");
    }

    #[test]
    fn queue_stats_is_a_table_for_one_or_all_queues() {
        let q = json!({"queue": "orders", "ready": 10, "in_flight": 2, "delayed": 0, "dead_lettered": 1,
            "produced_total": 13, "acked_total": 0});
        let expected = "QUEUE   READY  IN_FLIGHT  DELAYED  DEAD  PRODUCED  ACKED\n\
                        orders  10     2          0        1     13        0";
        assert_eq!(queue_stats(&q), expected);
        assert_eq!(queue_stats(&json!({"queues": [q]})), expected);
        assert_eq!(queue_stats(&json!({"queues": []})), "no queues");
    }

    #[test]
    fn cache_value_and_put() {
        let got = json!({"key": "k", "value": {"a": [1, 2]}, "state": "E", "hit": true, "version": 7});
        assert_eq!(cache_value(&got), "k = {\"a\":[1,2]}  (version 7, state E, hit)");
        assert_eq!(cache_put(&json!({"key": "k", "version": 8, "state": "M"})), "put k version 8 (state M)");
        assert_eq!(cache_done(&json!({"key": "k", "deleted": true}), "deleted"), "deleted k");
    }
}
