//! `dsync serve`: runs one node until SIGTERM or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use dsync_engine::{node_name, Node};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use crate::api::{self, AppState};
use crate::cache::Cache;
use crate::config::ServeArgs;
use crate::logging;
use crate::metrics::Metrics;

/// How long in-flight requests may finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Starts the node described by `args` and serves HTTP until a signal.
pub async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let _log_guards = logging::init(&args.node_id, &args.log_level, args.log_dir.as_deref())?;
    let config = args.engine_config()?;
    let listener = TcpListener::bind((args.listen_addr.as_str(), args.http_port))
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.listen_addr, args.http_port))?;
    tracing::info!(node = %args.node_id, data_dir = %config.data_dir.display(), peers = ?config.peers, "starting");
    let cache_settings = args.cache_settings(&config)?;
    let metrics = Arc::new(Metrics::new()?);
    let prepared = Cache::prepare(config.node_id, cache_settings, metrics.clone())?;
    let node = Node::start(config, Some(prepared.lines.clone())).await?;
    let cache = Cache::start(node.clone(), prepared, metrics.clone());
    let (leader_changes, _) = tokio::sync::broadcast::channel(64);
    tokio::spawn(watch_leader(node.clone(), metrics.clone(), leader_changes.clone()));
    tokio::spawn(count_events(node.clone(), metrics.clone()));

    let state = AppState {
        node: node.clone(),
        metrics,
        max_value_bytes: args.max_value_bytes,
        max_deliveries: args.max_deliveries,
        leader_changes,
        cache,
    };
    let app = api::router(state, args.enable_metrics);
    tracing::info!(addr = %listener.local_addr()?, "serving HTTP");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async {
        stop_rx.await.ok();
    });
    let server = tokio::spawn(std::future::IntoFuture::into_future(server));

    if let Some(join) = args.join_url() {
        tokio::spawn(join_cluster(node.clone(), join, args.advertised_addr()));
    }

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(());
    if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
        tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    node.shutdown().await;
    Ok(())
}

/// How long one `/cluster/add` may take: the member waits for this node to
/// catch up as a learner before making it a voter.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Asks the member at `join` to add this node at `addr`, until it does.
/// Does nothing if this node is already a member (a restart after joining).
async fn join_cluster(node: Arc<Node>, join: String, addr: String) {
    let me = node_name(node.id());
    if node.addr_of(node.id()).is_some() {
        tracing::info!(%me, "already a member; JOIN not needed");
        return;
    }
    let client = reqwest::Client::new();
    let url = format!("{join}/cluster/add");
    let body = serde_json::json!({"node_id": me, "addr": addr});
    let mut backoff = Duration::from_millis(200);
    loop {
        tracing::info!(%url, %addr, "asking to join the cluster");
        match client.post(&url).json(&body).timeout(JOIN_TIMEOUT).send().await {
            Ok(reply) if reply.status().is_success() => {
                tracing::info!(%me, "joined the cluster as a voter");
                return;
            }
            Ok(reply) => {
                let status = reply.status();
                let text = reply.text().await.unwrap_or_default();
                tracing::warn!(%status, body = %text, "join refused; retrying");
            }
            Err(e) => tracing::warn!(error = %e, "cannot reach the member to join; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Logs, counts and publishes (`leader.changed`) every change of leader
/// this node observes.
async fn watch_leader(node: Arc<Node>, metrics: Arc<Metrics>, events: broadcast::Sender<serde_json::Value>) {
    let mut updates = node.metrics();
    let mut last = updates.borrow().current_leader;
    while updates.changed().await.is_ok() {
        let (leader, term) = {
            let m = updates.borrow();
            (m.current_leader, m.current_term)
        };
        if leader != last {
            if let Some(id) = leader {
                metrics.leader_changed();
                tracing::info!(leader = %node_name(id), term, "leader changed");
                let event = serde_json::json!({"type": "leader.changed", "leader": node_name(id), "term": term});
                let _ = events.send(event);
            }
            last = leader;
        }
    }
}

/// Feeds every applied event to the metrics.
async fn count_events(node: Arc<Node>, metrics: Arc<Metrics>) {
    let mut events = node.subscribe();
    loop {
        match events.recv().await {
            Ok(record) => record.events.iter().for_each(|event| metrics.observe_event(event)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "metrics fell behind the event stream; some events were not counted");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM; Ctrl-C only");
            drop(tokio::signal::ctrl_c().await);
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
