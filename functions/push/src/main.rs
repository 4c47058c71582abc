//! The push function: EventBridge delivers each state change here; it is carried to
//! the user's other backends. Glue only: the behaviour is `watchstate::app::push`.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use watchstate::adapters::eventbridge::EventBridgeBus;
use watchstate::app::push;
use watchstate::inbound::{config, lambda};
use watchstate::ports::bus;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let store = config::store().await?;
    let pusher = Arc::new(push::Pusher {
        store,
        clients: Arc::new(push::HttpClients {
            http: watchstate::adapters::media::client::http_client(),
            retry: Default::default(),
        }),
    });
    let bus: Option<Arc<dyn bus::Bus>> = EventBridgeBus::from_env()
        .await
        .map(|b| Arc::new(b) as Arc<dyn bus::Bus>);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (pusher, bus) = (pusher.clone(), bus.clone());
        async move { lambda::push_event(&pusher, bus.as_deref(), event).await }
    }))
    .await
}
