//! The id that ties an API request's log lines together, and to the caller's own logs.
//!
//! A caller (or HAProxy's `unique-id-header`) may send its own `X-Request-Id`; it is kept
//! when it is short and plain, so it cannot forge log fields or flood a log line. Otherwise
//! a fresh random id is made. Either way the response carries it back.

use poem::http::HeaderMap;

/// The header a request id arrives and leaves in.
pub const HEADER: &str = "x-request-id";
/// Longest incoming id kept.
const MAX_LEN: usize = 64;

/// The request's own id when it is acceptable, else a new one.
pub fn for_request(headers: &HeaderMap) -> String {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| acceptable(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// Returns `id` to the caller on `resp`.
pub fn set(resp: &mut poem::Response, id: &str) {
    if let Ok(value) = poem::http::HeaderValue::from_str(id) {
        resp.headers_mut().insert(HEADER, value);
    }
}

/// Whether an incoming id is short and made of characters that are inert in any log format.
fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER, value.parse().expect("header value"));
        h
    }

    #[test]
    fn a_plain_incoming_id_is_kept() {
        assert_eq!(for_request(&with("haproxy-7F3A.12_x")), "haproxy-7F3A.12_x");
    }

    #[test]
    fn a_missing_long_or_odd_id_is_replaced_by_a_fresh_one() {
        let fresh = for_request(&HeaderMap::new());
        assert_eq!(fresh.len(), 32);
        assert!(fresh.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(fresh, for_request(&HeaderMap::new()), "ids are not reused");
        for odd in ["a\"b", "x y", "id=1 level=error", &"a".repeat(65), "{}"] {
            let id = for_request(&with(odd));
            assert_ne!(id, odd);
            assert_eq!(id.len(), 32, "{odd:?}");
        }
    }
}
