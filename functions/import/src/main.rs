//! The import function: schedule, `ImportPage` continuation or manual payload →
//! `watchstate::inbound::lambda::TaskFunction` (what it reads and does is documented
//! there). Glue only.

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
    let import = Arc::new(TaskFunction::new(TaskKind::Import, &config).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let import = import.clone();
        async move { import.on_event(event).await }
    }))
    .await
}
