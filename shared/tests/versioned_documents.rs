//! Documents merged by several containers at once, against moto's DynamoDB (which evaluates
//! the `version = :read` condition each write relies on). Each `Documents` is its own SDK
//! client, as separate Lambda containers are.

use std::time::Duration;

use shared::versioned::{Documents, Updated};
use standins::Moto;
use standins::rig::budget;

const KEPT: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_from_containers_writing_at_once_are_all_kept() {
    let moto = Moto::start();
    let table = moto.create_idempotency_table().await;
    let sdk = moto.sdk_config().await;
    let containers: Vec<Documents> = (0..8)
        .map(|_| Documents::new("pipeline-notifier", &sdk, &table, KEPT))
        .collect();
    // Each container adds its own mark; a lost write would lose a mark.
    let writes = containers.iter().enumerate().map(|(i, c)| async move {
        c.update(
            "live/prod-api/exec-1",
            &budget(20),
            |seen: Option<&Vec<usize>>| {
                let mut marks = seen.cloned().unwrap_or_default();
                (!marks.contains(&i)).then(|| {
                    marks.push(i);
                    marks
                })
            },
        )
        .await
        .unwrap()
    });
    futures_util::future::join_all(writes).await;
    let stored = containers[0]
        .read::<Vec<usize>>("live/prod-api/exec-1", &budget(20))
        .await
        .unwrap()
        .unwrap();
    let mut marks = stored.value.clone();
    marks.sort_unstable();
    assert_eq!(marks, (0..8).collect::<Vec<_>>());
    assert_eq!(stored.version, 8, "one version per write that landed");
    let items = moto.dynamodb_items(&table).await;
    assert_eq!(
        items[0]["id"]["S"],
        "pipeline-notifier#live/prod-api/exec-1"
    );
}

#[tokio::test]
async fn a_merge_that_changes_nothing_writes_nothing() {
    let moto = Moto::start();
    let table = moto.create_idempotency_table().await;
    let docs = Documents::new("pipeline-notifier", &moto.sdk_config().await, &table, KEPT);
    docs.update("k", &budget(20), |_: Option<&u32>| Some(1))
        .await
        .unwrap();
    let again = docs
        .update("k", &budget(20), |seen: Option<&u32>| {
            (seen != Some(&1)).then_some(1)
        })
        .await
        .unwrap();
    assert!(matches!(again, Updated::Unchanged(Some(ref v)) if v.version == 1));
}

#[tokio::test]
async fn a_missing_table_is_an_error_the_caller_sees() {
    let moto = Moto::start();
    let docs = Documents::new(
        "pipeline-notifier",
        &moto.sdk_config().await,
        "no-such-table",
        KEPT,
    );
    let e = docs
        .update("k", &budget(20), |_: Option<&u32>| Some(1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("DynamoDB"), "{e}");
}

/// A document this code cannot read (written by another version, or damaged) would stop
/// every change to it until it expired: the next update replaces it, under the version it
/// was read at, and a plain read still says it is unreadable rather than absent.
#[tokio::test]
async fn an_unreadable_document_is_replaced_by_the_next_update() {
    let moto = Moto::start();
    let table = moto.create_idempotency_table().await;
    let sdk = moto.sdk_config().await;
    let docs = Documents::new("pipeline-notifier", &sdk, &table, KEPT);
    docs.update("k", &budget(20), |_: Option<&String>| {
        Some("a text".to_owned())
    })
    .await
    .unwrap();
    assert!(
        docs.read::<u32>("k", &budget(20)).await.is_err(),
        "not a number"
    );
    let replaced = docs
        .update("k", &budget(20), |seen: Option<&u32>| {
            assert_eq!(seen, None, "an unreadable document merges as none");
            Some(7)
        })
        .await
        .unwrap();
    assert!(matches!(replaced, Updated::Changed(ref v) if v.value == 7 && v.version == 2));
    assert_eq!(
        docs.read::<u32>("k", &budget(20))
            .await
            .unwrap()
            .unwrap()
            .value,
        7
    );
}
