//! The export function: its EventBridge schedule (content ignored) or a manual payload
//! `{"user", "backend", "dry_run", "full"}` runs the export of
//! `watchstate::app::tasks::export` (drain the outbox, then push stored state to every
//! export-enabled backend where it differs), after the sweep of the push dead-letter
//! queue (`watchstate::app::tasks::dead_letters`). Glue only.

use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use watchstate::app::push::Pusher;
use watchstate::app::tasks;
use watchstate::inbound::lambda;

fn budget_cap() -> Duration {
    let secs = std::env::var("EXPORT_BUDGET_SECONDS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(600);
    Duration::from_secs(secs)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let deps = tasks::Deps::from_env().await?;
    let dead_letters = tasks::dead_letters::DeadLetters::from_env()
        .await
        .map(std::sync::Arc::new);
    let cap = budget_cap();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (deps, dead_letters) = (deps.clone(), dead_letters.clone());
        async move {
            let payload = tasks::TaskPayload::from_event(&event.payload);
            let budget = tasks::Budget::lambda(event.context.deadline, cap);
            let swept = match (&dead_letters, payload.dry_run) {
                (Some(dl), false) => {
                    let pusher = Pusher {
                        store: deps.store.clone(),
                        clients: deps.clients.clone(),
                    };
                    Some(dl.sweep(&pusher, budget).await)
                }
                _ => None,
            };
            let exporter = tasks::export::Exporter::new(&deps, Default::default());
            let report = exporter.run(&payload, budget).await?;
            let mut out = serde_json::to_value(&report)?;
            if let Some(s) = swept {
                out["dead_letters"] = s;
            }
            Ok::<_, Error>(out)
        }
    }))
    .await
}
