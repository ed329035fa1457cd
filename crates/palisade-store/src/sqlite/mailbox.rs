//! The mailbox side of the embedded store: delivery, messages, discussions, flags and deletion;
//! tags live in [`super::tags`]. Reads take a pooled connection; writes run inside the
//! writer's savepoint.

use super::rows::{json, parse_id, start_after, to_json};
use super::{SqliteStore, from_millis, unavailable};
use super::{content, deliver, organize, rows, tags};
use crate::threading::SNIPPET_CHARS;
use crate::{Delivery, DeliveryReceipt, Mailbox};
use crate::{Folder, Page, PageOf, StoreError, TagChange};
use async_trait::async_trait;
use palisade_model::Message;
use palisade_model::{
    Discussion, DiscussionId, Flags, FlagsPatch, MessageContent, MessageId, MessageSummary,
    Participant, PrivacyFeatures, Tag, TagId, UserId, merge_participants,
};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// Turns `limit + 1` fetched rows into a page, with a cursor when the extra row exists.
pub(super) fn paged<T>(
    mut rows: Vec<T>,
    limit: usize,
    cursor: impl Fn(&T) -> String,
) -> Result<PageOf<T>, StoreError> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more { rows.last().map(cursor) } else { None };
    Ok(PageOf { items: rows, next })
}

pub(super) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit.max(1) + 1).unwrap_or(i64::MAX)
}

const DISCUSSION_COLUMNS: &str = "id, subject, last_activity, message_count, unread_count, \
                                  snippet, participants_json, privacy_json, trashed_count, \
                                  trashed_unread, tags_json";

fn discussion_row(user: UserId, r: &Row<'_>) -> rusqlite::Result<RawDiscussion> {
    Ok(RawDiscussion {
        user,
        id: r.get(0)?,
        subject: r.get(1)?,
        last_activity: r.get(2)?,
        message_count: r.get(3)?,
        unread_count: r.get(4)?,
        snippet: r.get(5)?,
        participants: r.get(6)?,
        privacy: r.get(7)?,
        trashed_count: r.get(8)?,
        trashed_unread: r.get(9)?,
        tags: r.get(10)?,
    })
}

/// A discussion row before its JSON columns are decoded.
struct RawDiscussion {
    user: UserId,
    id: String,
    subject: Option<String>,
    last_activity: i64,
    message_count: i64,
    unread_count: i64,
    snippet: String,
    participants: String,
    privacy: Option<String>,
    trashed_count: i64,
    trashed_unread: i64,
    tags: String,
}

impl RawDiscussion {
    fn decode(self) -> Result<Discussion, StoreError> {
        Ok(Discussion {
            id: parse_id(&self.id)?,
            user_id: self.user,
            subject: self.subject,
            last_activity: from_millis(self.last_activity),
            message_count: u32::try_from(self.message_count).unwrap_or_default(),
            unread_count: u32::try_from(self.unread_count).unwrap_or_default(),
            snippet: self.snippet,
            participants: json(&self.participants, "participants")?,
            privacy: match self.privacy {
                Some(p) => json(&p, "privacy")?,
                None => PrivacyFeatures::default(),
            },
            trashed_count: u32::try_from(self.trashed_count).unwrap_or_default(),
            trashed_unread_count: u32::try_from(self.trashed_unread).unwrap_or_default(),
            tags: json(&self.tags, "tags")?,
        })
    }
}

/// The query of a page of `folder`'s discussions, most recent activity first: `?1` the user,
/// `?2` and `?3` the cursor's activity and id, `?4` the rows to read.
fn discussions_sql(folder: Folder) -> String {
    // Spelled as the partial indexes' conditions, so the planner walks the folder's index.
    let in_folder = match folder {
        Folder::Inbox => "message_count > trashed_count",
        Folder::Trash => "trashed_count > 0",
    };
    format!(
        "SELECT {DISCUSSION_COLUMNS} FROM discussions
         WHERE user_id = ?1 AND {in_folder}
           AND (last_activity < ?2 OR (last_activity = ?2 AND id < ?3))
         ORDER BY last_activity DESC, id DESC LIMIT ?4"
    )
}

pub(crate) fn list_discussions(
    conn: &Connection,
    user: UserId,
    folder: Folder,
    page: &Page,
) -> Result<PageOf<Discussion>, StoreError> {
    let (after_ms, after_id) = start_after(page)?;
    let rows = conn
        .prepare_cached(&discussions_sql(folder))
        .and_then(|mut s| {
            s.query_map(
                params![
                    user.to_string(),
                    after_ms,
                    after_id,
                    limit_param(page.limit)
                ],
                |r| discussion_row(user, r),
            )?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)?;
    let page = paged(rows, page.limit.max(1), |d| {
        format!("{}:{}", d.last_activity, d.id)
    })?;
    Ok(PageOf {
        items: page
            .items
            .into_iter()
            .map(RawDiscussion::decode)
            .collect::<Result<_, _>>()?,
        next: page.next,
    })
}

pub(crate) fn get_discussion(
    conn: &Connection,
    user: UserId,
    id: DiscussionId,
) -> Result<Option<Discussion>, StoreError> {
    let sql =
        format!("SELECT {DISCUSSION_COLUMNS} FROM discussions WHERE user_id = ?1 AND id = ?2");
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params![user.to_string(), id.to_string()], |r| {
                discussion_row(user, r)
            })
            .optional()
        })
        .map_err(unavailable)?
        .map(RawDiscussion::decode)
        .transpose()
}

pub(crate) fn discussion_messages(
    conn: &Connection,
    user: UserId,
    id: DiscussionId,
    folder: Option<Folder>,
    page: &Page,
) -> Result<PageOf<MessageSummary>, StoreError> {
    super::rows::list_messages(conn, user, Some(id), folder, page)
}

pub(crate) fn count_messages(conn: &Connection, user: UserId) -> Result<u64, StoreError> {
    rows::cached_row(
        conn,
        "SELECT IFNULL((SELECT n FROM message_counts WHERE user_id = ?1), 0)",
        [user.to_string()],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| u64::try_from(n).unwrap_or_default())
    .map_err(unavailable)
}

/// Reads a message's discussion and flags, the state every message write starts from.
fn message_state(
    conn: &Connection,
    user: &str,
    id: &str,
) -> Result<Option<(String, Flags)>, StoreError> {
    let row: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT discussion_id, flags_json FROM messages WHERE user_id = ?1 AND id = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![user, id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(unavailable)?;
    row.map(|(d, f)| Ok((d, json::<Flags>(&f, "flags")?)))
        .transpose()
}

pub(crate) fn update_flags(
    conn: &Connection,
    user: UserId,
    id: MessageId,
    patch: FlagsPatch,
) -> Result<Option<Flags>, StoreError> {
    let (user, id) = (user.to_string(), id.to_string());
    let Some((discussion, flags)) = message_state(conn, &user, &id)? else {
        return Ok(None);
    };
    let new = flags.patched(patch);
    conn.execute(
        "UPDATE messages SET flags_json = ?3 WHERE user_id = ?1 AND id = ?2",
        params![user, id, to_json(&new)?],
    )
    .map_err(unavailable)?;
    if new != flags {
        organize::refresh_counts(conn, &user, &discussion)?;
    }
    Ok(Some(new))
}

pub(crate) fn set_message_tags(
    conn: &Connection,
    user: UserId,
    id: MessageId,
    tags: &[TagId],
) -> Result<bool, StoreError> {
    let (user, id) = (user.to_string(), id.to_string());
    let Some((discussion, _)) = message_state(conn, &user, &id)? else {
        return Ok(false);
    };
    conn.execute(
        "UPDATE messages SET tags_json = ?3 WHERE user_id = ?1 AND id = ?2",
        params![user, id, to_json(&tags)?],
    )
    .map_err(unavailable)?;
    organize::refresh_counts(conn, &user, &discussion)?;
    Ok(true)
}

pub(crate) fn delete_message(
    conn: &Connection,
    user: UserId,
    id: MessageId,
) -> Result<bool, StoreError> {
    let (user, id) = (user.to_string(), id.to_string());
    let Some((discussion, _)) = message_state(conn, &user, &id)? else {
        return Ok(false);
    };
    let sha: String = conn
        .query_row(
            "DELETE FROM messages WHERE user_id = ?1 AND id = ?2 RETURNING raw_sha256",
            params![user, id],
            |r| r.get(0),
        )
        .map_err(unavailable)?;
    // Raw bytes are per user and per content; another message of this user cannot share
    // them (the id derives from the same hash), so they go with the message.
    conn.execute(
        "DELETE FROM raw_messages WHERE user_id = ?1 AND sha256 = ?2",
        params![user, sha],
    )
    .map_err(unavailable)?;
    refresh_discussion(conn, &user, &discussion)?;
    Ok(true)
}

/// Recomputes a discussion from the messages it still holds, or drops it when none are left.
fn refresh_discussion(conn: &Connection, user: &str, discussion: &str) -> Result<(), StoreError> {
    let rows: Vec<(i64, String, String)> = conn
        .prepare_cached(
            "SELECT received_at, flags_json, content_json FROM messages
             WHERE user_id = ?1 AND discussion_id = ?2 ORDER BY received_at, id",
        )
        .and_then(|mut s| {
            s.query_map(params![user, discussion], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(unavailable)?;
    if rows.is_empty() {
        conn.execute(
            "DELETE FROM discussions WHERE user_id = ?1 AND id = ?2",
            params![user, discussion],
        )
        .map_err(unavailable)?;
        return Ok(());
    }
    let mut participants: Vec<Participant> = Vec::new();
    let mut unread = 0i64;
    let mut newest: Option<(i64, MessageContent)> = None;
    for (received, flags, content) in &rows {
        let flags: Flags = json(flags, "flags")?;
        unread += i64::from(!flags.seen);
        let content: MessageContent = json(content, "content")?;
        merge_participants(&mut participants, &content.participants);
        newest = Some((*received, content));
    }
    let Some((last_activity, newest)) = newest else {
        return Ok(());
    };
    organize::refresh_counts(conn, user, discussion)?;
    conn.execute(
        "UPDATE discussions SET message_count = ?3, unread_count = ?4, last_activity = ?5,
                snippet = ?6, participants_json = ?7, privacy_json = ?8
         WHERE user_id = ?1 AND id = ?2",
        params![
            user,
            discussion,
            rows.len() as i64,
            unread,
            last_activity,
            newest.snippet(SNIPPET_CHARS),
            to_json(&participants)?,
            to_json(&newest.privacy)?,
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

#[async_trait]
impl Mailbox for SqliteStore {
    async fn deliver(&self, delivery: Delivery) -> Result<DeliveryReceipt, StoreError> {
        let prepared = deliver::Prepared::new(delivery)?;
        self.writer
            .write(move |conn| deliver::deliver(conn, &prepared))
            .await
    }

    fn queues_jobs(&self) -> bool {
        // The outbox is a table of the same database, written in the delivery transaction.
        true
    }

    async fn list_messages(
        &self,
        user: UserId,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        self.read_now(|conn| rows::list_messages(conn, user, None, None, &page))
    }

    async fn message_summaries(
        &self,
        user: UserId,
        ids: &[MessageId],
    ) -> Result<Vec<MessageSummary>, StoreError> {
        self.read_now(|conn| rows::message_summaries(conn, user, ids))
    }

    async fn get_message(
        &self,
        user: UserId,
        id: MessageId,
    ) -> Result<Option<Message>, StoreError> {
        self.read(move |conn| rows::get_message(conn, user, id))
            .await
    }

    async fn get_messages(
        &self,
        keys: &[(UserId, MessageId)],
    ) -> Result<Vec<Option<Message>>, StoreError> {
        // One hand-off to the blocking pool for the whole batch: one per message cost the
        // index worker more than the reads themselves (about 15% of ingest's CPU per message).
        let keys = keys.to_vec();
        self.read(move |conn| {
            keys.iter()
                .map(|&(user, id)| rows::get_message(conn, user, id))
                .collect()
        })
        .await
    }

    async fn get_raw(&self, user: UserId, id: MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(move |conn| {
            rows::cached_row(
                conn,
                "SELECT r.data FROM messages m JOIN raw_messages r
                   ON r.user_id = m.user_id AND r.sha256 = m.raw_sha256
                 WHERE m.user_id = ?1 AND m.id = ?2",
                params![user.to_string(), id.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    async fn count_messages(&self, user: UserId) -> Result<u64, StoreError> {
        self.read_now(|conn| count_messages(conn, user))
    }

    async fn list_discussions(
        &self,
        user: UserId,
        folder: Folder,
        page: Page,
    ) -> Result<PageOf<Discussion>, StoreError> {
        self.read_now(|conn| list_discussions(conn, user, folder, &page))
    }

    async fn get_discussion(
        &self,
        user: UserId,
        id: DiscussionId,
    ) -> Result<Option<Discussion>, StoreError> {
        self.read_now(|conn| get_discussion(conn, user, id))
    }

    async fn discussion_messages(
        &self,
        user: UserId,
        id: DiscussionId,
        folder: Option<Folder>,
        page: Page,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        self.read(move |conn| discussion_messages(conn, user, id, folder, &page))
            .await
    }

    async fn update_flags(
        &self,
        user: UserId,
        id: MessageId,
        patch: FlagsPatch,
    ) -> Result<Option<Flags>, StoreError> {
        self.writer
            .write(move |conn| update_flags(conn, user, id, patch))
            .await
    }

    async fn set_message_tags(
        &self,
        user: UserId,
        id: MessageId,
        tags: &[TagId],
    ) -> Result<bool, StoreError> {
        let tags = tags.to_vec();
        self.writer
            .write(move |conn| set_message_tags(conn, user, id, &tags))
            .await
    }

    async fn update_discussion_flags(
        &self,
        user: UserId,
        id: DiscussionId,
        patch: FlagsPatch,
    ) -> Result<Option<Vec<MessageId>>, StoreError> {
        self.writer
            .write(move |conn| organize::update_discussion_flags(conn, user, id, patch))
            .await
    }

    async fn retag_discussion(
        &self,
        user: UserId,
        id: DiscussionId,
        add: &[TagId],
        remove: &[TagId],
    ) -> Result<Option<Vec<MessageId>>, StoreError> {
        let (add, remove) = (add.to_vec(), remove.to_vec());
        self.writer
            .write(move |conn| organize::retag_discussion(conn, user, id, &add, &remove))
            .await
    }

    async fn replace_content(
        &self,
        user: UserId,
        id: MessageId,
        new: &MessageContent,
    ) -> Result<bool, StoreError> {
        let new = new.clone();
        self.writer
            .write(move |conn| content::replace_content(conn, user, id, &new))
            .await
    }

    async fn delete_message(&self, user: UserId, id: MessageId) -> Result<bool, StoreError> {
        self.writer
            .write_alone(move |conn| delete_message(conn, user, id))
            .await
    }

    async fn list_tags(&self, user: UserId) -> Result<Vec<Tag>, StoreError> {
        self.read(move |conn| tags::list_tags(conn, user)).await
    }

    async fn create_tag(
        &self,
        user: UserId,
        name: &str,
        colour: Option<&str>,
        max_tags: usize,
    ) -> Result<Tag, StoreError> {
        let name = name.to_string();
        let colour = colour.map(str::to_string);
        // The single writer serializes the count and the insert.
        self.writer
            .write(move |conn| tags::create_tag(conn, user, &name, colour.as_deref(), max_tags))
            .await
    }

    async fn update_tag(
        &self,
        user: UserId,
        id: TagId,
        change: &TagChange,
    ) -> Result<Tag, StoreError> {
        let change = change.clone();
        self.writer
            .write(move |conn| tags::update_tag(conn, user, id, &change))
            .await
    }

    async fn delete_tag(&self, user: UserId, id: TagId) -> Result<bool, StoreError> {
        self.writer
            .write(move |conn| tags::delete_tag(conn, user, id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SqliteStore, open_connection};
    use super::*;
    use rusqlite::StatementStatus;

    /// A list query must keep its plan from one page to the next. SQLite otherwise compiles
    /// it again on every step after a new binding whenever the planner looked at a bound
    /// value, which took about a fifth of the API's CPU for listing.
    #[test]
    fn list_queries_are_not_compiled_again_for_each_page() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.sqlite3");
        let _store = SqliteStore::open(&path).expect("store");
        let conn = open_connection(&path).expect("reader");
        let user = UserId(uuid::Uuid::new_v4());
        let pages = [
            Page {
                after: None,
                limit: 50,
            },
            Page {
                after: Some(format!("1700000000000:{}", uuid::Uuid::new_v4())),
                limit: 20,
            },
        ];
        let discussion = Some(DiscussionId(uuid::Uuid::new_v4()));
        let folders = [None, Some(Folder::Inbox), Some(Folder::Trash)];
        for _ in 0..3 {
            for page in &pages {
                for folder in [Folder::Inbox, Folder::Trash] {
                    list_discussions(&conn, user, folder, page).expect("discussions");
                }
                for folder in folders {
                    rows::list_messages(&conn, user, None, folder, page).expect("messages");
                    rows::list_messages(&conn, user, discussion, folder, page)
                        .expect("a discussion's messages");
                }
            }
        }
        let mut queries: Vec<String> = [Folder::Inbox, Folder::Trash]
            .into_iter()
            .map(discussions_sql)
            .collect();
        for folder in folders {
            queries.push(rows::messages_sql(false, folder));
            queries.push(rows::messages_sql(true, folder));
        }
        for sql in queries {
            let stmt = conn.prepare_cached(&sql).expect("cached statement");
            assert_eq!(
                stmt.get_status(StatementStatus::RePrepare),
                0,
                "compiled again: {sql}"
            );
        }
    }
}
