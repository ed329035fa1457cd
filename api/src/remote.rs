//! The image proxy on our own origin: remote images of a message the reader chose to load
//! are fetched by the server, so the sender sees neither the reader's address nor cookies.
//!
//! The browser loads these images without the Authorization header (and tokens never go into
//! URLs), so each link carries an HMAC over the user it was issued to, its expiry and the
//! remote URL; that signature is its authorisation. Fetching itself (address checks after
//! resolution and on every redirect, image types only, size cap, timeout) is
//! `palisade_remote::fetch`'s.

use crate::error::{ApiError, ErrorBody};
use crate::html::{ProxyLink, RemoteContent};
use crate::{API_PREFIX, AppState};
use palisade_config::RemoteConfig;
use palisade_model::UserId;
use palisade_remote::{FetchError, FetchPolicy, ImageFetcher, LinkError, LinkSigner, TrackerHosts};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::{Binary, Response};
use poem_openapi::{ApiResponse, OpenApi, Tags};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Images one node fetches at once: each may hold up to the size cap in memory.
const FETCHES_AT_ONCE: usize = 32;

/// Path of the image endpoint, which proxy links point at.
fn image_path() -> String {
    format!("{API_PREFIX}/remote/image")
}

/// Why the remote-content settings could not be put to use.
#[derive(Debug, thiserror::Error)]
pub enum RemoteSetupError {
    /// The HTTP client for the proxy could not be built.
    #[error("building the image proxy's HTTP client")]
    Client(#[source] FetchError),
    /// The configured tracker list could not be read.
    #[error("loading the tracker list")]
    Trackers(#[source] palisade_remote::trackers::TrackerListError),
}

/// The image proxy's signer, fetcher and limits, and the tracking-host list.
pub struct RemoteState {
    /// Signs and checks image links.
    signer: LinkSigner,
    /// Fetches remote images under the configured policy.
    fetcher: ImageFetcher,
    /// Fetches under way on this node.
    fetches: Semaphore,
    /// Seconds a link is valid at least.
    link_ttl_secs: u64,
    /// Hosts known to track readers.
    pub trackers: TrackerHosts,
}

impl RemoteState {
    /// The proxy and tracker list as `config` describes them.
    pub fn new(config: &RemoteConfig) -> Result<Self, RemoteSetupError> {
        let signer = match &config.secret {
            Some(secret) => LinkSigner::from_secret(secret.expose().as_bytes()),
            None => {
                tracing::warn!(
                    "api.remote.secret is not set: image links are signed with a key of this \
                     process only; set it when several API nodes serve the same users"
                );
                LinkSigner::ephemeral()
            }
        };
        if !config.allow_private.is_empty() {
            tracing::warn!(
                networks = ?config.allow_private,
                "api.remote.allow_private is set: the image proxy may reach these private \
                 networks (meant for tests only)"
            );
        }
        let fetcher = ImageFetcher::new(FetchPolicy {
            max_bytes: config.max_image_bytes,
            timeout: Duration::from_secs(config.timeout_secs),
            allow_private: config.allow_private.clone(),
        })
        .map_err(RemoteSetupError::Client)?;
        let trackers = match &config.tracker_hosts {
            Some(path) => TrackerHosts::load(path).map_err(RemoteSetupError::Trackers)?,
            None => TrackerHosts::default(),
        };
        tracing::info!(hosts = trackers.len(), "tracker list loaded");
        Ok(RemoteState {
            signer,
            fetcher,
            fetches: Semaphore::new(FETCHES_AT_ONCE),
            link_ttl_secs: config.link_ttl_secs,
            trackers,
        })
    }

    /// How `user`'s remote images are shown once loaded: through proxy links made now.
    pub fn proxied_for(&self, user: UserId) -> RemoteContent {
        let signer = self.signer.clone();
        let expires = palisade_remote::expiry(now(), self.link_ttl_secs);
        let base = image_path();
        let link: ProxyLink = Arc::new(move |raw: &str| {
            let url = palisade_remote::proxiable(raw)?;
            let query = palisade_remote::link_query(&signer, user.0, expires, &url);
            Some(format!("{base}?{query}"))
        });
        RemoteContent::Proxied(link)
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[derive(Tags)]
enum ApiTags {
    /// Remote content of messages.
    Remote,
}

/// A remote image, passed on.
#[derive(ApiResponse)]
enum ProxiedImage {
    /// The image; its `Content-Type` is the remote server's, always an `image/*` type other
    /// than SVG.
    #[oai(status = 200, content_type = "image/*")]
    Ok(Binary<Vec<u8>>),
}

/// The image proxy.
#[derive(Default)]
pub struct RemoteApi;

#[OpenApi]
impl RemoteApi {
    /// A remote image of a message, fetched by the server. The link comes from a message's
    /// HTML loaded with `remote_content=true`; its signature authorises it (browsers load
    /// images without the Authorization header), so no session is needed. 403 for a bad or
    /// expired signature or a destination that is not a public address; 502 when the remote
    /// server fails, answers something other than an image or sends more than the size cap.
    #[oai(path = "/remote/image", method = "get", tag = "ApiTags::Remote")]
    async fn image(
        &self,
        state: Data<&Arc<AppState>>,
        /// The remote URL.
        #[oai(validator(max_length = 2048))]
        u: Query<String>,
        /// The link's expiry, in Unix seconds.
        #[oai(validator(minimum(value = "0"), maximum(value = "9007199254740991")))]
        e: Query<u64>,
        /// The user the link was issued to.
        a: Query<Uuid>,
        /// The link's signature.
        #[oai(validator(max_length = 128))]
        s: Query<String>,
    ) -> Result<Response<ProxiedImage>, ApiError> {
        let remote = &state.remote;
        remote
            .signer
            .verify(a.0, e.0, &u.0, &s.0, now())
            .map_err(|e| match e {
                LinkError::BadSignature => ApiError::forbidden("the image link is not valid"),
                LinkError::Expired => ApiError::forbidden("the image link has expired"),
            })?;
        let _slot = remote
            .fetches
            .try_acquire()
            .map_err(|_| ApiError::busy("too many images are being fetched", 1))?;
        let image = remote.fetcher.fetch(&u.0).await.map_err(|e| {
            // The URL is the user's mail: it stays out of the logs.
            tracing::info!(reason = %e, "remote image refused");
            refusal(&e)
        })?;
        Ok(Response::new(ProxiedImage::Ok(Binary(image.bytes)))
            .header("Content-Type", image.content_type)
            .header("Content-Security-Policy", "default-src 'none'; sandbox")
            .header("Cross-Origin-Resource-Policy", "same-origin")
            .header("Cache-Control", "private, max-age=86400"))
    }
}

/// The answer to a fetch that failed: 403 for what the proxy must not fetch, 502 for what
/// the remote server did wrong.
fn refusal(e: &FetchError) -> ApiError {
    let (code, forbidden) = match e {
        FetchError::Scheme | FetchError::Refused(_) => ("destination_refused", true),
        FetchError::Unresolvable => ("unresolvable", false),
        FetchError::Redirects => ("too_many_redirects", false),
        FetchError::Status(_) => ("remote_error", false),
        FetchError::NotImage(_) => ("not_an_image", false),
        FetchError::TooLarge(_) => ("too_large", false),
        FetchError::Timeout => ("remote_timeout", false),
        FetchError::Network(_) => ("remote_unreachable", false),
    };
    let body = ErrorBody::json(code, e.to_string());
    if forbidden {
        ApiError::Forbidden(body)
    } else {
        ApiError::BadGateway(body)
    }
}
