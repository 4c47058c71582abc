//! The composition of a process: every environment variable the library reads, read
//! once into a [`Config`], and the adapters chosen from it ([`store`], [`bus`],
//! [`deps`], [`continuations`], [`dead_letters`], [`api_secrets`]).
//!
//! Every AWS client of a process is built from one [`sdk_config`], made once from the
//! [`AwsSettings`] of the environment (`AWS_REGION`, `AWS_ENDPOINT_URL` and the keys
//! Lambda puts there): no credential chain, no profile files, no instance metadata, and
//! nothing called over the network until a client makes its first request
//! (`docs/PERFORMANCE.md`, "Cold start and size").

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::secrets::SealedStore;
use crate::adapters::store::dynamo::DynamoStore;
use crate::domain::model::Deployment;
use crate::domain::token::TokenSecret;
use crate::ports::bus::Bus;
use crate::ports::store::{Store, StoreError};

/// What the environment says, read once per process by [`Config::from_env`] (an empty
/// or blank value counts as unset). The SAM template and the CDK app set these names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `WATCHSTATE_DEPLOYMENT` = `aws` (the template and the CDK app set it): backend
    /// urls must be https and public, and metrics are written. Anything else: local.
    pub deployment: Deployment,
    /// `TABLE_NAME`: the DynamoDB table (honouring `AWS_ENDPOINT_URL`). Unset: the
    /// embedded SQLite store, in a build with the `local` feature.
    pub table_name: Option<String>,
    /// `WATCHSTATE_DATA_DIR` (default `.watchstate`): where the embedded store keeps
    /// `watchstate.db` and its token key.
    pub data_dir: PathBuf,
    /// `WATCHSTATE_TOKEN_KEY_ID`: the KMS key media-server tokens are sealed with on
    /// AWS (only the functions that call media servers get it; the webhook function
    /// never reads a token). Unset with `TABLE_NAME`: tokens stored as given.
    pub token_key_id: Option<String>,
    /// `WATCHSTATE_ADMIN_KEY`: the api's bearer key (local).
    pub admin_key: Option<String>,
    /// `WATCHSTATE_ADMIN_KEY_PARAMETER`: the SSM SecureString holding the admin key
    /// (AWS), read at the api's first request.
    pub admin_key_parameter: Option<String>,
    /// `WATCHSTATE_TOKEN_SECRET`: what webhook tokens are derived from, apart from the
    /// admin key so rotating that keeps every webhook URL (`make run` sets
    /// [`LOCAL_TOKEN_SECRET`]). Without it or its parameter: the admin key, as
    /// deployments before had it.
    pub token_secret: Option<String>,
    /// `WATCHSTATE_TOKEN_SECRET_PARAMETER`: the SSM SecureString holding the token
    /// secret (AWS).
    pub token_secret_parameter: Option<String>,
    /// `WATCHSTATE_PUBLIC_URL`: the deployment's base URL when a custom domain fronts
    /// it (no trailing `/`); unset: taken from each request.
    pub public_url: Option<String>,
    /// `EVENT_BUS_NAME`: the EventBridge bus changes and import continuations go to.
    /// Unset: locally the in-process bus, in a Lambda build none (changes wait in the
    /// outbox).
    pub event_bus_name: Option<String>,
    /// `DEAD_LETTER_QUEUE_URL`: the push dead-letter queue the export sweeps (AWS).
    pub dead_letter_queue_url: Option<String>,
    /// `IMPORT_BUDGET_SECONDS` (default 600): the longest one import invocation works;
    /// the invocation's deadline bounds it further.
    pub import_budget: Duration,
    /// `EXPORT_BUDGET_SECONDS` (default 600): the same for the export.
    pub export_budget: Duration,
    /// `AWS_LAMBDA_LOG_FORMAT` = `JSON` (any case): log lines as JSON (Lambda sets it).
    pub log_json: bool,
    /// `AWS_LAMBDA_LOG_LEVEL` (Lambda's log level setting): the level of every line
    /// `RUST_LOG` does not say otherwise of (default INFO).
    pub log_level: Option<String>,
    /// `RUST_LOG`: a level, or `target=level` directives separated by commas
    /// (`watchstate=debug,info`); directives that do not read are skipped.
    pub log_directives: Option<String>,
    /// Where the AWS clients go and who they are.
    pub aws: AwsSettings,
}

/// The AWS side of the environment, as Lambda sets it (and the tests, for moto).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`: one endpoint for every service (moto, LocalStack).
    pub endpoint_url: Option<String>,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`: the
    /// function role's keys. Unset: every AWS call fails with "no credentials".
    pub keys: Option<AwsKeys>,
}

/// An access key pair with its session token. Its `Debug` shows none of them.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AwsKeys(..)")
    }
}

/// A task's time cap when its variable is unset or unreadable.
const DEFAULT_BUDGET: Duration = Duration::from_secs(600);

impl Config {
    /// Read every variable (once per process: the `main`s call it and pass it on).
    pub fn from_env() -> Config {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read the variables from `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let budget = |name: &str| {
            get(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_BUDGET)
        };
        Config {
            deployment: match get("WATCHSTATE_DEPLOYMENT").as_deref().map(str::trim) {
                Some(d) if d.eq_ignore_ascii_case("aws") => Deployment::Aws,
                _ => Deployment::Local,
            },
            table_name: get("TABLE_NAME"),
            data_dir: get("WATCHSTATE_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".watchstate")),
            token_key_id: get("WATCHSTATE_TOKEN_KEY_ID"),
            admin_key: get("WATCHSTATE_ADMIN_KEY"),
            admin_key_parameter: get("WATCHSTATE_ADMIN_KEY_PARAMETER"),
            token_secret: get("WATCHSTATE_TOKEN_SECRET"),
            token_secret_parameter: get("WATCHSTATE_TOKEN_SECRET_PARAMETER"),
            public_url: get("WATCHSTATE_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string()),
            event_bus_name: get("EVENT_BUS_NAME"),
            dead_letter_queue_url: get("DEAD_LETTER_QUEUE_URL"),
            import_budget: budget("IMPORT_BUDGET_SECONDS"),
            export_budget: budget("EXPORT_BUDGET_SECONDS"),
            log_json: get("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")),
            log_level: get("AWS_LAMBDA_LOG_LEVEL"),
            log_directives: get("RUST_LOG"),
            aws: AwsSettings {
                region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
                endpoint_url: get("AWS_ENDPOINT_URL"),
                keys: match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
                    (Some(access_key_id), Some(secret_access_key)) => Some(AwsKeys {
                        access_key_id,
                        secret_access_key,
                        session_token: get("AWS_SESSION_TOKEN"),
                    }),
                    _ => None,
                },
            },
        }
    }
}

static SDK_CONFIG: std::sync::OnceLock<aws_types::SdkConfig> = std::sync::OnceLock::new();

/// The process's AWS configuration, shared by the DynamoDB, EventBridge, KMS, SSM and
/// SQS clients: [`aws_sdk_config`] of the first `config` asked with. One per process:
/// its HTTP connection pool belongs to the runtime that first used it.
pub fn sdk_config(config: &Config) -> &'static aws_types::SdkConfig {
    SDK_CONFIG.get_or_init(|| aws_sdk_config(&config.aws))
}

/// An `SdkConfig` of `aws` alone, with what `aws_config::defaults` would give a Lambda:
/// standard retries (3 attempts), a 3.1 s connect timeout, tokio's sleep, the system
/// clock, the latest behaviour version, and [`sdk_http_client`]. Builds nothing and
/// calls nothing; the tests make theirs for moto with it too.
pub fn aws_sdk_config(aws: &AwsSettings) -> aws_types::SdkConfig {
    use aws_credential_types::provider::SharedCredentialsProvider;
    use aws_smithy_types::{retry::RetryConfig, timeout::TimeoutConfig};
    let mut builder = aws_types::SdkConfig::builder()
        .behavior_version(
            aws_smithy_runtime_api::client::behavior_version::BehaviorVersion::latest(),
        )
        .http_client(sdk_http_client())
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(3100))
                .build(),
        )
        .region(aws.region.clone().map(aws_types::region::Region::new));
    if let Some(sleep) = aws_smithy_async::rt::sleep::default_async_sleep() {
        builder = builder.sleep_impl(sleep);
    }
    if let Some(url) = &aws.endpoint_url {
        builder = builder.endpoint_url(url.clone());
    }
    if let Some(keys) = &aws.keys {
        let credentials = aws_credential_types::Credentials::new(
            keys.access_key_id.clone(),
            keys.secret_access_key.clone(),
            keys.session_token.clone(),
            None,
            "environment",
        );
        builder = builder.credentials_provider(SharedCredentialsProvider::new(credentials));
    }
    builder.build()
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

/// The store this process uses. Media server tokens are sealed at rest
/// ([`crate::adapters::secrets`]): on AWS with the KMS key of
/// [`Config::token_key_id`], locally with the key file in the data dir.
pub async fn store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(table) = &config.table_name {
        let conf = sdk_config(config);
        tracing::info!(
            table = %table,
            endpoint = conf.endpoint_url().unwrap_or("AWS"),
            "DynamoDB store"
        );
        let client = aws_sdk_dynamodb::Client::new(conf);
        let store: Arc<dyn Store> = Arc::new(DynamoStore::new(client, table.clone()));
        return Ok(match &config.token_key_id {
            Some(key) => {
                let kms = crate::adapters::secrets::KmsKey::new(
                    aws_sdk_kms::Client::new(conf),
                    key.clone(),
                );
                Arc::new(SealedStore::new(store, Arc::new(kms)))
            }
            None => store,
        });
    }
    embedded_store(config)
}

#[cfg(feature = "local")]
fn embedded_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let dir = &config.data_dir;
    let path = dir.join("watchstate.db");
    tracing::info!(path = %path.display(), "embedded store");
    let store: Arc<dyn Store> = Arc::new(crate::adapters::store::sqlite::SqliteStore::open(&path)?);
    let key = crate::adapters::secrets::LocalKey::in_dir(dir)?;
    Ok(Arc::new(SealedStore::new(store, Arc::new(key))))
}

/// A Lambda build has no embedded store: without `TABLE_NAME` it cannot start.
#[cfg(not(feature = "local"))]
fn embedded_store(_config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    Err(StoreError::Unavailable(
        "TABLE_NAME is not set, and this build has no embedded store (build with the `local` feature)".into(),
    ))
}

/// The EventBridge bus of [`Config::event_bus_name`], with the adapter's short
/// timeouts and quick retries over the process's [`sdk_config`]; `None` when unset.
pub async fn event_bridge_bus(
    config: &Config,
) -> Option<crate::adapters::eventbridge::EventBridgeBus> {
    let name = config.event_bus_name.as_ref()?;
    Some(
        crate::adapters::eventbridge::EventBridgeBus::from_sdk_config(
            sdk_config(config),
            name.clone(),
        ),
    )
}

/// The bus this process publishes to: EventBridge when `EVENT_BUS_NAME` is set (AWS),
/// else, in a local build, the in-process bus that runs push right here (the local
/// emulation). A Lambda build without `EVENT_BUS_NAME` has none: changes wait in the
/// outbox.
pub async fn bus(config: &Config, store: Arc<dyn Store>) -> Option<Arc<dyn Bus>> {
    if let Some(b) = event_bridge_bus(config).await {
        return Some(Arc::new(b));
    }
    local_bus(store)
}

#[cfg(not(feature = "local"))]
fn local_bus(_store: Arc<dyn Store>) -> Option<Arc<dyn Bus>> {
    tracing::warn!("EVENT_BUS_NAME is not set: changes wait in the outbox");
    None
}

#[cfg(feature = "local")]
fn local_bus(store: Arc<dyn Store>) -> Option<Arc<dyn Bus>> {
    use crate::app::push::{LocalPush, Pusher};
    let pusher = Pusher {
        store,
        clients: Arc::new(crate::adapters::media::client::HttpClients::standard()),
    };
    Some(Arc::new(crate::adapters::local_bus::LocalBus::new(
        Arc::new(LocalPush(pusher)),
    )))
}

/// What the tasks and the api work with: the store and bus of this environment, real
/// HTTP clients.
#[cfg(feature = "media")]
pub async fn deps(config: &Config) -> Result<crate::app::tasks::Deps, StoreError> {
    let store = store(config).await?;
    let bus = bus(config, store.clone()).await;
    Ok(crate::app::tasks::Deps {
        store,
        clients: Arc::new(crate::adapters::media::client::HttpClients::standard()),
        bus,
    })
}

/// Where an unfinished import is handed on: `ImportPage` events on the bus of
/// `EVENT_BUS_NAME`. `None` when unset (locally): the cursor then waits on its run,
/// and the next invocation resumes it.
pub async fn continuations(config: &Config) -> Option<Arc<dyn crate::ports::bus::Continuations>> {
    let name = config.event_bus_name.as_ref()?;
    Some(Arc::new(
        crate::adapters::eventbridge::EventBridgeContinuations::from_sdk_config(
            sdk_config(config),
            name.clone(),
        ),
    ))
}

/// The push dead-letter queue of `DEAD_LETTER_QUEUE_URL`; `None` when unset (locally).
pub async fn dead_letters(
    config: &Config,
) -> Option<Arc<dyn crate::ports::dead_letters::DeadLetters>> {
    let url = config.dead_letter_queue_url.as_ref()?;
    Some(Arc::new(
        crate::adapters::sqs::SqsDeadLetters::from_sdk_config(sdk_config(config), url.clone()),
    ))
}

/// The admin key and the token secret (the api reads them at its first request, not
/// during init): `WATCHSTATE_ADMIN_KEY` if set (local), else the SSM SecureString
/// named by `WATCHSTATE_ADMIN_KEY_PARAMETER` (AWS), so the key never sits in the
/// template or the function's configuration. The token secret likewise:
/// `WATCHSTATE_TOKEN_SECRET`, else the SecureString named by
/// `WATCHSTATE_TOKEN_SECRET_PARAMETER` (the template's own, so rotating the admin key
/// keeps every webhook URL), else the admin key (deployments from before).
pub async fn api_secrets(config: &Config) -> Result<(String, TokenSecret), String> {
    let needs_ssm = (config.admin_key.is_none() && config.admin_key_parameter.is_some())
        || (config.token_secret.is_none() && config.token_secret_parameter.is_some());
    let ssm = if needs_ssm {
        Some(aws_sdk_ssm::Client::new(sdk_config(config)))
    } else {
        None
    };
    let key = match (&config.admin_key, &config.admin_key_parameter, &ssm) {
        (Some(k), _, _) => k.clone(),
        (None, Some(name), Some(ssm)) => admin_key_from_ssm(ssm, name).await?,
        _ => String::new(),
    };
    let secret = match (&config.token_secret, &config.token_secret_parameter, &ssm) {
        (Some(s), _, _) => s.clone(),
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

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn every_variable_has_its_default_and_blank_is_unset() {
        let empty = super::Config::from_lookup(|_| None);
        assert_eq!(empty.data_dir, std::path::PathBuf::from(".watchstate"));
        assert_eq!(empty.import_budget, std::time::Duration::from_secs(600));
        assert_eq!(empty.table_name, None);
        assert_eq!(empty.deployment, super::Deployment::Local);
        assert_eq!(empty.aws, super::AwsSettings::default());
        let vars = [
            ("TABLE_NAME", "t"),
            ("EVENT_BUS_NAME", " "),
            ("WATCHSTATE_PUBLIC_URL", "https://w.example/"),
            ("EXPORT_BUDGET_SECONDS", "30"),
            ("IMPORT_BUDGET_SECONDS", "soon"),
            ("WATCHSTATE_DEPLOYMENT", "aws"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "very-secret"),
            ("AWS_SESSION_TOKEN", "session-secret"),
            ("RUST_LOG", "watchstate=debug"),
        ];
        let c = super::Config::from_lookup(|n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        });
        assert_eq!(c.table_name.as_deref(), Some("t"));
        assert_eq!(c.event_bus_name, None);
        assert_eq!(c.public_url.as_deref(), Some("https://w.example"));
        assert_eq!(c.export_budget, std::time::Duration::from_secs(30));
        assert_eq!(c.import_budget, std::time::Duration::from_secs(600));
        assert_eq!(c.deployment, super::Deployment::Aws);
        assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.log_directives.as_deref(), Some("watchstate=debug"));
        let keys = c.aws.keys.as_ref().expect("keys");
        assert_eq!(keys.session_token.as_deref(), Some("session-secret"));
        // The keys never reach a log line through Debug.
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("very-secret") && !shown.contains("session-secret"),
            "{shown}"
        );
    }

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
        use crate::adapters::media::client::tests::{
            assert_client_hello, first_bytes_of_a_connection,
        };
        let (port, seen) = first_bytes_of_a_connection();
        let conf = super::aws_sdk_config(&super::AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some(format!("https://127.0.0.1:{port}")),
            keys: Some(super::AwsKeys {
                access_key_id: "x".into(),
                secret_access_key: "x".into(),
                session_token: None,
            }),
        });
        let conf = aws_sdk_dynamodb::config::Builder::from(&conf)
            .retry_config(aws_smithy_types::retry::RetryConfig::disabled())
            .build();
        let err = aws_sdk_dynamodb::Client::from_conf(conf)
            .list_tables()
            .send()
            .await
            .expect_err("the server hangs up");
        assert_client_hello(seen, err);
    }
}
