//! Palisade's messaging API: a poem-openapi service over the store, search index, job queue
//! and cache, scoped by the session's user in every handler.
//!
//! The binary edges (the daemon, or a separate API process) build an [`AppState`] from the
//! configured backends and call [`serve`].

mod account;
pub mod active_sessions;
mod autocrypt;
mod body;
mod body_limit;
mod compose;
pub mod deletion;
pub mod document;
mod draft_files;
pub mod error;
pub mod html;
pub mod import_status;
mod imports;
pub mod listener;
mod login_limits;
mod mail;
pub mod mailer;
mod ownership;
pub mod passwords;
mod pixels;
pub mod remote;
mod remote_trust;
pub mod request_id;
pub mod rules;
pub mod serde_payload;
pub mod sessions;
pub mod streams;
mod suggest;
pub mod types;
mod web_client;

use error::{ApiError, to_json_error};
pub use imports::ImportSettings;
use mailer::Mailer;
use palisade_cache::Cache;
use palisade_config::ApiConfig;
use palisade_index::SearchIndex;
use palisade_ingest::{Pipeline, error_chain};
use palisade_model::{MessageId, UserId};
use palisade_store::{Page, Store};
use poem::middleware::SetHeader;
use poem::{Endpoint, EndpointExt, Request, Route};
use poem_openapi::auth::Bearer;
use poem_openapi::{OpenApiService, SecurityScheme};
use sessions::{Session, Sessions};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// Base path of every API route.
pub const API_PREFIX: &str = "/api/v1";
/// Largest page a list returns.
pub const MAX_PAGE: u32 = 100;
/// Page size when the client names none.
pub const DEFAULT_PAGE: u32 = 25;

/// Everything a handler needs, shared by all requests.
pub struct AppState {
    /// Mail storage.
    pub store: Arc<dyn Store>,
    /// Search.
    pub index: Arc<dyn SearchIndex>,
    /// Sessions, rate limits and events.
    pub cache: Arc<dyn Cache>,
    /// How copies enter a mailbox (sent copies) and how changed messages are queued again.
    pub pipeline: Arc<Pipeline>,
    /// Outgoing mail.
    pub mailer: Arc<Mailer>,
    /// Session store on top of `cache`.
    pub sessions: Sessions,
    /// Open event streams per user on this node, capped by the configuration.
    pub event_streams: streams::StreamSlots,
    /// Sessions recently using the API on this node, for the active-sessions gauge.
    pub active_sessions: active_sessions::ActiveSessions,
    /// Exports being prepared on this node at once: each reads a whole mailbox.
    pub exports: Arc<tokio::sync::Semaphore>,
    /// The image proxy and the tracking-host list.
    pub remote: remote::RemoteState,
    /// Imports running on this node: one per user, a few in all.
    pub imports: import_status::ImportSlots,
    /// Where uploaded mailboxes wait, and the message size limit imports apply.
    pub import_settings: ImportSettings,
    /// Listener and policy settings.
    pub config: ApiConfig,
}

/// Exports one node prepares at once; more wait for a later request (429 with Retry-After).
const EXPORTS_AT_ONCE: usize = 2;

impl AppState {
    /// State over the given backends.
    pub fn new(
        store: Arc<dyn Store>,
        index: Arc<dyn SearchIndex>,
        cache: Arc<dyn Cache>,
        pipeline: Arc<Pipeline>,
        mailer: Mailer,
        config: ApiConfig,
    ) -> Result<Self, remote::RemoteSetupError> {
        let ttl = Duration::from_secs(config.session_ttl_minutes.saturating_mul(60));
        Ok(AppState {
            remote: remote::RemoteState::new(&config.remote)?,
            sessions: Sessions::new(cache.clone(), ttl),
            event_streams: streams::StreamSlots::new(
                usize::try_from(config.max_event_streams_per_user).unwrap_or(usize::MAX),
            ),
            active_sessions: active_sessions::ActiveSessions::default(),
            exports: Arc::new(tokio::sync::Semaphore::new(EXPORTS_AT_ONCE)),
            imports: import_status::ImportSlots::new(imports::IMPORTS_AT_ONCE),
            import_settings: ImportSettings::default(),
            store,
            index,
            cache,
            pipeline,
            mailer: Arc::new(mailer),
            config,
        })
    }

    /// Uploaded mailboxes wait in `settings.spool_dir` (the daemon's `<data_dir>/spool`, not
    /// a temporary directory that may live in memory), and their messages may be as large as
    /// delivered ones.
    pub fn with_import_settings(mut self, settings: ImportSettings) -> Self {
        self.import_settings = settings;
        self
    }

    /// Queues re-indexing of a message after a change (tags, deletion).
    pub(crate) async fn reindex(&self, user: UserId, message: MessageId) -> Result<(), ApiError> {
        self.pipeline.requeue(user, message).await.map_err(|e| {
            tracing::warn!(error = %error_chain(&e), "job queue unavailable");
            ApiError::unavailable("job queue unavailable")
        })
    }
}

/// The session behind a request's bearer token.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_token")]
pub struct Auth(pub Session);

async fn check_token(req: &Request, bearer: Bearer) -> poem::Result<Session> {
    let state = req
        .data::<Arc<AppState>>()
        .ok_or_else(|| poem::Error::from(ApiError::unavailable("not configured")))?;
    match state.sessions.authenticate(&bearer.token).await {
        Ok(Some(session)) => {
            state.active_sessions.seen(&session.id);
            Ok(session)
        }
        Ok(None) => Err(ApiError::unauthorized("missing, expired or revoked session").into()),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

/// A page request from query parameters.
pub(crate) fn page(cursor: Option<String>, limit: Option<u32>) -> Page {
    Page {
        after: cursor.filter(|c| !c.is_empty()),
        limit: limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE) as usize,
    }
}

/// Every handler of the API, in the order the document lists them.
pub type Handlers = (
    account::AccountApi,
    mail::MailApi,
    compose::ComposeApi,
    draft_files::DraftFilesApi,
    suggest::SuggestApi,
    ownership::OwnershipApi,
    autocrypt::AutocryptApi,
    remote::RemoteApi,
    remote_trust::RemoteTrustApi,
    imports::ImportApi,
);

/// The OpenAPI service with every handler.
pub fn service() -> OpenApiService<Handlers, ()> {
    OpenApiService::new(Handlers::default(), "Palisade", env!("CARGO_PKG_VERSION"))
        .description("Privacy-focused mail: read, organize, search and send mail.")
        .url_prefix(API_PREFIX)
}

/// The OpenAPI document exactly as the API serves it at `/api/v1/openapi.json`: what the web
/// client's types are generated from.
pub fn served_document() -> String {
    document::document(&service().spec())
}

/// The whole HTTP application: API, OpenAPI document, Swagger UI and, when configured, the
/// web client's static files.
pub fn app(state: Arc<AppState>) -> impl poem::Endpoint {
    let api = service();
    let served = served_document();
    let allowed = Arc::new(document::AllowedMethods::from_document(&served));
    let spec = poem::endpoint::make_sync(move |_| {
        poem::Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(served.clone())
    });
    let ui = api.swagger_ui();
    let max_body = state.config.max_body_bytes;
    let max_import = state.config.max_import_bytes;
    let import_path = format!("{API_PREFIX}{}", imports::IMPORT_PATH);
    let mut route = Route::new()
        .nest(API_PREFIX, api)
        .at(format!("{API_PREFIX}/openapi.json"), spec)
        .nest(format!("{API_PREFIX}/docs"), ui);
    if let Some(dir) = state.config.static_dir.clone().filter(|d| d.is_dir()) {
        route = route.nest("/", web_client::static_files(dir));
    }
    route
        .around(move |ep, mut req| {
            let allowed = allowed.clone();
            // Mailbox uploads are spooled to disk as they arrive, so they have a limit of
            // their own; every other body is read into memory.
            let limit =
                if req.method() == poem::http::Method::POST && req.uri().path() == import_path {
                    BodyLimit::Import(max_import)
                } else {
                    BodyLimit::Body(max_body as u64)
                };
            async move {
                let request_id = request_id::for_request(req.headers());
                let declared = req
                    .headers()
                    .get(poem::http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if declared.is_some_and(|n| n > limit.bytes()) {
                    let mut resp = to_json_error(too_large(limit).into());
                    request_id::set(&mut resp, &request_id);
                    return Ok(resp);
                }
                // A body without a length fails to read past the limit, so it cannot fill
                // memory, and the request is answered 413 like a declared one.
                let (body, exceeded) =
                    body_limit::Capped::new(req.take_body().into_async_read(), limit.bytes());
                req.set_body(poem::Body::from_async_read(body));
                let path = req.uri().path().to_string();
                let method = method_label(req.method());
                let route = route_label(&allowed, &path);
                // Every log line of the request carries its id, route and method: never the
                // raw path, which holds message ids, nor the query, which holds searches.
                let span = tracing::info_span!(
                    "request",
                    id = %request_id,
                    method = %method,
                    route = %route
                );
                let started = std::time::Instant::now();
                let result = ep.call(req).instrument(span.clone()).await;
                let result = if exceeded.load(std::sync::atomic::Ordering::Relaxed) {
                    Err(too_large(limit).into())
                } else {
                    result
                };
                let status = match &result {
                    Ok(resp) => resp.status(),
                    Err(e) => e.status(),
                };
                let elapsed = started.elapsed();
                record_request(&route, method, status, elapsed);
                span.in_scope(|| {
                    let ms = elapsed.as_millis() as u64;
                    let status = status.as_u16();
                    if route == palisade_metrics::ROUTE_STATIC {
                        tracing::debug!(status, ms, "request served");
                    } else {
                        tracing::info!(status, ms, "request served");
                    }
                });
                let mut resp = match result {
                    Ok(resp) => {
                        let mut resp = poem::IntoResponse::into_response(resp);
                        web_client::set_headers(&path, API_PREFIX, resp.headers_mut());
                        resp
                    }
                    // An undeclared method on a known path: say which ones it has (RFC 9110).
                    Err(e) if e.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED => {
                        let mut resp = to_json_error(e);
                        if let Some(allow) = allowed.for_path(&path) {
                            resp.headers_mut().insert(poem::http::header::ALLOW, allow);
                        }
                        resp
                    }
                    // Answered here rather than by the catch-all, so errors carry the id too.
                    Err(e) => to_json_error(e),
                };
                request_id::set(&mut resp, &request_id);
                Ok::<_, poem::Error>(resp)
            }
        })
        .with(
            SetHeader::new()
                .overriding("X-Content-Type-Options", "nosniff")
                .overriding("Referrer-Policy", "no-referrer")
                .overriding("X-Frame-Options", "DENY"),
        )
        .data(state)
        .catch_all_error(|e| async move { to_json_error(e) })
}

/// The `route` label of a path: its route template, never the raw path, which carries ids.
fn route_label(allowed: &document::AllowedMethods, path: &str) -> String {
    if path == API_PREFIX || path.starts_with(&format!("{API_PREFIX}/")) {
        allowed
            .template_for(path)
            .unwrap_or(palisade_metrics::ROUTE_UNMATCHED)
            .to_string()
    } else {
        palisade_metrics::ROUTE_STATIC.to_string()
    }
}

/// The `method` label: only the methods HTTP defines, anything else as one bounded value.
fn method_label(method: &poem::http::Method) -> &'static str {
    use poem::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Counts a request by its route and method labels and times it.
fn record_request(
    route: &str,
    method: &'static str,
    status: poem::http::StatusCode,
    elapsed: Duration,
) {
    use palisade_metrics::metrics::{counter, histogram};
    counter!(
        palisade_metrics::API_REQUESTS,
        "route" => route.to_string(),
        "method" => method,
        "status" => status.as_u16().to_string()
    )
    .increment(1);
    histogram!(
        palisade_metrics::API_REQUEST_SECONDS,
        "route" => route.to_string(),
        "method" => method
    )
    .record(elapsed.as_secs_f64());
}

/// The limit on one request's body, and which setting sets it.
#[derive(Clone, Copy)]
enum BodyLimit {
    /// `api.max_body_bytes`: every request but a mailbox upload.
    Body(u64),
    /// `api.max_import_bytes`: a mailbox upload.
    Import(u64),
}

impl BodyLimit {
    fn bytes(self) -> u64 {
        match self {
            BodyLimit::Body(n) | BodyLimit::Import(n) => n,
        }
    }
}

/// The refusal of a request body over the limit.
fn too_large(limit: BodyLimit) -> ApiError {
    let message = match limit {
        BodyLimit::Body(n) => format!("request bodies are limited to {n} bytes"),
        BodyLimit::Import(n) => format!(
            "mailbox uploads are limited to {n} bytes (api.max_import_bytes); \
             split the mbox, or import it with palisade-admin import"
        ),
    };
    ApiError::PayloadTooLarge(error::ErrorBody::json("payload_too_large", message))
}

/// Serves [`app`] on `listener` until `shutdown` fires, then drains open requests.
pub async fn serve(
    acceptor: listener::ProxyAcceptor,
    state: Arc<AppState>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    // Sessions age out of the gauge even while no request comes in.
    let sampler = {
        let state = state.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            loop {
                tokio::select! {
                    _ = tick.tick() => { state.active_sessions.sample(); }
                    _ = stop.cancelled() => break,
                }
            }
        })
    };
    let served = poem::Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            app(state),
            async move { shutdown.cancelled().await },
            Some(Duration::from_secs(10)),
        )
        .await;
    sampler.abort();
    served
}
