//! The import function: schedule, `ImportPage` continuation or manual payload →
//! `watchstate::inbound::lambda::ImportFunction` (what it reads and does is documented
//! there). Glue only.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use watchstate::inbound::lambda::{self, ImportFunction};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let import = Arc::new(ImportFunction::from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let import = import.clone();
        async move { import.on_event(event).await }
    }))
    .await
}
