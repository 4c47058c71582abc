//! The webhook and api handlers behind a real HTTP listener on loopback, so media
//! servers (the fakes) can call back the `webhook_url` they were given: what API
//! Gateway does on AWS and `cargo lambda watch` does under `make run`, minus Lambda.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use watchstate::inbound::http::api::{ApiService, WebhookBase};
use watchstate::inbound::http::webhook::WebhookService;

pub struct Served {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Where webhook URLs of this server point.
    pub fn base(&self) -> WebhookBase {
        WebhookBase(self.url("/webhook/"))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serve `/webhook/*` with the webhook handler and `/v1/*` with the api.
pub async fn serve(webhook: WebhookService, api: ApiService) -> Served {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = WebhookBase(format!("http://{addr}/webhook/"));
    let state = Arc::new((webhook, api, base));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let state = state.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let bytes = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let req = http::Request::from_parts(parts, bytes);
                        let reply = if req.uri().path().starts_with("/webhook/") {
                            state.0.handle(req).await
                        } else {
                            state.1.handle(req, &state.2).await
                        };
                        let (parts, body) = reply.into_parts();
                        Ok::<_, Infallible>(hyper::Response::from_parts(
                            parts,
                            Full::new(Bytes::from(body)),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Served { addr, task }
}
