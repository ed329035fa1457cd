//! Runs the backend contract against the embedded tantivy index, plus the cross-process
//! read-only scenario (the LMTP daemon writes, the API reads).

use chrono::{DateTime, Utc};
use palisade_index::tantivy_backend::TantivyIndex;
use palisade_index::{IndexDocument, IndexError, SearchIndex, SearchQuery, contract};
use palisade_model::{DiscussionId, MessageId, UserId};

fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    }
}

fn open(result: Result<TantivyIndex, IndexError>) -> TantivyIndex {
    match result {
        Ok(index) => index,
        Err(e) => panic!("open: {e}"),
    }
}

fn doc(user: UserId, subject: &str) -> IndexDocument {
    let id = MessageId(uuid::Uuid::new_v4());
    IndexDocument {
        user_id: user,
        message_id: id,
        discussion_id: DiscussionId::started_by(id),
        date: DateTime::<Utc>::UNIX_EPOCH,
        from: vec!["lmtp@example.test".into()],
        to: vec![],
        subject: subject.into(),
        body: String::new(),
        has_attachment: false,
        tags: vec![],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tantivy_passes_the_contract() {
    let dir = tempdir();
    let index = open(TantivyIndex::open(dir.path()));
    contract::run_all(&index).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_instance_sees_writer_commits() -> Result<(), IndexError> {
    let dir = tempdir();
    let writer = TantivyIndex::open(dir.path())?;
    let reader = TantivyIndex::open_read_only(dir.path())?;
    let user = UserId::new_random();
    let query = SearchQuery {
        subject: Some("delivered".into()),
        ..Default::default()
    };
    assert_eq!(reader.count(user).await?, 0);

    let first = doc(user, "Delivered first");
    writer.index(vec![first.clone()]).await?;
    assert_eq!(reader.count(user).await?, 1);
    let found = reader.search(user, &query, 10).await?;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].message_id, first.message_id);

    writer.index(vec![doc(user, "Delivered second")]).await?;
    assert_eq!(reader.search(user, &query, 10).await?.len(), 2);

    writer.delete_message(user, first.message_id).await?;
    assert_eq!(reader.count(user).await?, 1);

    assert_eq!(
        reader.index(vec![doc(user, "x")]).await,
        Err(IndexError::ReadOnly)
    );
    assert_eq!(
        reader.delete_message(user, first.message_id).await,
        Err(IndexError::ReadOnly)
    );
    assert_eq!(reader.delete_user(user).await, Err(IndexError::ReadOnly));
    assert_eq!(
        writer.count(user).await?,
        1,
        "failed read-only writes change nothing"
    );
    Ok(())
}

#[tokio::test]
async fn index_survives_reopen() -> Result<(), IndexError> {
    let dir = tempdir();
    let user = UserId::new_random();
    {
        let writer = TantivyIndex::open(dir.path())?;
        writer.index(vec![doc(user, "durable")]).await?;
    }
    let reopened = TantivyIndex::open(dir.path())?;
    assert_eq!(reopened.count(user).await?, 1);
    Ok(())
}

#[test]
fn second_writer_is_refused() {
    let dir = tempdir();
    let _writer = open(TantivyIndex::open(dir.path()));
    assert!(matches!(
        TantivyIndex::open(dir.path()),
        Err(IndexError::Unavailable(_))
    ));
    assert!(TantivyIndex::open_read_only(dir.path()).is_ok());
}

#[test]
fn read_only_needs_an_existing_index() {
    let dir = tempdir();
    assert!(matches!(
        TantivyIndex::open_read_only(&dir.path().join("missing")),
        Err(IndexError::Unavailable(_))
    ));
    assert!(matches!(
        TantivyIndex::open_read_only(dir.path()),
        Err(IndexError::Unavailable(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metered_tantivy_passes_the_contract() {
    let dir = tempdir();
    let index = std::sync::Arc::new(open(TantivyIndex::open(dir.path())));
    contract::run_all(&palisade_index::metered::Metered::new(index, "tantivy")).await;
}
