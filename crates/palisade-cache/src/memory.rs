//! The in-process [`Cache`], for embedded mode: one process, nothing shared, nothing persisted.

use crate::{
    Cache, CacheError, FANOUT_CAPACITY, RateDecision, Subscription, fanout_subscription, millis,
};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, broadcast};
use tokio::time::Instant;

/// Writes between two sweeps of expired entries, so keys never read again do not pile up.
const SWEEP_EVERY: u32 = 256;

/// A [`Cache`] in this process's memory (tokio mutex, hash maps, broadcast channels).
#[derive(Default)]
pub struct MemoryCache {
    state: Mutex<State>,
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<[u8]>>>>,
}

#[derive(Default)]
struct State {
    values: HashMap<String, (Vec<u8>, Option<Instant>)>,
    windows: HashMap<String, Window>,
    /// Sets: member -> expiry (`None`: never).
    sets: HashMap<String, HashMap<String, Option<Instant>>>,
    writes_since_sweep: u32,
}

struct Window {
    count: u64,
    /// `None` when the window is too long to represent: it never ends.
    ends: Option<Instant>,
}

/// `now + d`, or `None` ("never") if that overflows.
fn deadline(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(Duration::from_millis(millis(d)))
}

fn live(expires: Option<Instant>, now: Instant) -> bool {
    expires.is_none_or(|at| at > now)
}

impl State {
    fn wrote(&mut self, now: Instant) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY {
            self.writes_since_sweep = 0;
            self.values.retain(|_, (_, expires)| live(*expires, now));
            self.windows.retain(|_, w| live(w.ends, now));
            for members in self.sets.values_mut() {
                members.retain(|_, expires| live(*expires, now));
            }
            self.sets.retain(|_, members| !members.is_empty());
        }
    }
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let now = Instant::now();
        let mut state = self.state.lock().await;
        state
            .values
            .insert(key.to_owned(), (value.to_vec(), deadline(now, ttl)));
        state.wrote(now);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let now = Instant::now();
        let mut state = self.state.lock().await;
        match state.values.get(key) {
            Some((value, expires)) if live(*expires, now) => Ok(Some(value.clone())),
            Some(_) => {
                state.values.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let now = Instant::now();
        let mut state = self.state.lock().await;
        Ok(state
            .values
            .remove(key)
            .is_some_and(|(_, expires)| live(expires, now)))
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, CacheError> {
        let now = Instant::now();
        let state = self.state.lock().await;
        let mut keys: Vec<String> = state
            .values
            .iter()
            .filter(|(key, (_, expires))| key.starts_with(prefix) && live(*expires, now))
            .map(|(key, _)| key.clone())
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), CacheError> {
        let now = Instant::now();
        let mut state = self.state.lock().await;
        let members = state.sets.entry(key.to_owned()).or_default();
        members.retain(|_, expires| live(*expires, now));
        members.insert(member.to_owned(), deadline(now, ttl));
        state.wrote(now);
        Ok(())
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, CacheError> {
        let now = Instant::now();
        let state = self.state.lock().await;
        let mut members: Vec<String> = state
            .sets
            .get(key)
            .into_iter()
            .flatten()
            .filter(|(_, expires)| live(**expires, now))
            .map(|(member, _)| member.clone())
            .collect();
        members.sort();
        Ok(members)
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<bool, CacheError> {
        let now = Instant::now();
        let mut state = self.state.lock().await;
        let Some(members) = state.sets.get_mut(key) else {
            return Ok(false);
        };
        let removed = members
            .remove(member)
            .is_some_and(|expires| live(expires, now));
        if members.is_empty() {
            state.sets.remove(key);
        }
        Ok(removed)
    }

    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, CacheError> {
        let now = Instant::now();
        let mut state = self.state.lock().await;
        let current = state.windows.entry(key.to_owned()).or_insert(Window {
            count: 0,
            ends: deadline(now, window),
        });
        if !live(current.ends, now) {
            *current = Window {
                count: 0,
                ends: deadline(now, window),
            };
        }
        current.count = current.count.saturating_add(1);
        let count = current.count;
        let retry_after = current
            .ends
            .map_or(Duration::MAX, |ends| ends.saturating_duration_since(now));
        state.wrote(now);
        Ok(RateDecision {
            allowed: count <= u64::from(limit),
            remaining: u32::try_from(u64::from(limit).saturating_sub(count)).unwrap_or(0),
            retry_after,
        })
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), CacheError> {
        let mut channels = self.channels.lock().await;
        if let Some(sender) = channels.get(channel) {
            // An error only means every subscriber has gone: forget the channel.
            if sender.send(Arc::from(payload)).is_err() {
                channels.remove(channel);
            }
        }
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, CacheError> {
        let mut channels = self.channels.lock().await;
        channels.retain(|_, sender| sender.receiver_count() > 0);
        let receiver = channels
            .entry(channel.to_owned())
            .or_insert_with(|| broadcast::channel(FANOUT_CAPACITY).0)
            .subscribe();
        // Departed subscribers are forgotten by the next subscribe or publish.
        Ok(fanout_subscription(receiver, channel.to_owned(), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_entries_are_swept_without_being_read() {
        let cache = MemoryCache::new();
        for i in 0..SWEEP_EVERY {
            cache
                .put(&format!("old{i}"), b"v", Duration::from_millis(5))
                .await
                .expect("put");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        for i in 0..SWEEP_EVERY {
            cache
                .put(&format!("new{i}"), b"v", Duration::from_secs(60))
                .await
                .expect("put");
        }
        let stored = cache.state.lock().await.values.len();
        assert!(stored <= SWEEP_EVERY as usize, "{stored} entries kept");
    }
}
