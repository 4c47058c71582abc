//! The export function: schedule or manual payload → the dead-letter sweep and the
//! export of `watchstate::inbound::lambda::TaskFunction` (what it reads and does is
//! documented there). Glue only.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use watchstate::inbound::config::Config;
use watchstate::inbound::lambda::{self, TaskFunction};
use watchstate::ports::tasks::TaskKind;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = Config::from_env();
    lambda::init_tracing(&config);
    let export = Arc::new(TaskFunction::new(TaskKind::Export, &config).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let export = export.clone();
        async move { export.on_event(event).await }
    }))
    .await
}
