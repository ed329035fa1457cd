//! The stored side of the index watermark, exact however often a write is repeated.
//!
//! A counter cannot be written in the batch that commits the message it counts, and a counter
//! update sent twice counts twice: a commit whose reply was lost, or a node dying between the
//! two, made the count drift until `palisade-admin migrate` recounted. Instead:
//!
//! - a committed message writes a tally row (+1) in its commit batch, and a deletion a row (-1)
//!   in the batch that deletes it, so each exists exactly when what it counts does, and
//!   writing it again changes nothing;
//! - reading the count sums the user's folded `total` and the rows not yet folded;
//! - rows older than [`FOLD_AGE`] are folded: one conditional batch sets `total` to its value
//!   plus theirs, if it still holds the value read, and deletes exactly those rows, so two
//!   readers folding at once cannot both add them;
//! - a tally row's write time is its message's arrival time, so an attempt that writes it
//!   again after the fold (a second live delivery of the message, or a deletion retried)
//!   writes under the fold's tombstone, which is newer.
//!
//! What was counted before the tally existed stays in `message_counts`: the count is the two
//! together, and old deliveries left uncounted are still counted there (`deliver::count`).

use super::CassandraStore;
use crate::StoreError;
use futures::TryStreamExt;
use scylla::statement::batch::{Batch, BatchType};
use scylla::value::{Counter, CqlTimestamp, CqlValue};
use std::time::Duration;
use tracing::debug;
use uuid::Uuid;

/// Rows are folded only once their arrival time is this far in the past: a tally row's write
/// time is taken from the clock of the node that received the message, and the fold's
/// tombstone from the coordinator's, so this bounds the clock skew the scheme tolerates.
pub(super) const FOLD_AGE: Duration = Duration::from_secs(30);

/// Rows folded by one conditional batch; Cassandra warns about batches over 5 KiB.
const FOLD_ROWS: usize = 64;

/// One tally row: the message, its arrival time and its change to the count.
type TallyRow = (Uuid, CqlTimestamp, i32);

/// A tally row's write time for a message that arrived at `received`: deletions one
/// microsecond later, so a message stored and deleted in the same millisecond keeps both.
pub(super) fn write_time(received: CqlTimestamp, change: i32) -> i64 {
    received.0.saturating_mul(1000) + i64::from(change < 0)
}

impl CassandraStore {
    /// The user's stored messages: the counter of before the tally, the tally's total and its
    /// rows not yet folded. Folds what is old enough as it reads; a failed fold is left to
    /// the next read.
    pub(super) async fn stored_count(&self, user: Uuid) -> Result<i64, StoreError> {
        let st = self.statements().await?;
        let counted: Option<(Option<Counter>,)> = self.first(&st.count_messages, (user,)).await?;
        let counted = counted.and_then(|(n,)| n).map_or(0, |Counter(n)| n);

        let mut rows = self
            .stream::<(Option<i64>, Option<Uuid>, Option<CqlTimestamp>, Option<i32>)>(
                &st.select_tally,
                (user,),
            )
            .await?;
        let horizon = chrono::Utc::now().timestamp_millis()
            - i64::try_from(FOLD_AGE.as_millis()).unwrap_or(i64::MAX);
        let (mut total, mut pending, mut foldable) = (None, 0_i64, Vec::new());
        while let Some((folded, id, received, change)) = rows.try_next().await? {
            // The static column comes with every row, and alone when no row is left.
            total = total.or(folded);
            let (Some(id), Some(received), Some(change)) = (id, received, change) else {
                continue;
            };
            pending += i64::from(change);
            if received.0 < horizon && foldable.len() < FOLD_ROWS {
                foldable.push((id, received, change));
            }
        }
        if !foldable.is_empty()
            && let Err(e) = self.fold(user, total, &foldable).await
        {
            debug!(error = %e, "tally not folded; the next read tries again");
        }
        Ok(counted + total.unwrap_or(0) + pending)
    }

    /// Adds `rows` to the user's total and deletes them, if the total is still `total`.
    async fn fold(
        &self,
        user: Uuid,
        total: Option<i64>,
        rows: &[TallyRow],
    ) -> Result<(), StoreError> {
        let st = self.statements().await?;
        let added: i64 = rows.iter().map(|&(_, _, change)| i64::from(change)).sum();
        let folded = CqlValue::BigInt(total.unwrap_or(0) + added);
        let mut batch = Batch::new(BatchType::Logged);
        let mut values: Vec<Vec<CqlValue>> = Vec::with_capacity(rows.len() + 1);
        match total {
            Some(total) => {
                batch.append_statement(st.fold_tally.clone());
                values.push(vec![folded, CqlValue::Uuid(user), CqlValue::BigInt(total)]);
            }
            None => {
                batch.append_statement(st.start_tally.clone());
                values.push(vec![folded, CqlValue::Uuid(user)]);
            }
        }
        for &(id, received, change) in rows {
            batch.append_statement(st.delete_tally.clone());
            values.push(vec![
                CqlValue::Uuid(user),
                CqlValue::Uuid(id),
                CqlValue::Timestamp(received),
                CqlValue::Int(change),
            ]);
        }
        // Not applied: another reader folded first, and the next read sees its total.
        self.batch(&batch, values).await?;
        Ok(())
    }
}
