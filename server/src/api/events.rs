//! `GET /events`: committed events as Server-Sent Events.
//!
//! Each SSE event is named by the event's type (`lock.granted`,
//! `queue.produced`, ...) and carries it as JSON with the `index` of the log
//! entry that produced it, so a client can tell order and spot gaps. Every
//! node streams the same committed events, in log order, as it applies them;
//! `leader.changed` is this node's own observation. A subscriber that falls
//! behind the node's event buffer gets an `events.lagged` event saying how
//! many entries' events it missed, and the stream goes on.

use std::collections::VecDeque;
use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use dsync_engine::node_name;
use dsync_engine::sm_store::EventRecord;
use dsync_statemachine::Event;
use futures_util::stream::{self, Stream};
use serde_json::{json, Value};
use tokio::sync::broadcast::{self, error::RecvError};

use super::AppState;

/// The streams one subscriber reads, and what it has yet to send.
struct Subscription {
    entries: broadcast::Receiver<EventRecord>,
    leaders: broadcast::Receiver<Value>,
    pending: VecDeque<Value>,
}

/// `GET /events`.
pub async fn stream(State(state): State<AppState>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let subscription = Subscription {
        entries: state.node.subscribe(),
        leaders: state.leader_changes.subscribe(),
        pending: VecDeque::new(),
    };
    let events = stream::unfold(subscription, |mut sub| async move {
        loop {
            if let Some(event) = sub.pending.pop_front() {
                return Some((Ok(sse_event(&event)), sub));
            }
            tokio::select! {
                received = sub.entries.recv() => match received {
                    Ok(record) => sub.pending.extend(record.events.iter().map(|event| event_json(event, record.index))),
                    Err(RecvError::Lagged(missed)) => {
                        sub.pending.push_back(json!({"type": "events.lagged", "missed_entries": missed}));
                    }
                    Err(RecvError::Closed) => return None,
                },
                received = sub.leaders.recv() => match received {
                    Ok(event) => sub.pending.push_back(event),
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// A committed event as clients see it (here and on Redis): its JSON plus
/// the `index` of the entry that produced it. Nodes are named as everywhere
/// else in the API (`node2`), not by their numeric Raft ids.
pub fn event_json(event: &Event, index: u64) -> Value {
    let mut value = json!(event);
    if let Event::CacheInvalidated { nodes, .. } = event {
        value["nodes"] = json!(nodes.iter().map(|&n| node_name(n)).collect::<Vec<_>>());
    }
    value["index"] = json!(index);
    value
}

fn sse_event(event: &Value) -> SseEvent {
    SseEvent::default().event(event["type"].as_str().unwrap_or("event")).data(event.to_string())
}
