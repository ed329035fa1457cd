//! The metered store and queue: they pass the same contracts as the store they wrap, and
//! record what they did under the backend's name.

use palisade_store::contract;
use palisade_store::metered::Metered;
use palisade_store::sqlite::SqliteStore;
use palisade_store::{Accounts, Store, StoreError};
use std::sync::{Arc, OnceLock};

/// The test binary's one Prometheus recorder.
fn recorder() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("install recorder")
    })
}

/// The value of the sample line starting with `series`, 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metered_store_meets_the_contract_and_counts_each_operation_and_error() {
    let metrics = recorder();
    let dir = tempfile::tempdir().expect("tempdir");
    let inner: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("db.sqlite3")).expect("open"));
    let store = Metered::new(inner, "sqlite");
    contract::run_all(&store).await;

    let creates = r#"palisade_backend_operation_seconds_count{backend="sqlite",op="create_user"}"#;
    let conflicts = r#"palisade_backend_operation_errors_total{backend="sqlite",op="create_user",error="conflict"}"#;
    let before = metrics.render();
    store.create_user("metered", &[], None).await.expect("user");
    let again = store.create_user("metered", &[], None).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let after = metrics.render();
    assert_eq!(sample(&after, creates), sample(&before, creates) + 2.0);
    assert_eq!(sample(&after, conflicts), sample(&before, conflicts) + 1.0);
    assert!(
        sample(
            &after,
            r#"palisade_backend_operation_seconds_count{backend="sqlite",op="deliver"}"#
        ) > 0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metered_queue_meets_the_contract_under_its_own_name() {
    let metrics = recorder();
    let dir = tempfile::tempdir().expect("tempdir");
    let inner = Arc::new(SqliteStore::open(&dir.path().join("db.sqlite3")).expect("open"));
    let queue = palisade_jobs::metered::Metered::new(inner, "sqlite-jobs");
    palisade_jobs::contract::run_all(&queue).await;
    palisade_jobs::contract::expired_leases_return(&queue).await;
    let text = metrics.render();
    for op in ["publish", "claim", "complete", "fail", "stats"] {
        let series = format!(
            r#"palisade_backend_operation_seconds_count{{backend="sqlite-jobs",op="{op}"}}"#
        );
        assert!(sample(&text, &series) > 0.0, "{op}: {text}");
    }
}
