//! Privacy features: what a message's headers and structure reveal about how private it was.

use serde::{Deserialize, Serialize};

/// Whether one `Received` hop used TLS, as far as its header says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopTls {
    /// The `by` host of the hop, if stated.
    pub by: Option<String>,
    /// True when the hop names TLS (`with ESMTPS`, `(version=TLS1.3 ...)`, `using TLS...`).
    pub tls: bool,
}

/// The verdicts of an `Authentication-Results` header.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResults {
    /// `spf=` result, lowercased (pass, fail, softfail, neutral, none, ...).
    pub spf: Option<String>,
    /// `dkim=` result, lowercased.
    pub dkim: Option<String>,
    /// `dmarc=` result, lowercased.
    pub dmarc: Option<String>,
}

/// Which end-to-end cryptography a message uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CryptoKind {
    /// PGP/MIME `multipart/signed` with `application/pgp-signature`.
    PgpSigned,
    /// PGP/MIME `multipart/encrypted` with `application/pgp-encrypted`.
    PgpEncrypted,
    /// Inline PGP armor in the body.
    PgpInline,
    /// S/MIME signature.
    SmimeSigned,
    /// S/MIME enveloped data.
    SmimeEncrypted,
}

/// What the spam filter upstream said.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpamVerdict {
    /// `X-Spam-Flag: YES` or `X-Spam-Status: Yes`.
    pub is_spam: Option<bool>,
    /// Score from `X-Spam-Score` or `X-Spam-Status: ... score=`.
    pub score: Option<f32>,
}

/// Privacy-relevant facts extracted from one message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrivacyFeatures {
    /// One entry per `Received` header, newest first.
    pub transport: Vec<HopTls>,
    /// A `DKIM-Signature` header is present.
    pub dkim_signature: bool,
    /// Parsed `Authentication-Results`, if present.
    pub auth_results: Option<AuthResults>,
    /// End-to-end cryptography found in the structure.
    pub crypto: Vec<CryptoKind>,
    /// An `Autocrypt` header is present.
    pub autocrypt: bool,
    /// `List-Id`, for mailing-list mail.
    pub list_id: Option<String>,
    /// Upstream spam verdict.
    pub spam: SpamVerdict,
    /// The MIME tree was deeper than the configured limit; deeper parts were not extracted.
    pub mime_depth_exceeded: bool,
}

impl PrivacyFeatures {
    /// True when every recorded hop used TLS and there was at least one hop.
    pub fn all_hops_tls(&self) -> bool {
        !self.transport.is_empty() && self.transport.iter().all(|h| h.tls)
    }

    /// The privacy index: 0 (nothing protected it) to 100 (end-to-end encrypted, over TLS,
    /// authenticated), a summary the user can sort and filter on.
    pub fn privacy_index(&self) -> u8 {
        let passed = |r: Option<&String>| r.is_some_and(|v| v == "pass");
        let auth = self.auth_results.as_ref();
        let mut score = 0u32;
        if self.all_hops_tls() {
            score += 30;
        }
        if passed(auth.and_then(|a| a.dkim.as_ref())) {
            score += 10;
        } else if self.dkim_signature {
            score += 5;
        }
        if passed(auth.and_then(|a| a.spf.as_ref())) {
            score += 5;
        }
        if passed(auth.and_then(|a| a.dmarc.as_ref())) {
            score += 5;
        }
        let encrypted = self.crypto.iter().any(|c| {
            matches!(
                c,
                CryptoKind::PgpEncrypted | CryptoKind::PgpInline | CryptoKind::SmimeEncrypted
            )
        });
        let signed = self
            .crypto
            .iter()
            .any(|c| matches!(c, CryptoKind::PgpSigned | CryptoKind::SmimeSigned));
        if encrypted {
            score += 40;
        }
        if signed {
            score += 10;
        }
        if self.spam.is_spam == Some(true) {
            score = score.saturating_sub(30);
        }
        u8::try_from(score.min(100)).unwrap_or(100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privacy_index_rewards_tls_authentication_and_encryption() {
        let plain = PrivacyFeatures::default();
        assert_eq!(plain.privacy_index(), 0);
        let tls = PrivacyFeatures {
            transport: vec![HopTls {
                by: None,
                tls: true,
            }],
            auth_results: Some(AuthResults {
                spf: Some("pass".into()),
                dkim: Some("pass".into()),
                dmarc: Some("pass".into()),
            }),
            ..Default::default()
        };
        assert_eq!(tls.privacy_index(), 50);
        let encrypted = PrivacyFeatures {
            crypto: vec![CryptoKind::PgpEncrypted, CryptoKind::PgpSigned],
            ..tls.clone()
        };
        assert_eq!(encrypted.privacy_index(), 100);
        let spam = PrivacyFeatures {
            spam: SpamVerdict {
                is_spam: Some(true),
                score: None,
            },
            ..tls
        };
        assert_eq!(spam.privacy_index(), 20);
    }
}
