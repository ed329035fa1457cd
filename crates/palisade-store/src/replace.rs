//! What replacing a message's parsed content (after a parser change) must rewrite beside it,
//! shared by the backends so both keep the same derived state.

use crate::threading::gives_subject;
use palisade_model::{
    DiscussionId, MessageContent, MessageId, Participant, UserId, merge_participants,
};

/// Which of a discussion's derived values a replaced content touches. The message's own
/// summary columns and its discussion row are always rewritten; these cost more (a scan of
/// the discussion, or a write to the shared discussion row), so they are done only when due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rewrites {
    /// The message gives its discussion its subject (see [`gives_subject`]), and the subject
    /// changed.
    pub(crate) subject: bool,
    /// The people the message adds to its discussion changed, so the discussion's people
    /// must be merged again from every member.
    pub(crate) people: bool,
}

/// What replacing `old` (if it could be read) by `new` in message `id` of `discussion` must
/// rewrite; an unreadable old content rewrites everything.
pub(crate) fn rewrites(
    user: UserId,
    id: MessageId,
    discussion: DiscussionId,
    old: Option<&MessageContent>,
    new: &MessageContent,
) -> Rewrites {
    // Its ids are in the raw headers, which a new parse reads alike.
    let started = gives_subject(user, id, old.unwrap_or(new), discussion, false);
    match old {
        Some(old) => Rewrites {
            subject: started && old.subject != new.subject,
            people: own_people(old) != own_people(new),
        },
        None => Rewrites {
            subject: started,
            people: true,
        },
    }
}

/// The people a message contributes to its discussion, as delivery merges them.
pub(crate) fn own_people(content: &MessageContent) -> Vec<Participant> {
    let mut people = Vec::new();
    merge_participants(&mut people, &content.participants);
    people
}
