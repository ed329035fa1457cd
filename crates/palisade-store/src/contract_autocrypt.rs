//! Contract checks for what mail teaches about contacts: their history, their Autocrypt
//! key, the social facts a message's index reads from them, and the user's own key.

use crate::contract::{addr, content, delivery, unique};
use crate::{Store, learn_contacts, learn_from_mail, record_sender};
use chrono::{Duration, TimeZone, Utc};
use palisade_model::{
    AutocryptHeader, AutocryptKey, AutocryptPeer, Contact, ContactHistory, ContactId,
    ContactPrivacyFeature, Message, MessageContent, OwnAutocrypt, ParticipantRole, PreferEncrypt,
    PrivacyFeature, SocialFacts, User,
};

const BOB_KEY: &str = include_str!("../../palisade-model/testdata/bob-example-net.key.b64");
const BOB_FINGERPRINT: &str = "A08C283EDF73A42648815C1A7E2EC29FB033B66F";
const ALICE_KEY: &str = include_str!("../../palisade-model/testdata/alice-example-test.key.b64");

/// Runs the checks.
pub(crate) async fn run_all(store: &dyn Store) {
    contact_state_round_trips(store).await;
    own_autocrypt_key_round_trips(store).await;
    senders_are_recorded_and_their_key_follows_the_newest_mail(store).await;
    a_batch_of_mail_teaches_what_its_messages_teach_one_by_one(store).await;
}

fn key(text: &str) -> AutocryptKey {
    AutocryptKey::parse(text).expect("test key")
}

async fn new_user(store: &dyn Store, what: &str) -> User {
    let name = unique(what);
    store
        .create_user(&name, &[addr(&format!("{name}@example.test"))], None)
        .await
        .expect("user")
}

/// History and Autocrypt state are stored with the contact and read back as written.
async fn contact_state_round_trips(store: &dyn Store) {
    let user = new_user(store, "contact-state").await;
    let bob = addr("bob@example.net");
    let at = Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let contact = Contact {
        id: ContactId::for_address(user.id, &bob),
        user_id: user.id,
        name: Some("Bob".into()),
        addresses: vec![bob.clone()],
        public_keys: Vec::new(),
        history: ContactHistory {
            first_seen: Some(at),
            last_seen: Some(at + Duration::days(3)),
            messages: 7,
            authenticated: 5,
            last_message: None,
        },
        autocrypt: Some(AutocryptPeer {
            key: key(BOB_KEY),
            prefer_encrypt: PreferEncrypt::Mutual,
            last_seen: at + Duration::days(3),
            autocrypt_timestamp: at + Duration::days(2),
        }),
    };
    store.save_contact(contact.clone()).await.expect("save");
    assert_eq!(
        store.find_contact(user.id, &bob).await.expect("find"),
        Some(contact.clone())
    );
    let listed = store
        .list_contacts(
            user.id,
            crate::Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("list");
    assert_eq!(listed.items, vec![contact.clone()]);
    // Removing the key is stored too.
    let cleared = Contact {
        autocrypt: None,
        ..contact.clone()
    };
    store.save_contact(cleared.clone()).await.expect("save");
    assert_eq!(
        store.get_contact(user.id, contact.id).await.expect("get"),
        Some(cleared)
    );
}

/// The user's own key is set, replaced, read and removed; a missing user is reported.
async fn own_autocrypt_key_round_trips(store: &dyn Store) {
    let user = new_user(store, "own-autocrypt").await;
    assert_eq!(store.autocrypt_key(user.id).await.expect("read"), None);
    let own = OwnAutocrypt {
        key: key(ALICE_KEY),
        prefer_encrypt: PreferEncrypt::NoPreference,
    };
    assert!(
        store
            .set_autocrypt_key(user.id, Some(&own))
            .await
            .expect("set")
    );
    assert_eq!(
        store.autocrypt_key(user.id).await.expect("read"),
        Some(own.clone())
    );
    let mutual = OwnAutocrypt {
        prefer_encrypt: PreferEncrypt::Mutual,
        ..own
    };
    store
        .set_autocrypt_key(user.id, Some(&mutual))
        .await
        .expect("replace");
    assert_eq!(
        store.autocrypt_key(user.id).await.expect("read"),
        Some(mutual)
    );
    assert!(store.set_autocrypt_key(user.id, None).await.expect("clear"));
    assert_eq!(store.autocrypt_key(user.id).await.expect("read"), None);
    let nobody = palisade_model::UserId::new_random();
    assert!(
        !store
            .set_autocrypt_key(nobody, None)
            .await
            .expect("missing user")
    );
    assert_eq!(store.autocrypt_key(nobody).await.expect("read"), None);
}

/// One message from Bob, dated `date_minutes` and delivered at `minutes` (after 2026-01-01),
/// authenticated by our MTA or not, with his Autocrypt header or none.
fn from_bob(
    tag: &str,
    date_minutes: i64,
    authenticated: bool,
    header: Option<PreferEncrypt>,
) -> MessageContent {
    let mut c = content(tag, &format!("{tag}@example.net"), &[]);
    for p in &mut c.participants {
        if p.role == ParticipantRole::From {
            p.address = Some("Bob@example.net".into());
        }
    }
    let base = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    c.date = Some(base + Duration::minutes(date_minutes));
    c.privacy.authenticated_sender = authenticated.then(|| "bob@example.net".into());
    c.privacy.autocrypt = header.is_some();
    c.autocrypt = header.map(|prefer_encrypt| AutocryptHeader {
        addr: addr("bob@example.net"),
        prefer_encrypt,
        key: key(BOB_KEY),
    });
    c
}

/// What the worker does for a received message: learn its sender, record the message.
async fn deliver_and_record(store: &dyn Store, user: &User, c: MessageContent, at: i64) -> Message {
    let tag = c.subject.clone().unwrap_or_default();
    let receipt = store
        .deliver(delivery(user.id, tag.as_bytes(), c, at))
        .await
        .expect("deliver");
    let message = store
        .get_message(user.id, receipt.message_id)
        .await
        .expect("read")
        .expect("stored");
    let people: Vec<_> = message.content.from().into_iter().cloned().collect();
    learn_contacts(
        store,
        user.id,
        &people,
        &user.addresses,
        message.envelope.received_at,
    )
    .await
    .expect("learn");
    assert!(record_sender(store, &message).await.expect("record"));
    message
}

async fn bob_of(store: &dyn Store, user: &User) -> Contact {
    store
        .find_contact(user.id, &addr("bob@example.net"))
        .await
        .expect("find")
        .expect("bob is a contact")
}

/// The spec's peer state on both backends: a key from authenticated mail only, older mail
/// never bringing an old state back, retries counted once; and the same social facts and
/// contact index from the stored state.
async fn senders_are_recorded_and_their_key_follows_the_newest_mail(store: &dyn Store) {
    let user = new_user(store, "autocrypt-peer").await;
    let day = 24 * 60;
    // Unauthenticated mail with a header: counted, but its key is not believed.
    let first = deliver_and_record(
        store,
        &user,
        from_bob("ac-1", 0, false, Some(PreferEncrypt::Mutual)),
        1,
    )
    .await;
    let bob = bob_of(store, &user).await;
    assert_eq!(bob.history.first_seen, Some(first.envelope.received_at));
    assert_eq!((bob.history.messages, bob.history.authenticated), (1, 0));
    assert_eq!(bob.autocrypt, None);
    // Authenticated with a header, 40 days later: the key is learnt, dated by the message.
    let keyed = deliver_and_record(
        store,
        &user,
        from_bob("ac-2", 40 * day, true, Some(PreferEncrypt::NoPreference)),
        40 * day + 1,
    )
    .await;
    let bob = bob_of(store, &user).await;
    let peer = bob.autocrypt.clone().expect("key learnt");
    assert_eq!(peer.key.fingerprint, BOB_FINGERPRINT);
    assert_eq!(peer.prefer_encrypt, PreferEncrypt::NoPreference);
    assert_eq!(peer.autocrypt_timestamp, keyed.content.date.expect("date"));
    assert_eq!((bob.history.messages, bob.history.authenticated), (2, 1));
    // The worker retrying the same message counts it once.
    assert!(record_sender(store, &keyed).await.expect("again"));
    assert_eq!(bob_of(store, &user).await, bob);
    // An older message, delivered late with another preference, changes no key state.
    deliver_and_record(
        store,
        &user,
        from_bob("ac-3", 20 * day, true, Some(PreferEncrypt::Mutual)),
        41 * day,
    )
    .await;
    let bob = bob_of(store, &user).await;
    assert_eq!(bob.autocrypt, Some(peer.clone()));
    assert_eq!(bob.history.messages, 3);
    // A newer authenticated message without a header moves only last_seen.
    let later = deliver_and_record(
        store,
        &user,
        from_bob("ac-4", 45 * day, true, None),
        45 * day,
    )
    .await;
    let bob = bob_of(store, &user).await;
    let seen = bob.autocrypt.clone().expect("kept");
    assert_eq!(seen.last_seen, later.content.date.expect("date"));
    assert_eq!(seen.autocrypt_timestamp, peer.autocrypt_timestamp);
    // A Date in the future counts as the arrival time.
    let ahead = deliver_and_record(
        store,
        &user,
        from_bob("ac-5", 400 * day, true, Some(PreferEncrypt::Mutual)),
        50 * day,
    )
    .await;
    let bob = bob_of(store, &user).await;
    let newest = bob.autocrypt.clone().expect("replaced");
    assert_eq!(newest.prefer_encrypt, PreferEncrypt::Mutual);
    assert_eq!(newest.autocrypt_timestamp, ahead.envelope.received_at);
    assert_eq!((bob.history.messages, bob.history.authenticated), (5, 4));

    // The social facts of the stored messages, from the stored contact.
    let facts =
        |m: &Message| SocialFacts::of(&m.content.privacy, Some(&bob), m.envelope.received_at);
    assert_eq!(facts(&first), SocialFacts::default(), "not authenticated");
    let points: Vec<_> = ahead
        .content
        .privacy
        .privacy_factors_with(&facts(&ahead))
        .iter()
        .map(|f| (f.feature, f.points))
        .collect();
    assert_eq!(
        points,
        [
            (PrivacyFeature::KnownContact, 5),
            (PrivacyFeature::LongKnownContact, 5),
            (PrivacyFeature::ContactKey, 10)
        ]
    );
    let now = ahead.envelope.received_at;
    let features: Vec<_> = bob
        .privacy_factors(now)
        .iter()
        .map(|f| (f.feature, f.points))
        .collect();
    assert_eq!(
        features,
        [
            (ContactPrivacyFeature::Key, 40),
            (ContactPrivacyFeature::PreferEncryptMutual, 10),
            (ContactPrivacyFeature::LongKnown, 15),
            (ContactPrivacyFeature::Correspondent, 10),
            (ContactPrivacyFeature::AuthenticatedMail, 20),
        ]
    );
    assert_eq!(bob.privacy_index(now), 95);
}

/// Stores, for `user`, the mix the batch test feeds: Bob three times (the second
/// authenticated, with his key), a spammer, and one message the user sent to two people.
async fn store_batch_mix(store: &dyn Store, user: &User) -> Vec<Message> {
    let day = 24 * 60;
    let mut spam = content("spam", "spam@example.org", &[]);
    spam.participants[0].address = Some("spammer@example.org".into());
    spam.privacy.spam.is_spam = Some(true);
    let mut sent = content("sent", "sent@example.test", &[]);
    sent.participants[0].address = user.addresses.first().map(|a| a.to_string());
    for (name, address) in [("Dave", "dave@example.org"), ("Erin", "erin@example.org")] {
        sent.participants.push(palisade_model::Participant {
            role: ParticipantRole::To,
            name: Some(name.into()),
            address: Some(address.into()),
        });
    }
    let mixes = [
        (from_bob("batch-1", 0, false, None), false, 1),
        (spam, false, 2),
        (
            from_bob("batch-2", day, true, Some(PreferEncrypt::Mutual)),
            false,
            day + 1,
        ),
        (sent, true, day + 2),
        (
            from_bob("batch-3", 2 * day, false, None),
            false,
            2 * day + 1,
        ),
    ];
    let mut stored = Vec::new();
    for (c, is_sent, at) in mixes {
        let tag = c.subject.clone().unwrap_or_default();
        let mut d = delivery(user.id, tag.as_bytes(), c, at);
        d.flags.sent = is_sent;
        let receipt = store.deliver(d).await.expect("deliver");
        let message = store
            .get_message(user.id, receipt.message_id)
            .await
            .expect("read")
            .expect("stored");
        stored.push(message);
    }
    stored
}

/// The worker learns a batch at once, reading and writing each contact once: the address
/// book ends as if each message had been learned in turn, spam teaches nothing, a retried
/// batch counts its last message once, and each user's mail teaches only their own book.
async fn a_batch_of_mail_teaches_what_its_messages_teach_one_by_one(store: &dyn Store) {
    let batched = new_user(store, "batch").await;
    let single = new_user(store, "one-by-one").await;
    let mail = store_batch_mix(store, &batched).await;
    let refs: Vec<&Message> = mail.iter().collect();
    learn_from_mail(store, batched.id, &batched.addresses, &refs)
        .await
        .expect("batch");
    for message in store_batch_mix(store, &single).await {
        learn_from_mail(store, single.id, &single.addresses, &[&message])
            .await
            .expect("one");
    }
    let book = |user: &User| {
        let id = user.id;
        async move {
            let mut contacts = store
                .list_contacts(
                    id,
                    crate::Page {
                        after: None,
                        limit: 50,
                    },
                )
                .await
                .expect("list")
                .items;
            contacts.sort_by(|a, b| a.addresses.cmp(&b.addresses));
            contacts
        }
    };
    let (batch_book, single_book) = (book(&batched).await, book(&single).await);
    let addresses: Vec<_> = batch_book.iter().map(|c| c.addresses.clone()).collect();
    assert_eq!(
        addresses,
        [
            vec![addr("bob@example.net")],
            vec![addr("dave@example.org")],
            vec![addr("erin@example.org")],
        ]
    );
    let bob = bob_of(store, &batched).await;
    assert_eq!((bob.history.messages, bob.history.authenticated), (3, 1));
    assert_eq!(bob.history.first_seen, Some(mail[0].envelope.received_at));
    assert_eq!(bob.history.last_seen, Some(mail[4].envelope.received_at));
    assert_eq!(bob.history.last_message, Some(mail[4].id));
    assert_eq!(
        bob.autocrypt.as_ref().map(|p| p.key.fingerprint.as_str()),
        Some(BOB_FINGERPRINT)
    );
    // The same state, message ids and owners aside, as learning one message at a time.
    assert_eq!(batch_book.len(), single_book.len());
    for (b, s) in batch_book.iter().zip(&single_book) {
        assert_eq!((&b.name, &b.addresses), (&s.name, &s.addresses));
        let (bh, sh) = (&b.history, &s.history);
        assert_eq!(
            (bh.messages, bh.authenticated, bh.first_seen, bh.last_seen),
            (sh.messages, sh.authenticated, sh.first_seen, sh.last_seen)
        );
        assert_eq!(b.autocrypt, s.autocrypt);
    }
    // A retry of the newest message alone is not counted again.
    learn_from_mail(store, batched.id, &batched.addresses, &[&mail[4]])
        .await
        .expect("retry");
    assert_eq!(bob_of(store, &batched).await, bob);
}
