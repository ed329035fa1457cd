//! Contract checks for lists that span months: the clustered store partitions its message and
//! activity lists by month, so pages must cross month boundaries (and skip empty months)
//! exactly like one continuous list.

use crate::contract::{content, delivery, unique};
use crate::{Page, Store};
use palisade_model::{DiscussionId, MessageId, User};

/// Runs the month checks in order.
pub(crate) async fn run_all(store: &dyn Store) {
    lists_page_across_months(store).await;
}

/// Minutes from the suite's base time (2026-01-01) to a day of 2025/2026.
const DAY: i64 = 24 * 60;

/// Every message id of the user's arrival list, walking pages of `limit`.
async fn walk_messages(store: &dyn Store, user: &User, limit: usize) -> Vec<MessageId> {
    let mut all = Vec::new();
    let mut after = None;
    for _ in 0..1000 {
        let page = store
            .list_messages(user.id, Page { after, limit })
            .await
            .expect("list messages");
        assert!(page.items.len() <= limit, "a page holds at most its limit");
        all.extend(page.items.iter().map(|m| m.id));
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
    panic!("the message list never ended");
}

/// Every discussion id of the user's list, walking pages of `limit`.
async fn walk_discussions(store: &dyn Store, user: &User, limit: usize) -> Vec<DiscussionId> {
    let mut all = Vec::new();
    let mut after = None;
    for _ in 0..1000 {
        let page = store
            .list_discussions(user.id, crate::Folder::Inbox, Page { after, limit })
            .await
            .expect("list discussions");
        assert!(page.items.len() <= limit, "a page holds at most its limit");
        all.extend(page.items.iter().map(|d| d.id));
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
    panic!("the discussion list never ended");
}

/// Messages over five months (one of them empty, one in the previous year) list newest first
/// across month boundaries with every page size; a discussion whose messages span months is
/// listed once, at its newest arrival, and moves back when that message goes.
async fn lists_page_across_months(store: &dyn Store) {
    let owner = store
        .create_user(&unique("months"), &[], None)
        .await
        .expect("user");
    let other = store
        .create_user(&unique("months-other"), &[], None)
        .await
        .expect("other user");
    // December 2025, January, March and April 2026; February stays empty.
    let days = [-17, -16, -15, 3, 4, 5, 68, 69, 70, 109, 110, 111];
    // (arrival minute, message id, discussion id), in delivery order.
    let mut delivered: Vec<(i64, MessageId, DiscussionId)> = Vec::new();
    for (i, day) in days.iter().enumerate() {
        let minute = day * DAY + i64::try_from(i).unwrap_or_default();
        let raw = format!("Subject: month {i}\r\n\r\nbody {i}\r\n");
        let receipt = store
            .deliver(delivery(
                owner.id,
                raw.as_bytes(),
                content(&format!("month {i}"), &format!("month{i}@x"), &[]),
                minute,
            ))
            .await
            .expect("deliver");
        let message = store
            .get_message(owner.id, receipt.message_id)
            .await
            .expect("get")
            .expect("delivered");
        delivered.push((minute, receipt.message_id, message.discussion_id));
    }
    // A reply in April to the first December message: its discussion now spans five months.
    let reply_minute = 112 * DAY;
    let reply = store
        .deliver(delivery(
            owner.id,
            b"Subject: Re: month 0\r\n\r\nreply\r\n",
            content("Re: month 0", "reply0@x", &["month0@x"]),
            reply_minute,
        ))
        .await
        .expect("deliver reply")
        .message_id;
    let spanning = delivered[0].2;
    let reply_message = store
        .get_message(owner.id, reply)
        .await
        .expect("get reply")
        .expect("reply delivered");
    assert_eq!(
        reply_message.discussion_id, spanning,
        "the reply joins its December discussion"
    );

    let mut newest_first: Vec<(i64, MessageId, DiscussionId)> = delivered.clone();
    newest_first.push((reply_minute, reply, spanning));
    newest_first.sort_by_key(|m| std::cmp::Reverse(m.0));
    let expected: Vec<MessageId> = newest_first.iter().map(|m| m.1).collect();
    for limit in [1, 2, 3, 5, 100] {
        assert_eq!(
            walk_messages(store, &owner, limit).await,
            expected,
            "pages of {limit} list every message once, newest first, across months"
        );
    }
    assert_eq!(
        store.count_messages(owner.id).await.expect("count"),
        u64::try_from(expected.len()).unwrap_or_default()
    );

    // Discussions by newest arrival: the spanning one first (April), the rest by their message.
    let mut discussions = vec![spanning];
    discussions.extend(newest_first.iter().filter(|m| m.2 != spanning).map(|m| m.2));
    for limit in [1, 2, 4, 100] {
        assert_eq!(
            walk_discussions(store, &owner, limit).await,
            discussions,
            "pages of {limit} list every discussion once, by newest arrival, across months"
        );
    }

    // Without the April reply the discussion goes back to December, the end of the list.
    assert!(store.delete_message(owner.id, reply).await.expect("delete"));
    let mut back: Vec<DiscussionId> = discussions[1..].to_vec();
    back.push(spanning);
    assert_eq!(walk_discussions(store, &owner, 2).await, back);
    // Emptying March leaves a month with no mail, which lists skip.
    for (_, id, _) in delivered
        .iter()
        .filter(|m| (68 * DAY..71 * DAY).contains(&m.0))
    {
        assert!(store.delete_message(owner.id, *id).await.expect("delete"));
    }
    let remaining: Vec<MessageId> = newest_first
        .iter()
        .filter(|m| m.1 != reply && !(68 * DAY..71 * DAY).contains(&m.0))
        .map(|m| m.1)
        .collect();
    for limit in [1, 2, 100] {
        assert_eq!(walk_messages(store, &owner, limit).await, remaining);
    }
    assert_eq!(
        walk_discussions(store, &owner, 2).await.len(),
        remaining.len()
    );
    assert_eq!(
        store.count_messages(owner.id).await.expect("count"),
        u64::try_from(remaining.len()).unwrap_or_default()
    );

    // Another user's lists stay empty.
    assert!(walk_messages(store, &other, 2).await.is_empty());
    assert!(walk_discussions(store, &other, 2).await.is_empty());
    assert_eq!(store.count_messages(other.id).await.expect("count"), 0);
}
