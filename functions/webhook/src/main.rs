//! The webhook function: `POST|PUT /webhook/{token}` from Plex, Tautulli, Jellyfin and
//! Emby. Glue only: the behaviour is `watchstate::inbound::http::webhook`.

use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};
use watchstate::inbound::config::{self, Config};
use watchstate::inbound::http::webhook::WebhookService;
use watchstate::inbound::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = Config::from_env();
    lambda::init_tracing(&config);
    let store = config::store(&config).await?;
    // EventBridge on AWS (EVENT_BUS_NAME); locally, push runs in this process.
    let bus = config::bus(&config, store.clone()).await;
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
