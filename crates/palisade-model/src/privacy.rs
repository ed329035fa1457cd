//! Privacy features: what a message's headers and structure reveal about how private it was.

use chrono::{DateTime, Utc};
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
    /// The top-level header section has more than one `From` field, or one `From` naming
    /// several mailboxes: who wrote the message is ambiguous (a spoofing sign). Every `From`
    /// mailbox is among the participants. It does not change the privacy points.
    #[serde(default)]
    pub multiple_from: bool,
    /// Headers that would have counted but were written outside our own hosts (below the
    /// hop where the mail entered, or under another authserv-id), so were ignored: a sender
    /// can write any of them.
    #[serde(default)]
    pub untrusted_headers: u32,
    /// The `From` address, when our own MTA's `Authentication-Results` show that mail from
    /// it passed DMARC, or DKIM with a signing domain aligned with it: the only sender the
    /// social rules and Autocrypt believe. `None` for everything else, forged results
    /// included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticated_sender: Option<String>,
}

impl PrivacyFeatures {
    /// True when every recorded hop used TLS and there was at least one hop.
    pub fn all_hops_tls(&self) -> bool {
        !self.transport.is_empty() && self.transport.iter().all(|h| h.tls)
    }

    /// End-to-end encrypted, with PGP (MIME or inline) or S/MIME.
    pub fn encrypted(&self) -> bool {
        self.crypto.iter().any(|c| {
            matches!(
                c,
                CryptoKind::PgpEncrypted | CryptoKind::PgpInline | CryptoKind::SmimeEncrypted
            )
        })
    }

    /// Signed, with PGP/MIME or S/MIME.
    pub fn signed(&self) -> bool {
        self.crypto
            .iter()
            .any(|c| matches!(c, CryptoKind::PgpSigned | CryptoKind::SmimeSigned))
    }

    /// The structural factors alone, as [`Self::privacy_factors_with`] gives them for a
    /// sender who is not a known contact.
    pub fn privacy_factors(&self) -> Vec<PrivacyFactor> {
        self.privacy_factors_with(&SocialFacts::default())
    }

    /// Every feature that raised or lowered the privacy index, with its points, in a fixed
    /// order, given what the address book says of the sender (`social`). This is the one
    /// place where points are assigned: [`Self::privacy_index_with`] is their sum, so the
    /// explanation a user sees cannot disagree with the score.
    pub fn privacy_factors_with(&self, social: &SocialFacts) -> Vec<PrivacyFactor> {
        let passed = |r: Option<&String>| r.is_some_and(|v| v == "pass");
        let auth = self.auth_results.as_ref();
        let dkim_pass = passed(auth.and_then(|a| a.dkim.as_ref()));
        [
            (PrivacyFeature::TransportTls, self.all_hops_tls(), 30),
            (PrivacyFeature::DkimPass, dkim_pass, 10),
            // A signature nobody verified says less than a verified one, and is not counted
            // on top of it.
            (
                PrivacyFeature::DkimSignature,
                !dkim_pass && self.dkim_signature,
                5,
            ),
            (
                PrivacyFeature::SpfPass,
                passed(auth.and_then(|a| a.spf.as_ref())),
                5,
            ),
            (
                PrivacyFeature::DmarcPass,
                passed(auth.and_then(|a| a.dmarc.as_ref())),
                5,
            ),
            (PrivacyFeature::Encrypted, self.encrypted(), 40),
            (PrivacyFeature::Signed, self.signed(), 10),
            (PrivacyFeature::Spam, self.spam.is_spam == Some(true), -30),
            (PrivacyFeature::KnownContact, social.known_contact, 5),
            (PrivacyFeature::LongKnownContact, social.long_known, 5),
            (PrivacyFeature::ContactKey, social.contact_key, 10),
        ]
        .into_iter()
        .filter(|(_, applies, _)| *applies)
        .map(|(feature, _, points)| PrivacyFactor { feature, points })
        .collect()
    }

    /// The privacy index: 0 (nothing protected it) to 100 (end-to-end encrypted, over TLS,
    /// authenticated), a summary the user can sort and filter on. It is the sum of
    /// [`Self::privacy_factors`], held within 0..=100.
    pub fn privacy_index(&self) -> u8 {
        self.privacy_index_with(&SocialFacts::default())
    }

    /// The privacy index with the social rules: the sum of
    /// [`Self::privacy_factors_with`], held within 0..=100.
    pub fn privacy_index_with(&self, social: &SocialFacts) -> u8 {
        clamped_sum(self.privacy_factors_with(social).iter().map(|f| f.points))
    }
}

/// Points summed and held within 0..=100, as every index is.
pub(crate) fn clamped_sum(points: impl Iterator<Item = i32>) -> u8 {
    let sum: i32 = points.sum();
    u8::try_from(sum.clamp(0, 100)).unwrap_or(0)
}

/// How long a contact must have been in the address book, before a message arrived, for
/// the message to score [`PrivacyFeature::LongKnownContact`].
pub const LONG_KNOWN_DAYS: i64 = 30;

/// What the user's address book says about the authenticated sender of one message: the
/// social rules of its privacy index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocialFacts {
    /// The sender was in the address book before the message arrived.
    pub known_contact: bool,
    /// ... for at least [`LONG_KNOWN_DAYS`] days.
    pub long_known: bool,
    /// The sender's contact has a public key (learnt by Autocrypt or added by the user).
    pub contact_key: bool,
}

impl SocialFacts {
    /// The social facts of a message with `features` that arrived at `arrived`, given the
    /// contact found for its authenticated sender. Nothing counts unless our own MTA
    /// authenticated the `From` address, since anyone can write a friend's address there,
    /// nor on spam.
    pub fn of(
        features: &PrivacyFeatures,
        contact: Option<&crate::Contact>,
        arrived: DateTime<Utc>,
    ) -> SocialFacts {
        let Some(sender) = features.authenticated_sender.as_deref() else {
            return SocialFacts::default();
        };
        // Spam is not vouched for by whoever sent it, even a known contact (whose account
        // may have been taken over).
        if features.spam.is_spam == Some(true) {
            return SocialFacts::default();
        }
        let Some(contact) = contact.filter(|c| c.addresses.iter().any(|a| a.as_str() == sender))
        else {
            return SocialFacts::default();
        };
        // A contact with no recorded start (added before it was recorded) counts as known,
        // but not as known for long.
        let since = contact.history.first_seen;
        SocialFacts {
            known_contact: since.is_none_or(|s| s < arrived),
            long_known: since
                .is_some_and(|s| s <= arrived - chrono::Duration::days(LONG_KNOWN_DAYS)),
            contact_key: contact.has_key(),
        }
    }
}

/// A feature of a message that counts in its privacy index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivacyFeature {
    /// Every recorded hop used TLS.
    TransportTls,
    /// The receiving relay verified a DKIM signature.
    DkimPass,
    /// A DKIM signature is present but was not verified as passing.
    DkimSignature,
    /// SPF passed.
    SpfPass,
    /// DMARC passed.
    DmarcPass,
    /// End-to-end encrypted (PGP or S/MIME).
    Encrypted,
    /// Signed (PGP or S/MIME).
    Signed,
    /// The upstream filter marked it as spam.
    Spam,
    /// The authenticated sender was in the address book before the message arrived.
    KnownContact,
    /// ... for at least [`LONG_KNOWN_DAYS`] days.
    LongKnownContact,
    /// The authenticated sender's contact has a public key.
    ContactKey,
}

/// One feature's contribution to a message's privacy index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyFactor {
    /// What was found.
    pub feature: PrivacyFeature,
    /// Points it added (positive) or took away (negative).
    pub points: i32,
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

    /// Every combination of the scored features: the index is always the clamped sum of the
    /// factors, which each name a distinct feature.
    #[test]
    fn privacy_index_is_the_clamped_sum_of_its_factors() {
        let verdict = |v: Option<&str>| v.map(str::to_string);
        for bits in 0u32..(1 << 9) {
            let on = |i: u32| bits & (1 << i) != 0;
            let features = PrivacyFeatures {
                transport: if on(0) {
                    vec![HopTls {
                        by: None,
                        tls: true,
                    }]
                } else {
                    vec![HopTls {
                        by: None,
                        tls: false,
                    }]
                },
                dkim_signature: on(1),
                auth_results: Some(AuthResults {
                    dkim: verdict(on(2).then_some("pass").or(Some("fail"))),
                    spf: verdict(on(3).then_some("pass")),
                    dmarc: verdict(on(4).then_some("pass")),
                }),
                crypto: [
                    on(5).then_some(CryptoKind::PgpEncrypted),
                    on(6).then_some(CryptoKind::SmimeSigned),
                ]
                .into_iter()
                .flatten()
                .collect(),
                spam: SpamVerdict {
                    is_spam: on(7).then_some(true),
                    score: None,
                },
                autocrypt: on(8),
                ..Default::default()
            };
            let factors = features.privacy_factors();
            let sum: i32 = factors.iter().map(|f| f.points).sum();
            assert_eq!(
                i32::from(features.privacy_index()),
                sum.clamp(0, 100),
                "{features:?}"
            );
            let mut names: Vec<_> = factors.iter().map(|f| f.feature).collect();
            names.dedup();
            assert_eq!(names.len(), factors.len(), "{factors:?}");
            assert!(factors.iter().all(|f| f.points != 0));
            assert_eq!(
                factors.iter().any(|f| f.feature == PrivacyFeature::Spam),
                on(7)
            );
            assert_eq!(
                factors
                    .iter()
                    .filter(|f| matches!(
                        f.feature,
                        PrivacyFeature::DkimPass | PrivacyFeature::DkimSignature
                    ))
                    .count(),
                usize::from(on(1) || on(2)),
                "DKIM counts once"
            );
        }
    }

    #[test]
    fn spam_lowers_and_is_listed_even_when_the_index_is_already_zero() {
        let spam = PrivacyFeatures {
            spam: SpamVerdict {
                is_spam: Some(true),
                score: None,
            },
            ..Default::default()
        };
        assert_eq!(spam.privacy_index(), 0);
        assert_eq!(
            spam.privacy_factors(),
            [PrivacyFactor {
                feature: PrivacyFeature::Spam,
                points: -30
            }]
        );
    }

    #[test]
    fn multiple_from_defaults_off_and_does_not_score() {
        let stored = r#"{"transport":[],"dkim_signature":false,"auth_results":null,"crypto":[],
            "autocrypt":false,"list_id":null,"spam":{"is_spam":null,"score":null},
            "mime_depth_exceeded":false}"#;
        let old: PrivacyFeatures = serde_json::from_str(stored).expect("stored features");
        assert!(!old.multiple_from);
        let flagged = PrivacyFeatures {
            multiple_from: true,
            ..old.clone()
        };
        assert_eq!(flagged.privacy_index(), old.privacy_index());
        assert_eq!(flagged.privacy_factors(), old.privacy_factors());
    }
}
