//! The memory all sessions of one listener may spend on message data at once.
//!
//! Each session may hold up to `max_message_bytes`, and there may be `max_connections`
//! sessions: multiplied, that is far more memory than a machine has. So message bytes are
//! also drawn from one shared budget. A transaction that cannot draw more is not refused for
//! good: its data is read and dropped, and its recipients get `452 4.3.1`, so the client keeps
//! the message and retries when the budget has room again.
//!
//! With spilling on ([`MemoryBudget::with_spill`]), a message past the spill threshold goes to a
//! temporary file as it arrives, and the budget is split in two: one half for the bytes sessions
//! hold while receiving, the other for spilled messages being read back, parsed and stored.
//! A spilled message waits for its turn in that second half instead of being refused, so large
//! messages arriving together are processed a few at a time, within the budget.

use crate::spool::Spool;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes drawn from the budget at a time, so a growing message does not touch the shared
/// semaphore for every packet. It is also the budget's accounting unit.
const GRANULE: usize = 64 * 1024;

/// What processing a message costs in memory, as a multiple of its size: the raw bytes, and
/// about as much again for the parsed model (decoded parts, text) while it is stored.
const PROCESSING_FACTOR: usize = 2;

/// The shared budget of message bytes, cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    granules: Arc<Semaphore>,
    spill: Option<Arc<Spill>>,
}

/// Where and past what size messages go to disk, and the budget of their processing.
#[derive(Debug)]
struct Spill {
    threshold: usize,
    dir: Arc<PathBuf>,
    processing: Arc<Semaphore>,
    processing_granules: usize,
}

impl MemoryBudget {
    /// A budget of `bytes`, rounded up to whole granules; at least one message's worth of
    /// granules is always needed, which the caller's configuration check ensures.
    pub fn new(bytes: usize) -> Self {
        MemoryBudget {
            granules: Arc::new(Semaphore::new(granules(bytes))),
            spill: None,
        }
    }

    /// A budget of `bytes` in which messages larger than `threshold` are written to temporary
    /// files in `dir` as they arrive, and processed within half of the budget, one turn at a time.
    pub fn with_spill(bytes: usize, threshold: usize, dir: PathBuf) -> Self {
        let half = granules(bytes / 2);
        MemoryBudget {
            granules: Arc::new(Semaphore::new(half)),
            spill: Some(Arc::new(Spill {
                threshold: threshold.max(GRANULE),
                dir: Arc::new(dir),
                processing: Arc::new(Semaphore::new(half)),
                processing_granules: half,
            })),
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

    /// How many bytes of a message a session keeps in memory before spilling them; `None`
    /// when everything stays in memory.
    pub(crate) fn spill_threshold(&self) -> Option<usize> {
        self.spill.as_ref().map(|s| s.threshold)
    }

    /// A spool for one message, when spilling is on.
    pub(crate) fn spool(&self) -> Option<Spool> {
        self.spill.as_ref().map(|s| Spool::new(s.dir.clone()))
    }

    /// Waits for room to process a spilled message of `size` bytes, and holds it until dropped.
    /// A message too large for the whole processing budget takes all of it, alone.
    pub(crate) async fn processing_turn(&self, size: usize) -> Reservation {
        let Some(spill) = &self.spill else {
            return self.reserve();
        };
        let wanted = size
            .saturating_mul(PROCESSING_FACTOR)
            .div_ceil(GRANULE)
            .clamp(1, spill.processing_granules);
        let permits = u32::try_from(wanted).unwrap_or(u32::MAX);
        // The semaphore is never closed, so acquiring only ever waits.
        let held = spill
            .processing
            .clone()
            .acquire_many_owned(permits)
            .await
            .ok();
        Reservation {
            budget: spill.processing.clone(),
            granules: if held.is_some() { wanted } else { 0 },
            held,
        }
    }
}

/// Whole granules for `bytes`, at least one, at most what a semaphore can count.
fn granules(bytes: usize) -> usize {
    bytes.div_ceil(GRANULE).clamp(1, Semaphore::MAX_PERMITS)
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

    #[tokio::test]
    async fn spilled_messages_take_turns_within_half_the_budget() {
        let budget = MemoryBudget::with_spill(8 * GRANULE, GRANULE, std::env::temp_dir());
        assert_eq!(
            budget.available(),
            4 * GRANULE,
            "half the budget is for receiving"
        );
        assert_eq!(budget.spill_threshold(), Some(GRANULE));
        let first = budget.processing_turn(GRANULE).await;
        let huge = tokio::spawn({
            let budget = budget.clone();
            async move { budget.processing_turn(usize::MAX).await.granules }
        });
        tokio::task::yield_now().await;
        assert!(
            !huge.is_finished(),
            "the whole processing half is needed, and one turn holds part of it"
        );
        drop(first);
        assert_eq!(
            huge.await.expect("turn"),
            4,
            "too large for the budget: it takes all of it"
        );
    }

    #[test]
    fn an_absurd_size_is_refused_not_overflowed() {
        let budget = MemoryBudget::new(GRANULE);
        assert!(!budget.reserve().cover(usize::MAX));
        assert_eq!(budget.available(), GRANULE);
    }
}
