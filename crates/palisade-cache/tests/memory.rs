//! The in-process backend passes the cache contract.

use palisade_cache::contract;
use palisade_cache::memory::MemoryCache;

#[tokio::test]
async fn contract_suite() {
    contract::run_all(&MemoryCache::new()).await;
}

#[tokio::test]
async fn metered_contract_suite() {
    let cache = std::sync::Arc::new(MemoryCache::new());
    contract::run_all(&palisade_cache::metered::Metered::new(cache, "memory")).await;
}
