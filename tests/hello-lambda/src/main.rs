//! The cold-start baseline: the smallest `lambda_runtime` function, built with the
//! workspace's release profile like the real functions. `cold_start` (tests/src/bin)
//! compares the functions' init time and size against it.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn hello(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "hello": "world", "request_id": event.context.request_id }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(hello)).await
}
