//! Thread placement rules shared by every backend, so a mailbox threads the same way
//! whichever store holds it.
//!
//! A message joins the discussion of the first of its keys (its own Message-ID, then its
//! In-Reply-To and References ids) that some earlier message registered; failing that, a
//! reply-prefixed subject without In-Reply-To or References joins the newest discussion with
//! the same normalized subject that was active within [`SUBJECT_FALLBACK_WINDOW`]; otherwise
//! it starts a discussion. A discussion takes its subject from the message that started it,
//! and from its thread's root message when that arrives later.

use chrono::Duration;
use palisade_model::{DiscussionId, MessageContent, MessageId, UserId};
use std::borrow::Cow;

/// How far back a subject-only reply may attach to an earlier discussion.
pub(crate) const SUBJECT_FALLBACK_WINDOW: Duration = Duration::days(60);

/// Characters of body kept as the discussion preview.
pub(crate) const SNIPPET_CHARS: usize = 200;

/// Longest header-derived value stored as a key as it is. Cassandra refuses key values over
/// 64 KiB, and a sender controls these headers; no genuine Message-ID or subject is this long.
pub(crate) const MAX_KEY_BYTES: usize = 512;

/// A header-derived value bounded for use as a storage key. A longer value becomes a digest of
/// itself, so equal values still meet on equal keys and every backend accepts the message.
pub(crate) fn bounded_key(value: &str) -> Cow<'_, str> {
    if value.len() <= MAX_KEY_BYTES {
        return Cow::Borrowed(value);
    }
    Cow::Owned(format!(
        "sha256:{}",
        crate::raw_hash(value.as_bytes()).to_hex()
    ))
}

/// The keys to look up, in priority order, bounded by [`bounded_key`].
///
/// Our own Message-ID comes first: a reply that arrived before us has registered it.
pub(crate) fn lookup_keys(content: &MessageContent) -> impl Iterator<Item = Cow<'_, str>> {
    content
        .message_id_header
        .iter()
        .map(String::as_str)
        .chain(content.thread_references())
        .map(bounded_key)
}

/// The keys a placed message registers for its discussion; empty ids would join strangers.
pub(crate) fn keys_to_register(content: &MessageContent) -> impl Iterator<Item = Cow<'_, str>> {
    lookup_keys(content).filter(|k| !k.is_empty())
}

/// The key every message of a well-formed thread carries: the first References id (the
/// thread's root, which RFC 5322 says replies keep), else the parent, else the message's own
/// id. Related messages delivered at the same moment, none seeing the others' keys yet, meet
/// on it. `None` for a message without ids.
pub(crate) fn root_key(content: &MessageContent) -> Option<Cow<'_, str>> {
    content
        .references
        .iter()
        .chain(&content.in_reply_to)
        .chain(&content.message_id_header)
        .map(String::as_str)
        .find(|k| !k.is_empty())
        .map(bounded_key)
}

/// The discussion a message starts when none of its keys and no subject leads to one: the
/// one derived from its thread's root key, else (a message without ids) its own.
///
/// Every message of a thread names the same root key, so related messages delivered at once
/// on several nodes, none seeing the others' keys yet, all start the same discussion without
/// asking one another, and a retry starts the one its first attempt started.
pub(crate) fn new_discussion(
    user: UserId,
    id: MessageId,
    content: &MessageContent,
) -> DiscussionId {
    match root_key(content) {
        Some(root) => DiscussionId::for_thread(user, &root),
        None => DiscussionId::started_by(id),
    }
}

/// A message names no thread: it has no In-Reply-To or References id.
pub(crate) fn names_no_thread(content: &MessageContent) -> bool {
    content.thread_references().all(str::is_empty)
}

/// Whether a message placed in `discussion` gives it its subject: it started it (a
/// discussion of the old scheme, named after its first message, included), or it is the root
/// of the thread the discussion was started for, which may arrive after a reply started it.
pub(crate) fn gives_subject(
    user: UserId,
    id: MessageId,
    content: &MessageContent,
    discussion: DiscussionId,
    started_it: bool,
) -> bool {
    discussion == DiscussionId::started_by(id)
        || discussion == new_discussion(user, id, content)
            && (started_it || names_no_thread(content))
}

/// The key under which a discussion is found by subject, bounded by [`bounded_key`].
pub(crate) fn subject_key(content: &MessageContent) -> Option<Cow<'_, str>> {
    content.normalized_subject.as_deref().map(bounded_key)
}

/// Oldest last activity (in milliseconds) a discussion may have to be joined by subject.
pub(crate) fn subject_window_start(received_ms: i64) -> i64 {
    received_ms - SUBJECT_FALLBACK_WINDOW.num_milliseconds()
}

/// A reply that may join a discussion by its subject: its subject carries a reply or forward
/// prefix (two unrelated mails both titled "Hello" must not be merged), and it names no
/// thread. A reply that names one, even one not seen yet, belongs to that thread: its root
/// key gathers the thread's messages whatever order they arrive in, where a subject match
/// would depend on that order and could merge two threads that share a subject.
pub(crate) fn joins_by_subject(content: &MessageContent) -> bool {
    if !names_no_thread(content) {
        return false;
    }
    match (&content.subject, &content.normalized_subject) {
        (Some(subject), Some(normalized)) if !normalized.is_empty() => {
            let plain = subject.split_whitespace().collect::<Vec<_>>().join(" ");
            plain.to_lowercase() != *normalized
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(subject: &str, normalized: &str) -> MessageContent {
        MessageContent {
            subject: Some(subject.into()),
            normalized_subject: Some(normalized.into()),
            ..Default::default()
        }
    }

    #[test]
    fn only_prefixed_subjects_count_as_replies() {
        assert!(joins_by_subject(&content("Re: plans", "plans")));
        assert!(!joins_by_subject(&content("Plans", "plans")));
        assert!(!joins_by_subject(&content("  Plans  ahead", "plans ahead")));
        assert!(!joins_by_subject(&content("Re:", "")));
        assert!(!joins_by_subject(&MessageContent::default()));
    }

    #[test]
    fn a_reply_that_names_its_thread_does_not_join_by_subject() {
        let linked = MessageContent {
            references: vec!["root@x".into()],
            ..content("Re: plans", "plans")
        };
        assert!(!joins_by_subject(&linked));
        let answering = MessageContent {
            in_reply_to: vec!["parent@x".into()],
            ..content("Re: plans", "plans")
        };
        assert!(!joins_by_subject(&answering));
        let empty_link = MessageContent {
            references: vec!["".into()],
            ..content("Re: plans", "plans")
        };
        assert!(joins_by_subject(&empty_link), "an empty id names nothing");
    }

    #[test]
    fn own_id_is_looked_up_first_and_empty_keys_are_never_registered() {
        let c = MessageContent {
            message_id_header: Some("me@x".into()),
            in_reply_to: vec!["parent@x".into()],
            references: vec!["".into(), "root@x".into()],
            ..Default::default()
        };
        let looked: Vec<_> = lookup_keys(&c).collect();
        assert_eq!(looked, ["me@x", "parent@x", "", "root@x"]);
        let registered: Vec<_> = keys_to_register(&c).collect();
        assert_eq!(registered, ["me@x", "parent@x", "root@x"]);
    }

    #[test]
    fn root_is_the_first_reference_then_the_parent_then_the_own_id() {
        let mut c = MessageContent {
            message_id_header: Some("me@x".into()),
            in_reply_to: vec!["parent@x".into()],
            references: vec!["".into(), "root@x".into(), "parent@x".into()],
            ..Default::default()
        };
        assert_eq!(root_key(&c).as_deref(), Some("root@x"));
        c.references.clear();
        assert_eq!(root_key(&c).as_deref(), Some("parent@x"));
        c.in_reply_to.clear();
        assert_eq!(root_key(&c).as_deref(), Some("me@x"));
        c.message_id_header = Some(String::new());
        assert_eq!(root_key(&c), None);
        let long = "r".repeat(MAX_KEY_BYTES + 1);
        c.references = vec![long.clone()];
        assert_eq!(root_key(&c), Some(bounded_key(&long)));
    }

    #[test]
    fn long_keys_become_digests_and_short_ones_stay() {
        assert_eq!(bounded_key("me@x"), "me@x");
        let long = "a".repeat(MAX_KEY_BYTES + 1);
        let key = bounded_key(&long);
        assert!(key.starts_with("sha256:") && key.len() == 71, "{key}");
        assert_eq!(key, bounded_key(&long), "equal values meet");
        assert_ne!(key, bounded_key(&"b".repeat(MAX_KEY_BYTES + 1)));
        let c = MessageContent {
            message_id_header: Some(long.clone()),
            normalized_subject: Some(long.clone()),
            ..Default::default()
        };
        assert!(lookup_keys(&c).all(|k| k.len() <= MAX_KEY_BYTES));
        assert_eq!(subject_key(&c), Some(key));
    }

    #[test]
    fn subject_window_is_sixty_days() {
        assert_eq!(subject_window_start(0), -60 * 24 * 3600 * 1000);
    }
}
