//! Which sessions have been using the API on this node lately, for the active-sessions gauge.
//!
//! Sessions live in the shared cache, where counting them would mean walking the keyspace;
//! what an operator watches is how many are in use, and each node sees that for the
//! requests it serves. The set is bounded, so a flood of sessions cannot grow it without
//! limit: past the cap, new sessions are not counted until old ones age out.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How recently a session must have made a request to count as active.
pub const WINDOW: Duration = Duration::from_secs(300);
/// Most sessions tracked at once.
const CAP: usize = 100_000;

/// The sessions seen on this node within [`WINDOW`].
#[derive(Default)]
pub struct ActiveSessions {
    /// Public session id to the last time it was seen.
    seen: Mutex<HashMap<String, Instant>>,
}

impl ActiveSessions {
    /// Notes an authenticated request of session `id`.
    pub fn seen(&self, id: &str) {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = seen.get_mut(id) {
            *last = now;
            return;
        }
        if seen.len() >= CAP {
            seen.retain(|_, last| now.duration_since(*last) < WINDOW);
            if seen.len() >= CAP {
                return;
            }
        }
        seen.insert(id.to_owned(), now);
        palisade_metrics::metrics::gauge!(palisade_metrics::API_ACTIVE_SESSIONS)
            .set(seen.len() as f64);
    }

    /// Forgets sessions idle for longer than [`WINDOW`], updates the gauge and returns the
    /// count.
    pub fn sample(&self) -> usize {
        self.sample_at(Instant::now())
    }

    fn sample_at(&self, now: Instant) -> usize {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.retain(|_, last| now.saturating_duration_since(*last) < WINDOW);
        palisade_metrics::metrics::gauge!(palisade_metrics::API_ACTIVE_SESSIONS)
            .set(seen.len() as f64);
        seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_session_counts_once_and_ages_out_after_the_window() {
        let active = ActiveSessions::default();
        active.seen("a");
        active.seen("b");
        active.seen("a");
        assert_eq!(active.sample(), 2);
        let later = Instant::now() + WINDOW + Duration::from_secs(1);
        assert_eq!(active.sample_at(later), 0);
    }
}
