//! One error shape for every failure: `{"error": code, "message": reason}` with a 4xx/5xx
//! status, whether a handler, the auth check or request parsing produced it.

use palisade_cache::CacheError;
use palisade_index::IndexError;
use palisade_store::StoreError;
use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// The body of every error response.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// Machine-readable code, for example `not_found` or `validation_failed`.
    pub error: String,
    /// Human-readable reason.
    pub message: String,
}

impl ErrorBody {
    /// A body with `error` code and `message`.
    pub fn json(error: &str, message: impl Into<String>) -> Json<ErrorBody> {
        Json(ErrorBody {
            error: error.to_string(),
            message: message.into(),
        })
    }
}

/// Every failure a handler can report.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed or fails validation.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No valid session.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The session may not do this (for example send as someone else's address).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such resource for this user.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with existing data.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The request body is too large.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// Too many attempts; retry after the given number of seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// The relay refused the message.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
    /// A backend is down; retrying later may work.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl ApiError {
    /// A 400 with a reason.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest(ErrorBody::json("bad_request", message))
    }

    /// A 400 for a request whose body or parameters break the documented rules.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::BadRequest(ErrorBody::json("validation_failed", message))
    }

    /// A 400 for a request that failed `validator` checks, listing each failing field.
    pub fn validation(errors: &validator::ValidationErrors) -> Self {
        let mut reasons: Vec<String> = errors
            .field_errors()
            .iter()
            .map(|(field, errs)| {
                let what: Vec<String> = errs
                    .iter()
                    .map(|e| {
                        e.message
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_else(|| e.code.to_string())
                    })
                    .collect();
                format!("{field}: {}", what.join(", "))
            })
            .collect();
        reasons.sort();
        ApiError::BadRequest(ErrorBody::json("validation_failed", reasons.join("; ")))
    }

    /// A 401.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::Unauthorized(ErrorBody::json("unauthorized", message))
    }

    /// A 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::Forbidden(ErrorBody::json("forbidden", message))
    }

    /// A 404 naming what was not found.
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::NotFound(ErrorBody::json("not_found", what))
    }

    /// A 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::Conflict(ErrorBody::json("conflict", message))
    }

    /// A 429 with its Retry-After.
    pub fn too_many(retry_after_secs: u64) -> Self {
        ApiError::TooManyRequests(
            ErrorBody::json("rate_limited", "too many attempts; try again later"),
            retry_after_secs.max(1),
        )
    }

    /// A 429 for work this node is too busy to take now, with its Retry-After.
    pub fn busy(message: impl Into<String>, retry_after_secs: u64) -> Self {
        ApiError::TooManyRequests(ErrorBody::json("busy", message), retry_after_secs.max(1))
    }

    /// A 502 for a relay that refused a message.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        ApiError::BadGateway(ErrorBody::json("relay_refused", message))
    }

    /// A 503 for a backend outage.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::Unavailable(ErrorBody::json("unavailable", message))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::conflict(m),
            // Store "not found" reaching a handler is a bad cursor or id in the request.
            StoreError::NotFound(m) => ApiError::bad_request(format!("invalid reference: {m}")),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %palisade_model::without_addresses(&m), "storage unavailable");
                ApiError::unavailable("storage unavailable")
            }
            StoreError::Corrupt(m) => {
                tracing::error!(error = %palisade_model::without_addresses(&m), "corrupt record");
                ApiError::unavailable("stored data could not be read")
            }
        }
    }
}

impl From<IndexError> for ApiError {
    fn from(e: IndexError) -> Self {
        match e {
            IndexError::InvalidQuery(m) => ApiError::bad_request(m),
            other => {
                tracing::warn!(error = %other, "search unavailable");
                ApiError::unavailable("search unavailable")
            }
        }
    }
}

impl From<CacheError> for ApiError {
    fn from(e: CacheError) -> Self {
        tracing::warn!(error = %e, "cache unavailable");
        ApiError::unavailable("session cache unavailable")
    }
}

/// Turns any error poem raises outside handlers (bad JSON, bad path, missing auth, body too
/// large, unknown route) into the common JSON shape with its original status.
pub fn to_json_error(err: poem::Error) -> poem::Response {
    // Our own ApiError responses already have the shape; keep them as they are.
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let code = match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    };
    // A parse error's text is about the request, never about stored data, so it is safe to echo.
    let message = if status.is_server_error() {
        "internal error".to_string()
    } else {
        err.to_string()
    };
    let status = if status.is_success() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        status
    };
    poem::Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(serde_json::json!({ "error": code, "message": message }).to_string())
}
