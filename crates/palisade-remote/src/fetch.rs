//! Fetching a remote image for the proxy without letting a message reach inside our network.
//!
//! The proxy resolves each host itself and refuses unless every address it resolves to is
//! public (see [`crate::address`]); the HTTP client then connects to exactly those checked
//! addresses, so a second lookup cannot swap in another (DNS rebinding). Redirects are
//! followed by hand, at most [`MAX_REDIRECTS`], each one checked the same way. Only raster
//! image types pass, bodies are capped while streaming, and the request carries no cookie,
//! no referrer and a generic User-Agent.

use crate::address::{Refusal, permitted};
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION, USER_AGENT};
use reqwest::{Client, Url, redirect};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 3;

/// What the sender's server sees of us: nothing that tells who or what is fetching.
const GENERIC_USER_AGENT: &str = "Mozilla/5.0";

/// How the proxy fetches: its limits and, for tests only, the private networks it may reach.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Largest image passed on, in bytes.
    pub max_bytes: u64,
    /// Time for the whole fetch, redirects included.
    pub timeout: Duration,
    /// Networks reachable although not public: for tests against a local server only.
    pub allow_private: Vec<IpNet>,
}

/// An image fetched and checked.
#[derive(Debug)]
pub struct Image {
    /// Its `image/*` type, without parameters, lowercase.
    pub content_type: String,
    /// Its bytes, at most the policy's `max_bytes`.
    pub bytes: Vec<u8>,
}

/// Why an image was not fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not an `http` or `https` URL, or one without a host.
    #[error("only http and https URLs with a host are fetched")]
    Scheme,
    /// The host is, or resolves to, an address the proxy must not reach.
    #[error("the destination is {}", .0.describe())]
    Refused(Refusal),
    /// The host does not resolve.
    #[error("the host does not resolve")]
    Unresolvable,
    /// More redirects than [`MAX_REDIRECTS`], or one without a usable Location.
    #[error("too many or malformed redirects")]
    Redirects,
    /// The remote server answered with an error status.
    #[error("the remote server answered {0}")]
    Status(u16),
    /// The response is not a raster image (SVG can carry script, so it is refused too).
    #[error("the response is not an image it may pass on ({0})")]
    NotImage(String),
    /// The body is larger than the cap.
    #[error("the image is larger than {0} bytes")]
    TooLarge(u64),
    /// The fetch took longer than the policy allows.
    #[error("the remote server took too long")]
    Timeout,
    /// Connection or protocol failure.
    #[error("the remote server could not be reached")]
    Network(#[source] reqwest::Error),
}

/// Fetches images under a [`FetchPolicy`]; cheap to clone, one per process.
#[derive(Debug, Clone)]
pub struct ImageFetcher {
    client: Client,
    policy: Arc<FetchPolicy>,
}

/// The resolver that refuses internal addresses before any connection is made.
#[derive(Debug)]
struct CheckedResolver {
    allow: Arc<Vec<IpNet>>,
}

/// A refusal raised inside the resolver, found again in the client's error chain.
#[derive(Debug, thiserror::Error)]
enum ResolveRefusal {
    #[error("refused: {}", .0.describe())]
    Refused(Refusal),
    #[error("the host does not resolve")]
    Unresolvable,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| ResolveRefusal::Unresolvable)?
                .take(32)
                .collect();
            if found.is_empty() {
                return Err(ResolveRefusal::Unresolvable.into());
            }
            // One internal address among public ones is refused too: the client would try it.
            for addr in &found {
                permitted(addr.ip(), &allow).map_err(ResolveRefusal::Refused)?;
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

impl ImageFetcher {
    /// A fetcher under `policy`.
    pub fn new(policy: FetchPolicy) -> Result<Self, FetchError> {
        let allow = Arc::new(policy.allow_private.clone());
        let client = Client::builder()
            .dns_resolver(Arc::new(CheckedResolver { allow }))
            .redirect(redirect::Policy::none())
            .referer(false)
            .no_proxy()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .pool_max_idle_per_host(2)
            .build()
            .map_err(FetchError::Network)?;
        Ok(ImageFetcher {
            client,
            policy: Arc::new(policy),
        })
    }

    /// Fetches the image at `url`, following redirects by hand and checking every hop.
    pub async fn fetch(&self, url: &str) -> Result<Image, FetchError> {
        match tokio::time::timeout(self.policy.timeout, self.fetch_hops(url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout),
        }
    }

    async fn fetch_hops(&self, url: &str) -> Result<Image, FetchError> {
        let mut url = Url::parse(url).map_err(|_| FetchError::Scheme)?;
        for _ in 0..=MAX_REDIRECTS {
            self.check_url(&url)?;
            let response = self
                .client
                .get(url.clone())
                .header(USER_AGENT, HeaderValue::from_static(GENERIC_USER_AGENT))
                .header(
                    ACCEPT,
                    HeaderValue::from_static("image/avif,image/webp,image/png,image/*;q=0.8"),
                )
                .send()
                .await
                .map_err(classify_error)?;
            let status = response.status();
            if status.is_redirection() {
                let next = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|loc| url.join(loc).ok())
                    .ok_or(FetchError::Redirects)?;
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            let content_type = image_type(response.headers().get(CONTENT_TYPE))?;
            let max = self.policy.max_bytes;
            let declared = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > max) {
                return Err(FetchError::TooLarge(max));
            }
            let mut response = response;
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(classify_error)? {
                if bytes.len() as u64 + chunk.len() as u64 > max {
                    return Err(FetchError::TooLarge(max));
                }
                bytes.extend_from_slice(&chunk);
            }
            return Ok(Image {
                content_type,
                bytes,
            });
        }
        Err(FetchError::Redirects)
    }

    /// Refuses other schemes and hosts written as internal IP addresses (the resolver never
    /// sees those: the client connects to an IP literal directly).
    fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Scheme);
        }
        let ip: Option<IpAddr> = match url.host() {
            None => return Err(FetchError::Scheme),
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(_)) => None,
        };
        if let Some(ip) = ip {
            permitted(ip, &self.policy.allow_private).map_err(FetchError::Refused)?;
        }
        Ok(())
    }
}

/// The response's image type, or why it is not one the proxy passes on.
fn image_type(header: Option<&HeaderValue>) -> Result<String, FetchError> {
    let raw = header.and_then(|v| v.to_str().ok()).unwrap_or_default();
    let essence = raw
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let shown: String = essence.chars().take(100).collect();
    let Some(subtype) = essence.strip_prefix("image/") else {
        return Err(FetchError::NotImage(shown));
    };
    let token = |c: char| c.is_ascii_alphanumeric() || "+-.".contains(c);
    if subtype.is_empty() || !subtype.chars().all(token) || subtype.contains("svg") {
        return Err(FetchError::NotImage(shown));
    }
    Ok(essence)
}

/// The fetch error behind a client error: a resolver refusal keeps its reason.
fn classify_error(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(refusal) = err.downcast_ref::<ResolveRefusal>() {
            return match refusal {
                ResolveRefusal::Refused(r) => FetchError::Refused(*r),
                ResolveRefusal::Unresolvable => FetchError::Unresolvable,
            };
        }
        source = err.source();
    }
    FetchError::Network(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raster_image_types_pass() {
        let ty = |s: &str| image_type(Some(&HeaderValue::from_str(s).expect("header")));
        assert_eq!(ty("image/png").ok().as_deref(), Some("image/png"));
        assert_eq!(
            ty("Image/JPEG; charset=binary").ok().as_deref(),
            Some("image/jpeg")
        );
        for bad in [
            "image/svg+xml",
            "IMAGE/SVG+XML",
            "text/html",
            "image/",
            "image/png,text/html",
            "application/octet-stream",
        ] {
            assert!(matches!(ty(bad), Err(FetchError::NotImage(_))), "{bad}");
        }
        assert!(matches!(image_type(None), Err(FetchError::NotImage(_))));
    }

    fn fetcher() -> ImageFetcher {
        ImageFetcher::new(FetchPolicy {
            max_bytes: 1024,
            timeout: Duration::from_secs(5),
            allow_private: Vec::new(),
        })
        .expect("client")
    }

    #[tokio::test]
    async fn internal_destinations_are_refused_before_connecting() {
        let f = fetcher();
        for (url, why) in [
            ("http://127.0.0.1/x.png", Refusal::Loopback),
            ("http://10.0.0.1/x.png", Refusal::Private),
            (
                "http://169.254.169.254/latest/meta-data/",
                Refusal::LinkLocal,
            ),
            ("http://[::1]:8080/x.png", Refusal::Loopback),
            ("http://[::ffff:7f00:1]/x.png", Refusal::Loopback),
            ("http://localhost/x.png", Refusal::Loopback),
        ] {
            match f.fetch(url).await {
                Err(FetchError::Refused(r)) => assert_eq!(r, why, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        for url in [
            "ftp://example.com/x.png",
            "file:///etc/passwd",
            "data:image/png,x",
        ] {
            assert!(
                matches!(f.fetch(url).await, Err(FetchError::Scheme)),
                "{url}"
            );
        }
    }
}
