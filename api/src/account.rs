//! Signing in and out, the user's sessions (devices), identities, and the live event stream.

use crate::error::{ApiError, ErrorBody};
use crate::login_limits::{LoginLimits, hit_address};
use crate::types::{IdentityView, LoginResult, Me, SessionView};
use crate::{AppState, Auth};
use argon2::password_hash::PasswordVerifier;
use futures::StreamExt;
use futures::stream::BoxStream;
use palisade_cache::RateDecision;
use palisade_model::UserId;
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::{EventStream, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use validator::Validate;

/// Interval of keep-alive comments on event streams; also how soon a stream whose client
/// has gone is noticed and its slot freed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Compared against when the account does not exist, so a wrong name costs as much time as
/// a wrong password and does not reveal which accounts exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(uuid::Uuid::new_v4().to_string().as_bytes())
        .map(|h| h.to_string())
        .unwrap_or_default()
});

#[derive(Tags)]
enum ApiTags {
    /// Sessions and the signed-in user.
    Account,
}

/// Credentials to sign in with.
#[derive(Debug, Object, Validate)]
pub(crate) struct LoginRequest {
    /// One of the user's addresses, or their user name.
    #[validate(length(min = 1, max = 320, message = "must be 1 to 320 characters"))]
    #[oai(validator(min_length = 1, max_length = 320))]
    pub address: String,
    /// Password.
    #[validate(length(min = 1, max = 1024, message = "must be 1 to 1024 characters"))]
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: String,
}

/// A live event.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub(crate) struct EventView {
    /// What happened: `new_mail`.
    #[oai(rename = "type")]
    pub kind: String,
    /// The message concerned.
    pub message_id: Option<String>,
}

#[derive(ApiResponse)]
enum NoContent {
    /// Done.
    #[oai(status = 204)]
    Done,
}

/// The client's address as the listener determined it (the PROXY header when enabled).
pub(crate) fn client_ip(req: &Request) -> String {
    req.remote_addr()
        .as_socket_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn limited(decision: RateDecision) -> Result<(), ApiError> {
    if decision.allowed {
        Ok(())
    } else {
        Err(ApiError::too_many(decision.retry_after.as_secs()))
    }
}

async fn verify(password: String, hash: Option<String>) -> bool {
    let has_hash = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false);
    ok && has_hash
}

/// Account endpoints.
pub struct AccountApi;

#[OpenApi(tag = "ApiTags::Account")]
impl AccountApi {
    /// Signs in with an address (or user name) and password, returning a bearer token.
    ///
    /// Attempts are limited per client address, and failures per account (its name and
    /// aliases share one budget). Once an account's failures are used up, addresses that
    /// never signed in to it get 429 with `Retry-After` until the window ends, while an
    /// address that signed in to it within 30 days can still sign in.
    #[oai(path = "/auth/login", method = "post")]
    async fn login(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        body: crate::body::JsonBody<LoginRequest>,
    ) -> Result<Json<LoginResult>, ApiError> {
        let ip = client_ip(req);
        let cfg = &state.config;
        let cache = state.cache.as_ref();
        limited(hit_address(cache, &ip, cfg.login_attempts_per_address).await?)?;
        let typed = body.address.trim().to_lowercase();
        // Resolved first, so every alias of an account counts against the same budget.
        let user = state.store.find_user(&typed).await?;
        let limits =
            LoginLimits::for_attempt(cache, user.as_ref().map(|u| u.id), &typed, &ip).await?;
        if let Some(wait) = limits.locked_for(cache).await? {
            tracing::info!(client = %ip, known_address = limits.known_address(), "login refused: too many failures");
            return Err(ApiError::too_many(wait.as_secs()));
        }
        let hash = match &user {
            Some(u) => state.store.password_hash(u.id).await?,
            None => None,
        };
        let user = match (verify(body.0.password, hash).await, user) {
            (true, Some(user)) => user,
            _ => {
                limits.failed(cache, cfg.login_attempts_per_account).await?;
                tracing::info!(client = %ip, "login failed");
                return Err(ApiError::unauthorized("invalid address or password"));
            }
        };
        LoginLimits::succeeded(cache, user.id, &ip).await?;
        let user_agent = req
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        let (session, token) = state
            .sessions
            .create(user.id, ip.clone(), user_agent)
            .await?;
        tracing::info!(user = %user.id, client = %ip, session = %session.id, "login");
        let ttl = chrono::Duration::from_std(state.sessions.ttl()).unwrap_or_default();
        Ok(Json(LoginResult {
            token,
            session_id: session.id,
            expires_at: chrono::Utc::now() + ttl,
        }))
    }

    /// Ends the current session.
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(&self, state: Data<&Arc<AppState>>, auth: Auth) -> Result<NoContent, ApiError> {
        state.sessions.revoke(auth.0.user_id, &auth.0.id).await?;
        Ok(NoContent::Done)
    }

    /// Lists the user's sessions (signed-in devices).
    #[oai(path = "/auth/sessions", method = "get")]
    async fn sessions(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
    ) -> Result<Json<Vec<SessionView>>, ApiError> {
        let list = state.sessions.list(auth.0.user_id).await?;
        Ok(Json(
            list.into_iter()
                .map(|s| SessionView {
                    current: s.id == auth.0.id,
                    id: s.id,
                    created_at: s.created_at,
                    last_seen_at: s.last_seen_at,
                    client_address: s.client_address,
                    user_agent: s.user_agent,
                })
                .collect(),
        ))
    }

    /// Revokes one of the user's sessions.
    #[oai(path = "/auth/sessions/:id", method = "delete")]
    async fn revoke_session(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<NoContent, ApiError> {
        if state.sessions.revoke(auth.0.user_id, &id.0).await? {
            Ok(NoContent::Done)
        } else {
            Err(ApiError::not_found("no such session"))
        }
    }

    /// The signed-in user.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, state: Data<&Arc<AppState>>, auth: Auth) -> Result<Json<Me>, ApiError> {
        let user = current_user(&state, auth.0.user_id).await?;
        Ok(Json(Me::from(&user)))
    }

    /// The addresses the user receives at and may send from.
    #[oai(path = "/me/identities", method = "get")]
    async fn identities(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
    ) -> Result<Json<Vec<IdentityView>>, ApiError> {
        let user = current_user(&state, auth.0.user_id).await?;
        Ok(Json(
            user.addresses
                .iter()
                .enumerate()
                .map(|(i, a)| IdentityView {
                    address: a.to_string(),
                    default: i == 0,
                })
                .collect(),
        ))
    }

    /// A server-sent event stream of the user's new mail.
    ///
    /// A user may hold a few streams open at once (5 by default, per server); one more gets
    /// 429 with `Retry-After` until another closes.
    #[oai(path = "/events", method = "get")]
    async fn events(
        &self,
        state: Data<&Arc<AppState>>,
        auth: Auth,
    ) -> Result<EventStream<BoxStream<'static, EventView>>, ApiError> {
        let user = auth.0.user_id;
        let Some(slot) = state.event_streams.try_open(user) else {
            tracing::info!(%user, "event stream refused: too many open");
            return Err(ApiError::TooManyRequests(
                ErrorBody::json(
                    "too_many_streams",
                    format!(
                        "at most {} event streams may be open at once; close one first",
                        state.event_streams.max_per_user()
                    ),
                ),
                // A stream whose client vanished is noticed at its next keep-alive.
                KEEP_ALIVE.as_secs(),
            ));
        };
        let channel = palisade_cache::mail_events_channel(&user.to_string());
        let subscription = state.cache.subscribe(&channel).await?;
        let events = subscription
            .filter_map(move |payload| {
                // The slot is held as long as the stream lives, and freed when it is dropped.
                let _held = &slot;
                async move {
                    let v: serde_json::Value = serde_json::from_slice(&payload).ok()?;
                    Some(EventView {
                        kind: v.get("type")?.as_str()?.to_string(),
                        message_id: v
                            .get("message_id")
                            .and_then(|m| m.as_str())
                            .map(str::to_string),
                    })
                }
            })
            .boxed();
        Ok(EventStream::new(events).keep_alive(KEEP_ALIVE))
    }
}

/// The session's user; a session outliving its user is treated as signed out.
pub(crate) async fn current_user(
    state: &AppState,
    id: UserId,
) -> Result<palisade_model::User, ApiError> {
    state
        .store
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))
}
