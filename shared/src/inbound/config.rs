//! Choosing adapters and secrets from the environment, once per process.
//!
//! - `TABLE_NAME` set: DynamoDB (honouring `AWS_ENDPOINT_URL`); otherwise the embedded
//!   store at `${WATCHSTATE_DATA_DIR:-.watchstate}/watchstate.db`.
//! - `WATCHSTATE_ADMIN_KEY`: the api's bearer key.
//! - `WATCHSTATE_TOKEN_SECRET` (or, on AWS, the SecureString named by
//!   `WATCHSTATE_TOKEN_SECRET_PARAMETER`): what webhook tokens are derived from, apart
//!   from the admin key so rotating that keeps every webhook URL (without either, the
//!   admin key, as deployments before had it; `make run` sets [`LOCAL_TOKEN_SECRET`]).
//! - `WATCHSTATE_PUBLIC_URL`: the deployment's base URL, when a custom domain fronts it.
//!
//! Every AWS client of a process is built from one [`sdk_config`], loaded once: region,
//! credentials and endpoint come from the environment, nothing is called over the
//! network until a client makes its first request (`docs/PERFORMANCE.md`, "Cold start and size": no network call at init).

use std::path::PathBuf;
use std::sync::Arc;

use crate::adapters::secrets::SealedStore;
use crate::adapters::store::dynamo::DynamoStore;
use crate::domain::token::TokenSecret;
use crate::ports::store::{Store, StoreError};

static SDK_CONFIG: tokio::sync::OnceCell<aws_config::SdkConfig> =
    tokio::sync::OnceCell::const_new();

/// The process's AWS configuration (region, credential chain, `AWS_ENDPOINT_URL` for
/// moto), shared by the DynamoDB, EventBridge, SSM and SQS clients. Loading reads the
/// environment only; credentials are resolved lazily at the first request. One per
/// process: its HTTP connection pool belongs to the runtime that first used it.
pub async fn sdk_config() -> &'static aws_config::SdkConfig {
    SDK_CONFIG
        .get_or_init(|| {
            aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(sdk_http_client())
                .load()
        })
        .await
}

/// The SDK's own HTTPS client (hyper, rustls with ring: the same TLS stack as the
/// media-server client; the SDK crates are built without their default client, which
/// would bring aws-lc), made at the first request and trusting the compiled-in Mozilla
/// roots. The default one reads and parses the system's certificate store whenever a
/// client is built, which puts that work into every function's init. Tests that build
/// their own `SdkConfig` (moto) take it too: the SDK has no other client.
pub fn sdk_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls;
    use aws_smithy_runtime_api::client::http::{HttpClient, SharedHttpClient};
    static HTTPS: std::sync::OnceLock<SharedHttpClient> = std::sync::OnceLock::new();
    aws_smithy_runtime_api::client::http::http_client_fn(|settings, components| {
        HTTPS
            .get_or_init(|| {
                let roots = tls::TrustStore::empty()
                    .with_native_roots(false)
                    .with_pem_certificate(compiled_in_roots_pem());
                let context = tls::TlsContext::builder()
                    .with_trust_store(roots)
                    .build()
                    .expect("a TLS context of PEM roots builds");
                aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(
                        tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .tls_context(context)
                    .build_https()
            })
            .http_connector(settings, components)
    })
}

/// webpki-root-certs as the PEM bundle the SDK's trust store takes.
fn compiled_in_roots_pem() -> Vec<u8> {
    use base64::Engine;
    let mut pem = String::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let body = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

pub fn data_dir() -> PathBuf {
    std::env::var_os("WATCHSTATE_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".watchstate"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The store this process uses. Media server tokens are sealed at rest
/// ([`crate::adapters::secrets`]): on AWS with the KMS key named by `WATCHSTATE_TOKEN_KEY_ID`
/// (only the functions that call media servers get it; the webhook function never
/// reads a token), locally with the key file in the data dir.
pub async fn store() -> Result<Arc<dyn Store>, StoreError> {
    if let Some(table) = env("TABLE_NAME") {
        // Region, credentials and `AWS_ENDPOINT_URL` (moto locally) come from the
        // environment, as in every AWS SDK.
        let conf = sdk_config().await;
        tracing::info!(
            table = %table,
            endpoint = env("AWS_ENDPOINT_URL").as_deref().unwrap_or("AWS"),
            "DynamoDB store"
        );
        let client = aws_sdk_dynamodb::Client::new(conf);
        let store: Arc<dyn Store> = Arc::new(DynamoStore::new(client, table));
        return Ok(match env("WATCHSTATE_TOKEN_KEY_ID") {
            Some(key) => {
                let kms =
                    crate::adapters::secrets::KmsKey::new(aws_sdk_kms::Client::new(conf), key);
                Arc::new(SealedStore::new(store, Arc::new(kms)))
            }
            None => store,
        });
    }
    embedded_store()
}

#[cfg(feature = "local")]
fn embedded_store() -> Result<Arc<dyn Store>, StoreError> {
    let dir = data_dir();
    let path = dir.join("watchstate.db");
    tracing::info!(path = %path.display(), "embedded store");
    let store: Arc<dyn Store> = Arc::new(crate::adapters::store::sqlite::SqliteStore::open(&path)?);
    let key = crate::adapters::secrets::LocalKey::in_dir(&dir)?;
    Ok(Arc::new(SealedStore::new(store, Arc::new(key))))
}

/// A Lambda build has no embedded store: without `TABLE_NAME` it cannot start.
#[cfg(not(feature = "local"))]
fn embedded_store() -> Result<Arc<dyn Store>, StoreError> {
    Err(StoreError::Unavailable(
        "TABLE_NAME is not set, and this build has no embedded store (build with the `local` feature)".into(),
    ))
}

pub fn admin_key() -> String {
    env("WATCHSTATE_ADMIN_KEY").unwrap_or_default()
}

pub fn token_secret() -> TokenSecret {
    TokenSecret::new(env("WATCHSTATE_TOKEN_SECRET").unwrap_or_else(admin_key))
}

/// The admin key and the token secret, read once per process (the api reads them at
/// its first request, not during init): `WATCHSTATE_ADMIN_KEY`
/// if set (local), else the SSM SecureString named by `WATCHSTATE_ADMIN_KEY_PARAMETER`
/// (AWS), so the key never sits in the template or the function's configuration.
/// The token secret likewise: `WATCHSTATE_TOKEN_SECRET`, else the SecureString named
/// by `WATCHSTATE_TOKEN_SECRET_PARAMETER` (the template's own, so rotating the admin
/// key keeps every webhook URL), else the admin key (deployments from before).
pub async fn api_secrets() -> Result<(String, TokenSecret), String> {
    let key_param = env("WATCHSTATE_ADMIN_KEY_PARAMETER");
    let secret_param = env("WATCHSTATE_TOKEN_SECRET_PARAMETER");
    let needs_ssm = (env("WATCHSTATE_ADMIN_KEY").is_none() && key_param.is_some())
        || (env("WATCHSTATE_TOKEN_SECRET").is_none() && secret_param.is_some());
    let ssm = if needs_ssm {
        Some(aws_sdk_ssm::Client::new(sdk_config().await))
    } else {
        None
    };
    let key = match (env("WATCHSTATE_ADMIN_KEY"), &key_param, &ssm) {
        (Some(k), _, _) => k,
        (None, Some(name), Some(ssm)) => admin_key_from_ssm(ssm, name).await?,
        _ => String::new(),
    };
    let secret = match (env("WATCHSTATE_TOKEN_SECRET"), &secret_param, &ssm) {
        (Some(s), _, _) => s,
        (None, Some(name), Some(ssm)) => secret_from_ssm(ssm, name, "token secret").await?,
        _ => key.clone(),
    };
    Ok((key, TokenSecret::new(secret)))
}

/// Read (and decrypt) the admin key parameter. The error names the parameter, never
/// its value.
pub async fn admin_key_from_ssm(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String, String> {
    secret_from_ssm(ssm, name, "admin key").await
}

/// Read (and decrypt) a SecureString parameter holding the secret called `what`.
pub async fn secret_from_ssm(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
    what: &str,
) -> Result<String, String> {
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            format!(
                "cannot read the {what} parameter {name}: {}",
                aws_sdk_ssm::error::DisplayErrorContext(&e)
            )
        })?;
    out.parameter
        .and_then(|p| p.value)
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("the {what} parameter {name} is empty"))
}

/// The token secret of the local emulation, unless `WATCHSTATE_TOKEN_SECRET` says
/// otherwise: fixed, so the sample events' tokens work on every laptop. Locally a
/// token's secrecy rests on its backend's random nonce, kept in the data dir.
pub const LOCAL_TOKEN_SECRET: &str = "watchstate-local";

pub fn public_url() -> Option<String> {
    env("WATCHSTATE_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn the_compiled_in_roots_come_back_whole_from_their_pem() {
        let pem = super::compiled_in_roots_pem();
        let parsed = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .expect("valid PEM");
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS;
        assert!(roots.len() > 100, "{} roots", roots.len());
        assert_eq!(parsed.len(), roots.len());
        assert!(parsed
            .iter()
            .zip(roots)
            .all(|(a, b)| a.as_ref() == b.as_ref()));
    }

    /// The SDK crates have no HTTPS client of their own (no `default-https-client`): the
    /// one of `sdk_http_client` (rustls with ring, the compiled-in roots) must build and
    /// speak TLS to an https endpoint.
    #[tokio::test]
    async fn the_sdk_client_speaks_tls_to_an_https_endpoint() {
        use crate::adapters::media::client::tests::{first_bytes_of_a_connection, is_client_hello};
        let (port, seen) = first_bytes_of_a_connection();
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(super::sdk_http_client())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "x", "x", None, None, "test",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .endpoint_url(format!("https://127.0.0.1:{port}"))
            .load()
            .await;
        let err = aws_sdk_dynamodb::Client::new(&conf)
            .list_tables()
            .send()
            .await
            .expect_err("the server hangs up");
        let head = seen.join().expect("server thread");
        assert!(
            is_client_hello(&head),
            "not a ClientHello: {head:02x?} ({err:?})"
        );
    }
}
