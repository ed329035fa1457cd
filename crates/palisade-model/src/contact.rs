//! What mail teaches about a contact, and the contact's own privacy index.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::privacy::{LONG_KNOWN_DAYS, clamped_sum};
use crate::{Contact, MessageId};

/// The contact's record as a sender: how long they have been known, how much of their mail
/// arrived and how much of it our own MTA authenticated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContactHistory {
    /// When the contact entered the address book (the arrival of the message that taught
    /// it, or its creation by the user); `None` for contacts older than the record.
    pub first_seen: Option<DateTime<Utc>>,
    /// The arrival of their newest message counted.
    pub last_seen: Option<DateTime<Utc>>,
    /// Messages received from them (not spam).
    pub messages: u32,
    /// Of those, how many our own MTA authenticated (aligned DKIM or DMARC pass).
    pub authenticated: u32,
    /// The last message counted, so a retried job does not count it twice.
    pub last_message: Option<MessageId>,
}

/// Received messages from which a contact counts as a regular correspondent.
pub const CORRESPONDENT_MESSAGES: u32 = 5;

/// Points for a contact whose every message was authenticated; a share earns its share.
const AUTHENTICATED_POINTS: u32 = 25;

/// A feature of a contact that counts in its privacy index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactPrivacyFeature {
    /// We have a public key for them (Autocrypt or added by the user).
    Key,
    /// Their Autocrypt header asks for encryption by default (`prefer-encrypt=mutual`).
    PreferEncryptMutual,
    /// In the address book for at least [`LONG_KNOWN_DAYS`] days.
    LongKnown,
    /// At least [`CORRESPONDENT_MESSAGES`] messages received from them.
    Correspondent,
    /// The share of their mail our own MTA authenticated, in points.
    AuthenticatedMail,
}

/// One feature's contribution to a contact's privacy index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPrivacyFactor {
    /// What was found.
    pub feature: ContactPrivacyFeature,
    /// Points it added.
    pub points: i32,
}

impl Contact {
    /// Whether we hold a public key for the contact.
    pub fn has_key(&self) -> bool {
        self.autocrypt.is_some() || !self.public_keys.is_empty()
    }

    /// Every feature that raised the contact's privacy index as of `now`, with its points,
    /// in a fixed order; [`Self::privacy_index`] is their sum.
    pub fn privacy_factors(&self, now: DateTime<Utc>) -> Vec<ContactPrivacyFactor> {
        let h = &self.history;
        let share = AUTHENTICATED_POINTS
            .saturating_mul(h.authenticated.min(h.messages))
            .checked_div(h.messages)
            .unwrap_or(0);
        let mutual = self
            .autocrypt
            .as_ref()
            .is_some_and(|p| p.prefer_encrypt == crate::PreferEncrypt::Mutual);
        [
            (ContactPrivacyFeature::Key, self.has_key(), 40),
            (ContactPrivacyFeature::PreferEncryptMutual, mutual, 10),
            (
                ContactPrivacyFeature::LongKnown,
                h.first_seen
                    .is_some_and(|s| s <= now - chrono::Duration::days(LONG_KNOWN_DAYS)),
                15,
            ),
            (
                ContactPrivacyFeature::Correspondent,
                h.messages >= CORRESPONDENT_MESSAGES,
                10,
            ),
            (
                ContactPrivacyFeature::AuthenticatedMail,
                share > 0,
                i32::try_from(share).unwrap_or(0),
            ),
        ]
        .into_iter()
        .filter(|(_, applies, _)| *applies)
        .map(|(feature, _, points)| ContactPrivacyFactor { feature, points })
        .collect()
    }

    /// The contact's privacy index as of `now`, 0 to 100: how well mail with them can be
    /// protected (a key) and how trustworthy their mail has been (history, authentication).
    pub fn privacy_index(&self, now: DateTime<Utc>) -> u8 {
        clamped_sum(self.privacy_factors(now).iter().map(|f| f.points))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Address, AutocryptKey, AutocryptPeer, ContactId, PreferEncrypt, PrivacyFeature,
        PrivacyFeatures, SocialFacts, UserId,
    };

    fn at(days: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).expect("time") + chrono::Duration::days(days)
    }

    fn bob(first_seen: Option<DateTime<Utc>>, key: bool) -> Contact {
        let address = Address::parse("bob@example.net").expect("address");
        let user = UserId(uuid::Uuid::nil());
        Contact {
            id: ContactId::for_address(user, &address),
            user_id: user,
            name: None,
            addresses: vec![address],
            public_keys: Vec::new(),
            history: ContactHistory {
                first_seen,
                ..ContactHistory::default()
            },
            autocrypt: key.then(|| AutocryptPeer {
                key: AutocryptKey {
                    fingerprint: "F".repeat(40),
                    keydata: String::new(),
                },
                prefer_encrypt: PreferEncrypt::Mutual,
                last_seen: at(0),
                autocrypt_timestamp: at(0),
            }),
        }
    }

    #[test]
    fn social_rules_need_an_authenticated_sender_known_before_the_message() {
        let authenticated = PrivacyFeatures {
            authenticated_sender: Some("bob@example.net".into()),
            ..PrivacyFeatures::default()
        };
        let old_friend = bob(Some(at(0)), true);
        let facts = SocialFacts::of(&authenticated, Some(&old_friend), at(31));
        assert_eq!(
            authenticated
                .privacy_factors_with(&facts)
                .iter()
                .map(|f| (f.feature, f.points))
                .collect::<Vec<_>>(),
            [
                (PrivacyFeature::KnownContact, 5),
                (PrivacyFeature::LongKnownContact, 5),
                (PrivacyFeature::ContactKey, 10)
            ]
        );
        assert_eq!(authenticated.privacy_index_with(&facts), 20);
        // Learnt from this very message: not known before it.
        let new = SocialFacts::of(&authenticated, Some(&bob(Some(at(31)), false)), at(31));
        assert_eq!(new, SocialFacts::default());
        // Known, but for less than 30 days.
        let recent = SocialFacts::of(&authenticated, Some(&bob(Some(at(10)), false)), at(31));
        assert!(recent.known_contact && !recent.long_known && !recent.contact_key);
        // The same From, not authenticated by our MTA: nothing.
        let unauthenticated = PrivacyFeatures::default();
        assert_eq!(
            SocialFacts::of(&unauthenticated, Some(&old_friend), at(31)),
            SocialFacts::default()
        );
        // Spam from a known contact: nothing.
        let spam = PrivacyFeatures {
            spam: crate::SpamVerdict {
                is_spam: Some(true),
                score: None,
            },
            ..authenticated.clone()
        };
        assert_eq!(
            SocialFacts::of(&spam, Some(&old_friend), at(31)),
            SocialFacts::default()
        );
        // A contact that does not hold the authenticated address: nothing.
        let other = PrivacyFeatures {
            authenticated_sender: Some("eve@example.net".into()),
            ..PrivacyFeatures::default()
        };
        assert_eq!(
            SocialFacts::of(&other, Some(&old_friend), at(31)),
            SocialFacts::default()
        );
    }

    #[test]
    fn a_contact_s_index_counts_key_history_and_authentication_record() {
        let stranger = bob(None, false);
        assert_eq!(stranger.privacy_index(at(0)), 0);
        assert!(stranger.privacy_factors(at(0)).is_empty());
        let mut friend = bob(Some(at(0)), true);
        friend.history.messages = 8;
        friend.history.authenticated = 6;
        let factors: Vec<_> = friend
            .privacy_factors(at(40))
            .iter()
            .map(|f| (f.feature, f.points))
            .collect();
        assert_eq!(
            factors,
            [
                (ContactPrivacyFeature::Key, 40),
                (ContactPrivacyFeature::PreferEncryptMutual, 10),
                (ContactPrivacyFeature::LongKnown, 15),
                (ContactPrivacyFeature::Correspondent, 10),
                (ContactPrivacyFeature::AuthenticatedMail, 18),
            ]
        );
        assert_eq!(friend.privacy_index(at(40)), 93);
        // Not yet long known at day 10; a corrupt count never passes the full share.
        friend.history.authenticated = 99;
        assert_eq!(friend.privacy_index(at(10)), 40 + 10 + 10 + 25);
    }
}
