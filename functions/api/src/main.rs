//! The api function: `/v1/*` (users, backends, items, deliveries, tasks) and the
//! console at its root. Glue only:
//! the behaviour is `watchstate::inbound::http::api`; `POST /v1/tasks/{import|export}` runs the
//! import and export functions' code (`watchstate::app::tasks`) within the request's time.
//! The admin key is read at the first request (`inbound::lambda::LazyApi`), not during init.

use std::sync::Arc;

use lambda_http::{service_fn, Error, Request};
use watchstate::inbound::config::{self, Config};
use watchstate::inbound::lambda;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = Config::from_env();
    lambda::init_tracing(&config);
    let api = Arc::new(lambda::LazyApi::new(config::deps(&config).await?, config));
    lambda_http::run(service_fn(move |req: Request| {
        let api = api.clone();
        async move { Ok::<_, Error>(api.handle(req).await) }
    }))
    .await
}
