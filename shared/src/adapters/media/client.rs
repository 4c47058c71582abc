//! Building media-server clients: the shared HTTP client (rustls, compiled-in roots,
//! timeouts, no redirects), the [`RetryPolicy`], and the factory ([`client_for`],
//! [`client_with`]), the only place that names the concrete clients of each server's
//! folder.

use crate::domain::model::{Backend, BackendKind};
use crate::ports::media::MediaClient;
use backon::ExponentialBuilder;
use std::sync::Arc;
use std::time::Duration;

/// How often and how fast a failed call is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1: no retry).
    pub attempts: usize,
    /// Delay before the first retry; doubles each time, with jitter.
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms then 400 ms (plus jitter): with the 15 s request timeout a
    /// call gives up within about 46 s even against a server that never answers.
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// For tests: the same attempts, millisecond delays.
    pub fn quick() -> Self {
        RetryPolicy {
            attempts: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        }
    }

    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            ..RetryPolicy::quick()
        }
    }

    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts.saturating_sub(1))
            .with_jitter()
    }
}

/// The `User-Agent` of every call.
pub const USER_AGENT: &str = concat!("watchstate-serverless/", env!("CARGO_PKG_VERSION"));

/// The HTTP client every media-server client shares; build it once (in `main`).
/// rustls, 5 s connect timeout, 15 s request timeout, no redirects.
pub fn http_client() -> reqwest::Client {
    http_client_with(Duration::from_secs(5), Duration::from_secs(15))
}

/// TLS for media servers: rustls trusting the compiled-in Mozilla roots
/// (webpki-roots) with ring's crypto (as the SDK's client), built once per process.
/// A client built from it reads no certificate store from disk (the platform
/// verifier would, for every client).
fn tls_config() -> rustls::ClientConfig {
    static CONFIG: std::sync::LazyLock<rustls::ClientConfig> = std::sync::LazyLock::new(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
    });
    CONFIG.clone()
}

/// [`http_client`] with other timeouts (tests use short ones).
pub fn http_client_with(connect_timeout: Duration, request_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls_config())
        .user_agent(USER_AGENT)
        .connect_timeout(connect_timeout)
        .timeout(request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client's TLS backend initialises")
}

/// The client for a backend, with the default [`RetryPolicy`].
pub fn client_for(backend: &Backend, http: reqwest::Client) -> Arc<dyn MediaClient> {
    client_with(backend, http, RetryPolicy::default())
}

/// The client for a backend with a given retry policy.
pub fn client_with(
    backend: &Backend,
    http: reqwest::Client,
    retry: RetryPolicy,
) -> Arc<dyn MediaClient> {
    match backend.kind {
        BackendKind::Plex => Arc::new(crate::adapters::media::plex::client::PlexClient::new(
            backend, http, retry,
        )),
        BackendKind::Jellyfin => Arc::new(crate::adapters::media::jellyfin::client::new(
            backend, http, retry,
        )),
        BackendKind::Emby => Arc::new(crate::adapters::media::emby::client::new(
            backend, http, retry,
        )),
    }
}

/// The real clients over one reqwest client: the [`ClientFactory`] port's adapter.
pub struct HttpClients {
    pub http: reqwest::Client,
    pub retry: RetryPolicy,
}

impl crate::ports::media::ClientFactory for HttpClients {
    fn client(&self, backend: &Backend) -> Arc<dyn MediaClient> {
        client_with(backend, self.http.clone(), self.retry)
    }
}

impl HttpClients {
    /// The clients of a Lambda function: [`http_client`], the default retries.
    pub fn standard() -> HttpClients {
        HttpClients {
            http: http_client(),
            retry: RetryPolicy::default(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A TCP server on 127.0.0.1 that keeps the first bytes of its first connection
    /// (a TLS client's first record: its ClientHello), then hangs up; nothing when no
    /// client connects within 10 s.
    pub(crate) fn first_bytes_of_a_connection() -> (u16, std::thread::JoinHandle<Vec<u8>>) {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        listener.set_nonblocking(true).expect("non-blocking");
        let seen = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut head = [0u8; 6];
                    return match stream.read_exact(&mut head) {
                        Ok(()) => head.to_vec(),
                        Err(_) => Vec::new(),
                    };
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Vec::new()
        });
        (port, seen)
    }

    /// A TLS handshake record (0x16, version 3.x) carrying a ClientHello (type 1).
    pub(crate) fn is_client_hello(head: &[u8]) -> bool {
        head.len() >= 6 && head[0] == 0x16 && head[1] == 0x03 && head[5] == 0x01
    }

    /// That the server of [`first_bytes_of_a_connection`] was sent a ClientHello.
    pub(crate) fn assert_client_hello(
        seen: std::thread::JoinHandle<Vec<u8>>,
        err: impl std::fmt::Debug,
    ) {
        let head = seen.join().expect("server thread");
        assert!(
            is_client_hello(&head),
            "not a ClientHello: {head:02x?} ({err:?})"
        );
    }

    /// reqwest is built without a crypto provider of its own: the client must build
    /// with the library's (ring) and speak TLS to an https media server.
    #[tokio::test]
    async fn the_media_client_speaks_tls_to_an_https_server() {
        let (port, seen) = first_bytes_of_a_connection();
        let err = http_client()
            .get(format!("https://127.0.0.1:{port}/"))
            .send()
            .await
            .expect_err("the server hangs up");
        assert_client_hello(seen, err);
    }
}
