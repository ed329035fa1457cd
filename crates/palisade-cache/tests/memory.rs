//! The in-process backend passes the cache contract.

use palisade_cache::contract;
use palisade_cache::memory::MemoryCache;

#[tokio::test]
async fn contract_suite() {
    contract::run_all(&MemoryCache::new()).await;
}
