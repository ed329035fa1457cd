//! Reading the cluster's replies: search hits, shard failures, and error reasons short
//! enough to keep in an [`IndexError`].

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{IndexError, SearchHit};

/// Longest backend error text kept in an [`IndexError`]; reasons can echo whole queries.
const MAX_REASON_CHARS: usize = 1000;

/// Status and decoded body of one HTTP exchange.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Value,
}

impl Reply {
    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The error for an unsuccessful reply: `bad_request` builds it for 400, which means the
    /// request itself is wrong; anything else may pass, so it is `Unavailable`.
    fn error(&self, context: &str, bad_request: fn(String) -> IndexError) -> IndexError {
        let message = format!("{context}: HTTP {}: {}", self.status, reason(&self.body));
        if self.status == 400 {
            bad_request(message)
        } else {
            IndexError::Unavailable(message)
        }
    }

    /// The body of a successful reply, otherwise the error `bad_request` builds for a 400.
    pub(super) fn success(
        self,
        context: &str,
        bad_request: fn(String) -> IndexError,
    ) -> Result<Value, IndexError> {
        if self.is_success() {
            Ok(self.body)
        } else {
            Err(self.error(context, bad_request))
        }
    }
}

/// The hits of a search reply, in the order the cluster sorted them.
pub(super) fn parse_hits(body: &Value) -> Result<Vec<SearchHit>, IndexError> {
    hits(body)?
        .iter()
        .map(|hit| {
            let field = |name: &str| {
                hit.pointer(&format!("/_source/{name}"))
                    .ok_or_else(|| IndexError::Unavailable(format!("hit has no {name}")))
            };
            let text = |name: &str| {
                field(name)?
                    .as_str()
                    .ok_or_else(|| IndexError::Unavailable(format!("hit {name} is not a string")))
            };
            // Dates are stored as epoch millis; an older document may hold a numeric string.
            let millis = match field("date")? {
                Value::String(s) => s.parse::<i64>().ok(),
                v => v.as_i64(),
            }
            .ok_or_else(|| IndexError::Unavailable("hit date is not epoch millis".into()))?;
            SearchHit::from_stored(
                text("message_id")?,
                text("discussion_id")?,
                DateTime::<Utc>::from_timestamp_millis(millis),
            )
        })
        .collect()
}

/// The hits of a search reply, which must have heard from every shard.
pub(super) fn hits(body: &Value) -> Result<&[Value], IndexError> {
    check_shards(body)?;
    body.pointer("/hits/hits")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| IndexError::Unavailable("search response has no hits".into()))
}

/// A reply that skipped shards would be silently incomplete; report it instead.
pub(super) fn check_shards(body: &Value) -> Result<(), IndexError> {
    let failed = body
        .pointer("/_shards/failed")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if failed > 0 {
        return Err(IndexError::Unavailable(format!(
            "{failed} shard(s) failed: {}",
            body.pointer("/_shards/failures/0/reason")
                .map(describe)
                .unwrap_or_default()
        )));
    }
    Ok(())
}

/// The most useful text of an error response: the root cause when there is one.
pub(super) fn reason(body: &Value) -> String {
    let text = match body.get("error") {
        Some(Value::String(s)) => s.clone(),
        Some(error @ Value::Object(_)) => describe(error.pointer("/root_cause/0").unwrap_or(error)),
        _ => match body {
            Value::String(s) => s.clone(),
            Value::Null => "empty response".into(),
            other => other.to_string(),
        },
    };
    truncate(text)
}

/// `type: reason (caused by: ...)` of one Elasticsearch error object.
pub(super) fn describe(error: &Value) -> String {
    let Some(object) = error.as_object() else {
        return truncate(
            error
                .as_str()
                .map_or_else(|| error.to_string(), str::to_owned),
        );
    };
    let field = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or("");
    let mut text = format!("{}: {}", field("type"), field("reason"));
    if let Some(cause) = object.get("caused_by") {
        text.push_str(&format!(" (caused by {})", describe(cause)));
    }
    truncate(text)
}

/// Cuts `text` to [`MAX_REASON_CHARS`] characters, marking the cut.
pub(super) fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_REASON_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasons_prefer_the_root_cause() {
        let body = json!({ "error": {
            "type": "search_phase_execution_exception",
            "reason": "all shards failed",
            "root_cause": [{ "type": "too_many_nested_clauses", "reason": "too many" }],
        }, "status": 400 });
        assert_eq!(reason(&body), "too_many_nested_clauses: too many");
        assert_eq!(
            reason(&json!({ "error": "alias [x] missing" })),
            "alias [x] missing"
        );
        assert!(reason(&json!("x".repeat(5000))).chars().count() <= MAX_REASON_CHARS + 1);
    }
}
