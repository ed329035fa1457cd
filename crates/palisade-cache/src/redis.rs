//! The Redis [`Cache`], for distributed mode: every API node sees the same entries.
//!
//! Keys live under fixed namespaces (`palisade:kv:`, `palisade:rl:`, `palisade:set:`,
//! `palisade:ps:`) so values, counters, sets and channels cannot collide with each other or
//! with other users of the instance.

use crate::redis_pubsub::SharedSubscriber;
use crate::{Cache, CacheError, RateDecision, Subscription, millis};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Client, Script};
use async_trait::async_trait;
use std::future::Future;
use std::time::Duration;

/// Namespace of key-value entries.
const VALUES: &str = "palisade:kv:";
/// Namespace of rate-limit counters.
const COUNTERS: &str = "palisade:rl:";
/// Namespace of sets (sorted sets scored by each member's expiry).
const SETS: &str = "palisade:set:";
/// Namespace of pub/sub channels.
const CHANNELS: &str = "palisade:ps:";

/// Bound on connecting, so an outage surfaces as a prompt `Unavailable`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on a command's reply.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Outer bound on a whole operation, reconnection attempts included.
const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys asked for per SCAN round trip.
const SCAN_BATCH: usize = 500;

/// Fixed-window counter in one atomic step. The second `PEXPIRE` heals a counter that lost
/// its TTL, which would otherwise lock the caller out forever.
const HIT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// Redis's own clock in milliseconds, so every node expires set members alike whatever its
/// own clock says. Used as a prefix of the set scripts below; `int` spells a number as a
/// plain integer, since Lua would otherwise print large ones in exponent notation, which
/// Redis refuses as a score bound or expiry.
const NOW_MS: &str = r"
local function int(n) return string.format('%d', n) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// Adds a member scored by its expiry, drops expired members, and keeps the set itself
/// alive exactly as long as its longest-lived member, so an abandoned set cleans itself up.
const SET_ADD_SCRIPT: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
redis.call('ZADD', KEYS[1], int(now + tonumber(ARGV[2])), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], int(tonumber(last[2])))
return 1
";

/// The members whose expiry is still ahead.
const SET_MEMBERS_SCRIPT: &str = r"
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. int(now), '+inf')
";

/// Removes a member; 1 when it was there and live.
const SET_REMOVE_SCRIPT: &str = r"
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if score and tonumber(score) > now then
  return 1
end
return 0
";

/// A [`Cache`] on Redis: commands over a self-reconnecting [`ConnectionManager`], and every
/// [`Subscription`] on one shared pub/sub connection (Redis reserves a subscribed
/// connection, so one per subscriber would not scale with open event streams).
pub struct RedisCache {
    commands: ConnectionManager,
    hit_script: Script,
    set_add_script: Script,
    set_members_script: Script,
    set_remove_script: Script,
    subscriber: SharedSubscriber,
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> CacheError {
    CacheError::Unavailable(format!("redis {what}: {error}"))
}

/// Runs one operation under [`OP_TIMEOUT`], mapping every failure to `Unavailable`.
pub(crate) async fn timed<T>(
    what: &str,
    op: impl Future<Output = ::redis::RedisResult<T>>,
) -> Result<T, CacheError> {
    match tokio::time::timeout(OP_TIMEOUT, op).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(unavailable(what, e)),
        Err(_) => Err(unavailable(what, "timed out")),
    }
}

/// Escapes SCAN's glob syntax, so a prefix matches literally and cannot widen the listing.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisCache {
    /// Connects to `url` (e.g. `redis://127.0.0.1:6379/`); fails if Redis is unreachable.
    pub async fn connect(url: &str) -> Result<Self, CacheError> {
        let client = Client::open(url).map_err(|e| unavailable("url", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            // Few, quick retries: callers would rather fail fast and retry on their own terms.
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let commands = timed(
            "connect",
            ConnectionManager::new_with_config(client.clone(), config),
        )
        .await?;
        Ok(RedisCache {
            commands,
            hit_script: Script::new(HIT_SCRIPT),
            set_add_script: Script::new(&format!("{NOW_MS}{SET_ADD_SCRIPT}")),
            set_members_script: Script::new(&format!("{NOW_MS}{SET_MEMBERS_SCRIPT}")),
            set_remove_script: Script::new(&format!("{NOW_MS}{SET_REMOVE_SCRIPT}")),
            subscriber: SharedSubscriber::new(client),
        })
    }

    /// Runs one command on the shared connection, once more on a fresh one if the connection
    /// was broken. After Redis restarts, the manager only finds out when a command fails on
    /// the old socket; without the retry that first caller would get a 503 for nothing. Every
    /// command here may run twice: values and sets are idempotent, a rate-limit hit counted
    /// twice only tightens the limit, and a new-mail event published twice refreshes a view.
    async fn run<T, F, Fut>(&self, what: &str, op: F) -> Result<T, CacheError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = ::redis::RedisResult<T>>,
    {
        // Clones share one multiplexed connection.
        match tokio::time::timeout(OP_TIMEOUT, op(self.commands.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if broken_connection(&e) => {
                tracing::debug!(what, error = %e, "redis connection broken; retrying once");
                timed(what, op(self.commands.clone())).await
            }
            Ok(Err(e)) => Err(unavailable(what, e)),
            Err(_) => Err(unavailable(what, "timed out")),
        }
    }
}

/// Whether `e` says the connection failed, rather than Redis refusing the command.
fn broken_connection(e: &::redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}

#[async_trait]
impl Cache for RedisCache {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        let key = &format!("{VALUES}{key}");
        self.run("SET", |mut con| async move {
            con.pset_ex::<_, _, ()>(key, value, millis(ttl)).await
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let key = &format!("{VALUES}{key}");
        self.run("GET", |mut con| async move { con.get(key).await })
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let key = &format!("{VALUES}{key}");
        let removed: usize = self
            .run("DEL", |mut con| async move { con.del(key).await })
            .await?;
        Ok(removed > 0)
    }

    async fn keys_with_prefix(&self, prefix: &str) -> Result<Vec<String>, CacheError> {
        let pattern = &format!("{}*", glob_escape(&format!("{VALUES}{prefix}")));
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        // SCAN, never KEYS: KEYS blocks the whole server for the length of the keyspace.
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = self
                .run("SCAN", |mut con| async move {
                    ::redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(SCAN_BATCH)
                        .query_async(&mut con)
                        .await
                })
                .await?;
            keys.extend(batch.into_iter().filter_map(|raw| {
                String::from_utf8(raw)
                    .ok()
                    .and_then(|k| k.strip_prefix(VALUES).map(str::to_owned))
            }));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // SCAN may return a key more than once.
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), CacheError> {
        let key = format!("{SETS}{key}");
        let key = &key;
        self.run("set add", |mut con| async move {
            self.set_add_script
                .key(key)
                .arg(member)
                .arg(millis(ttl))
                .invoke_async::<()>(&mut con)
                .await
        })
        .await
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, CacheError> {
        let key = &format!("{SETS}{key}");
        let mut members: Vec<String> = self
            .run("set members", |mut con| async move {
                self.set_members_script
                    .key(key)
                    .invoke_async(&mut con)
                    .await
            })
            .await?;
        members.sort();
        Ok(members)
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<bool, CacheError> {
        let key = &format!("{SETS}{key}");
        let removed: i64 = self
            .run("set remove", |mut con| async move {
                self.set_remove_script
                    .key(key)
                    .arg(member)
                    .invoke_async(&mut con)
                    .await
            })
            .await?;
        Ok(removed == 1)
    }

    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<RateDecision, CacheError> {
        let key = &format!("{COUNTERS}{key}");
        let (count, ttl_ms): (i64, i64) = self
            .run("rate limit", |mut con| async move {
                self.hit_script
                    .key(key)
                    .arg(millis(window))
                    .invoke_async(&mut con)
                    .await
            })
            .await?;
        let count = u64::try_from(count).unwrap_or(0);
        Ok(RateDecision {
            allowed: count <= u64::from(limit),
            remaining: u32::try_from(u64::from(limit).saturating_sub(count)).unwrap_or(0),
            retry_after: Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0)),
        })
    }

    async fn publish(&self, channel: &str, payload: &[u8]) -> Result<(), CacheError> {
        let channel = &format!("{CHANNELS}{channel}");
        let _receivers: usize = self
            .run("PUBLISH", |mut con| async move {
                con.publish(channel, payload).await
            })
            .await?;
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<Subscription, CacheError> {
        self.subscriber
            .subscribe(format!("{CHANNELS}{channel}"))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_match_literally() {
        assert_eq!(glob_escape("a*b?[c]\\d"), "a\\*b\\?\\[c\\]\\\\d");
        assert_eq!(glob_escape("u:1:session:"), "u:1:session:");
    }
}
