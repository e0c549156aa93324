//! openraft's own storage conformance suite run against our adapters: the
//! WAL-backed log store and the sled-backed state machine store, on real
//! files in a fresh directory per case.
//!
//! Every case of `Suite::test_store` runs except
//! `get_initial_state_membership_from_log_and_sm`, which appends an entry
//! below the log's purge point. openraft never does that, and our WAL
//! refuses it (the log must stay free of holes), whereas the suite's
//! reference store is a map that accepts any index.

use std::future::Future;

use dsync_engine::log_store::LogStore;
use dsync_engine::sm_store::StateMachineStore;
use dsync_engine::{NodeId, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{StorageError, StorageIOError};
use tempfile::TempDir;

struct OnDisk;

type OnDiskSuite = Suite<TypeConfig, LogStore, StateMachineStore, OnDisk, TempDir>;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for OnDisk {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<NodeId>> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let log = LogStore::open(dir.path()).map_err(|e| StorageIOError::write(&e))?;
        let sm =
            StateMachineStore::open(dir.path(), &log.reader(), 8 << 20, tokio::sync::broadcast::channel(16).0, None)
                .map_err(|e| StorageIOError::write(&e))?;
        Ok((dir, log, sm))
    }
}

/// Runs one suite case on fresh stores.
fn run<F, Fut>(case: F)
where
    F: FnOnce(LogStore, StateMachineStore) -> Fut,
    Fut: Future<Output = Result<(), StorageError<NodeId>>>,
{
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let (_dir, log, sm) = OnDisk.build().await.expect("stores open");
        case(log, sm).await.expect("suite case");
    });
}

#[test]
fn log_and_state_machine_stores_pass_the_openraft_suite() {
    // The suite narrates its steps with tracing; show them when a step fails.
    let _ = tracing_subscriber::fmt().with_test_writer().with_env_filter("openraft::testing=info").try_init();
    run(OnDiskSuite::last_membership_in_log_initial);
    run(OnDiskSuite::last_membership_in_log);
    run(OnDiskSuite::last_membership_in_log_multi_step);
    run(OnDiskSuite::get_membership_initial);
    run(OnDiskSuite::get_membership_from_log_and_empty_sm);
    run(OnDiskSuite::get_membership_from_empty_log_and_sm);
    run(OnDiskSuite::get_membership_from_log_le_sm_last_applied);
    run(OnDiskSuite::get_membership_from_log_gt_sm_last_applied_1);
    run(OnDiskSuite::get_membership_from_log_gt_sm_last_applied_2);
    run(OnDiskSuite::get_initial_state_without_init);
    run(OnDiskSuite::get_initial_state_with_state);
    run(OnDiskSuite::get_initial_state_last_log_gt_sm);
    run(OnDiskSuite::get_initial_state_last_log_lt_sm);
    run(OnDiskSuite::get_initial_state_log_ids);
    run(OnDiskSuite::get_initial_state_re_apply_committed);
    run(OnDiskSuite::save_vote);
    run(OnDiskSuite::get_log_entries);
    run(OnDiskSuite::limited_get_log_entries);
    run(OnDiskSuite::try_get_log_entry);
    run(OnDiskSuite::initial_logs);
    run(OnDiskSuite::get_log_state);
    run(OnDiskSuite::get_log_id);
    run(OnDiskSuite::last_id_in_log);
    run(OnDiskSuite::last_applied_state);
    run(OnDiskSuite::purge_logs_upto_0);
    run(OnDiskSuite::purge_logs_upto_5);
    run(OnDiskSuite::purge_logs_upto_20);
    run(OnDiskSuite::delete_logs_since_11);
    run(OnDiskSuite::delete_logs_since_0);
    run(OnDiskSuite::append_to_log);
    run(OnDiskSuite::snapshot_meta);
    run(OnDiskSuite::apply_single);
    run(OnDiskSuite::apply_multiple);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(OnDiskSuite::transfer_snapshot(&OnDisk)).expect("snapshot transfer");
}
