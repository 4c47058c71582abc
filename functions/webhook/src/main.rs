//! The webhook function: `POST|PUT /webhook/{token}` from Plex, Tautulli, Jellyfin and
//! Emby. Glue only: the behaviour is `watchstate::http::webhook`.

use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};
use watchstate::{config, entry, http::webhook::WebhookService};

#[tokio::main]
async fn main() -> Result<(), Error> {
    entry::init_tracing();
    let service = Arc::new(WebhookService {
        store: config::store().await?,
        bus: None,
    });
    lambda_http::run(service_fn(move |req: Request| {
        let service = service.clone();
        async move {
            let reply = service.handle(entry::to_request(req)).await;
            Ok::<_, Error>(entry::to_response(reply))
        }
    }))
    .await
}
