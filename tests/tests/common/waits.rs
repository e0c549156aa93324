//! Waiting for a cluster to converge, and the checks built on it: one agreed
//! leader, an applied index, a membership, acknowledged entries in a log.
//!
//! Every wait polls the HTTP API with a deadline and panics with the test's
//! name and the last thing it saw.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::api::members_of;
use super::cluster::Cluster;
use super::poll::eventually;

/// Time for the live nodes to agree on a leader: several election rounds.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(20);

/// Time for an entry to reach a node (replication or snapshot install).
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

impl Cluster {
    /// Waits until every running initial member names the same leader, that
    /// leader is one of them, and returns it.
    pub async fn wait_for_leader(&self) -> u64 {
        self.wait_for_leader_among(&self.running_members(), None).await
    }

    /// Waits until all of `ids` name the same leader, which is one of `ids`
    /// and not `excluded` (a killed leader the survivors may still name).
    pub async fn wait_for_leader_among(&self, ids: &[u64], excluded: Option<u64>) -> u64 {
        let what = format!("{}: nodes {ids:?} to agree on a leader (not {excluded:?})", self.name);
        eventually(what, LEADER_TIMEOUT, async || {
            let mut seen = BTreeMap::new();
            for &id in ids {
                seen.insert(id, self.leader_seen_by(id).await?);
            }
            match seen.values().next().copied().flatten() {
                Some(leader) if seen.values().all(|l| *l == Some(leader)) => {
                    if !ids.contains(&leader) {
                        Err(format!("they name node{leader}, not one of them: {seen:?}"))
                    } else if Some(leader) == excluded {
                        Err(format!("they still name the excluded node{leader}"))
                    } else {
                        Ok(leader)
                    }
                }
                _ => Err(format!("leader seen by each node: {seen:?}")),
            }
        })
        .await
    }

    /// Waits until node `id` has applied at least `index`.
    pub async fn wait_applied(&self, id: u64, index: u64) {
        let what = format!("{}: node{id} to apply index {index}", self.name);
        eventually(what, CONVERGE_TIMEOUT, async || {
            let applied = self.applied_index(id).await?;
            if applied >= index {
                Ok(())
            } else {
                Err(format!("node{id} applied_index = {applied}"))
            }
        })
        .await;
    }

    /// Waits until node `id` has applied the highest index of `acked`, then
    /// asserts that its log holds exactly `acked[i]` as the `data` of the
    /// entry at each index `i`: acknowledged writes are neither lost nor moved.
    pub async fn assert_log_holds(&self, id: u64, acked: &BTreeMap<u64, Value>) {
        let (Some((&low, _)), Some((&high, _))) = (acked.first_key_value(), acked.last_key_value()) else {
            return;
        };
        self.wait_applied(id, high).await;
        let log = self
            .log_range(id, low, high)
            .await
            .unwrap_or_else(|e| panic!("{}: reading node{id}'s log: {e}", self.name));
        let wrong: Vec<String> = acked
            .iter()
            .filter(|&(index, data)| log.get(index).map(|entry| &entry["data"]) != Some(data))
            .map(|(index, data)| {
                let found = log.get(index).map_or("nothing".to_owned(), Value::to_string);
                format!("index {index}: acknowledged {data}, log has {found}")
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "{}: node{id} lost or changed {} of {} acknowledged entries (first 10):\n  {}",
            self.name,
            wrong.len(),
            acked.len(),
            wrong[..wrong.len().min(10)].join("\n  ")
        );
    }

    /// Waits until node `id`'s `/cluster` lists `member` as a voter
    /// (`voter == true`) or does not list it (`false`); returns that body.
    pub async fn wait_membership(&self, id: u64, member: u64, voter: bool) -> Value {
        let expected = if voter { "list as voter" } else { "drop" };
        let what = format!("{}: node{id}'s /cluster to {expected} node{member}", self.name);
        eventually(what, CONVERGE_TIMEOUT, async || {
            let body = self.get_ok(id, "/cluster").await?;
            let members = members_of(&body)?;
            let ok = match members.get(&member) {
                Some(found) => voter && found["voter"] == Value::Bool(true),
                None => !voter,
            };
            if ok {
                Ok(body)
            } else {
                Err(format!("/cluster = {body}"))
            }
        })
        .await
    }
}

impl Cluster {
    /// Polls node `id`'s Raft metrics until its log is purged past `index`
    /// (so a node behind `index` can only catch up by snapshot), for at most
    /// `wait`; the last metrics seen on success, the last observation on
    /// failure.
    pub async fn purged_past(&self, id: u64, index: u64, wait: Duration) -> Result<Value, String> {
        super::poll::poll_until(wait, async || {
            let metrics = self.raft_metrics(id).await?;
            match metrics["purged_index"].as_u64() {
                Some(purged) if purged > index => Ok(metrics),
                _ => Err(format!("metrics.raft = {metrics}")),
            }
        })
        .await
    }
}
