//! Runs the backend contract against a real Elasticsearch, plus the reindex flow and the
//! unreachable-cluster behaviour.
//!
//! The cluster comes from `PALISADE_ELASTICSEARCH_URL` (default `http://127.0.0.1:9200`;
//! `devtools/services up elasticsearch` starts one). When it cannot be reached the tests
//! fail, never skip: a silently skipped backend test is a backend nobody tests.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use palisade_config::ElasticsearchConfig;
use palisade_index::elasticsearch::ElasticsearchIndex;
use palisade_index::{IndexDocument, IndexError, SearchIndex, SearchQuery, contract};
use palisade_model::{DiscussionId, MessageId, UserId};

fn url() -> String {
    std::env::var("PALISADE_ELASTICSEARCH_URL").unwrap_or_else(|_| "http://127.0.0.1:9200".into())
}

fn config(url: String) -> ElasticsearchConfig {
    ElasticsearchConfig {
        url,
        alias: format!("palisade-test-{}", uuid::Uuid::new_v4().simple()),
        shards: 2,
        replicas: 0,
    }
}

fn connect(config: &ElasticsearchConfig) -> ElasticsearchIndex {
    match ElasticsearchIndex::connect(config) {
        Ok(index) => index,
        Err(e) => panic!("connect: {e}"),
    }
}

/// A fresh index behind a unique alias; panics with a clear message when the cluster is down.
async fn fresh_index() -> Arc<ElasticsearchIndex> {
    let config = config(url());
    let index = connect(&config);
    if let Err(e) = index.ensure_index().await {
        panic!(
            "Elasticsearch is not usable at {} ({e}). Start it with \
             `devtools/services up elasticsearch` or set PALISADE_ELASTICSEARCH_URL.",
            config.url
        );
    }
    Arc::new(index)
}

/// Runs `test` on a fresh index and drops the index afterwards, even when `test` panics.
async fn with_index<F, Fut>(test: F)
where
    F: FnOnce(Arc<ElasticsearchIndex>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let index = fresh_index().await;
    let outcome = tokio::spawn(test(Arc::clone(&index))).await;
    let dropped = index.drop_all().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    if let Err(e) = dropped {
        panic!("drop_all: {e}");
    }
}

fn ok<T>(what: &str, result: Result<T, IndexError>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

fn doc(user: UserId, days: i64, subject: &str) -> IndexDocument {
    let id = MessageId(uuid::Uuid::new_v4());
    IndexDocument {
        user_id: user,
        message_id: id,
        discussion_id: DiscussionId::started_by(id),
        date: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(19_723 + days),
        from: vec!["Zoë Ångström <zoe@example.test>".into()],
        to: vec!["ops@example.org".into()],
        subject: subject.into(),
        body: "Café CRÈME, naïve résumé".into(),
        has_attachment: false,
        tags: vec![],
    }
}

fn subject(s: &str) -> SearchQuery {
    SearchQuery {
        subject: Some(s.into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_passes_the_contract() {
    with_index(|index| async move { contract::run_all(index.as_ref()).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyzers_fold_accents_and_split_addresses() {
    with_index(|index| async move {
        let user = UserId::new_random();
        ok("index", index.index(vec![doc(user, 1, "Hello")]).await);
        for (text, from, to) in [
            (Some("cafe"), None, None),
            (Some("créme"), None, None),
            (Some("NAIVE resume"), None, None),
            (Some("zoe@example.test"), None, None),
            (None, Some("zoe"), None),
            (None, Some("angstrom"), None),
            (None, Some("ZOE@EXAMPLE.TEST"), None),
            (None, None, Some("example")),
            (None, None, Some("ops@example.org")),
        ] {
            let query = SearchQuery {
                text: text.map(Into::into),
                from: from.map(Into::into),
                to: to.map(Into::into),
                ..Default::default()
            };
            let found = ok("search", index.search(user, &query, 10).await);
            assert_eq!(found.len(), 1, "{query:?}");
        }
        ok("ensure_index again", index.ensure_index().await);
        assert_eq!(ok("count", index.count(user).await), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_swaps_the_alias_and_drops_the_old_index() {
    with_index(|index| async move {
        let alias = index.alias().to_string();
        let user = UserId::new_random();
        let docs = vec![doc(user, 1, "Before reindex"), doc(user, 2, "Also before")];
        ok("index", index.index(docs.clone()).await);

        let new_index = ok("begin_reindex", index.begin_reindex().await);
        assert_eq!(new_index, format!("{alias}-v2"));
        assert!(
            matches!(
                index.index_into("some-other-index", docs.clone()).await,
                Err(IndexError::Rejected(_))
            ),
            "index_into only writes into versions of its own alias"
        );
        // Until the swap, reads still go to the old index.
        ok(
            "index_into",
            index.index_into(&new_index, docs[..1].to_vec()).await,
        );
        ok(
            "index_into",
            index.index_into(&new_index, docs[1..].to_vec()).await,
        );
        assert_eq!(ok("count before swap", index.count(user).await), 2);
        ok("finish_reindex", index.finish_reindex(&new_index).await);

        assert_eq!(ok("count", index.count(user).await), 2);
        let found = ok("search", index.search(user, &subject("before"), 10).await);
        let ids: Vec<MessageId> = found.iter().map(|h| h.message_id).collect();
        assert_eq!(ids, vec![docs[1].message_id, docs[0].message_id]);
        assert!(index_exists(&new_index).await);
        assert!(
            !index_exists(&format!("{alias}-v1")).await,
            "old index deleted"
        );

        // The old index is gone: a second reindex lands on v3 and replaces only v2.
        let third = ok("begin_reindex", index.begin_reindex().await);
        assert_eq!(third, format!("{alias}-v3"));
        ok("index_into", index.index_into(&third, docs.clone()).await);
        ok("finish_reindex", index.finish_reindex(&third).await);
        assert_eq!(ok("count", index.count(user).await), 2);
        assert!(
            !index_exists(&new_index).await,
            "v2 deleted after the second swap"
        );

        // Writes through the alias go to the new index.
        ok(
            "index",
            index.index(vec![doc(user, 3, "After reindex")]).await,
        );
        assert_eq!(ok("count", index.count(user).await), 3);
        ok("delete_user", index.delete_user(user).await);
    })
    .await;
}

/// Writes that land while a reindex runs survive its swap: a message indexed, one deleted
/// and one changed after the copy read the store, with the copy then writing its older
/// versions into the new index, as a copy racing them would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reindex_loses_no_write_that_lands_during_it() {
    with_index(|index| async move {
        let user = UserId::new_random();
        let kept = doc(user, 1, "Kept message");
        let deleted = doc(user, 2, "Deleted message");
        let changed = doc(user, 3, "Original subject");
        let stored = vec![kept.clone(), deleted.clone(), changed.clone()];
        ok("index", index.index(stored.clone()).await);

        let new_index = ok("begin_reindex", index.begin_reindex().await);
        // Live writes while the copy walks the store.
        let arrived = doc(user, 4, "Arrived during reindex");
        ok(
            "index during reindex",
            index.index(vec![arrived.clone()]).await,
        );
        let mut renamed = changed.clone();
        renamed.subject = "Renamed subject".into();
        ok(
            "update during reindex",
            index.index(vec![renamed.clone()]).await,
        );
        ok(
            "delete during reindex",
            index.delete_message(user, deleted.message_id).await,
        );
        // The copy writes what it read: `changed` before its rename, and not `deleted`,
        // which it reached after its deletion.
        ok(
            "copy",
            index
                .index_into(&new_index, vec![kept.clone(), changed.clone()])
                .await,
        );
        ok("finish_reindex", index.finish_reindex(&new_index).await);

        assert_eq!(ok("count", index.count(user).await), 3);
        let ids = |hits: Vec<palisade_index::SearchHit>| -> Vec<MessageId> {
            hits.iter().map(|h| h.message_id).collect()
        };
        assert_eq!(
            ids(ok(
                "search",
                index.search(user, &subject("arrived"), 10).await
            )),
            vec![arrived.message_id],
            "a message indexed during the reindex is in the new index"
        );
        assert_eq!(
            ids(ok(
                "search",
                index.search(user, &subject("renamed"), 10).await
            )),
            vec![changed.message_id],
            "an update during the reindex is not undone by the copy's older version"
        );
        assert!(ok("search", index.search(user, &subject("original"), 10).await).is_empty());
        assert!(
            ok("search", index.search(user, &subject("deleted"), 10).await).is_empty(),
            "a message deleted during the reindex stays deleted"
        );
        // After the swap live writes still work with no reindex alias to write to.
        ok(
            "index after",
            index.index(vec![doc(user, 5, "After")]).await,
        );
        ok(
            "delete after",
            index.delete_message(user, kept.message_id).await,
        );
        assert_eq!(ok("count", index.count(user).await), 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_user_spans_pages() {
    with_index(|index| async move {
        // Exactly one full deletion page (5 000), so deletion ends on an empty page and must
        // still leave the deletions visible.
        let user = UserId::new_random();
        let other = UserId::new_random();
        let docs: Vec<IndexDocument> = (0..5_000).map(|i| doc(user, i % 300, "bulk")).collect();
        for chunk in docs.chunks(1_000) {
            ok("index", index.index(chunk.to_vec()).await);
        }
        ok("index", index.index(vec![doc(other, 1, "bulk")]).await);
        assert_eq!(ok("count", index.count(user).await), 5_000);
        ok("delete_user", index.delete_user(user).await);
        assert_eq!(ok("count", index.count(user).await), 0);
        assert_eq!(ok("count", index.count(other).await), 1);
    })
    .await;
}

/// Whether the concrete index exists, asked of the cluster directly rather than the backend.
async fn index_exists(name: &str) -> bool {
    use elasticsearch::Elasticsearch;
    use elasticsearch::http::transport::Transport;
    use elasticsearch::indices::IndicesExistsParts;
    let client = match Transport::single_node(&url()) {
        Ok(transport) => Elasticsearch::new(transport),
        Err(e) => panic!("transport: {e}"),
    };
    let response = client
        .indices()
        .exists(IndicesExistsParts::Index(&[name]))
        .send()
        .await;
    match response.map(|r| r.status_code().as_u16()) {
        Ok(200) => true,
        Ok(404) => false,
        other => panic!("checking index {name}: {other:?}"),
    }
}

#[tokio::test]
async fn unreachable_cluster_is_unavailable_promptly() {
    let index = connect(&config("http://127.0.0.1:1".into()));
    let user = UserId::new_random();
    let started = Instant::now();
    let results = [
        index.ensure_index().await,
        index.index(vec![doc(user, 1, "x")]).await,
        index
            .search(user, &SearchQuery::default(), 10)
            .await
            .map(drop),
        index.count(user).await.map(drop),
        index
            .delete_message(user, MessageId(uuid::Uuid::new_v4()))
            .await,
        index.delete_user(user).await,
        index.begin_reindex().await.map(drop),
    ];
    for result in results {
        assert!(
            matches!(result, Err(IndexError::Unavailable(_))),
            "{result:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn operations_before_ensure_index_fail_without_creating_anything() {
    let config = config(url());
    let index = connect(&config);
    let user = UserId::new_random();
    let indexed = index.index(vec![doc(user, 1, "x")]).await;
    if let Err(IndexError::Unavailable(e)) = &indexed
        && !e.contains("HTTP")
    {
        panic!(
            "Elasticsearch is not reachable at {} ({e}). Start it with \
             `devtools/services up elasticsearch` or set PALISADE_ELASTICSEARCH_URL.",
            config.url
        );
    }
    assert!(indexed.is_err(), "a write needs the alias: {indexed:?}");
    assert!(index.count(user).await.is_err());
    // require_alias kept the write from auto-creating an index named like the alias.
    ok("ensure_index", index.ensure_index().await);
    assert_eq!(ok("count", index.count(user).await), 0);
    ok("drop_all", index.drop_all().await);
}

/// Nodes starting together race to create the index; whichever loses sees the alias before
/// the index's shards have started, and must still return only once a search can succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_racing_to_create_the_index_can_count_once_it_returns() {
    for _ in 0..5 {
        let config = config(url());
        let nodes: Vec<Arc<ElasticsearchIndex>> =
            (0..4).map(|_| Arc::new(connect(&config))).collect();
        let races: Vec<_> = nodes
            .iter()
            .cloned()
            .map(|node| {
                tokio::spawn(async move {
                    ok("ensure_index", node.ensure_index().await);
                    node.count(UserId::new_random()).await
                })
            })
            .collect();
        let mut counts = Vec::new();
        for race in races {
            counts.push(race.await);
        }
        let dropped = nodes[0].drop_all().await;
        for count in counts {
            match count {
                Ok(counted) => assert_eq!(ok("count after ensure_index", counted), 0),
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        ok("drop_all", dropped);
    }
}
