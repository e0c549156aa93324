//! Rule: an acknowledged append is durable. If every node is SIGKILLed in the
//! middle of a stream of writes and then restarted, each acknowledged entry is
//! in every node's log at the index it was acknowledged with. (Unacknowledged
//! writes may or may not be there; duplicates from retries are allowed.)

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::common::{eventually, Api, Cluster, ClusterOptions, CONVERGE_TIMEOUT};

/// Concurrent writers; each spreads its appends over all nodes.
const CLIENTS: usize = 4;

/// Acknowledged appends to collect before the crash, so the check is not vacuous.
const ACKED_BEFORE_CRASH_MIN: usize = 40;

/// Time allowed for one append of the stream.
const APPEND_TIMEOUT: Duration = Duration::from_secs(3);

/// An acknowledgement seen by a writer: index, data, and the node that answered.
type Ack = (u64, Value, u64);

#[tokio::test]
async fn acknowledged_appends_survive_sigkill_of_every_node() {
    let mut cluster = Cluster::start("t30_crash_all", ClusterOptions::default()).await;
    let nodes = cluster.running();

    let stop = Arc::new(AtomicBool::new(false));
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let mut writers = JoinSet::new();
    for client in 0..CLIENTS {
        let (api, stop, acks, nodes) = (cluster.api().clone(), stop.clone(), acks.clone(), nodes.clone());
        writers.spawn(write_stream(api, client, nodes, stop, acks));
    }

    let acked_before =
        eventually("t30_crash_all: acknowledged appends before the crash", CONVERGE_TIMEOUT, async || {
            let count = acks.lock().unwrap().len();
            if count >= ACKED_BEFORE_CRASH_MIN {
                Ok(count)
            } else {
                Err(format!("{count} acknowledged so far"))
            }
        })
        .await;
    // Writers are still sending: the crash hits requests in flight.
    for &id in &nodes {
        cluster.kill(id);
    }
    stop.store(true, Ordering::SeqCst);
    while let Some(done) = writers.join_next().await {
        done.expect("writer task panicked");
    }
    let acks = acks.lock().unwrap().clone();
    eprintln!(
        "t30_crash_all: {} appends acknowledged ({acked_before} when the crash was ordered), \
         indices {:?}..={:?}",
        acks.len(),
        acks.iter().map(|a| a.0).min(),
        acks.iter().map(|a| a.0).max()
    );
    let acked = by_index(&acks);

    for &id in &nodes {
        cluster.restart(id).await;
    }
    cluster.wait_for_leader().await;
    for &id in &nodes {
        cluster.assert_log_holds(id, &acked).await;
    }
}

/// One writer: appends `{"client":c,"seq":n}` round-robin over `nodes`
/// until `stop`, recording each acknowledgement.
async fn write_stream(api: Api, client: usize, nodes: Vec<u64>, stop: Arc<AtomicBool>, acks: Arc<Mutex<Vec<Ack>>>) {
    let mut seq: usize = 0;
    while !stop.load(Ordering::SeqCst) {
        let id = nodes[(client + seq) % nodes.len()];
        let data = json!({"test": "t30", "client": client, "seq": seq});
        match api.append_with_timeout(id, &data, APPEND_TIMEOUT).await {
            Ok(appended) => acks.lock().unwrap().push((appended.index, data, id)),
            // Elections, and the crash itself: not acknowledged, not checked.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
        seq += 1;
    }
}

/// Acknowledgements by index. Two different entries acknowledged at one
/// index would mean one of them was overwritten after its commit: fail.
fn by_index(acks: &[Ack]) -> BTreeMap<u64, Value> {
    let mut acked: BTreeMap<u64, (Value, u64)> = BTreeMap::new();
    for (index, data, via) in acks {
        if let Some((earlier, earlier_via)) = acked.get(index) {
            assert_eq!(
                earlier, data,
                "index {index} was acknowledged twice with different data: via node{earlier_via} and via node{via}"
            );
        }
        acked.insert(*index, (data.clone(), *via));
    }
    acked.into_iter().map(|(index, (data, _))| (index, data)).collect()
}
