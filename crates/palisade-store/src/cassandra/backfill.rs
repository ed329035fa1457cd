//! Upgrading a keyspace from before the month-partitioned lists (schema version 6) and the
//! discussion rows in a partition each (version 7): copies what the old per-user lists held
//! into the month partitions, the old per-user thread keys and discussion rows into a
//! partition each, and recounts each user's messages. Safe to run any number of times, and
//! beside running daemons: every write is one a delivery could have made, or is older than
//! any a daemon makes (the discussion rows, see `statements::COPY_TIMESTAMP`), and what is
//! copied is re-derived from the authoritative rows (`messages` for a message and a discussion's
//! members, its discussion's newest arrival for an activity row), so a message deleted or
//! re-flagged since is copied as it is now, not as the old list says.

use super::mailbox;
use super::{
    CassandraStore, MessageSummaryRow, SUMMARIES_PER_LOOKUP, json, month_of, to_json, unset,
};
use crate::{Accounts, StoreError};
use futures::TryStreamExt;
use palisade_model::{Flags, Participant, TagId, merge_participants};
use scylla::value::CqlTimestamp;
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use uuid::Uuid;

/// A row of the per-user `discussions` table: id, subject, normalized subject, last activity,
/// snippet, people, message ids.
type OldDiscussionRow = (
    Uuid,
    Option<String>,
    Option<String>,
    Option<CqlTimestamp>,
    Option<String>,
    Option<Vec<String>>,
    Option<Vec<Uuid>>,
);

/// A message's id, whether it is delivered, its discussion, flags and tags.
type MemberRow = (
    Uuid,
    Option<bool>,
    Option<Uuid>,
    Option<String>,
    Option<String>,
);

/// A discussion's id sets as its message rows say they should be.
#[derive(Default)]
struct Membership {
    members: BTreeSet<Uuid>,
    unread: BTreeSet<Uuid>,
    trashed: BTreeSet<Uuid>,
    pairs: BTreeSet<String>,
}

/// What a backfill did, in total so far.
#[derive(Debug, Default, Clone, Serialize)]
pub struct BackfillReport {
    /// Users whose lists were copied.
    pub users: u64,
    /// Messages listed in the month partitions from the old arrival list.
    pub messages: u64,
    /// Thread keys copied into their own partitions.
    pub thread_keys: u64,
    /// Discussions listed in the month partitions from the old activity list.
    pub discussions: u64,
    /// Discussion rows copied (or completed) from the per-user `discussions` table into
    /// their own partitions; 0 when every row was already there.
    pub discussion_rows: u64,
    /// Users whose stored-message counter was corrected.
    pub recounted: u64,
}

impl CassandraStore {
    /// Copies every user's old lists into the month partitions and recounts their messages;
    /// `progress` is told after each user, with the user's name.
    pub async fn backfill(
        &self,
        progress: &mut (dyn FnMut(&BackfillReport, &str) + Send),
    ) -> Result<BackfillReport, StoreError> {
        let mut report = BackfillReport::default();
        for user in self.list_users().await? {
            self.backfill_thread_keys(user.id.0, &mut report).await?;
            self.backfill_arrivals(user.id.0, &mut report).await?;
            self.backfill_activity(user.id.0, &mut report).await?;
            self.backfill_discussion_rows(user.id.0, &mut report)
                .await?;
            self.recount(user.id.0, &mut report).await?;
            report.users += 1;
            progress(&report, &user.name);
        }
        Ok(report)
    }

    /// Copies the user's thread keys; an old key was registered first, so it wins, as
    /// registration does.
    async fn backfill_thread_keys(
        &self,
        user: Uuid,
        report: &mut BackfillReport,
    ) -> Result<(), StoreError> {
        let st = self.statements().await?;
        let mut keys = self
            .stream::<(String, Uuid)>(&st.old_thread_keys, (user,))
            .await?;
        while let Some((key, discussion)) = keys.try_next().await? {
            self.execute(&st.insert_thread_key, (user, key.as_str(), discussion))
                .await?;
            report.thread_keys += 1;
        }
        Ok(())
    }

    async fn backfill_arrivals(
        &self,
        user: Uuid,
        report: &mut BackfillReport,
    ) -> Result<(), StoreError> {
        let st = self.statements().await?;
        let mut ids = self.stream::<(Uuid,)>(&st.old_arrivals, (user,)).await?;
        let mut months = BTreeSet::new();
        let mut batch = Vec::with_capacity(SUMMARIES_PER_LOOKUP);
        loop {
            let next = ids.try_next().await?;
            if let Some((id,)) = next {
                batch.push(id);
            }
            if batch.len() >= SUMMARIES_PER_LOOKUP || (next.is_none() && !batch.is_empty()) {
                self.copy_arrivals(user, &batch, &mut months, report)
                    .await?;
                batch.clear();
            }
            if next.is_none() {
                return Ok(());
            }
        }
    }

    /// Lists the messages of `ids` that exist, from their own rows, in their months.
    async fn copy_arrivals(
        &self,
        user: Uuid,
        ids: &[Uuid],
        months: &mut BTreeSet<i32>,
        report: &mut BackfillReport,
    ) -> Result<(), StoreError> {
        let st = self.statements().await?;
        let rows: Vec<MessageSummaryRow> = self.all(&st.select_summaries, (user, ids)).await?;
        for (delivered, received, id, discussion, date, subject, from, flags, parse_error, size) in
            rows
        {
            // Deleted, or never committed: not a message.
            let (Some(true), Some(received), Some(discussion), Some(size)) =
                (delivered, received, discussion, size)
            else {
                continue;
            };
            let month = month_of(received);
            if months.insert(month) {
                self.execute(&st.insert_month, (user, month)).await?;
            }
            let flags = match flags {
                Some(flags) => flags,
                None => to_json(&palisade_model::Flags::default())?,
            };
            self.execute(
                &st.insert_arrival,
                (
                    user,
                    month,
                    received,
                    id,
                    discussion,
                    unset(date),
                    unset(subject),
                    unset(from),
                    flags,
                    parse_error.unwrap_or_default(),
                    size,
                ),
            )
            .await?;
            report.messages += 1;
        }
        Ok(())
    }

    async fn backfill_activity(
        &self,
        user: Uuid,
        report: &mut BackfillReport,
    ) -> Result<(), StoreError> {
        let st = self.statements().await?;
        let mut rows = self
            .stream::<(CqlTimestamp, Uuid)>(&st.old_activity, (user,))
            .await?;
        while let Some((at, discussion)) = rows.try_next().await? {
            // Only a row that is still right: its time is the discussion's newest arrival.
            let Some(newest) = mailbox::newest(self, user, discussion).await? else {
                continue;
            };
            if newest.received != at {
                continue;
            }
            let month = month_of(at);
            self.execute(&st.insert_month, (user, month)).await?;
            self.execute(&st.insert_activity, (user, month, at, discussion))
                .await?;
            report.discussions += 1;
        }
        Ok(())
    }

    async fn backfill_discussion_rows(
        &self,
        user: Uuid,
        report: &mut BackfillReport,
    ) -> Result<(), StoreError> {
        let st = self.statements().await?;
        let mut rows = self
            .stream::<OldDiscussionRow>(&st.old_discussions, (user,))
            .await?;
        while let Some(row) = rows.try_next().await? {
            if self.copy_discussion_row(user, row).await? {
                report.discussion_rows += 1;
            }
        }
        Ok(())
    }

    /// The messages of `ids` that are delivered members of `discussion`, from their rows.
    async fn membership(
        &self,
        user: Uuid,
        discussion: Uuid,
        ids: &[Uuid],
    ) -> Result<Membership, StoreError> {
        let st = self.statements().await?;
        let mut found = Membership::default();
        for chunk in ids.chunks(SUMMARIES_PER_LOOKUP) {
            let rows: Vec<MemberRow> = self.all(&st.select_members_in, (user, chunk)).await?;
            for (id, delivered, of, flags, tags) in rows {
                // Deleted, never committed, or (never expected) of another discussion.
                if delivered != Some(true) || of != Some(discussion) {
                    continue;
                }
                let flags: Flags = flags
                    .map(|f| json(&f, "flags"))
                    .transpose()?
                    .unwrap_or_default();
                let tags: Vec<TagId> = tags
                    .map(|t| json(&t, "tags"))
                    .transpose()?
                    .unwrap_or_default();
                found.members.insert(id);
                if !flags.seen {
                    found.unread.insert(id);
                }
                if flags.trashed {
                    found.trashed.insert(id);
                }
                found
                    .pairs
                    .extend(tags.into_iter().map(|t| mailbox::tag_pair(t, id)));
            }
        }
        Ok(found)
    }

    /// Brings one old discussion row into its own partition; `true` when that changed it.
    ///
    /// Only what the new row lacks is written, at `statements::COPY_TIMESTAMP`: a row a daemon
    /// already wrote to since the upgrade (a reply delivered into the discussion, a message marked
    /// read) keeps those changes, and a row copied before is left alone. Ids of the members
    /// that the row has but their messages contradict (flags changed by an old node between
    /// two runs) are taken out at the same time, which removes only copied ids.
    async fn copy_discussion_row(
        &self,
        user: Uuid,
        old: OldDiscussionRow,
    ) -> Result<bool, StoreError> {
        let st = self.statements().await?;
        let (id, subject, normalized, last_activity, snippet, people, ids) = old;
        let want = self
            .membership(user, id, ids.as_deref().unwrap_or_default())
            .await?;
        // Every message gone: nothing would show the discussion.
        if want.members.is_empty() {
            return Ok(false);
        }
        let row = mailbox::discussion_rows(self, user, &[id])
            .await?
            .remove(&id);
        let (has_people, has_members, has_unread, has_trashed, has_pairs) = match row {
            Some((_, _, people, members, unread, trashed, pairs)) => (
                people.unwrap_or_default(),
                members.unwrap_or_default().into_iter().collect(),
                unread.unwrap_or_default().into_iter().collect(),
                trashed.unwrap_or_default().into_iter().collect(),
                pairs.unwrap_or_default().into_iter().collect(),
            ),
            None => Default::default(),
        };
        let (has_members, has_unread, has_trashed, has_pairs): (
            HashSet<Uuid>,
            HashSet<Uuid>,
            HashSet<Uuid>,
            HashSet<String>,
        ) = (has_members, has_unread, has_trashed, has_pairs);
        let missing = |want: &BTreeSet<Uuid>, has: &HashSet<Uuid>| -> Vec<Uuid> {
            want.iter().filter(|m| !has.contains(m)).copied().collect()
        };
        let add_members = missing(&want.members, &has_members);
        let add_unread = missing(&want.unread, &has_unread);
        let add_trashed = missing(&want.trashed, &has_trashed);
        let add_pairs: Vec<String> = want
            .pairs
            .iter()
            .filter(|p| !has_pairs.contains(*p))
            .cloned()
            .collect();
        let member = |m: &Uuid| want.members.contains(m);
        let drop_unread: Vec<Uuid> = has_unread
            .iter()
            .filter(|m| member(m) && !want.unread.contains(m))
            .copied()
            .collect();
        let drop_trashed: Vec<Uuid> = has_trashed
            .iter()
            .filter(|m| member(m) && !want.trashed.contains(m))
            .copied()
            .collect();
        let drop_pairs: Vec<String> = has_pairs
            .iter()
            .filter(|p| pair_message(p).is_some_and(|m| member(&m)) && !want.pairs.contains(*p))
            .cloned()
            .collect();
        let adds = !(add_members.is_empty()
            && add_unread.is_empty()
            && add_trashed.is_empty()
            && add_pairs.is_empty());
        let drops = !(drop_unread.is_empty() && drop_trashed.is_empty() && drop_pairs.is_empty());
        if !adds && !drops {
            return Ok(false);
        }
        if adds {
            self.execute(
                &st.copy_discussion,
                (
                    unset(subject),
                    unset(normalized),
                    unset(last_activity),
                    unset(snippet),
                    add_members,
                    add_unread,
                    add_trashed,
                    add_pairs,
                    user,
                    id,
                ),
            )
            .await?;
        }
        if drops {
            self.execute(
                &st.uncopy_discussion,
                (drop_unread, drop_trashed, drop_pairs, user, id),
            )
            .await?;
        }
        // Only the people the row lacks, so a second copy appends nobody.
        let known: Vec<Participant> = mailbox::people(&has_people)?;
        let mut merged = known.clone();
        merge_participants(&mut merged, &mailbox::people(&people.unwrap_or_default())?);
        if merged.len() > known.len() {
            self.execute(
                &st.copy_participants,
                (mailbox::people_column(&merged[known.len()..])?, user, id),
            )
            .await?;
        }
        Ok(true)
    }

    /// Sets the user's counter to the messages listed in their months, by adding the
    /// difference (a counter cannot be written, only added to).
    async fn recount(&self, user: Uuid, report: &mut BackfillReport) -> Result<(), StoreError> {
        let st = self.statements().await?;
        let mut listed = 0_i64;
        for month in self.months(user, None).await? {
            let mut sizes = self
                .stream::<(Option<i64>,)>(&st.month_sizes, (user, month))
                .await?;
            // Rows a flag update left behind carry no size: not messages.
            while let Some((size,)) = sizes.try_next().await? {
                if size.is_some() {
                    listed += 1;
                }
            }
        }
        let counted = self.stored_count(user).await?;
        if listed != counted {
            self.add_to_count(user, listed - counted).await?;
            report.recounted += 1;
        }
        Ok(())
    }
}

/// The message a `tag_pairs` element is about.
fn pair_message(pair: &str) -> Option<Uuid> {
    pair.rsplit_once(':')
        .and_then(|(_, message)| Uuid::parse_str(message).ok())
}
