//! The push dead-letter queue on SQS (moto, over the SQS wire protocol): the
//! `DeadLetters` adapter gives back what is parked in both shapes (the rule's DLQ keeps
//! the EventBridge event, Lambda's on-failure destination a record holding it), and
//! the export's sweep pushes each change again, deletes what is done and drops what is
//! no change.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use e2e::moto::Moto;
use watchstate::adapters::media::client::{http_client_with, HttpClients, RetryPolicy};
use watchstate::adapters::sqs::SqsDeadLetters;
use watchstate::adapters::store::sqlite::SqliteStore;
use watchstate::app::push::Pusher;
use watchstate::app::tasks::dead_letters::{sweep, Swept};
use watchstate::app::tasks::Budget;
use watchstate::ports::dead_letters::DeadLetters;

fn change(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","user":"ana","item_id":"i-{id}","origin":"plex","watched":true,
            "progress_ms":null,"state_updated_at":"2025-01-01T00:00:00Z","kind":"watched"}}"#
    )
}

fn rule_dead_letter(id: &str) -> String {
    format!(
        r#"{{"detail-type":"StateChange","source":"watchstate","detail":{}}}"#,
        change(id)
    )
}

fn on_failure_record(id: &str) -> String {
    format!(
        r#"{{"version":"1.0","requestContext":{{"condition":"RetriesExhausted"}},"requestPayload":{}}}"#,
        rule_dead_letter(id)
    )
}

/// A queue whose received messages come back at once unless deleted (visibility 0),
/// so "not deleted" shows at the next receive.
async fn queue(sqs: &aws_sdk_sqs::Client, bodies: &[String]) -> String {
    let url = sqs
        .create_queue()
        .queue_name("push-dlq")
        .attributes(QueueAttributeName::VisibilityTimeout, "0")
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url");
    for body in bodies {
        sqs.send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .expect("sent");
    }
    url
}

/// A queue on moto holding a change of each parked shape (`c1`, `c2`) and `other`.
async fn parked(other: &str) -> (Moto, SqsDeadLetters) {
    let moto = Moto::start();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config());
    let bodies = [
        rule_dead_letter("c1"),
        on_failure_record("c2"),
        other.to_string(),
    ];
    let url = queue(&sqs, &bodies).await;
    (moto, SqsDeadLetters::new(sqs, url))
}

async fn all_ids(letters: &dyn DeadLetters) -> Vec<Option<String>> {
    let mut ids: Vec<Option<String>> = letters
        .receive(10)
        .await
        .expect("received")
        .into_iter()
        .map(|l| l.change.map(|c| c.id))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn parked_changes_of_both_shapes_come_back_until_deleted() {
    let (_moto, letters) = parked("not json").await;

    let got = letters.receive(10).await.expect("received");
    assert_eq!(got.len(), 3, "{got:?}");
    let mut ids: Vec<Option<String>> = got
        .iter()
        .map(|l| l.change.as_ref().map(|c| c.id.clone()))
        .collect();
    ids.sort();
    assert_eq!(ids, vec![None, Some("c1".into()), Some("c2".into())]);
    assert!(got.iter().all(|l| l.id.is_some() && l.receipt.is_some()));
    let c2 = got
        .iter()
        .find_map(|l| l.change.as_ref().filter(|c| c.id == "c2"))
        .expect("c2");
    assert_eq!(c2.item_id, "i-c2");

    // Delete the changes only: the message that is no change comes back.
    for l in got.iter().filter(|l| l.change.is_some()) {
        letters.delete(l).await.expect("deleted");
    }
    assert_eq!(all_ids(&letters).await, vec![None]);
}

#[tokio::test]
async fn the_sweep_deletes_what_it_pushed_and_drops_what_is_no_change() {
    let (_moto, letters) = parked("{\"detail-type\":\"StateChange\"}").await;
    // An empty store: each change's item is gone, so pushing it again is done at once.
    let pusher = Pusher {
        store: Arc::new(SqliteStore::in_memory().expect("store")),
        clients: Arc::new(HttpClients {
            http: http_client_with(Duration::from_millis(500), Duration::from_secs(2)),
            retry: RetryPolicy::quick(),
        }),
    };
    let swept = sweep(&letters, &pusher, Budget::unlimited()).await;
    assert_eq!(
        swept,
        Swept {
            pushed: 2,
            kept: 0,
            dropped: 1
        }
    );
    assert!(all_ids(&letters).await.is_empty(), "the queue is empty");
    assert_eq!(
        serde_json::to_value(swept).expect("json"),
        serde_json::json!({"pushed": 2, "kept": 0, "dropped": 1})
    );
}
