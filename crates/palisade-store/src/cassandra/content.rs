//! Replacing a stored message's parsed content on Cassandra, in the order every other
//! message write uses: the listing rows and the discussion first, the message row last, so
//! a retry after a failure still finds the old content, sees that it differs and writes
//! everything again. Each write is idempotent.

use super::{CassandraStore, json, mailbox, timestamp, to_json};
use crate::StoreError;
use crate::replace::{own_people, rewrites};
use crate::threading::SNIPPET_CHARS;
use palisade_model::merge_participants;
use palisade_model::{DiscussionId, MessageContent, MessageId, Participant, UserId};
use scylla::value::CqlTimestamp;
use uuid::Uuid;

type ContentRow = (
    Option<bool>,
    Option<Uuid>,
    Option<CqlTimestamp>,
    Option<String>,
);

pub(super) async fn replace_content(
    store: &CassandraStore,
    user: UserId,
    id: MessageId,
    content: &MessageContent,
) -> Result<bool, StoreError> {
    let st = store.statements().await?;
    let (u, m) = (user.0, id.0);
    let row: Option<ContentRow> = store.first(&st.select_content, (u, m)).await?;
    let Some((Some(true), Some(discussion), Some(received), old)) = row else {
        return Ok(false);
    };
    // A content stored by an older model may not decode; then everything is rewritten.
    let old: Option<MessageContent> = old.and_then(|o| json(&o, "content").ok());
    let due = rewrites(user, id, DiscussionId(discussion), old.as_ref(), content);

    let date = content.date.map(timestamp);
    let subject = content.subject.as_deref();
    let from = content.from().map(to_json).transpose()?;
    let parse_error = content.parse_error.is_some();
    let snippet = content.snippet(SNIPPET_CHARS);
    let privacy = to_json(&content.privacy)?;
    let people = to_json(&own_people(content))?;
    futures::try_join!(
        store.execute(
            &st.replace_arrival_content,
            (
                date,
                subject,
                from.as_deref(),
                parse_error,
                u,
                super::month_of(received),
                received,
                m
            ),
        ),
        store.execute(
            &st.replace_in_discussion_content,
            (
                date,
                subject,
                from.as_deref(),
                parse_error,
                snippet.as_str(),
                privacy.as_str(),
                people.as_str(),
                u,
                discussion,
                received,
                m,
            ),
        ),
    )?;
    if due.subject {
        store
            .execute(&st.set_discussion_subject, (subject, u, discussion))
            .await?;
    }
    if due.people {
        merge_people(store, u, discussion).await?;
    }
    store
        .execute(
            &st.replace_message_content,
            (
                date,
                subject,
                from.as_deref(),
                parse_error,
                to_json(content)?,
                u,
                m,
            ),
        )
        .await?;
    Ok(true)
}

/// Merges the discussion's people again from its members' own people, in arrival order, as
/// deletion does. A delivery into the same discussion at the same moment may append someone
/// this overwrites; reparsing again (it is idempotent) brings them back.
async fn merge_people(
    store: &CassandraStore,
    user: Uuid,
    discussion: Uuid,
) -> Result<(), StoreError> {
    let st = store.statements().await?;
    let mut people: Vec<Participant> = Vec::new();
    store
        .scan(
            &st.select_members,
            (user, discussion),
            st.select_members.get_page_size(),
            |(_, size, own): (CqlTimestamp, Option<i64>, Option<String>)| {
                if let (Some(_), Some(own)) = (size, own) {
                    let own: Vec<Participant> = json(&own, "participants")?;
                    merge_participants(&mut people, &own);
                }
                Ok(true)
            },
        )
        .await?;
    store
        .execute(
            &st.set_participants,
            (mailbox::people_column(&people)?, user, discussion),
        )
        .await?;
    Ok(())
}
