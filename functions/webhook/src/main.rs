//! The webhook function: `POST|PUT /webhook/{token}` from Plex, Tautulli, Jellyfin and
//! Emby. Glue only: the behaviour is `watchstate::inbound::http::webhook`.

use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};
use watchstate::inbound::http::webhook::WebhookService;
use watchstate::inbound::{config, lambda};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda::init_tracing();
    let store = config::store().await?;
    // EventBridge on AWS (EVENT_BUS_NAME); locally, push runs in this process.
    let bus = watchstate::ports::bus::from_env(store.clone()).await;
    let service = Arc::new(WebhookService { store, bus });
    lambda_http::run(service_fn(move |req: Request| {
        let service = service.clone();
        async move {
            let reply = service.handle(lambda::to_request(req)).await;
            Ok::<_, Error>(lambda::to_response(reply))
        }
    }))
    .await
}
