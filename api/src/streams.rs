//! How many live event streams each user holds open on this node, and the cap on them.
//!
//! A stream costs this node a task, buffers and a keep-alive timer for as long as the client
//! stays connected, so an unbounded number per user would let one session (or a leaked
//! token) tie up the node. The count is per node because that is where the cost is; the
//! Redis connection behind the streams is shared node-wide by the cache.

use palisade_model::UserId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The per-user counts of open streams on this node, with their cap.
pub struct StreamSlots {
    /// Most streams one user may hold open at once.
    max_per_user: usize,
    /// Open streams per user; users with none are removed, so it stays as small as the set
    /// of connected users.
    open: Arc<Mutex<HashMap<UserId, usize>>>,
}

/// One open stream of a user's; dropping it (when the stream ends or the client leaves)
/// frees the slot.
pub struct StreamSlot {
    user: UserId,
    open: Arc<Mutex<HashMap<UserId, usize>>>,
}

fn counts(
    open: &Mutex<HashMap<UserId, usize>>,
) -> std::sync::MutexGuard<'_, HashMap<UserId, usize>> {
    // Every update leaves the map consistent, so a poisoned lock still holds good counts.
    open.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StreamSlots {
    /// Slots for at most `max_per_user` streams per user.
    pub fn new(max_per_user: usize) -> Self {
        StreamSlots {
            max_per_user,
            open: Arc::default(),
        }
    }

    /// Most streams one user may hold open at once.
    pub fn max_per_user(&self) -> usize {
        self.max_per_user
    }

    /// Takes a slot for a new stream of `user`'s, or `None` when the user is at the cap.
    pub fn try_open(&self, user: UserId) -> Option<StreamSlot> {
        let mut open = counts(&self.open);
        let count = open.get(&user).copied().unwrap_or(0);
        if count >= self.max_per_user {
            return None;
        }
        open.insert(user, count + 1);
        palisade_metrics::metrics::gauge!(palisade_metrics::API_EVENT_STREAMS).increment(1.0);
        Some(StreamSlot {
            user,
            open: self.open.clone(),
        })
    }

    /// How many streams `user` has open on this node.
    pub fn open_for(&self, user: UserId) -> usize {
        counts(&self.open).get(&user).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        palisade_metrics::metrics::gauge!(palisade_metrics::API_EVENT_STREAMS).decrement(1.0);
        let mut open = counts(&self.open);
        if let Some(count) = open.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_gets_the_cap_and_closing_frees_a_slot() {
        let slots = StreamSlots::new(2);
        let (alice, bob) = (UserId::new_random(), UserId::new_random());
        let first = slots.try_open(alice).expect("first");
        let _second = slots.try_open(alice).expect("second");
        assert!(slots.try_open(alice).is_none(), "over the cap");
        assert!(
            slots.try_open(bob).is_some(),
            "other users are not affected"
        );
        drop(first);
        assert_eq!(slots.open_for(alice), 1);
        assert!(
            slots.try_open(alice).is_some(),
            "a closed stream frees its slot"
        );
        assert_eq!(slots.open_for(bob), 0);
    }
}
