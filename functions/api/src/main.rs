//! The api function: `/v1/*` (users, backends, items, deliveries, tasks) and the
//! console at its root. Glue only:
//! the behaviour is `watchstate::http::api`; `POST /v1/tasks/{import|export}` runs the
//! import and export functions' code (`watchstate::tasks`) within the request's time.
//! The admin key is read at the first request (`entry::LazyApi`), not during init.

use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};
use watchstate::{entry, tasks};

#[tokio::main]
async fn main() -> Result<(), Error> {
    entry::init_tracing();
    let api = Arc::new(entry::LazyApi::new(tasks::Deps::from_env().await?));
    lambda_http::run(service_fn(move |req: Request| {
        let api = api.clone();
        async move { Ok::<_, Error>(api.handle(req).await) }
    }))
    .await
}
