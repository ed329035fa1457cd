//! Contract: "always load remote content" settings are per user, idempotent, listed in order
//! and capped.

use crate::contract::{addr, unique};
use crate::{MAX_REMOTE_TRUST, RemoteTrustEntry, Store, StoreError, TrustKind};

pub(crate) async fn run_all(store: &dyn Store) {
    settings_are_per_user_idempotent_and_ordered(store).await;
    settings_are_capped(store).await;
}

fn entry(kind: TrustKind, value: &str) -> RemoteTrustEntry {
    RemoteTrustEntry {
        kind,
        value: value.to_string(),
    }
}

async fn settings_are_per_user_idempotent_and_ordered(store: &dyn Store) {
    let name = unique("trust");
    let ann = store
        .create_user(&name, &[addr(&format!("{name}@example.test"))], None)
        .await
        .expect("user");
    let other = unique("trust-other");
    let bob = store
        .create_user(&other, &[addr(&format!("{other}@example.test"))], None)
        .await
        .expect("user");
    let news = entry(TrustKind::Sender, "news@shop.example");
    let shop = entry(TrustKind::Domain, "shop.example");
    let alpha = entry(TrustKind::Sender, "alpha@shop.example");
    assert!(
        store
            .list_remote_trust(ann.id)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(store.add_remote_trust(ann.id, &news).await.expect("add"));
    assert!(store.add_remote_trust(ann.id, &shop).await.expect("add"));
    assert!(store.add_remote_trust(ann.id, &alpha).await.expect("add"));
    assert!(
        !store
            .add_remote_trust(ann.id, &news)
            .await
            .expect("add again"),
        "adding twice is harmless and says so"
    );
    assert_eq!(
        store.list_remote_trust(ann.id).await.expect("list"),
        vec![alpha.clone(), news.clone(), shop.clone()],
        "ordered by kind, then value"
    );
    assert!(
        store
            .list_remote_trust(bob.id)
            .await
            .expect("list")
            .is_empty(),
        "another user sees none of them"
    );
    assert!(
        !store
            .remove_remote_trust(bob.id, &news)
            .await
            .expect("remove"),
        "another user cannot remove them"
    );
    assert!(
        store
            .remove_remote_trust(ann.id, &news)
            .await
            .expect("remove")
    );
    assert!(
        !store
            .remove_remote_trust(ann.id, &news)
            .await
            .expect("remove again")
    );
    assert_eq!(
        store.list_remote_trust(ann.id).await.expect("list"),
        vec![alpha, shop]
    );
}

async fn settings_are_capped(store: &dyn Store) {
    let name = unique("trust-cap");
    let user = store
        .create_user(&name, &[addr(&format!("{name}@example.test"))], None)
        .await
        .expect("user");
    for i in 0..MAX_REMOTE_TRUST {
        let e = entry(TrustKind::Domain, &format!("d{i}.example"));
        assert!(
            store
                .add_remote_trust(user.id, &e)
                .await
                .expect("under the cap")
        );
    }
    let over = entry(TrustKind::Sender, "one@too-many.example");
    assert!(matches!(
        store.add_remote_trust(user.id, &over).await,
        Err(StoreError::Conflict(_))
    ));
    let again = entry(TrustKind::Domain, "d0.example");
    assert!(
        !store
            .add_remote_trust(user.id, &again)
            .await
            .expect("an existing one"),
        "re-adding an existing setting at the cap is not refused"
    );
    assert_eq!(
        store.list_remote_trust(user.id).await.expect("list").len(),
        MAX_REMOTE_TRUST
    );
}
