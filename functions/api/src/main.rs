//! The api function: `/v1/*` (users, backends, items, deliveries, tasks) and the
//! console at its root. Glue only:
//! the behaviour is `watchstate::http::api`; `POST /v1/tasks/{import|export}` runs the
//! import and export functions' code (`watchstate::tasks`) within the request's time.

use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};
use watchstate::{config, entry, http::api::ApiService, tasks};

#[tokio::main]
async fn main() -> Result<(), Error> {
    entry::init_tracing();
    let deps = tasks::Deps::from_env().await?;
    let (admin_key, token_secret) = config::api_secrets().await?;
    let service = Arc::new(ApiService {
        store: deps.store.clone(),
        admin_key,
        token_secret,
        bus: deps.bus.clone(),
        tasks: Some(Arc::new(tasks::Tasks::new(deps))),
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
