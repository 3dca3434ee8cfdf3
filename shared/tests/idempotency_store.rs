//! The idempotency store against moto's DynamoDB, which evaluates the condition expressions
//! the store relies on: each `Idempotency` below is a separate SDK client, as separate Lambda
//! containers are.

use std::time::{Duration, Instant};

use shared::Deadline;
use shared::idempotency::{Claim, Idempotency};
use standins::Moto;
use standins::rig::budget as deadline;

async fn store(moto: &Moto, table: &str) -> Idempotency {
    Idempotency::with_table("pipeline-notifier", &moto.sdk_config().await, table)
}

#[tokio::test]
async fn of_containers_racing_for_one_key_exactly_one_wins_and_the_rest_see_it_held_then_done() {
    let moto = Moto::start();
    let table = moto.create_idempotency_table().await;
    let mut containers = Vec::new();
    for _ in 0..8 {
        containers.push(store(&moto, &table).await);
    }
    // The losers wait for the winner until their own deadline, then report it held.
    let by = deadline(1);
    let claims =
        futures_util::future::join_all(containers.iter().map(|c| c.claim("event-6d2f", &by))).await;
    let mut winners = Vec::new();
    for (i, claim) in claims.into_iter().enumerate() {
        match claim {
            Claim::Won(ticket) => winners.push((i, ticket)),
            Claim::Held { lease_left } => assert!(lease_left > Duration::from_secs(3)),
            Claim::Done => panic!("nothing was done yet"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one container may win");
    let (winner, ticket) = winners.pop().unwrap();
    containers[winner].done(ticket, &deadline(10)).await;
    for c in &containers {
        assert!(matches!(
            c.claim("event-6d2f", &deadline(10)).await,
            Claim::Done
        ));
    }
    let items = moto.dynamodb_items(&table).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"]["S"], "pipeline-notifier#event-6d2f");
    assert_eq!(items[0]["status"]["S"], "DONE");
    let expires: u64 = items[0]["expires_at"]["N"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(expires > now + 24 * 3600, "kept past any redelivery");
}

#[tokio::test]
async fn a_claim_whose_claimer_died_is_taken_over_after_its_lease_and_completed_once() {
    let moto = Moto::start();
    let table = moto.create_idempotency_table().await;
    let dying = store(&moto, &table)
        .await
        .with_lease_grace(Duration::from_millis(200));
    let next = store(&moto, &table).await;

    // The claimer's invocation had one second left; it never marks the claim done.
    let Claim::Won(_lost) = dying.claim("job-1/start", &deadline(1)).await else {
        panic!("the first claim wins");
    };
    // An invocation with less time than the lease has left gives up at its own deadline.
    assert!(matches!(
        next.claim("job-1/start", &Deadline::after(Duration::from_millis(300)))
            .await,
        Claim::Held { .. }
    ));
    // One with more time waits for the lease to run out and takes the claim over.
    let started = Instant::now();
    let Claim::Won(ticket) = next.claim("job-1/start", &deadline(10)).await else {
        panic!("the lease should have run out and the claim been taken over");
    };
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "taken over only after the claimer's deadline and grace"
    );
    next.done(ticket, &deadline(10)).await;
    assert!(matches!(
        dying.claim("job-1/start", &deadline(10)).await,
        Claim::Done
    ));
}

#[tokio::test]
async fn a_released_claim_can_be_won_again_at_once() {
    let moto = Moto::start();
    let table = moto.create_idempotency_table().await;
    let first = store(&moto, &table).await;
    let second = store(&moto, &table).await;
    let Claim::Won(ticket) = first.claim("event-1", &deadline(60)).await else {
        panic!("the first claim wins");
    };
    first.release(ticket, &deadline(60)).await;
    assert!(matches!(
        second.claim("event-1", &deadline(60)).await,
        Claim::Won(_)
    ));
}

#[tokio::test]
async fn a_claim_taken_over_is_not_marked_done_by_its_first_owner() {
    let moto = Moto::start();
    let table = moto.create_idempotency_table().await;
    let slow = store(&moto, &table).await.with_lease_grace(Duration::ZERO);
    let other = store(&moto, &table).await;
    let Claim::Won(late) = slow.claim("event-1", &deadline(1)).await else {
        panic!("the first claim wins");
    };
    // The slow claimer outlives its own deadline (it should not, but a clock can lie).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let Claim::Won(_current) = other.claim("event-1", &deadline(60)).await else {
        panic!("an expired lease is taken over");
    };
    slow.done(late, &deadline(60)).await;
    let items = moto.dynamodb_items(&table).await;
    assert_eq!(
        items[0]["status"]["S"], "IN_PROGRESS",
        "still the new owner's"
    );
}

#[tokio::test]
async fn a_missing_table_does_not_stop_the_work_and_memory_still_catches_a_local_duplicate() {
    let moto = Moto::start();
    let store = store(&moto, "no-such-table").await;
    let Claim::Won(ticket) = store.claim("event-1", &deadline(10)).await else {
        panic!("a store fault goes ahead unguarded");
    };
    store.done(ticket, &deadline(10)).await;
    assert!(matches!(
        store.claim("event-1", &deadline(10)).await,
        Claim::Done
    ));
}

/// DynamoDB applied the put but its answer came after the SDK's attempt timeout: the SDK's
/// retry finds the item this very claim wrote. That is a win, not another invocation's hold
/// (which would leave a pipeline job unanswered while everyone waits for a holder that is us).
#[tokio::test]
async fn a_claim_whose_answer_was_lost_is_recognised_as_our_own_on_the_sdks_retry() {
    let moto = Moto::start();
    let table = moto.create_idempotency_table().await;
    let stub = standins::RecordingStub::start().await;
    stub.forward_unknown_to(moto.endpoint());
    stub.delay_answers("PutItem", Duration::from_millis(1500), 1);
    let sdk = standins::moto::sdk_config_for(&stub.endpoint())
        .await
        .into_builder()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_millis(500))
                .build(),
        )
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
        .build();
    let store = Idempotency::with_table("pipeline-notifier", &sdk, &table);
    let started = Instant::now();
    let claim = store.claim("event-1", &deadline(10)).await;
    assert!(matches!(claim, Claim::Won(_)), "{claim:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "no waiting on ourselves"
    );
    let puts = stub
        .calls()
        .iter()
        .filter(|c| c.operation == "PutItem")
        .count();
    assert!(puts >= 2, "the SDK retried the put: {puts}");
    assert_eq!(
        operations(&stub, "GetItem"),
        0,
        "the retry's refusal carried our own item"
    );
}

/// DynamoDB in a brownout, answering a claim only after half a minute: the claim gives up
/// asking after CLAIM_CALL_BUDGET (5 s) and is won on memory, as for any store fault, so the
/// invocation keeps the time to answer its job or check its hook (the SDK alone would keep
/// asking until the deadline: four attempts of up to ten seconds).
#[tokio::test]
async fn a_claim_stops_asking_a_slow_store_long_before_the_deadline() {
    let moto = Moto::start();
    let table = moto.create_idempotency_table().await;
    let stub = standins::RecordingStub::start().await;
    stub.forward_unknown_to(moto.endpoint());
    stub.delay_answers("PutItem", Duration::from_secs(30), 1);
    let store = store_behind(&stub, &table).await;
    let started = Instant::now();
    let claim = store.claim("event-1", &deadline(20)).await;
    assert!(matches!(claim, Claim::Won(_)), "{claim:?}");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "most of the invocation is left for its work: asked for {waited:?}"
    );
}

fn operations(stub: &standins::RecordingStub, operation: &str) -> usize {
    stub.calls()
        .iter()
        .filter(|c| c.operation == operation)
        .count()
}

/// A claim through the recording stub, which forwards to moto and counts the calls.
async fn store_behind(stub: &standins::RecordingStub, table: &str) -> Idempotency {
    let sdk = standins::moto::sdk_config_for(&stub.endpoint()).await;
    Idempotency::with_table("pipeline-notifier", &sdk, table)
}

/// The conditional put asks for the item that failed its condition (DynamoDB API reference,
/// PutItem `ReturnValuesOnConditionCheckFailure`), so a lost claim knows from the refusal
/// alone whether the work is held or done: no GetItem follows.
#[tokio::test]
async fn a_lost_claim_learns_who_holds_it_from_the_refusal_without_reading_the_item() {
    let moto = Moto::start();
    let table = moto.create_idempotency_table().await;
    let stub = standins::RecordingStub::start().await;
    stub.forward_unknown_to(moto.endpoint());
    let holder = store(&moto, &table).await;
    let waiter = store_behind(&stub, &table).await;
    let Claim::Won(ticket) = holder.claim("event-1", &deadline(30)).await else {
        panic!("the first claim wins");
    };

    let claim = waiter
        .claim("event-1", &Deadline::after(Duration::from_millis(300)))
        .await;
    let Claim::Held { lease_left } = claim else {
        panic!("held by the other container: {claim:?}");
    };
    assert!(lease_left > Duration::from_secs(20), "{lease_left:?}");

    holder.done(ticket, &deadline(10)).await;
    assert!(matches!(
        waiter.claim("event-1", &deadline(10)).await,
        Claim::Done
    ));

    let puts = operations(&stub, "PutItem");
    assert!(puts >= 2, "a refused claim for each: {puts}");
    for call in stub.calls().iter().filter(|c| c.operation == "PutItem") {
        assert_eq!(call.body["ReturnValuesOnConditionCheckFailure"], "ALL_OLD");
    }
    assert_eq!(operations(&stub, "GetItem"), 0, "{:?}", stub.calls());
}

/// A store that refuses without the item (an emulator that ignores the parameter) still
/// answers: the claim falls back to one consistent read.
#[tokio::test]
async fn a_refusal_without_the_item_falls_back_to_a_consistent_read() {
    let moto = Moto::start();
    let table = moto.create_idempotency_table().await;
    let holder = store(&moto, &table).await;
    let Claim::Won(ticket) = holder.claim("event-1", &deadline(30)).await else {
        panic!("the first claim wins");
    };
    holder.done(ticket, &deadline(10)).await;

    let stub = standins::RecordingStub::start().await;
    stub.forward_unknown_to(moto.endpoint());
    stub.fixture_error(
        "PutItem",
        serde_json::json!({"TableName": table}),
        "ConditionalCheckFailedException",
        "The conditional request failed",
    );
    let waiter = store_behind(&stub, &table).await;
    assert!(matches!(
        waiter.claim("event-1", &deadline(10)).await,
        Claim::Done
    ));
    let reads: Vec<_> = stub
        .calls()
        .into_iter()
        .filter(|c| c.operation == "GetItem")
        .collect();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].body["ConsistentRead"], true);
}

/// Waiting for another holder may use half the time left, so a claim won late still leaves
/// time for the work; past that, the claim is reported held.
#[tokio::test]
async fn waiting_for_a_holder_uses_at_most_half_the_time_left() {
    let moto = Moto::start();
    let table = moto.create_idempotency_table().await;
    let holder = store(&moto, &table).await;
    let waiter = store(&moto, &table).await;
    let Claim::Won(_held) = holder.claim("event-1", &deadline(30)).await else {
        panic!("the first claim wins");
    };
    let started = Instant::now();
    let claim = waiter.claim("event-1", &deadline(4)).await;
    assert!(matches!(claim, Claim::Held { .. }), "{claim:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1800) && waited < Duration::from_millis(2600),
        "{waited:?}"
    );
}
