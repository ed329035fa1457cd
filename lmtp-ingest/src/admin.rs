//! The admin listener: `/healthz`, `/readyz` and `/metrics`, apart from the mail and API
//! listeners so that it can stay on a private address.
//!
//! Readiness asks each backend this node's roles need for something cheap that touches it
//! (a lookup of a user that does not exist, a document count, the queue's counts, a cache
//! read): no new trait method was needed, and every backend answers it the same way.

use palisade_cache::Cache;
use palisade_config::{Config, Role};
use palisade_index::SearchIndex;
use palisade_jobs::JobQueue;
use palisade_model::UserId;
use palisade_store::Store;
use poem::http::StatusCode;
use poem::{EndpointExt, Response, Route, get, handler, web::Data};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Installs the Prometheus recorder for the whole process; `None` when one already is (a
/// second daemon in one test process), in which case metrics still go to the first.
pub fn install_recorder() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    let builder = metrics_exporter_prometheus::PrometheusBuilder::new();
    let builder = builder
        .set_buckets(palisade_metrics::LATENCY_BUCKETS)
        .ok()?;
    let handle = builder.install_recorder().ok()?;
    palisade_metrics::describe();
    Some(handle)
}

/// The backends a node's roles need, each checked by readiness.
#[derive(Clone)]
pub struct Readiness {
    /// Users and mail: every role needs them.
    pub store: Arc<dyn Store>,
    /// Jobs: every role publishes or consumes them.
    pub queue: Arc<dyn JobQueue>,
    /// The search index, for `api` (search) and `worker` (indexing) nodes.
    pub index: Option<Arc<dyn SearchIndex>>,
    /// Sessions, rate limits and events, for `api` nodes (deliveries only publish events,
    /// best effort, so an `lmtp` node stays ready without it).
    pub cache: Option<Arc<dyn Cache>>,
    /// How long each check may take before it counts as failed.
    pub timeout: Duration,
}

impl Readiness {
    /// The checks `config`'s roles need, over the opened backends.
    pub fn for_roles(
        config: &Config,
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        index: Option<Arc<dyn SearchIndex>>,
        cache: Arc<dyn Cache>,
    ) -> Self {
        let needs_index = config.has_role(Role::Api) || config.has_role(Role::Worker);
        Readiness {
            store,
            queue,
            index: index.filter(|_| needs_index),
            cache: config.has_role(Role::Api).then_some(cache),
            timeout: Duration::from_secs(config.admin.check_timeout_secs.max(1)),
        }
    }

    /// Checks every needed backend at once; returns the names of those that failed.
    pub async fn failing(&self) -> Vec<&'static str> {
        let store = self.store.clone();
        let queue = self.queue.clone();
        let index = self.index.clone();
        let cache = self.cache.clone();
        let (store_ok, queue_ok, index_ok, cache_ok) = tokio::join!(
            self.check("store", async move {
                store.get_user(UserId::new_random()).await.is_ok()
            }),
            self.check("queue", async move { queue.stats().await.is_ok() }),
            async {
                match index {
                    Some(index) => {
                        self.check("index", async move {
                            index.count(UserId::new_random()).await.is_ok()
                        })
                        .await
                    }
                    None => true,
                }
            },
            async {
                match cache {
                    Some(cache) => {
                        self.check(
                            "cache",
                            async move { cache.get("health:ping").await.is_ok() },
                        )
                        .await
                    }
                    None => true,
                }
            },
        );
        [
            ("store", store_ok),
            ("queue", queue_ok),
            ("index", index_ok),
            ("cache", cache_ok),
        ]
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| name)
        .collect()
    }

    async fn check(&self, backend: &'static str, probe: impl Future<Output = bool>) -> bool {
        let ok = tokio::time::timeout(self.timeout, probe)
            .await
            .unwrap_or(false);
        palisade_metrics::metrics::gauge!(palisade_metrics::BACKEND_UP, "backend" => backend)
            .set(if ok { 1.0 } else { 0.0 });
        ok
    }
}

/// What the admin handlers share.
struct AdminState {
    readiness: Readiness,
    draining: Arc<AtomicBool>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// Serves the admin endpoints on `listener` until `stop` fires. `draining` turns `/readyz`
/// unready before the other listeners close.
pub async fn serve(
    listener: tokio::net::TcpListener,
    readiness: Readiness,
    draining: Arc<AtomicBool>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let state = Arc::new(AdminState {
        readiness,
        draining,
        metrics,
    });
    let app = Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics_text))
        .data(state);
    poem::Server::new_with_acceptor(poem::listener::TcpAcceptor::from_tokio(listener)?)
        .run_with_graceful_shutdown(
            app,
            async move { stop.cancelled().await },
            Some(Duration::from_secs(2)),
        )
        .await
}

#[handler]
fn healthz() -> Response {
    json(StatusCode::OK, serde_json::json!({"status": "alive"}))
}

#[handler]
async fn readyz(state: Data<&Arc<AdminState>>) -> Response {
    if state.draining.load(Ordering::SeqCst) {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "draining"}),
        );
    }
    let failing = state.readiness.failing().await;
    if failing.is_empty() {
        json(StatusCode::OK, serde_json::json!({"status": "ready"}))
    } else {
        json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"status": "unready", "failing": failing}),
        )
    }
}

#[handler]
async fn metrics_text(state: Data<&Arc<AdminState>>) -> Response {
    // Queue counts are sampled here rather than on every job, which would cost a backend
    // round trip per change.
    if let Ok(Ok(stats)) =
        tokio::time::timeout(state.readiness.timeout, state.readiness.queue.stats()).await
    {
        use palisade_metrics::metrics::gauge;
        gauge!(palisade_metrics::JOBS_PENDING).set(stats.pending as f64);
        gauge!(palisade_metrics::JOBS_RETRYING).set(stats.retrying as f64);
        gauge!(palisade_metrics::JOBS_DEAD).set(stats.dead as f64);
    }
    let body = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}
