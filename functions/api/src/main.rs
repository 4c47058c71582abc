//! The api function: `/v1/*` (users, backends, items, deliveries, tasks). Glue only:
//! the behaviour is `watchstate::http::api`.

use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};
use watchstate::{config, entry, http::api::ApiService};

#[tokio::main]
async fn main() -> Result<(), Error> {
    entry::init_tracing();
    let service = Arc::new(ApiService {
        store: config::store().await?,
        admin_key: config::admin_key(),
        token_secret: config::token_secret(),
        tasks: None,
    });
    lambda_http::run(service_fn(move |req: Request| {
        let service = service.clone();
        async move {
            let base = entry::webhook_base(&req);
            let reply = service.handle(entry::to_request(req), &base).await;
            Ok::<_, Error>(entry::to_response(reply))
        }
    }))
    .await
}
