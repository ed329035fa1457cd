//! Behaviour every [`SearchIndex`] backend must have, as a reusable test suite.
//!
//! Each check uses fresh random users and deletes them when it passes, so the suite can run
//! against a shared external backend. Checks panic (like `assert!`) on the first violation.
//! Dates are whole seconds, so backends storing millisecond precision pass too.

use chrono::{DateTime, TimeDelta, Utc};
use palisade_model::{DiscussionId, MessageId, UserId};
use uuid::Uuid;

use crate::{IndexDocument, IndexError, SearchHit, SearchIndex, SearchQuery};

/// Runs every check of the contract against `index`.
pub async fn run_all(index: &dyn SearchIndex) {
    search_criteria(index).await;
    reindex_is_idempotent(index).await;
    tenant_isolation(index).await;
    delete_message(index).await;
    delete_user(index).await;
    newest_first(index).await;
    limit_respected(index).await;
    hostile_queries(index).await;
}

/// Unwraps an index result, panicking with the operation's name.
fn ok<T>(what: &str, result: Result<T, IndexError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

/// Noon-ish on day `n` after 2024-01-01, at whole-second precision.
fn day(n: i64) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + TimeDelta::days(19_723 + n) + TimeDelta::hours(9)
}

/// A document with fresh ids and no attachment, tags or recipients.
fn doc(user: UserId, date: DateTime<Utc>, from: &str, subject: &str, body: &str) -> IndexDocument {
    let message_id = MessageId(Uuid::new_v4());
    IndexDocument {
        user_id: user,
        message_id,
        discussion_id: DiscussionId(Uuid::new_v4()),
        date,
        from: vec![from.to_string()],
        to: Vec::new(),
        subject: subject.to_string(),
        body: body.to_string(),
        has_attachment: false,
        tags: Vec::new(),
    }
}

async fn index_ok(index: &dyn SearchIndex, docs: Vec<IndexDocument>) {
    ok("index", index.index(docs).await);
}

async fn hits(index: &dyn SearchIndex, user: UserId, query: &SearchQuery) -> Vec<SearchHit> {
    ok("search", index.search(user, query, 100).await)
}

async fn ids(index: &dyn SearchIndex, user: UserId, query: &SearchQuery) -> Vec<MessageId> {
    hits(index, user, query)
        .await
        .into_iter()
        .map(|h| h.message_id)
        .collect()
}

async fn count(index: &dyn SearchIndex, user: UserId) -> u64 {
    ok("count", index.count(user).await)
}

fn text(t: &str) -> SearchQuery {
    SearchQuery {
        text: Some(t.to_string()),
        ..Default::default()
    }
}

/// Three messages of one user, oldest first.
struct Corpus {
    user: UserId,
    docs: [IndexDocument; 3],
}

impl Corpus {
    fn new() -> Self {
        let user = UserId::new_random();
        let mut report = doc(
            user,
            day(9),
            "Alice Liddell <alice@example.test>",
            "Quarterly report",
            "Please find the numbers attached. Zebra.",
        );
        report.to = vec!["Bob <bob@example.org>".into()];
        report.has_attachment = true;
        report.tags = vec!["work".into()];
        let mut lunch = doc(
            user,
            day(45),
            "carol@wonder.test",
            "Lunch on Friday?",
            "Shall we meet at noon?",
        );
        lunch.to = vec![
            "alice@example.test".into(),
            "Dave <dave@example.org>".into(),
        ];
        lunch.tags = vec!["personal".into(), "Friends".into()];
        let mut reply = doc(
            user,
            day(79),
            "Bob <bob@example.org>",
            "Re: Quarterly report",
            "Numbers look good to me.",
        );
        reply.to = vec!["Alice <alice@example.test>".into()];
        Corpus {
            user,
            docs: [report, lunch, reply],
        }
    }

    fn id(&self, i: usize) -> MessageId {
        self.docs[i].message_id
    }

    /// Ids of the given documents, in the given order.
    fn ids(&self, which: &[usize]) -> Vec<MessageId> {
        which.iter().map(|&i| self.id(i)).collect()
    }

    async fn load(&self, index: &dyn SearchIndex) {
        index_ok(index, self.docs.to_vec()).await;
    }
}

/// Each criterion alone and in combination finds exactly the expected messages, newest first.
pub async fn search_criteria(index: &dyn SearchIndex) {
    let c = Corpus::new();
    c.load(index).await;
    let (report, lunch, reply) = (0, 1, 2);
    let q = SearchQuery::default;
    let cases: Vec<(&str, SearchQuery, Vec<usize>)> = vec![
        ("everything", q(), vec![reply, lunch, report]),
        ("blank text", text("   "), vec![reply, lunch, report]),
        ("body word", text("zebra"), vec![report]),
        ("case-insensitive", text("ZEBRA"), vec![report]),
        ("body word in two", text("numbers"), vec![reply, report]),
        ("subject word", text("lunch"), vec![lunch]),
        ("address word", text("alice"), vec![reply, lunch, report]),
        (
            "words across fields",
            text("bob quarterly"),
            vec![reply, report],
        ),
        ("all words must match", text("zebra lunch"), vec![]),
        ("no match", text("xylophone"), vec![]),
        (
            "from local part",
            SearchQuery {
                from: Some("alice".into()),
                ..q()
            },
            vec![report],
        ),
        (
            "from domain label",
            SearchQuery {
                from: Some("example".into()),
                ..q()
            },
            vec![reply, report],
        ),
        (
            "from full address",
            SearchQuery {
                from: Some("bob@example.org".into()),
                ..q()
            },
            vec![reply],
        ),
        (
            "from display name",
            SearchQuery {
                from: Some("Alice Liddell".into()),
                ..q()
            },
            vec![report],
        ),
        (
            "from is not to",
            SearchQuery {
                from: Some("dave".into()),
                ..q()
            },
            vec![],
        ),
        (
            "to includes cc",
            SearchQuery {
                to: Some("dave".into()),
                ..q()
            },
            vec![lunch],
        ),
        (
            "to full address",
            SearchQuery {
                to: Some("alice@example.test".into()),
                ..q()
            },
            vec![reply, lunch],
        ),
        (
            "subject words",
            SearchQuery {
                subject: Some("report quarterly".into()),
                ..q()
            },
            vec![reply, report],
        ),
        (
            "subject ignores body",
            SearchQuery {
                subject: Some("numbers".into()),
                ..q()
            },
            vec![],
        ),
        (
            "after is inclusive",
            SearchQuery {
                after: Some(c.docs[lunch].date),
                ..q()
            },
            vec![reply, lunch],
        ),
        (
            "before is exclusive",
            SearchQuery {
                before: Some(c.docs[lunch].date),
                ..q()
            },
            vec![report],
        ),
        (
            "date window",
            SearchQuery {
                after: Some(day(10)),
                before: Some(day(60)),
                ..q()
            },
            vec![lunch],
        ),
        (
            "empty date window",
            SearchQuery {
                after: Some(day(60)),
                before: Some(day(10)),
                ..q()
            },
            vec![],
        ),
        (
            "with attachment",
            SearchQuery {
                has_attachment: Some(true),
                ..q()
            },
            vec![report],
        ),
        (
            "without attachment",
            SearchQuery {
                has_attachment: Some(false),
                ..q()
            },
            vec![reply, lunch],
        ),
        (
            "tag",
            SearchQuery {
                tag: Some("work".into()),
                ..q()
            },
            vec![report],
        ),
        (
            "second tag",
            SearchQuery {
                tag: Some("Friends".into()),
                ..q()
            },
            vec![lunch],
        ),
        (
            "unknown tag",
            SearchQuery {
                tag: Some("nope".into()),
                ..q()
            },
            vec![],
        ),
        (
            "from and attachment",
            SearchQuery {
                from: Some("bob".into()),
                has_attachment: Some(false),
                ..q()
            },
            vec![reply],
        ),
        (
            "text and tag",
            SearchQuery {
                tag: Some("work".into()),
                ..text("numbers")
            },
            vec![report],
        ),
        (
            "text and date",
            SearchQuery {
                after: Some(c.docs[lunch].date),
                ..text("numbers")
            },
            vec![reply],
        ),
        (
            "contradicting criteria",
            SearchQuery {
                tag: Some("work".into()),
                has_attachment: Some(false),
                ..q()
            },
            vec![],
        ),
    ];
    for (name, query, expected) in cases {
        assert_eq!(
            ids(index, c.user, &query).await,
            c.ids(&expected),
            "criterion {name:?}: {query:?}"
        );
    }
    let found = hits(index, c.user, &text("zebra")).await;
    assert_eq!(
        found,
        vec![SearchHit {
            message_id: c.docs[report].message_id,
            discussion_id: c.docs[report].discussion_id,
            date: c.docs[report].date,
        }],
        "hits carry the indexed discussion and date"
    );
    ok("delete_user", index.delete_user(c.user).await);
}

/// Re-indexing replaces by (user, message id) and never duplicates.
pub async fn reindex_is_idempotent(index: &dyn SearchIndex) {
    let c = Corpus::new();
    c.load(index).await;
    assert_eq!(count(index, c.user).await, 3);
    c.load(index).await;
    assert_eq!(
        count(index, c.user).await,
        3,
        "re-indexing the same documents"
    );
    let mut revised = c.docs[0].clone();
    revised.subject = "Revised figures".into();
    revised.body = "Updated spreadsheet".into();
    let mut older = revised.clone();
    older.subject = "Stale draft".into();
    index_ok(index, vec![older, revised]).await;
    assert_eq!(count(index, c.user).await, 3, "duplicate ids in one batch");
    assert_eq!(ids(index, c.user, &text("revised")).await, c.ids(&[0]));
    assert_eq!(ids(index, c.user, &text("spreadsheet")).await, c.ids(&[0]));
    assert!(
        ids(index, c.user, &text("zebra")).await.is_empty(),
        "replaced content must not match"
    );
    assert!(
        ids(index, c.user, &text("stale")).await.is_empty(),
        "the last duplicate in a batch wins"
    );
    index_ok(index, Vec::new()).await;
    assert_eq!(count(index, c.user).await, 3, "empty batch");
    ok("delete_user", index.delete_user(c.user).await);
}

/// A user never sees, counts or deletes another user's documents, even with equal ids and text.
pub async fn tenant_isolation(index: &dyn SearchIndex) {
    let a = UserId::new_random();
    let b = UserId::new_random();
    let doc_a = doc(
        a,
        day(1),
        "spy@example.test",
        "Secret plans",
        "Launch codes",
    );
    let mut doc_b = doc_a.clone();
    doc_b.user_id = b;
    doc_b.discussion_id = DiscussionId(Uuid::new_v4());
    let other_b = doc(
        b,
        day(2),
        "spy@example.test",
        "Secret plans",
        "Launch codes",
    );
    index_ok(index, vec![doc_a.clone()]).await;
    index_ok(index, vec![doc_b.clone(), other_b.clone()]).await;
    assert_eq!(count(index, a).await, 1);
    assert_eq!(count(index, b).await, 2);
    for query in [SearchQuery::default(), text("secret launch")] {
        let found = hits(index, a, &query).await;
        assert_eq!(found.len(), 1, "{query:?}");
        assert_eq!(found[0].discussion_id, doc_a.discussion_id, "{query:?}");
        assert_eq!(
            ids(index, b, &query).await,
            vec![other_b.message_id, doc_b.message_id],
            "{query:?}"
        );
    }
    let stranger = UserId::new_random();
    assert!(
        ids(index, stranger, &SearchQuery::default())
            .await
            .is_empty()
    );
    assert_eq!(count(index, stranger).await, 0);
    ok(
        "delete_message",
        index.delete_message(b, doc_a.message_id).await,
    );
    assert_eq!(
        count(index, a).await,
        1,
        "B deleting the shared id spares A"
    );
    assert_eq!(count(index, b).await, 1);
    ok("delete_user", index.delete_user(b).await);
    assert_eq!(count(index, a).await, 1, "deleting B spares A");
    assert_eq!(ids(index, a, &text("secret")).await, vec![doc_a.message_id]);
    ok("delete_user", index.delete_user(a).await);
}

/// Deleting one message removes only it; deleting an absent one succeeds.
pub async fn delete_message(index: &dyn SearchIndex) {
    let c = Corpus::new();
    c.load(index).await;
    ok(
        "delete_message",
        index.delete_message(c.user, c.id(1)).await,
    );
    assert_eq!(count(index, c.user).await, 2);
    assert!(ids(index, c.user, &text("lunch")).await.is_empty());
    assert_eq!(
        ids(index, c.user, &SearchQuery::default()).await,
        c.ids(&[2, 0])
    );
    ok(
        "delete_message again",
        index.delete_message(c.user, c.id(1)).await,
    );
    ok(
        "delete_message unknown",
        index
            .delete_message(c.user, MessageId(Uuid::new_v4()))
            .await,
    );
    assert_eq!(count(index, c.user).await, 2);
    ok("delete_user", index.delete_user(c.user).await);
}

/// Deleting a user removes all their documents; deleting an unknown user succeeds.
pub async fn delete_user(index: &dyn SearchIndex) {
    let c = Corpus::new();
    c.load(index).await;
    ok("delete_user", index.delete_user(c.user).await);
    assert_eq!(count(index, c.user).await, 0);
    assert!(ids(index, c.user, &SearchQuery::default()).await.is_empty());
    assert!(ids(index, c.user, &text("quarterly")).await.is_empty());
    ok("delete_user again", index.delete_user(c.user).await);
    ok(
        "delete_user unknown",
        index.delete_user(UserId::new_random()).await,
    );
}

/// Five documents of one user; the most relevant to "ping" is the oldest.
async fn timeline(index: &dyn SearchIndex) -> (UserId, Vec<IndexDocument>) {
    let user = UserId::new_random();
    let docs: Vec<IndexDocument> = (0..5)
        .map(|i| {
            let pings = vec!["ping"; 5 - i].join(" ");
            doc(
                user,
                day(i as i64 * 7),
                "ops@example.test",
                "Status",
                &format!("{pings} pong"),
            )
        })
        .collect();
    // Out of date order and across several batches, so storage order differs from date order.
    index_ok(index, vec![docs[3].clone(), docs[0].clone()]).await;
    index_ok(index, vec![docs[4].clone()]).await;
    index_ok(index, vec![docs[1].clone(), docs[2].clone()]).await;
    (user, docs)
}

/// Results are sorted by date, newest first, whatever the relevance or insertion order.
pub async fn newest_first(index: &dyn SearchIndex) {
    let (user, docs) = timeline(index).await;
    let newest_first: Vec<MessageId> = docs.iter().rev().map(|d| d.message_id).collect();
    assert_eq!(
        ids(index, user, &SearchQuery::default()).await,
        newest_first
    );
    assert_eq!(ids(index, user, &text("ping")).await, newest_first);
    let found = hits(index, user, &text("pong")).await;
    assert!(
        found.windows(2).all(|w| w[0].date > w[1].date),
        "dates must be strictly decreasing: {found:?}"
    );
    ok("delete_user", index.delete_user(user).await);
}

/// No more than `limit` hits, and they are the newest ones.
pub async fn limit_respected(index: &dyn SearchIndex) {
    let (user, docs) = timeline(index).await;
    let newest_first: Vec<MessageId> = docs.iter().rev().map(|d| d.message_id).collect();
    for limit in [0, 1, 3, 5, 6, usize::MAX] {
        let found: Vec<MessageId> = ok("search", index.search(user, &text("ping"), limit).await)
            .into_iter()
            .map(|h| h.message_id)
            .collect();
        let expected = &newest_first[..limit.min(newest_first.len())];
        assert_eq!(found, expected, "limit {limit}");
    }
    ok("delete_user", index.delete_user(user).await);
}

/// Query strings a user might type by accident or malice: never a panic, never a leak.
fn hostile_strings(other: UserId) -> Vec<String> {
    let mut list: Vec<String> = [
        "\"unbalanced",
        "\"",
        "subject:",
        "from:",
        "nosuchfield:value",
        ":",
        "a:b:c",
        "-",
        "--",
        "- -",
        "+",
        "+-+-",
        "*",
        "*:*",
        "?",
        "~",
        "foo~2",
        "^",
        "secret^",
        "secret^abc",
        "AND",
        "OR OR",
        "NOT",
        "secret AND",
        "(",
        ")",
        "((secret",
        "secret))",
        "[",
        "[1 TO",
        "date:[* TO *]",
        "date:>abc",
        "has_attachment:maybe",
        "{}",
        "IN [a b",
        "/.*/",
        "/[/",
        "\\",
        "secret\\",
        "\u{0}",
        "\u{202e}gnirts",
        "😀 🚀",
        "'; DROP TABLE messages; --",
        "<script>alert(1)</script>",
        "${jndi:ldap://x}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    list.push(format!("user_id:{other}"));
    list.push(format!("user_id:\"{other}\" OR secret"));
    list.push(format!("secret OR user_id:{other}"));
    list.push(format!("-user_id:{other}"));
    list.push("secret ".repeat(20_000));
    list.push("a".repeat(100_000));
    list.push("(".repeat(10_000));
    list.push(format!("{}secret{}", "(".repeat(5_000), ")".repeat(5_000)));
    list.push("\"".repeat(5_001));
    list.push("-".repeat(10_000));
    list.push("NOT ".repeat(5_000));
    list.push("+-".repeat(5_000));
    // Just under typical length limits, so they reach the parser.
    list.push("NOT ".repeat(450));
    list.push("-".repeat(1_800));
    list.push("+-".repeat(900));
    list.push("(a) ".repeat(450));
    list.push("\"a\" ".repeat(400));
    list.push("a OR ".repeat(350));
    list.push("x:".repeat(900));
    list.push("a^2 ".repeat(450));
    list.push(format!("{}secret{}", "(".repeat(12), ")".repeat(12)));
    list
}

/// Hostile query strings in any criterion return hits of the user's own documents or
/// [`IndexError::InvalidQuery`], never panic or leak, and leave the index usable.
pub async fn hostile_queries(index: &dyn SearchIndex) {
    let c = Corpus::new();
    c.load(index).await;
    let other = UserId::new_random();
    let mut bait = doc(
        other,
        day(3),
        "alice@example.test",
        "Secret quarterly report",
        "numbers zebra",
    );
    bait.tags = vec!["work".into()];
    index_ok(index, vec![bait]).await;
    let own: Vec<MessageId> = c.ids(&[0, 1, 2]);
    for s in hostile_strings(other) {
        let queries = [
            text(&s),
            SearchQuery {
                from: Some(s.clone()),
                ..Default::default()
            },
            SearchQuery {
                to: Some(s.clone()),
                ..Default::default()
            },
            SearchQuery {
                subject: Some(s.clone()),
                ..Default::default()
            },
            SearchQuery {
                tag: Some(s.clone()),
                ..Default::default()
            },
        ];
        for query in queries {
            let shown: String = s.chars().take(40).collect();
            match index.search(c.user, &query, 100).await {
                Ok(found) => assert!(
                    found.iter().all(|h| own.contains(&h.message_id)),
                    "query {shown:?} leaked another user's document"
                ),
                Err(IndexError::InvalidQuery(_)) => {}
                Err(e) => panic!("query {shown:?} failed with {e}"),
            }
        }
    }
    assert_eq!(
        ids(index, c.user, &text("zebra")).await,
        c.ids(&[0]),
        "index still answers after hostile queries"
    );
    ok("delete_user", index.delete_user(c.user).await);
    ok("delete_user", index.delete_user(other).await);
}
