//! The push function: EventBridge delivers each state change here (through the push
//! queue); it is carried to the user's other backends. Glue only: the behaviour is
//! `watchstate::inbound::lambda::PushFunction` and `watchstate::app::push`.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use watchstate::inbound::config::Config;
use watchstate::inbound::lambda::{self, PushFunction};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = Config::from_env();
    lambda::init_tracing(&config);
    let push = Arc::new(PushFunction::new(&config).await?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let push = push.clone();
        async move { push.on_event(event).await }
    }))
    .await
}
