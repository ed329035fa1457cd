//! A job on the wire: a persistent JSON [`JobSpec`] whose `x-attempts` header counts its
//! failures, plus `x-error` once it is dead-lettered and an `expiration` while it waits in
//! the retry queue.

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString};

use super::short;
use super::topology::{KEY_DEAD, KEY_RETRY};
use crate::{JobSpec, QueueError};

/// Header counting failed attempts.
const ATTEMPTS_HEADER: &str = "x-attempts";
/// Header carrying the last error of a dead-lettered job.
const ERROR_HEADER: &str = "x-error";
/// Persistent delivery mode: the broker writes the message to disk before confirming.
const PERSISTENT: u8 = 2;
/// Longest `x-error` kept, so a huge error string cannot bloat the frame.
const MAX_ERROR_LEN: usize = 2048;

/// The body of a job's message.
pub(super) fn encode(spec: &JobSpec) -> Result<Vec<u8>, QueueError> {
    serde_json::to_vec(spec).map_err(|e| QueueError::Corrupt(format!("encoding job: {e}")))
}

/// Message properties of a job with `attempts` failures behind it.
pub(super) fn job_properties(attempts: u32, extra: FieldTable) -> BasicProperties {
    let mut headers = extra;
    headers.insert(
        short(ATTEMPTS_HEADER),
        AMQPValue::LongLongInt(i64::from(attempts)),
    );
    BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type(short("application/json"))
        .with_headers(headers)
}

/// Where a job that failed for the `attempts`-th time goes, and with which properties: to the
/// retry queue, expiring at `retry_at`, or when that is `None` to the dead queue with `error`.
pub(super) fn failed(
    attempts: u32,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> (&'static str, BasicProperties) {
    match retry_at {
        Some(at) => {
            let delay_ms = (at - Utc::now()).num_milliseconds().max(0);
            let properties = job_properties(attempts, FieldTable::default())
                .with_expiration(short(&delay_ms.to_string()));
            (KEY_RETRY, properties)
        }
        None => {
            let mut extra = FieldTable::default();
            extra.insert(
                short(ERROR_HEADER),
                AMQPValue::LongString(LongString::from(truncate(error, MAX_ERROR_LEN))),
            );
            (KEY_DEAD, job_properties(attempts, extra))
        }
    }
}

/// Reads `x-attempts`, accepting any integer type another client may have used.
pub(super) fn attempts_of(properties: &BasicProperties) -> u32 {
    let Some(value) = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ATTEMPTS_HEADER))
    else {
        return 0;
    };
    let n: i128 = match value {
        AMQPValue::ShortShortInt(v) => (*v).into(),
        AMQPValue::ShortShortUInt(v) => (*v).into(),
        AMQPValue::ShortInt(v) => (*v).into(),
        AMQPValue::ShortUInt(v) => (*v).into(),
        AMQPValue::LongInt(v) => (*v).into(),
        AMQPValue::LongUInt(v) => (*v).into(),
        AMQPValue::LongLongInt(v) => (*v).into(),
        _ => 0,
    };
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_round_trip_and_tolerate_foreign_types() {
        assert_eq!(attempts_of(&job_properties(7, FieldTable::default())), 7);
        assert_eq!(attempts_of(&BasicProperties::default()), 0);
        let mut headers = FieldTable::default();
        headers.insert(short(ATTEMPTS_HEADER), AMQPValue::ShortUInt(3));
        assert_eq!(
            attempts_of(&BasicProperties::default().with_headers(headers)),
            3
        );
        let mut headers = FieldTable::default();
        headers.insert(short(ATTEMPTS_HEADER), AMQPValue::LongLongInt(-4));
        assert_eq!(
            attempts_of(&BasicProperties::default().with_headers(headers)),
            0
        );
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
