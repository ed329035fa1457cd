//! How far the search index is behind the store: the per-user watermark that `GET
//! /index/status` shows one user, summed over every user for the index lag gauges.
//!
//! A user is caught up when the index holds exactly as many of their documents as the store
//! holds messages; a deleted message still in the index is lag as much as a new one not yet
//! in it, so the lag counts the difference either way.

use palisade_index::SearchIndex;
use palisade_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The watermark summed over users.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexLag {
    /// Messages stored.
    pub stored: u64,
    /// Documents indexed.
    pub indexed: u64,
    /// The per-user differences, summed.
    pub lag: u64,
    /// Users not caught up.
    pub lagging_users: u64,
}

impl IndexLag {
    /// Adds one user's counts.
    pub fn add(&mut self, stored: u64, indexed: u64) {
        self.stored = self.stored.saturating_add(stored);
        self.indexed = self.indexed.saturating_add(indexed);
        let diff = stored.abs_diff(indexed);
        self.lag = self.lag.saturating_add(diff);
        if diff > 0 {
            self.lagging_users += 1;
        }
    }
}

/// Counts every user's stored messages and indexed documents; each call to a backend may
/// take `timeout`.
pub async fn measure(
    store: &dyn Store,
    index: &dyn SearchIndex,
    timeout: Duration,
) -> anyhow::Result<IndexLag> {
    use anyhow::Context;
    let users = tokio::time::timeout(timeout, store.list_users())
        .await
        .context("listing users timed out")??;
    let mut lag = IndexLag::default();
    for user in users {
        let stored = tokio::time::timeout(timeout, store.count_messages(user.id))
            .await
            .context("counting messages timed out")??;
        let indexed = tokio::time::timeout(timeout, index.count(user.id))
            .await
            .context("counting documents timed out")??;
        lag.add(stored, indexed);
    }
    Ok(lag)
}

/// Samples the lag into the gauges every `interval` until `stop` fires. A failed sample
/// leaves the gauges as they were; the sample timestamp then shows their age.
pub async fn sample_periodically(
    store: Arc<dyn Store>,
    index: Arc<dyn SearchIndex>,
    interval: Duration,
    timeout: Duration,
    stop: CancellationToken,
) {
    use palisade_metrics::metrics::gauge;
    loop {
        match measure(store.as_ref(), index.as_ref(), timeout).await {
            Ok(lag) => {
                gauge!(palisade_metrics::INDEX_STORED).set(lag.stored as f64);
                gauge!(palisade_metrics::INDEX_INDEXED).set(lag.indexed as f64);
                gauge!(palisade_metrics::INDEX_LAG).set(lag.lag as f64);
                gauge!(palisade_metrics::INDEX_LAGGING_USERS).set(lag.lagging_users as f64);
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                gauge!(palisade_metrics::INDEX_LAG_SAMPLED).set(now.as_secs_f64());
            }
            Err(e) => tracing::debug!(error = %format!("{e:#}"), "index lag not sampled"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_extra_documents_are_both_lag() {
        let mut lag = IndexLag::default();
        lag.add(10, 10);
        lag.add(5, 3);
        lag.add(2, 4);
        assert_eq!(
            lag,
            IndexLag {
                stored: 17,
                indexed: 17,
                lag: 4,
                lagging_users: 2
            }
        );
    }
}
