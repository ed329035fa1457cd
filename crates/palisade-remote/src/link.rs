//! Signed image links. A proxied image is fetched by the browser without the Authorization
//! header (and tokens never go into URLs), so the link's signature is its authorisation: an
//! HMAC over the user it was issued to, its expiry and the remote URL. Nobody can make the
//! server fetch a URL it did not put into a message shown to a signed-in user.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// What a link's signature covers, so a change to any part voids it.
const CONTEXT: &[u8] = b"palisade remote image link v1";

/// Signs and checks image links with one key. Every API node serving the same users must
/// hold the same key, so it comes from the configured secret.
#[derive(Clone)]
pub struct LinkSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(..)")
    }
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The signature does not match the link's parts.
    #[error("the link's signature is not valid")]
    BadSignature,
    /// The link's time is up.
    #[error("the link has expired")]
    Expired,
}

impl LinkSigner {
    /// A signer whose key is derived from `secret`, the configured cluster-wide secret; the
    /// secret itself never signs anything, so it is not exposed through a derived use.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self::with_key(derive(secret))
    }

    /// A signer with a fresh random key: links work only on this process, until it restarts.
    pub fn ephemeral() -> Self {
        Self::with_key(rand::random())
    }

    fn with_key(key: [u8; 32]) -> Self {
        LinkSigner { key }
    }

    fn mac(&self, user: Uuid, expires: u64, url: &str) -> HmacSha256 {
        // new_from_slice accepts keys of any length, so this cannot fail for 32 bytes.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes keys of any length"),
        };
        mac.update(CONTEXT);
        mac.update(user.as_bytes());
        mac.update(&expires.to_be_bytes());
        mac.update(url.as_bytes());
        mac
    }

    /// The signature of a link for `user` to `url`, valid until `expires` (Unix seconds).
    pub fn sign(&self, user: Uuid, expires: u64, url: &str) -> String {
        hex::encode(self.mac(user, expires, url).finalize().into_bytes())
    }

    /// Checks `signature` (in constant time) and the expiry against `now` (Unix seconds).
    pub fn verify(
        &self,
        user: Uuid,
        expires: u64,
        url: &str,
        signature: &str,
        now: u64,
    ) -> Result<(), LinkError> {
        let given = hex::decode(signature).map_err(|_| LinkError::BadSignature)?;
        self.mac(user, expires, url)
            .verify_slice(&given)
            .map_err(|_| LinkError::BadSignature)?;
        if expires < now {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

/// Longest remote URL the proxy is given a link for; longer ones are dropped.
pub const MAX_URL: usize = 2048;

/// `raw`, a URL from a message, in the normalized form links are signed for, when the proxy
/// may be given it: http or https (protocol-relative becomes https), with a host, at most
/// [`MAX_URL`] long.
pub fn proxiable(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.len() > MAX_URL {
        return None;
    }
    let parsed = if raw.starts_with("//") {
        url::Url::parse(&format!("https:{raw}"))
    } else {
        url::Url::parse(raw)
    }
    .ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return None;
    }
    let out = parsed.to_string();
    (out.len() <= MAX_URL).then_some(out)
}

/// The query of a proxy link (`u`, `e`, `a`, `s`) to append to the image endpoint's path.
pub fn link_query(signer: &LinkSigner, user: Uuid, expires: u64, url: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("u", url)
        .append_pair("e", &expires.to_string())
        .append_pair("a", &user.to_string())
        .append_pair("s", &signer.sign(user, expires, url))
        .finish()
}

fn derive(secret: &[u8]) -> [u8; 32] {
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(b"palisade: key for remote image links");
    mac.finalize().into_bytes().into()
}

/// The expiry to give links issued at `now`: at least `ttl_secs` ahead, rounded up to the
/// hour, so the same message shows the same links for an hour and the browser cache works.
pub fn expiry(now: u64, ttl_secs: u64) -> u64 {
    let at_least = now.saturating_add(ttl_secs);
    at_least.div_ceil(3600).saturating_mul(3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: Uuid = Uuid::from_u128(7);

    #[test]
    fn a_link_verifies_only_with_every_part_unchanged() {
        let signer = LinkSigner::from_secret(b"s3cret");
        let sig = signer.sign(USER, 1000, "https://img.example/a.png");
        assert_eq!(
            signer.verify(USER, 1000, "https://img.example/a.png", &sig, 999),
            Ok(())
        );
        for (user, expires, url) in [
            (Uuid::from_u128(8), 1000, "https://img.example/a.png"),
            (USER, 1001, "https://img.example/a.png"),
            (USER, 1000, "https://img.example/b.png"),
        ] {
            assert_eq!(
                signer.verify(user, expires, url, &sig, 999),
                Err(LinkError::BadSignature)
            );
        }
        assert_eq!(
            signer.verify(USER, 1000, "https://img.example/a.png", "zz", 999),
            Err(LinkError::BadSignature)
        );
        let other = LinkSigner::from_secret(b"other");
        assert_eq!(
            other.verify(USER, 1000, "https://img.example/a.png", &sig, 999),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn an_expired_link_is_refused_and_nodes_sharing_a_secret_agree() {
        let a = LinkSigner::from_secret(b"shared");
        let b = LinkSigner::from_secret(b"shared");
        let sig = a.sign(USER, 1000, "https://x.example/");
        assert_eq!(
            b.verify(USER, 1000, "https://x.example/", &sig, 1000),
            Ok(())
        );
        assert_eq!(
            b.verify(USER, 1000, "https://x.example/", &sig, 1001),
            Err(LinkError::Expired)
        );
    }

    #[test]
    fn the_link_query_carries_the_signed_parts() {
        let signer = LinkSigner::from_secret(b"s3cret");
        let url = "https://img.example/a b.png?x=1&y=2";
        let q = link_query(&signer, USER, 3600, url);
        let parts: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(parts["u"], url);
        assert_eq!(parts["e"], "3600");
        assert_eq!(parts["a"], USER.to_string());
        assert_eq!(signer.verify(USER, 3600, url, &parts["s"], 0), Ok(()));
    }

    #[test]
    fn only_http_urls_with_a_host_are_proxiable() {
        assert_eq!(
            proxiable(" //img.example/a.png ").as_deref(),
            Some("https://img.example/a.png")
        );
        assert_eq!(
            proxiable("HTTP://Img.Example/a.png").as_deref(),
            Some("http://img.example/a.png")
        );
        for bad in [
            "ftp://x.example/a",
            "javascript:alert(1)",
            "cid:x",
            "/local",
            "http://",
        ] {
            assert_eq!(proxiable(bad), None, "{bad}");
        }
        assert_eq!(
            proxiable(&format!("https://x.example/{}", "a".repeat(MAX_URL))),
            None
        );
    }

    #[test]
    fn expiry_is_rounded_up_to_the_hour() {
        assert_eq!(expiry(0, 3600), 3600);
        assert_eq!(expiry(1, 3600), 7200);
        assert_eq!(
            expiry(u64::MAX, 3600),
            u64::MAX,
            "saturates, never overflows"
        );
    }
}
