//! The memory all sessions of one listener may spend on message data at once.
//!
//! Each session may hold up to `max_message_bytes`, and there may be `max_connections`
//! sessions: multiplied, that is far more memory than a machine has. So message bytes are
//! also drawn from one shared budget. A transaction that cannot draw more is not refused for
//! good: its data is read and dropped, and its recipients get `452 4.3.1`, so the client keeps
//! the message and retries when the budget has room again.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes drawn from the budget at a time, so a growing message does not touch the shared
/// semaphore for every packet. It is also the budget's accounting unit.
const GRANULE: usize = 64 * 1024;

/// The shared budget of message bytes, cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    granules: Arc<Semaphore>,
}

impl MemoryBudget {
    /// A budget of `bytes`, rounded up to whole granules; at least one message's worth of
    /// granules is always needed, which the caller's configuration check ensures.
    pub fn new(bytes: usize) -> Self {
        let granules = bytes.div_ceil(GRANULE).clamp(1, Semaphore::MAX_PERMITS);
        MemoryBudget {
            granules: Arc::new(Semaphore::new(granules)),
        }
    }

    /// An empty reservation, to grow as a message arrives.
    pub(crate) fn reserve(&self) -> Reservation {
        Reservation {
            budget: self.granules.clone(),
            held: None,
            granules: 0,
        }
    }

    /// Bytes not reserved by any transaction right now.
    pub fn available(&self) -> usize {
        self.granules.available_permits().saturating_mul(GRANULE)
    }
}

/// What one transaction holds of the budget; given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<Semaphore>,
    held: Option<OwnedSemaphorePermit>,
    granules: usize,
}

impl Reservation {
    /// Makes the reservation cover `bytes`, drawing more when needed; `false` when the budget
    /// has no room, in which case what is already held stays held.
    pub(crate) fn cover(&mut self, bytes: usize) -> bool {
        let wanted = bytes.div_ceil(GRANULE);
        if wanted <= self.granules {
            return true;
        }
        let Ok(more) = u32::try_from(wanted - self.granules) else {
            return false;
        };
        match self.budget.clone().try_acquire_many_owned(more) {
            Ok(permit) => {
                match &mut self.held {
                    Some(held) => held.merge(permit),
                    None => self.held = Some(permit),
                }
                self.granules = wanted;
                true
            }
            Err(_) => false,
        }
    }

    /// Gives everything back, for a transaction whose data is being dropped.
    pub(crate) fn release(&mut self) {
        self.held = None;
        self.granules = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_one_budget_and_give_it_back() {
        let budget = MemoryBudget::new(4 * GRANULE);
        let mut a = budget.reserve();
        let mut b = budget.reserve();
        assert!(a.cover(3 * GRANULE));
        assert!(a.cover(GRANULE), "shrinking asks for nothing");
        assert!(!b.cover(2 * GRANULE), "only one granule is left");
        assert!(b.cover(1));
        assert_eq!(budget.available(), 0);
        drop(a);
        assert_eq!(budget.available(), 3 * GRANULE);
        assert!(b.cover(4 * GRANULE));
        b.release();
        assert_eq!(budget.available(), 4 * GRANULE);
    }

    #[test]
    fn an_absurd_size_is_refused_not_overflowed() {
        let budget = MemoryBudget::new(GRANULE);
        assert!(!budget.reserve().cover(usize::MAX));
        assert_eq!(budget.available(), GRANULE);
    }
}
