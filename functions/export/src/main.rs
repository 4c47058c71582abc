//! The export function: schedule or manual payload → the dead-letter sweep and the
//! export of `watchstate::inbound::lambda::ExportFunction` (what it reads and does is
//! documented there). Glue only.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use watchstate::inbound::lambda::{self, ExportFunction};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let export = Arc::new(ExportFunction::from_env().await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let export = export.clone();
        async move { export.on_event(event).await }
    }))
    .await
}
