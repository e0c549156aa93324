//! `GET /events` read as a client does: the Server-Sent Events stream of a
//! node, parsed into `(event name, data JSON)` pairs, and a wait for the
//! next event that matches (with a deadline, never a fixed sleep).

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

/// How long a test waits for an expected event.
pub const EVENT_DEADLINE: Duration = Duration::from_secs(10);

/// Opens `/events` on `base` and forwards each `(event name, data JSON)`.
pub async fn subscribe(base: String) -> mpsc::UnboundedReceiver<(String, Value)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut reply = reqwest::Client::new()
        .get(format!("{base}/events"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {base}/events: {e}"));
    assert_eq!(reply.status(), 200, "GET /events answers 200");
    let content_type = reply.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(content_type.starts_with("text/event-stream"), "content type {content_type:?}");
    tokio::spawn(async move {
        let (mut buffer, mut name) = (String::new(), String::new());
        while let Ok(Some(chunk)) = reply.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find('\n') {
                let line = buffer[..end].trim_end_matches('\r').to_string();
                buffer.drain(..=end);
                if let Some(event) = line.strip_prefix("event: ") {
                    name = event.to_string();
                } else if let Some(data) = line.strip_prefix("data: ") {
                    let value: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("bad data {data:?}: {e}"));
                    if tx.send((std::mem::take(&mut name), value)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// The next event matching `wanted`, failing after the deadline; events
/// passed over on the way are returned too, in order.
pub async fn next_matching(
    events: &mut mpsc::UnboundedReceiver<(String, Value)>,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> (Value, Vec<Value>) {
    let mut skipped = Vec::new();
    let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some((name, data))) => {
                assert_eq!(Some(name.as_str()), data["type"].as_str(), "the SSE event is named by its type: {data}");
                if wanted(&data) {
                    return (data, skipped);
                }
                skipped.push(data);
            }
            Ok(None) => panic!("the event stream ended while waiting for {what}; seen {skipped:?}"),
            Err(_) => panic!("no {what} within {EVENT_DEADLINE:?}; seen {skipped:?}"),
        }
    }
}
