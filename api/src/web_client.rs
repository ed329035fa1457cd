//! Response headers for the built web client served beside the API.
//!
//! The client is served from the API's own origin under a strict Content Security Policy: only
//! our own scripts and styles run, nothing may frame the app, and no plugin or `<base>` can
//! redirect it. Mail HTML is shown in `srcdoc` frames, which inherit this policy. Vite names
//! built assets by content hash, so they never change and may be cached for good; `index.html`
//! names the current ones and must always be revalidated.
//!
//! `img-src` names no remote origin: remote images of a message the reader chose to load come
//! through our image proxy, from our own origin, and each mail frame (a `srcdoc` frame, which
//! can only narrow the policy it inherits) admits the proxy's path only once the reader asks.

use std::path::PathBuf;

use poem::http::Method;
use poem::http::header::{CACHE_CONTROL, HeaderMap, HeaderName, HeaderValue};
use poem::{Endpoint, EndpointExt, Request, Response};

/// The policy of every page of the web client.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; \
     frame-src 'self'; form-action 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'";

/// Where the bundler puts content-hashed files.
const HASHED_ASSETS: &str = "/assets/";

/// The built client's files under `dir`, `index.html` for `/`. HEAD is answered like GET
/// without the body (RFC 9110 requires it of every GET resource; monitors and caches use it),
/// which poem's static endpoint refuses with 405.
pub(crate) fn static_files(dir: PathBuf) -> impl Endpoint<Output = Response> {
    poem::endpoint::StaticFilesEndpoint::new(dir)
        .index_file("index.html")
        .map_to_response()
        .around(|ep, mut req: Request| async move {
            let head = req.method() == Method::HEAD;
            if head {
                req.set_method(Method::GET);
            }
            let resp = ep.call(req).await?;
            Ok(if head { without_body(resp) } else { resp })
        })
}

/// The same status and headers (Content-Length included), no body.
fn without_body(resp: Response) -> Response {
    let (parts, _) = resp.into_parts();
    Response::from_parts(parts, poem::Body::empty())
}

/// Sets the caching and security headers of a response to `path`: API responses are never
/// stored; the web client gets its policy, and its hashed assets are cached as immutable.
pub(crate) fn set_headers(path: &str, api_prefix: &str, headers: &mut HeaderMap) {
    let cache = if path.starts_with(api_prefix) {
        // Only a response that chose its own caching keeps it (proxied images, bound to
        // their user's link); everything else of the API is never stored.
        if headers.contains_key(CACHE_CONTROL) {
            return;
        }
        "no-store"
    } else {
        headers.insert(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        if path.starts_with(HASHED_ASSETS) {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }
    };
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_for(path: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        set_headers(path, "/api/v1", &mut headers);
        headers
    }

    #[test]
    fn the_api_is_never_cached_and_carries_no_page_policy() {
        let h = headers_for("/api/v1/discussions");
        assert_eq!(h[CACHE_CONTROL], "no-store");
        assert!(h.get("content-security-policy").is_none());
    }

    #[test]
    fn pages_revalidate_and_hashed_assets_are_immutable_both_under_the_policy() {
        let page = headers_for("/");
        assert_eq!(page[CACHE_CONTROL], "no-cache");
        let asset = headers_for("/assets/index-3f2a1b.js");
        assert!(
            asset[CACHE_CONTROL]
                .to_str()
                .is_ok_and(|v| v.contains("immutable"))
        );
        for h in [page, asset] {
            let csp = h["content-security-policy"].to_str().unwrap_or_default();
            for directive in [
                "script-src 'self'",
                "object-src 'none'",
                "base-uri 'none'",
                "frame-ancestors 'none'",
            ] {
                assert!(csp.contains(directive), "{directive} missing from {csp}");
            }
            assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        }
    }
}
