//! The import function: its EventBridge schedule (content ignored), an `ImportPage`
//! continuation, or a manual payload `{"user", "backend", "dry_run", "full", "cursor"}`
//! runs the import of `watchstate::app::tasks::import`. Glue only.
//!
//! An invocation stops well before Lambda's deadline (at most `IMPORT_BUDGET_SECONDS`,
//! default 600): what is left is published as an `ImportPage` event when a bus exists
//! (`EVENT_BUS_NAME`), and is resumed from the runs' cursors by the next invocation
//! anyway. Changes the import stored are then published from the outbox (bounded), so
//! push carries them as it carries a webhook's.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use watchstate::app::tasks;
use watchstate::inbound::lambda;

fn budget_cap() -> Duration {
    let secs = std::env::var("IMPORT_BUDGET_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let deps = tasks::Deps::from_env().await?;
    let continuation = tasks::Continuation::from_env().await.map(Arc::new);
    let cap = budget_cap();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (deps, continuation) = (deps.clone(), continuation.clone());
        async move {
            let payload = tasks::TaskPayload::from_event(&event.payload);
            let budget = tasks::Budget::lambda(event.context.deadline, cap);
            let importer = tasks::import::Importer::new(&deps, Default::default());
            let mut report = importer.run(&payload, budget).await?;
            if let (Some(next), Some(c)) = (&report.continuation, &continuation) {
                match c.publish(next).await {
                    Ok(()) => tracing::info!("import continues in a new invocation (ImportPage)"),
                    Err(e) => tracing::warn!(error = %e, "continuation not published; the next run resumes"),
                }
            }
            if !report.dry_run {
                report.published = tasks::publish_changes(&deps, tasks::PUBLISH_AFTER_IMPORT).await;
            }
            Ok::<_, Error>(serde_json::to_value(&report)?)
        }
    }))
    .await
}
