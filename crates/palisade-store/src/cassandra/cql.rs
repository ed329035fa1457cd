//! The driver calls every part of the store goes through: single requests, first-row and
//! all-rows reads, lightweight transactions, and paged scans without read-ahead.

use super::{
    CassandraStore, SummaryRow, corrupt, encode_cursor, fetch_size, month_of, page_of, summary,
    unavailable,
};
use crate::{PageOf, StoreError};
use palisade_model::MessageSummary;
use scylla::deserialize::row::DeserializeRow;
use scylla::response::PagingState;
use scylla::response::query_result::{QueryResult, QueryRowsResult};
use scylla::serialize::batch::BatchValues;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::Batch;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlValue, Row};
use std::ops::ControlFlow;
use uuid::Uuid;

/// Rows of a paged read, decoded, with the store's errors.
pub(super) type RowStream<R> = futures::stream::MapErr<
    scylla::client::pager::TypedRowStream<R>,
    fn(scylla::errors::NextRowError) -> StoreError,
>;

impl CassandraStore {
    pub(super) async fn execute(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<QueryResult, StoreError> {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map_err(unavailable)
    }

    /// Runs a batch, one row of values per statement.
    pub(super) async fn batch(
        &self,
        batch: &Batch,
        values: impl BatchValues,
    ) -> Result<QueryResult, StoreError> {
        self.session.batch(batch, values).await.map_err(unavailable)
    }

    /// Reads every row of a statement page by page, as the driver fetches them, so a scan of
    /// any size holds one page; each item fails as a fetch (unavailable) or a row (corrupt).
    pub(super) async fn stream<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<RowStream<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + 'static,
    {
        let rows = self
            .session
            .execute_iter(statement.clone(), values)
            .await
            .map_err(unavailable)?
            .rows_stream::<R>()
            .map_err(corrupt)?;
        Ok(futures::TryStreamExt::map_err(
            rows,
            super::next_row as fn(_) -> _,
        ))
    }

    /// Runs a statement that returns rows; an answer without rows is a bug, not an outage.
    async fn rows(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<QueryRowsResult, StoreError> {
        self.execute(statement, values)
            .await?
            .into_rows_result()
            .map_err(corrupt)
    }

    /// Runs a single-row lookup.
    pub(super) async fn first<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let rows = self.rows(statement, values).await?;
        rows.maybe_first_row::<R>().map_err(corrupt)
    }

    /// Runs a bounded query and decodes every row.
    pub(super) async fn all<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let rows = self.rows(statement, values).await?;
        rows.rows::<R>()
            .map_err(corrupt)?
            .map(|r| r.map_err(corrupt))
            .collect()
    }

    /// Runs a conditional statement and reports whether it applied.
    pub(super) async fn lwt(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Lwt, StoreError> {
        let rows = self.rows(statement, values).await?;
        let names = rows
            .column_specs()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let row = rows.first_row::<Row>().map_err(corrupt)?;
        let applied = match row.columns.first() {
            Some(Some(CqlValue::Boolean(applied))) => *applied,
            _ => return Err(StoreError::Corrupt("LWT result without [applied]".into())),
        };
        Ok(Lwt {
            applied,
            names,
            row,
        })
    }

    /// Reads a query's rows `page_size` at a time, handing each to `keep` until it returns
    /// `false` or the rows run out. Unlike the driver's pager it does not read a page ahead,
    /// so a list that stops after its first page costs one request.
    pub(super) async fn scan<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        page_size: i32,
        mut keep: impl FnMut(R) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let mut statement = statement.clone();
        statement.set_page_size(page_size.max(1));
        let mut paging = PagingState::start();
        loop {
            let (result, response) = self
                .session
                .execute_single_page(&statement, &values, paging)
                .await
                .map_err(unavailable)?;
            let rows = result.into_rows_result().map_err(corrupt)?;
            for row in rows.rows::<R>().map_err(corrupt)? {
                if !keep(row.map_err(corrupt)?)? {
                    return Ok(());
                }
            }
            match response.into_paging_control_flow() {
                ControlFlow::Continue(next) => paging = next,
                ControlFlow::Break(()) => return Ok(()),
            }
        }
    }

    /// One page of message summaries, newest first, from a query over summary rows, keeping
    /// only the messages `keep` accepts; reads on through the rows until the page is full.
    pub(super) async fn summaries_where(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        limit: usize,
        keep: impl Fn(&MessageSummary) -> bool,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        let limit = limit.max(1);
        let mut items = Vec::with_capacity(limit + 1);
        self.collect_summaries(statement, values, limit, &mut items, keep)
            .await?;
        Ok(summary_page(items, limit))
    }

    /// Adds the summaries of a query's rows that `keep` accepts to `items`, until it holds
    /// one more than `limit` (which tells a next page exists) or the rows run out.
    async fn collect_summaries(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
        limit: usize,
        items: &mut Vec<MessageSummary>,
        keep: impl Fn(&MessageSummary) -> bool,
    ) -> Result<(), StoreError> {
        if items.len() > limit {
            return Ok(());
        }
        let wanted = limit + 1 - items.len();
        self.scan(statement, values, fetch_size(wanted), |row: SummaryRow| {
            if let Some(item) = summary(row)?.filter(|m| keep(m)) {
                items.push(item);
            }
            Ok(items.len() <= limit)
        })
        .await
    }

    /// The months `user` has mail in, newest first, from `upto` (a cursor's month) down.
    pub(super) async fn months(
        &self,
        user: Uuid,
        upto: Option<i32>,
    ) -> Result<Vec<i32>, StoreError> {
        let st = self.statements().await?;
        let months: Vec<(i32,)> = self.all(&st.select_months, (user,)).await?;
        Ok(months
            .into_iter()
            .map(|(m,)| m)
            .filter(|m| upto.is_none_or(|u| *m <= u))
            .collect())
    }

    /// One page of the user's messages by arrival, newest first, after `after` (a cursor's
    /// arrival and id): month partitions are read newest first until the page is full.
    pub(super) async fn arrivals(
        &self,
        user: Uuid,
        after: Option<(i64, Uuid)>,
        limit: usize,
    ) -> Result<PageOf<MessageSummary>, StoreError> {
        let st = self.statements().await?;
        let limit = limit.max(1);
        let mut items = Vec::with_capacity(limit + 1);
        let cursor_month = after.map(|(ms, _)| month_of(CqlTimestamp(ms)));
        for month in self.months(user, cursor_month).await? {
            match after {
                Some((ms, id)) if Some(month) == cursor_month => {
                    let values = (user, month, CqlTimestamp(ms), id);
                    self.collect_summaries(&st.list_after, values, limit, &mut items, |_| true)
                        .await?;
                }
                _ => {
                    let values = (user, month);
                    self.collect_summaries(&st.list_first, values, limit, &mut items, |_| true)
                        .await?;
                }
            }
            if items.len() > limit {
                break;
            }
        }
        Ok(summary_page(items, limit))
    }
}

/// A page of summaries, its cursor being the last one's arrival and id.
fn summary_page(items: Vec<MessageSummary>, limit: usize) -> PageOf<MessageSummary> {
    page_of(items, limit, |m: &MessageSummary| {
        encode_cursor(m.received_at.timestamp_millis(), m.id.0)
    })
}

/// The outcome of a lightweight transaction, with the existing row when it did not apply.
pub(super) struct Lwt {
    pub(super) applied: bool,
    names: Vec<String>,
    row: Row,
}

impl Lwt {
    pub(super) fn column(&self, name: &str) -> Option<&CqlValue> {
        let index = self.names.iter().position(|n| n == name)?;
        self.row.columns.get(index)?.as_ref()
    }
}
