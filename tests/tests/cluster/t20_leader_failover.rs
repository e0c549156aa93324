//! Rule: when the leader dies (SIGKILL), the survivors elect a new leader and
//! accept writes again within a bounded time, and every entry acknowledged
//! before the crash stays committed at its index, on the survivors and on the
//! old leader once it comes back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::common::{Api, Appended, Cluster, ClusterOptions, CONVERGE_TIMEOUT};

/// Upper bound on kill -> first acknowledged append through a survivor.
const FAILOVER_BOUND: Duration = Duration::from_secs(5);

/// How long we keep trying after the bound, to report the real time.
const FAILOVER_GIVE_UP: Duration = Duration::from_secs(20);

/// A new append attempt starts this often, so a request stuck on the dead
/// leader does not inflate the measured failover time.
const ATTEMPT_EVERY: Duration = Duration::from_millis(100);

/// Time allowed for one append attempt during failover.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::test]
async fn killed_leader_is_replaced_and_acknowledged_entries_survive() {
    // The server's own heartbeat settings: this test measures their failover.
    let mut cluster = Cluster::start("t20_leader_failover", ClusterOptions::default().server_timing()).await;
    let old_leader = cluster.wait_for_leader().await;

    let mut acked = BTreeMap::new();
    for seq in 0..10 {
        let data = json!({"test": "t20", "before_kill": seq});
        let appended = cluster.append_retrying(&[1, 2, 3], &data, CONVERGE_TIMEOUT).await;
        acked.insert(appended.index, data);
    }

    let killed_at = Instant::now();
    cluster.kill(old_leader);
    let survivors = cluster.running();
    let data = json!({"test": "t20", "after_kill": true});
    let (via, appended, failover) = first_append(cluster.api(), &survivors, &data, killed_at).await;
    eprintln!(
        "t20_leader_failover: failover took {failover:.3?} (SIGKILL of node{old_leader} -> \
         append acknowledged via node{via} at index {}, term {})",
        appended.index, appended.term
    );
    assert!(
        failover <= FAILOVER_BOUND,
        "appends resumed {failover:.3?} after the leader was killed; the bound is {FAILOVER_BOUND:?}"
    );
    acked.insert(appended.index, data);

    let new_leader = cluster.wait_for_leader_among(&survivors, Some(old_leader)).await;
    eprintln!("t20_leader_failover: node{old_leader} killed, node{new_leader} leads now");
    for &id in &survivors {
        cluster.assert_log_holds(id, &acked).await;
    }

    cluster.restart(old_leader).await;
    cluster.assert_log_holds(old_leader, &acked).await;
    // Once back, the old leader follows the cluster: all three agree again.
    cluster.wait_for_leader().await;
}

/// Starts an append through `survivors` every [`ATTEMPT_EVERY`] until one is
/// acknowledged; returns the node, the acknowledgement and the time since
/// `killed_at`. Panics after [`FAILOVER_GIVE_UP`].
async fn first_append(api: &Api, survivors: &[u64], data: &Value, killed_at: Instant) -> (u64, Appended, Duration) {
    let mut attempts = JoinSet::new();
    let mut ticker = tokio::time::interval(ATTEMPT_EVERY);
    let mut started: usize = 0;
    let mut last_error = String::from("no attempt finished");
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if killed_at.elapsed() > FAILOVER_GIVE_UP {
                    panic!("no survivor of {survivors:?} acknowledged an append within {FAILOVER_GIVE_UP:?} \
                            of the leader's death; last error: {last_error}");
                }
                let id = survivors[started % survivors.len()];
                started += 1;
                let (api, data) = (api.clone(), data.clone());
                attempts.spawn(async move {
                    (id, api.append_with_timeout(id, &data, ATTEMPT_TIMEOUT).await)
                });
            }
            Some(finished) = attempts.join_next() => {
                match finished.expect("append attempt task panicked") {
                    (id, Ok(appended)) => return (id, appended, killed_at.elapsed()),
                    (_, Err(error)) => last_error = error,
                }
            }
        }
    }
}
