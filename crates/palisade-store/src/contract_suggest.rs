//! Contract checks for recipient autocompletion over the address book.

use crate::Store;
use crate::contract::{addr, unique};
use palisade_model::{Contact, ContactId, User};

/// Runs the autocompletion checks.
pub(crate) async fn run_all(store: &dyn Store) {
    prefixes_match_name_words_and_addresses_of_ones_own_contacts(store).await;
}

async fn contact(
    store: &dyn Store,
    user: &User,
    name: Option<&str>,
    addresses: &[&str],
) -> Contact {
    let addresses: Vec<_> = addresses.iter().map(|a| addr(a)).collect();
    store
        .save_contact(Contact {
            id: ContactId::for_address(user.id, &addresses[0]),
            user_id: user.id,
            name: name.map(str::to_string),
            addresses,
            public_keys: Vec::new(),
            history: Default::default(),
            autocrypt: None,
        })
        .await
        .expect("save contact")
}

async fn suggest(
    store: &dyn Store,
    user: &User,
    prefix: &str,
    limit: usize,
) -> Vec<(ContactId, String)> {
    store
        .autocomplete_contacts(user.id, prefix, limit)
        .await
        .expect("autocomplete")
        .into_iter()
        .map(|m| (m.contact_id, m.address.to_string()))
        .collect()
}

/// A prefix finds any word of a contact's name (for each of its addresses) and the start
/// of an address, whatever the case, best first and within the limit, and never another
/// user's contacts; changes and deletions show at once.
async fn prefixes_match_name_words_and_addresses_of_ones_own_contacts(store: &dyn Store) {
    let owner = store
        .create_user(&unique("suggest"), &[], None)
        .await
        .expect("user");
    let other = store
        .create_user(&unique("suggest-other"), &[], None)
        .await
        .expect("user");
    let ann = contact(
        store,
        &owner,
        Some("Ann Lee"),
        &["ann.lee@example.test", "al@work.test"],
    )
    .await;
    let mut bob = contact(store, &owner, Some("Bob Annison"), &["bob@example.test"]).await;
    let annette = contact(store, &owner, None, &["annette@else.test"]).await;
    contact(store, &owner, Some("Zed"), &["zed@example.test"]).await;
    let theirs = contact(store, &other, Some("Ann Other"), &["ann@other.test"]).await;

    // "ann" is a name word of Ann Lee (both addresses), the start of annette's address and
    // of the word "Annison": ordered by the term that matched.
    let mut first_two = vec![
        (ann.id, "al@work.test".to_string()),
        (ann.id, "ann.lee@example.test".to_string()),
    ];
    first_two.sort_by(|a, b| a.1.cmp(&b.1));
    let expected: Vec<(ContactId, String)> = first_two
        .iter()
        .cloned()
        .chain([
            (annette.id, "annette@else.test".to_string()),
            (bob.id, "bob@example.test".to_string()),
        ])
        .collect();
    assert_eq!(suggest(store, &owner, "ann", 10).await, expected);
    assert_eq!(
        suggest(store, &owner, "ANN", 10).await,
        expected,
        "case-insensitive"
    );
    assert_eq!(suggest(store, &owner, "ann", 2).await, first_two, "limit");
    assert_eq!(
        suggest(store, &owner, "lee", 10).await,
        first_two,
        "any name word"
    );
    assert_eq!(
        suggest(store, &owner, "Bob@Ex", 10).await,
        [(bob.id, "bob@example.test".to_string())],
        "the start of an address"
    );
    assert!(suggest(store, &owner, "zz", 10).await.is_empty());
    assert!(
        suggest(store, &owner, "other", 10).await.is_empty(),
        "not another user's"
    );
    assert_eq!(
        suggest(store, &other, "ann", 10).await,
        [(theirs.id, "ann@other.test".to_string())]
    );

    // A renamed contact is found by its new name only; a deleted one not at all.
    bob.name = Some("Robert".into());
    store.save_contact(bob.clone()).await.expect("rename");
    assert!(
        store
            .delete_contact(owner.id, ann.id)
            .await
            .expect("delete")
    );
    assert_eq!(
        suggest(store, &owner, "ann", 10).await,
        [(annette.id, "annette@else.test".to_string())]
    );
    assert_eq!(
        suggest(store, &owner, "rob", 10).await,
        [(bob.id, "bob@example.test".to_string())]
    );
}
