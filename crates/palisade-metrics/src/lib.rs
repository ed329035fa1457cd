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
}

/// Histogram buckets, in seconds, for the latency histograms above.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
