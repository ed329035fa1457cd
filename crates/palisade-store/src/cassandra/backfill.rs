//! Upgrading a keyspace from before the month-partitioned lists (schema version 6): copies
//! what the old per-user lists held into the month partitions, and the old per-user thread
//! keys into a partition each, and recounts each user's messages. Safe to run any number of times, and beside running daemons: every write is one
//! a delivery could have made, and what is copied is re-derived from the authoritative rows
//! (`messages` for a message, its discussion's newest arrival for an activity row), so a
//! message deleted or re-flagged since is copied as it is now, not as the old list says.

use super::mailbox;
use super::{
    CassandraStore, MessageSummaryRow, SUMMARIES_PER_LOOKUP, corrupt, month_of, next_row, to_json,
    unavailable, unset,
};
use crate::{Accounts, StoreError};
use futures::TryStreamExt;
use scylla::value::CqlTimestamp;
use serde::Serialize;
use std::collections::BTreeSet;
use uuid::Uuid;

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
            .session
            .execute_iter(st.old_thread_keys.clone(), (user,))
            .await
            .map_err(unavailable)?
            .rows_stream::<(String, Uuid)>()
            .map_err(corrupt)?;
        while let Some((key, discussion)) = keys.try_next().await.map_err(next_row)? {
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
        let mut ids = self
            .session
            .execute_iter(st.old_arrivals.clone(), (user,))
            .await
            .map_err(unavailable)?
            .rows_stream::<(Uuid,)>()
            .map_err(corrupt)?;
        let mut months = BTreeSet::new();
        let mut batch = Vec::with_capacity(SUMMARIES_PER_LOOKUP);
        loop {
            let next = ids.try_next().await.map_err(next_row)?;
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
            .session
            .execute_iter(st.old_activity.clone(), (user,))
            .await
            .map_err(unavailable)?
            .rows_stream::<(CqlTimestamp, Uuid)>()
            .map_err(corrupt)?;
        while let Some((at, discussion)) = rows.try_next().await.map_err(next_row)? {
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

    /// Sets the user's counter to the messages listed in their months, by adding the
    /// difference (a counter cannot be written, only added to).
    async fn recount(&self, user: Uuid, report: &mut BackfillReport) -> Result<(), StoreError> {
        let st = self.statements().await?;
        let mut listed = 0_i64;
        for month in self.months(user, None).await? {
            let mut sizes = self
                .session
                .execute_iter(st.month_sizes.clone(), (user, month))
                .await
                .map_err(unavailable)?
                .rows_stream::<(Option<i64>,)>()
                .map_err(corrupt)?;
            // Rows a flag update left behind carry no size: not messages.
            while let Some((size,)) = sizes.try_next().await.map_err(next_row)? {
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
