//! Signing in and out, the user's sessions (devices), identities, and the live event stream.

use crate::error::{ApiError, ErrorBody};
use crate::login_limits::{LoginLimits, hit_address};
use crate::passwords::{self, verify};
use crate::types::{IdentityView, LoginResult, Me, SessionView};
use crate::{AppState, Auth};
use futures::StreamExt;
use futures::stream::BoxStream;
use palisade_cache::RateDecision;
use palisade_model::UserId;
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::{EventStream, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Tags};
use std::sync::Arc;
use std::time::Duration;
use validator::Validate;

/// Interval of keep-alive comments on event streams; also how soon a stream whose client
/// has gone is noticed and its slot freed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

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

/// A change of the signed-in user's password.
#[derive(Debug, Object, Validate)]
pub(crate) struct ChangePasswordRequest {
    /// The password in use now; a wrong one answers 403 and counts as a failed sign-in.
    #[validate(length(min = 1, max = 1024, message = "must be 1 to 1024 characters"))]
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub current_password: String,
    /// The new password: 8 to 1024 characters, different from the current one (400
    /// otherwise).
    #[validate(length(min = 8, max = 1024, message = "must be 8 to 1024 characters"))]
    #[oai(validator(min_length = 8, max_length = 1024))]
    pub new_password: String,
}

/// The signed-in user's confirmation that their account is to be deleted.
#[derive(Debug, Object, Validate)]
pub(crate) struct DeleteAccountRequest {
    /// The account's password; a wrong one answers 403 and counts as a failed sign-in.
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

/// Account endpoints.
#[derive(Default)]
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

    /// Changes the signed-in user's password and ends every other session of the user; the
    /// current one stays signed in.
    ///
    /// The current password is checked under the same limits as sign-in: each attempt counts
    /// against the client address, and a wrong password counts as a failed sign-in of the
    /// account (403), so this cannot be used to guess passwords; once the failures are used
    /// up it answers 429 with `Retry-After`.
    #[oai(path = "/me/password", method = "post")]
    async fn change_password(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: Auth,
        body: crate::body::JsonBody<ChangePasswordRequest>,
    ) -> Result<NoContent, ApiError> {
        let user = auth.0.user_id;
        let ip = client_ip(req);
        let body = body.0;
        let wrong = "the current password is wrong";
        confirm_password(&state, user, &ip, body.current_password.clone(), wrong).await?;
        if body.new_password == body.current_password {
            return Err(ApiError::bad_request(
                "new_password: must differ from the current password",
            ));
        }
        let hash = passwords::hash_blocking(body.new_password)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "password hashing failed");
                ApiError::unavailable("password hashing failed")
            })?;
        if !state.store.set_password_hash(user, &hash).await? {
            return Err(ApiError::unauthorized("the account no longer exists"));
        }
        let ended = state.sessions.revoke_others(user, &auth.0.id).await?;
        tracing::info!(%user, client = %ip, ended, "password changed");
        Ok(NoContent::Done)
    }

    /// Deletes the signed-in user's account for good: every session ends, and their mail,
    /// raw messages, discussions, tags, contacts, drafts and files, search documents and
    /// queued work are removed; their addresses refuse mail from then on (550 5.1.1).
    ///
    /// The password is checked under the same limits as sign-in: a wrong one answers 403
    /// and counts as a failed sign-in of the account; once the failures are used up it
    /// answers 429 with `Retry-After`. What backups still hold is described in
    /// docs/data-ownership.md.
    #[oai(path = "/me", method = "delete")]
    async fn delete_account(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: Auth,
        body: crate::body::JsonBody<DeleteAccountRequest>,
    ) -> Result<NoContent, ApiError> {
        let id = auth.0.user_id;
        let ip = client_ip(req);
        confirm_password(&state, id, &ip, body.0.password, "the password is wrong").await?;
        let user = current_user(&state, id).await?;
        crate::deletion::delete_account(
            state.store.as_ref(),
            state.index.as_ref(),
            state.cache.as_ref(),
            &state.sessions,
            &user,
        )
        .await
        .map_err(|e| {
            tracing::error!(user = %id, error = %e, "account deletion failed");
            ApiError::unavailable("the account could not be deleted completely; try again")
        })?;
        Ok(NoContent::Done)
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

/// Checks the signed-in user's password before a change only they may make, under the
/// sign-in limits: each attempt counts against the client address, a wrong password counts
/// as a failed sign-in of the account, and once those are used up the answer is 429 with
/// `Retry-After`, so no such endpoint can be used to guess passwords. A wrong password is a
/// 403 saying `wrong`.
async fn confirm_password(
    state: &AppState,
    user: UserId,
    ip: &str,
    password: String,
    wrong: &'static str,
) -> Result<(), ApiError> {
    let cfg = &state.config;
    let cache = state.cache.as_ref();
    limited(hit_address(cache, ip, cfg.login_attempts_per_address).await?)?;
    let limits = LoginLimits::for_attempt(cache, Some(user), "", ip).await?;
    if let Some(wait) = limits.locked_for(cache).await? {
        tracing::info!(%user, client = %ip, "password check refused: too many failures");
        return Err(ApiError::too_many(wait.as_secs()));
    }
    let stored = state.store.password_hash(user).await?;
    if !verify(password, stored).await {
        limits.failed(cache, cfg.login_attempts_per_account).await?;
        tracing::info!(%user, client = %ip, "password check failed: {wrong}");
        return Err(ApiError::forbidden(wrong));
    }
    Ok(())
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
