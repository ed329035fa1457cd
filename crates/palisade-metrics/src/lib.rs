//! Every metric Palisade records, named here and nowhere else (docs/metrics.md documents
//! them for operators).
//!
//! Crates record through the `metrics` facade with these names; the daemon installs the
//! Prometheus recorder and renders it on its admin listener. Labels carry only bounded,
//! non-personal values (reply codes, route templates, status codes): never an address, a
//! user id or a message id.

pub use metrics;

/// LMTP transactions whose message was handed to storage (counter; refusals before that
/// show only in [`LMTP_REPLIES`]).
pub const LMTP_TRANSACTIONS: &str = "palisade_lmtp_transactions_total";
/// LMTP replies sent, by three-digit reply code (counter; label `code`).
pub const LMTP_REPLIES: &str = "palisade_lmtp_replies_total";
/// Time the delivery backend took to store one transaction's message, in seconds (histogram).
pub const LMTP_DELIVERY_SECONDS: &str = "palisade_lmtp_delivery_seconds";
/// Message bytes received at the end of DATA (counter).
pub const LMTP_RECEIVED_BYTES: &str = "palisade_lmtp_received_bytes_total";

/// Jobs waiting for a first attempt or running, sampled on scrape (gauge).
pub const JOBS_PENDING: &str = "palisade_jobs_pending";
/// Jobs waiting for a retry, sampled on scrape (gauge).
pub const JOBS_RETRYING: &str = "palisade_jobs_retrying";
/// Dead-lettered jobs, sampled on scrape (gauge).
pub const JOBS_DEAD: &str = "palisade_jobs_dead";

/// API requests answered, by route template, method and status (counter).
pub const API_REQUESTS: &str = "palisade_api_requests_total";
/// API request latency in seconds, by route template and method (histogram).
pub const API_REQUEST_SECONDS: &str = "palisade_api_request_seconds";
/// Live event streams (`GET /events`) open on this node (gauge).
pub const API_EVENT_STREAMS: &str = "palisade_api_event_streams";

/// Whether each backend answered the last readiness check, 1 or 0 (gauge; label `backend`).
pub const BACKEND_UP: &str = "palisade_backend_up";

/// Time one store, index, queue or cache operation took, in seconds (histogram; labels
/// `backend` such as `sqlite` or `rabbitmq`, and `op`, the trait method).
pub const BACKEND_OPERATION_SECONDS: &str = "palisade_backend_operation_seconds";
/// Backend operations that failed (counter; labels `backend`, `op` and `error`, the kind of
/// failure such as `unavailable`, or `cancelled` when the caller gave up waiting).
pub const BACKEND_OPERATION_ERRORS: &str = "palisade_backend_operation_errors_total";

/// Stored messages not yet matched by the search index, summed over users (gauge; sampled
/// periodically, the same cluster-wide value on every node that samples it).
pub const INDEX_LAG: &str = "palisade_index_lag_messages";
/// Messages stored, summed over users, at the last index lag sample (gauge).
pub const INDEX_STORED: &str = "palisade_index_stored_messages";
/// Documents in the search index, summed over users, at the last index lag sample (gauge).
pub const INDEX_INDEXED: &str = "palisade_index_indexed_messages";
/// Users whose search index had not caught up at the last index lag sample (gauge).
pub const INDEX_LAGGING_USERS: &str = "palisade_index_lagging_users";
/// When the index lag was last sampled, in seconds since the Unix epoch (gauge): a stale
/// value means the samples above are stale too.
pub const INDEX_LAG_SAMPLED: &str = "palisade_index_lag_sampled_timestamp_seconds";

/// Job attempts this node's workers finished, by kind and outcome: `done`, `retry` (will be
/// tried again) or `dead` (dead-lettered) (counter).
pub const JOBS_PROCESSED: &str = "palisade_jobs_processed_total";

/// Sessions that made an authenticated API request on this node within the activity window
/// (gauge).
pub const API_ACTIVE_SESSIONS: &str = "palisade_api_active_sessions";

/// The `route` label of requests outside the API (the web client's files).
pub const ROUTE_STATIC: &str = "static";
/// The `route` label of API requests that match no documented route.
pub const ROUTE_UNMATCHED: &str = "unmatched";

/// Registers help texts and units, so they appear in the exposition before a first sample.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        LMTP_TRANSACTIONS,
        "LMTP transactions whose message was handed to storage"
    );
    describe_counter!(LMTP_REPLIES, "LMTP replies sent, by reply code");
    describe_histogram!(
        LMTP_DELIVERY_SECONDS,
        Unit::Seconds,
        "Time taken to store one LMTP transaction's message"
    );
    describe_counter!(
        LMTP_RECEIVED_BYTES,
        Unit::Bytes,
        "Message bytes received over LMTP"
    );
    describe_gauge!(JOBS_PENDING, "Jobs waiting or running");
    describe_gauge!(JOBS_RETRYING, "Jobs waiting for a retry");
    describe_gauge!(JOBS_DEAD, "Dead-lettered jobs");
    describe_counter!(API_REQUESTS, "API requests, by route, method and status");
    describe_histogram!(
        API_REQUEST_SECONDS,
        Unit::Seconds,
        "API request latency, by route and method"
    );
    describe_gauge!(API_EVENT_STREAMS, "Live event streams open on this node");
    describe_gauge!(
        BACKEND_UP,
        "Whether the backend answered the last readiness check"
    );
    describe_histogram!(
        BACKEND_OPERATION_SECONDS,
        Unit::Seconds,
        "Backend operation latency, by backend and operation"
    );
    describe_counter!(
        BACKEND_OPERATION_ERRORS,
        "Backend operations that failed, by backend, operation and kind of error"
    );
    describe_gauge!(
        INDEX_LAG,
        "Stored messages the search index has not caught up with, summed over users"
    );
    describe_gauge!(
        INDEX_STORED,
        "Messages stored, at the last index lag sample"
    );
    describe_gauge!(
        INDEX_INDEXED,
        "Documents in the search index, at the last index lag sample"
    );
    describe_gauge!(
        INDEX_LAGGING_USERS,
        "Users whose search index had not caught up, at the last index lag sample"
    );
    describe_gauge!(
        INDEX_LAG_SAMPLED,
        Unit::Seconds,
        "When the index lag was last sampled, since the Unix epoch"
    );
    describe_counter!(
        JOBS_PROCESSED,
        "Job attempts finished by this node's workers, by kind and outcome"
    );
    describe_gauge!(
        API_ACTIVE_SESSIONS,
        "Sessions with an authenticated API request on this node in the activity window"
    );
}

/// Histogram buckets, in seconds, for the latency histograms above.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Times one backend operation and counts its failure: the single place every metered
/// backend wrapper records through, so each backend needn't repeat it.
///
/// `error_kind` names a failure with a bounded label value. A caller that stops waiting (a
/// timeout, a client gone) drops the future; that counts as error `cancelled`, so a backend
/// that hangs shows up instead of vanishing from the latency histogram.
pub async fn observe<T, E, F>(
    backend: &'static str,
    op: &'static str,
    error_kind: fn(&E) -> &'static str,
    operation: F,
) -> Result<T, E>
where
    F: std::future::Future<Output = Result<T, E>>,
{
    let mut timer = OperationTimer {
        backend,
        op,
        started: std::time::Instant::now(),
        outcome: Some("cancelled"),
    };
    let result = operation.await;
    timer.outcome = match &result {
        Ok(_) => None,
        Err(e) => Some(error_kind(e)),
    };
    result
}

/// Records one operation when dropped, whether it finished or was abandoned.
struct OperationTimer {
    backend: &'static str,
    op: &'static str,
    started: std::time::Instant,
    /// The error label, or `None` for success.
    outcome: Option<&'static str>,
}

impl Drop for OperationTimer {
    fn drop(&mut self) {
        metrics::histogram!(BACKEND_OPERATION_SECONDS, "backend" => self.backend, "op" => self.op)
            .record(self.started.elapsed().as_secs_f64());
        if let Some(error) = self.outcome {
            metrics::counter!(
                BACKEND_OPERATION_ERRORS,
                "backend" => self.backend,
                "op" => self.op,
                "error" => error
            )
            .increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;

    /// Runs `f` with a private Prometheus recorder and returns what it rendered.
    fn rendered(f: impl FnOnce()) -> String {
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .expect("buckets")
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, f);
        handle.render()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn successes_are_timed_and_failures_counted_by_kind() {
        let text = rendered(|| {
            block_on(async {
                let ok: Result<u8, &str> =
                    observe("sqlite", "get_user", |_| "x", async { Ok(1) }).await;
                assert_eq!(ok, Ok(1));
                let err: Result<u8, &str> =
                    observe("sqlite", "deliver", |_| "unavailable", async {
                        Err("down")
                    })
                    .await;
                assert_eq!(err, Err("down"));
            })
        });
        assert!(
            text.contains(
                r#"palisade_backend_operation_seconds_count{backend="sqlite",op="get_user"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"palisade_backend_operation_errors_total{backend="sqlite",op="deliver",error="unavailable"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"op="get_user",error"#),
            "a success is no error: {text}"
        );
    }

    #[test]
    fn an_abandoned_operation_counts_as_cancelled() {
        let text = rendered(|| {
            block_on(async {
                let hanging =
                    observe::<(), (), _>("redis", "get", |_| "unavailable", std::future::pending());
                let gave_up =
                    tokio::time::timeout(std::time::Duration::from_millis(1), hanging).await;
                assert!(gave_up.is_err());
            })
        });
        assert!(
            text.contains(r#"palisade_backend_operation_errors_total{backend="redis",op="get",error="cancelled"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"palisade_backend_operation_seconds_count{backend="redis",op="get"} 1"#
            ),
            "{text}"
        );
    }
}
